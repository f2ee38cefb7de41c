//! A panicking worker fails what it was doing, with the panic's message, and the run goes on or ends
//! as after any other failure: it is never left "running". The real engine, driven against a fake
//! backend whose chosen method panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_backend;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_backend::{FakeBackend, PANIC_TEXT, PanicIn};
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, RunStatus};
use mlops_tui::engine::{Engine, EngineOptions, Observer, Outcome};

struct Quiet;
impl Observer for Quiet {}

struct Setup {
    _repo: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Setup {
    fn new(max_iterations: u32, max_failures: u32) -> Setup {
        let repo = tempfile::tempdir().unwrap();
        fake_backend::project(repo.path(), max_iterations, max_failures);
        Setup {
            _repo: repo,
            data: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> Store {
        Store::open(&self.data.path().join("history.sqlite3")).unwrap()
    }

    async fn run_once(&self, backend: Arc<FakeBackend>) -> Outcome {
        let opts = EngineOptions {
            project: Project::locate(self._repo.path()).unwrap(),
            runs_dir: self.data.path().join("runs"),
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
        let engine = Engine::new(backend, self.store(), opts);
        tokio::time::timeout(Duration::from_secs(60), engine.run(&mut Quiet))
            .await
            .expect("the run ended instead of hanging")
    }
}

#[tokio::test]
async fn a_panicking_iteration_worker_fails_its_iteration_and_the_loop_goes_on() {
    let s = Setup::new(3, 1);
    let backend = Arc::new(FakeBackend::new(PanicIn::Logs));
    let outcome = s.run_once(backend.clone()).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
    assert!(
        outcome
            .reason
            .contains("2 iterations failed (max_failures = 1)"),
        "{}",
        outcome.reason
    );
    let run = outcome.run.unwrap();
    let store = s.store();
    assert_eq!(store.run(run).unwrap().unwrap().status, RunStatus::Failed);
    let iterations = store.iterations(run).unwrap();
    assert_eq!(iterations.len(), 2, "{iterations:?}");
    for it in &iterations {
        assert_eq!(it.status, IterStatus::Failed, "{it:?}");
        let reason = it.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("internal error: worker panicked: ") && reason.contains(PANIC_TEXT),
            "{reason}"
        );
    }
    // The dead workers' containers are removed all the same.
    assert_eq!(backend.removed.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panic_before_the_container_starts_fails_the_iteration() {
    let s = Setup::new(1, 0);
    let outcome = s.run_once(Arc::new(FakeBackend::new(PanicIn::Start))).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
    let run = outcome.run.unwrap();
    let it = s.store().iterations(run).unwrap();
    assert_eq!(it[0].no, IterationNo(1));
    assert_eq!(it[0].status, IterStatus::Failed);
    assert!(
        it[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains(PANIC_TEXT),
        "{:?}",
        it[0].reason
    );
}

#[tokio::test]
async fn a_panicking_image_build_fails_the_image_stage() {
    let s = Setup::new(1, 0);
    let outcome = s
        .run_once(Arc::new(FakeBackend::new(PanicIn::PrepareImage)))
        .await;
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
    assert!(
        outcome.reason.contains(PANIC_TEXT),
        "the reason names the panic: {}",
        outcome.reason
    );
    let run: RunId = outcome.run.unwrap();
    let row = s.store().run(run).unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Failed);
    assert!(s.store().iterations(run).unwrap().is_empty());
}
