//! On the real engine: an iteration whose per-epoch metric lags behind is pruned and the run still
//! reaches its target; a run on a new commit starts warm from the branch's earlier best and needs
//! fewer iterations than a cold run of the same commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, commit_all};
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, RunStatus};

const TRAIN: &str = include_str!("fixtures/search/train.py");

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 6
max_failures = 0
metric_timeout = "120s"

[resources]
memory = "256m"

[tweak]
strategy = "grow"

[tweak.space]
x = { values = [1, 2, 3, 4, 5, 6] }

[tweak.pruning]
rule = "median"
warmup = 1
min_trials = 2
"#;

fn store(f: &Fixture) -> Store {
    Store::open(&f.data.path().join("history.sqlite3")).unwrap()
}

fn statuses(f: &Fixture, run: i64) -> Vec<IterStatus> {
    let rows = store(f).iterations(RunId(run)).unwrap();
    rows.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_lagging_iteration_is_pruned_and_the_run_reaches_its_target() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert_eq!(
        statuses(&f, 1),
        vec![
            IterStatus::BelowTarget,
            IterStatus::BelowTarget,
            IterStatus::Pruned,
            IterStatus::Succeeded
        ],
        "{out}"
    );
    let rows = store(&f).iterations(RunId(1)).unwrap();
    let pruned = rows[2].reason.clone().unwrap_or_default();
    assert!(
        pruned.starts_with("pruned at epoch 2: 0.2 < median 0.5") && pruned.ends_with("at epoch 2"),
        "{pruned}"
    );
    let points = store(&f)
        .metric_points(RunId(1), IterationNo(3))
        .unwrap()
        .len();
    assert!(
        points < 6,
        "the pruned iteration stopped early: {points} epochs"
    );
    assert!(
        !out.contains("revived"),
        "a pruned container is not revived: {out}"
    );
    assert!(!out.contains("] failed: "), "no iteration failed: {out}");
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn a_new_commit_starts_warm_and_needs_fewer_iterations_than_cold() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    let (first, out) = f.run_once().await;
    assert_eq!(first.status, RunStatus::Succeeded, "{out}");
    let first_iterations = statuses(&f, 1).len();
    assert_eq!(first_iterations, 4, "{out}");

    std::fs::write(
        f.dir().join("NOTES.md"),
        "a new commit of the same project\n",
    )
    .unwrap();
    commit_all(f.dir(), "notes");

    let (warm, out) = f.run_once().await;
    assert_eq!(warm.status, RunStatus::Succeeded, "{out}");
    let rows = store(&f).iterations(RunId(2)).unwrap();
    assert_eq!(rows[0].params["x"], serde_json::json!(4), "{out}");
    let why = rows[0].proposal_reason.clone().unwrap_or_default();
    assert!(
        why.starts_with("warm start: best of run 1 @ ") && why.ends_with("(accuracy 0.97)"),
        "{why}"
    );

    let (cold, out) = f.run_once_cold().await;
    assert_eq!(cold.status, RunStatus::Succeeded, "{out}");
    let rows = store(&f).iterations(RunId(3)).unwrap();
    assert_eq!(rows[0].params["x"], serde_json::json!(1), "{out}");
    assert_eq!(rows[0].proposal_reason, None);
    let (warm_n, cold_n) = (statuses(&f, 2).len(), rows.len());
    assert!(warm_n < cold_n, "warm {warm_n} iterations, cold {cold_n}");
    assert!(f.leftover_containers().await.is_empty());
}
