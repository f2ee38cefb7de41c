//! Email over SMTP with lettre's async tokio transport (rustls, no OpenSSL).
//!
//! The password is read for each delivery from the configured environment variable or file, so that a
//! rotated password file is picked up without a restart, and it lives only in a [`Password`], whose
//! `Debug` is redacted. Error messages are built from lettre's error and then scrubbed of the password
//! as well, in case a server ever echoed it back.

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::delivery::DeliveryError;
use crate::core::config::notify::{EmailConfig, Security};
use crate::core::model::Notification;

/// A secret that must not reach logs, `Debug` output or error messages. Invariant: the only way to see
/// the text is [`Password::expose`], used solely to hand it to the SMTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the password replaced.
    fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "[redacted]")
        }
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Reads the password `config` points to. `Ok(None)` when the config has no user (no authentication).
pub fn load_password(config: &EmailConfig) -> Result<Option<Password>, String> {
    if let Some(var) = &config.password_env {
        return match std::env::var(var) {
            Ok(p) if !p.is_empty() => Ok(Some(Password(p))),
            Ok(_) => Err(format!("the SMTP password variable {var} is empty")),
            Err(_) => Err(format!("the SMTP password variable {var} is not set")),
        };
    }
    if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the SMTP password file {}: {e}", path.display()))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if text.is_empty() {
            return Err(format!(
                "the SMTP password file {} is empty",
                path.display()
            ));
        }
        return Ok(Some(Password(text.to_string())));
    }
    Ok(None)
}

pub struct Email {
    config: EmailConfig,
    timeout: Duration,
}

impl Email {
    pub fn new(config: EmailConfig, timeout: Duration) -> Self {
        Email { config, timeout }
    }

    fn endpoint(&self) -> String {
        format!("smtp {}:{}", self.config.host, self.config.port())
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let password = load_password(&self.config).map_err(DeliveryError::permanent)?;
        let message = build_message(&self.config, n).map_err(DeliveryError::permanent)?;
        let transport = self.transport(password.as_ref())?;
        transport.send(message).await.map(|_| ()).map_err(|e| {
            let text = format!(
                "{}: {}",
                self.endpoint(),
                crate::core::text::error_chain(&e)
            );
            let text = match &password {
                Some(p) => p.scrub(&text),
                None => text,
            };
            if e.is_permanent() || e.is_client() || e.is_tls() {
                DeliveryError::permanent(text)
            } else {
                DeliveryError::transient(text)
            }
        })
    }

    fn transport(
        &self,
        password: Option<&Password>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        let host = self.config.host.as_str();
        let builder = match self.config.security {
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| DeliveryError::permanent(format!("{}: {e}", self.endpoint())))?;
        let mut builder = builder.port(self.config.port()).timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.config.user, password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(builder.build())
    }
}

