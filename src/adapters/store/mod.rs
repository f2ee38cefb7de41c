//! Run history in an embedded SQLite database.
//!
//! The database is the tool's memory across restarts: which runs happened, what every iteration tried
//! and measured, and why. It is opened in WAL mode with `synchronous=FULL` so that a crash or power
//! loss never loses a committed write, and every write below is its own committed transaction (or one
//! explicit transaction when it changes several rows), so the history is consistent at every instant.
//!
//! The schema is versioned with `PRAGMA user_version`: [`MIGRATIONS`] is append-only, entry `i` takes a
//! database from version `i` to `i + 1`. A database written by a newer version is refused rather than
//! misread.
//!
//! [`Store`] wraps one connection: it is `Send` but not `Sync`, so callers keep it on one task or
//! thread (other processes may open the same file; `busy_timeout` makes them wait for each other).
//! [`Writer`] is that thread for callers that must not wait for the disk.

#[cfg(test)]
pub(crate) mod fixtures;
mod lock;
mod ops;
mod placements;
mod recover;
mod types;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use lock::{LockError, ProjectLock};
pub use recover::{Recovery, TableCopy, recover};
pub use types::{EventRow, IterationRow, MetricPoint, NewRun, PlacementRow, RunRow};
pub use writer::{Writer, WriterError};

use crate::core::ids::{IterationNo, RunId};

/// How long a write waits for another process holding the database lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reason recorded on runs found orphaned by [`Store::recover_interrupted`].
pub const INTERRUPTED_REASON: &str = "mlops-tui stopped while this run was in progress";

/// Schema migrations; append only, never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema. Floats are split into a REAL column and a `*_special` TEXT column holding
    // "nan", "inf" or "-inf", because SQLite stores a NaN as NULL.
    "CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        project        TEXT NOT NULL,
        commit_id      TEXT NOT NULL,
        commit_summary TEXT NOT NULL,
        branch         TEXT NOT NULL,
        triggered_by   TEXT NOT NULL,
        started_at     INTEGER NOT NULL,
        finished_at    INTEGER,
        status         TEXT NOT NULL,
        reason         TEXT,
        best_iteration INTEGER,
        owner_pid      INTEGER,
        owner_host     TEXT
    );
    CREATE INDEX runs_by_status ON runs(status);
    CREATE TABLE iterations (
        run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        no                  INTEGER NOT NULL,
        params              TEXT NOT NULL,
        status              TEXT NOT NULL,
        reason              TEXT,
        final_value         REAL,
        final_value_special TEXT,
        container_id        TEXT,
        image               TEXT,
        started_at          INTEGER,
        finished_at         INTEGER,
        proposal_reason     TEXT,
        log_tail            TEXT,
        workdir             TEXT,
        PRIMARY KEY (run_id, no)
    );
    CREATE TABLE metric_points (
        run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        iteration     INTEGER NOT NULL,
        seq           INTEGER NOT NULL,
        epoch         INTEGER,
        value         REAL,
        value_special TEXT,
        at            INTEGER NOT NULL,
        PRIMARY KEY (run_id, iteration, seq)
    );
    CREATE TABLE events (
        id        INTEGER PRIMARY KEY,
        run_id    INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        iteration INTEGER,
        at        INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        message   TEXT NOT NULL
    );
    CREATE INDEX events_by_run ON events(run_id, id);",
    // 2: what each iteration trained and left: its commit (`refs/mlops/run-N/iter-K`), the source
    // lines its parameters changed (a JSON array of {file, line, old, new}), and the model file the
    // script wrote next to itself.
    "ALTER TABLE iterations ADD COLUMN commit_id TEXT;
    ALTER TABLE iterations ADD COLUMN edits TEXT;
    ALTER TABLE iterations ADD COLUMN model TEXT;",
    // 3: where each iteration ran (trials on several engines), in order, and why it went there.
    "CREATE TABLE placements (
        run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        iteration INTEGER NOT NULL,
        seq       INTEGER NOT NULL,
        engine    TEXT NOT NULL,
        at        INTEGER NOT NULL,
        reason    TEXT NOT NULL,
        PRIMARY KEY (run_id, iteration, seq)
    );",
];

