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
    loop {
        match backend.ping().await {
            Ok(()) => {
                if connected != Some(true) {
                    connected = Some(true);
                    if tx
                        .send(Msg::Docker {
                            connected: true,
                            detail: backend.endpoint(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                backoff = BACKOFF_MIN;
                let mut events = backend.events(&labels);
                while let Some(item) = events.next().await {
                    match item {
                        Ok(event) => {
                            if tx.send(Msg::ContainerEvent(event)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("event stream: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if connected != Some(false) {
                    connected = Some(false);
                    if tx
                        .send(Msg::Docker {
                            connected: false,
                            detail: e.to_string(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}
