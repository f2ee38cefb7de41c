//! Tweak strategies: given the search space, the metric and what has been tried, propose the parameters
//! of the next iteration.
//!
//! Invariants every strategy keeps: a proposal stays within the declared dimensions (ranges clamped to
//! `max`, list values taken from the list), never repeats a point already in the history, and carries
//! parameters outside the space (the fixed `[params]`) unchanged.

mod edit;
mod grow;

use std::collections::BTreeMap;
use std::fmt;

use crate::core::config::{Dimension, Metric, Params, StrategyName};
use crate::core::ids::IterationNo;
use crate::core::text;

pub use edit::apply_edit;
pub use grow::Grow;

/// One tried point as strategies see it: a finished iteration, or a proposal the operator rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried {
    pub params: Params,
    /// The final metric value; `None` when the iteration failed without one.
    pub value: Option<f64>,
    /// The iteration that ran the point; `None` for a point the operator rejected before it ran.
    /// Reasons name iterations by this number, never by a position in the history.
    pub iteration: Option<IterationNo>,
}

/// The parameters of the next iteration and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The complete parameter set, fixed parameters included.
    pub params: Params,
    /// The dimensions whose value differs from the current parameters, in dimension order. Never empty.
    pub changes: Vec<Change>,
    /// One line for people: what was observed and what the strategy does about it.
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
/// from `history` alone too (a run resumed after a restart starts with a fresh strategy).
pub trait Strategy: Send {
    fn name(&self) -> &'static str;

    /// The next point to try from `current`, or `None` when the strategy has nothing left to try.
    /// `history` holds every iteration of the run so far, oldest first.
    fn propose(
        &mut self,
        space: &BTreeMap<String, Dimension>,
        metric: &Metric,
        current: &Params,
        history: &[Tried],
    ) -> Option<Proposal>;
}

pub fn strategy_for(name: StrategyName) -> Box<dyn Strategy> {
    match name {
        StrategyName::Grow => Box::new(Grow),
    }
}

/// JSON equality, except that numbers compare by value (`16` equals `16.0`), so that a point edited
/// by hand or written by another version still counts as tried.
pub(crate) fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub(crate) fn same_params(a: &Params, b: &Params) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

#[cfg(test)]
mod tests;
