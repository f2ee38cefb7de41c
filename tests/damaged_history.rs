//! A damaged history is refused at start with the file and the recovery command, and
//! `history --recover` keeps the damaged file and leaves a usable history with what was readable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlops_tui::adapters::store::{MetricPoint, NewRun, Store};
use mlops_tui::core::ids::IterationNo;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlops-tui"))
}

fn mlops(data: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("MLOPS_TUI_DATA_DIR")
        .output()
        .unwrap()
}

/// A real history of 30 runs, then 8 KiB of garbage written over its middle.
fn damaged_history(db: &Path) {
    let store = Store::open(db).unwrap();
    for r in 0..30 {
        let run = store
            .create_run(&NewRun {
                project: "/p",
                commit_id: "0123456789abcdef",
                commit_summary: "s",
                branch: "main",
                trigger: "test",
            })
            .unwrap();
        for e in 0..5 {
            let text = format!("run {r} event {e} {}", "x".repeat(400));
            store.add_event(Some(run), None, "train:1", &text).unwrap();
            let p = MetricPoint {
                epoch: Some(e),
                value: 0.5,
                at: 1,
            };
            store.add_metric_point(run, IterationNo(1), &p).unwrap();
        }
    }
    drop(store);
    let len = std::fs::metadata(db).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn damaged_history_is_refused_then_recovered() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("history.sqlite3");
    damaged_history(&db);

    let refused = mlops(data.path(), &["history"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("damaged"), "{err}");
    let command = format!(
        "mlops-tui --data-dir {} history --recover",
        data.path().display()
    );
    assert!(err.contains(&command), "{err}");

    let recovered = mlops(data.path(), &["history", "--recover"]);
    let out = String::from_utf8_lossy(&recovered.stdout);
    assert!(
        recovered.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    assert!(out.contains("damaged history kept as"), "{out}");
    assert!(out.contains("runs: "), "{out}");
    assert!(out.contains("unreadable: "), "what was lost is said: {out}");
    let kept: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.sqlite3.damaged-")
        })
        .collect();
    assert!(!kept.is_empty(), "the damaged file is kept");

    let listed = mlops(data.path(), &["history", "--limit", "100"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(!Store::open(&db).unwrap().runs(100).unwrap().is_empty());
}
