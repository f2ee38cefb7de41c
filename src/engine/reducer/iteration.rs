//! An iteration's container: started, its output and metric, revived, and its exit judged (revive,
//! fail, or evaluate), after which the loop finishes the run or goes on.

use std::path::PathBuf;

use crate::core::config::Config;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::metrics::Observation;
use crate::core::model::{ExitStatus, IterStatus, LogLine, Notification, RunStatus};
use crate::core::units::HumanDuration;
use crate::engine::event::Level;
use crate::engine::msg::{Effect, ExitReport};
use crate::engine::state::{IterState, LOG_TAIL, PipelineState, RunState, Stage, StageStatus};

use super::fx::Fx;
use super::lookup::{iter_mut, run_mut};
use super::next::{continue_loop, end_run, settle_ending};
use super::text::{headline, model_path, notify};
use super::verdict::{Revival, Verdict, evaluate, judge_exit, judge_loss};
use crate::core::text;

/// Which iteration of which run.
type Key = (RunId, IterationNo);

/// Metric points one iteration keeps (in its state and in the history): a curve of more epochs
/// than this is a flood, not a plot. Bounds the memory and the history of a hostile script.
pub const MAX_POINTS: usize = 10_000;

/// The worker started the iteration's container.
pub(super) fn container_started(
    state: &mut PipelineState,
    fx: &mut Fx,
    (run, no): Key,
    id: ContainerId,
    workdir: PathBuf,
) {
    let now = fx.now;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    it.status = IterStatus::Running;
    it.started_ms.get_or_insert(now);
    it.life_started_ms = Some(now);
    it.container = Some(id.clone());
    it.workdir = Some(workdir);
    let text = format!("container {id} started with {}", text::params(&it.params));
    fx.training(state, no);
    fx.iteration_event(state, (run, no), "train", Level::Info, text);
    fx.push(Effect::SaveIteration { run, no });
}

/// Output lines: the state keeps the last [`LOG_TAIL`] of them.
pub(super) fn logs(state: &mut PipelineState, (run, no): Key, lines: Vec<LogLine>) {
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    for l in lines {
        if it.log_tail.len() == LOG_TAIL {
            it.log_tail.pop_front();
        }
        it.log_tail.push_back(l.text);
    }
}

/// A metric value. A revived script repeats the epoch it was in when it died: the new value replaces
/// that epoch's point. A value for an epoch may get the iteration pruned.
pub(super) fn metric(state: &mut PipelineState, fx: &mut Fx, (run, no): Key, obs: Observation) {
    let per_epoch = obs.epoch.is_some();
    if record_metric(state, fx, (run, no), obs) && per_epoch {
        prune(state, fx, (run, no));
    }
}

/// Records the value; true when the curve took it (false past [`MAX_POINTS`]).
fn record_metric(state: &mut PipelineState, fx: &mut Fx, (run, no): Key, obs: Observation) -> bool {
    let Some(it) = iter_mut(state, run, no) else {
        return false;
    };
    // Epochs come in order: a later epoch than the last point's is new without a search.
    let same_epoch = obs.epoch.and_then(|e| match it.points.last() {
        Some((Some(last), _)) if *last < e => None,
        _ => it.points.iter().rposition(|(pe, _)| *pe == Some(e)),
    });
    it.final_value = Some(obs.value);
    if obs.epochs.is_some() {
        it.epochs = obs.epochs;
    }
    match same_epoch {
        Some(i) => it.points[i].1 = obs.value,
        // The value still counts as the iteration's latest; the curve and the history stop growing.
        None if it.points.len() >= MAX_POINTS => return false,
        None => {
            it.points.push((obs.epoch, obs.value));
            if it.points.len() == MAX_POINTS {
                let text = format!(
                    "{MAX_POINTS} metric points reported: the curve is full, later points are not \
                     kept (the last value reported still counts)"
                );
                fx.iteration_event(state, (run, no), "train", Level::Warn, text);
            }
        }
    }
    fx.push(Effect::SaveMetric { run, no, obs });
    true
}

