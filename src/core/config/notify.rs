//! The `[notify]` section of `mlops.toml`: which channels tell people, about which events.
//!
//! Like the rest of the file, parsing is strict: unknown keys are errors, and every check that needs
//! more than a type (an address that is not a mailbox, a URL that is not http(s), two password sources)
//! runs while deserializing, so the error carries the file and line of the bad table.
//!
//! Secrets never live in `mlops.toml`, which is committed with the training code: the SMTP password and
//! a webhook URL that embeds a token (Slack's do) come from an environment variable or a file. There is
//! deliberately no `password` key, so writing one is an "unknown field" error rather than a leak.
//!
//! Defaults: the desktop channel is on and subscribed to every event (it costs nothing where no
//! notification service runs: that is reported once). Email, a human inbox, is subscribed by default
//! only to the events that end a run or need a person: `target_reached`, `budget_spent` and
//! `monitor_gave_up`. The webhook, usually a chat channel or another program, gets every event.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::units::HumanDuration;

/// Upper bound on `retries`: a channel that fails this often is down, and retrying longer only delays
/// the report of it.
pub const MAX_RETRIES: u32 = 10;

/// The events people can subscribe to. `Test` is only sent by `mlops-tui notify --test`; it reaches
/// every configured channel whatever its subscription and cannot be named in `events = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    TargetReached,
    BudgetSpent,
    IterationFailed,
    ContainerRevived,
    MonitorGaveUp,
    #[serde(skip_deserializing)]
    Test,
}

impl NotificationKind {
    /// Every subscribable kind.
    pub const ALL: [NotificationKind; 5] = [
        NotificationKind::TargetReached,
        NotificationKind::BudgetSpent,
        NotificationKind::IterationFailed,
        NotificationKind::ContainerRevived,
        NotificationKind::MonitorGaveUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::TargetReached => "target_reached",
            NotificationKind::BudgetSpent => "budget_spent",
            NotificationKind::IterationFailed => "iteration_failed",
            NotificationKind::ContainerRevived => "container_revived",
            NotificationKind::MonitorGaveUp => "monitor_gave_up",
            NotificationKind::Test => "test",
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Limit of one delivery attempt on any channel (connect, send and answer).
    pub timeout: HumanDuration,
    /// Further attempts after a failure that may be temporary (timeout, refused connection, a 5xx or
    /// 429 answer, an SMTP 4xx). Permanent failures are not retried.
    pub retries: u32,
    /// Notifications waiting per channel; when full, the oldest waiting one is dropped (and reported).
    pub queue: usize,
    pub desktop: DesktopConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            timeout: HumanDuration(Duration::from_secs(10)),
            retries: 2,
            queue: 64,
            desktop: DesktopConfig::default(),
            email: None,
            webhook: None,
        }
    }
}

impl NotifyConfig {
    /// `retries` and `queue` clamped to their sane ranges (`retries` ≤ [`MAX_RETRIES`], `queue` ≥ 1), so
    /// a value built in code rather than parsed still behaves.
    pub(crate) fn effective_retries(&self) -> u32 {
        self.retries.min(MAX_RETRIES)
    }

