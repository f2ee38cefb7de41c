//! What the monitor and the notifier report: the Docker engine coming and going, container events,
//! and how notifications went.

use crate::core::model::{ContainerAction, ContainerEvent, NotifyReport, labels};
use crate::engine::event::Level;
use crate::engine::state::{PipelineState, Stage, StageStatus};

use super::fx::Fx;
use super::lookup::current_run;
use super::run::start_queued;

/// The Docker engine became reachable or unreachable. A run that waited for it starts; a change is
/// said once, and so is an engine that is down from the start.
/// `retry_s` (while down) is kept for the status bar.
pub(super) fn docker(
    state: &mut PipelineState,
    fx: &mut Fx,
    connected: bool,
    detail: String,
    retry_s: Option<u64>,
) {
    let was = state.docker.up.replace(connected);
    state.docker.retry_s = retry_s.filter(|_| !connected);
    if let [only] = state.engines.as_mut_slice() {
        // A single engine has no health worker: the monitor's reports are its state.
        only.up = Some(connected);
        only.detail = detail.clone();
        if connected {
            only.down_since_ms = None;
        } else {
            only.down_since_ms.get_or_insert(fx.now);
        }
    }
    if connected && !state.busy() {
        start_queued(state, fx);
    }
    state.docker.detail = detail.clone();
    let changed = was.is_some() && was != Some(connected);
    if changed && connected {
        let run = current_run(state);
        let text = format!("engine reachable again ({detail})");
        fx.event(state, run, "monitor", Level::Good, text);
    } else if changed {
        let run = current_run(state);
        let text = format!("engine unreachable: {detail}; retrying");
        fx.event(state, run, "monitor", Level::Error, text);
    } else if was.is_none() && !connected {
        let text = format!("engine unreachable: {detail}; retrying");
        fx.event(state, None, "monitor", Level::Error, text);
    }
}

/// A container event: a death shows on the Monitor stage, an OOM kill is said (the iteration's
/// worker acts on both).
pub(super) fn container_event(state: &mut PipelineState, fx: &mut Fx, ev: ContainerEvent) {
    let no = ev
        .labels
        .get(labels::ITERATION)
        .cloned()
        .unwrap_or_default();
    match ev.action {
        ContainerAction::Die => {
            let code = ev
                .exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            state.stage_mut(Stage::Monitor).detail =
                format!("iteration {no} container exited{code}");
        }
        ContainerAction::Oom => {
            fx.transient(
                state,
                &format!("monitor:{no}"),
                format!("the engine reports container {} out of memory", ev.id),
            );
        }
        ContainerAction::Start | ContainerAction::Other(_) => {}
    }
}

/// How a notification went. The Notify stage shows the worst real outcome: a failure stays pinned,
/// and a channel that does not exist here (no desktop session on a server) is a skip that never
/// hides a send.
pub(super) fn notify_report(state: &mut PipelineState, fx: &mut Fx, report: NotifyReport) {
    let status = match (&report.result, report.unavailable) {
        (Ok(()), _) => StageStatus::Passed,
        (Err(_), true) => StageStatus::Skipped,
        (Err(_), false) => StageStatus::Failed,
    };
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
    let run = current_run(state);
    fx.event(state, run, "notify", level, report.to_string());
}
