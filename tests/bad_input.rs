//! Bad input gets a clear message, loses nothing and leaves no container behind. Real engine, real git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, bin};
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, RunStatus};

/// A numpy project's `mlops.toml` with `extra_budget` lines appended to `[budget]`; a `max_iterations`
/// there replaces the default of 3.
fn toml(extra_budget: &str) -> String {
    let iterations = if extra_budget.contains("max_iterations") {
        ""
    } else {
        "max_iterations = 3\n"
    };
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
{iterations}max_failures = 1
{extra_budget}

[tweak]
strategy = "grow"

[tweak.space]
epochs = {{ start = 1, max = 3, step = 1 }}
"#
    )
}

#[tokio::test]
async fn crashing_script_fails_with_its_last_lines_until_the_failure_budget() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("")),
        (
            "train.py",
            "import numpy\nprint('loading data', flush=True)\nraise RuntimeError('shape mismatch in layer 2')\n",
        ),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        outcome
            .reason
            .contains("2 iterations failed (max_failures = 1)"),
        "{}",
        outcome.reason
    );
    assert!(
        out.contains(
            "[train:1] error: failed: exited with code 1: RuntimeError: shape mismatch in layer 2 \
             (at train.py:3); last lines:"
        ),
        "{out}"
    );
    assert!(
        out.contains("RuntimeError: shape mismatch in layer 2"),
        "{out}"
    );
    assert!(
        out.contains("[train:2] container"),
        "the loop goes on after one failure: {out}"
    );
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 2);
    assert!(its.iter().all(|i| i.status == IterStatus::Failed));
    assert!(
        its[0]
            .log_tail
            .as_deref()
            .unwrap()
            .contains("shape mismatch")
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn script_that_never_prints_the_metric_hits_the_metric_deadline() {
    let f = Fixture::with_files(&[
        (
            "mlops.toml",
            &toml("metric_timeout = \"3s\"\nmax_iterations = 1"),
        ),
        (
            "train.py",
            "import time\nprint('training quietly', flush=True)\ntime.sleep(600)\n",
        ),
    ]);
    let started = std::time::Instant::now();
    let (outcome, out) = f.run_once().await;
    assert!(
        started.elapsed().as_secs() < 60,
        "the deadline must cut the container short"
    );
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{}", outcome.reason);
    assert!(
        out.contains("no `accuracy` reported for 3s (budget.metric_timeout): stopped"),
        "{out}"
    );
    let it = &f.store().iterations(RunId(1)).unwrap()[0];
    assert_eq!(it.status, IterStatus::Failed);
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn script_that_runs_too_long_is_stopped_with_the_reason() {
    let f = Fixture::with_files(&[
        (
            "mlops.toml",
            &toml("iteration_timeout = \"4s\"\nmax_iterations = 1"),
        ),
        (
            "train.py",
            "import time\nfor e in range(1000):\n    print(f'epoch {e} accuracy=0.1', flush=True)\n    time.sleep(0.5)\n",
        ),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_ne!(outcome.status, RunStatus::Succeeded);
    assert!(
        out.contains("ran past 4s (budget.iteration_timeout): stopped"),
        "{out}"
    );
    let it = &f.store().iterations(RunId(1)).unwrap()[0];
    assert_eq!(it.status, IterStatus::Failed);
    assert!(it.reason.as_deref().unwrap().contains("iteration_timeout"));
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn nan_metric_is_never_best_and_never_meets_the_target() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("max_iterations = 1")),
        (
            "train.py",
            "print('epoch 1/1 accuracy=0.95', flush=True)\nprint('epoch 1/1 accuracy=nan', flush=True)\n",
        ),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_ne!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(out.contains("`accuracy` was NaN"), "{out}");
    let store = f.store();
    let run = store.run(RunId(1)).unwrap().unwrap();
    assert_eq!(run.best_iteration, None);
    let points = store.metric_points(RunId(1), IterationNo(1)).unwrap();
    assert!(
        points.last().unwrap().value.is_nan(),
        "NaN is recorded, not dropped"
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn project_without_a_model_fails_before_any_container() {
    let mut t = toml("");
    t = t.replace("image = \"numpy\"\n", "");
    let f = Fixture::with_files(&[
        ("mlops.toml", &t),
        ("train.py", "print('hello')\n"),
        ("util.py", "X = 1\n"),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(out.contains("no model found"), "{out}");
    assert!(
        out.contains("train.py") && out.contains("util.py"),
        "names what was scanned: {out}"
    );
    assert!(!out.contains("container"), "no container may start: {out}");
    assert!(f.store().iterations(RunId(1)).unwrap().is_empty());
}

#[test]
fn malformed_config_names_file_line_and_value() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("iteration_timeout = \"ten minutes\"")),
        ("train.py", "import numpy\n"),
    ]);
    let out = std::process::Command::new(bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "error: {}/mlops.toml:12:21: \"ten minutes\" is not a duration",
        f.dir().canonicalize().unwrap().display()
    );
    assert!(stderr.contains(&expected), "{stderr}\nexpected: {expected}");
}

#[test]
fn docker_unreachable_is_a_clear_error() {
    let f = Fixture::with_files(&[("mlops.toml", &toml("")), ("train.py", "import numpy\n")]);
    let out = std::process::Command::new(bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Docker engine not reachable (unix:///nonexistent/docker.sock)"),
        "{stderr}"
    );
}

/// A script that writes into `/mlops` without end (about 64 MiB/s here) is stopped as it reaches
/// `resources.disk`: its one file cannot grow past the limit (the write fails, "File too large"), or
/// the watchdog kills it as the directory passes it. Either way the run stops at once (the script
/// writes that much whatever its parameters) and says which setting to raise.
#[tokio::test]
async fn writing_past_the_disk_limit_stops_the_run_with_that_reason() {
    let script = "import time\n\
                  chunk = b'x' * (1 << 20)\n\
                  print('writing checkpoints', flush=True)\n\
                  with open('/mlops/checkpoints/blob', 'wb') as f:\n\
                  \x20   while True:\n\
                  \x20       f.write(chunk)\n\
                  \x20       f.flush()\n\
                  \x20       time.sleep(1 / 64)\n";
    let config = format!("{}\n[resources]\ndisk = \"32m\"\n", toml(""));
    let f = Fixture::with_files(&[("mlops.toml", &config), ("train.py", script)]);
    let started = std::time::Instant::now();
    let (outcome, out) = f.run_once().await;
    let took = started.elapsed();
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        outcome.reason.contains("[resources] disk"),
        "{}",
        outcome.reason
    );
    assert!(
        outcome.reason.contains("no tweak can fix this"),
        "{}",
        outcome.reason
    );
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "the run stops at the first: {out}");
    assert_eq!(its[0].status, IterStatus::Failed);
    let dir = f.data.path().join("runs/1/iter-1");
    let written = mlops_tui::support::fsutil::tree_size(&dir);
    assert!(
        (16 << 20..64 << 20).contains(&written),
        "{} holds {written} bytes",
        dir.display()
    );
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert!(f.leftover_containers().await.is_empty());
}
