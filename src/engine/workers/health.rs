//! One engine's health: asks it every couple of seconds whether it answers and reports
//! [`Msg::Health`] on every change, and on every check while it is down (the reducer measures the
//! outage against the grace on those reports).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::engine::msg::{Health, Msg};

/// Time between two checks.
const INTERVAL: Duration = Duration::from_secs(2);
/// A ping that takes longer is a failed one: a host that dropped off the network may never answer
/// (the client's own timeout is minutes).
const PING_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn watch<B: ContainerBackend>(
    name: String,
    backend: Arc<B>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut last: Option<bool> = None;
    loop {
        let (up, detail) = match tokio::time::timeout(PING_TIMEOUT, backend.ping()).await {
            Ok(Ok(())) => (true, backend.endpoint()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(_) => (
                false,
                format!("{}: no answer within {PING_TIMEOUT:?}", backend.endpoint()),
            ),
        };
        if last != Some(up) || !up {
            let mut health = Health::of(name.clone(), up, detail);
            health.retry_s = (!up).then_some(INTERVAL.as_secs());
            let msg = Msg::Health(health);
            if tx.send(msg).is_err() {
                return;
            }
        }
        last = Some(up);
        tokio::time::sleep(INTERVAL).await;
    }
}
