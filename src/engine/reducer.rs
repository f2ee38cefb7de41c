//! The one place pipeline state changes: `update(&mut state, msg, now) -> effects`.
//!
//! Pure: no I/O, no clocks (the caller passes `now_ms`), no async. Every decision of the loop (what an
//! exit means, whether the target is met, what to try next, when to stop) is made here, so it can be
//! tested by feeding messages.

use crate::backend::ExitStatus;
use crate::config::{ApplyMode, Config, Params};
use crate::ids::{ContainerId, IterationNo, RunId};
use crate::notify::{BudgetSpent, Notification, TargetReached};
use crate::store::{IterStatus, RunStatus};
use crate::tweak::{self, Proposal, Tried};

use super::msg::{Effect, EventLine, IterationPlan, Level, Msg};
use super::state::{EVENT_CAP, IterState, LOG_TAIL, PipelineState, RunState, Stage, StageStatus};

/// Log lines quoted in a failed iteration's reason.
const REASON_TAIL: usize = 5;

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
            let params = compact(&it.params);
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
                .get(crate::backend::labels::ITERATION)
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
            let ok = report.result.is_ok();
            let status = if ok {
                StageStatus::Passed
            } else {
                StageStatus::Failed
            };
            fx.stage(state, Stage::Notify, status, &report.to_string());
            let level = if ok { Level::Good } else { Level::Warn };
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
struct Fx {
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

fn push_event(state: &mut PipelineState, line: EventLine) {
    if state.events.len() == EVENT_CAP {
        state.events.pop_front();
    }
    state.events.push_back(line);
}

fn run_mut(state: &mut PipelineState, run: RunId) -> Option<&mut RunState> {
    state.run.as_mut().filter(|r| r.id == run)
}

fn is_current(state: &PipelineState, run: RunId) -> bool {
    state
        .run
        .as_ref()
        .is_some_and(|r| r.id == run && r.status == RunStatus::Running)
}

fn iter_mut(state: &mut PipelineState, run: RunId, no: IterationNo) -> Option<&mut IterState> {
    run_mut(state, run).and_then(|r| r.iteration_mut(no))
}

fn start_iteration(
    state: &mut PipelineState,
    fx: &mut Fx,
    params: Params,
    proposal_reason: Option<String>,
) {
    if state.paused {
        state.deferred = Some((params, proposal_reason));
        fx.transient(
            state,
            "loop",
            "paused: the next iteration waits for resume (p)".into(),
        );
        return;
    }
    let Some(r) = state.run.as_mut() else { return };
    let (Some(config), Some(image), Some(workspace)) =
        (r.config.clone(), r.image.clone(), r.workspace.clone())
    else {
        return;
    };
    let no = r
        .iterations
        .last()
        .map(|i| i.no.next())
        .unwrap_or(IterationNo(1));
    r.iterations
        .push(IterState::new(no, params.clone(), proposal_reason.clone()));
    let run = r.id;
    fx.stage(
        state,
        Stage::Train,
        StageStatus::Running,
        &format!("iteration {no}"),
    );
    for s in [Stage::Evaluate, Stage::Tweak] {
        if state.stage(s).status == StageStatus::Running {
            fx.stage(state, s, StageStatus::Passed, "");
        }
    }
    fx.out.push(Effect::SaveIteration { run, no });
    fx.out.push(Effect::StartIteration(Box::new(IterationPlan {
        run,
        no,
        params,
        image,
        workspace,
        config,
        proposal_reason,
    })));
}

/// A restarted mlops-tui takes over a run its predecessor left: re-attach to the containers still there,
/// reconcile the iterations whose containers are gone, and carry the loop on. Never starts an
/// iteration twice: an iteration with a container is only ever re-attached.
fn adopt(
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
    fx.event(state, Some(id), None, "monitor", Level::Info, format!(
        "resumed run {id} (commit {commit}) left by a stopped mlops-tui; {} container(s) to re-attach",
        attach.len()
    ));
    if unfinished.is_empty() {
        let met = state
            .run
            .as_ref()
            .and_then(|r| r.iterations.last())
            .is_some_and(|i| i.status == IterStatus::Succeeded);
        if met {
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
        } else {
            continue_loop(state, fx, &config);
        }
        return;
    }
    for (no, status) in unfinished {
        match attach.iter().find(|(n, _)| *n == no) {
            Some((_, cid)) => {
                let Some(r) = state.run.as_mut() else { return };
                let (Some(image), Some(workspace)) = (r.image.clone(), r.workspace.clone()) else {
                    return;
                };
                let Some(it) = r.iteration_mut(no) else {
                    continue;
                };
                it.container = Some(cid.clone());
                let plan = IterationPlan {
                    run: id,
                    no,
                    params: it.params.clone(),
                    image,
                    workspace,
                    config: config.clone(),
                    proposal_reason: it.proposal_reason.clone(),
                };
                fx.stage(
                    state,
                    Stage::Train,
                    StageStatus::Running,
                    &format!("iteration {no}"),
                );
                fx.event(
                    state,
                    Some(id),
                    Some(no),
                    &format!("monitor:{no}"),
                    Level::Info,
                    format!("re-attaching to container {cid}"),
                );
                fx.out.push(Effect::AttachIteration {
                    plan: Box::new(plan),
                    id: cid.clone(),
                });
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
            None => on_exit(
                state,
                fx,
                id,
                no,
                None,
                Some("its container vanished while mlops-tui was down".into()),
            ),
        }
    }
}

/// Decides what an exit means for the iteration, then what the loop does next.
fn on_exit(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    no: IterationNo,
    status: Option<ExitStatus>,
    cause: Option<String>,
) {
    let Some(r) = run_mut(state, run) else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    if matches!(
        it.status,
        IterStatus::Succeeded | IterStatus::BelowTarget | IterStatus::Failed | IterStatus::Stopped
    ) {
        return; // already decided (a duplicate exit report)
    }
    // Job 6: a death from outside (OOM kill, a signal, an engine restart) is revived within limits.
    let monitor = &config.monitor;
    let infra = cause.is_none()
        && status.is_some_and(|s| {
            s.oom_killed || (s.code != 0 && monitor.revive_exit_codes.contains(&s.code))
        });
    let mut gave_up: Option<String> = None;
    if infra && monitor.revive {
        let death = describe_death(status, &config);
        let healthy_ms = monitor.healthy_after.0.as_millis() as i64;
        if it.life_started_ms.is_some_and(|t| fx.now - t >= healthy_ms) {
            it.backoff_step = 0;
        }
        if it.revivals < monitor.max_revivals {
            it.revivals += 1;
            it.backoff_step += 1;
            let delay = monitor.backoff(it.backoff_step);
            let revivals = it.revivals;
            let at = it
                .last_epoch()
                .map(|e| format!(" after epoch {e}"))
                .unwrap_or_default();
            let text = format!(
                "container died ({death}){at}; reviving in {} (revival {} of {})",
                crate::config::HumanDuration(delay),
                it.revivals,
                monitor.max_revivals
            );
            fx.stage(
                state,
                Stage::Monitor,
                StageStatus::Running,
                &format!("reviving iteration {no}"),
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("monitor:{no}"),
                Level::Warn,
                text,
            );
            fx.out.push(Effect::Revive { run, no, delay });
            let change = format!(
                "revival {} of {}, after {}",
                revivals,
                monitor.max_revivals,
                crate::config::HumanDuration(delay)
            );
            notify(state, fx, |p, r, _| {
                Notification::container_revived(p, r, no.0, &death, &change)
            });
            fx.out.push(Effect::SaveIteration { run, no });
            return;
        }
        gave_up = Some(format!(
            "gave up after {} revivals (monitor.max_revivals); last death: {death}",
            it.revivals
        ));
    }
    fx.out.push(Effect::Release { run, no });
    it.finished_ms = Some(fx.now);
    let metric = &config.metric;
    let tail = || {
        let n = it.log_tail.len();
        let lines: Vec<&str> = it
            .log_tail
            .iter()
            .skip(n.saturating_sub(REASON_TAIL))
            .map(String::as_str)
            .collect();
        if lines.is_empty() {
            "(no output)".to_string()
        } else {
            lines.join("\n  ")
        }
    };
    let failure: Option<String> = if let Some(reason) = gave_up.clone() {
        Some(format!("{reason}; last lines:\n  {}", tail()))
    } else if let Some(cause) = cause {
        Some(cause)
    } else {
        match status {
            None => Some("the container vanished before it reported an exit status".into()),
            Some(s) if s.oom_killed => Some(format!(
                "killed: out of memory (limit {}); last lines:\n  {}",
                config.resources.memory,
                tail()
            )),
            Some(s) if s.code != 0 => Some(format!(
                "exited with code {}{}; last lines:\n  {}",
                s.code,
                signal_name(s.code),
                tail()
            )),
            Some(_) => match it.final_value {
                None => Some(format!(
                    "finished without reporting `{}`; last lines:\n  {}",
                    metric.name,
                    tail()
                )),
                Some(v) if !v.is_finite() => Some(format!(
                    "`{}` was {v}: a diverged model is never kept",
                    metric.name
                )),
                Some(_) => None,
            },
        }
    };
    let tag = format!("evaluate:{no}");
    if let Some(reason) = gave_up {
        fx.stage(
            state,
            Stage::Monitor,
            StageStatus::Failed,
            &format!("gave up on iteration {no}"),
        );
        fx.event(
            state,
            Some(run),
            Some(no),
            &format!("monitor:{no}"),
            Level::Error,
            reason.clone(),
        );
        notify(state, fx, |p, r, _| {
            Notification::monitor_gave_up(p, r, &format!("iteration {no}: {reason}"))
        });
    }
    let Some(r) = run_mut(state, run) else { return };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    match failure {
        Some(reason) => {
            it.status = IterStatus::Failed;
            it.reason = Some(reason.clone());
            r.failures += 1;
            let first = first_line(&reason);
            notify(state, fx, |p, r, c| {
                Notification::iteration_failed(p, r, no.0, c, &first)
            });
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Failed,
                &format!("iteration {no} failed"),
            );
            fx.stage(state, Stage::Evaluate, StageStatus::Skipped, "");
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("train:{no}"),
                Level::Error,
                format!("failed: {reason}"),
            );
            fx.out.push(Effect::SaveIteration { run, no });
        }
        None => {
            let value = it.final_value.unwrap_or(f64::NAN);
            let met = metric.meets_target(value);
            it.status = if met {
                IterStatus::Succeeded
            } else {
                IterStatus::BelowTarget
            };
            let better = r
                .best
                .and_then(|b| r.iteration(b))
                .and_then(|b| b.final_value)
                .is_none_or(|b| metric.better(value, b));
            if better {
                r.best = Some(no);
                fx.out.push(Effect::SaveBest { run, no });
            }
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Passed,
                &format!("iteration {no}"),
            );
            let cmp = if met { ">=" } else { "<" };
            let cmp = match (met, metric.direction) {
                (true, crate::config::Direction::Minimize) => "<=",
                (false, crate::config::Direction::Minimize) => ">",
                _ => cmp,
            };
            let text = format!(
                "{} {} {cmp} target {}",
                metric.name,
                fmt_value(value),
                metric.target
            );
            fx.stage(
                state,
                Stage::Evaluate,
                if met {
                    StageStatus::Passed
                } else {
                    StageStatus::Running
                },
                &text,
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &tag,
                if met { Level::Good } else { Level::Warn },
                text,
            );
            fx.out.push(Effect::SaveIteration { run, no });
            if met {
                fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
                fx.stage(state, Stage::Tweak, StageStatus::Skipped, "");
                let path = model_path(state);
                finish(
                    state,
                    fx,
                    RunStatus::Succeeded,
                    format!(
                        "target reached at iteration {no}: {} {} (best model: {path})",
                        metric.name,
                        fmt_value(value)
                    ),
                );
                return;
            }
        }
    }
    continue_loop(state, fx, &config);
}

