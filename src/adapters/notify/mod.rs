//! Job 5: tell people. Desktop notifications, email and a webhook, each subscribed to a subset of the
//! run's events, delivered by a worker that never blocks the engine and reports every outcome as a
//! message ([`NotifyReport`](crate::core::model::NotifyReport)) for the event log.
//!
//! - The `[notify]` section of `mlops.toml` is plain configuration, in `core::config::notify`.
//! - What is sent ([`Notification`]) and what comes back ([`NotifyReport`]) are words of the domain,
//!   in `core::model`.
//! - [`worker`]: the queues and tasks ([`spawn`], [`NotifierHandle`]).
//! - `desktop`, `email`, `webhook`: one channel each; `sink`: the retry policy they share.

mod delivery;
mod desktop;
mod email;
mod sink;
mod webhook;
pub mod worker;

pub use crate::core::config::notify::{
    DesktopConfig, EmailConfig, NotifyConfig, Security, WebhookConfig, redact_url,
};
pub use email::Password;
pub use worker::{NotifierHandle, spawn};

use crate::core::model::{Channel, Notification};
use sink::Sink;

/// Sends a test notification through every configured channel at once, with the configured timeout
/// and retries, and returns each channel's outcome in a fixed order (desktop, email, webhook). Unlike
/// the worker, a missing desktop service is reported here every time: the operator asked.
pub async fn send_test(config: &NotifyConfig, project: &str) -> Vec<(Channel, Result<(), String>)> {
    let n = Notification::test(project);
    let sinks = Sink::from_config(config);
    let timeout = config.timeout.0;
    let retries = config.effective_retries();
    let attempts = sinks.iter().map(|s| async {
        let result = s.deliver(&n, timeout, retries).await.map_err(|e| e.message);
        (s.channel(), result)
    });
    futures_util::future::join_all(attempts).await
}
