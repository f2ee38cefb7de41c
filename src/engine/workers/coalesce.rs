//! A metric flood held to what people and the history can take. A script may print its metric on
//! every step, hundreds of thousands of lines a second; forwarding each line as an observation cost
//! a history transaction (an fsync) apiece and a reducer pass over the whole curve, and the engine
//! fell minutes behind with its queues growing without bound.
//!
//! Between two batches (about [`BATCH_INTERVAL`](super::iteration::BATCH_INTERVAL)) the coalescer
//! keeps, for each epoch, only the last value reported (a line without an epoch counts as one step:
//! the last of them wins), so a flood of lines about a few epochs costs a few observations. It holds
//! at most [`WINDOW_POINTS`] epochs: with more, the batch is sent early, and no epoch is ever lost
//! (a backlog read at once, after mlops-tui was stopped, is many epochs in one batch). The lines
//! people see are held the same way: the first [`SHOWN_PER_BATCH`] metric lines of a batch are
//! shown, a run of further ones is replaced by one note and the run's last line. Lines that report
//! no metric are never held back, and `output.log` keeps every line.

use crate::core::metrics::Observation;
use crate::core::model::LogLine;

/// Metric lines of one batch that are shown as they are: a person reads a handful a second, a
/// script printing slower than this is never coalesced.
pub const SHOWN_PER_BATCH: usize = 20;
/// Distinct epochs one batch holds at most: then it is sent early.
pub const WINDOW_POINTS: usize = 64;

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

    /// Ends the batch: releases the held lines into `batch` and answers the last value of each
    /// epoch reported in it, in order.
    pub fn close(&mut self, batch: &mut Vec<LogLine>) -> Vec<Observation> {
        self.release(batch);
        self.shown = 0;
        std::mem::take(&mut self.points)
    }

    /// Whether the batch holds [`WINDOW_POINTS`] epochs: it must be sent before the next line.
    pub fn full(&self) -> bool {
        self.points.len() >= WINDOW_POINTS
    }

    fn keep(&mut self, obs: Observation) {
        if let Some(p) = self.points.iter_mut().find(|p| p.epoch == obs.epoch) {
            *p = obs;
            return;
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
        assert_eq!(c.close(&mut batch), vec![obs(Some(3), 999.0)]);
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
        let points = c.close(&mut batch);
        assert_eq!(texts(&batch), ["epoch 1", "accuracy=0.5"]);
        assert_eq!(points, vec![obs(Some(1), 0.5)]);
    }

    #[test]
    fn each_epoch_keeps_its_last_value_in_order_and_a_full_batch_asks_to_be_sent() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        for (e, v) in [(1, 0.1), (2, 0.2), (1, 0.15), (3, 0.3)] {
            c.line(&mut batch, line("m"), Some(obs(Some(e), v)));
        }
        let want = vec![obs(Some(1), 0.15), obs(Some(2), 0.2), obs(Some(3), 0.3)];
        assert_eq!(c.close(&mut batch), want);
        for e in 0..WINDOW_POINTS as u32 {
            assert!(!c.full());
            c.line(&mut batch, line("m"), Some(obs(Some(e), f64::from(e))));
        }
        assert!(c.full());
        assert_eq!(c.close(&mut batch).len(), WINDOW_POINTS);
        assert!(!c.full());
    }

    #[test]
    fn lines_without_an_epoch_are_steps_whose_last_value_wins() {
        let mut c = Coalescer::default();
        let mut batch = Vec::new();
        for v in [0.1, 0.2, 0.3] {
            c.line(&mut batch, line("m"), Some(obs(None, v)));
        }
        assert_eq!(c.close(&mut batch), vec![obs(None, 0.3)]);
    }
}