/// The plain-text message: subject `[mlops-tui] project: title`, the body, then the project and run.
pub fn build_message(config: &EmailConfig, n: &Notification) -> Result<Message, String> {
    let mailbox = |s: &str| {
        s.parse::<Mailbox>()
            .map_err(|e| format!("\"{s}\" is not an email address: {e}"))
    };
    let mut builder = Message::builder()
        .from(mailbox(&config.from)?)
        .subject(n.subject())
        .header(ContentType::TEXT_PLAIN);
    for to in &config.to {
        builder = builder.to(mailbox(to)?);
    }
    builder
        .body(n.text())
        .map_err(|e| format!("cannot build the email: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(2525),
            security: Security::None,
            user: Some("ml".into()),
            password_env: None,
            password_file: None,
            from: "mlops <mlops@example.org>".into(),
            to: vec!["a@example.org".into(), "b@example.org".into()],
            events: vec![],
        }
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("hunter2-very-secret");
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        assert!(!format!("{:?}", Some(&p)).contains("hunter2"));
        assert_eq!(
            p.scrub("535 auth failed for hunter2-very-secret"),
            "535 auth failed for [redacted]"
        );
    }

    #[test]
    fn password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret \r\n").unwrap();
        let cfg = EmailConfig {
            password_file: Some(path),
            ..config()
        };
        assert_eq!(load_password(&cfg).unwrap(), Some(Password::new("s3cret ")));
    }

    #[test]
    fn missing_password_sources_are_named_not_revealed() {
        let cfg = EmailConfig {
            password_env: Some("MLOPS_TUI_TEST_SURELY_UNSET_VAR".into()),
            ..config()
        };
        assert_eq!(
            load_password(&cfg).unwrap_err(),
            "the SMTP password variable MLOPS_TUI_TEST_SURELY_UNSET_VAR is not set"
        );
        let cfg = EmailConfig {
            password_file: Some("/nonexistent/pw".into()),
            ..config()
        };
        assert!(
            load_password(&cfg)
                .unwrap_err()
                .starts_with("cannot read the SMTP password file /nonexistent/pw")
        );
    }

    #[test]
    fn message_has_subject_recipients_and_body() {
        let n = Notification::monitor_gave_up("digits", Some(3), "docker is gone");
        let m = build_message(&config(), &n).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Subject: [mlops-tui] digits: monitor gave up"));
        assert!(raw.contains("To: a@example.org, b@example.org"));
        assert!(raw.contains("docker is gone"));
        assert!(raw.contains("Project: digits, run 3."));
    }

    /// The load-time check in core accepts and refuses exactly what the sender's parser does, with
    /// the same reason: hand-picked cases, then every string of up to three fragments.
    #[test]
    fn the_config_check_agrees_with_the_sender() {
        let lettre = |s: &str| s.parse::<Mailbox>().map(|_| ()).map_err(|e| e.to_string());
        let ours = |s: &str| crate::core::config::mailbox::check(s).map_err(|e| e.to_string());
        let cases = [
            "team@example.org",
            "team at example.org",
            "mlops-tui <mlops@example.org>",
            " \"Ops, team\" <ops@example.org> ",
            "\"a  b\"@example.org",
            "a.\"b\"@example.org",
            "\"a\\\"b\"@example.org",
            "<ops@example.org>",
            "Ops <ops@example.org",
            "ops@[127.0.0.1]",
            "ops@[::1]",
            "ops@127.0.0.1",
            "ops@bücher.example",
            "jürgen@example.org",
            "ops@-example.org",
            "ops@example-.org",
            "ops@exa_mple.org",
            "ops@example..org",
            ".ops@example.org",
            "ops.@example.org",
            "o..ps@example.org",
            "ops@@example.org",
            "ops@",
            "@example.org",
            "",
            "   ",
            "a@b",
            "a b <c@d.e> f",
            "Mr. Smith <s@example.org>",
            "\"\" <s@example.org>",
            "a@b.c\t",
            "\ta@b.c",
            "a\u{7f}@b.c",
            "a@b.c,d@e.f",
            &format!("{}@example.org", "x".repeat(65)),
            &format!("ops@{}.org", "y".repeat(64)),
        ];
        for s in cases {
            assert_eq!(ours(s), lettre(s), "{s:?}");
        }
        let parts = [
            "a",
            ".",
            "@",
            "b.c",
            " ",
            "<",
            ">",
            "\"",
            "\\",
            "[1.2.3.4]",
            "é",
            "-",
            "_",
            ",",
            "(x)",
            "\t",
        ];
        let triples = parts
            .iter()
            .flat_map(|x| parts.iter().map(move |y| (x, y)))
            .flat_map(|(x, y)| parts.iter().map(move |z| (x, y, z)));
        let mut checked = 0;
        for (x, y, z) in triples {
            for s in [
                format!("{x}{y}{z}"),
                format!("{x}{y}{z}@b.c"),
                format!("a@{x}{y}{z}"),
                format!("{x} <a{y}b@c{z}d>"),
            ] {
                assert_eq!(ours(&s), lettre(&s), "{s:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 4 * parts.len().pow(3));
    }
}
