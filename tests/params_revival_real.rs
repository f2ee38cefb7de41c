//! On the real engine: a revived container reads the parameters the history recorded, even when its
//! previous life damaged `/mlops/params.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptionsBuilder;
use common::Fixture;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::RunStatus;

const TRAIN: &str = include_str!("fixtures/revival/train.py");

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.99

[budget]
max_iterations = 1
max_failures = 0
metric_timeout = "60s"

[resources]
memory = "256m"

[params]
epochs = 4
"#;

/// Waits until iteration 1 has recorded its first metric point: the script has damaged its file.
async fn wait_for_first_epoch(f: &Fixture) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let n = Store::open(&f.data.path().join("history.sqlite3"))
            .ok()
            .and_then(|s| s.metric_points(RunId(1), IterationNo(1)).ok())
            .map(|p| p.len())
            .unwrap_or(0);
        if n >= 1 {
            return;
        }
        assert!(Instant::now() < deadline, "iteration 1 never reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

#[tokio::test]
async fn revived_container_reads_params_rewritten_from_the_history() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    let params = f.data.path().join("runs/1/iter-1/params.json");
    let killer = async {
        wait_for_first_epoch(&f).await;
        let damaged = std::fs::read_to_string(&params).unwrap();
        assert!(
            damaged.contains("not json"),
            "the script damaged {damaged:?}"
        );
        let ids = f.containers(true).await;
        assert_eq!(ids.len(), 1, "one training container");
        kill(&ids[0]).await;
    };
    let ((outcome, out), ()) = tokio::join!(f.run_once(), killer);
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(out.contains("container died (exit 137, SIGKILL)"), "{out}");
    assert_eq!(
        out.matches("params read: ['epochs']").count(),
        2,
        "both lives read valid parameters: {out}"
    );
    assert!(
        out.contains("found next to me: written by life 1"),
        "a revival finds what its first life wrote in /workspace: {out}"
    );
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
    assert_eq!(rewritten["epochs"], 4);
    assert!(f.leftover_containers().await.is_empty());
}