/// Judges the running iteration's curve against the run's finished ones; on a verdict the container
/// is stopped and its exit ends the iteration as pruned (see [`exited`]).
fn prune(state: &mut PipelineState, fx: &mut Fx, key: Key) {
    let (run, no) = key;
    let Some(r) = run_mut(state, run) else { return };
    let Some(config) = r.config.as_ref() else {
        return;
    };
    let finished: Vec<Vec<f64>> = r
        .iterations
        .iter()
        .filter(|i| i.no != no && counts_for_pruning(i.status))
        .map(IterState::curve)
        .collect();
    let others: Vec<&[f64]> = finished.iter().map(Vec::as_slice).collect();
    let (pruning, direction) = (config.tweak.pruning.clone(), config.metric.direction);
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    if it.pruned.is_some() || it.status.is_final() {
        return;
    }
    let Some(verdict) = crate::core::prune::check(&pruning, direction, &others, &it.curve()) else {
        return;
    };
    it.pruned = Some(verdict);
    let reason = verdict.to_string();
    fx.iteration_event(
        state,
        key,
        "prune",
        Level::Warn,
        format!("{reason}; stopping"),
    );
    fx.push(Effect::StopContainer { run, no, reason });
}

/// Iterations whose curve the pruning rules compare with: those that ran to their end or were pruned.
fn counts_for_pruning(status: IterStatus) -> bool {
    matches!(
        status,
        IterStatus::Succeeded | IterStatus::BelowTarget | IterStatus::Pruned
    )
}

/// The iteration's tree is a commit: kept for the history and the views.
pub(super) fn committed(
    state: &mut PipelineState,
    fx: &mut Fx,
    (run, no): Key,
    commit: Option<String>,
) {
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    it.commit = commit;
    fx.push(Effect::SaveIteration { run, no });
}

/// What the worker read after the container's life: the model file written next to the script,
/// the output's digest, and the value of `metric.file` (which becomes the iteration's value).
pub(super) fn exit_report(state: &mut PipelineState, fx: &mut Fx, key: Key, report: ExitReport) {
    let (run, no) = key;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    if it.status.is_final() {
        return;
    }
    if report.model.is_some() {
        it.model = report.model;
    }
    it.saved_no_model = report.no_model;
    it.output_hash = report.output_hash.or(it.output_hash);
    it.over_disk = report.over_disk.or(it.over_disk.take());
    it.written = report.written;
    let Some((file, value)) = report.metric_file else {
        return;
    };
    it.final_value = Some(value);
    it.points.push((None, value));
    let obs = Observation {
        epoch: None,
        epochs: None,
        value,
    };
    fx.push(Effect::SaveMetric { run, no, obs });
    let name = state
        .run
        .as_ref()
        .map(RunState::metric_name)
        .unwrap_or_default();
    let text = format!(
        "{name} {} read from {file} (metric.file)",
        text::value(value)
    );
    fx.iteration_event(state, key, "evaluate", Level::Info, text);
}

/// The worker started the dead container again: a new life begins.
pub(super) fn revived(state: &mut PipelineState, fx: &mut Fx, (run, no): Key, id: ContainerId) {
    let now = fx.now;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    it.life_started_ms = Some(now);
    let text = match it.container.replace(id.clone()) {
        Some(old) if old != id => format!(
            "new attempt {id} started (revival {}; attempt {old} fenced off); the script resumes from its last checkpoint",
            it.revivals
        ),
        _ => format!(
            "container {id} revived (revival {}); the script resumes from its last checkpoint",
            it.revivals
        ),
    };
    let detail = format!("revived iteration {no}");
    fx.stage(state, Stage::Monitor, StageStatus::Passed, &detail);
    fx.training(state, no);
    fx.iteration_event(state, (run, no), "monitor", Level::Good, text);
    fx.push(Effect::SaveIteration { run, no });
}

