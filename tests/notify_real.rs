//! Notifications reaching real receivers: a real SMTP server (python3-aiosmtpd), a real D-Bus session
//! with a notification server (dbus-run-session, python3-dbus, python3-gi), and real HTTP receivers.
//!
//! The desktop tests need their own session bus, and the process environment cannot be changed
//! safely from a test, so they run an `inner_*` test of this binary as a child process under the
//! wanted environment. The inner tests are ignored and do nothing unless `MLOPS_TUI_NOTIFY_INNER` is
//! set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixtures/notify/support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mlops_tui::adapters::notify::{self, EmailConfig, NotifyConfig, Security, WebhookConfig};
use mlops_tui::core::config::notify::NotificationKind;
use mlops_tui::core::config::{Config, HumanDuration, Params};
use mlops_tui::core::model::{Channel, Notification, NotifyReport, TargetReached};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use support::{INNER, PYTHON, SmtpSink, fixture, hanging_receiver, receiver, run_inner};

fn webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: Some(url.into()),
        url_env: None,
        events: NotificationKind::ALL.to_vec(),
    }
}

fn quiet_config(timeout: Duration, retries: u32) -> NotifyConfig {
    let mut config = NotifyConfig {
        timeout: HumanDuration(timeout),
        retries,
        ..NotifyConfig::default()
    };
    config.desktop.enabled = false;
    config
}

fn target_reached() -> Notification {
    let mut params = Params::new();
    params.insert("hidden".into(), serde_json::json!(64));
    params.insert("lr".into(), serde_json::json!(0.01));
    Notification::target_reached(
        "digits",
        Some(4),
        TargetReached {
            metric: "accuracy",
            value: 0.97,
            target: 0.95,
            iteration: 2,
            params: &params,
            commit: "89abcdef0123456789abcdef0123456789abcdef",
            model: Some(Path::new("/data/runs/4/2/model.npz")),
        },
    )
}

async fn next_report(rx: &mut UnboundedReceiver<NotifyReport>, within: Duration) -> NotifyReport {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a report in time")
        .expect("the notifier is alive")
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    let smtp = SmtpSink::start(None);
    let config = NotifyConfig {
        email: Some(smtp.config()),
        ..quiet_config(Duration::from_secs(10), 0)
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    notifier.send(target_reached());
    let report = next_report(&mut rx, Duration::from_secs(15)).await;
    assert_eq!(report.channel, Channel::Email);
    assert_eq!(report.kind, NotificationKind::TargetReached);
    assert_eq!(report.result, Ok(()), "{report}");

    let message = smtp.message(1);
    assert!(
        message.contains("Subject: [mlops-tui] digits: target reached: accuracy = 0.97"),
        "{message}"
    );
    assert!(message.contains("From: mlops-tui <mlops@example.org>"));
    assert!(message.contains("To: team@example.org"));
    assert!(
        message.contains("accuracy reached 0.97 (target 0.95) in iteration 2 of commit 89abcdef.")
    );
    assert!(message.contains("Parameters: hidden=64, lr=0.01"));
    assert!(message.contains("Model: /data/runs/4/2/model.npz"));
    assert!(message.contains("Project: digits, run 4."));
    notifier.close().await;
}

#[tokio::test]
async fn email_authenticates_with_the_password_file_and_never_reveals_it() {
    let password = "correct-horse-battery-staple";
    let smtp = SmtpSink::start(Some(("mlops", password)));
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, format!("{password}\n")).unwrap();
    std::fs::write(&bad, "wrong-horse-9f8e7d\n").unwrap();
    let email = |file: &Path| EmailConfig {
        user: Some("mlops".into()),
        password_file: Some(file.to_path_buf()),
        ..smtp.config()
    };

    let config = NotifyConfig {
        email: Some(email(&good)),
        ..quiet_config(Duration::from_secs(10), 0)
    };
    let results = notify::send_test(&config, "digits").await;
    assert_eq!(results, vec![(Channel::Email, Ok(()))]);
    assert!(
        smtp.message(1)
            .contains("Subject: [mlops-tui] digits: test notification")
    );

    let config = NotifyConfig {
        email: Some(email(&bad)),
        ..quiet_config(Duration::from_secs(10), 2)
    };
    assert!(!format!("{config:?}").contains("wrong-horse"));
    let results = notify::send_test(&config, "digits").await;
    let [(Channel::Email, Err(e))] = results.as_slice() else {
        panic!("expected one email failure: {results:?}");
    };
    assert!(
        e.starts_with(&format!("smtp 127.0.0.1:{}: ", smtp.port)),
        "{e}"
    );
    assert!(e.contains("535"), "the server's refusal is quoted: {e}");
    assert!(!e.contains("wrong-horse"), "{e}");
    assert!(!e.contains("after"), "a refused login is not retried: {e}");
    assert_eq!(smtp.count(), 1);
}

