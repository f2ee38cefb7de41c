//! The channels behind one interface, and the retry policy every channel shares: each attempt is cut off
//! at the timeout, failures that may pass (timeouts, refused connections, 5xx, SMTP 4xx) are retried
//! with a doubling pause, permanent ones are not.

use std::time::Duration;

use super::delivery::DeliveryError;
use super::desktop::Desktop;
use super::email::Email;
use super::webhook::Webhook;
use crate::core::config::notify::NotifyConfig;
use crate::core::model::{Channel, Notification};
use crate::core::units::HumanDuration;

/// Pause before the first retry; doubled for each further one, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

pub enum Sink {
    Desktop(Desktop),
    Email(Email),
    Webhook(Webhook),
}

impl Sink {
    /// The sinks `config` enables, in a fixed order (desktop, email, webhook).
    pub fn from_config(config: &NotifyConfig) -> Vec<Sink> {
        let mut sinks = Vec::new();
        if config.desktop.enabled {
            sinks.push(Sink::Desktop(Desktop));
        }
        if let Some(email) = &config.email {
            sinks.push(Sink::Email(Email::new(email.clone(), config.timeout.0)));
        }
        if let Some(webhook) = &config.webhook {
            sinks.push(Sink::Webhook(Webhook::new(
                webhook.clone(),
                config.timeout.0,
            )));
        }
        sinks
    }

    pub fn channel(&self) -> Channel {
        match self {
            Sink::Desktop(_) => Channel::Desktop,
            Sink::Email(_) => Channel::Email,
            Sink::Webhook(_) => Channel::Webhook,
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), DeliveryError> {
        match self {
            Sink::Desktop(d) => d.deliver(n).await,
            Sink::Email(e) => e.deliver(n).await,
            Sink::Webhook(w) => w.deliver(n).await,
        }
    }

    /// Delivers with the shared policy. The whole call takes at most
    /// `(retries + 1) * timeout` plus the pauses between attempts.
    pub async fn deliver(
        &self,
        n: &Notification,
        timeout: Duration,
        retries: u32,
    ) -> Result<(), DeliveryError> {
        let mut attempt: u32 = 0;
        let mut pause = FIRST_BACKOFF;
        loop {
            let result = match tokio::time::timeout(timeout, self.attempt(n)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::transient(format!(
                    "timed out after {}",
                    HumanDuration(timeout)
                ))),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable && attempt < retries => {
                    tracing::debug!(channel = %self.channel(), attempt, error = %e.message, "retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(mut e) => {
                    if attempt > 0 {
                        e.message = format!("{} (after {} attempts)", e.message, attempt + 1);
                    }
                    return Err(e);
                }
            }
        }
    }
}
