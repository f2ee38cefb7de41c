//! `[resources] disk`, enforced for real: a script that writes without end into `/workspace` or
//! `/mlops` is killed within a fraction of a second of passing the limit, on the local engine (bind
//! mounts) and on a remote one (archive transfer, volumes on its own disk); no single file passes the
//! limit; `/tmp` is capped; and what comes home from a remote engine stops at the cap. The run stops
//! at once (no tweak makes a script write less) and says how much, where, what to delete and where
//! the setting is. Every script here stops by itself after 2 GB, so a broken limit cannot fill the
//! disk of the machine running the tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fixture, SharedBuf};
use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::engines::connect_all;
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::images::BASE_IMAGE;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::config::EngineSpec;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{ContainerState, ImageSpec, IterStatus, RunStatus};
use mlops_tui::engine::{Engine, EngineOptions, Outcome};
use mlops_tui::headless::Printer;

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 300 * MIB;

/// A project's `mlops.toml`: `[resources] disk = "300m"` on line 14.
fn toml(image: &str, command: &str) -> String {
    format!(
        r#"[train]
command = {command}
image = "{image}"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 3
max_failures = 2

[resources]
disk = "300m"

[tweak.space]
k = {{ values = [1, 2, 3] }}
"#
    )
}

/// Python writing 100 MiB files into `dir` without pause, 20 at most (2 GB).
fn python_flood(dir: &str) -> String {
    format!(
        "import os\n\
         os.makedirs('{dir}', exist_ok=True)\n\
         block = b'x' * (1 << 20)\n\
         print('filling {dir}', flush=True)\n\
         for i in range(20):\n\
         \x20   with open(f'{dir}/f{{i:02}}', 'wb') as f:\n\
         \x20       for _ in range(100):\n\
         \x20           f.write(block)\n\
         print('accuracy=0.95', flush=True)\n"
    )
}

/// Everything under `dir`, in bytes (links not followed).
fn size_of(dir: &Path) -> u64 {
    mlops_tui::engine::workers::disk::host_total(dir)
}

/// The megabytes in `it wrote 312 MiB` (or `1.1 GiB`) of a reason.
fn written(reason: &str) -> u64 {
    let rest = reason.split("it wrote ").nth(1).expect("it wrote …");
    let mut words = rest.split_whitespace();
    let n: f64 = words.next().unwrap().parse().unwrap();
    match words.next().unwrap() {
        "GiB" => (n * 1024.0) as u64,
        "MiB" => n as u64,
        unit => panic!("unit {unit} in {reason}"),
    }
}

/// What a container may have written when the watchdog kills it, on this machine: the limit (300 MiB)
/// plus a quarter of a second of a writer at about 1 GiB/s, and more when the two cores are busy with
/// other work (up to ~800 MiB seen). Far below the 2 GiB each script would write unchecked.
const LOCAL_BOUND_MIB: u64 = 1200;
/// The same on a remote engine, where each measure is an exec in the container.
const REMOTE_BOUND_MIB: u64 = 1500;

/// The run failed at its first iteration for the disk, at once, and says so in full; the container
/// held less than `bound_mib` when it was killed.
fn assert_stopped_for_disk(
    (outcome, out): (&Outcome, &str),
    store: &Store,
    root: &str,
    bound_mib: u64,
) {
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    let reason = &outcome.reason;
    assert!(
        reason.starts_with("iteration 1 stopped: it wrote "),
        "{reason}"
    );
    assert!(
        reason.contains(&format!(
            " in {root}, over [resources] disk = \"300m\" (mlops.toml:14): killed at once; \
             delete or shrink {root}/"
        )),
        "{reason}"
    );
    assert!(reason.contains("or raise [resources] disk"), "{reason}");
    assert!(
        reason.ends_with("(no tweak can fix this, so the run stopped)"),
        "{reason}"
    );
    let mib = written(reason);
    assert!(
        (300..bound_mib).contains(&mib),
        "killed before {bound_mib} MiB, not after {mib} MiB: {reason}"
    );
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "no second iteration: {out}");
    assert_eq!(its[0].status, IterStatus::Failed);
}

