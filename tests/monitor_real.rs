//! Job 6 on the real engine: dead containers are revived from their checkpoint, code failures are not,
//! and a killed mlops-tui re-attaches without duplicating anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptionsBuilder;
use common::{Fixture, bin};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, RunStatus};

const TRAIN: &str = include_str!("fixtures/monitor/train.py");

/// `params` is the inline TOML of `[params]`; `extra` goes at the end (e.g. a `[monitor]` table).
fn project(params: &str, memory: &str, extra: &str) -> Fixture {
    let toml = format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.99

[budget]
max_iterations = 1
max_failures = 0
metric_timeout = "30s"

[resources]
memory = "{memory}"

[params]
{params}
{extra}
"#
    );
    Fixture::with_files(&[("mlops.toml", &toml), ("train.py", TRAIN)])
}

async fn kill(id: &str) {
    let docker = DockerBackend::connect_default().unwrap();
    let opts = KillContainerOptionsBuilder::default()
        .signal("SIGKILL")
        .build();
    docker
        .client()
        .kill_container(id, Some(opts))
        .await
        .unwrap();
}

/// Waits until iteration 1 has recorded at least `epochs` metric points.
async fn wait_for_epochs(f: &Fixture, epochs: usize) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let n = Store::open(&f.data.path().join("history.sqlite3"))
            .ok()
            .and_then(|s| s.metric_points(RunId(1), IterationNo(1)).ok())
            .map(|p| p.len())
            .unwrap_or(0);
        if n >= epochs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "iteration 1 never reached epoch {epochs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn epochs_of(f: &Fixture) -> Vec<u32> {
    f.store()
        .metric_points(RunId(1), IterationNo(1))
        .unwrap()
        .iter()
        .filter_map(|p| p.epoch)
        .collect()
}

/// A pseudo-random epoch in 2..=6 (the clock is random enough here, and the value is printed).
fn random_epoch() -> usize {
    2 + (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 5) as usize
}

#[tokio::test]
async fn killed_container_is_revived_and_resumes_from_its_checkpoint() {
    let f = project("epochs = 12\npace = 0.4", "256m", "");
    let at = random_epoch();
    println!("killing after epoch {at}");
    let run = async {
        let killer = async {
            wait_for_epochs(&f, at).await;
            let ids = f.containers(true).await;
            assert_eq!(ids.len(), 1, "one training container");
            kill(&ids[0]).await;
        };
        let (out, ()) = tokio::join!(f.run_once(), killer);
        out
    };
    let (outcome, out) = run.await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains("[monitor:1] container died (exit 137, SIGKILL)"),
        "{out}"
    );
    assert!(out.contains("reviving in 0s (revival 1 of 5)"), "{out}");
    assert!(out.contains("resumed from checkpoint at epoch"), "{out}");
    assert_eq!(
        epochs_of(&f),
        (1..=12).collect::<Vec<_>>(),
        "no gap, no duplicated epoch"
    );
    let events = f.store().events(RunId(1)).unwrap();
    assert!(
        events
            .iter()
            .any(|(_, _, kind, text)| kind == "monitor:1" && text.contains("revived")),
        "{events:?}"
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn oom_killed_container_is_revived_with_backoff_then_given_up() {
    let f = project(
        "epochs = 3\nhog_mb = 400",
        "48m",
        "[monitor]\nmax_revivals = 2\nbackoff_initial = \"500ms\"",
    );
    let started = Instant::now();
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        out.contains("[monitor:1] container died (out of memory, limit 48m)"),
        "{out}"
    );
    assert!(out.contains("reviving in 0s (revival 1 of 2)"), "{out}");
    assert!(out.contains("reviving in 500ms (revival 2 of 2)"), "{out}");
    assert!(
        out.contains("gave up after 2 revivals (monitor.max_revivals); last death: out of memory"),
        "{out}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the back-off was waited"
    );
    let it = &f.store().iterations(RunId(1)).unwrap()[0];
    assert_eq!(it.status, IterStatus::Failed);
    assert!(
        it.reason
            .as_deref()
            .unwrap()
            .contains("gave up after 2 revivals")
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn script_failing_by_itself_is_not_revived() {
    let f = project("epochs = 3\nfail = true", "256m", "");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(!out.contains("reviving"), "{out}");
    assert!(
        out.contains(
            "exited with code 1; last lines:\n      configuration error: refusing to train"
        ),
        "{out}"
    );
    assert!(f.leftover_containers().await.is_empty());
}

fn start_headless(f: &Fixture) -> Child {
    Command::new(bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn finish(child: Child) -> (i32, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn killed_mlops_tui_reattaches_and_completes_without_duplicates() {
    let f = project("epochs = 14\npace = 0.4", "256m", "");
    let mut first = start_headless(&f);
    wait_for_epochs(&f, 3).await;
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    assert_eq!(
        f.containers(true).await.len(),
        1,
        "the training container outlives mlops-tui"
    );

    let (code, out) = finish(start_headless(&f)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resumed run 1"), "{out}");
    assert!(
        out.contains("[monitor:1] re-attaching to container"),
        "{out}"
    );
    assert!(
        !out.contains("reviving"),
        "a live container is re-attached, not revived: {out}"
    );
    let store = f.store();
    assert_eq!(
        store.runs(10).unwrap().len(),
        1,
        "no second run for the same commit"
    );
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "every iteration exactly once");
    assert_eq!(its[0].status, IterStatus::Succeeded);
    assert_eq!(epochs_of(&f), (1..=14).collect::<Vec<_>>());
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn container_killed_while_mlops_tui_is_down_is_revived_on_restart() {
    let f = project("epochs = 12\npace = 0.4", "256m", "");
    let mut first = start_headless(&f);
    wait_for_epochs(&f, 3).await;
    first.kill().unwrap();
    let _ = first.wait();
    let ids = f.containers(true).await;
    assert_eq!(ids.len(), 1);
    kill(&ids[0]).await;

    let (code, out) = finish(start_headless(&f)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resumed run 1"), "{out}");
    assert!(out.contains("container died (exit 137, SIGKILL)"), "{out}");
    assert!(out.contains("resumed from checkpoint at epoch"), "{out}");
    assert_eq!(epochs_of(&f), (1..=12).collect::<Vec<_>>());
    assert_eq!(
        f.store().run(RunId(1)).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    assert!(f.leftover_containers().await.is_empty());
}
