//! Pruning: stopping an iteration whose per-epoch metric shows it will not catch up.
//!
//! An iteration's curve is its metric after each epoch (`curve[e-1]` after epoch `e`). It is judged
//! at its last epoch against the curves of the run's finished iterations, by one of two rules:
//!
//! - **Median stopping rule** (Golovin et al., "Google Vizier", KDD 2017; Optuna's `MedianPruner`):
//!   stop when the best value the iteration has reached so far is worse than the median of the other
//!   curves' values at the same epoch.
//! - **Asynchronous successive halving** (Li et al., "A System for Massively Parallel Hyperparameter
//!   Tuning", MLSys 2020): rungs at epochs `r·η^k` with `r = warmup + 1` and `η = 3`; at a rung an
//!   iteration continues only when its value is among the top `1/η` of the values recorded there.
//!
//! Either way nothing is decided at or before `warmup`, nor at an epoch fewer than `min_trials`
//! finished curves reached. Non-finite values of other curves are ignored; a current value that is not
//! finite (a diverged iteration) is worse than any reference.

use std::fmt;

use crate::core::config::Direction;
pub use crate::core::config::{PruneRule, Pruning};
use crate::core::text;

/// The reduction factor of successive halving: one iteration in `ETA` passes each rung.
pub const ETA: u32 = 3;

/// Why an iteration is stopped: at `epoch` its `value` was worse than `reference`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruned {
    pub epoch: u32,
    pub value: f64,
    /// The median (median rule) or the worst value kept at the rung (ASHA).
    pub reference: f64,
    pub rule: PruneRule,
}

/// `pruned at epoch 3: 0.71 < median 0.84 at epoch 3`.
impl fmt::Display for Pruned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A verdict's value is worse than its reference: above it only when the metric is minimised.
        let worse = if self.value > self.reference {
            ">"
        } else {
            "<"
        };
        let what = match self.rule {
            PruneRule::Asha => format!("top 1/{ETA}"),
            PruneRule::Median | PruneRule::Off => "median".to_string(),
        };
        write!(
            f,
            "pruned at epoch {e}: {v} {worse} {what} {r} at epoch {e}",
            e = self.epoch,
            v = text::value_significant(self.value),
            r = text::value_significant(self.reference),
        )
    }
}

/// The verdict on `current` at its last epoch, or `None` to keep going. `others` are the curves of
/// this run's finished (completed or pruned) iterations.
pub fn check(
    p: &Pruning,
    direction: Direction,
    others: &[&[f64]],
    current: &[f64],
) -> Option<Pruned> {
    let epoch = u32::try_from(current.len()).ok()?;
    if epoch == 0 || epoch <= p.warmup {
        return None;
    }
    let at_epoch = values_at(others, current.len());
    if at_epoch.len() < p.min_trials.max(1) {
        return None;
    }
    let (value, reference) = match p.rule {
        PruneRule::Off => return None,
        PruneRule::Median => (best(direction, current), median(at_epoch)),
        PruneRule::Asha => {
            if !is_rung(p.warmup, epoch) {
                return None;
            }
            let value = current[current.len() - 1];
            (value, kept_threshold(direction, at_epoch, value))
        }
    };
    worse(direction, value, reference).then_some(Pruned {
        epoch,
        value,
        reference,
        rule: p.rule,
    })
}

/// The finite values other curves reached at `epoch` (1-based).
fn values_at(others: &[&[f64]], epoch: usize) -> Vec<f64> {
    others
        .iter()
        .filter_map(|c| c.get(epoch - 1).copied())
        .filter(|v| v.is_finite())
        .collect()
}

/// The best value of a non-empty curve; NaN when every value is.
fn best(direction: Direction, curve: &[f64]) -> f64 {
    curve
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .reduce(|a, b| match direction {
            Direction::Maximize => a.max(b),
            Direction::Minimize => a.min(b),
        })
        .unwrap_or(f64::NAN)
}

/// The median of a non-empty list of finite values (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Rungs sit at `(warmup + 1)·ETA^k`, k = 0, 1, …
fn is_rung(warmup: u32, epoch: u32) -> bool {
    let mut rung = warmup.saturating_add(1);
    while rung < epoch {
        rung = rung.saturating_mul(ETA);
    }
    rung == epoch
}

/// The worst value among the top `max(1, n/ETA)` of the rung's values, `value` counted among them.
fn kept_threshold(direction: Direction, mut others: Vec<f64>, value: f64) -> f64 {
    if value.is_finite() {
        others.push(value);
    }
    others.sort_by(|a, b| match direction {
        Direction::Maximize => b.total_cmp(a),
        Direction::Minimize => a.total_cmp(b),
    });
    let kept = (others.len() / ETA as usize).max(1);
    others[kept - 1]
}

