//! Trials on several engines, for real: the local engine and the two test engines of
//! `tests/engines/up.sh` (dockerd in network namespaces over TCP with TLS, their own disks). Three
//! trials overlap across the three engines, as their own event streams show; and a trial whose engine
//! dies mid-run resumes on another engine from the checkpoint copied home, the engine, restarted,
//! losing its orphan container.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use common::{Fixture, SharedBuf};
use futures_util::StreamExt;
use mlops_tui::adapters::backend::ContainerBackend;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::engines::connect_all;
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::config::EngineSpec;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{ImageSpec, IterStatus, RunStatus, labels};
use mlops_tui::engine::{Engine, EngineOptions, Outcome};
use mlops_tui::headless::Printer;

/// The tests of this file share the test engines, and one kills e1: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Makes the numpy profile image present on every engine of `specs` (built on the first, copied to
/// the others), so that trials start at once: the copy of 1.5 GB takes a minute the first time.
async fn image_everywhere(specs: &[EngineSpec]) {
    let pool = connect_all(specs).await.unwrap();
    let profile = mlops_tui::adapters::images::profile("numpy").unwrap();
    for e in &pool.engines {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        e.backend
            .prepare_image(&ImageSpec::Profile(profile), tx)
            .await
            .unwrap_or_else(|err| panic!("numpy image on {}: {err}", e.spec.name));
    }
}

/// One `--once` run of the project in `dir` over `specs`, its history and runs in `data`, as
/// `run --headless --once --engine …` does.
async fn run_once(dir: &Path, data: &Path, specs: &[EngineSpec]) -> (Outcome, String) {
    let opts = EngineOptions {
        project: Project::locate(dir).unwrap(),
        runs_dir: data.join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: true,
        remote: None,
        webhook: None,
        data_policy: mlops_tui::support::data_policy::DataPolicy::new(
            vec![std::env::temp_dir().display().to_string()],
            "test-config.toml".into(),
            &[],
        ),
    };
    let store = Store::open(&data.join("history.sqlite3")).unwrap();
    let engine = Engine::from_pool(connect_all(specs).await.unwrap(), store, opts);
    let out = SharedBuf::default();
    let mut printer = Printer::new(out.clone(), true);
    let outcome = tokio::time::timeout(Duration::from_secs(600), engine.run(&mut printer))
        .await
        .expect("run finished within 10 minutes");
    let text = out.text();
    println!("{text}");
    (outcome, text)
}

/// One container's life as its engine saw it (nanoseconds), and the iteration it belongs to.
#[derive(Debug, Default, Clone)]
struct Life {
    engine: String,
    iteration: String,
    start: Option<i64>,
    die: Option<i64>,
}

type Lives = Arc<Mutex<BTreeMap<String, Life>>>;

/// Follows start/die events of the fixture's containers on every engine of `specs`.
fn record_lives(f: &Fixture, specs: &[EngineSpec]) -> (Lives, Vec<tokio::task::JoinHandle<()>>) {
    let lives: Lives = Arc::default();
    let store = format!("{}={}", labels::STORE, f.data.path().join("runs").display());
    let tasks = specs
        .iter()
        .map(|spec| {
            let (spec, store, sink) = (spec.clone(), store.clone(), lives.clone());
            tokio::spawn(async move {
                let docker = DockerBackend::connect(&spec).unwrap();
                let filters = HashMap::from([
                    ("type".to_string(), vec!["container".to_string()]),
                    ("event".to_string(), vec!["start".into(), "die".into()]),
                    ("label".to_string(), vec![store]),
                ]);
                let opts = EventsOptionsBuilder::default().filters(&filters).build();
                let mut events = docker.client().events(Some(opts));
                while let Some(Ok(ev)) = events.next().await {
                    let actor = ev.actor.unwrap_or_default();
                    let attributes = actor.attributes.unwrap_or_default();
                    let mut lives = sink.lock().unwrap();
                    let life = lives.entry(actor.id.unwrap_or_default()).or_default();
                    life.engine = spec.name.clone();
                    life.iteration = attributes
                        .get(labels::ITERATION)
                        .cloned()
                        .unwrap_or_default();
                    match ev.action.as_deref() {
                        Some("start") => life.start = ev.time_nano,
                        Some("die") => life.die = ev.time_nano,
                        _ => {}
                    }
                }
            })
        })
        .collect();
    (lives, tasks)
}

