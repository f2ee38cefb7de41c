//! The grow strategy: what people do by hand when a model underfits. Every dimension that has not
//! reached its end moves one step at once (more layers, more filters, more epochs, the next `k`).

use std::collections::BTreeMap;

use super::point::Seen;
use super::{Change, Proposal, Search, Strategy, Tried, changes, one_by_one, same_value};
use crate::core::config::{Dimension, Direction, Metric, Params};
use crate::core::text::value_significant;

/// Upper bound on growth rounds when skipping tried points; a space needing more is treated as
/// exhausted rather than searched forever.
const MAX_ROUNDS: usize = 10_000;

/// Steps a number dimension without a grid takes from `min` to `max`.
const CONTINUOUS_STEPS: f64 = 8.0;

/// Stateless: the proposal depends only on the search, so a resumed run proposes the same point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grow;

impl Strategy for Grow {
    fn name(&self) -> &'static str {
        "grow"
    }

    /// Grows `current` by one step in every dimension not at its end; if that point was already tried
    /// (or is pending), grows again from there. A batch of `k` is `k` successive growths. Empty when
    /// no dimension can move or every reachable point was tried.
    fn propose(&mut self, search: &Search<'_>, k: usize) -> Vec<Proposal> {
        one_by_one(search, k, grow_one)
    }
}

fn grow_one(search: &Search<'_>) -> Option<Proposal> {
    let seen = Seen::of(&Search {
        current: &Params::new(),
        ..*search
    });
    let mut point = search.current.clone();
    // Each round past the first skips one point that was already tried.
    for skipped in 0..MAX_ROUNDS {
        if !grow_once(search.space, &mut point) {
            return None;
        }
        if !seen.contains(search.space, &point) {
            let changes = changes(search.space, search.current, &point);
            let reason = reason(search.metric, search.history, &changes, skipped);
            return Some(Proposal {
                params: point,
                changes,
                reason,
            });
        }
    }
    None
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
/// A missing or unusable value re-enters the dimension at its start. Lists and choices move to the
/// next element; numbers to the next value of their grid, or (continuous) one eighth of the way
/// from `min` to `max` on their scale.
fn next_value(dim: &Dimension, value: Option<&serde_json::Value>) -> Option<serde_json::Value> {
    match dim {
        Dimension::Range { integer, .. } => {
            let Some(v) = value.and_then(|v| v.as_f64()).filter(|v| v.is_finite()) else {
                return Some(dim.start());
            };
            dim.range_next(v)
                .map(|n| crate::core::config::number(n, *integer))
        }
        Dimension::Values(values) | Dimension::Choices(values) => match value {
            Some(v) => match values.iter().position(|x| same_value(x, v)) {
                Some(i) => values.get(i + 1).cloned(),
                None => values.first().cloned(),
            },
            None => values.first().cloned(),
        },
        Dimension::Number { .. } => {
            let Some(v) = value.and_then(|v| v.as_f64()).filter(|v| v.is_finite()) else {
                return Some(dim.start());
            };
            next_number(dim, v)
        }
    }
}

fn next_number(dim: &Dimension, v: f64) -> Option<serde_json::Value> {
    if let Some(grid) = dim.grid() {
        return grid.into_iter().find(|g| g.as_f64().is_some_and(|g| g > v));
    }
    let scale = dim.scale()?;
    let u = scale.unit(v) + 1.0 / CONTINUOUS_STEPS;
    let next = dim.snap(scale.at(u.min(1.0)));
    next.as_f64().is_some_and(|n| n > v).then_some(next)
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
