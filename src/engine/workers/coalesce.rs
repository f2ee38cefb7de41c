//! A metric flood held to what people and the history can take. A script may print its metric on
//! every step, hundreds of thousands of lines a second; forwarding each line as an observation cost
//! a history transaction (an fsync) apiece and a reducer pass over the whole curve, and the engine
//! fell minutes behind with its queues growing without bound.
//!
//! Between two batches (about [`BATCH_INTERVAL`](super::iteration::BATCH_INTERVAL)) the coalescer
//! keeps, for each epoch, only the last value reported (a line without an epoch counts as one step:
//! the last of them wins), so a batch sends at most [`WINDOW_POINTS`] observations whatever the
//! flood. The lines people see are held the same way: the first [`SHOWN_PER_BATCH`] metric lines of a
//! batch are shown, a run of further ones is replaced by one note and the run's last line. Lines that
//! report no metric are never held back, and `output.log` keeps every line.

use crate::adapters::backend::LogLine;
use crate::core::metrics::Observation;

/// Metric lines of one batch that are shown as they are: a person reads a handful a second, a
/// script printing slower than this is never coalesced.
pub const SHOWN_PER_BATCH: usize = 20;
/// Distinct epochs one batch forwards at most. A script reporting more epochs than this in a tenth of
/// a second has its oldest ones of the batch dropped (counted, and said once).
pub const WINDOW_POINTS: usize = 16;

/// The metric reports and metric lines of the batch in progress.
///
/// Invariants: `points` holds at most [`WINDOW_POINTS`] observations, at most one per epoch (one for
/// all lines without an epoch), each the last value seen for its epoch, in the order the epochs
/// first came; `held` counts the metric lines not shown since the last line that was, `last_held`
/// is the last of them.
#[derive(Debug, Default)]
pub struct Coalescer {
    shown: usize,
    held: u64,
    last_held: Option<LogLine>,
    points: Vec<Observation>,
    /// Epochs dropped because a batch had more than [`WINDOW_POINTS`]; `said` once reported.
    thinned: u64,
    said: bool,
}

/// What one batch forwards besides its lines.
#[derive(Debug, Default, PartialEq)]
pub struct Closed {
    /// The last value of each epoch reported in the batch, in order.
    pub points: Vec<Observation>,
    /// Said once per container: epochs came faster than they can be kept.
    pub notice: Option<String>,
}

impl Coalescer {
    /// Takes one line of output into `batch`, with the observation it reported, if any.
    pub fn line(&mut self, batch: &mut Vec<LogLine>, line: LogLine, obs: Option<Observation>) {
        let Some(obs) = obs else {
            self.release(batch);
            batch.push(line);
            return;
        };
        self.keep(obs);
        if self.shown < SHOWN_PER_BATCH {
            self.release(batch);
            self.shown += 1;
            batch.push(line);
        } else {
            self.held += 1;
            self.last_held = Some(line);
        }
    }

    /// Ends the batch: releases the held lines into `batch` and answers the batch's observations.
    pub fn close(&mut self, batch: &mut Vec<LogLine>) -> Closed {
        self.release(batch);
        self.shown = 0;
        let notice = (self.thinned > 0 && !self.said).then(|| {
            self.said = true;
            format!(
                "the metric is reported for more than {WINDOW_POINTS} epochs in a tenth of a second: \
                 only the last {WINDOW_POINTS} of each are recorded (output.log keeps every line)"
            )
        });
        Closed {
            points: std::mem::take(&mut self.points),
            notice,
        }
    }

    /// Whether the batch holds observations not yet forwarded.
    pub fn pending(&self) -> bool {
        !self.points.is_empty()
    }

    fn keep(&mut self, obs: Observation) {
        if let Some(p) = self.points.iter_mut().find(|p| p.epoch == obs.epoch) {
            *p = obs;
            return;
        }
        if self.points.len() == WINDOW_POINTS {
            self.points.remove(0);
            self.thinned += 1;
        }
        self.points.push(obs);
    }

