//! The one place pipeline state changes: `update(&mut state, msg, now) -> effects`.
//!
//! Pure: no I/O, no clocks (the caller passes `now_ms`), no async. Every decision of the loop (what an
//! exit means, whether the target is met, what to try next, when to stop) is made here, so it can be
//! tested by feeding messages.

use crate::adapters::backend::ExitStatus;
use crate::adapters::notify::{BudgetSpent, Notification, TargetReached};
use crate::adapters::store::{IterStatus, RunStatus};
use crate::core::config::{ApplyMode, Config, Params};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::tweak::{self, Proposal, Tried};

use super::msg::{Effect, EventLine, IterationPlan, Level, Msg};
use super::state::{EVENT_CAP, IterState, LOG_TAIL, PipelineState, RunState, Stage, StageStatus};

/// Log lines quoted in a failed iteration's reason.
const REASON_TAIL: usize = 5;

mod adopt;
mod iteration;
mod text;

use adopt::adopt;
use iteration::{apply_proposal, continue_loop, finish, on_exit, propose_next, start_iteration};
pub use text::config;
use text::{
    describe_death, diff, final_notification, first_line, mode_name, model_path, notify,
    signal_name, stage_tag,
};

pub fn update(state: &mut PipelineState, msg: Msg, now: i64) -> Vec<Effect> {
    let mut fx = Fx {
        out: Vec::new(),
        now,
    };
    match msg {
        Msg::RunRequested { commit, trigger } => {
            let same_as_running =
                state.busy() && state.run.as_ref().is_some_and(|r| r.commit.id == commit.id);
            if same_as_running && (trigger == "start" || trigger == "commit") {
                // The watcher seeing the commit of an adopted run: it is already being trained.
                return fx.out;
            }
            if state.docker == Some(false) && !state.busy() {
                // Docker down is a state: the run waits for the engine instead of failing at once.
                let text = format!("commit {} waits for the Docker engine", commit.short());
                state.queued.clear();
                state.queued.push_back((commit, trigger));
                fx.event(state, None, None, "pull", Level::Warn, text);
                return fx.out;
            }
            if state.busy() {
                if !state.queue_all {
                    // Coalesce: only the newest waiting commit will run; the others are recorded as skipped.
                    for (old, _) in std::mem::take(&mut state.queued) {
                        let text = format!(
                            "commit {} skipped: superseded by {} while a run was busy",
                            old.short(),
                            commit.short()
                        );
                        fx.event(state, None, None, "pull", Level::Warn, text.clone());
                        fx.out.push(Effect::SkipCommit {
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
                fx.event(state, None, None, "pull", Level::Info, text);
            } else {
                state.starting = true;
                state.stages = Default::default();
                state.stage_mut(Stage::Monitor).status = StageStatus::Skipped;
                fx.stage(state, Stage::Pull, StageStatus::Running, "");
                fx.out.push(Effect::CreateRun { commit, trigger });
            }
        }
        Msg::RunCreated { run, commit } => {
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
            fx.event(state, Some(run), None, "pull", Level::Info, text);
            fx.out.push(Effect::Prepare { run, commit });
        }
        Msg::Prepared {
            run,
            config,
            workspace,
            image_reason,
            image,
        } => {
            let target_override = state.target_override;
            let Some(r) = run_mut(state, run) else {
                return fx.out;
            };
            let mut config = *config;
            if let Some(t) = target_override {
                config.metric.target = t;
            }
            r.config = Some(config);
            r.workspace = Some(workspace);
            r.image_reason = Some(image_reason.clone());
            fx.stage(state, Stage::Pull, StageStatus::Passed, "");
            fx.stage(state, Stage::Detect, StageStatus::Passed, &image);
            fx.event(state, Some(run), None, "detect", Level::Info, image_reason);
            fx.stage(state, Stage::Image, StageStatus::Running, &image);
            fx.out.push(Effect::PrepareImage { run, image });
        }
        Msg::StageFailed { run, stage, error } => {
            if !is_current(state, run) {
                return fx.out;
            }
            for s in Stage::ALL.iter().take_while(|s| **s != stage) {
                if state.stage(*s).status == StageStatus::Running {
                    fx.stage(state, *s, StageStatus::Passed, "");
                }
            }
            fx.stage(state, stage, StageStatus::Failed, &first_line(&error));
            let tag = stage_tag(stage);
            fx.event(state, Some(run), None, tag, Level::Error, error.clone());
            finish(
                state,
                &mut fx,
                RunStatus::Failed,
                format!("{} failed: {error}", stage.label()),
            );
        }
        Msg::ImageProgress { run, line } => {
            if is_current(state, run) {
                state.stage_mut(Stage::Image).detail = first_line(&line);
                fx.transient(state, "image", line);
            }
        }
        Msg::ImageReady { run, image } => {
            let Some(r) = run_mut(state, run) else {
                return fx.out;
            };
            r.image = Some(image.clone());
            let Some(config) = r.config.clone() else {
                return fx.out;
            };
            fx.stage(state, Stage::Image, StageStatus::Passed, &image);
            fx.event(
                state,
                Some(run),
                None,
                "image",
                Level::Info,
                format!("{image} ready"),
            );
            start_iteration(state, &mut fx, config.starting_params(), None);
        }
        Msg::ContainerStarted {
            run,
            no,
            id,
            workdir,
        } => {
            let Some(it) = iter_mut(state, run, no) else {
                return fx.out;
            };
            it.status = IterStatus::Running;
            it.started_ms.get_or_insert(now);
            it.life_started_ms = Some(now);
            it.container = Some(id.clone());
            it.workdir = Some(workdir);
            let params = crate::core::text::params(&it.params);
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Running,
                &format!("iteration {no}"),
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("train:{no}"),
                Level::Info,
                format!("container {id} started with {params}"),
            );
            fx.out.push(Effect::SaveIteration { run, no });
        }
        Msg::Logs { run, no, lines } => {
            if let Some(it) = iter_mut(state, run, no) {
                for l in lines {
                    if it.log_tail.len() == LOG_TAIL {
                        it.log_tail.pop_front();
                    }
                    it.log_tail.push_back(l.text);
                }
            }
        }
        Msg::Metric { run, no, obs } => {
            if let Some(it) = iter_mut(state, run, no) {
                // A revived script repeats the epoch it was in when it died: the new value replaces it.
                match obs
                    .epoch
                    .and_then(|e| it.points.iter().position(|(pe, _)| *pe == Some(e)))
                {
                    Some(i) => it.points[i].1 = obs.value,
                    None => it.points.push((obs.epoch, obs.value)),
                }
                it.final_value = Some(obs.value);
                if obs.epochs.is_some() {
                    it.epochs = obs.epochs;
                }
                fx.out.push(Effect::SaveMetric { run, no, obs });
            }
        }
        Msg::Docker { connected, detail } => {
            let was = state.docker.replace(connected);
            if connected && !state.busy() {
                if let Some((commit, trigger)) = state.queued.pop_front() {
                    let mut more = update(state, Msg::RunRequested { commit, trigger }, now);
                    fx.out.append(&mut more);
                }
            }
            state.docker_detail = detail.clone();
            if was.is_some() && was != Some(connected) {
                let (level, text) = if connected {
                    (
                        Level::Good,
                        format!("Docker engine reachable again ({detail})"),
                    )
                } else {
                    (
                        Level::Error,
                        format!("Docker engine unreachable: {detail}; retrying"),
                    )
                };
                fx.event(
                    state,
                    state.run.as_ref().map(|r| r.id),
                    None,
                    "monitor",
                    level,
                    text,
                );
            } else if was.is_none() && !connected {
                fx.event(
                    state,
                    None,
                    None,
                    "monitor",
                    Level::Error,
                    format!("Docker engine unreachable: {detail}; retrying"),
                );
            }
        }
        Msg::ContainerEvent(ev) => {
            let no = ev
                .labels
                .get(crate::adapters::backend::labels::ITERATION)
                .cloned()
                .unwrap_or_default();
            match ev.action.as_str() {
                "die" => {
                    let code = ev
                        .exit_code
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default();
                    state.stage_mut(Stage::Monitor).detail =
                        format!("iteration {no} container exited{code}");
                }
                "oom" => {
                    fx.transient(
                        state,
                        &format!("monitor:{no}"),
                        format!("the engine reports container {} out of memory", ev.id),
                    );
                }
                _ => {}
            }
        }
        Msg::NotifyReport(report) => {
            // A machine without a desktop session is normal for a server: not a failure to pin.
            let unavailable = report.channel == crate::adapters::notify::Channel::Desktop
                && report
                    .result
                    .as_ref()
                    .is_err_and(|e| e.contains("no desktop notification service"));
            let status = match (&report.result, unavailable) {
                (Ok(()), _) => StageStatus::Passed,
                (Err(_), true) => StageStatus::Skipped,
                (Err(_), false) => StageStatus::Failed,
            };
            // The stage shows the worst real outcome: a failure stays pinned, a skip never hides a send.
            let current = state.stage(Stage::Notify).status;
            let keep = matches!(
                (current, status),
                (StageStatus::Failed, _) | (StageStatus::Passed, StageStatus::Skipped)
            );
            if !keep {
                fx.stage(state, Stage::Notify, status, &report.to_string());
            }
            let level = match status {
                StageStatus::Passed => Level::Good,
                StageStatus::Skipped => Level::Info,
                _ => Level::Warn,
            };
            let run = state.run.as_ref().map(|r| r.id);
            fx.event(state, run, None, "notify", level, report.to_string());
        }
        Msg::Adopt { run, attach } => adopt(state, &mut fx, *run, attach),
        Msg::Revived { run, no, id } => {
            let Some(it) = iter_mut(state, run, no) else {
                return fx.out;
            };
            it.life_started_ms = Some(now);
            let text = format!(
                "container {id} revived (revival {}); the script resumes from its last checkpoint",
                it.revivals
            );
            fx.stage(
                state,
                Stage::Monitor,
                StageStatus::Passed,
                &format!("revived iteration {no}"),
            );
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Running,
                &format!("iteration {no}"),
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("monitor:{no}"),
                Level::Good,
                text,
            );
            fx.out.push(Effect::SaveIteration { run, no });
        }
        Msg::Exited {
            run,
            no,
            status,
            cause,
        } => on_exit(state, &mut fx, run, no, status, cause),
        Msg::TriggerNow => {}
        Msg::Retry => {
            if !state.busy() {
                if let Some(commit) = state.run.as_ref().map(|r| r.commit.clone()) {
                    return update(
                        state,
                        Msg::RunRequested {
                            commit,
                            trigger: "retry".into(),
                        },
                        now,
                    );
                }
            }
            fx.transient(
                state,
                "retry",
                "nothing to retry while a run is in progress".into(),
            );
        }
        Msg::Pause(paused) => {
            state.paused = paused;
            fx.transient(
                state,
                "loop",
                if paused {
                    "paused: no new iteration starts"
                } else {
                    "resumed"
                }
                .into(),
            );
            if !paused {
                if let Some((params, reason)) = state.deferred.take() {
                    start_iteration(state, &mut fx, params, reason);
                }
            }
        }
        Msg::SetTarget(target) => {
            if !target.is_finite() {
                fx.transient(state, "target", format!("{target} is not a usable target"));
                return fx.out;
            }
            state.target_override = Some(target);
            if let Some(cfg) = state.run.as_mut().and_then(|r| r.config.as_mut()) {
                cfg.metric.target = target;
            }
            let run = state.run.as_ref().map(|r| r.id);
            fx.event(
                state,
                run,
                None,
                "target",
                Level::Info,
                format!("target set to {target} by the operator"),
            );
        }
        Msg::Notice { tag, text, level } => {
            let run = state.run.as_ref().map(|r| r.id);
            fx.event(state, run, None, &tag, level, text);
        }
        Msg::TriggerFailed { .. } => {}
        Msg::Approve => {
            if let Some(p) = state.run.as_mut().and_then(|r| r.pending.take()) {
                apply_proposal(state, &mut fx, p, "approved");
            }
        }
        Msg::Reject => {
            let Some(r) = state.run.as_mut() else {
                return fx.out;
            };
            let Some(p) = r.pending.take() else {
                return fx.out;
            };
            r.rejected.push(p.params.clone());
            let run = r.id;
            fx.event(
                state,
                Some(run),
                None,
                "tweak",
                Level::Warn,
                format!("proposal rejected: {}", p.summary()),
            );
            propose_next(state, &mut fx);
        }
        Msg::Edit { name, raw } => {
            let Some(r) = state.run.as_mut() else {
                return fx.out;
            };
            let (Some(p), Some(cfg)) = (r.pending.as_mut(), r.config.as_ref()) else {
                return fx.out;
            };
            let run = r.id;
            match tweak::apply_edit(&p.params, &name, &raw, &cfg.tweak.space) {
                Ok(params) => {
                    let from = r
                        .iterations
                        .last()
                        .map(|i| i.params.clone())
                        .unwrap_or_default();
                    p.changes = diff(&from, &params);
                    p.params = params;
                    p.reason = format!("{} (edited by the operator: {name} = {raw})", p.reason);
                    let summary = p.summary();
                    fx.event(
                        state,
                        Some(run),
                        None,
                        "tweak",
                        Level::Info,
                        format!("proposal edited: {summary}"),
                    );
                }
                Err(e) => fx.event(state, Some(run), None, "tweak", Level::Error, e),
            }
        }
        Msg::SetApply(mode) => {
            state.apply_override = Some(mode);
            fx.transient(state, "tweak", format!("apply mode: {}", mode_name(mode)));
            if mode == ApplyMode::Auto {
                if let Some(p) = state.run.as_mut().and_then(|r| r.pending.take()) {
                    apply_proposal(state, &mut fx, p, "auto-applied");
                }
            }
        }
        Msg::StopTraining => {
            if let Some(r) = &state.run {
                if let Some(it) = r
                    .iterations
                    .iter()
                    .rev()
                    .find(|i| i.status == IterStatus::Running)
                {
                    fx.out.push(Effect::StopContainer {
                        run: r.id,
                        no: it.no,
                        reason: "stopped by the operator".into(),
                    });
                }
            }
        }
    }
    fx.out
}

/// Effects plus the helpers that keep state and events consistent while producing them.
pub(super) struct Fx {
    out: Vec<Effect>,
    now: i64,
}

impl Fx {
    fn event(
        &mut self,
        state: &mut PipelineState,
        run: Option<RunId>,
        no: Option<IterationNo>,
        tag: &str,
        level: Level,
        text: String,
    ) {
        let line = EventLine {
            at_ms: self.now,
            tag: tag.to_string(),
            text,
            level,
        };
        push_event(state, line.clone());
        self.out.push(Effect::Event {
            run,
            no,
            line,
            persist: true,
        });
    }

    /// An event shown and printed but not stored (image build chatter, mode toggles).
    fn transient(&mut self, state: &mut PipelineState, tag: &str, text: String) {
        let line = EventLine {
            at_ms: self.now,
            tag: tag.to_string(),
            text,
            level: Level::Info,
        };
        push_event(state, line.clone());
        let run = state.run.as_ref().map(|r| r.id);
        self.out.push(Effect::Event {
            run,
            no: None,
            line,
            persist: false,
        });
    }

    fn stage(
        &mut self,
        state: &mut PipelineState,
        stage: Stage,
        status: StageStatus,
        detail: &str,
    ) {
        let now = self.now;
        let s = state.stage_mut(stage);
        if status == StageStatus::Running && s.status != StageStatus::Running {
            s.started_ms = Some(now);
            s.finished_ms = None;
        }
        if matches!(
            status,
            StageStatus::Passed | StageStatus::Failed | StageStatus::Skipped
        ) {
            s.finished_ms = Some(now);
        }
        s.status = status;
        if !detail.is_empty() || status == StageStatus::Running {
            s.detail = detail.to_string();
        }
    }
}

pub(super) fn push_event(state: &mut PipelineState, line: EventLine) {
    if state.events.len() == EVENT_CAP {
        state.events.pop_front();
    }
    state.events.push_back(line);
}

pub(super) fn run_mut(state: &mut PipelineState, run: RunId) -> Option<&mut RunState> {
    state.run.as_mut().filter(|r| r.id == run)
}

pub(super) fn is_current(state: &PipelineState, run: RunId) -> bool {
    state
        .run
        .as_ref()
        .is_some_and(|r| r.id == run && r.status == RunStatus::Running)
}

pub(super) fn iter_mut(
    state: &mut PipelineState,
    run: RunId,
    no: IterationNo,
) -> Option<&mut IterState> {
    run_mut(state, run).and_then(|r| r.iteration_mut(no))
}

#[cfg(test)]
mod tests;
