//! What the operator asks for: proposals (approve, reject, edit, apply mode), the loop (pause, stop,
//! target) and runs (trigger now, retry).

use crate::core::config::ApplyMode;
use crate::core::ids::IterationNo;
use crate::core::model::IterStatus;
use crate::core::tweak;
use crate::engine::event::Level;
use crate::engine::msg::{Effect, Operator};
use crate::engine::state::PipelineState;
use crate::engine::trigger::Trigger;

use super::fx::Fx;
use super::lookup::current_run;
use super::next::{apply_proposal, fill, start_iteration};
use super::run::request_run;
use super::text::{diff, mode_name};

pub(super) fn command(state: &mut PipelineState, fx: &mut Fx, op: Operator) {
    match op {
        Operator::Approve => approve(state, fx),
        Operator::Reject => reject(state, fx),
        Operator::Edit { name, raw } => edit(state, fx, &name, &raw),
        Operator::SetApply(mode) => set_apply(state, fx, mode),
        Operator::StopTraining => stop_training(state, fx),
        Operator::TriggerNow => fx.push(Effect::ReadHead),
        Operator::Retry => retry(state, fx),
        Operator::Pause(paused) => pause(state, fx, paused),
        Operator::SetTarget(target) => set_target(state, fx, target),
    }
}

fn approve(state: &mut PipelineState, fx: &mut Fx) {
    if let Some(p) = state.run.as_mut().and_then(|r| r.pending.take()) {
        apply_proposal(state, fx, p, "approved");
        fill(state, fx);
    }
}

/// Drops the waiting proposal; the strategy counts it as tried and proposes another point for the
/// same next iteration, still based on the last iteration that ran.
fn reject(state: &mut PipelineState, fx: &mut Fx) {
    let Some(r) = state.run.as_mut() else { return };
    let Some(p) = r.pending.take() else { return };
    r.rejected.push(p.params.clone());
    let run = r.id;
    let from = r.iterations.last().map(|i| i.no).unwrap_or(IterationNo(0));
    let tag = format!("tweak:{from}→{}", from.next());
    let text = format!(
        "proposal for iteration {} rejected: {}",
        from.next(),
        p.summary()
    );
    fx.event(state, Some(run), &tag, Level::Warn, text);
    fill(state, fx);
}

/// Sets one parameter of the waiting proposal, within the search space.
fn edit(state: &mut PipelineState, fx: &mut Fx, name: &str, raw: &str) {
    let Some(r) = state.run.as_mut() else { return };
    let (Some(p), Some(cfg)) = (r.pending.as_mut(), r.config.as_ref()) else {
        return;
    };
    let run = r.id;
    match tweak::apply_edit(&p.params, name, raw, &cfg.tweak.space) {
        Ok(params) => {
            let from = r
                .iterations
                .last()
                .map(|i| i.params.clone())
                .unwrap_or_default();
            p.changes = diff(&from, &params);
            p.params = params;
            p.reason = format!("{} (edited by the operator: {name} = {raw})", p.reason);
            let text = format!("proposal edited: {}", p.summary());
            fx.event(state, Some(run), "tweak", Level::Info, text);
        }
        Err(e) => fx.event(state, Some(run), "tweak", Level::Error, e),
    }
}

/// Switching to `auto` applies the waiting proposal at once.
fn set_apply(state: &mut PipelineState, fx: &mut Fx, mode: ApplyMode) {
    state.apply_override = Some(mode);
    fx.transient(state, "tweak", format!("apply mode: {}", mode_name(mode)));
    if mode == ApplyMode::Auto {
        if let Some(p) = state.run.as_mut().and_then(|r| r.pending.take()) {
            apply_proposal(state, fx, p, "auto-applied");
            fill(state, fx);
        }
    }
}

/// Asks the workers of the running iterations to stop their containers; each exit fails its
/// iteration.
fn stop_training(state: &PipelineState, fx: &mut Fx) {
    let Some(r) = &state.run else { return };
    let running = r
        .iterations
        .iter()
        .filter(|i| i.status == IterStatus::Running);
    for it in running {
        fx.push(Effect::StopContainer {
            run: r.id,
            no: it.no,
            reason: "stopped by the operator".into(),
        });
    }
}

/// Runs the last run's commit again, unless a run is in progress.
fn retry(state: &mut PipelineState, fx: &mut Fx) {
    let last = state.run.as_ref().map(|r| r.commit.clone());
    match last {
        Some(commit) if !state.busy() => request_run(state, fx, commit, Trigger::Retry),
        _ => fx.transient(
            state,
            "retry",
            "nothing to retry while a run is in progress".into(),
        ),
    }
}

/// Pausing keeps the next iteration for resume; resuming starts it.
fn pause(state: &mut PipelineState, fx: &mut Fx, paused: bool) {
    state.paused = paused;
    let text = if paused {
        "paused: no new iteration starts"
    } else {
        "resumed"
    };
    fx.transient(state, "loop", text.into());
    if !paused {
        if let Some((params, reason)) = state.deferred.take() {
            start_iteration(state, fx, params, reason);
            fill(state, fx);
        }
    }
}

/// The operator's target applies to the running loop and to later runs.
fn set_target(state: &mut PipelineState, fx: &mut Fx, target: f64) {
    if !target.is_finite() {
        fx.transient(state, "target", format!("{target} is not a usable target"));
        return;
    }
    state.target_override = Some(target);
    if let Some(cfg) = state.run.as_mut().and_then(|r| r.config.as_mut()) {
        cfg.metric.target = target;
    }
    let run = current_run(state);
    let text = format!("target set to {target} by the operator");
    fx.event(state, run, "target", Level::Info, text);
}
