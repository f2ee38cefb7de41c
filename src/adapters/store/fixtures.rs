//! Test data shared by the store's tests and those of the history tables built on it.

use serde_json::json;

use super::{NewRun, Store};
use crate::core::config::Params;

pub(crate) fn new_run() -> NewRun<'static> {
    NewRun {
        project: "/home/me/cnn",
        commit_id: "0123456789abcdef0123456789abcdef01234567",
        commit_summary: "bigger model",
        branch: "main",
        trigger: "manual",
    }
}

pub(crate) fn params(filters: i64) -> Params {
    [
        ("filters".to_string(), json!(filters)),
        ("optimizer".to_string(), json!("adam")),
    ]
    .into_iter()
    .collect()
}

pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("nested/dir/history.db")).unwrap();
    (dir, store)
}