/// After an iteration that did not reach the target: give up on the failure or iteration budget, or
/// propose the next point.
fn continue_loop(state: &mut PipelineState, fx: &mut Fx, config: &Config) {
    let Some(r) = state.run.as_ref() else { return };
    if r.failures > config.budget.max_failures {
        let reason = format!(
            "{} iterations failed (max_failures = {})",
            r.failures, config.budget.max_failures
        );
        finish(state, fx, RunStatus::Failed, reason);
        return;
    }
    if r.iterations.len() as u32 >= config.budget.max_iterations {
        let reason = format!(
            "budget spent: {} of {} iterations without reaching the target",
            r.iterations.len(),
            config.budget.max_iterations
        );
        finish(state, fx, RunStatus::BudgetSpent, reason);
        return;
    }
    propose_next(state, fx);
}

fn propose_next(state: &mut PipelineState, fx: &mut Fx) {
    let Some(r) = state.run.as_mut() else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(last) = r.iterations.last() else {
        return;
    };
    let mut tried: Vec<Tried> = r
        .iterations
        .iter()
        .map(|i| Tried {
            params: i.params.clone(),
            value: if i.status == IterStatus::Failed {
                None
            } else {
                i.final_value
            },
        })
        .collect();
    let rejected: Vec<Tried> = r
        .rejected
        .iter()
        .map(|p| Tried {
            params: p.clone(),
            value: None,
        })
        .collect();
    let current = last.params.clone();
    let from = last.no;
    let run = r.id;
    // Rejected points go first so that the last entry is still the iteration the reason talks about.
    let mut history = rejected;
    history.append(&mut tried);
    let mut strategy = tweak::strategy_for(config.tweak.strategy);
    fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
    match strategy.propose(&config.tweak.space, &config.metric, &current, &history) {
        None => {
            fx.stage(
                state,
                Stage::Tweak,
                StageStatus::Failed,
                "search space exhausted",
            );
            let reason = "budget spent: the search space is exhausted (every dimension at its end)"
                .to_string();
            finish(state, fx, RunStatus::BudgetSpent, reason);
        }
        Some(p) => {
            let tag = format!("tweak:{from}→{}", from.next());
            if state.apply_mode() == ApplyMode::Ask && state.interactive {
                fx.stage(
                    state,
                    Stage::Tweak,
                    StageStatus::Running,
                    "awaiting approval",
                );
                let text = format!(
                    "proposed {} — {}; waiting for approval (a approve, x reject, e edit)",
                    p.summary(),
                    p.reason
                );
                if let Some(r) = state.run.as_mut() {
                    r.pending = Some(p);
                }
                fx.event(state, Some(run), None, &tag, Level::Info, text);
            } else {
                apply_proposal(state, fx, p, "");
            }
        }
    }
}

