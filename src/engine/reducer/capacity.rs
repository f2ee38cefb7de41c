//! What each engine holds: its slots capped, for the run being prepared, to the containers of the
//! run's `[resources]` its CPUs and memory hold (`[budget] parallel = 1000000` on a 2-CPU engine
//! trains 2 at once, and says so).

use std::collections::BTreeMap;

use crate::core::config::{EngineLimits, Resources, trials_that_fit};
use crate::core::ids::RunId;
use crate::engine::event::Level;
use crate::engine::state::PipelineState;

use super::fx::Fx;
use super::lookup::is_current;

/// The engines' CPUs and memory, read while run `run` was prepared.
pub(super) fn limits_read(
    state: &mut PipelineState,
    run: RunId,
    limits: Vec<(String, EngineLimits)>,
) {
    if is_current(state, run) {
        state.engine_limits = limits.into_iter().collect::<BTreeMap<_, _>>();
    }
}

/// Sets each engine's slots for a run of `parallel` trials of `resources`: what it was given (the
/// implicit local engine: `parallel`), capped to what its CPUs and memory hold; an engine that did
/// not answer keeps what it was given. Each cap is said once, with its reason. Invariant: an engine
/// never gets more slots than it was given.
pub(super) fn cap_slots(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    parallel: u32,
    resources: &Resources,
) {
    let mut said = Vec::new();
    for e in &mut state.engines {
        let given = if state.slots_follow_parallel {
            parallel
        } else {
            state
                .configured_slots
                .get(&e.name)
                .copied()
                .unwrap_or(e.slots)
        };
        let fit = state
            .engine_limits
            .get(&e.name)
            .and_then(|l| trials_that_fit(resources, *l));
        e.slots = match fit {
            Some((n, why)) if n < given => {
                let n = n.max(u32::from(state.slots_follow_parallel));
                said.push(if state.slots_follow_parallel {
                    format!(
                        "parallel = {given} capped to {n}: engine {} has {why}",
                        e.name
                    )
                } else {
                    format!(
                        "engine {}: slots = {given} capped to {n}: it has {why}",
                        e.name
                    )
                });
                n
            }
            _ => given,
        };
    }
    for text in said {
        fx.event(state, Some(run), "engines", Level::Warn, text);
    }
}
