//! The grow strategy: what people do by hand when a model underfits. Every dimension that has not
//! reached its end moves one step at once (more layers, more filters, more epochs, the next `k`).

use std::collections::BTreeMap;

use super::{Change, Proposal, Strategy, Tried, same_params, same_value};
use crate::core::config::{Dimension, Direction, Metric, Params, number};
use crate::core::text::value_significant;

/// Upper bound on growth rounds when skipping tried points; a space needing more is treated as
/// exhausted rather than searched forever.
const MAX_ROUNDS: usize = 10_000;

/// Stateless: the proposal depends only on the arguments, so a resumed run proposes the same point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grow;

impl Strategy for Grow {
    fn name(&self) -> &'static str {
        "grow"
    }

    /// Grows `current` by one step in every dimension not at its end; if that point was already tried,
    /// grows again from there. `None` when no dimension can move or every reachable point was tried.
    fn propose(
        &mut self,
        space: &BTreeMap<String, Dimension>,
        metric: &Metric,
        current: &Params,
        history: &[Tried],
    ) -> Option<Proposal> {
        let mut point = current.clone();
        // Each round past the first skips one point that was already tried.
        for skipped in 0..MAX_ROUNDS {
            if !grow_once(space, &mut point) {
                return None;
            }
            if !history.iter().any(|t| same_params(&t.params, &point)) {
                let changes = changes(space, current, &point);
                let reason = reason(metric, history, &changes, skipped);
                return Some(Proposal {
                    params: point,
                    changes,
                    reason,
                });
            }
        }
        None
    }
}

/// Moves every dimension of `point` that can move by one step; returns whether any moved.
fn grow_once(space: &BTreeMap<String, Dimension>, point: &mut Params) -> bool {
    let mut moved = false;
    for (name, dim) in space {
        if let Some(next) = next_value(dim, point.get(name)) {
            moved |= point.get(name).is_none_or(|old| !same_value(old, &next));
            point.insert(name.clone(), next);
        }
    }
    moved
}

/// The value one step after `value` in `dim`, or `None` when `value` is at the dimension's end.
/// A missing or unusable value re-enters the dimension at its start.
fn next_value(dim: &Dimension, value: Option<&serde_json::Value>) -> Option<serde_json::Value> {
    match dim {
        Dimension::Range {
            start,
            max,
            step,
            factor,
            integer,
        } => {
            let Some(v) = value.and_then(|v| v.as_f64()).filter(|v| v.is_finite()) else {
                return Some(number(*start, *integer));
            };
            if v >= *max {
                return None;
            }
            let mut next = match (step, factor) {
                (Some(s), _) => v + s,
                (None, Some(f)) => v * f,
                (None, None) => return None,
            };
            if *integer {
                next = next.round();
                if next <= v {
                    // A small factor on a small integer (2 × 1.2) would otherwise never move.
                    next = v.floor() + 1.0;
                }
            } else {
                next = tidy(next);
            }
            next = next.min(*max);
            (next > v).then(|| number(next, *integer))
        }
        Dimension::Values(values) => match value {
            Some(v) => match values.iter().position(|x| same_value(x, v)) {
                Some(i) => values.get(i + 1).cloned(),
                None => values.first().cloned(),
            },
            None => values.first().cloned(),
        },
    }
}

/// Rounds to 10 significant digits, so that `0.1 + 0.2` is proposed as `0.3`, not
/// `0.30000000000000004`, while keeping every digit a person would write in a config.
pub(crate) fn tidy(x: f64) -> f64 {
    format!("{x:.9e}").parse().unwrap_or(x)
}

/// The dimensions whose value differs between `from` and `to`, in dimension order.
fn changes(space: &BTreeMap<String, Dimension>, from: &Params, to: &Params) -> Vec<Change> {
    space
        .keys()
        .filter_map(|name| {
            let old = from.get(name).cloned().unwrap_or(serde_json::Value::Null);
            let new = to.get(name)?;
            (!same_value(&old, new)).then(|| Change {
                name: name.clone(),
                from: old,
                to: new.clone(),
            })
        })
        .collect()
}

/// Names the last iteration that ran (rejected points in the history are not iterations).
fn reason(metric: &Metric, history: &[Tried], changes: &[Change], skipped: usize) -> String {
    let summary = changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let name = &metric.name;
    let target = value_significant(metric.target);
    let last = history
        .iter()
        .rev()
        .find_map(|t| t.iteration.map(|n| (n, t.value)));
    let mut text = match last {
        None => format!("no iteration finished yet: grow capacity ({summary})"),
        Some((n, None)) => format!("iteration {n} failed; growing from its parameters ({summary})"),
        Some((n, Some(v))) if !v.is_finite() => format!(
            "{name} was {} after iteration {n}: grow capacity ({summary})",
            value_significant(v)
        ),
        Some((n, Some(v))) => {
            let relation = if metric.meets_target(v) {
                "meets".to_string()
            } else {
                match metric.direction {
                    Direction::Maximize => "<".to_string(),
                    Direction::Minimize => ">".to_string(),
                }
            };
            format!(
                "{name} {} {relation} target {target} after iteration {n}: grow capacity ({summary})",
                value_significant(v)
            )
        }
    };
    if skipped > 0 {
        let points = if skipped == 1 { "point" } else { "points" };
        text.push_str(&format!("; skipped {skipped} already-tried {points}"));
    }
    text
}
