//! Tweak strategies: given the search space, the metric and what has been tried, propose the parameters
//! of the next iterations.
//!
//! Invariants every strategy keeps: a proposal holds a value of every dimension (see
//! [`Dimension::contains`]), never repeats a point of the history or of the pending ones, carries
//! parameters outside the space (the fixed `[params]`) unchanged, and is the same for the same
//! [`Search`] and `k` (randomness comes from [`rng::Rng`], seeded by the search).

mod domain;
mod edit;
mod gp;
mod grow;
mod point;
mod random;
pub mod replay;
pub mod rng;

use std::collections::BTreeMap;
use std::fmt;

use crate::core::config::{Dimension, Metric, Params, StrategyName, Tweak};
use crate::core::ids::IterationNo;
use crate::core::text;

pub use crate::core::config::same_value;
pub use edit::apply_edit;
pub use gp::Gp;
pub use grow::Grow;
pub use point::PointKey;
pub use random::Random;

/// One tried point as strategies see it: a finished iteration, a pruned one, a proposal the operator
/// rejected, or an observation carried over from an earlier commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried {
    pub params: Params,
    /// Final metric value; for a pruned iteration the last value it reported; `None` when the
    /// iteration failed without one or the point was rejected.
    pub value: Option<f64>,
    /// The iteration that ran the point; `None` for a point the operator rejected before it ran.
    /// Reasons name iterations by this number, never by a position in the history.
    pub iteration: Option<IterationNo>,
    /// Stopped early by pruning: `value` is a partial, lower-fidelity observation.
    pub pruned: bool,
    /// 1.0 for this run; 0 < w < 1 for observations carried over from an older commit.
    pub weight: f64,
    /// Where a carried-over observation comes from (`run 3 @ 1a2b3c4`); `None` for this run.
    pub origin: Option<String>,
    /// Training seconds the iteration took; for a pruned one, the seconds a full run would have
    /// taken when known. `None` when unknown. Lets a strategy try cheap points first.
    pub seconds: Option<f64>,
}

impl Tried {
    /// An observation of this run, not pruned.
    pub fn new(params: Params, value: Option<f64>, iteration: Option<IterationNo>) -> Self {
        Tried {
            params,
            value,
            iteration,
            pruned: false,
            weight: 1.0,
            origin: None,
            seconds: None,
        }
    }
}

/// Everything a strategy may look at to propose.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    pub space: &'a BTreeMap<String, Dimension>,
    pub metric: &'a Metric,
    /// The last iteration's parameters (fixed `[params]` included); proposals are built from it.
    pub current: &'a Params,
    /// Oldest first; carried-over observations first.
    pub history: &'a [Tried],
    /// Proposed and running, not finished (parallel trials).
    pub pending: &'a [Params],
    pub seed: u64,
}

/// The parameters of the next iteration and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The complete parameter set, fixed parameters included.
    pub params: Params,
    /// The dimensions whose value differs from the current parameters, in dimension order. Never empty.
    pub changes: Vec<Change>,
    /// One line for people: what was observed and what the strategy expects.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: String,
    /// `Null` when the parameter was not set before.
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// `filters 8→16`; strings are shown without quotes.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}→{}",
            self.name,
            text::param_value(&self.from),
            text::param_value(&self.to)
        )
    }
}

impl Proposal {
    /// The changes joined: `conv_layers 1→2, filters 8→16`.
    pub fn summary(&self) -> String {
        self.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A way of choosing the next parameters. Strategies may keep state between calls, but must work
/// from the [`Search`] alone too (a run resumed after a restart starts with a fresh strategy).
pub trait Strategy: Send {
    fn name(&self) -> &'static str;

    /// Up to `k` distinct proposals, none equal to a point in `history` or `pending`; empty when the
    /// strategy has nothing left to try. Deterministic for (`search`, `k`). A finite space smaller
    /// than the budget is enumerated to the end before the result is empty.
    fn propose(&mut self, search: &Search<'_>, k: usize) -> Vec<Proposal>;
}

/// The strategy `[tweak] strategy` names.
pub fn strategy_for(tweak: &Tweak) -> Box<dyn Strategy> {
    match tweak.strategy {
        StrategyName::Grow => Box::new(Grow),
        StrategyName::Random => Box::new(Random),
        StrategyName::Gp => Box::new(Gp),
    }
}

/// `k` proposals from a strategy that proposes one at a time: each one is added to the pending
/// points before the next is asked for, so the batch has no repeats and (for a model) each later
/// point knows where the earlier ones went.
pub(crate) fn one_by_one(
    search: &Search<'_>,
    k: usize,
    mut one: impl FnMut(&Search<'_>) -> Option<Proposal>,
) -> Vec<Proposal> {
    let mut out: Vec<Proposal> = Vec::new();
    let mut pending: Vec<Params> = search.pending.to_vec();
    for _ in 0..k {
        let s = Search {
            pending: &pending,
            ..*search
        };
        let Some(p) = one(&s) else { break };
        pending.push(p.params.clone());
        out.push(p);
    }
    out
}

#[cfg(test)]
pub(crate) fn same_params(a: &Params, b: &Params) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

/// The dimensions whose value differs between `from` and `to`, in dimension order.
pub(crate) fn changes(
    space: &BTreeMap<String, Dimension>,
    from: &Params,
    to: &Params,
) -> Vec<Change> {
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

/// A proposal moving `search.current` to the dimension values `point` (fixed parameters kept).
/// `None` when nothing would change (the point is the current one).
pub(crate) fn proposal_to(search: &Search<'_>, point: &Params, reason: String) -> Option<Proposal> {
    let mut params = search.current.clone();
    for (name, v) in point {
        params.insert(name.clone(), v.clone());
    }
    let changes = changes(search.space, search.current, &params);
    (!changes.is_empty()).then_some(Proposal {
        params,
        changes,
        reason,
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;