/// Iteration 1 reaches the target after some 15 s; the others report a low value each second for
/// two minutes, so they can only end by being stopped.
const RACE: &str = r#"
import os, time
winner = os.environ["MLOPS_ITERATION"] == "1"
epochs = 5 if winner else 120
for epoch in range(1, epochs + 1):
    time.sleep(3 if winner else 1)
    value = 0.95 if winner and epoch == epochs else 0.5
    print(f"epoch {epoch}/{epochs} accuracy={value}", flush=True)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn three_trials_overlap_on_three_engines_and_the_run_reaches_its_target() {
    let _serial = SERIAL.lock().await;
    let mut specs = vec![EngineSpec::local_default()];
    specs.extend(common::engines::require());
    image_everywhere(&specs).await;
    let f = Fixture::with_files(&[
        ("mlops.toml", &common::race_toml(3, 3, "")),
        ("train.py", RACE),
    ]);
    let (lives, watchers) = record_lives(&f, &specs);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (outcome, text) = run_once(f.dir(), f.data.path(), &specs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watchers.iter().for_each(|w| w.abort());

    assert_eq!(outcome.status, RunStatus::Succeeded, "{text}");
    assert!(outcome.reason.starts_with("target reached at iteration 1"));
    let lives: Vec<Life> = lives.lock().unwrap().values().cloned().collect();
    let mut engines: Vec<&str> = lives.iter().map(|l| l.engine.as_str()).collect();
    engines.sort_unstable();
    assert_eq!(engines, ["e1", "e2", "local"], "{lives:?}");
    let last_start = lives
        .iter()
        .map(|l| l.start.expect("started"))
        .max()
        .unwrap();
    let first_death = lives.iter().map(|l| l.die.expect("died")).min().unwrap();
    assert!(last_start < first_death, "lifetimes overlap: {lives:?}");

    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its[0].status, IterStatus::Succeeded);
    assert!(
        its[1..].iter().all(|i| i.status == IterStatus::Stopped),
        "{its:?}"
    );
    let placed: Vec<String> = store
        .placements(RunId(1))
        .unwrap()
        .into_iter()
        .map(|(no, p)| format!("{no} {} {}", p.engine, p.reason))
        .collect();
    assert_eq!(
        placed,
        [
            "1 local first placement",
            "2 e1 first placement",
            "3 e2 first placement"
        ]
    );
    let history = mlops_tui::history::format_run(&store, RunId(1)).unwrap();
    assert!(history.contains("  2  e1 (first placement)"), "{history}");
    for spec in &specs {
        let b = DockerBackend::connect(spec).unwrap();
        let left = b
            .find(&[mlops_tui::engine::workers::iteration::store_label(
                &f.data.path().join("runs"),
            )])
            .await
            .unwrap();
        assert!(left.is_empty(), "{}: {left:?}", spec.name);
    }
}

/// Fifteen epochs of two seconds, checkpointing each epoch after reporting it and resuming from the
/// checkpoint; reaches the target at its last epoch.
const STEADY: &str = r#"
import os, time
ckpt = "/mlops/checkpoints/epoch.txt"
start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
print(f"resuming after epoch {start}" if start else "starting", flush=True)
for epoch in range(start + 1, 16):
    time.sleep(2)
    value = 0.95 if epoch == 15 else 0.5
    print(f"epoch {epoch}/15 accuracy={value}", flush=True)
    with open(ckpt + ".tmp", "w") as f:
        f.write(str(epoch))
    os.replace(ckpt + ".tmp", ckpt)
"#;

