//! What the notifier carries: a [`Notification`] in, a [`NotifyReport`] per channel and outcome out.
//!
//! Notifications are built here, from plain values, so that the engine decides *when* to tell people
//! and this module alone decides *what* they read; the notifier adapter only delivers them. Every
//! notification has a one-line `title` (desktop summary, email subject), a human `body`, and `fields`:
//! the same facts as JSON for programs reading the webhook. All of it is pure data and formatting.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::core::config::Params;
use crate::core::config::notify::NotificationKind;
use crate::core::text;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    /// One line, without the project name (channels add it where there is room).
    pub title: String,
    pub body: String,
    pub project: String,
    pub run: Option<i64>,
    /// Structured facts (metric, value, params, commit, model, ...) for the webhook's JSON.
    pub fields: BTreeMap<String, Value>,
}

/// The facts of a run that met its target.
#[derive(Debug, Clone, Copy)]
pub struct TargetReached<'a> {
    pub metric: &'a str,
    pub value: f64,
    pub target: f64,
    pub iteration: u32,
    pub params: &'a Params,
    /// Full commit id.
    pub commit: &'a str,
    pub model: Option<&'a Path>,
}

/// The facts of a run that used its iteration budget without meeting the target.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSpent<'a> {
    pub metric: &'a str,
    /// The best value seen, if any iteration reported one.
    pub best: Option<f64>,
    pub target: f64,
    pub iterations: u32,
    /// The parameters of the best iteration.
    pub params: Option<&'a Params>,
    pub commit: &'a str,
    pub model: Option<&'a Path>,
}

impl Notification {
    fn new(
        kind: NotificationKind,
        project: &str,
        run: Option<i64>,
        title: String,
        body: String,
    ) -> Self {
        Notification {
            kind,
            title,
            body,
            project: project.to_string(),
            run,
            fields: BTreeMap::new(),
        }
    }

    fn field(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.to_string(), value);
        self
    }

    pub fn target_reached(project: &str, run: Option<i64>, t: TargetReached<'_>) -> Self {
        let title = format!(
            "target reached: {} = {}",
            t.metric,
            text::value_short(t.value)
        );
        let mut body = format!(
            "{} reached {} (target {}) in iteration {} of commit {}.\nParameters: {}",
            t.metric,
            text::value_short(t.value),
            text::value_short(t.target),
            t.iteration,
            short(t.commit),
            params_line(t.params),
        );
        if let Some(model) = t.model {
            body.push_str(&format!("\nModel: {}", model.display()));
        }
        Notification::new(NotificationKind::TargetReached, project, run, title, body)
            .field("metric", json!(t.metric))
            .field("value", json!(t.value))
            .field("target", json!(t.target))
            .field("iteration", json!(t.iteration))
            .field("params", json!(t.params))
            .field("commit", json!(t.commit))
            .field("model", json!(t.model.map(|p| p.display().to_string())))
    }

    pub fn budget_spent(project: &str, run: Option<i64>, b: BudgetSpent<'_>) -> Self {
        let best = b
            .best
            .map(text::value_short)
            .unwrap_or_else(|| "none".into());
        let title = format!(
            "budget spent: best {} = {best}, target {}",
            b.metric,
            text::value_short(b.target)
        );
        let mut body = format!(
            "{} iterations of commit {} did not reach {} {}; the best was {best}.",
            b.iterations,
            short(b.commit),
            b.metric,
            text::value_short(b.target),
        );
        if let Some(params) = b.params {
            body.push_str(&format!("\nBest parameters: {}", params_line(params)));
        }
        if let Some(model) = b.model {
            body.push_str(&format!("\nBest model: {}", model.display()));
        }
        Notification::new(NotificationKind::BudgetSpent, project, run, title, body)
            .field("metric", json!(b.metric))
            .field("best", json!(b.best))
            .field("target", json!(b.target))
            .field("iterations", json!(b.iterations))
            .field("params", json!(b.params))
            .field("commit", json!(b.commit))
            .field("model", json!(b.model.map(|p| p.display().to_string())))
    }

    pub fn iteration_failed(
        project: &str,
        run: Option<i64>,
        iteration: u32,
        commit: &str,
        reason: &str,
    ) -> Self {
        let title = format!("iteration {iteration} failed");
        let body = format!(
            "Iteration {iteration} of commit {} failed: {reason}",
            short(commit)
        );
        Notification::new(NotificationKind::IterationFailed, project, run, title, body)
            .field("iteration", json!(iteration))
            .field("commit", json!(commit))
            .field("reason", json!(reason))
    }

    pub fn container_revived(
        project: &str,
        run: Option<i64>,
        iteration: u32,
        reason: &str,
        change: &str,
    ) -> Self {
        let title = format!("container revived (iteration {iteration})");
        let body = format!(
            "The container of iteration {iteration} died ({reason}) and was started again: {change}"
        );
        Notification::new(
            NotificationKind::ContainerRevived,
            project,
            run,
            title,
            body,
        )
        .field("iteration", json!(iteration))
        .field("reason", json!(reason))
        .field("change", json!(change))
    }

    pub fn monitor_gave_up(project: &str, run: Option<i64>, reason: &str) -> Self {
        let title = "monitor gave up".to_string();
        let body = format!("The run was stopped without reaching its target: {reason}");
        Notification::new(NotificationKind::MonitorGaveUp, project, run, title, body)
            .field("reason", json!(reason))
    }

    pub fn test(project: &str) -> Self {
        Notification::new(
            NotificationKind::Test,
            project,
            None,
            "test notification".into(),
            "This is a test message from `mlops-tui notify --test`: this channel works.".into(),
        )
    }

    /// `[mlops-tui] project: title`, used as the email subject and desktop summary.
    pub fn subject(&self) -> String {
        if self.project.is_empty() {
            format!("[mlops-tui] {}", self.title)
        } else {
            format!("[mlops-tui] {}: {}", self.project, self.title)
        }
    }

    /// The body with the run appended, as plain text for email.
    pub fn text(&self) -> String {
        match self.run {
            Some(run) => format!("{}\n\nProject: {}, run {run}.", self.body, self.project),
            None => format!("{}\n\nProject: {}.", self.body, self.project),
        }
    }

    /// The webhook's JSON: Slack's `text` (bold title line, then the body) beside the structured
    /// fields, which Slack ignores and other receivers use.
    pub fn webhook_json(&self) -> Value {
        json!({
            "text": format!("*{}*\n{}", self.subject(), self.body),
            "kind": self.kind,
            "project": self.project,
            "run": self.run,
            "title": self.title,
            "body": self.body,
            "fields": self.fields,
        })
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(8)]
}

