//! `budget.metric_timeout` is judged on what the container did, after reading what is pending: a
//! healthy script is not killed for "no accuracy" because it, or mlops-tui, was stopped for a while.
//! Real Docker engine; a script reporting an epoch every half second, `metric_timeout = "5s"`.
//! - The container's process is stopped (SIGSTOP, through the engine) for 12 s, then continued: a
//!   frozen container cannot report, so its silence is not held against it.
//! - The real binary is stopped (SIGSTOP) for 12 s while the script goes on: on SIGCONT the epochs
//!   waiting in the log are read before any verdict, and their stamps show no silence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptionsBuilder;
use common::Fixture;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::RunStatus;

const EPOCHS: u32 = 40;
const STOPPED: Duration = Duration::from_secs(12);

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 1
metric_timeout = "5s"
"#;

/// An epoch every half second; only the last one reaches the target.
fn script() -> String {
    format!(
        "import time\n\
         for e in range(1, {EPOCHS} + 1):\n\
         \x20   time.sleep(0.5)\n\
         \x20   print(f'epoch {{e}}/{EPOCHS} accuracy={{0.95 if e == {EPOCHS} else 0.5}}', flush=True)\n"
    )
}

fn fixture() -> Fixture {
    Fixture::with_files(&[("mlops.toml", TOML), ("train.py", &script())])
}

fn assert_every_epoch_recorded(f: &Fixture) {
    let store = Store::open(&f.data.path().join("history.sqlite3")).unwrap();
    let points = store.metric_points(RunId(1), IterationNo(1)).unwrap();
    let epochs: Vec<Option<u32>> = points.iter().map(|p| p.epoch).collect();
    let want: Vec<Option<u32>> = (1..=EPOCHS).map(Some).collect();
    assert_eq!(epochs, want);
}

/// Sends `sig` to the container's process; an error when the container is no longer running (it
/// was stopped for its silence: the run's outcome then says so).
async fn signal(id: &str, sig: &str) -> Result<(), bollard::errors::Error> {
    let docker = DockerBackend::connect_default().unwrap();
    let opts = KillContainerOptionsBuilder::default().signal(sig).build();
    docker.client().kill_container(id, Some(opts)).await
}

#[tokio::test]
async fn a_container_stopped_longer_than_metric_timeout_is_not_killed_and_completes() {
    let f = fixture();
    let freezer = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            if let Some(id) = f.containers(true).await.into_iter().next() {
                break id;
            }
            assert!(Instant::now() < deadline, "no container started");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        signal(&id, "SIGSTOP").await.expect("SIGSTOP");
        tokio::time::sleep(STOPPED).await;
        let _ = signal(&id, "SIGCONT").await;
    };
    let ((outcome, out), ()) = tokio::join!(f.run_once(), freezer);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", outcome.reason);
    assert!(!out.contains("budget.metric_timeout): stopped"), "{out}");
    assert!(
        out.contains("is frozen (paused, or its processes stopped by a signal)"),
        "the stop was seen: {out}"
    );
    assert_every_epoch_recorded(&f);
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn mlops_tui_stopped_longer_than_metric_timeout_reads_the_waiting_epochs_and_kills_nothing() {
    let f = fixture();
    let child = Command::new(common::bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.containers(true).await.is_empty() {
        assert!(Instant::now() < deadline, "no container started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kill = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    };
    kill("-STOP");
    tokio::time::sleep(STOPPED).await;
    kill("-CONT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("budget.metric_timeout): stopped"), "{text}");
    assert_every_epoch_recorded(&f);
    assert!(f.leftover_containers().await.is_empty());
}
