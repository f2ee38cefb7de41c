//! Following one life of the container: its log read in batches, metrics parsed, deadlines and the
//! disk quota enforced, operator stops carried out.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::core::ids::ContainerId;
use crate::core::model::ExitStatus;
use crate::core::model::LogLine;
use crate::engine::msg::{IterationPlan, Msg};
use crate::engine::workers::disk;

use super::reconnect::lost;
use super::silence::{self, Silence};
use super::{
    Control, DRAIN, Follow, Intake, LifeEnd, RECONNECT_MIN, admit_and_copy, flush,
    last_line_fallback, recover_final_metric,
};

/// Log lines are sent to the reducer at most this often (or when a batch fills up).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(100);
/// Time a container gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Follows one life of the container: logs, metrics, deadlines, the disk quota, operator stops,
/// engine loss.
pub(super) async fn follow<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    ctl: &mut mpsc::UnboundedReceiver<Control>,
    f: &mut Follow,
) -> LifeEnd {
    let mut batch: Vec<LogLine> = Vec::new();
    let mut silence = Silence::new();
    let mut cause: Option<String> = None;
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    let host = (!f.remote).then(|| f.workdir.clone());
    let quota = disk::over_quota(backend, id, host, plan.config.resources.disk);
    tokio::pin!(quota);
    f.backoff = RECONNECT_MIN;
    // The engine may go away (the dashboard quit): the container then trains on, unattended.
    let mut ctl_open = true;
    'attach: loop {
        f.cursor.reattach();
        let mut logs = backend.logs_since(id, f.cursor.since());
        let mut wait = backend.wait(id);
        let mut logs_done = false;
        let mut exit: Option<ExitStatus> = None;
        let mut drain_until: Option<Instant> = None;
        loop {
            if exit.is_some() && drained(logs_done, drain_until) {
                let into = &mut Intake {
                    tx,
                    f,
                    batch: &mut batch,
                };
                return ended(backend, id, plan, into, exit, cause).await;
            }
            tokio::select! {
                line = logs.next(), if !logs_done => match line {
                    Some(Ok(line)) => {
                        let at = line.at;
                        let into = &mut Intake { tx, f, batch: &mut batch };
                        let metric = admit_and_copy(backend, id, into, line).await;
                        silence.line(at, metric);
                        // Draining after the exit: the silence is measured from this line.
                        drain_until = drain_until.map(|_| Instant::now() + DRAIN);
                    }
                    Some(Err(e)) => {
                        tracing::warn!("iteration {}/{}: {e}", f.run, f.no);
                        logs_done = true;
                    }
                    None => logs_done = true,
                },
                status = &mut wait, if exit.is_none() => match status {
                    Ok(s) => {
                        exit = Some(s);
                        drain_until = Some(Instant::now() + DRAIN);
                    }
                    Err(e) => {
                        flush(tx, f, &mut batch);
                        drop(wait);
                        drop(logs);
                        match unanswered(backend, id, plan, tx, f, e).await {
                            None => continue 'attach,
                            Some(end) => return LifeEnd { cause: cause.or(end.cause), ..end },
                        }
                    }
                },
                _ = tick.tick() => {
                    let stream = silence::Stream {
                        logs: &mut logs,
                        done: &mut logs_done,
                        exited: exit.is_some(),
                        stopping: cause.is_some(),
                    };
                    let into = &mut Intake { tx, f, batch: &mut batch };
                    let due = on_tick(backend, id, plan, into, stream, &mut silence).await;
                    stop_for(backend, id, &mut cause, due).await;
                }
                usage = &mut quota, if exit.is_none() && cause.is_none() => {
                    // The full reason is made once it has stopped (`disk::account`).
                    disk::kill(backend, id, usage.total).await;
                    cause = Some("over [resources] disk: killed".into());
                    f.over_disk = Some(usage);
                }
                c = ctl.recv(), if ctl_open && exit.is_none() => {
                    ctl_open = obey(backend, id, c, &mut cause).await;
                }
            }
        }
    }
}

/// Every [`BATCH_INTERVAL`]: the batch goes, a container that does not run yet says why, and the
/// silence is judged (a reason to stop it, when it was silent too long).
async fn on_tick<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    into: &mut Intake<'_>,
    stream: silence::Stream<'_>,
    silence: &mut Silence,
) -> Option<String> {
    into.flush();
    super::waiting::report(backend, id, into.f, into.tx).await;
    silence::judge(backend, id, plan, into, stream, silence).await
}

/// Whether the log after the exit is read: it ended, or stayed silent until `drain_until`.
fn drained(logs_done: bool, drain_until: Option<Instant>) -> bool {
    logs_done || drain_until.is_some_and(|d| Instant::now() >= d)
}

/// The container exited and its output was read: the rest of the batch goes, the final metric is
/// looked for in the log's end, and the life ends as the exit says.
async fn ended<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    into: &mut Intake<'_>,
    exit: Option<ExitStatus>,
    cause: Option<String>,
) -> LifeEnd {
    into.flush();
    recover_final_metric(backend, id, plan, into.tx, into.f).await;
    last_line_fallback(plan, into.tx, into.f, exit);
    LifeEnd {
        status: exit,
        cause,
        lost: false,
    }
}

/// The wait for the container's end failed: its host is lost (the life ends), or the engine does not
/// answer (ridden out by [`lost`]: `None` to re-attach).
async fn unanswered<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    error: BackendError,
) -> Option<LifeEnd> {
    match error {
        BackendError::Lost { message, .. } => Some(LifeEnd {
            status: None,
            cause: Some(message),
            lost: true,
        }),
        e => lost(backend, id, plan, tx, f, &e.to_string()).await,
    }
}

/// Carries out an order received while the container runs. False when the engine is gone (the
/// container then trains on, unattended).
async fn obey<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    order: Option<Control>,
    cause: &mut Option<String>,
) -> bool {
    match order {
        Some(Control::Stop(reason)) => {
            stop(backend, id, &reason).await;
            cause.get_or_insert(reason);
            true
        }
        Some(_) => true,
        None => false,
    }
}

/// Stops the container when there is a reason `why` and it is not being stopped already: the first
/// cause found is the one reported.
async fn stop_for<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    cause: &mut Option<String>,
    why: Option<String>,
) {
    if cause.is_some() {
        return;
    }
    if let Some(why) = why {
        stop(backend, id, &why).await;
        *cause = Some(why);
    }
}

async fn stop<B: ContainerBackend + ?Sized>(backend: &B, id: &ContainerId, why: &str) {
    tracing::info!("stopping {id}: {why}");
    if let Err(e) = backend.stop(id, STOP_GRACE).await {
        tracing::warn!("stopping {id}: {e}");
    }
}
