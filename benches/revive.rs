//! Job 6 benchmark: how fast a killed training container is running again, and how much work a kill
//! loses. Real engine, real containers: `cargo bench --bench revive` (needs the `numpy` image; it is
//! built on demand). Prints figures; asserts nothing about speed.
//!
//! Each kill waits past `monitor.healthy_after` first, so every revival is the immediate first step
//! of the back-off: the figure is the monitor's reaction, not its deliberate delay.
#![allow(
    clippy::too_many_lines,
    reason = "one measured scenario, read top to bottom"
)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptionsBuilder, ListContainersOptionsBuilder};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::model::labels;
use mlops_tui::engine::{Engine, EngineOptions};
use mlops_tui::headless::Printer;

const KILLS: usize = 12;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Runtime::new()?.block_on(bench())
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let repo = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    std::fs::write(
        repo.path().join("train.py"),
        include_str!("../tests/fixtures/monitor/train.py"),
    )?;
    std::fs::write(
        repo.path().join("mlops.toml"),
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"
[metric]
name = "accuracy"
target = 0.99
[budget]
max_iterations = 1
[resources]
memory = "256m"
[monitor]
max_revivals = 100
healthy_after = "1s"
[params]
epochs = 200
pace = 0.25
"#,
    )?;
    commit(repo.path())?;
    let runs_dir = data.path().join("runs");
    let opts = EngineOptions {
        project: Project::locate(repo.path())?,
        runs_dir: runs_dir.clone(),
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
    let docker = DockerBackend::connect_default()?;
    let engine = Engine::new(
        Arc::new(DockerBackend::connect_default()?),
        Store::open(&data.path().join("h.sqlite3"))?,
        opts,
    );
    let out = Buf::default();
    let printer_out = out.clone();
    let engine_task = tokio::spawn(async move {
        let mut printer = Printer::new(printer_out, true);
        engine.run(&mut printer).await
    });

    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={}", labels::STORE, runs_dir.display())],
    )]);
    let mut latencies = Vec::new();
    let mut lost = Vec::new();
    for k in 0..KILLS {
        // Let it train (and be healthy) for a while, then kill it mid-epoch.
        tokio::time::sleep(Duration::from_millis(1500 + 37 * k as u64)).await;
        let id = loop {
            let opts = ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build();
            if let Some(id) = docker
                .client()
                .list_containers(Some(opts))
                .await?
                .into_iter()
                .find_map(|c| c.id)
            {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let before = docker
            .client()
            .inspect_container(&id, None)
            .await?
            .state
            .and_then(|s| s.started_at);
        let last_printed = last_epoch(&out.text());
        let killed_at = Instant::now();
        docker
            .client()
            .kill_container(
                &id,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build(),
                ),
            )
            .await?;
        loop {
            let st = docker
                .client()
                .inspect_container(&id, None)
                .await?
                .state
                .unwrap_or_default();
            if st.running == Some(true) && st.started_at != before {
                latencies.push(killed_at.elapsed());
                break;
            }
            if killed_at.elapsed() > Duration::from_secs(30) {
                return Err("container not revived within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Work lost: epochs reported before the kill that the script has to train again.
        let resumed = loop {
            if let Some(e) = resumed_epochs(&out.text()).get(k) {
                break *e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        lost.push(last_printed.saturating_sub(resumed));
    }
    engine_task.abort();
    for id in docker
        .client()
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?
        .into_iter()
        .filter_map(|c| c.id)
    {
        let _ = docker
            .client()
            .remove_container(
                &id,
                None::<bollard::query_parameters::RemoveContainerOptions>,
            )
            .await;
    }

    latencies.sort();
    let ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let median = ms[ms.len() / 2];
    println!(
        "revive: {} kills (SIGKILL), each after a healthy stretch",
        ms.len()
    );
    println!(
        "  death → running again: median {median:.0} ms, min {:.0} ms, max {:.0} ms",
        ms[0],
        ms[ms.len() - 1]
    );
    println!(
        "  target ≤ 1000 ms: median is {:.2}× the target",
        median / 1000.0
    );
    println!(
        "  for comparison: Docker's restart policy waits 100 ms before its first restart, Kubernetes 10 s"
    );
    let total: u32 = lost.iter().sum();
    println!(
        "  epochs lost per kill: mean {:.2}, max {} (target ≤ 1; the partial epoch in progress is always redone)",
        f64::from(total) / lost.len() as f64,
        lost.iter().max().copied().unwrap_or(0)
    );
    Ok(())
}

fn last_epoch(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| l.split("epoch ").nth(1)?.split('/').next()?.parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn resumed_epochs(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            l.split("resumed from checkpoint at epoch ")
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

fn commit(dir: &std::path::Path) -> Result<(), git2::Error> {
    let repo = git2::Repository::init(dir)?;
    let mut index = repo.index()?;
    index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("Bench", "bench@example.com")?;
    repo.commit(Some("HEAD"), &sig, &sig, "bench", &tree, &[])?;
    Ok(())
}
