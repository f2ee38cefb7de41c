//! Nothing lost when the history itself fails or a run is cut short: the real binary on the real
//! Docker engine and real git repositories.
//!
//! - The history database deleted under a running `run --once`: the run stops with the fix named,
//!   and a history started anew numbers its runs after the run directories and refs already there.
//! - `--once` after a SIGKILL and a new commit: the adopted run is finished, the new commit trains,
//!   and the exit status is the new run's.
//! - The file system under the history fills up: the run stops as failed, naming the file system to
//!   free; once space is freed the next `--once` records the old run as failed (from its directory),
//!   does not train it again, and trains the new commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fixture, bin, commit_all};
use mlops_tui::adapters::store::{RunRow, Store};
use mlops_tui::core::model::RunStatus;

const TRAIN: &str = include_str!("fixtures/monitor/train.py");

/// One iteration of the monitor trainer: `epochs` epochs `pace` seconds apart, accuracy reaching 1.0
/// at the last; `extra` is appended to `[params]`.
fn toml(epochs: u32, pace: f64, extra: &str) -> String {
    format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n[metric]\nname = \
         \"accuracy\"\ntarget = 0.99\n[budget]\nmax_iterations = 1\n[resources]\nmemory = \
         \"256m\"\n[notify.desktop]\nenabled = false\n[params]\nepochs = {epochs}\npace = \
         {pace}\n{extra}"
    )
}

