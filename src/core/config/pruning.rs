//! `[tweak.pruning]`: when an iteration whose per-epoch metric lags behind the others is stopped
//! early (see [`crate::core::prune`]).

use serde::{Deserialize, Serialize};

/// The rule that judges an unfinished iteration against the finished ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneRule {
    /// Never stop an iteration early.
    Off,
    /// Median stopping rule: stop when the best value so far is worse than the median of the other
    /// iterations at the same epoch.
    #[default]
    Median,
    /// Asynchronous successive halving: at rung epochs only, keep the top third.
    Asha,
}

impl PruneRule {
    /// The name as written in `mlops.toml`.
    pub fn name(self) -> &'static str {
        match self {
            PruneRule::Off => "off",
            PruneRule::Median => "median",
            PruneRule::Asha => "asha",
        }
    }
}

/// Invariant (checked on load): `min_trials >= 1`, so a verdict always has a reference to compare with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pruning {
    pub rule: PruneRule,
    /// Epochs never pruned: early epochs say little about the final value.
    pub warmup: u32,
    /// Finished iterations that must have reached an epoch before an iteration is judged at it.
    #[serde(deserialize_with = "at_least_one")]
    pub min_trials: usize,
}

impl Default for Pruning {
    fn default() -> Self {
        Pruning {
            rule: PruneRule::Median,
            warmup: 2,
            min_trials: 3,
        }
    }
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use serde::de::Error;
    let n = i64::deserialize(d)?;
    match usize::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(D::Error::custom(format!(
            "`min_trials` must be at least 1 (finished iterations to compare with), found {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pruning, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("").unwrap(), Pruning::default());
        let p = parse("rule = \"asha\"\nwarmup = 0\nmin_trials = 5").unwrap();
        assert_eq!(
            p,
            Pruning {
                rule: PruneRule::Asha,
                warmup: 0,
                min_trials: 5
            }
        );
        assert_eq!(parse("rule = \"off\"").unwrap().rule, PruneRule::Off);
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("min_trials = 0").unwrap_err();
        assert!(e.contains("`min_trials` must be at least 1"), "{e}");
        let e = parse("rule = \"hyperband\"").unwrap_err();
        assert!(e.contains("hyperband"), "{e}");
        let e = parse("warmups = 2").unwrap_err();
        assert!(e.contains("warmups"), "{e}");
    }
}