/// A metric as people write it: no float noise, at most six significant decimals.
/// Parameters in a sentence: the shared format, or `(none)`.
fn params_line(params: &Params) -> String {
    if params.is_empty() {
        return "(none)".into();
    }
    text::params(params)
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Desktop,
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Desktop => "desktop",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outcome on one channel, for the engine's event log. Errors are complete sentences that never
/// contain a password or a webhook URL's path.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyReport {
    pub channel: Channel,
    pub kind: NotificationKind,
    pub result: Result<(), String>,
    /// The channel's service does not exist on this machine (no desktop session bus or notification
    /// daemon): normal for a server, not a failure of the notification. Only ever set with an `Err`.
    pub unavailable: bool,
}

impl fmt::Display for NotifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(()) => write!(f, "{}: {} sent", self.channel, self.kind),
            Err(e) => write!(f, "{}: {} not sent: {e}", self.channel, self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::text::value_short as num;

    fn params() -> Params {
        let mut p = Params::new();
        p.insert("lr".into(), json!(0.01));
        p.insert("hidden".into(), json!(64));
        p
    }

    #[test]
    fn target_reached_names_metric_params_commit_and_model() {
        let p = params();
        let n = Notification::target_reached(
            "digits",
            Some(7),
            TargetReached {
                metric: "accuracy",
                value: 0.9712,
                target: 0.97,
                iteration: 3,
                params: &p,
                commit: "0123456789abcdef",
                model: Some(Path::new("/runs/7/3/model.pt")),
            },
        );
        assert_eq!(
            n.subject(),
            "[mlops-tui] digits: target reached: accuracy = 0.9712"
        );
        assert_eq!(
            n.body,
            "accuracy reached 0.9712 (target 0.97) in iteration 3 of commit 01234567.\n\
             Parameters: hidden=64, lr=0.01\nModel: /runs/7/3/model.pt"
        );
        assert_eq!(n.fields["params"], json!({"hidden": 64, "lr": 0.01}));
        assert_eq!(n.fields["commit"], json!("0123456789abcdef"));
        assert!(n.text().ends_with("Project: digits, run 7."));
    }

    #[test]
    fn budget_spent_without_any_metric_says_none() {
        let n = Notification::budget_spent(
            "digits",
            Some(2),
            BudgetSpent {
                metric: "loss",
                best: None,
                target: 0.1,
                iterations: 5,
                params: None,
                commit: "abc",
                model: None,
            },
        );
        assert_eq!(n.title, "budget spent: best loss = none, target 0.1");
        assert_eq!(n.fields["best"], Value::Null);
    }

    #[test]
    fn webhook_json_is_slack_compatible() {
        let n = Notification::monitor_gave_up("p", None, "docker is gone");
        let v = n.webhook_json();
        assert_eq!(
            v["text"],
            json!(
                "*[mlops-tui] p: monitor gave up*\nThe run was stopped without reaching its target: docker is gone"
            )
        );
        assert_eq!(v["kind"], json!("monitor_gave_up"));
        assert_eq!(v["fields"]["reason"], json!("docker is gone"));
    }

    #[test]
    fn numbers_read_like_people_write_them() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(f64::NAN), "NaN");
    }

    #[test]
    fn report_display_reads_as_a_log_line() {
        let r = NotifyReport {
            channel: Channel::Email,
            kind: NotificationKind::TargetReached,
            result: Err("smtp 127.0.0.1:1: connection refused".into()),
            unavailable: false,
        };
        assert_eq!(
            r.to_string(),
            "email: target_reached not sent: smtp 127.0.0.1:1: connection refused"
        );
    }
}