/// `run --headless --once` in a child process, its output collected.
struct Once {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Once {
    fn start(project: &Path, data: &Path, state: &Path) -> Once {
        let mut child = Command::new(bin())
            .args(["run", "--headless", "--once"])
            .arg(project)
            .env("MLOPS_TUI_DATA_DIR", data)
            .env("MLOPS_TUI_STATE_DIR", state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Once { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    async fn wait_for(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                start.elapsed() < within,
                "`{needle}` not seen within {within:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The exit code, within `within`; the output is complete once the readers have drained.
    async fn exit(&mut self, within: Duration) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let text = self.text();
                println!("{text}");
                return (status.code().unwrap_or(-1), text);
            }
            assert!(
                start.elapsed() < within,
                "still running after {within:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Once {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runs(db: &Path) -> Vec<RunRow> {
    let mut runs = Store::open(db).unwrap().runs(100).unwrap();
    runs.reverse();
    runs
}

fn ref_target(dir: &Path, name: &str) -> Option<String> {
    let repo = git2::Repository::open(dir).unwrap();
    repo.refname_to_id(name).ok().map(|o| o.to_string())
}

async fn no_containers_left(f: &Fixture) {
    let start = Instant::now();
    while !f.leftover_containers().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "containers left");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_deleted_while_running_stops_the_run_and_nothing_of_it_is_overwritten() {
    let f = Fixture::with_files(&[("mlops.toml", &toml(60, 0.3, "")), ("train.py", TRAIN)]);
    let data = f.data.path();
    let db = data.join("history.sqlite3");
    let mut first = Once::start(f.dir(), data, data);
    first.wait_for("epoch 2/60", Duration::from_secs(120)).await;
    for file in [
        "history.sqlite3",
        "history.sqlite3-wal",
        "history.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(data.join(file));
    }

    let (code, out) = first.exit(Duration::from_secs(60)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: the history database was deleted (or replaced by another file) while mlops-tui \
             was running",
            db.display()
        )) && out.contains("start a fresh history"),
        "{out}"
    );
    assert!(!out.contains("epoch 60/60"), "trained on: {out}");
    no_containers_left(&f).await;
    let old_ref = ref_target(f.dir(), "refs/mlops/run-1/iter-1").expect("run 1's ref");
    assert!(data.join("runs/1/iter-1").is_dir());

    // A new commit, trained with the history started anew: run 2, beside run 1's files.
    std::fs::write(f.dir().join("mlops.toml"), toml(2, 0.1, "")).unwrap();
    let head = commit_all(f.dir(), "quicker").to_string();
    let mut second = Once::start(f.dir(), data, data);
    let (code, out) = second.exit(Duration::from_secs(300)).await;
    assert_eq!(code, 0, "{out}");
    let runs = runs(&db);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0].id.0, &runs[0].commit_id), (2, &head), "{out}");
    assert_eq!(
        ref_target(f.dir(), "refs/mlops/run-1/iter-1"),
        Some(old_ref),
        "run 1's ref was overwritten"
    );
    assert!(ref_target(f.dir(), "refs/mlops/run-2/iter-1").is_some());
    let outcome = std::fs::read_to_string(data.join("runs/1/outcome.json")).unwrap();
    assert!(
        outcome.contains("\"status\":\"failed\"") && outcome.contains("was deleted"),
        "{outcome}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_after_a_kill_finishes_the_adopted_run_then_exits_with_the_new_commits_status() {
    let f = Fixture::with_files(&[("mlops.toml", &toml(25, 0.3, "")), ("train.py", TRAIN)]);
    let data = f.data.path();
    let mut first = Once::start(f.dir(), data, data);
    first.wait_for("epoch 2/25", Duration::from_secs(120)).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // The new commit fails at once: the exit status must say so, not the adopted run's success.
    std::fs::write(f.dir().join("mlops.toml"), toml(2, 0.1, "fail = true\n")).unwrap();
    let head = commit_all(f.dir(), "broken").to_string();
    let mut second = Once::start(f.dir(), data, data);
    let (code, out) = second.exit(Duration::from_secs(300)).await;
    let runs = runs(&data.join("history.sqlite3"));
    assert_eq!(runs.len(), 2, "{runs:?}\n{out}");
    assert_eq!(
        runs[0].status,
        RunStatus::Succeeded,
        "the adopted run: {out}"
    );
    assert_eq!(runs[1].commit_id, head);
    assert!(
        matches!(runs[1].status, RunStatus::Failed | RunStatus::BudgetSpent),
        "the new run: {:?}\n{out}",
        runs[1]
    );
    let trained = Store::open(&data.join("history.sqlite3"))
        .unwrap()
        .iterations(runs[1].id)
        .unwrap();
    assert!(!trained.is_empty(), "the new commit never trained:\n{out}");
    assert_eq!(
        code,
        if runs[1].status == RunStatus::Failed {
            1
        } else {
            3
        },
        "{out}"
    );
    no_containers_left(&f).await;
}

/// A small file system mounted for the test, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(dir: &Path, size: &str) -> Mounted {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs (the real-engine tests run as root)");
        assert!(status.success(), "mount -t tmpfs failed");
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of its workspace, then trains like the monitor trainer.
const FILL: &str = r#"import json, os
p = json.load(open("/mlops/params.json"))
if p.get("fill"):
    try:
        with open("/workspace/filler", "wb") as f:
            while True:
                f.write(b"x" * 65536)
                f.flush()
    except OSError as e:
        print("filled:", e, flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_history_fails_the_run_naming_it_and_the_next_start_trains_the_new_commit()
 {
    let train = format!("{FILL}{TRAIN}");
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml(40, 0.2, "fill = true\n")),
        ("train.py", &train),
    ]);
    let state = tempfile::tempdir().unwrap();
    let data = f.data.path().join("small");
    std::fs::create_dir(&data).unwrap();
    let _mounted = Mounted::tmpfs(&data, "16m");
    let db = data.join("history.sqlite3");

    let mut first = Once::start(f.dir(), &data, state.path());
    let (code, out) = first.exit(Duration::from_secs(180)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("no space left on {}", data.display()))
            && out.contains(&format!("free space on {} and run again", data.display())),
        "{out}"
    );
    assert!(!out.contains("epoch 40/40"), "trained on: {out}");
    no_containers_left(&f).await;

    // Space freed, and a new commit that does not fill the disk.
    std::fs::remove_file(data.join("runs/1/iter-1/workspace/filler")).unwrap();
    std::fs::write(f.dir().join("mlops.toml"), toml(2, 0.1, "")).unwrap();
    let head = commit_all(f.dir(), "no filler").to_string();
    let mut second = Once::start(f.dir(), &data, state.path());
    let (code, out) = second.exit(Duration::from_secs(300)).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("vanished"), "{out}");
    let runs = runs(&db);
    assert_eq!(runs.len(), 2, "{runs:?}\n{out}");
    assert_eq!(runs[0].status, RunStatus::Failed, "{:?}", runs[0]);
    assert!(
        runs[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("no space left on")),
        "{:?}",
        runs[0]
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.iterations(runs[0].id).unwrap().len(),
        1,
        "the old run trained again:\n{out}"
    );
    assert_eq!(
        (runs[1].commit_id.as_str(), runs[1].status),
        (head.as_str(), RunStatus::Succeeded)
    );
}
