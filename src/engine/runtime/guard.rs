//! What keeps the history and the files beside it from contradicting each other when the history
//! itself fails: deleted under a running mlops-tui, or its file system full.
//!
//! - Run numbers: the history numbers runs, but `runs/N/` and `refs/mlops/run-N/iter-K` outlive it.
//!   A new run is numbered above every such directory and ref ([`taken_numbers`]), so a history
//!   started anew never overwrites an older run's files or refs.
//! - Each run's directory holds `outcome.json`, made when the run is created at a fixed size
//!   ([`OUTCOME_SIZE`]) and later overwritten in place ([`record_outcome`]): rewriting blocks a file
//!   already has needs no free space, so how a run ended is on disk even when the disk is full and
//!   the database cannot take the write. A restarted mlops-tui finishes such a run from it
//!   ([`recorded_outcome`]) instead of resuming it.
//! - A history that cannot go on ([`lost_history`]) stops the training with a message that names
//!   the fix.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::adapters::git::Project;
use crate::adapters::store::StoreError;
use crate::core::model::RunStatus;
use crate::support::fsutil;

/// How a run ended, in its own directory.
pub(super) const OUTCOME_FILE: &str = "outcome.json";

/// The size `outcome.json` is made at: room for a status and a reason of a few lines.
const OUTCOME_SIZE: usize = 4096;

/// The highest run number already used outside the history: a directory `runs/N` or a ref
/// `refs/mlops/run-N/...` in the project's repository. 0 when there is none.
pub(super) fn taken_numbers(runs_dir: &Path, project: &Project) -> i64 {
    let dirs = std::fs::read_dir(runs_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .max();
    let refs = if project.repo_root.is_some() {
        project.highest_run_ref().unwrap_or_else(|e| {
            tracing::warn!("cannot list the refs/mlops/run-N refs: {e}");
            None
        })
    } else {
        None
    };
    dirs.into_iter().chain(refs).max().unwrap_or(0)
}

/// Makes the run's directory and its `outcome.json` (saying `running`), at its full size.
pub(super) fn reserve(run_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    write_outcome(run_dir, RunStatus::Running, "")
}

/// Overwrites `outcome.json` in place with how the run ended.
pub(super) fn record_outcome(
    run_dir: &Path,
    status: RunStatus,
    reason: &str,
) -> std::io::Result<()> {
    write_outcome(run_dir, status, reason)
}

fn write_outcome(run_dir: &Path, status: RunStatus, reason: &str) -> std::io::Result<()> {
    let mut reason = reason.to_string();
    let mut text = doc(status, &reason);
    while text.len() + 1 > OUTCOME_SIZE {
        // Cut the reason, never the JSON: at a character boundary, with a mark.
        let keep = reason
            .len()
            .saturating_sub(text.len() + 1 - OUTCOME_SIZE + 3);
        let cut = (0..=keep)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason.push('…');
        text = doc(status, &reason);
    }
    let mut bytes = text.into_bytes();
    bytes.resize(OUTCOME_SIZE - 1, b' ');
    bytes.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(run_dir.join(OUTCOME_FILE))?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&bytes)?;
    f.sync_data()
}

fn doc(status: RunStatus, reason: &str) -> String {
    serde_json::json!({ "status": status.as_str(), "reason": reason }).to_string()
}

/// How the run ended according to its directory; `None` while it says `running`, or when there is
/// no readable `outcome.json` (a run made before it existed).
pub(super) fn recorded_outcome(run_dir: &Path) -> Option<(RunStatus, String)> {
    let text = std::fs::read_to_string(run_dir.join(OUTCOME_FILE)).ok()?;
    let doc: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let status: RunStatus = doc.get("status")?.as_str()?.parse().ok()?;
    let reason = doc.get("reason")?.as_str()?.to_string();
    status.is_final().then_some((status, reason))
}

/// Why the history cannot go on, for people, when `e` says so: its file was deleted or replaced, or
/// its file system is full (then the message names that file system and asks to free space on it).
pub(super) fn lost_history(e: &StoreError, db: &Path) -> Option<String> {
    match e {
        StoreError::Deleted { .. } => Some(e.to_string()),
        _ if e.is_disk_full() => Some(no_space(db)),
        _ => None,
    }
}

/// `ENOSPC` from a file written beside the history (`best.json`, `outcome.json`) means the same.
pub(super) fn lost_history_io(e: &std::io::Error, db: &Path) -> Option<String> {
    fsutil::is_disk_full(e).then(|| no_space(db))
}

/// "no space left on /srv: free space on /srv and run again".
fn no_space(db: &Path) -> String {
    let dir = db.parent().unwrap_or(db);
    let mount = fsutil::mount_point(dir);
    let whose = if mount == dir {
        String::new()
    } else {
        format!(" (the file system of {})", dir.display())
    };
    format!(
        "no space left on {}{whose}: the history {} cannot be written, so training stops here; \
         free space on {} and run again (the run is recorded as failed and is not trained again)",
        mount.display(),
        db.display(),
        mount.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_rewritten_in_place_at_a_fixed_size_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("7");
        reserve(&run).unwrap();
        let file = run.join(OUTCOME_FILE);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), OUTCOME_SIZE as u64);
        assert_eq!(recorded_outcome(&run), None, "running is not an outcome");
        record_outcome(&run, RunStatus::Failed, "no space left on /x").unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), OUTCOME_SIZE as u64);
        assert_eq!(
            recorded_outcome(&run),
            Some((RunStatus::Failed, "no space left on /x".into()))
        );
        let long = "é".repeat(5000);
        record_outcome(&run, RunStatus::Failed, &long).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), OUTCOME_SIZE as u64);
        let (_, reason) = recorded_outcome(&run).unwrap();
        assert!(
            reason.ends_with('…') && reason.len() < OUTCOME_SIZE,
            "{reason}"
        );
    }

    #[test]
    fn numbers_taken_by_run_directories_count() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["1", "12", "notes", "3"] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        let project = Project::locate(dir.path()).unwrap();
        assert_eq!(taken_numbers(dir.path(), &project), 12);
        assert_eq!(taken_numbers(&dir.path().join("absent"), &project), 0);
    }

    #[test]
    fn a_deleted_history_and_a_full_disk_are_lost_histories_with_their_fix() {
        let db = Path::new("/definitely/not/here/history.sqlite3");
        let deleted = StoreError::Deleted { path: db.into() };
        let text = lost_history(&deleted, db).unwrap();
        assert!(
            text.contains("was deleted") && text.contains("start a fresh history"),
            "{text}"
        );
        let full = StoreError::Io {
            path: db.into(),
            action: "write".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let text = lost_history(&full, db).unwrap();
        assert!(
            text.starts_with("no space left on /") && text.contains("free space on /"),
            "{text}"
        );
        let other = StoreError::Io {
            path: db.into(),
            action: "write".into(),
            source: std::io::Error::from_raw_os_error(13),
        };
        assert_eq!(lost_history(&other, db), None);
    }
}