#[tokio::test]
async fn email_to_a_wrong_port_reports_clearly_and_the_notifier_keeps_working() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (url, mut bodies) = receiver().await;
    let config = NotifyConfig {
        email: Some(EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            security: Security::None,
            user: None,
            password_env: None,
            password_file: None,
            from: "mlops@example.org".into(),
            to: vec!["team@example.org".into()],
            events: NotificationKind::ALL.to_vec(),
        }),
        webhook: Some(webhook(&url)),
        ..quiet_config(Duration::from_secs(5), 1)
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    for round in 0..2 {
        notifier.send(Notification::monitor_gave_up("digits", Some(round), "test"));
        let mut email = None;
        let mut hook = None;
        while email.is_none() || hook.is_none() {
            let r = next_report(&mut rx, Duration::from_secs(15)).await;
            match r.channel {
                Channel::Email => email = Some(r.result),
                Channel::Webhook => hook = Some(r.result),
                Channel::Desktop => panic!("desktop is off"),
            }
        }
        assert_eq!(hook, Some(Ok(())));
        let e = email.unwrap().unwrap_err();
        assert!(
            e.starts_with(&format!("smtp 127.0.0.1:{port}: Connection error")),
            "{e}"
        );
        assert!(e.contains("refused"), "{e}");
        assert!(e.ends_with("(after 2 attempts)"), "{e}");
        assert_eq!(
            bodies.recv().await.unwrap()["run"],
            serde_json::json!(round)
        );
    }
    notifier.close().await;
}

