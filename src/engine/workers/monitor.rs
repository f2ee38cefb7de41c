//! Job 6's eyes: follows the engine's event stream for this store's containers and the engine's own
//! reachability, and reports both as messages. Deaths are acted on by the iteration workers (which
//! wait on their containers); this stream is what the Monitor stage and the status bar show, and it
//! notices the engine leaving and coming back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;

use super::iteration::store_label;
use crate::engine::msg::Msg;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub async fn watch<B: ContainerBackend>(
    backend: Arc<B>,
    runs_dir: PathBuf,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let labels = vec![store_label(&runs_dir)];
    let mut backoff = BACKOFF_MIN;
    let mut connected: Option<bool> = None;
    while !tx.is_closed() {
        match backend.ping().await {
            Ok(()) => {
                if !report(&tx, &mut connected, true, || backend.endpoint()) {
                    return;
                }
                backoff = BACKOFF_MIN;
                if !follow(&*backend, &labels, &tx).await {
                    return;
                }
            }
            Err(e) => {
                if !report(&tx, &mut connected, false, || e.to_string()) {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Reports a change of the engine's reachability (only changes). False when the engine is gone.
fn report(
    tx: &mpsc::UnboundedSender<Msg>,
    connected: &mut Option<bool>,
    now: bool,
    detail: impl FnOnce() -> String,
) -> bool {
    if *connected == Some(now) {
        return true;
    }
    *connected = Some(now);
    tx.send(Msg::Docker {
        connected: now,
        detail: detail(),
    })
    .is_ok()
}

/// Forwards the container events of `labels` until the stream ends or fails (the caller pings and
/// follows again). False when the engine is gone.
async fn follow<B: ContainerBackend + ?Sized>(
    backend: &B,
    labels: &[(String, String)],
    tx: &mpsc::UnboundedSender<Msg>,
) -> bool {
    let mut events = backend.events(labels);
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => {
                if tx.send(Msg::ContainerEvent(event)).is_err() {
                    return false;
                }
            }
            Err(e) => {
                tracing::warn!("event stream: {e}");
                return true;
            }
        }
    }
    true
}
