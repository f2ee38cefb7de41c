//! A metric flood: a script printing two million `epoch=N accuracy=…` lines as fast as the engine
//! takes them. The real binary, headless, on the real Docker engine: its memory stays bounded, it
//! finishes, the history holds one point per epoch (the last value reported for it), and what people
//! see is coalesced with a note. Killed by SIGTERM in the middle of a flood, it ends at once, and the
//! next `--once` on a new commit takes up the ended container by its last lines only (never
//! replaying the flood), finishes that run, then trains the new commit.
//!
//! Before: every metric line was a history transaction and a pass over the curve; the engine fell
//! minutes behind, its memory grew past a gigabyte, and a later start replayed the whole flood.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fixture, bin, commit_all};
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::RunStatus;

/// The two floods share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EPOCHS: u32 = 20;
const PER_EPOCH: u32 = 100_000;
/// Resident memory the binary may reach while taking the flood.
const MAX_RSS_KB: u64 = 200 * 1024;

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 1
iteration_timeout = "10m"
"#;

/// Epoch `e`, line `i` reports `e/100 + i/1e7`: each epoch's last value is `e/100 + 0.0099999`.
/// `pause` seconds pass between two epochs; the last line, `accuracy=0.95`, belongs to the last
/// epoch.
fn flood(pause: f64) -> String {
    format!(
        "import sys, time\n\
         for e in range(1, {EPOCHS} + 1):\n\
         \x20   sys.stdout.write(''.join(f'epoch={{e}} accuracy={{e / 100 + i / 1e7:.7f}}\\n' for i in range({PER_EPOCH})))\n\
         \x20   sys.stdout.flush()\n\
         \x20   time.sleep({pause})\n\
         print('accuracy=0.95', flush=True)\n"
    )
}

/// The binary's `run --headless --once` on `f`: its stdout and stderr collected as lines, and the
/// highest resident memory seen (VmHWM) sampled while it runs.
struct Once {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    hwm_kb: u64,
}

impl Once {
    fn start(f: &Fixture) -> Once {
        let mut child = Command::new(bin())
            .args(["run", "--headless", "--once"])
            .arg(f.dir())
            .env("MLOPS_TUI_DATA_DIR", f.data.path())
            .env("MLOPS_TUI_STATE_DIR", f.data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        Once {
            child,
            out,
            hwm_kb: 0,
        }
    }

    fn sample(&mut self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        let hwm = status.ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        self.hwm_kb = self.hwm_kb.max(hwm.unwrap_or(0));
    }

    /// Waits for the process to end within `within`, sampling its memory; its exit code.
    fn wait(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            self.sample();
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < within,
                "still running after {within:?}:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    fn tail(&self) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn wait_for(&mut self, needle: &str, within: Duration) {
        let start = Instant::now();
        while !self.lines().iter().any(|l| l.contains(needle)) {
            self.sample();
            assert!(
                start.elapsed() < within,
                "`{needle}` not seen:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Once {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store(f: &Fixture) -> Store {
    Store::open(&f.data.path().join("history.sqlite3")).unwrap()
}

/// Each epoch's point in the history holds the last value the flood printed for it.
fn assert_last_value_per_epoch(f: &Fixture) {
    let points = store(f).metric_points(RunId(1), IterationNo(1)).unwrap();
    let got: Vec<(Option<u32>, String)> = points
        .iter()
        .map(|p| (p.epoch, format!("{:.7}", p.value)))
        .collect();
    let want: Vec<(Option<u32>, String)> = (1..=EPOCHS)
        .map(|e| {
            let v = if e == EPOCHS {
                0.95
            } else {
                f64::from(e) / 100.0 + 0.0099999
            };
            (Some(e), format!("{v:.7}"))
        })
        .collect();
    assert_eq!(got, want);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn a_metric_flood_is_coalesced_in_bounded_memory_and_each_epoch_keeps_its_last_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", &flood(0.0))]);
    let started = Instant::now();
    let mut once = Once::start(&f);
    let code = once.wait(Duration::from_secs(150));
    let took = started.elapsed();
    let lines = once.lines();
    assert_eq!(code, Some(0), "{}", once.tail());
    println!(
        "{} lines shown for {} printed in {took:.1?}; VmHWM {} MiB",
        lines.len(),
        EPOCHS * PER_EPOCH,
        once.hwm_kb / 1024
    );
    assert!(
        once.hwm_kb > 0 && once.hwm_kb < MAX_RSS_KB,
        "VmHWM {} kB",
        once.hwm_kb
    );
    assert!(
        lines.len() < 100_000,
        "{} lines shown: not coalesced",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("metric lines coalesced (output.log keeps every line)")),
        "{}",
        once.tail()
    );
    assert!(lines.iter().any(|l| l == "[train:1] accuracy=0.95"));
    assert_last_value_per_epoch(&f);
    let kept = std::fs::read_to_string(f.data.path().join("runs/1/iter-1/output.log")).unwrap();
    assert_eq!(kept.lines().count() as u32, EPOCHS * PER_EPOCH + 1);
    assert!(runtime().block_on(f.leftover_containers()).is_empty());
}

#[test]
fn sigterm_mid_flood_ends_at_once_and_the_next_once_takes_up_only_the_end_then_trains_the_new_commit()
 {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", &flood(0.8))]);
    let mut first = Once::start(&f);
    first.wait_for("[train:1] epoch=3 accuracy=", Duration::from_secs(60));
    let killed = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    first.wait(Duration::from_secs(5));
    println!("ended {:?} after SIGTERM", killed.elapsed());
    let run = store(&f).run(RunId(1)).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running, "left for the next start");

    // The container floods on, unattended, and ends.
    let rt = runtime();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rt.block_on(f.containers(true)).is_empty() {
        assert!(Instant::now() < deadline, "the flood did not end");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::write(f.dir().join("train.py"), "print('accuracy=0.97')\n").unwrap();
    let head = commit_all(f.dir(), "a quicker script");

    let started = Instant::now();
    let mut second = Once::start(&f);
    let code = second.wait(Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{}", second.tail());
    println!(
        "second --once: {took:.1?}, {} lines, VmHWM {} MiB",
        second.lines().len(),
        second.hwm_kb / 1024
    );
    assert!(took < Duration::from_secs(45), "took {took:?}");
    let out = second.lines().join("\n");
    assert!(out.contains("resumed run 1"), "{out}");
    assert!(
        out.contains("only the last 1000 lines it printed are read back"),
        "{out}"
    );
    assert!(second.lines().len() < 3000, "the flood was replayed");

    let s = store(&f);
    let old = s.run(RunId(1)).unwrap().unwrap();
    assert_eq!(old.status, RunStatus::Succeeded, "{:?}", old.reason);
    let new = s.run(RunId(2)).unwrap().expect("the new commit trained");
    assert_eq!(new.commit_id, head.to_string());
    assert_eq!(new.status, RunStatus::Succeeded, "{:?}", new.reason);
    let points = s.metric_points(RunId(1), IterationNo(1)).unwrap();
    assert_eq!(points.last().map(|p| p.value), Some(0.95));
    let kept = std::fs::read_to_string(f.data.path().join("runs/1/iter-1/output.log")).unwrap();
    assert!(kept.ends_with("accuracy=0.95\n"));
    assert!(
        kept.len() < 20 << 20,
        "output.log holds what was read: {} bytes",
        kept.len()
    );
    assert!(rt.block_on(f.leftover_containers()).is_empty());
}