/// True when `value` is strictly worse than `reference`; a non-finite value always is.
fn worse(direction: Direction, value: f64, reference: f64) -> bool {
    if !value.is_finite() {
        return true;
    }
    match direction {
        Direction::Maximize => value < reference,
        Direction::Minimize => value > reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Direction = Direction::Maximize;
    const MIN: Direction = Direction::Minimize;

    fn median_rule() -> Pruning {
        Pruning::default()
    }

    fn asha(warmup: u32, min_trials: usize) -> Pruning {
        Pruning {
            rule: PruneRule::Asha,
            warmup,
            min_trials,
        }
    }

    const A: &[f64] = &[0.5, 0.7, 0.84, 0.9, 0.93];
    const B: &[f64] = &[0.4, 0.6, 0.80, 0.88, 0.91];
    const C: &[f64] = &[0.6, 0.8, 0.90, 0.94, 0.95];

    #[test]
    fn median_prunes_a_lagging_curve_with_the_documented_message() {
        let v = check(&median_rule(), MAX, &[A, B, C], &[0.3, 0.5, 0.71]).unwrap();
        assert_eq!((v.epoch, v.value, v.reference), (3, 0.71, 0.84));
        assert_eq!(
            v.to_string(),
            "pruned at epoch 3: 0.71 < median 0.84 at epoch 3"
        );
    }

    #[test]
    fn median_keeps_a_curve_at_or_above_the_median() {
        assert_eq!(
            check(&median_rule(), MAX, &[A, B, C], &[0.3, 0.5, 0.84]),
            None
        );
        assert_eq!(
            check(&median_rule(), MAX, &[A, B, C], &[0.3, 0.5, 0.9]),
            None
        );
    }

    #[test]
    fn median_judges_the_best_value_so_far() {
        // A dip at epoch 3 after a good epoch 2 is noise, not a reason to stop.
        assert_eq!(
            check(&median_rule(), MAX, &[A, B, C], &[0.3, 0.95, 0.5]),
            None
        );
    }

    #[test]
    fn nothing_is_pruned_within_warmup() {
        let p = Pruning {
            warmup: 3,
            ..median_rule()
        };
        assert_eq!(check(&p, MAX, &[A, B, C], &[0.0, 0.0, 0.0]), None);
        assert!(check(&p, MAX, &[A, B, C], &[0.0, 0.0, 0.0, 0.0]).is_some());
    }

    #[test]
    fn too_few_finished_curves_reaching_the_epoch_decide_nothing() {
        assert_eq!(check(&median_rule(), MAX, &[A, B], &[0.1, 0.1, 0.1]), None);
        // A pruned curve that stopped at epoch 2 does not count at epoch 3.
        let short: &[f64] = &[0.9, 0.9];
        assert_eq!(
            check(&median_rule(), MAX, &[A, B, short], &[0.1, 0.1, 0.1]),
            None
        );
        assert!(check(&median_rule(), MAX, &[A, B, short, C], &[0.1, 0.1, 0.1]).is_some());
    }

    #[test]
    fn minimising_metrics_prune_the_higher_curve() {
        let la: &[f64] = &[2.0, 1.0, 0.5];
        let lb: &[f64] = &[2.0, 1.2, 0.6];
        let lc: &[f64] = &[2.0, 1.1, 0.7];
        let v = check(&median_rule(), MIN, &[la, lb, lc], &[2.5, 1.9, 1.5]).unwrap();
        assert_eq!(v.reference, 0.6);
        assert_eq!(
            v.to_string(),
            "pruned at epoch 3: 1.5 > median 0.6 at epoch 3"
        );
        assert_eq!(
            check(&median_rule(), MIN, &[la, lb, lc], &[2.5, 1.9, 0.55]),
            None
        );
    }

    #[test]
    fn a_diverged_curve_is_pruned_and_diverged_references_are_ignored() {
        let nan: &[f64] = &[f64::NAN, f64::NAN, f64::NAN];
        assert!(check(&median_rule(), MAX, &[A, B, C], &[f64::NAN; 3]).is_some());
        assert_eq!(
            check(&median_rule(), MAX, &[A, B, nan], &[0.1, 0.1, 0.1]),
            None
        );
    }

    #[test]
    fn off_never_prunes() {
        let p = Pruning {
            rule: PruneRule::Off,
            ..median_rule()
        };
        assert_eq!(check(&p, MAX, &[A, B, C], &[0.0, 0.0, 0.0]), None);
    }

    #[test]
    fn asha_rungs_follow_warmup_and_eta() {
        let rungs: Vec<u32> = (1..=30).filter(|&e| is_rung(2, e)).collect();
        assert_eq!(rungs, vec![3, 9, 27]);
        let rungs: Vec<u32> = (1..=10).filter(|&e| is_rung(0, e)).collect();
        assert_eq!(rungs, vec![1, 3, 9]);
    }

    #[test]
    fn asha_keeps_the_top_third_at_a_rung_only() {
        let p = asha(0, 3);
        let others: [&[f64]; 5] = [
            &[0.5, 0.6, 0.7],
            &[0.6, 0.6, 0.8],
            &[0.7, 0.6, 0.9],
            &[0.8, 0.6, 0.6],
            &[0.9, 0.6, 0.5],
        ];
        // Six values at epoch 1: the top two (0.9, 0.8) pass; 0.75 does not.
        let v = check(&p, MAX, &others, &[0.75]).unwrap();
        assert_eq!(v.reference, 0.8);
        assert_eq!(
            v.to_string(),
            "pruned at epoch 1: 0.75 < top 1/3 0.8 at epoch 1"
        );
        assert_eq!(check(&p, MAX, &others, &[0.85]), None);
        // Epoch 2 is no rung: nothing is decided however bad the value.
        assert_eq!(check(&p, MAX, &others, &[0.85, 0.0]), None);
        // Epoch 3 is: 0.85 is below the top two of 0.9, 0.8, 0.7, 0.6, 0.5 and itself.
        assert!(check(&p, MAX, &others, &[0.85, 0.0, 0.85]).is_none());
        assert!(check(&p, MAX, &others, &[0.85, 0.0, 0.75]).is_some());
    }

    #[test]
    fn asha_with_few_values_keeps_only_the_best() {
        let p = asha(0, 2);
        let others: [&[f64]; 2] = [&[0.5], &[0.6]];
        assert!(check(&p, MAX, &others, &[0.55]).is_some());
        assert_eq!(check(&p, MAX, &others, &[0.65]), None);
    }
}
