//! Taking over a run left by a stopped mlops-tui.

use crate::core::config::Config;
use crate::core::ids::{ContainerId, IterationNo};
use crate::core::model::{IterStatus, RunStatus};
use crate::engine::event::Level;
use crate::engine::msg::{Effect, IterationPlan};
use crate::engine::state::{PipelineState, RunState, Stage, StageStatus};

use super::fx::Fx;
use super::iteration::exited;
use super::next::{continue_loop, end_run, fill, start_iteration};
use super::run::finish;
use super::text::model_path;

/// A restarted mlops-tui takes over a run its predecessor left: re-attach to the containers still there,
/// reconcile the iterations whose containers are gone, and carry the loop on. Never starts an
/// iteration twice: an iteration with a container is only ever re-attached.
pub(super) fn adopt(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunState,
    attach: Vec<(IterationNo, ContainerId)>,
) {
    let id = run.id;
    let Some(config) = run.config.clone() else {
        return;
    };
    state.stages = Default::default();
    for s in [Stage::Pull, Stage::Detect, Stage::Image] {
        fx.stage(state, s, StageStatus::Passed, "");
    }
    fx.stage(
        state,
        Stage::Monitor,
        StageStatus::Passed,
        &format!("adopted run {id}"),
    );
    let unfinished: Vec<(IterationNo, IterStatus)> = run
        .iterations
        .iter()
        .filter(|i| !i.status.is_final())
        .map(|i| (i.no, i.status))
        .collect();
    let commit = run.commit.short().to_string();
    state.run = Some(run);
    fx.event(state, Some(id), "monitor", Level::Info, format!(
        "resumed run {id} (commit {commit}) left by a stopped mlops-tui; {} container(s) to re-attach",
        attach.len()
    ));
    if unfinished.is_empty() {
        carry_on(state, fx, &config);
        return;
    }
    for (no, status) in unfinished {
        if !state
            .run
            .as_ref()
            .is_some_and(|r| r.status == RunStatus::Running)
        {
            return;
        }
        match attach.iter().find(|(n, _)| *n == no) {
            Some((_, cid)) => {
                if !reattach(state, fx, &config, no, cid) {
                    return;
                }
            }
            None if status == IterStatus::Pending => {
                // Recorded but never started: start it now, exactly once.
                let Some(r) = state.run.as_mut() else { return };
                let Some(pos) = r.iterations.iter().position(|i| i.no == no) else {
                    continue;
                };
                let it = r.iterations.remove(pos);
                start_iteration(state, fx, it.params, it.proposal_reason);
            }
            None => exited(
                state,
                fx,
                (id, no),
                None,
                Some("its container vanished while mlops-tui was down".into()),
            ),
        }
    }
    after_reattach(state, fx);
}

/// Once the containers are followed again: a run one of whose iterations had already reached the
/// target stops the others; otherwise free slots get new points.
fn after_reattach(state: &mut PipelineState, fx: &mut Fx) {
    let Some(r) = state.run.as_ref() else { return };
    if r.status != RunStatus::Running || r.ending.is_some() {
        return;
    }
    let winner = r
        .iterations
        .iter()
        .find(|i| i.status == IterStatus::Succeeded)
        .map(|i| i.no);
    match winner {
        Some(no) => {
            let reason = format!(
                "target reached at iteration {no} (best model: {})",
                model_path(state)
            );
            let why = format!("stopped: iteration {no} reached the target");
            end_run(state, fx, (RunStatus::Succeeded, reason), &why);
        }
        None => fill(state, fx),
    }
}

/// Every iteration of the adopted run was decided: finish it if the last one met the target,
/// otherwise go on as after any iteration.
fn carry_on(state: &mut PipelineState, fx: &mut Fx, config: &Config) {
    let met = state.run.as_ref().is_some_and(|r| {
        r.iterations
            .iter()
            .any(|i| i.status == IterStatus::Succeeded)
    });
    if !met {
        continue_loop(state, fx, config);
        return;
    }
    let path = model_path(state);
    let no = state
        .run
        .as_ref()
        .and_then(|r| r.best)
        .unwrap_or(IterationNo(0));
    finish(
        state,
        fx,
        RunStatus::Succeeded,
        format!("target reached at iteration {no} (best model: {path})"),
    );
}

/// Follows iteration `no`'s container `cid` again. Returns false when the run lacks what a worker
/// needs (its image or workspace), so nothing can be re-attached.
fn reattach(
    state: &mut PipelineState,
    fx: &mut Fx,
    config: &Config,
    no: IterationNo,
    cid: &ContainerId,
) -> bool {
    let Some(r) = state.run.as_mut() else {
        return false;
    };
    let (Some(image), Some(workspace)) = (r.image.clone(), r.workspace.clone()) else {
        return false;
    };
    let (run, commit) = (r.id, r.commit.id.clone());
    let Some(it) = r.iteration(no) else {
        return true;
    };
    // The workspace already exists: the patch only describes it.
    let patch = r.knobs.patch(&it.params).unwrap_or_default();
    let Some(it) = r.iteration_mut(no) else {
        return true;
    };
    it.container = Some(cid.clone());
    let plan = IterationPlan {
        engine: it.engine.clone(),
        commit,
        patch,
        change: String::new(),
        keep: None,
        run,
        no,
        params: it.params.clone(),
        image,
        workspace,
        config: config.clone(),
        proposal_reason: it.proposal_reason.clone(),
    };
    fx.training(state, no);
    let text = format!("re-attaching to container {cid}");
    fx.iteration_event(state, (run, no), "monitor", Level::Info, text);
    fx.push(Effect::AttachIteration {
        plan: Box::new(plan),
        id: cid.clone(),
    });
    true
}
