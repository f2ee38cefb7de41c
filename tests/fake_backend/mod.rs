//! A container backend without containers, for driving the real engine where Docker would only add
//! noise: its containers print nothing and run until stopped, and any one method can be made to
//! panic, as a bug in a real backend would.
#![allow(dead_code, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream;
use mlops_tui::adapters::backend::{
    BackendError, BoxFuture, ContainerBackend, EventStream, FoundContainer, LogStream, Progress,
    TrainSpec,
};
use mlops_tui::core::config::EngineLimits;
use mlops_tui::core::ids::ContainerId;
use mlops_tui::core::model::{ContainerState, ExitStatus, ImageSpec, LogLine};
use tokio::sync::Semaphore;

/// Which method panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicIn {
    Nothing,
    PrepareImage,
    Start,
    Logs,
}

/// The panic message every panicking method uses.
pub const PANIC_TEXT: &str = "fake backend exploded";

pub struct FakeBackend {
    panic_in: PanicIn,
    /// One permit per stop: a container's `wait` ends when it is stopped.
    stopped: Semaphore,
    started: AtomicUsize,
    pub removed: AtomicUsize,
}

impl FakeBackend {
    pub fn new(panic_in: PanicIn) -> FakeBackend {
        FakeBackend {
            panic_in,
            stopped: Semaphore::new(0),
            started: AtomicUsize::new(0),
            removed: AtomicUsize::new(0),
        }
    }

    fn maybe_panic(&self, here: PanicIn) {
        if self.panic_in == here {
            panic!("{PANIC_TEXT} in {here:?}");
        }
    }
}

impl ContainerBackend for FakeBackend {
    fn endpoint(&self) -> String {
        "fake://".into()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    /// A roomy engine: no test configuration asks for more.
    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>> {
        Box::pin(async {
            Ok(EngineLimits {
                cpus: 64,
                memory_bytes: 256 << 30,
                hosts: 1,
            })
        })
    }

    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        _progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        Box::pin(async move {
            self.maybe_panic(PanicIn::PrepareImage);
            Ok(format!("fake/{}", image.label()))
        })
    }

    fn start(&self, _spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>> {
        Box::pin(async move {
            self.maybe_panic(PanicIn::Start);
            let n = self.started.fetch_add(1, Ordering::SeqCst);
            Ok(ContainerId(format!("fake-{n}")))
        })
    }

    fn logs(&self, _id: &ContainerId) -> LogStream {
        self.maybe_panic(PanicIn::Logs);
        Box::pin(stream::pending())
    }

    fn tail<'a>(
        &'a self,
        _id: &'a ContainerId,
        _n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn wait<'a>(&'a self, _id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>> {
        Box::pin(async move {
            let permit = self
                .stopped
                .acquire()
                .await
                .map_err(|e| BackendError::Other(e.to_string()))?;
            permit.forget();
            Ok(ExitStatus {
                code: 143,
                oom_killed: false,
            })
        })
    }

    fn stop<'a>(
        &'a self,
        _id: &'a ContainerId,
        _grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.stopped.add_permits(1);
            Ok(())
        })
    }

    fn remove<'a>(&'a self, _id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.removed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn restart<'a>(&'a self, _id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    fn inspect<'a>(
        &'a self,
        _id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<ContainerState>, BackendError>> {
        Box::pin(async { Ok(None) })
    }

    fn events(&self, _labels: &[(String, String)]) -> EventStream {
        Box::pin(stream::pending())
    }

    fn find<'a>(
        &'a self,
        _labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A committed project whose `mlops.toml` names the `numpy` image (no detection needed) and allows
/// `max_iterations` iterations and `max_failures` failures.
pub fn project(dir: &Path, max_iterations: u32, max_failures: u32) {
    std::fs::write(dir.join("train.py"), "print('never run')\n").expect("write train.py");
    let toml = format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = {max_iterations}
max_failures = {max_failures}
metric_timeout = "1h"
iteration_timeout = "2h"

[tweak]
strategy = "grow"

[tweak.space]
epochs = {{ start = 1, max = 9, step = 1 }}
"#
    );
    std::fs::write(dir.join("mlops.toml"), toml).expect("write mlops.toml");
    let repo = git2::Repository::init(dir).expect("git init");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig = git2::Signature::now("test", "test@example.com").expect("signature");
    repo.commit(Some("HEAD"), &sig, &sig, "add project", &tree, &[])
        .expect("commit");
}
