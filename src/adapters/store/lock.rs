//! One trainer per project and history: an advisory lock on a file under `<data dir>/locks/`.
//!
//! Two mlops-tui watching one project with one history would both see the new commit, both create a
//! run and train it twice, writing the same `refs/mlops/run-N/iter-K` and `runs/N/` from two
//! processes. The first to start takes the lock and writes who it is into the lock file (pid, host,
//! start time, command line); the second reads that and refuses, naming the holder.
//!
//! Invariants: the lock is the OS's (`flock`), held by the open file for the life of [`ProjectLock`];
//! a holder that dies (even by SIGKILL) releases it, so a stale lock file is taken over without
//! anyone deleting it. The file is never truncated before the lock is held, so the holder's
//! description survives a refused attempt.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock (the file stays, describing the last holder).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another mlops-tui ({holder}) is training this project with this history (lock {path}); \
         stop it or wait for it to end"
    )]
    Held { holder: String, path: PathBuf },
    #[error("{path}: cannot take the project's lock: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ProjectLock {
    /// Takes the lock of `project` in the history under `data`, or says who holds it. `command` is
    /// what this process was started as, recorded for the next one to read.
    pub fn acquire(data: &Path, project: &str, command: &str) -> Result<ProjectLock, LockError> {
        let dir = data.join("locks");
        let path = dir.join(lock_name(project));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    holder: describe(&text),
                    path,
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        let me = format!(
            "pid {}\nhost {}\nstarted {}\ncommand {command}\nproject {project}\n",
            std::process::id(),
            super::host_name().unwrap_or_else(|| "?".into()),
            crate::core::clock::utc_minute(crate::core::clock::now_ms()),
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        let _ = file.sync_data();
        Ok(ProjectLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `pid 1234 on host, started 2026-12-05 10:02 UTC, `mlops-tui run --headless``, from what the
/// holder wrote; what is missing is left out (a holder that has just taken the lock and not yet
/// written).
fn describe(text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mut parts = Vec::new();
    match (field("pid"), field("host")) {
        (Some(pid), Some(host)) => parts.push(format!("pid {pid} on {host}")),
        (Some(pid), None) => parts.push(format!("pid {pid}")),
        _ => {}
    }
    if let Some(t) = field("started") {
        parts.push(format!("started {t} UTC"));
    }
    if let Some(c) = field("command") {
        parts.push(format!("`{c}`"));
    }
    if parts.is_empty() {
        "it has not said who it is yet".into()
    } else {
        parts.join(", ")
    }
}

/// A file name for the project that people can still recognise (`tmp-x-proj-1a2b3c4d.lock`): the
/// path's last characters made safe, and a hash of the whole path so that distinct paths never
/// share a lock.
fn lock_name(project: &str) -> String {
    let safe: String = project
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let safe = safe.trim_matches('-');
    let tail: String = safe
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let hash = project.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}.lock", tail.trim_matches('-'), hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holders_description_and_takes_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            ProjectLock::acquire(dir.path(), "/w/proj", "mlops-tui run --headless").unwrap();
        let e = ProjectLock::acquire(dir.path(), "/w/proj", "mlops-tui").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id()))
                && text.contains("`mlops-tui run --headless`")
                && text.contains(&first.path().display().to_string())
                && text.contains("stop it or wait"),
            "{text}"
        );
        // Another project in the same history is not held up.
        ProjectLock::acquire(dir.path(), "/w/other", "mlops-tui").unwrap();
        drop(first);
        ProjectLock::acquire(dir.path(), "/w/proj", "mlops-tui").unwrap();
    }

    #[test]
    fn lock_names_are_readable_and_distinct() {
        assert_ne!(lock_name("/a/b-c"), lock_name("/a/b/c"));
        assert!(lock_name("/tmp/x/proj").starts_with("tmp-x-proj-"));
        assert!(lock_name(&"x".repeat(300)).len() < 60);
    }

    #[test]
    fn a_holder_that_wrote_nothing_yet_is_described_as_such() {
        assert_eq!(describe(""), "it has not said who it is yet");
        assert_eq!(
            describe("pid 7\nhost h\nstarted 2026-01-01 10:02\ncommand mlops-tui run\n"),
            "pid 7 on h, started 2026-01-01 10:02 UTC, `mlops-tui run`"
        );
    }
}
