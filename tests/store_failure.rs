//! A history write that fails during a run is an error people see, not only a log line: the real
//! engine, driven against the fake backend, with a history that refuses one kind of write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_backend;

use std::sync::Arc;
use std::time::Duration;

use fake_backend::{FakeBackend, PanicIn};
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::model::RunStatus;
use mlops_tui::engine::{Engine, EngineOptions, Observer};
use mlops_tui::engine::{EventLine, Level};

#[derive(Default)]
struct Seen(Vec<EventLine>);

impl Observer for Seen {
    fn on_event(&mut self, line: &EventLine) {
        self.0.push(line.clone());
    }
}

#[tokio::test]
async fn a_failed_history_write_becomes_one_error_event_tagged_store() {
    let repo = tempfile::tempdir().unwrap();
    fake_backend::project(repo.path(), 3, 1);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("history.sqlite3");
    let store = Store::open(&db).unwrap();
    // The history breaks after it was opened: every iteration row from now on fails to be written.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE iterations")
        .unwrap();
    let opts = EngineOptions {
        project: Project::locate(repo.path()).unwrap(),
        runs_dir: data.path().join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: false,
        remote: None,
        webhook: None,
        data_policy: mlops_tui::support::data_policy::DataPolicy::new(
            vec![std::env::temp_dir().display().to_string()],
            "test-config.toml".into(),
            &[],
        ),
    };
    let engine = Engine::new(Arc::new(FakeBackend::new(PanicIn::Logs)), store, opts);
    let mut seen = Seen::default();
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.run(&mut seen))
        .await
        .expect("the run ended instead of hanging");
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
    let store_errors: Vec<&EventLine> = seen
        .0
        .iter()
        .filter(|l| l.tag == "store" && l.level == Level::Error)
        .collect();
    assert_eq!(
        store_errors.len(),
        1,
        "once per kind of failure: {:?}",
        seen.0
    );
    let text = &store_errors[0].text;
    assert!(
        text.contains("saving iteration") && text.contains("no such table: iterations"),
        "{text}"
    );
    // Events are still written, so the failure is in the history too.
    let events = Store::open(&db)
        .unwrap()
        .events(outcome.run.unwrap())
        .unwrap();
    assert!(
        events
            .iter()
            .any(|(_, _, kind, t)| kind == "store" && t == text),
        "{events:?}"
    );
}