/// Every error names the database file, so that a message alone tells the operator where to look.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot create the directory for the history database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot {action}: {source}")]
    Sqlite {
        path: PathBuf,
        action: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path}: the history database has schema version {found}, newer than the {known} this \
         mlops-tui knows; upgrade mlops-tui or move the file away"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// The file fails SQLite's integrity check (or is not a database at all). Nothing is written to
    /// it: writes would fail one by one, or worse, build on damaged pages.
    #[error(
        "{path}: the history database is damaged ({detail}); it was left untouched. To keep it aside \
         as {path}.damaged-<time>, start a fresh history and copy into it everything still readable, \
         run: mlops-tui --data-dir {dir} history --recover",
        dir = path.parent().map(|d| d.display().to_string()).unwrap_or_else(|| ".".into())
    )]
    Damaged { path: PathBuf, detail: String },
    /// The file this connection writes to is no longer at its path (deleted, or replaced by another
    /// file). Writes would still succeed, into a file nobody can open again: they are refused.
    #[error(
        "{path}: the history database was deleted (or replaced by another file) while mlops-tui \
         was running; what happens from now on could not be recorded, so training stops here. Put \
         the file back from a backup and run again, or just run again to start a fresh history \
         there: it numbers its runs after the run directories and refs/mlops/run-N refs already \
         present, so nothing of the old runs is overwritten"
    )]
    Deleted { path: PathBuf },
    #[error("{path}: no run {run} in the history")]
    NoSuchRun { path: PathBuf, run: RunId },
    #[error("{path}: run {run} has no iteration {no}")]
    NoSuchIteration {
        path: PathBuf,
        run: RunId,
        no: IterationNo,
    },
}

/// The history database. Invariant: the schema is at version `MIGRATIONS.len()` and foreign keys are
/// enforced for the lifetime of the connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The device and inode of the file opened, to notice it being deleted or replaced
    /// ([`Store::check_file`]). `None` when it could not be read (then nothing is checked).
    file_id: Option<(u64, u64)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checks its integrity, and brings its schema
    /// up to date. A damaged file is refused with [`StoreError::Damaged`], never used.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let sqlite = |action: &'static str| move |source| classify(path, action, source);
        let conn = Connection::open(path).map_err(sqlite("open the history database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("set busy_timeout"))?;
        check_integrity(&conn, path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sqlite("switch to WAL journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network mounts) cannot do WAL; the rollback journal is still safe.
            tracing::warn!(path = %path.display(), %mode, "history database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("set synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite("enable foreign keys"))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            file_id: file_id(path),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file, as given to [`Store::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file this connection writes to is still the one at its path: one `stat`, cheap
    /// enough before every write. [`StoreError::Deleted`] when it was deleted or replaced.
    pub fn check_file(&self) -> Result<(), StoreError> {
        match (self.file_id, file_id(&self.path)) {
            (Some(opened), Some(now)) if opened != now => Err(self.deleted()),
            (Some(_), None) if !self.path.exists() => Err(self.deleted()),
            _ => Ok(()),
        }
    }

    fn deleted(&self) -> StoreError {
        StoreError::Deleted {
            path: self.path.clone(),
        }
    }

    /// Applies the migrations the database has not seen, each with its version bump in one transaction,
    /// so an interrupted upgrade leaves the database at a well-defined version.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err("read the schema version"))?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        let path = self.path.clone();
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let version = index as i64 + 1;
            let action = format!("migrate the schema to version {version}");
            let err = |source| StoreError::Sqlite {
                path: path.clone(),
                action: action.clone(),
                source,
            };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    /// Wraps a SQLite error with the database path and what was being done.
    fn err<A: Into<String>>(
        &self,
        action: A,
    ) -> impl FnOnce(rusqlite::Error) -> StoreError + use<A> {
        let path = self.path.clone();
        let action = action.into();
        move |source| StoreError::Sqlite {
            path,
            action,
            source,
        }
    }
}

impl StoreError {
    /// Whether the file system under the history is full (SQLite's `SQLITE_FULL`, or `ENOSPC` from a
    /// file written beside it).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            StoreError::Io { source, .. } | StoreError::CreateDir { source, .. } => {
                crate::support::fsutil::is_disk_full(source)
            }
            _ => false,
        }
    }
}

/// The file's device and inode.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// `PRAGMA quick_check`: every page and record well-formed (indexes are not cross-checked, which
/// keeps it fast enough for every start).
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut problems = Vec::new();
    let checked = conn.prepare("PRAGMA quick_check(5)").and_then(|mut st| {
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            problems.push(row.get::<_, String>(0)?);
        }
        Ok(())
    });
    checked.map_err(|e| classify(path, "check the history database", e))?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: problems.join("; "),
        }),
    }
}

/// Whether SQLite says the file is damaged or not a database at all.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// A SQLite error while opening: damage is named as such, whatever step met it first.
fn classify(path: &Path, action: &str, source: rusqlite::Error) -> StoreError {
    if is_damage(&source) {
        StoreError::Damaged {
            path: path.to_path_buf(),
            detail: source.to_string(),
        }
    } else {
        StoreError::Sqlite {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        }
    }
}

/// This machine's name, recorded with a run's owner pid: a pid only means something on its own host.
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether process `pid` exists on this host. Errs towards "alive": a run wrongly left `running` is
/// harmless, a live run wrongly marked interrupted is not.
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    // No procfs (macOS, BSD): signal 0 checks existence without delivering anything.
    match std::process::Command::new("kill")
        .arg("-0")
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) => status.success(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests;
