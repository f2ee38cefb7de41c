//! Recovery from a damaged history: the damaged file is kept aside, a fresh history takes its place,
//! and everything still readable is copied into it, run by run and table by table, so that one bad
//! page costs the rows on it and not the whole history.
//!
//! Each copy is one `INSERT … SELECT` statement, atomic on its own: a run's table either comes over
//! whole or not at all, and a run whose `runs` row cannot be read is lost with its rows (they would
//! have no run to belong to).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{Store, StoreError};
use crate::core::ids::RunId;

/// The tables copied for each run, the `runs` row first, with the column naming the run.
const RUN_TABLES: &[(&str, &str)] = &[
    ("runs", "id"),
    ("iterations", "run_id"),
    ("metric_points", "run_id"),
    ("events", "run_id"),
    ("placements", "run_id"),
];

/// What one table contributed to the fresh history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    pub rows: usize,
}

/// What [`recover`] did: where the damaged file went, what was saved and what was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The damaged file, renamed; its `-wal` journal (if any) was renamed with it.
    pub damaged: PathBuf,
    /// The fresh history, at the original path.
    pub fresh: PathBuf,
    /// Runs copied whole.
    pub runs_saved: Vec<RunId>,
    /// Runs copied in part or not at all.
    pub runs_lost: Vec<RunId>,
    pub tables: Vec<TableCopy>,
    /// Every read that failed, for people: what could not be copied and why.
    pub problems: Vec<String>,
}

/// Moves the damaged database at `path` aside as `<path>.damaged-<UTC time>`, creates a fresh
/// history at `path`, and copies into it whatever of the damaged one is still readable.
pub fn recover(path: &Path) -> Result<Recovery, StoreError> {
    let damaged = damaged_name(path);
    move_aside(path, &damaged)?;
    let fresh = Store::open(path)?;
    let mut report = Recovery {
        damaged: damaged.clone(),
        fresh: path.to_path_buf(),
        runs_saved: Vec::new(),
        runs_lost: Vec::new(),
        tables: RUN_TABLES
            .iter()
            .map(|&(table, _)| TableCopy { table, rows: 0 })
            .collect(),
        problems: Vec::new(),
    };
    let conn = &fresh.conn;
    if let Err(e) = conn.execute(
        "ATTACH DATABASE ?1 AS old",
        [damaged.to_string_lossy().as_ref()],
    ) {
        report.problems.push(format!("nothing is readable: {e}"));
        return Ok(report);
    }
    for run in run_ids(conn, &mut report.problems) {
        if copy_run(conn, run, &mut report) {
            report.runs_saved.push(run);
        } else {
            report.runs_lost.push(run);
        }
    }
    copy_events_without_run(conn, &mut report);
    let _ = conn.execute("DETACH DATABASE old", []);
    Ok(report)
}

/// `history.sqlite3.damaged-20261129T021500Z`.
fn damaged_name(path: &Path) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{stamp}"));
    PathBuf::from(name)
}