fn apply_proposal(state: &mut PipelineState, fx: &mut Fx, p: Proposal, how: &str) {
    let Some(r) = state.run.as_ref() else { return };
    let from = r.iterations.last().map(|i| i.no).unwrap_or(IterationNo(0));
    let run = r.id;
    let tag = format!("tweak:{from}→{}", from.next());
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" ({how})")
    };
    fx.stage(state, Stage::Tweak, StageStatus::Passed, &p.summary());
    fx.event(
        state,
        Some(run),
        None,
        &tag,
        Level::Info,
        format!("{}{how} — {}", p.summary(), p.reason),
    );
    start_iteration(state, fx, p.params, Some(p.reason));
}

fn finish(state: &mut PipelineState, fx: &mut Fx, status: RunStatus, reason: String) {
    let Some(r) = state.run.as_mut() else { return };
    r.status = status;
    r.reason = Some(reason.clone());
    r.pending = None;
    let run = r.id;
    state.finished_runs += 1;
    if let Some(n) = final_notification(state, status) {
        fx.stage(state, Stage::Notify, StageStatus::Running, "sending");
        fx.out.push(Effect::Notify(Box::new(n)));
    } else {
        fx.stage(state, Stage::Notify, StageStatus::Skipped, "");
    }
    let level = if status == RunStatus::Succeeded {
        Level::Good
    } else {
        Level::Error
    };
    fx.event(state, Some(run), None, "done", level, reason.clone());
    fx.out.push(Effect::FinishRun {
        run,
        status,
        reason,
    });
    if let Some((commit, trigger)) = state.queued.pop_front() {
        let mut more = update(state, Msg::RunRequested { commit, trigger }, fx.now);
        fx.out.append(&mut more);
    }
}

