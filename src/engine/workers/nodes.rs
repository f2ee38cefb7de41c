//! One cluster engine's nodes: lists them every couple of seconds (Docker 20.10 sends no task
//! events) and reports [`Msg::Nodes`] when the listing changed, so that an idle cluster costs the
//! dashboard no redraw. Ends at once for an engine that is not a cluster; a listing that fails is
//! skipped (the engine's health check reports an engine that does not answer).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::core::model::NodeView;
use crate::engine::msg::Msg;

/// Time between two listings.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// A listing that takes longer is skipped: a manager that dropped off the network may never
/// answer.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Lists engine `name`'s nodes with this store's trials (the services carrying `labels`).
pub async fn watch<B: ContainerBackend>(
    name: String,
    backend: Arc<B>,
    labels: Vec<(String, String)>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut last: Option<Vec<NodeView>> = None;
    loop {
        match tokio::time::timeout(LIST_TIMEOUT, backend.nodes(&labels)).await {
            Ok(Ok(None)) => return,
            Ok(Ok(Some(nodes))) if last.as_ref() != Some(&nodes) => {
                last = Some(nodes.clone());
                let msg = Msg::Nodes {
                    engine: name.clone(),
                    nodes,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
            Ok(Ok(Some(_))) => {}
            Ok(Err(e)) => tracing::debug!("listing the nodes of engine {name}: {e}"),
            Err(_) => tracing::debug!("listing the nodes of engine {name}: no answer in time"),
        }
        tokio::time::sleep(INTERVAL).await;
    }
}