#[tokio::test]
async fn a_script_filling_the_workspace_is_killed_at_once_and_its_files_do_not_stay() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("numpy", r#"["python3", "train.py"]"#)),
        ("train.py", &python_flood("junk")),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_stopped_for_disk((&outcome, &out), &f.store(), "/workspace", LOCAL_BOUND_MIB);
    assert!(
        outcome
            .reason
            .contains("delete or shrink /workspace/junk ("),
        "{}",
        outcome.reason
    );
    // This machine's copy was brought back under the limit, and the run says what went.
    let dir = f.data.path().join("runs/1/iter-1");
    let left = size_of(&dir);
    assert!(left <= LIMIT, "{} holds {left} bytes", dir.display());
    assert!(
        outcome
            .reason
            .contains("removed from runs/1/iter-1 on this machine: workspace/junk/f0"),
        "{}",
        outcome.reason
    );
    assert!(dir.join("workspace/train.py").exists());
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn a_script_filling_mlops_is_killed_the_same_way() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("numpy", r#"["python3", "train.py"]"#)),
        ("train.py", &python_flood("/mlops/checkpoints")),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_stopped_for_disk((&outcome, &out), &f.store(), "/mlops", LOCAL_BOUND_MIB);
    assert!(
        outcome.reason.contains("/mlops/checkpoints ("),
        "{}",
        outcome.reason
    );
    let dir = f.data.path().join("runs/1/iter-1");
    assert!(size_of(&dir) <= LIMIT);
    assert!(f.leftover_containers().await.is_empty());
}

/// One file can never pass the limit: the kernel refuses the write ("File too large") before the
/// watchdog sees anything, and either way the run stops for the disk.
#[tokio::test]
async fn one_file_stops_at_the_limit() {
    let script = "block = b'x' * (1 << 20)\n\
                  with open('/mlops/model/huge.bin', 'wb') as f:\n\
                  \x20   for _ in range(2000):\n\
                  \x20       f.write(block)\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("numpy", r#"["python3", "train.py"]"#)),
        ("train.py", script),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        outcome.reason.contains("[resources] disk"),
        "{}",
        outcome.reason
    );
    assert_eq!(f.store().iterations(RunId(1)).unwrap().len(), 1, "{out}");
    let file = f.data.path().join("runs/1/iter-1/model/huge.bin");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert!(size <= LIMIT, "{} is {size} bytes", file.display());
    assert!(f.leftover_containers().await.is_empty());
}

/// `/tmp` is a tmpfs of 256 MiB: a script filling it fails with "No space left on device", a
/// failure that stops the run with what to do.
#[tokio::test]
async fn tmp_is_capped() {
    let script = "block = b'x' * (1 << 20)\n\
                  for i in range(4):\n\
                  \x20   with open(f'/tmp/t{i}', 'wb') as f:\n\
                  \x20       for _ in range(100):\n\
                  \x20           f.write(block)\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("numpy", r#"["python3", "train.py"]"#)),
        ("train.py", script),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        outcome.reason.contains("No space left on device"),
        "{}",
        outcome.reason
    );
    assert!(
        outcome.reason.contains("/tmp holds 256 MiB"),
        "{}",
        outcome.reason
    );
    assert_eq!(f.store().iterations(RunId(1)).unwrap().len(), 1, "{out}");
}

/// The test engine e1 only (one slot), with the base image there.
async fn e1_with_base_image() -> Vec<EngineSpec> {
    let e1 = common::engines::require().remove(0);
    let specs = vec![EngineSpec::local_default(), e1.clone()];
    let pool = connect_all(&specs).await.unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    pool.engines[1]
        .backend
        .prepare_image(&ImageSpec::Reference(BASE_IMAGE.into()), tx)
        .await
        .unwrap();
    vec![e1]
}

/// One `--once` run of the fixture on `specs`, as `run --headless --once --engine …` does.
async fn run_on(f: &Fixture, specs: &[EngineSpec]) -> (Outcome, String) {
    let opts = EngineOptions {
        project: Project::locate(f.dir()).unwrap(),
        runs_dir: f.data.path().join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: true,
        remote: None,
        webhook: None,
        data_policy: common::test_data_policy(),
    };
    let engine = Engine::from_pool(connect_all(specs).await.unwrap(), f.store(), opts);
    let out = SharedBuf::default();
    let mut printer = Printer::new(out.clone(), true);
    let outcome = tokio::time::timeout(Duration::from_secs(600), engine.run(&mut printer))
        .await
        .expect("run finished within 10 minutes");
    let text = out.text();
    println!("{text}");
    (outcome, text)
}

/// A shell loop (the shell is PID 1, deaf to SIGTERM) writing 100 MiB files into `/workspace/junk`,
/// 20 at most.
const SH_FLOOD: &str = r#"["sh", "-c", "mkdir -p junk; i=0; while [ $i -lt 20 ]; do dd if=/dev/zero of=junk/f$i bs=1M count=100 2>/dev/null; i=$((i+1)); done; echo accuracy=0.95"]"#;