/// Job 5: what to tell people when a run ends. Preparation failures end a run before any training and
/// are not a notification kind: they are in the event log and the history.
fn final_notification(state: &PipelineState, status: RunStatus) -> Option<Notification> {
    let r = state.run.as_ref()?;
    let config = r.config.as_ref()?;
    let project = state.project.display().to_string();
    let best = r.best_iteration();
    let model = best
        .and_then(|b| b.workdir.as_ref())
        .map(|w| w.join("model"));
    match status {
        RunStatus::Succeeded => {
            let b = best?;
            Some(Notification::target_reached(
                &project,
                Some(r.id.0),
                TargetReached {
                    metric: &config.metric.name,
                    value: b.final_value.unwrap_or(f64::NAN),
                    target: config.metric.target,
                    iteration: b.no.0,
                    params: &b.params,
                    commit: &r.commit.id,
                    model: model.as_deref(),
                },
            ))
        }
        RunStatus::BudgetSpent => Some(Notification::budget_spent(
            &project,
            Some(r.id.0),
            BudgetSpent {
                metric: &config.metric.name,
                best: best.and_then(|b| b.final_value),
                target: config.metric.target,
                iterations: r.iterations.len() as u32,
                params: best.map(|b| &b.params),
                commit: &r.commit.id,
                model: model.as_deref(),
            },
        )),
        _ => None,
    }
}

