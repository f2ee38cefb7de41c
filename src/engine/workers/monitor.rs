//! Job 6's eyes: follows the engine's event stream for this store's containers and the engine's own
//! reachability, and reports both as messages. Deaths are acted on by the iteration workers (which
//! wait on their containers); this stream is what the Monitor stage and the status bar show, and it
//! notices the engine leaving and coming back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::adapters::backend::{BackendError, ContainerBackend};

use super::iteration::store_label;
use crate::engine::msg::{Health, Msg};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// While the event stream is followed, the engine is asked this often whether it still answers: a
/// wedged engine keeps the stream open without a word.
const PING_EVERY: Duration = Duration::from_secs(5);
/// A ping that takes longer is a failed one (the client's own timeout is minutes).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Follows the engine, reporting [`Msg::Health`]: on every change, and on every failed try while
/// the engine does not answer (with the back-off before the next, for the status bar).
pub async fn watch<B: ContainerBackend>(
    backend: Arc<B>,
    runs_dir: PathBuf,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let labels = vec![store_label(&runs_dir)];
    let mut backoff = BACKOFF_MIN;
    let mut connected: Option<bool> = None;
    while !tx.is_closed() {
        match ping(&*backend).await {
            Ok(()) => {
                if connected != Some(true) {
                    connected = Some(true);
                    if tx
                        .send(Msg::Health(Health::local(true, backend.endpoint())))
                        .is_err()
                    {
                        return;
                    }
                }
                backoff = BACKOFF_MIN;
                if !follow(&*backend, &labels, &tx).await {
                    return;
                }
            }
            Err(e) => {
                connected = Some(false);
                let mut health = Health::local(false, e.to_string());
                health.retry_s = Some(backoff.as_secs_f64().ceil() as u64);
                if tx.send(Msg::Health(health)).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Whether the engine answers within [`PING_TIMEOUT`].
async fn ping<B: ContainerBackend + ?Sized>(backend: &B) -> Result<(), BackendError> {
    match tokio::time::timeout(PING_TIMEOUT, backend.ping()).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Unavailable {
            endpoint: backend.endpoint(),
            message: format!("no answer within {}s", PING_TIMEOUT.as_secs()),
        }),
    }
}

/// Forwards the container events of `labels` until the stream ends or fails, or the engine stops
/// answering (the caller pings and follows again). False when the engine is gone.
async fn follow<B: ContainerBackend + ?Sized>(
    backend: &B,
    labels: &[(String, String)],
    tx: &mpsc::UnboundedSender<Msg>,
) -> bool {
    let mut events = backend.events(labels);
    let mut asked = tokio::time::interval(PING_EVERY);
    asked.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    asked.tick().await;
    loop {
        let item = tokio::select! {
            item = events.next() => item,
            _ = asked.tick() => match ping(backend).await {
                Ok(()) => continue,
                // The caller asks again and says so.
                Err(_) => return true,
            },
        };
        let Some(item) = item else { break };
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