/// The container is gone: judge the exit, then revive, or decide the iteration and carry the loop on.
/// A repeated report of an exit already decided changes nothing.
pub(super) fn exited(
    state: &mut PipelineState,
    fx: &mut Fx,
    key: Key,
    status: Option<ExitStatus>,
    cause: Option<String>,
) {
    let (run, no) = key;
    let Some(r) = run_mut(state, run) else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    if it.status.is_final() {
        return;
    }
    if let Some(why) = it.stop_reason.clone() {
        release(state, fx, key);
        stopped(state, fx, key, why);
        settle_ending(state, fx);
        return;
    }
    if it.pruned.is_some() && !finished_cleanly(status, cause.as_deref()) {
        release(state, fx, key);
        pruned(state, fx, key);
        continue_loop(state, fx, &config);
        return;
    }
    match judge_exit(it, &config, status, cause.as_deref(), fx.now) {
        Verdict::Revive(revival) => revive(state, fx, key, &config, revival),
        Verdict::Failed { reason, gave_up } => {
            release(state, fx, key);
            if let Some(gave_up) = gave_up {
                give_up(state, fx, key, gave_up);
            }
            fail(state, fx, key, reason);
            continue_loop(state, fx, &config);
        }
        Verdict::Stop { reason, end } => {
            release(state, fx, key);
            fail(state, fx, key, reason);
            fx.stage(
                state,
                Stage::Tweak,
                StageStatus::Skipped,
                "no tweak can fix this failure",
            );
            let why = format!("stopped: iteration {no} failed in a way no tweak can fix");
            end_run(state, fx, (RunStatus::Failed, end), &why);
        }
        Verdict::Scored(value) => {
            release(state, fx, key);
            let done = score(state, fx, key, &config, value);
            if !done {
                super::identical::check(state, fx, key);
                continue_loop(state, fx, &config);
            }
        }
    }
}

/// The attempt's host is lost (its container may live on there, unreachable and fenced off): a
/// new attempt resumes from the last checkpoint while revivals are left; otherwise, or when the
/// iteration was being stopped or pruned, it ends as a death would.
pub(super) fn lost(state: &mut PipelineState, fx: &mut Fx, key: Key, why: String) {
    let (run, no) = key;
    let Some(r) = run_mut(state, run) else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    if it.status.is_final() {
        return;
    }
    let revival = (it.stop_reason.is_none() && it.pruned.is_none())
        .then(|| judge_loss(it, &config, &why, fx.now))
        .flatten();
    match revival {
        Some(revival) => revive(state, fx, key, &config, revival),
        None => exited(state, fx, key, None, Some(why)),
    }
}

/// Records an iteration the loop stopped because the run was decided: `stopped`, with why; neither
/// a failure nor a point the strategy learns a value from.
fn stopped(state: &mut PipelineState, fx: &mut Fx, key: Key, why: String) {
    let (run, no) = key;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    it.status = IterStatus::Stopped;
    it.reason = Some(why.clone());
    fx.iteration_event(state, key, "train", Level::Warn, why);
    fx.push(Effect::SaveIteration { run, no });
}

/// The script ended on its own with exit 0: a verdict that came too late to stop it changes nothing.
fn finished_cleanly(status: Option<ExitStatus>, cause: Option<&str>) -> bool {
    cause.is_none() && status.is_some_and(|s| s.code == 0 && !s.oom_killed)
}

/// Records the stopped iteration as pruned: a finished point with a partial value, neither a failure
/// (the failure budget is untouched) nor a death to revive. It counts against the iteration budget.
fn pruned(state: &mut PipelineState, fx: &mut Fx, key: Key) {
    let (run, no) = key;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    let Some(verdict) = it.pruned else { return };
    it.status = IterStatus::Pruned;
    it.reason = Some(verdict.to_string());
    let detail = format!("iteration {no} pruned at epoch {}", verdict.epoch);
    fx.stage(state, Stage::Train, StageStatus::Passed, &detail);
    fx.stage(
        state,
        Stage::Evaluate,
        StageStatus::Skipped,
        &verdict.to_string(),
    );
    fx.iteration_event(state, key, "evaluate", Level::Warn, verdict.to_string());
    fx.push(Effect::SaveIteration { run, no });
}

