//! Riding out a lost Docker engine: retry with back-off, then re-attach to a running container or
//! catch up on what an exited one printed.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::core::model::ContainerState;
use crate::core::model::ExitStatus;
use crate::engine::msg::{IterationPlan, Level, Msg};

use super::{DRAIN, Follow, LifeEnd, RECONNECT_MIN, admit_line, flush, recover_final_metric};

const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The container exited while the engine was unreachable: what it printed since the connection was
/// lost is read now, as a reattached reader would (the lines already forwarded are skipped), then the
/// log tail is checked as after any exit. Given up after [`DRAIN`] without a line.
async fn catch_up<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
) {
    let mut batch = Vec::new();
    f.cursor.reattach();
    let mut logs = backend.logs_since(id, f.cursor.since());
    while let Ok(Some(Ok(line))) = tokio::time::timeout(DRAIN, logs.next()).await {
        admit_line(tx, f, &mut batch, line);
    }
    flush(tx, f, &mut batch);
    recover_final_metric(backend, id, plan, tx, f).await;
}

/// The engine stopped answering while the container ran: waits for it, then `None` to re-attach to a
/// running container, or how the life ended (after catching up on what an exited container printed).
pub(super) async fn lost<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    error: &str,
) -> Option<LifeEnd> {
    match reconcile(backend, id, tx, f, error).await {
        Reconciled::Running => None,
        Reconciled::Exited(s) => {
            catch_up(backend, id, plan, tx, f).await;
            Some(LifeEnd {
                status: Some(s),
                cause: None,
                lost: false,
            })
        }
        Reconciled::Gone(why) => Some(LifeEnd {
            status: None,
            cause: Some(why),
            lost: false,
        }),
    }
}

enum Reconciled {
    Running,
    Exited(ExitStatus),
    Gone(String),
}

/// The engine stopped answering: retry with back-off until it does, then look at the container again.
/// Listing/inspecting is the only reliable way back: the event stream cannot be replayed far.
async fn reconcile<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    error: &str,
) -> Reconciled {
    let mut said = false;
    loop {
        match backend.inspect(id).await {
            Ok(Some(ContainerState::Running | ContainerState::Starting)) => {
                if said {
                    let _ = tx.send(Msg::Notice {
                        tag: format!("monitor:{}", f.no),
                        text: format!("engine back: re-attached to container {id}"),
                        level: Level::Good,
                    });
                }
                f.backoff = RECONNECT_MIN;
                return Reconciled::Running;
            }
            Ok(Some(ContainerState::Exited(s))) => return Reconciled::Exited(s),
            Ok(None) => {
                return Reconciled::Gone(format!(
                    "container {id} vanished while the engine was unreachable"
                ));
            }
            Err(e) => {
                if !said {
                    said = true;
                    let _ = tx.send(Msg::Notice {
                        tag: format!("monitor:{}", f.no),
                        text: format!("lost the engine ({error}); retrying: {e}"),
                        level: Level::Warn,
                    });
                }
                if Instant::now() >= f.deadline {
                    return Reconciled::Gone(
                        "the engine stayed unreachable past budget.iteration_timeout".into(),
                    );
                }
                tokio::time::sleep(f.backoff).await;
                f.backoff = (f.backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}
