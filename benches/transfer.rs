//! Per-trial cost of the archive transfer against bind mounts: the sample project's workspace
//! (sample-projects/digits-mlp-numpy) and an iteration directory go into a container that exits at
//! once; with archive transfer, `/mlops` and `/workspace` come back with `copy_out`. Medians of 7 on
//! the local engine (bind, then archive) and, when `tests/engines/up.sh` has run, on e1 over TLS.
//!
//! `cargo bench --bench transfer` (or `cargo test --bench transfer` for a debug build: the figures
//! are the engines' work, not ours). Figures are in the report of the change that added remote engines
//! and in src/adapters/docker/image_copy.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::images::BASE_IMAGE;
use mlops_tui::core::config::EngineSpec;
use mlops_tui::core::model::ImageSpec;

const RUNS: usize = 7;

/// Times of one trial's container, by phase.
#[derive(Default, Clone, Copy)]
struct Phases {
    start: Duration,
    run: Duration,
    copy_out: Duration,
    remove: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.start + self.run + self.copy_out + self.remove
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn spec(name: &str, root: &Path, transfer: Transfer) -> TrainSpec {
    let workspace = root.join("workspace");
    let workdir = root.join("workdir");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects/digits-mlp-numpy");
    copy_tree(&sample, &workspace);
    std::fs::create_dir_all(workdir.join("checkpoints")).unwrap();
    std::fs::write(workdir.join("params.json"), "{\"lr\": 0.1}\n").unwrap();
    TrainSpec {
        name: name.into(),
        image: BASE_IMAGE.into(),
        command: vec!["true".into()],
        workspace,
        workdir,
        data: vec![],
        user: "65534:65534".into(),
        env: vec![],
        labels: BTreeMap::from([("org.mlops-tui.bench".to_string(), "transfer".to_string())]),
        memory_bytes: 128 * 1024 * 1024,
        cpus: 0.5,
        pids: 32,
        disk_bytes: 1 << 30,
        transfer,
        gpus: None,
    }
}

async fn one_trial(backend: &DockerBackend, name: &str, transfer: Transfer) -> Phases {
    let root = tempfile::tempdir().unwrap();
    let spec = spec(name, root.path(), transfer);
    let mut p = Phases::default();
    let t = Instant::now();
    let id = backend.start(spec).await.unwrap();
    p.start = t.elapsed();
    let t = Instant::now();
    let status = backend.wait(&id).await.unwrap();
    assert_eq!(status.code, 0);
    p.run = t.elapsed();
    if transfer == Transfer::Archive {
        let t = Instant::now();
        let home = root.path().join("home");
        backend
            .copy_out(&id, "/mlops", &home.join("mlops"), u64::MAX)
            .await
            .unwrap();
        backend
            .copy_out(&id, "/workspace", &home.join("workspace"), u64::MAX)
            .await
            .unwrap();
        p.copy_out = t.elapsed();
    }
    let t = Instant::now();
    backend.remove(&id).await.unwrap();
    p.remove = t.elapsed();
    p
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

async fn measure(label: &str, backend: &DockerBackend, transfer: Transfer) {
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let name = format!("mlt-bench-transfer-{}-{i}", std::process::id());
        runs.push(one_trial(backend, &name, transfer).await);
    }
    let pick = |f: fn(&Phases) -> Duration| median(runs.iter().map(f).collect());
    println!(
        "{label:<22} start {:>6.0} ms  run {:>5.0} ms  copy_out {:>5.0} ms  remove {:>5.0} ms  total {:>6.0} ms  (median of {RUNS})",
        pick(|p| p.start),
        pick(|p| p.run),
        pick(|p| p.copy_out),
        pick(|p| p.remove),
        pick(Phases::total),
    );
}

fn test_engine_e1() -> Option<EngineSpec> {
    let text = std::fs::read_to_string("/tmp/mlops-engines/engines.env").ok()?;
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let flag = format!(
        "e1={},tls={}",
        var("MLOPS_TEST_ENGINE_E1")?,
        var("MLOPS_TEST_ENGINE_TLS")?
    );
    EngineSpec::parse_flag(&flag).ok()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let local = Arc::new(DockerBackend::connect_default().expect("the local Docker engine"));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        local
            .prepare_image(&ImageSpec::Reference(BASE_IMAGE.into()), tx.clone())
            .await
            .expect("the base image (./target/debug/mlops-tui images build)");
        println!("workspace: sample-projects/digits-mlp-numpy; container command `true`");
        measure("local, bind", &local, Transfer::Bind).await;
        measure("local, archive", &local, Transfer::Archive).await;
        let Some(e1) = test_engine_e1() else {
            println!("e1: not up (bash tests/engines/up.sh), skipped");
            return;
        };
        let e1 = DockerBackend::connect(&e1)
            .unwrap()
            .with_image_source(Arc::clone(&local));
        e1.prepare_image(&ImageSpec::Reference(BASE_IMAGE.into()), tx)
            .await
            .unwrap();
        measure("e1 (tcp+tls), archive", &e1, Transfer::Archive).await;
    });
}
