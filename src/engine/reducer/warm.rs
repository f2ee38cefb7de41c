//! Warm start: a run on a new commit of the branch begins where earlier runs left off. Their
//! iterations seed the strategy (as down-weighted observations, see `next::tried`) and the best of
//! them is the first point trained, when today's search space still holds it.

use crate::core::config::{Config, Dimension, Params};
use crate::core::ids::RunId;
use crate::core::text;
use crate::engine::state::{Carried, PipelineState, RunState};

use super::lookup::run_mut;

/// The store's answer: what earlier runs tried, oldest first.
pub(super) fn carried(state: &mut PipelineState, run: RunId, observations: Vec<Carried>) {
    if let Some(r) = run_mut(state, run) {
        r.carried = observations;
    }
}

/// The first iteration's parameters and the reason for them: the best carried-over point when
/// there is one and today's space holds each of its values, else the configuration's start.
pub(super) fn first_point(
    r: &RunState,
    config: &Config,
    start: Params,
) -> (Params, Option<String>) {
    let Some(best) = best_carried(&r.carried, config) else {
        return (start, None);
    };
    let value = best.value.unwrap_or(f64::NAN);
    let what = format!(
        "best of {} ({} {})",
        best.origin,
        config.metric.name,
        text::value_short(value)
    );
    match within(&config.tweak.space, &best.params, start.clone()) {
        Some(params) => (params, Some(format!("warm start: {what}"))),
        None => (
            start,
            Some(format!(
                "warm start: {what} lies outside today's search space; starting from the configured start"
            )),
        ),
    }
}

/// The carried-over point with the best completed value (pruned and failed ones never count); the
/// newest wins a tie.
fn best_carried<'a>(carried: &'a [Carried], config: &Config) -> Option<&'a Carried> {
    let metric = &config.metric;
    carried
        .iter()
        .filter(|c| !c.pruned)
        .filter_map(|c| c.value.filter(|v| metric.is_valid(*v)).map(|v| (c, v)))
        .fold(None, |best: Option<(&Carried, f64)>, (c, v)| match best {
            Some((_, b)) if metric.better(b, v) => best,
            _ => Some((c, v)),
        })
        .map(|(c, _)| c)
}

/// `start` with each dimension set to `earlier`'s value; `None` when a dimension is missing from
/// `earlier` or its value is outside today's space.
fn within(
    space: &std::collections::BTreeMap<String, Dimension>,
    earlier: &Params,
    mut start: Params,
) -> Option<Params> {
    for (name, dim) in space {
        let v = earlier.get(name)?;
        if !dim.contains(v) {
            return None;
        }
        start.insert(name.clone(), v.clone());
    }
    Some(start)
}