fn notify(
    state: &PipelineState,
    fx: &mut Fx,
    make: impl FnOnce(&str, Option<i64>, &str) -> Notification,
) {
    let Some(r) = state.run.as_ref() else { return };
    let project = state.project.display().to_string();
    fx.out.push(Effect::Notify(Box::new(make(
        &project,
        Some(r.id.0),
        &r.commit.id,
    ))));
}

fn model_path(state: &PipelineState) -> String {
    state
        .run
        .as_ref()
        .and_then(|r| r.best_iteration())
        .and_then(|i| i.workdir.as_ref())
        .map(|w| w.join("model").display().to_string())
        .unwrap_or_else(|| "(not saved)".into())
}

fn stage_tag(stage: Stage) -> &'static str {
    match stage {
        Stage::Pull => "pull",
        Stage::Detect => "detect",
        Stage::Image => "image",
        Stage::Train => "train",
        Stage::Evaluate => "evaluate",
        Stage::Tweak => "tweak",
        Stage::Notify => "notify",
        Stage::Monitor => "monitor",
    }
}

fn mode_name(mode: ApplyMode) -> &'static str {
    match mode {
        ApplyMode::Ask => "ask",
        ApplyMode::Auto => "auto",
    }
}

/// "out of memory (limit 64m)" or "exit 137 (SIGKILL)".
fn describe_death(status: Option<ExitStatus>, config: &Config) -> String {
    match status {
        Some(s) if s.oom_killed => format!("out of memory, limit {}", config.resources.memory),
        Some(s) => match signal_name(s.code).trim().trim_matches(['(', ')']) {
            "" => format!("exit {}", s.code),
            sig => format!("exit {}, {sig}", s.code),
        },
        None => "no exit status".into(),
    }
}

/// `128 + n` exit codes are deaths by signal n; say which, since "137" alone tells most people nothing.
fn signal_name(code: i64) -> &'static str {
    match code {
        137 => " (SIGKILL)",
        143 => " (SIGTERM)",
        139 => " (SIGSEGV)",
        134 => " (SIGABRT)",
        130 => " (SIGINT)",
        _ => "",
    }
}

pub fn fmt_value(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        format!("{v}")
    }
}

/// `a=1, b=2` for event lines.
pub fn compact(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameters that differ between two sets, in name order.
fn diff(from: &Params, to: &Params) -> Vec<tweak::Change> {
    to.iter()
        .filter(|(k, v)| from.get(*k) != Some(*v))
        .map(|(k, v)| tweak::Change {
            name: k.clone(),
            from: from.get(k).cloned().unwrap_or(serde_json::Value::Null),
            to: v.clone(),
        })
        .collect()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Config access for callers that only have the state.
pub fn config(state: &PipelineState) -> Option<&Config> {
    state.run.as_ref().and_then(|r| r.config.as_ref())
}

#[cfg(test)]
mod tests;
