//! The outgoing webhook: one JSON POST per notification (see [`Notification::webhook_json`]), with
//! reqwest over rustls (ring), which also honours `HTTPS_PROXY`/`NO_PROXY`.
//!
//! Chat webhooks carry their token in the URL, so errors name only the URL's origin
//! ([`redact_url`]) and reqwest's errors are stripped of the URL before they are shown.

use std::time::Duration;

use super::delivery::DeliveryError;
use crate::core::config::notify::{WebhookConfig, check_url, redact_url};
use crate::core::model::Notification;

/// The part of an error answer quoted in the report.
const MAX_QUOTED_BODY: usize = 200;

pub struct Webhook {
    config: WebhookConfig,
    /// `Err` when the client could not be built; each delivery then reports why.
    client: Result<reqwest::Client, String>,
}

impl Webhook {
    pub fn new(config: WebhookConfig, timeout: Duration) -> Self {
        // The overall limit is the notifier's (one message for every channel's timeout); only the
        // connect phase gets its own.
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .user_agent(concat!("mlops-tui/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", e.without_url()));
        Webhook { config, client }
    }

    fn url(&self) -> Result<String, DeliveryError> {
        match (&self.config.url, &self.config.url_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(var)) => {
                let url = std::env::var(var).map_err(|_| {
                    DeliveryError::permanent(format!("the webhook URL variable {var} is not set"))
                })?;
                check_url(&url).map_err(DeliveryError::permanent)?;
                Ok(url)
            }
            (None, None) => Err(DeliveryError::permanent("no webhook URL configured")),
        }
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let client = self.client.as_ref().map_err(DeliveryError::permanent)?;
        let url = self.url()?;
        let shown = redact_url(&url);
        let answer = client
            .post(&url)
            .json(&n.webhook_json())
            .send()
            .await
            .map_err(|e| {
                let builder = e.is_builder();
                let text = format!(
                    "POST {shown}: {}",
                    crate::core::text::error_chain(&e.without_url())
                );
                if builder {
                    DeliveryError::permanent(text)
                } else {
                    DeliveryError::transient(text)
                }
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(MAX_QUOTED_BODY).collect();
        let text = if body.is_empty() {
            format!("POST {shown}: the server answered {status}")
        } else {
            format!("POST {shown}: the server answered {status}: {body}")
        };
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(DeliveryError::transient(text))
        } else {
            Err(DeliveryError::permanent(text))
        }
    }
}