    pub(crate) fn effective_queue(&self) -> usize {
        self.queue.max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    pub enabled: bool,
    pub events: Vec<NotificationKind>,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            enabled: true,
            events: NotificationKind::ALL.to_vec(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25): only for a relay on the same host or a test server.
    None,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

/// Invariants (checked on load): `to` is not empty, `from` and every `to` are mailboxes, at most one
/// password source is given and a password source implies `user`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEmail")]
pub struct EmailConfig {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub security: Security,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Name of the environment variable holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password (one trailing newline is ignored). A relative path is taken from the
    /// process's working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub events: Vec<NotificationKind>,
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: String,
    port: Option<u16>,
    #[serde(default)]
    security: Security,
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    from: String,
    to: Vec<String>,
    #[serde(default = "email_default_events")]
    events: Vec<NotificationKind>,
}

fn email_default_events() -> Vec<NotificationKind> {
    vec![
        NotificationKind::TargetReached,
        NotificationKind::BudgetSpent,
        NotificationKind::MonitorGaveUp,
    ]
}

impl TryFrom<RawEmail> for EmailConfig {
    type Error = String;

    fn try_from(raw: RawEmail) -> Result<Self, String> {
        if raw.host.trim().is_empty() {
            return Err("`notify.email.host` must not be empty".into());
        }
        if raw.port == Some(0) {
            return Err("`notify.email.port` must not be 0".into());
        }
        check_mailbox("from", &raw.from)?;
        if raw.to.is_empty() {
            return Err("`notify.email.to` needs at least one recipient".into());
        }
        for to in &raw.to {
            check_mailbox("to", to)?;
        }
        if raw.password_env.is_some() && raw.password_file.is_some() {
            return Err("give `password_env` or `password_file`, not both".into());
        }
        if raw.user.is_none() && (raw.password_env.is_some() || raw.password_file.is_some()) {
            return Err("a password needs `user` too".into());
        }
        if raw.user.is_some() && raw.password_env.is_none() && raw.password_file.is_none() {
            return Err(
                "`user` needs `password_env` or `password_file` (the password is never written in mlops.toml)"
                    .into(),
            );
        }
        if let Some(var) = &raw.password_env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(format!(
                    "`password_env` \"{var}\" is not an environment variable name"
                ));
            }
        }
        Ok(EmailConfig {
            host: raw.host,
            port: raw.port,
            security: raw.security,
            user: raw.user,
            password_env: raw.password_env,
            password_file: raw.password_file,
            from: raw.from,
            to: raw.to,
            events: raw.events,
        })
    }
}

fn check_mailbox(key: &str, value: &str) -> Result<(), String> {
    super::mailbox::check(value)
        .map_err(|e| format!("`notify.email.{key}` \"{value}\" is not an email address: {e}"))
}

/// Where to POST. Invariant (checked on load): exactly one of `url` and `url_env` is given, and a
/// literal `url` is http or https.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawWebhook")]
pub struct WebhookConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Name of an environment variable holding the URL, for URLs that embed a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    pub events: Vec<NotificationKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default = "all_events")]
    events: Vec<NotificationKind>,
}

fn all_events() -> Vec<NotificationKind> {
    NotificationKind::ALL.to_vec()
}

impl TryFrom<RawWebhook> for WebhookConfig {
    type Error = String;

    fn try_from(raw: RawWebhook) -> Result<Self, String> {
        match (&raw.url, &raw.url_env) {
            (Some(_), Some(_)) => return Err("give `url` or `url_env`, not both".into()),
            (None, None) => return Err("`notify.webhook` needs `url` or `url_env`".into()),
            (Some(url), None) => check_url(url)?,
            (None, Some(var)) if var.is_empty() || var.contains('=') => {
                return Err(format!(
                    "`url_env` \"{var}\" is not an environment variable name"
                ));
            }
            (None, Some(_)) => {}
        }
        Ok(WebhookConfig {
            url: raw.url,
            url_env: raw.url_env,
            events: raw.events,
        })
    }
}

/// Checks that `url` is an absolute http(s) URL; the message names the URL's origin only, since the
/// path may carry a token.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("webhook URL \"{}\" is not a URL: {e}", redact_url(url)))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some() => Ok(()),
        other => Err(format!(
            "webhook URL \"{}\" must be http:// or https://, not {other}://",
            redact_url(url)
        )),
    }
}

/// `scheme://host[:port]/…`: enough to tell which endpoint failed without printing a token that
/// services such as Slack embed in the path or query.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() == "/" && u.query().is_none() {
                ""
            } else {
                "/…"
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "<unparsable URL>".into(),
    }
}
