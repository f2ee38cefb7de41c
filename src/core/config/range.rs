//! The values a metric can take. A value outside them is a broken report (a percentage printed where a
//! fraction was expected, a bug in the script), never a result: it is judged like NaN.

use serde::{Deserialize, Serialize};

use super::Metric;

/// `[metric] range = [lo, hi]`: the closed interval of valid values. Invariant (checked while
/// deserializing, so the error carries the value's span): both bounds finite and `lo < hi`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "[f64; 2]")]
pub struct MetricRange {
    pub lo: f64,
    pub hi: f64,
}

impl TryFrom<Vec<f64>> for MetricRange {
    type Error = String;

    fn try_from(v: Vec<f64>) -> Result<Self, String> {
        let [lo, hi] = v[..] else {
            return Err(format!(
                "`range` takes two numbers `[lo, hi]`, found {} of them",
                v.len()
            ));
        };
        if !lo.is_finite() || !hi.is_finite() {
            return Err(format!(
                "`range` bounds must be finite numbers, found [{lo}, {hi}]"
            ));
        }
        if lo >= hi {
            return Err(format!(
                "`range` needs its low bound below its high bound, found [{lo}, {hi}]"
            ));
        }
        Ok(MetricRange { lo, hi })
    }
}

impl From<MetricRange> for [f64; 2] {
    fn from(r: MetricRange) -> [f64; 2] {
        [r.lo, r.hi]
    }
}

impl MetricRange {
    pub fn contains(&self, value: f64) -> bool {
        value >= self.lo && value <= self.hi
    }
}

impl std::fmt::Display for MetricRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.lo, self.hi)
    }
}

/// Name tokens of metrics that are proportions: fractions in [0, 1], or percentages in [0, 100].
const BOUNDED: &[&str] = &[
    "accuracy",
    "acc",
    "precision",
    "recall",
    "f1",
    "f1score",
    "auc",
    "auroc",
    "roc",
    "iou",
    "miou",
    "jaccard",
    "dice",
    "specificity",
    "sensitivity",
];

/// Whether `name` is a known proportion: one of its tokens (split on anything but letters and
/// digits, case-insensitively) is a bounded metric's name, so `val_acc`, `ROC-AUC` and
/// `balanced_accuracy` all are.
fn is_bounded_name(name: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| BOUNDED.iter().any(|b| token.eq_ignore_ascii_case(b)))
}

impl Metric {
    /// The values this metric can take: the explicit `range`, else [0, 1] for a known proportion
    /// whose target is a fraction and [0, 100] when the target is above 1 (the user thinks in
    /// percent), else `None` (any finite value).
    pub fn valid_range(&self) -> Option<MetricRange> {
        if self.range.is_some() {
            return self.range;
        }
        if !is_bounded_name(&self.name) {
            return None;
        }
        let hi = if self.target > 1.0 { 100.0 } else { 1.0 };
        Some(MetricRange { lo: 0.0, hi })
    }

    /// True when `value` is a value this metric can take: finite and within [`Self::valid_range`].
    pub fn is_valid(&self, value: f64) -> bool {
        value.is_finite() && self.valid_range().is_none_or(|r| r.contains(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Direction;

    fn metric(name: &str, target: f64, range: Option<MetricRange>) -> Metric {
        Metric {
            name: name.into(),
            direction: Direction::Maximize,
            target,
            pattern: None,
            range,
            file: None,
        }
    }

    #[test]
    fn known_proportions_are_bounded_by_token() {
        for name in [
            "accuracy",
            "val_acc",
            "ROC-AUC",
            "balanced_accuracy",
            "F1",
            "test.recall",
        ] {
            assert_eq!(
                metric(name, 0.9, None).valid_range(),
                Some(MetricRange { lo: 0.0, hi: 1.0 }),
                "{name}"
            );
        }
        for name in ["loss", "val_loss", "accurate_loss", "perplexity", "r2"] {
            assert_eq!(metric(name, 0.9, None).valid_range(), None, "{name}");
        }
    }

    #[test]
    fn a_target_above_one_means_percent() {
        let m = metric("accuracy", 95.0, None);
        assert_eq!(m.valid_range(), Some(MetricRange { lo: 0.0, hi: 100.0 }));
        assert!(m.is_valid(99.0));
        assert!(!m.is_valid(100.5));
    }

    #[test]
    fn an_explicit_range_wins() {
        let m = metric("accuracy", 0.5, Some(MetricRange { lo: -1.0, hi: 1.0 }));
        assert!(m.is_valid(-0.5));
        assert!(!m.is_valid(1.5));
        assert!(!m.is_valid(f64::NAN));
        let unbounded = metric("loss", 0.1, None);
        assert!(unbounded.is_valid(-3.0) && !unbounded.is_valid(f64::INFINITY));
    }

    #[test]
    fn a_range_is_two_finite_ordered_numbers() {
        assert!(MetricRange::try_from(vec![0.0, 1.0]).is_ok());
        assert!(MetricRange::try_from(vec![1.0, 1.0]).is_err());
        assert!(MetricRange::try_from(vec![0.0]).is_err());
        assert!(MetricRange::try_from(vec![0.0, f64::INFINITY]).is_err());
    }
}