/// Renames the database and its journals: SQLite finds a database's `-wal` by its name, so they move
/// together or the committed writes still in the journal would be lost.
fn move_aside(path: &Path, damaged: &Path) -> Result<(), StoreError> {
    let io = |action: String| {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    std::fs::rename(path, damaged).map_err(io(format!(
        "cannot move the damaged history to {}",
        damaged.display()
    )))?;
    for suffix in ["-wal", "-shm"] {
        let (from, to) = (with_suffix(path, suffix), with_suffix(damaged, suffix));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(io(format!(
                "cannot move {} to {}",
                from.display(),
                to.display()
            )))?;
        }
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The run ids readable from the damaged `runs` table, up to the first unreadable page.
fn run_ids(conn: &Connection, problems: &mut Vec<String>) -> Vec<RunId> {
    let mut ids = Vec::new();
    let read = conn
        .prepare("SELECT id FROM old.runs ORDER BY id")
        .and_then(|mut st| {
            let mut rows = st.query([])?;
            while let Some(row) = rows.next()? {
                ids.push(RunId(row.get(0)?));
            }
            Ok(())
        });
    if let Err(e) = read {
        problems.push(format!(
            "the list of runs is readable only up to run {}: {e}",
            ids.last().map_or(0, |r| r.0)
        ));
    }
    ids
}

/// Copies one run's rows, table by table; whether all of them came over.
fn copy_run(conn: &Connection, run: RunId, report: &mut Recovery) -> bool {
    let mut whole = true;
    for (i, &(table, column)) in RUN_TABLES.iter().enumerate() {
        let filter = format!("{column} = {}", run.0);
        match copy_rows(conn, table, &filter) {
            Ok(n) => report.tables[i].rows += n,
            Err(e) => {
                report.problems.push(format!("run {run}: {table}: {e}"));
                whole = false;
                if i == 0 {
                    return false;
                }
            }
        }
    }
    whole
}

/// Events recorded outside any run.
fn copy_events_without_run(conn: &Connection, report: &mut Recovery) {
    match copy_rows(conn, "events", "run_id IS NULL") {
        Ok(n) => report.tables[3].rows += n,
        Err(e) => report.problems.push(format!("events outside runs: {e}")),
    }
}

/// Copies the rows of `table` matching `filter`, first through its indexes, then (a damaged index
/// does not mean damaged rows) by scanning the table itself.
///
/// Columns are named as the damaged file has them: a history written before a migration added
/// columns copies into the current schema, the new columns left empty.
fn copy_rows(conn: &Connection, table: &str, filter: &str) -> rusqlite::Result<usize> {
    let cols = old_columns(conn, table).unwrap_or_else(|_| "*".into());
    let into = if cols == "*" {
        String::new()
    } else {
        format!(" ({cols})")
    };
    let indexed =
        format!("INSERT INTO main.{table}{into} SELECT {cols} FROM old.{table} WHERE {filter}");
    conn.execute(&indexed, []).or_else(|_| {
        let scan = format!(
            "INSERT INTO main.{table}{into} SELECT {cols} FROM old.{table} NOT INDEXED WHERE {filter}"
        );
        conn.execute(&scan, [])
    })
}

/// The damaged file's columns of `table`, comma-separated.
fn old_columns(conn: &Connection, table: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA old.table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if names.is_empty() {
        return Ok("*".into());
    }
    Ok(names.join(", "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::adapters::store::NewRun;
    use crate::core::ids::IterationNo;

    const RUNS: i64 = 40;

    /// A real history with `RUNS` runs, each with events and metric points, closed (so checkpointed
    /// into the main file). Returns its size.
    fn history(path: &Path) -> u64 {
        let store = Store::open(path).unwrap();
        for r in 0..RUNS {
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
                let p = crate::adapters::store::MetricPoint {
                    epoch: Some(e),
                    value: 0.5,
                    at: 1,
                };
                store.add_metric_point(run, IterationNo(1), &p).unwrap();
            }
        }
        drop(store);
        std::fs::metadata(path).unwrap().len()
    }

    /// 8 KiB of pseudo-random bytes at the middle of the file, page-aligned.
    fn garbage_in_the_middle(path: &Path, len: u64) {
        let at = (len / 2) / 4096 * 4096;
        let mut x: u32 = 0x9e37_79b9;
        let bytes: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&bytes).unwrap();
        f.sync_all().unwrap();
    }

    fn assert_refused(path: &Path) {
        let err = Store::open(path).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("damaged"), "{text}");
        let dir = path.parent().unwrap().display().to_string();
        let command = format!("mlops-tui --data-dir {dir} history --recover");
        assert!(text.contains(&command), "{text}");
    }

    #[test]
    fn garbage_in_the_middle_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let len = history(&path);
        assert!(len > 64 * 1024, "a file large enough to damage: {len}");
        garbage_in_the_middle(&path, len);
        assert_refused(&path);
    }

    #[test]
    fn a_truncated_file_is_refused_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let len = history(&path);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 3 + 100).unwrap();
        drop(f);
        assert_refused(&path);
    }

    #[test]
    fn recovery_keeps_the_damaged_file_and_saves_what_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let len = history(&path);
        garbage_in_the_middle(&path, len);
        let before = std::fs::read(&path).unwrap();
        let report = recover(&path).unwrap();
        assert_eq!(
            std::fs::read(&report.damaged).unwrap(),
            before,
            "kept as is"
        );
        assert!(
            report
                .damaged
                .to_string_lossy()
                .contains("history.sqlite3.damaged-"),
            "{report:?}"
        );
        assert!(!report.problems.is_empty(), "the damage is reported");
        let store = Store::open(&path).unwrap();
        let runs = store.runs(1000).unwrap();
        assert!(runs.len() >= (RUNS / 2) as usize, "{report:?}");
        assert_eq!(runs.len(), report.tables[0].rows);
        for id in &report.runs_saved {
            assert_eq!(store.events(*id).unwrap().len(), 5, "run {id}");
            assert_eq!(store.metric_points(*id, IterationNo(1)).unwrap().len(), 5);
        }
        assert!(!report.runs_saved.is_empty());
        // The fresh history takes new writes.
        store.add_event(None, None, "t", "after recovery").unwrap();
    }

    #[test]
    fn recovery_of_a_truncated_file_yields_a_usable_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let len = history(&path);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 3 + 100).unwrap();
        drop(f);
        let report = recover(&path).unwrap();
        assert!(report.damaged.exists());
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.runs(1000).unwrap().len(),
            report.runs_saved.len() + {
                report
                    .runs_lost
                    .iter()
                    .filter(|r| store.run(**r).unwrap().is_some())
                    .count()
            }
        );
    }
}