#[tokio::test]
async fn webhook_posts_slack_compatible_json() {
    let (url, mut bodies) = receiver().await;
    let config = NotifyConfig {
        webhook: Some(webhook(&url)),
        ..quiet_config(Duration::from_secs(5), 0)
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    notifier.send(target_reached());
    let report = next_report(&mut rx, Duration::from_secs(10)).await;
    assert_eq!((report.channel, report.result), (Channel::Webhook, Ok(())));
    let body = bodies.recv().await.unwrap();
    assert_eq!(
        body["text"],
        serde_json::json!(
            "*[mlops-tui] digits: target reached: accuracy = 0.97*\n\
             accuracy reached 0.97 (target 0.95) in iteration 2 of commit 89abcdef.\n\
             Parameters: hidden=64, lr=0.01\nModel: /data/runs/4/2/model.npz"
        )
    );
    assert_eq!(body["kind"], "target_reached");
    assert_eq!(body["project"], "digits");
    assert_eq!(body["run"], 4);
    assert_eq!(body["fields"]["value"], 0.97);
    assert_eq!(body["fields"]["params"]["lr"], 0.01);
    assert_eq!(
        body["fields"]["commit"],
        "89abcdef0123456789abcdef0123456789abcdef"
    );
    notifier.close().await;
}

#[tokio::test]
async fn a_hanging_webhook_times_out_without_delaying_email() {
    let smtp = SmtpSink::start(None);
    let (url, _accepted) = hanging_receiver().await;
    let config = NotifyConfig {
        email: Some(smtp.config()),
        webhook: Some(webhook(&url)),
        ..quiet_config(Duration::from_secs(4), 0)
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    let sent = Instant::now();
    notifier.send(target_reached());
    // The webhook cannot report before its 4 s timeout; the email must not wait for it.
    let first = next_report(&mut rx, Duration::from_secs(10)).await;
    assert_eq!((first.channel, first.result), (Channel::Email, Ok(())));
    assert!(sent.elapsed() < Duration::from_secs(4));
    let second = next_report(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(second.channel, Channel::Webhook);
    let e = second.result.unwrap_err();
    assert!(e.contains("timed out after 4s"), "{e}");
    assert!(!e.contains("SECRETTOKEN"));
    assert!(smtp.message(1).contains("target reached"));
    notifier.close().await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_says_so() {
    let (url, mut accepted) = hanging_receiver().await;
    let config = NotifyConfig {
        webhook: Some(webhook(&url)),
        queue: 1,
        ..quiet_config(Duration::from_secs(1), 0)
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    notifier.send(Notification::monitor_gave_up("p", Some(1), "first"));
    // Once the worker is delivering the first one, the second waits and the third pushes it out.
    accepted.recv().await.unwrap();
    let started = Instant::now();
    notifier.send(Notification::iteration_failed(
        "p",
        Some(1),
        2,
        "abc",
        "second",
    ));
    notifier.send(Notification::monitor_gave_up("p", Some(1), "third"));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "send blocked"
    );
    let dropped = next_report(&mut rx, Duration::from_millis(100)).await;
    assert_eq!(dropped.kind, NotificationKind::IterationFailed);
    assert_eq!(
        dropped.result,
        Err("dropped \"iteration 2 failed\": 1 notifications were already waiting".into())
    );
    for _ in 0..2 {
        let r = next_report(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(r.kind, NotificationKind::MonitorGaveUp);
        assert!(r.result.unwrap_err().contains("timed out"));
    }
    notifier.close().await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn send_test_reports_every_channel() {
    let smtp = SmtpSink::start(None);
    let (url, mut bodies) = receiver().await;
    let config = NotifyConfig {
        email: Some(EmailConfig {
            events: vec![],
            ..smtp.config()
        }),
        webhook: Some(WebhookConfig {
            events: vec![],
            ..webhook(&url)
        }),
        ..quiet_config(Duration::from_secs(5), 0)
    };
    let results = notify::send_test(&config, "digits").await;
    assert_eq!(
        results,
        vec![(Channel::Email, Ok(())), (Channel::Webhook, Ok(()))]
    );
    assert!(
        smtp.message(1)
            .contains("Subject: [mlops-tui] digits: test notification")
    );
    assert_eq!(bodies.recv().await.unwrap()["kind"], "test");
}
#[test]
fn desktop_notification_reaches_the_server_on_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("notifications.jsonl");
    let server = fixture("notification_server.py");
    run_inner(
        &[
            "dbus-run-session",
            "--",
            PYTHON,
            server.to_str().unwrap(),
            record.to_str().unwrap(),
            "--",
        ],
        "inner_desktop_delivers",
        &[],
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&record)
        .expect("the notification server recorded nothing")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["app_name"], "mlops-tui");
    assert_eq!(
        lines[0]["summary"],
        "[mlops-tui] digits: target reached: accuracy = 0.97"
    );
    assert!(
        lines[0]["body"]
            .as_str()
            .unwrap()
            .contains("Parameters: hidden=64, lr=0.01")
    );
}

#[test]
fn desktop_without_a_bus_says_so_once_and_the_rest_goes_on() {
    let runtime_dir = tempfile::tempdir().unwrap();
    let text = run_inner(
        &[],
        "inner_desktop_unavailable",
        &[
            ("DBUS_SESSION_BUS_ADDRESS", None),
            ("XDG_RUNTIME_DIR", Some(runtime_dir.path())),
        ],
    );
    assert!(text.contains("desktop said: no desktop notification service on the session bus: "));
}

#[test]
fn desktop_with_a_bus_but_no_notification_server_says_so_once() {
    let text = run_inner(
        &["dbus-run-session", "--"],
        "inner_desktop_unavailable",
        &[],
    );
    assert!(text.contains("ServiceUnknown"), "{text}");
}

#[tokio::test]
#[ignore = "run by desktop_notification_reaches_the_server_on_the_bus inside dbus-run-session"]
async fn inner_desktop_delivers() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(quiet_desktop(), tx);
    notifier.send(target_reached());
    let report = next_report(&mut rx, Duration::from_secs(10)).await;
    assert_eq!((report.channel, report.result), (Channel::Desktop, Ok(())));
    notifier.close().await;
}

/// Three notifications: the desktop channel reports its absence once, the webhook delivers all three.
#[tokio::test]
#[ignore = "run by the desktop_* tests without a usable notification service"]
async fn inner_desktop_unavailable() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let (url, _bodies) = receiver().await;
    let config = NotifyConfig {
        webhook: Some(webhook(&url)),
        ..quiet_desktop()
    };
    let (tx, mut rx) = unbounded_channel();
    let notifier = notify::spawn(config, tx);
    for i in 0..3 {
        notifier.send(Notification::iteration_failed(
            "p",
            Some(1),
            i,
            "abc",
            "oom",
        ));
    }
    notifier.close().await;
    let mut desktop = Vec::new();
    let mut delivered = 0;
    while let Ok(r) = rx.try_recv() {
        match r.channel {
            Channel::Desktop => desktop.push(r.result.unwrap_err()),
            Channel::Webhook => {
                assert_eq!(r.result, Ok(()));
                delivered += 1;
            }
            Channel::Email => unreachable!(),
        }
    }
    assert_eq!(delivered, 3);
    assert_eq!(desktop.len(), 1, "reported once: {desktop:?}");
    println!("desktop said: {}", desktop[0]);
}

fn quiet_desktop() -> NotifyConfig {
    let mut config = quiet_config(Duration::from_secs(5), 0);
    config.desktop.enabled = true;
    config
}

#[test]
fn notify_section_parses_with_defaults_and_subscriptions() {
    let path = fixture("valid.toml");
    let config = mlops_tui::support::config_file::load(&path).unwrap();
    let n = &config.notify;
    assert_eq!(n.timeout, HumanDuration(Duration::from_secs(5)));
    assert_eq!(n.retries, 1);
    assert_eq!(n.queue, 64);
    assert!(n.desktop.enabled);
    assert_eq!(
        n.desktop.events,
        vec![
            NotificationKind::TargetReached,
            NotificationKind::BudgetSpent
        ]
    );
    let email = n.email.as_ref().unwrap();
    assert_eq!((email.security, email.port()), (Security::Tls, 465));
    assert_eq!(email.password_env.as_deref(), Some("MLOPS_SMTP_PASSWORD"));
    assert_eq!(
        email.events,
        vec![
            NotificationKind::TargetReached,
            NotificationKind::BudgetSpent,
            NotificationKind::MonitorGaveUp
        ]
    );
    let hook = n.webhook.as_ref().unwrap();
    assert_eq!(hook.url_env.as_deref(), Some("MLOPS_SLACK_WEBHOOK"));

    let minimal = std::fs::read_to_string(&path).unwrap();
    let minimal = &minimal[..minimal.find("[notify]").unwrap()];
    let config = Config::parse(minimal, Path::new("mlops.toml")).unwrap();
    assert_eq!(config.notify, NotifyConfig::default());
    assert_eq!(config.notify.desktop.events, NotificationKind::ALL.to_vec());
}

#[test]
fn bad_notify_sections_name_file_line_and_value() {
    let cases = [
        ("bad_password_in_file.toml", 11, "unknown field `password`"),
        ("bad_event.toml", 10, "unknown variant `run_finished`"),
        (
            "bad_recipient.toml",
            8,
            "`notify.email.to` \"team at example.org\" is not an email address",
        ),
        (
            "bad_webhook_scheme.toml",
            11,
            "webhook URL \"ftp://hooks.example.org/…\" must be http:// or https://, not ftp://",
        ),
    ];
    for (file, line, message) in cases {
        let path = fixture(file);
        let err = mlops_tui::support::config_file::load(&path)
            .unwrap_err()
            .to_string();
        let prefix = format!("{}:{line}:", path.display());
        assert!(err.starts_with(&prefix), "{file}: {err}");
        assert!(err.contains(message), "{file}: {err}");
    }
}
