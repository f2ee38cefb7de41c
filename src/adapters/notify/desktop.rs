//! Desktop notifications through the freedesktop notification service on the D-Bus session bus
//! (notify-rust's pure-Rust zbus backend: no libdbus needed).
//!
//! A machine without a session bus (a server, CI, a container) or without a notification daemon on it
//! is normal, not an error worth repeating: the failure is marked `unavailable` so the channel's worker
//! reports it once and stays quiet until a notification gets through again.

use super::delivery::DeliveryError;
use crate::core::model::Notification;

/// How long the notification stays on screen, where the server honours it.
const SHOW_FOR_MS: u32 = 10_000;

#[derive(Debug, Default)]
pub struct Desktop;

impl Desktop {
    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let mut note = notify_rust::Notification::new();
        note.appname("mlops-tui")
            .summary(&n.subject())
            .body(&n.body)
            .timeout(notify_rust::Timeout::Milliseconds(SHOW_FOR_MS));
        match note.show_async().await {
            // The handle owns the bus connection; dropping it closes the connection, not the bubble.
            Ok(_handle) => Ok(()),
            Err(e) => Err(DeliveryError::unavailable(format!(
                "no desktop notification service on the session bus: {e}"
            ))),
        }
    }
}
