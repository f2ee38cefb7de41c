//! A run's life: requested (started, queued or kept waiting for Docker), created, ended; and what the
//! triggers report on the way.

use crate::core::ids::RunId;
use crate::core::model::{CommitInfo, RunStatus};
use crate::engine::event::Level;
use crate::engine::msg::Effect;
use crate::engine::state::{PipelineState, RunState, Stage, StageStatus};
use crate::engine::trigger::Trigger;

use super::fx::Fx;
use super::lookup::current_run;
use super::text::final_notification;

/// A trigger asks for a run on `commit`: start it, queue it behind the busy run, or keep it until the
/// Docker engine answers.
pub(super) fn request_run(
    state: &mut PipelineState,
    fx: &mut Fx,
    commit: CommitInfo,
    trigger: Trigger,
) {
    let same_as_running =
        state.busy() && state.run.as_ref().is_some_and(|r| r.commit.id == commit.id);
    if same_as_running && trigger.by_watcher() {
        // The watcher seeing the commit of an adopted run: it is already being trained.
        return;
    }
    if state.docker.up == Some(false) && !state.busy() {
        // Docker down is a state: the run waits for the engine instead of failing at once.
        let text = format!("commit {} waits for the engine", commit.short());
        state.queued.clear();
        state.queued.push_back((commit, trigger));
        fx.event(state, None, "pull", Level::Warn, text);
    } else if state.busy() {
        queue(state, fx, commit, trigger);
    } else {
        state.starting = true;
        state.stages = Default::default();
        state.stage_mut(Stage::Monitor).status = StageStatus::Skipped;
        fx.stage(state, Stage::Pull, StageStatus::Running, "");
        fx.push(Effect::CreateRun { commit, trigger });
    }
}

/// Keeps `commit` for when the busy run ends. Unless every commit is to run, it supersedes the commits
/// already waiting, which are recorded as skipped.
fn queue(state: &mut PipelineState, fx: &mut Fx, commit: CommitInfo, trigger: Trigger) {
    if !state.queue_all {
        for (old, _) in std::mem::take(&mut state.queued) {
            let text = format!(
                "commit {} skipped: superseded by {} while a run was busy",
                old.short(),
                commit.short()
            );
            fx.event(state, None, "pull", Level::Warn, text.clone());
            fx.push(Effect::SkipCommit {
                commit: old,
                reason: text,
            });
        }
    }
    let text = format!(
        "commit {} queued until the current run ends",
        commit.short()
    );
    state.queued.push_back((commit, trigger));
    fx.event(state, None, "pull", Level::Info, text);
}

/// Starts the oldest waiting request, if any.
pub(super) fn start_queued(state: &mut PipelineState, fx: &mut Fx) {
    if let Some((commit, trigger)) = state.queued.pop_front() {
        request_run(state, fx, commit, trigger);
    }
}

/// The operator's trigger read the branch's head: run it, or say why there is nothing to run.
pub(super) fn head_read(
    state: &mut PipelineState,
    fx: &mut Fx,
    head: Result<CommitInfo, crate::engine::error::HeadError>,
) {
    match head {
        Ok(commit) => request_run(state, fx, commit, Trigger::Operator),
        Err(e) => {
            let run = current_run(state);
            let text = format!("cannot read the branch: {e}");
            fx.event(state, run, "pull", Level::Error, text);
        }
    }
}

/// The trigger of a `--once` run could not produce its commit (it has already said why): the engine
/// ends with that failure.
pub(super) fn trigger_failed(fx: &mut Fx, error: String) {
    fx.push(Effect::Abandon { reason: error });
}

/// A worker's remark for people.
pub(super) fn notice(
    state: &mut PipelineState,
    fx: &mut Fx,
    tag: &str,
    text: String,
    level: Level,
) {
    let run = current_run(state);
    fx.event(state, run, tag, level, text);
}

/// The store allocated the run: it becomes the current run and preparation starts.
pub(super) fn run_created(state: &mut PipelineState, fx: &mut Fx, run: RunId, commit: CommitInfo) {
    state.starting = false;
    let who = if commit.author.is_empty() {
        String::new()
    } else {
        format!(" by {}", commit.author)
    };
    let text = if commit.is_working_tree() {
        format!("run {run}: {} (uncommitted files)", state.project.display())
    } else {
        format!(
            "run {run}: commit {} \"{}\"{who} on {}",
            commit.short(),
            commit.summary,
            commit.branch
        )
    };
    state.run = Some(RunState::new(run, commit.clone()));
    // The Pull stage shows the commit that started the run: hash, author, message.
    let detail = if commit.is_working_tree() {
        "working tree".to_string()
    } else {
        format!("{} {}{who}", commit.short(), commit.summary)
    };
    state.stage_mut(Stage::Pull).detail = detail;
    fx.event(state, Some(run), "pull", Level::Info, text);
    let warm = !state.cold && !commit.is_working_tree();
    fx.push(Effect::Prepare { run, commit, warm });
}

/// Ends the current run: record it, tell people, and start what waited for it.
pub(super) fn finish(state: &mut PipelineState, fx: &mut Fx, status: RunStatus, reason: String) {
    let Some(r) = state.run.as_mut() else { return };
    r.status = status;
    r.reason = Some(reason.clone());
    r.pending = None;
    let run = r.id;
    state.finished_runs += 1;
    if let Some(n) = final_notification(state, status) {
        fx.stage(state, Stage::Notify, StageStatus::Running, "sending");
        fx.push(Effect::Notify(Box::new(n)));
    } else {
        fx.stage(state, Stage::Notify, StageStatus::Skipped, "");
    }
    let level = if status == RunStatus::Succeeded {
        Level::Good
    } else {
        Level::Error
    };
    fx.event(state, Some(run), "done", level, reason.clone());
    fx.push(Effect::FinishRun {
        run,
        status,
        reason,
    });
    start_queued(state, fx);
}