#[tokio::test(flavor = "multi_thread")]
async fn on_a_remote_engine_the_flood_is_killed_and_only_the_limit_comes_home() {
    let specs = e1_with_base_image().await;
    let f = Fixture::with_files(&[("mlops.toml", &toml(BASE_IMAGE, SH_FLOOD))]);
    let (outcome, out) = run_on(&f, &specs).await;
    // Measured inside the container between two writes of a script writing ~1 GB/s: the sample
    // that sees it over may be some hundreds of MiB late; what comes home stays under the limit.
    assert_stopped_for_disk((&outcome, &out), &f.store(), "/workspace", REMOTE_BOUND_MIB);
    assert!(
        outcome
            .reason
            .contains("delete or shrink /workspace/junk ("),
        "{}",
        outcome.reason
    );
    let dir = f.data.path().join("runs/1/iter-1");
    let home = size_of(&dir);
    assert!(home <= LIMIT, "{} holds {home} bytes", dir.display());
    // The container and its volumes are gone from e1.
    let e1 = DockerBackend::connect(&specs[0]).unwrap();
    let store = f.data.path().join("runs").display().to_string();
    let left = e1
        .find(&[(mlops_tui::core::model::labels::STORE.into(), store)])
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// A container that holds more than the cap: the copy home brings whole files up to the cap, stops
/// at the first that does not fit, names it, and reads the archive no further.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_home_stops_at_its_cap() {
    let specs = e1_with_base_image().await;
    let e1 = DockerBackend::connect(&specs[0])
        .unwrap()
        .with_image_source(Arc::new(DockerBackend::connect_default().unwrap()));
    let root = tempfile::tempdir().unwrap();
    let (ws, mlops) = (root.path().join("ws"), root.path().join("mlops"));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&mlops).unwrap();
    let name = format!("mlt-disk-copy-{}", std::process::id());
    let spec = TrainSpec {
        name: name.clone(),
        image: BASE_IMAGE.into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "mkdir /mlops/out && for i in a b c d; do dd if=/dev/zero of=/mlops/out/$i bs=1M count=8 2>/dev/null; done"
                .into(),
        ],
        workspace: ws,
        workdir: mlops,
        data: vec![],
        user: "4242:4242".into(),
        env: vec![],
        labels: Default::default(),
        memory_bytes: 256 * MIB,
        cpus: 0.5,
        pids: 64,
        disk_bytes: LIMIT,
        transfer: Transfer::Archive,
        gpus: None,
    };
    let id = e1.start(spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(
        e1.inspect(&id).await.unwrap(),
        Some(ContainerState::Exited(_))
    ) {
        assert!(Instant::now() < deadline, "the container never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let home = root.path().join("home");
    let copied = e1.copy_out(&id, "/mlops/out", &home, 20 * MIB).await;
    e1.remove(&id).await.unwrap();
    let copied = copied.unwrap();
    assert_eq!(copied.bytes, 16 * MIB, "{copied:?}");
    let (left, size) = copied.left.clone().expect("the copy stopped");
    assert_eq!(size, 8 * MIB);
    assert_eq!(size_of(&home), 16 * MIB);
    assert!(!home.join(&left).exists(), "{left} did not land");
    let all = e1.copy_out(&id, "/mlops/out", &home, u64::MAX).await;
    assert!(all.is_err(), "the container is gone: {all:?}");
}

/// A script that hides what it wrote from a measure run as its own user (`chmod 000` on each
/// directory once filled, 200 MiB at a time) is seen all the same, and killed.
const SH_HIDING: &str = r#"["sh", "-c", "i=0; while [ $i -lt 8 ]; do mkdir h$i; dd if=/dev/zero of=h$i/f bs=1M count=200 2>/dev/null; chmod 000 h$i; i=$((i+1)); done; echo accuracy=0.95"]"#;

#[tokio::test(flavor = "multi_thread")]
async fn on_a_remote_engine_unreadable_directories_do_not_hide_the_flood() {
    let specs = e1_with_base_image().await;
    let f = Fixture::with_files(&[("mlops.toml", &toml(BASE_IMAGE, SH_HIDING))]);
    let (outcome, out) = run_on(&f, &specs).await;
    assert_stopped_for_disk((&outcome, &out), &f.store(), "/workspace", REMOTE_BOUND_MIB);
    assert!(
        outcome.reason.contains("delete or shrink /workspace/h"),
        "{}",
        outcome.reason
    );
    let dir = f.data.path().join("runs/1/iter-1");
    assert!(size_of(&dir) <= LIMIT);
}
