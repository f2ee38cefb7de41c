//! `budget.metric_timeout`: how long a script may go without reporting its metric, judged on what
//! the container did, not on when we happened to read it.
//!
//! A reader can fall behind the container: mlops-tui itself was stopped (SIGSTOP, a suspended
//! laptop) or is reading a flood slower than it is printed. Measured only by when lines were read,
//! the silence of a healthy script then looked long, and it was killed with its epochs still waiting
//! in the log. So the verdict is taken only after reading what is pending, and on the engine's
//! stamps: the script is silent when, by its own output's clock, it printed for longer than the
//! timeout without a metric line, or when it printed nothing for that long (measured once the
//! reader is caught up). A frozen container (paused, or every process stopped by a signal) can
//! print nothing: its silence is not held against it, and the clock starts again when it continues.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Follow, admit_and_copy, flush};
use crate::adapters::backend::{ContainerBackend, StampedLogStream};
use crate::core::ids::ContainerId;
use crate::core::model::LogLine;
use crate::engine::msg::{IterationPlan, Level, Msg};

/// How long the reader waits for the next pending line before it counts as caught up.
const PENDING_GAP: Duration = Duration::from_millis(50);
/// The most time spent reading pending lines before a verdict; a reader still behind after it is
/// judged on the stamps alone.
const CATCH_UP: Duration = Duration::from_secs(2);

/// What the follower knows of the metric's silence.
///
/// Invariant: `newest` is the largest stamp read; `metric` (the stamp of the last metric line read)
/// and `from` (the stamp the silence is counted from: the last metric line's, or the first line's
/// of this life) are never above it.
#[derive(Debug)]
pub(super) struct Silence {
    /// When a metric line was last read, or the clock last started again.
    read_at: Instant,
    /// The stamp the silence counts from.
    from: Option<i128>,
    newest: Option<i128>,
    /// Said that the container is frozen (once per freeze).
    frozen: bool,
}

impl Silence {
    pub(super) fn new() -> Silence {
        Silence {
            read_at: Instant::now(),
            from: None,
            newest: None,
            frozen: false,
        }
    }

    /// A line stamped `at` was read; `metric` when it reported the metric.
    pub(super) fn line(&mut self, at: i128, metric: bool) {
        self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        if metric {
            self.read_at = Instant::now();
            self.from = Some(at);
            self.frozen = false;
        } else if self.from.is_none() {
            self.from = Some(at);
        }
    }

    /// By the stamps of the lines read: the script printed for `limit` without a metric.
    fn by_stamps(&self, limit: Duration) -> bool {
        match (self.from, self.newest) {
            (Some(from), Some(newest)) => newest - from >= limit.as_nanos() as i128,
            _ => false,
        }
    }

    /// By our clock: no metric line read for `limit`.
    fn by_clock(&self, limit: Duration) -> bool {
        self.read_at.elapsed() >= limit
    }
}

/// The life in progress, for [`judge`].
pub(super) struct Stream<'a> {
    pub logs: &'a mut StampedLogStream,
    /// Set when the stream ended (while reading what was pending).
    pub done: &'a mut bool,
    /// The container exited, or is being stopped already: nothing is judged.
    pub exited: bool,
    pub stopping: bool,
}

/// Why the container must be stopped now, if a deadline passed: the iteration's time budget, or the
/// metric's silence (see the module's comment). Reads the pending lines into `batch` (forwarded)
/// before a silence is held against the script.
pub(super) async fn judge<B: ContainerBackend + ?Sized>(
    backend: &B,
    (id, plan): (&ContainerId, &IterationPlan),
    (tx, f, batch): (&mpsc::UnboundedSender<Msg>, &mut Follow, &mut Vec<LogLine>),
    stream: Stream<'_>,
    silence: &mut Silence,
) -> Option<String> {
    let budget = &plan.config.budget;
    if stream.exited || stream.stopping {
        return None;
    }
    if Instant::now() >= f.deadline {
        return Some(format!(
            "ran past {} (budget.iteration_timeout): stopped",
            budget.iteration_timeout
        ));
    }
    let limit = budget.metric_timeout.0;
    if plan.config.metric.file.is_some() || !(silence.by_clock(limit) || silence.by_stamps(limit)) {
        return None;
    }
    let caught_up = read_pending(backend, id, (tx, f, batch), stream, silence).await;
    let silent = silence.by_stamps(limit) || (caught_up && silence.by_clock(limit));
    if !silent || frozen(backend, id, tx, f, silence).await {
        return None;
    }
    Some(format!(
        "no `{}` reported for {} (budget.metric_timeout): stopped",
        plan.config.metric.name, budget.metric_timeout
    ))
}

/// Reads the lines already waiting in the stream, for at most [`CATCH_UP`]. True when the reader
/// caught up (no line came within [`PENDING_GAP`], or the stream ended).
async fn read_pending<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    (tx, f, batch): (&mpsc::UnboundedSender<Msg>, &mut Follow, &mut Vec<LogLine>),
    stream: Stream<'_>,
    silence: &mut Silence,
) -> bool {
    if *stream.done {
        return true;
    }
    let started = Instant::now();
    let caught_up = loop {
        if started.elapsed() >= CATCH_UP {
            break false;
        }
        match tokio::time::timeout(PENDING_GAP, stream.logs.next()).await {
            Ok(Some(Ok(line))) => {
                let at = line.at;
                let metric = admit_and_copy(backend, id, (tx, f, batch), line).await;
                silence.line(at, metric);
            }
            Ok(_) => {
                *stream.done = true;
                break true;
            }
            Err(_) => break true,
        }
    };
    flush(tx, f, batch);
    caught_up
}

/// Whether the container is frozen; then its clock starts again, and the first time it is said.
async fn frozen<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &Follow,
    silence: &mut Silence,
) -> bool {
    if !backend.frozen(id).await.unwrap_or(false) {
        return false;
    }
    silence.read_at = Instant::now();
    if !std::mem::replace(&mut silence.frozen, true) {
        let _ = tx.send(Msg::Notice {
            tag: format!("monitor:{}", f.no),
            text: format!(
                "container {id} is frozen (paused, or its processes stopped by a signal): \
                 budget.metric_timeout counts again when it continues"
            ),
            level: Level::Warn,
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn lines_without_a_metric_count_by_their_stamps() {
        let mut s = Silence::new();
        s.line(100 * S, true);
        s.line(103 * S, false);
        assert!(!s.by_stamps(Duration::from_secs(5)));
        s.line(105 * S, false);
        assert!(s.by_stamps(Duration::from_secs(5)));
        s.line(106 * S, true);
        assert!(!s.by_stamps(Duration::from_secs(5)));
    }

    #[test]
    fn a_backlog_of_epochs_read_late_is_not_a_silence() {
        // Epochs every half second, read all at once a minute late: by the stamps, never silent.
        let mut s = Silence::new();
        for i in 0..120 {
            s.line(i * S / 2, true);
        }
        assert!(!s.by_stamps(Duration::from_secs(5)));
        assert!(!s.by_clock(Duration::from_secs(5)));
    }

    #[test]
    fn the_silence_counts_from_the_first_line_before_any_metric() {
        let mut s = Silence::new();
        s.line(10 * S, false);
        s.line(12 * S, false);
        assert!(s.by_stamps(Duration::from_secs(2)));
        assert!(!s.by_stamps(Duration::from_secs(3)));
    }
}
