//! Job 5 through the whole loop: the engine tells people when the best model is found, and a failing
//! channel never stops the pipeline. A real SMTP server (python3-aiosmtpd), a real Docker run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "fixtures/notify/support.rs"]
mod support;

use common::Fixture;
use mlops_tui::core::model::RunStatus;

/// A fast numpy project that reaches its target in one iteration, with `[notify]` as given.
fn project(notify: &str) -> Fixture {
    let toml = format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 1

{notify}
"#
    );
    Fixture::with_files(&[
        ("mlops.toml", &toml),
        (
            "train.py",
            "print('epoch 1/1 accuracy=0.93', flush=True)\nopen('clf.pkl', 'wb').write(b'model')\n",
        ),
    ])
}

#[tokio::test]
async fn target_reached_is_emailed_with_metric_and_model() {
    let sink = support::SmtpSink::start(None);
    let f = project(&format!(
        "[notify]\ntimeout = \"5s\"\n[notify.desktop]\nenabled = false\n[notify.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"mlops <m@example.org>\"\nto = [\"team@example.org\"]\n",
        sink.port
    ));
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(out.contains("[notify] email: target_reached sent"), "{out}");
    let mail = sink.message(1);
    assert!(mail.contains("Subject: "), "{mail}");
    assert!(mail.contains("target reached"), "{mail}");
    assert!(
        mail.contains("0.93"),
        "the metric is in the message: {mail}"
    );
    assert!(
        mail.contains("runs/1/iter-1/workspace/clf.pkl"),
        "the model path is in the message: {mail}"
    );
}

#[tokio::test]
async fn a_wrong_smtp_port_is_reported_and_the_pipeline_completes() {
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = project(&format!(
        "[notify]\ntimeout = \"3s\"\nretries = 0\n[notify.desktop]\nenabled = false\n[notify.email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"m@example.org\"\nto = [\"team@example.org\"]\n"
    ));
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "a failing channel never fails the run: {out}"
    );
    assert!(
        out.contains("[notify] email: target_reached not sent:"),
        "{out}"
    );
    assert!(
        out.contains(&format!("127.0.0.1:{port}")),
        "the error names where it tried: {out}"
    );
}
