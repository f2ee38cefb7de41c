//! "Docker down is a state, not an exit": the real binary, talking to the real engine through a unix
//! socket proxy this test starts and stops. Unreachable at start: it waits, then trains. Lost mid-run:
//! it keeps going, re-attaches when the engine answers again, and loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::excessive_nesting)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fixture, Headless};
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::RunStatus;
use tokio::net::{UnixListener, UnixStream};

const TRAIN: &str = include_str!("fixtures/monitor/train.py");

/// A unix socket that forwards to the real engine while it runs; stopping it closes every connection.
struct Proxy {
    path: PathBuf,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    fn new(path: &Path) -> Proxy {
        Proxy {
            path: path.to_path_buf(),
            tasks: Arc::default(),
        }
    }

    fn start(&self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut up) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn project(epochs: u32) -> Fixture {
    let toml = format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n[metric]\nname = \"accuracy\"\ntarget = 0.99\n[budget]\nmax_iterations = 1\n[resources]\nmemory = \"256m\"\n[notify.desktop]\nenabled = false\n[params]\nepochs = {epochs}\npace = 0.4\n"
    );
    Fixture::with_files(&[("mlops.toml", &toml), ("train.py", TRAIN)])
}

fn epochs(f: &Fixture) -> Vec<u32> {
    Store::open(&f.data.path().join("history.sqlite3"))
        .and_then(|s| s.metric_points(RunId(1), IterationNo(1)))
        .map(|p| p.iter().filter_map(|p| p.epoch).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_at_start_then_lost_mid_run_nothing_is_lost() {
    let f = project(14);
    let sock = f.data.path().join("docker.sock");
    let proxy = Proxy::new(&sock);

    // No engine at start: the console waits instead of exiting.
    let h = Headless::start(&f, Some(&sock));
    h.wait_for("waiting for it", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        h.text().contains("Docker engine not reachable"),
        "{}",
        h.text()
    );
    proxy.start();
    h.wait_for("[train:1] container", Duration::from_secs(120))
        .await;

    // Lost mid-run, for a few seconds.
    let start = Instant::now();
    while epochs(&f).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epochs:\n{}",
            h.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.stop();
    h.wait_for("lost the engine", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.start();
    h.wait_for("re-attached to container", Duration::from_secs(60))
        .await;
    h.wait_for(
        "[done] target reached at iteration 1",
        Duration::from_secs(120),
    )
    .await;
    // History writes are queued to the writer thread: "[done]" can be printed before the last of
    // them is committed.
    let store = Store::open(&f.data.path().join("history.sqlite3")).unwrap();
    let start = Instant::now();
    while !store.run(RunId(1)).unwrap().unwrap().status.is_final() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", h.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(
        epochs(&f),
        (1..=14).collect::<Vec<_>>(),
        "no gap, no duplicate:\n{}",
        h.text()
    );
    assert!(
        !h.text().contains("reviving"),
        "the container never died: {}",
        h.text()
    );
    assert_eq!(
        store.run(RunId(1)).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    while !f.leftover_containers().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", h.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(h);
    proxy.stop();
}

/// The engine is lost while the script prints its last epochs and exits: once it answers again, the
/// iteration is judged on the script's final value, and every epoch is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_while_the_container_exits_keeps_the_final_metric() {
    let f = project(8);
    let sock = f.data.path().join("docker.sock");
    let proxy = Proxy::new(&sock);
    proxy.start();
    let h = Headless::start(&f, Some(&sock));
    h.wait_for("[train:1] container", Duration::from_secs(120))
        .await;
    let start = Instant::now();
    while epochs(&f).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epochs:\n{}",
            h.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.stop();
    h.wait_for("lost the engine", Duration::from_secs(30)).await;
    // The container finishes and exits while nobody can see it.
    let start = Instant::now();
    while !f.containers(true).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the container did not exit:\n{}",
            h.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        epochs(&f).len() < 8,
        "the loss came too late: {:?}",
        epochs(&f)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.start();
    h.wait_for("[done]", Duration::from_secs(120)).await;
    let store = Store::open(&f.data.path().join("history.sqlite3")).unwrap();
    let start = Instant::now();
    while !store.run(RunId(1)).unwrap().unwrap().status.is_final() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", h.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while !f.leftover_containers().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", h.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let it = &store.iterations(RunId(1)).unwrap()[0];
    assert_eq!(it.final_value, Some(1.0), "judged on:\n{}", h.text());
    assert_eq!(
        epochs(&f),
        (1..=8).collect::<Vec<_>>(),
        "no gap, no duplicate:\n{}",
        h.text()
    );
    assert_eq!(
        store.run(RunId(1)).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    drop(h);
    proxy.stop();
}
