//! Values and settings out of bounds are caught where they are written or reported: a metric outside
//! its range fails its iteration like NaN, and resources or parameters the engine would refuse stop
//! the run before any container starts. Real engine, real git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{IterStatus, RunStatus};

/// A numpy project's `mlops.toml` with `extra` appended (new tables allowed).
fn toml(extra: &str) -> String {
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 2
max_failures = 1

[tweak.space]
epochs = {{ start = 1, max = 3, step = 1 }}
{extra}"#
    )
}

#[tokio::test]
async fn an_accuracy_of_two_fails_the_iteration_instead_of_reaching_the_target() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("")),
        ("train.py", "print('epoch 1 accuracy=2.0', flush=True)\n"),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(!out.contains("target reached"), "{out}");
    assert!(
        out.contains(
            "[train:1] error: failed: `accuracy` was 2.0, outside its range [0, 1]: an invalid \
             value is never kept; set [metric] range if the scale differs"
        ),
        "{out}"
    );
    assert!(
        out.contains("[train:2] container"),
        "the loop goes on: {out}"
    );
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 2);
    assert!(its.iter().all(|i| i.status == IterStatus::Failed));
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn more_cpus_than_the_engine_has_fail_the_run_before_any_container() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("\n[resources]\ncpus = 1000\n")),
        ("train.py", "print('accuracy=0.95', flush=True)\n"),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    let shown = f.dir().join("mlops.toml");
    let expected = format!(
        "{}:17:1: `resources.cpus` is 1000, but the Docker engine has ",
        shown.display()
    );
    assert!(outcome.reason.contains(&expected), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("CPUs: set it to at most "),
        "{}",
        outcome.reason
    );
    assert!(!out.contains("[train:"), "no iteration may start: {out}");
    assert!(f.store().iterations(RunId(1)).unwrap().is_empty());
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn a_ten_megabyte_parameter_fails_the_run_where_it_is_written() {
    let blob = "x".repeat(10 * 1024 * 1024);
    let f = Fixture::with_files(&[
        (
            "mlops.toml",
            &toml(&format!("\n[params]\nnotes = \"{blob}\"\n")),
        ),
        ("train.py", "print('accuracy=0.95', flush=True)\n"),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    let expected = format!(
        "{}:17:1: `notes` is 10.0 MiB as JSON; a parameter value may be at most 64 KiB",
        f.dir().join("mlops.toml").display()
    );
    assert!(
        outcome.reason.contains(&expected),
        "{}",
        &outcome.reason[..300.min(outcome.reason.len())]
    );
    assert!(
        outcome.reason.len() < 2000,
        "the error quotes the line short"
    );
    assert!(!out.contains("[train:"), "no iteration may start");
    assert!(f.store().iterations(RunId(1)).unwrap().is_empty());
}
