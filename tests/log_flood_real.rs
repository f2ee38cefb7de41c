//! A flood of output loses nothing: a script printing half a million numbered lines as fast as it can
//! is shown whole, in order, without a duplicate, and kept whole in the iteration's `output.log`.
//! Real engine: the daemon here rotates `json-file` logs at 10 MB, which used to lose most of such a
//! flood silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fixture, SharedBuf};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::git::Project;
use mlops_tui::core::model::RunStatus;
use mlops_tui::engine::{Engine, EngineOptions, Outcome};
use mlops_tui::headless::Printer;

const LINES: u64 = 500_000;

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 1
"#;

/// Prints 0..LINES-1, one number a line, in big writes, then the metric.
fn script() -> String {
    format!(
        "import sys\n\
         n = {LINES}\n\
         step = 20000\n\
         for start in range(0, n, step):\n\
         \x20   sys.stdout.write(''.join(f'{{i}}\\n' for i in range(start, min(n, start + step))))\n\
         sys.stdout.flush()\n\
         print('accuracy=0.9', flush=True)\n"
    )
}

/// One run as `run --headless --once` does it, like [`Fixture::run_once`] but without echoing two
/// flood to the test's own output.
async fn run_once_quiet(f: &Fixture) -> (Outcome, String) {
    let backend = Arc::new(DockerBackend::connect_default().expect("Docker engine"));
    let opts = EngineOptions {
        project: Project::locate(f.dir()).unwrap(),
        runs_dir: f.data.path().join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: false,
        remote: None,
        webhook: None,
        data_policy: mlops_tui::support::data_policy::DataPolicy::new(
            vec![std::env::temp_dir().display().to_string()],
            "test-config.toml".into(),
            &[],
        ),
    };
    let engine = Engine::new(backend, f.store(), opts);
    let out = SharedBuf::default();
    let mut printer = Printer::new(out.clone(), true);
    let outcome = tokio::time::timeout(Duration::from_secs(180), engine.run(&mut printer))
        .await
        .expect("run finished within 3 minutes");
    (outcome, out.text())
}

/// The numbered lines among `lines`, checked to be exactly 0..LINES-1 in order.
fn assert_whole<'a>(what: &str, lines: impl Iterator<Item = &'a str>) {
    let mut next = 0u64;
    for line in lines {
        let Ok(n) = line.trim().parse::<u64>() else {
            continue;
        };
        assert_eq!(n, next, "{what}: line {n} where {next} was due");
        next += 1;
    }
    assert_eq!(next, LINES, "{what}: {next} of {LINES} lines");
}

#[tokio::test]
async fn a_flood_of_output_is_shown_and_kept_whole_in_order() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", &script())]);
    let started = Instant::now();
    let (outcome, out) = run_once_quiet(&f).await;
    let took = started.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", outcome.reason);
    let shown = out.lines().filter_map(|l| l.strip_prefix("[train:1] "));
    assert_whole("shown", shown);
    assert!(!out.contains("lines may be missing"), "no gap expected");
    let kept =
        std::fs::read_to_string(f.data.path().join("runs/1/iter-1").join("output.log")).unwrap();
    assert_whole("output.log", kept.lines());
    assert!(
        kept.ends_with("accuracy=0.9\n"),
        "{}",
        &kept[kept.len() - 100..]
    );
    println!(
        "{LINES} lines in {took:.1?}: {:.0} lines/s",
        LINES as f64 / took.as_secs_f64()
    );
    assert!(f.leftover_containers().await.is_empty());
}
