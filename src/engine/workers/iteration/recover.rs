//! The end of a container's output, read again after its exit: the metric reports a reader that
//! fell behind (a flood, a lost engine) may have missed, and a score printed as a bare number.

use tokio::sync::mpsc;

use super::Follow;
use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::core::metrics::{MetricParser, Observation};
use crate::core::model::ExitStatus;
use crate::core::text;
use crate::engine::msg::{IterationPlan, Level, Msg};

/// Docker rotates a container's log files; a reader that falls behind a flood (or loses the engine)
/// can miss lines, and the last metric lines matter most. After the exit, the last lines are read
/// again and every observation there that comes after the last one forwarded is forwarded now, in
/// order.
pub(super) async fn recover_final_metric<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
) {
    const TAIL: usize = 50;
    let Ok(lines) = backend.tail(id, TAIL).await else {
        return;
    };
    let metric = &plan.config.metric;
    let Ok(mut parser) = MetricParser::new(&metric.name, metric.pattern.as_deref()) else {
        return;
    };
    let found: Vec<Observation> = lines.iter().filter_map(|l| parser.feed(&l.text)).collect();
    let missed = unseen(found, f.last.as_ref());
    if !missed.is_empty() {
        tracing::warn!(
            "iteration {}/{}: {} metric report(s) recovered from the log tail",
            f.run,
            f.no,
            missed.len()
        );
    }
    for obs in missed {
        f.last = Some(obs.clone());
        let _ = tx.send(Msg::Metric {
            run: f.run,
            no: f.no,
            obs,
        });
    }
}

/// A script that ended well and printed its score as a bare number on its last line (`0.9733`),
/// without reporting the metric in any other way during the whole run of its container: that number
/// is the metric, when the metric can take it, and the event log says where it was read.
pub(super) fn last_line_fallback(
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    exit: Option<ExitStatus>,
) {
    let clean = exit.is_some_and(|s| s.code == 0 && !s.oom_killed);
    if f.last.is_some() || !clean {
        return;
    }
    let metric = &plan.config.metric;
    let Some(value) = f.parser.bare_last_line().filter(|v| metric.is_valid(*v)) else {
        return;
    };
    let _ = tx.send(Msg::Notice {
        tag: format!("evaluate:{}", f.no),
        text: format!(
            "{} {}, read from the last line (a bare number)",
            metric.name,
            text::value(value)
        ),
        level: Level::Info,
    });
    let obs = Observation {
        epoch: None,
        epochs: None,
        value,
    };
    f.last = Some(obs.clone());
    let _ = tx.send(Msg::Metric {
        run: f.run,
        no: f.no,
        obs,
    });
}

/// The observations of a log tail that come after `last`, the last one forwarded. Found in the tail,
/// `last` splits it; otherwise, when every observation names its epoch, those of later epochs are
/// new; otherwise only the tail's last value is taken, when it differs from `last`. Never repeats
/// `last` itself.
fn unseen(tail: Vec<Observation>, last: Option<&Observation>) -> Vec<Observation> {
    let Some(last) = last else {
        return tail;
    };
    let same = |o: &Observation| o.epoch == last.epoch && o.value.to_bits() == last.value.to_bits();
    if let Some(i) = tail.iter().rposition(same) {
        return tail.into_iter().skip(i + 1).collect();
    }
    if last.epoch.is_some() && tail.iter().all(|o| o.epoch.is_some()) {
        return tail.into_iter().filter(|o| o.epoch > last.epoch).collect();
    }
    tail.into_iter()
        .last()
        .filter(|o| o.value.to_bits() != last.value.to_bits())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(epoch: Option<u32>, value: f64) -> Observation {
        Observation {
            epoch,
            epochs: None,
            value,
        }
    }

    #[test]
    fn unseen_is_what_follows_the_last_forwarded() {
        let tail: Vec<_> = (1..=5).map(|e| obs(Some(e), f64::from(e) / 10.0)).collect();
        assert_eq!(unseen(tail.clone(), None), tail);
        assert_eq!(unseen(tail.clone(), Some(&tail[2])), tail[3..].to_vec());
        assert!(unseen(tail.clone(), Some(&tail[4])).is_empty());
    }

    #[test]
    fn unseen_by_epoch_when_the_last_forwarded_scrolled_out() {
        let tail: Vec<_> = (5..=8).map(|e| obs(Some(e), f64::from(e))).collect();
        assert_eq!(unseen(tail.clone(), Some(&obs(Some(3), 3.0))), tail);
        assert!(unseen(tail, Some(&obs(Some(9), 9.0))).is_empty());
    }

    #[test]
    fn unseen_without_epochs_is_only_a_different_last_value() {
        let tail = vec![obs(None, 0.1), obs(None, 0.2), obs(None, 0.3)];
        assert_eq!(
            unseen(tail.clone(), Some(&obs(None, 0.7))),
            vec![obs(None, 0.3)]
        );
        assert!(unseen(tail.clone(), Some(&obs(None, 0.3))).is_empty());
        assert_eq!(
            unseen(tail.clone(), Some(&obs(None, 0.2))),
            vec![obs(None, 0.3)]
        );
    }
}
