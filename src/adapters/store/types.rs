//! The rows the store reads and writes, and how the status vocabularies ([`RunStatus`],
//! [`IterStatus`]) are kept as text in the database.
//!
//! Statuses are stored as their `as_str` spelling (never as numbers) so that the database stays
//! readable with the `sqlite3` shell and a reordering of the enums cannot change history.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

use crate::core::config::Params;
use crate::core::ids::{IterationNo, RunId};
use crate::core::knobs::SourceEdit;
use crate::core::model::{IterStatus, RunStatus};

/// The statuses are stored as their `as_str` spelling; an unknown spelling fails the read with
/// [`UnknownStatus`](crate::core::model::UnknownStatus).
macro_rules! sql_text {
    ($($name:ident),+) => {
        $(
            impl ToSql for $name {
                fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                    Ok(ToSqlOutput::from(self.as_str()))
                }
            }

            impl FromSql for $name {
                fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                    value.as_str()?.parse().map_err(FromSqlError::other)
                }
            }
        )+
    };
}

sql_text!(RunStatus, IterStatus);

/// What `Store::create_run` needs; the rest of a run row is filled in by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRun<'a> {
    /// Absolute path of the trained repository.
    pub project: &'a str,
    pub commit_id: &'a str,
    pub commit_summary: &'a str,
    pub branch: &'a str,
    /// What started the run, e.g. `manual` or `commit`.
    pub trigger: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: RunId,
    pub project: String,
    pub commit_id: String,
    pub commit_summary: String,
    pub branch: String,
    pub trigger: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub best_iteration: Option<IterationNo>,
    /// The process that drives (or drove) the run; used to detect runs orphaned by a crash.
    pub owner_pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IterationRow {
    pub run_id: RunId,
    pub no: IterationNo,
    pub params: Params,
    pub status: IterStatus,
    /// Why the iteration ended as it did (failure cause, stop reason).
    pub reason: Option<String>,
    /// The final metric value. `None` means no value was reported; NaN and infinities are kept as such.
    pub final_value: Option<f64>,
    pub container_id: Option<String>,
    pub image: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Why the tweak strategy chose these parameters.
    pub proposal_reason: Option<String>,
    /// The last lines of the container's output, kept for the post-mortem.
    pub log_tail: Option<String>,
    pub workdir: Option<String>,
    /// The commit the iteration trained (its tree with the source edits).
    pub commit_id: Option<String>,
    /// The source lines its parameters changed.
    pub edits: Vec<SourceEdit>,
    /// The model file the script wrote next to itself, when `/mlops/model/` stayed empty.
    pub model: Option<String>,
}

impl IterationRow {
    /// A pending iteration with nothing but its parameters known yet.
    pub fn new(run_id: RunId, no: IterationNo, params: Params) -> Self {
        IterationRow {
            run_id,
            no,
            params,
            status: IterStatus::Pending,
            reason: None,
            final_value: None,
            container_id: None,
            image: None,
            started_at: None,
            finished_at: None,
            proposal_reason: None,
            log_tail: None,
            workdir: None,
            commit_id: None,
            edits: Vec::new(),
            model: None,
        }
    }
}

/// Source edits as stored: a JSON array of `{file, line, old, new}`; `None` when there are none.
pub(super) fn edits_to_json(edits: &[SourceEdit]) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = edits
        .iter()
        .map(|e| serde_json::json!({"file": e.file, "line": e.line, "old": e.old, "new": e.new}))
        .collect();
    Some(serde_json::Value::Array(list).to_string())
}

/// The edits [`edits_to_json`] wrote; entries that do not have the shape are skipped.
pub(super) fn edits_from_json(text: Option<&str>) -> Vec<SourceEdit> {
    let Some(Ok(serde_json::Value::Array(list))) = text.map(serde_json::from_str) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|v| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            Some(SourceEdit {
                file: s("file")?,
                line: usize::try_from(v.get("line")?.as_u64()?).ok()?,
                old: s("old")?,
                new: s("new")?,
            })
        })
        .collect()
}

/// An event as `(at, iteration, kind, message)`; `at` is Unix milliseconds.
pub type EventRow = (i64, Option<IterationNo>, String, String);

/// One stay of an iteration on a Docker engine: where, since when, and why it went there
/// (`first placement`, `moved: engine e1 unreachable for 20s; resumes from epoch 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRow {
    pub engine: String,
    /// Unix milliseconds.
    pub at: i64,
    pub reason: String,
}

/// One metric value reported during training (usually once per epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    pub epoch: Option<u32>,
    /// May be NaN or infinite (a diverging model); the store keeps it as such.
    pub value: f64,
    /// Unix milliseconds.
    pub at: i64,
}

/// SQLite turns a bound NaN into NULL, so a float is stored as a REAL column holding finite values and
/// a TEXT column holding the spelling of a non-finite one. Exactly one of the two is set for a value.
pub(crate) fn split_f64(v: Option<f64>) -> (Option<f64>, Option<&'static str>) {
    match v {
        None => (None, None),
        Some(x) if x.is_finite() => (Some(x), None),
        Some(x) if x.is_nan() => (None, Some("nan")),
        Some(x) if x > 0.0 => (None, Some("inf")),
        Some(_) => (None, Some("-inf")),
    }
}

/// Inverse of [`split_f64`]. An unknown spelling reads as NaN rather than failing the whole query.
pub(crate) fn join_f64(real: Option<f64>, special: Option<&str>) -> Option<f64> {
    match (real, special) {
        (Some(x), _) => Some(x),
        (None, None) => None,
        (None, Some("inf")) => Some(f64::INFINITY),
        (None, Some("-inf")) => Some(f64::NEG_INFINITY),
        (None, Some(_)) => Some(f64::NAN),
    }
}