fn pid_of(key: &str) -> i32 {
    let path = common::engines::var(key);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `check` holds on the history, or fails saying `what`.
async fn wait_for(f: &Fixture, what: &str, check: impl Fn(&Store) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if Store::open(&f.data.path().join("history.sqlite3"))
            .ok()
            .is_some_and(|s| check(&s))
        {
            return;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_on_a_killed_engine_resumes_elsewhere_and_its_orphan_goes() {
    let _serial = SERIAL.lock().await;
    let specs = common::engines::require();
    image_everywhere(&specs).await;
    let extra = "[monitor]\nengine_grace = \"3s\"\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &common::race_toml(1, 1, extra)),
        ("train.py", STEADY),
    ]);
    // The history exists before the run and the test open it side by side.
    drop(f.store());
    let run = {
        let (dir, data) = (f.dir().to_path_buf(), f.data.path().to_path_buf());
        let specs = specs.clone();
        tokio::spawn(async move { run_once(&dir, &data, &specs).await })
    };
    let epochs = |s: &Store| s.metric_points(RunId(1), IterationNo(1)).map(|p| p.len());
    wait_for(&f, "iteration 1 reaches epoch 4 on e1", |s| {
        epochs(s).is_ok_and(|n| n >= 4)
    })
    .await;
    let pid = pid_of("MLOPS_TEST_ENGINE_E1_PID");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for(&f, "iteration 1 moves to e2", |s| {
        s.placements(RunId(1)).is_ok_and(|p| p.len() == 2)
    })
    .await;
    let up = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/engines/up.sh"))
        .status()
        .unwrap();
    assert!(up.success(), "tests/engines/up.sh restarts e1");
    let (outcome, text) = run.await.unwrap();

    assert_eq!(outcome.status, RunStatus::Succeeded, "{text}");
    let store = f.store();
    let placed = store.placements(RunId(1)).unwrap();
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert_eq!(
        (placed[0].1.engine.as_str(), placed[1].1.engine.as_str()),
        ("e1", "e2")
    );
    assert!(
        placed[1]
            .1
            .reason
            .starts_with("moved: engine e1 unreachable for 3s; resumes from epoch "),
        "{placed:?}"
    );
    let mut seen: Vec<u32> = store
        .metric_points(RunId(1), IterationNo(1))
        .unwrap()
        .iter()
        .filter_map(|p| p.epoch)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=15).collect::<Vec<u32>>(), "each epoch once");
    assert!(text.contains("resuming after epoch"), "{text}");
    assert!(
        text.contains("engine e1 back: removed orphan of iteration 1"),
        "{text}"
    );
    let e1 = DockerBackend::connect(&specs[0]).unwrap();
    let left = e1
        .find(&[mlops_tui::engine::workers::iteration::store_label(
            &f.data.path().join("runs"),
        )])
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Iteration 1 reaches the target at its fifteenth epoch of two seconds; the others report a low
/// value each second for two minutes, so they can only end by being stopped.
const LONG_RACE: &str = r#"
import os, time
winner = os.environ["MLOPS_ITERATION"] == "1"
epochs = 15 if winner else 120
for epoch in range(1, epochs + 1):
    time.sleep(2 if winner else 1)
    value = 0.95 if winner and epoch == epochs else 0.5
    print(f"epoch {epoch}/{epochs} accuracy={value}", flush=True)
"#;

/// `run --headless --once` of the real binary over the local engine and the test engines.
fn start_headless(f: &Fixture) -> std::process::Child {
    let env = common::engines::env().expect("test engines up");
    let tls = &env["MLOPS_TEST_ENGINE_TLS"];
    let engines = [
        "local=unix:///var/run/docker.sock".to_string(),
        format!("e1={},tls={tls}", env["MLOPS_TEST_ENGINE_E1"]),
        format!("e2={},tls={tls}", env["MLOPS_TEST_ENGINE_E2"]),
    ];
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["run", "--headless", "--once"]);
    for e in &engines {
        cmd.args(["--engine", e]);
    }
    cmd.arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_mlops_tui_reattaches_to_trials_on_every_engine_and_finishes_the_run() {
    let _serial = SERIAL.lock().await;
    let mut specs = vec![EngineSpec::local_default()];
    specs.extend(common::engines::require());
    image_everywhere(&specs).await;
    let f = Fixture::with_files(&[
        ("mlops.toml", &common::race_toml(3, 3, "")),
        ("train.py", LONG_RACE),
    ]);
    drop(f.store());
    let mut first = start_headless(&f);
    let points = |s: &Store, no: u32| s.metric_points(RunId(1), IterationNo(no)).map(|p| p.len());
    wait_for(&f, "three trials report epochs", |s| {
        points(s, 1).is_ok_and(|n| n >= 3) && (2..=3).all(|no| points(s, no).is_ok_and(|n| n >= 2))
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();

    let second = start_headless(&f);
    let out = tokio::task::spawn_blocking(move || second.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("3 container(s) to re-attach"), "{text}");
    assert!(
        !text.contains("reviving"),
        "live containers are re-attached: {text}"
    );
    let store = f.store();
    assert_eq!(store.runs(10).unwrap().len(), 1, "no second run");
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 3, "every iteration exactly once: {its:?}");
    assert_eq!(its[0].status, IterStatus::Succeeded);
    assert!(
        its[1..].iter().all(|i| i.status == IterStatus::Stopped),
        "{its:?}"
    );
    let mut seen: Vec<u32> = store
        .metric_points(RunId(1), IterationNo(1))
        .unwrap()
        .iter()
        .filter_map(|p| p.epoch)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=15).collect::<Vec<u32>>(), "each epoch once");
    for spec in &specs {
        let b = DockerBackend::connect(spec).unwrap();
        let left = b
            .find(&[mlops_tui::engine::workers::iteration::store_label(
                &f.data.path().join("runs"),
            )])
            .await
            .unwrap();
        assert!(left.is_empty(), "{}: {left:?}", spec.name);
    }
}
