//! GPUs in placement: a trial placed on an engine whose devices are known takes free ones (it only
//! gets there when enough are free, see `PipelineState::free_slots`), its container asks for exactly
//! those, and the engines' devices read by the probe are recorded.

use crate::core::gpu::{self, GpuRequest};
use crate::core::ids::{IterationNo, RunId};
use crate::engine::event::Level;
use crate::engine::msg::IterationPlan;
use crate::engine::state::PipelineState;

use super::fx::Fx;
use super::lookup::is_current;

/// Iteration `no`, just placed on engine `engine`, takes the devices it needs there and says which;
/// nothing when GPUs are not counted on that engine.
pub(super) fn hold(state: &mut PipelineState, fx: &mut Fx, (run, no): (RunId, IterationNo)) {
    let Some(engine) = state
        .run
        .as_ref()
        .and_then(|r| r.iteration(no))
        .and_then(|i| i.engine.clone())
    else {
        return;
    };
    // What it held elsewhere (an engine it was moved from) is given back first.
    if let Some(it) = state.run.as_mut().and_then(|r| r.iteration_mut(no)) {
        it.gpus.clear();
    }
    let devices = state.pick_gpus(&engine);
    if devices.is_empty() {
        return;
    }
    let text = format!("iteration {no} holds {} on {engine}", gpu::label(&devices));
    if let Some(it) = state.run.as_mut().and_then(|r| r.iteration_mut(no)) {
        it.gpus = devices;
    }
    fx.iteration_event(state, (run, no), "gpu", Level::Info, text);
}

/// The plan's container asks for the devices its iteration holds, not for any `count` of them: the
/// engine would give every trial the first ones.
pub(super) fn pin(state: &PipelineState, plan: &mut IterationPlan) {
    let Some(it) = state
        .run
        .as_ref()
        .filter(|r| r.id == plan.run)
        .and_then(|r| r.iteration(plan.no))
    else {
        return;
    };
    if !it.gpus.is_empty() {
        plan.config.resources.gpus = Some(GpuRequest::Devices(it.gpus.clone()));
    }
}

/// The devices each engine gave the probe of run `run`: engines whose GPUs were not declared are
/// counted from now on. An engine that could not say which keeps its GPUs uncounted.
pub(super) fn found(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    engines: Vec<(String, Vec<String>)>,
) {
    if !is_current(state, run) {
        return;
    }
    for (name, devices) in engines {
        if devices.is_empty() || state.engine_gpus.contains_key(&name) {
            continue;
        }
        let text = format!(
            "engine {name}: {} found ({}); each trial holds its own",
            match devices.len() {
                1 => "1 GPU".to_string(),
                n => format!("{n} GPUs"),
            },
            devices.join(", ")
        );
        state.engine_gpus.insert(name, devices);
        fx.event(state, Some(run), "gpu", Level::Info, text);
    }
}

/// The latest sample of iteration `no`'s GPUs; one of another run or an iteration that ended is
/// dropped.
pub(super) fn usage(
    state: &mut PipelineState,
    run: RunId,
    no: IterationNo,
    samples: Vec<crate::core::model::GpuSample>,
) {
    if !is_current(state, run) {
        return;
    }
    if let Some(it) = state.run.as_mut().and_then(|r| r.iteration_mut(no))
        && !it.status.is_final()
    {
        it.gpu_usage = samples;
    }
}