/// Asks the worker to start the container again after the revival's delay, and tells people.
fn revive(state: &mut PipelineState, fx: &mut Fx, key: Key, config: &Config, rv: Revival) {
    let (run, no) = key;
    let Some(it) = iter_mut(state, run, no) else {
        return;
    };
    it.revivals = rv.number;
    it.backoff_step = rv.step;
    let at = it
        .last_epoch()
        .map(|e| format!(" after epoch {e}"))
        .unwrap_or_default();
    let max = config.monitor.max_revivals;
    let delay = HumanDuration(rv.delay);
    let text = format!(
        "container died ({}){at}; reviving in {delay} (revival {} of {max})",
        rv.death, rv.number
    );
    let detail = format!("reviving iteration {no}");
    fx.stage(state, Stage::Monitor, StageStatus::Running, &detail);
    fx.iteration_event(state, key, "monitor", Level::Warn, text);
    fx.push(Effect::Revive {
        run,
        no,
        delay: rv.delay,
    });
    let change = format!("revival {} of {max}, after {delay}", rv.number);
    notify(state, fx, |p, r, _| {
        Notification::container_revived(p, r, no.0, &rv.death, &change)
    });
    fx.push(Effect::SaveIteration { run, no });
}

/// The iteration is decided: its worker removes the container.
fn release(state: &mut PipelineState, fx: &mut Fx, (run, no): Key) {
    fx.push(Effect::Release { run, no });
    let now = fx.now;
    if let Some(it) = iter_mut(state, run, no) {
        it.finished_ms = Some(now);
    }
}

/// The monitor ran out of revivals for the iteration.
fn give_up(state: &mut PipelineState, fx: &mut Fx, key: Key, reason: String) {
    let no = key.1;
    let detail = format!("gave up on iteration {no}");
    fx.stage(state, Stage::Monitor, StageStatus::Failed, &detail);
    fx.iteration_event(state, key, "monitor", Level::Error, reason.clone());
    notify(state, fx, |p, r, _| {
        Notification::monitor_gave_up(p, r, &format!("iteration {no}: {reason}"))
    });
}

/// Records the iteration as failed and counts it against the failure budget.
fn fail(state: &mut PipelineState, fx: &mut Fx, key: Key, reason: String) {
    let (run, no) = key;
    let Some(r) = run_mut(state, run) else { return };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    it.status = IterStatus::Failed;
    it.reason = Some(reason.clone());
    r.failures += 1;
    let first = headline(&reason);
    notify(state, fx, |p, r, c| {
        Notification::iteration_failed(p, r, no.0, c, &first)
    });
    let detail = format!("iteration {no} failed");
    fx.stage(state, Stage::Train, StageStatus::Failed, &detail);
    fx.stage(
        state,
        Stage::Evaluate,
        StageStatus::Skipped,
        "nothing to evaluate",
    );
    let text = format!("failed: {reason}");
    fx.iteration_event(state, key, "train", Level::Error, text);
    fx.push(Effect::SaveIteration { run, no });
}

/// Records the iteration's value, keeps it as the best when it is, and finishes the run when it
/// meets the target. Returns whether the run is done.
fn score(state: &mut PipelineState, fx: &mut Fx, key: Key, config: &Config, value: f64) -> bool {
    let (run, no) = key;
    let metric = &config.metric;
    let (met, text) = evaluate(metric, value);
    let Some(r) = run_mut(state, run) else {
        return true;
    };
    let better = r
        .best
        .and_then(|b| r.iteration(b))
        .and_then(|b| b.final_value)
        .is_none_or(|b| metric.better(value, b));
    let Some(it) = r.iteration_mut(no) else {
        return true;
    };
    it.status = if met {
        IterStatus::Succeeded
    } else {
        IterStatus::BelowTarget
    };
    if better {
        r.best = Some(no);
        fx.push(Effect::SaveBest { run, no });
    }
    let detail = format!("iteration {no}");
    fx.stage(state, Stage::Train, StageStatus::Passed, &detail);
    let (status, level) = if met {
        (StageStatus::Passed, Level::Good)
    } else {
        (StageStatus::Running, Level::Warn)
    };
    fx.stage(state, Stage::Evaluate, status, &text);
    fx.iteration_event(state, key, "evaluate", level, text);
    fx.push(Effect::SaveIteration { run, no });
    if met {
        fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
        fx.stage(state, Stage::Tweak, StageStatus::Skipped, "");
        let reason = format!(
            "target reached at iteration {no}: {} {} (best model: {})",
            metric.name,
            text::value(value),
            model_path(state)
        );
        let why = format!("stopped: iteration {no} reached the target");
        end_run(state, fx, (RunStatus::Succeeded, reason), &why);
    }
    met
}