    /// Puts the run of held metric lines into `batch`: the line itself when there is one, else a
    /// note counting those left out, then the last.
    fn release(&mut self, batch: &mut Vec<LogLine>) {
        let Some(last) = self.last_held.take() else {
            return;
        };
        let left_out = std::mem::take(&mut self.held) - 1;
        if left_out > 0 {
            batch.push(LogLine {
                stderr: false,
                text: coalesced_note(left_out),
            });
        }
        batch.push(last);
    }
}

/// The note that stands for `n` metric lines not shown.
pub fn coalesced_note(n: u64) -> String {
    format!("… {n} metric lines coalesced (output.log keeps every line) …")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            stderr: false,
            text: text.into(),
        }
    }

    fn obs(epoch: Option<u32>, value: f64) -> Observation {
        Observation {
            epoch,
            epochs: None,
            value,
        }
    }

    fn texts(batch: &[LogLine]) -> Vec<&str> {
        batch.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_flood_of_one_epoch_is_its_last_value_and_a_note() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        for i in 0..1000 {
            let text = format!("epoch=3 accuracy={i}");
            c.line(&mut batch, line(&text), Some(obs(Some(3), f64::from(i))));
        }
        c.line(&mut batch, line("saving"), None);
        let closed = c.close(&mut batch);
        assert_eq!(closed.points, vec![obs(Some(3), 999.0)]);
        assert_eq!(closed.notice, None);
        assert_eq!(batch.len(), SHOWN_PER_BATCH + 3);
        let tail = texts(&batch[SHOWN_PER_BATCH..]).join("|");
        let note = coalesced_note(1000 - SHOWN_PER_BATCH as u64 - 1);
        assert_eq!(tail, format!("{note}|epoch=3 accuracy=999|saving"));
    }

    #[test]
    fn a_slow_script_is_shown_and_forwarded_whole() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        c.line(&mut batch, line("epoch 1"), None);
        c.line(&mut batch, line("accuracy=0.5"), Some(obs(Some(1), 0.5)));
        assert!(c.pending());
        let closed = c.close(&mut batch);
        assert_eq!(texts(&batch), ["epoch 1", "accuracy=0.5"]);
        assert_eq!(closed.points, vec![obs(Some(1), 0.5)]);
        assert!(!c.pending());
    }

    #[test]
    fn each_epoch_keeps_its_last_value_in_order_and_the_window_is_bounded() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        for (e, v) in [(1, 0.1), (2, 0.2), (1, 0.15), (3, 0.3)] {
            c.line(&mut batch, line("m"), Some(obs(Some(e), v)));
        }
        let closed = c.close(&mut batch);
        let want = vec![obs(Some(1), 0.15), obs(Some(2), 0.2), obs(Some(3), 0.3)];
        assert_eq!(closed.points, want);
        let n = WINDOW_POINTS as u32 + 5;
        for e in 0..n {
            c.line(&mut batch, line("m"), Some(obs(Some(e), f64::from(e))));
        }
        let closed = c.close(&mut batch);
        assert_eq!(closed.points.len(), WINDOW_POINTS);
        assert_eq!(closed.points[0].epoch, Some(5));
        assert_eq!(closed.points.last().unwrap().epoch, Some(n - 1));
        assert!(closed.notice.unwrap().contains("only the last 16"));
        for e in 0..n {
            c.line(&mut batch, line("m"), Some(obs(Some(e), 0.0)));
        }
        assert_eq!(c.close(&mut batch).notice, None, "said once");
    }

    #[test]
    fn lines_without_an_epoch_are_steps_whose_last_value_wins() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        for v in [0.1, 0.2, 0.3] {
            c.line(&mut batch, line("m"), Some(obs(None, v)));
        }
        assert_eq!(c.close(&mut batch).points, vec![obs(None, 0.3)]);
    }
}
