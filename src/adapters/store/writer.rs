//! A thread that owns the history [`Store`] and runs jobs on it one at a time, in the order they
//! were sent.
//!
//! Every committed write waits for an fsync (`synchronous=FULL`); done on an async task, that wait
//! stalls everything the task does. The writer takes the waits off its callers: [`Writer::submit`]
//! queues a job and returns at once, [`Writer::call`] awaits a job's answer. Invariants: jobs run in
//! submission order on one connection, so the history is written in the order the caller decided it;
//! a job's panic is logged and the jobs after it still run; [`Writer::close`] returns only after every
//! job submitted before it has run.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::Store;

/// One unit of work on the history.
type Job = Box<dyn FnOnce(&Store) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("{path}: the history writer has stopped")]
    Stopped { path: PathBuf },
}

/// Where jobs run: on the writer thread, or (when no thread could be started) inline on the caller.
enum Runner {
    Thread {
        jobs: mpsc::Sender<Job>,
        ended: oneshot::Receiver<()>,
    },
    Inline(Store),
}

/// The handle to the history writer. Dropping it without [`Writer::close`] still runs the queued
/// jobs, but nobody waits for them.
pub struct Writer {
    runner: Runner,
    path: PathBuf,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Moves `store` onto a new thread. Should the thread not start (the system is out of threads),
    /// jobs run inline instead: slower for the caller, but nothing is lost.
    pub fn spawn(store: Store) -> Writer {
        let path = store.path().to_path_buf();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (done, ended) = oneshot::channel();
        // The store is handed over only once the thread runs: it stays here if the thread cannot start.
        let (back, returned) = mpsc::channel::<Store>();
        let started = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                if let Ok(store) = returned.recv() {
                    run_jobs(&store, &queue);
                }
                let _ = done.send(());
            });
        let runner = match started {
            Ok(_) => match back.send(store) {
                Ok(()) => Runner::Thread { jobs, ended },
                Err(mpsc::SendError(store)) => Runner::Inline(store),
            },
            Err(e) => {
                tracing::warn!("cannot start the history writer thread, writing inline: {e}");
                Runner::Inline(store)
            }
        };
        Writer { runner, path }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `job` after every job submitted before it; returns at once.
    pub fn submit(&self, job: impl FnOnce(&Store) + Send + 'static) -> Result<(), WriterError> {
        match &self.runner {
            Runner::Thread { jobs, .. } => jobs.send(Box::new(job)).map_err(|_| self.stopped()),
            Runner::Inline(store) => {
                run_one(store, Box::new(job));
                Ok(())
            }
        }
    }

    /// Runs `job` after every job submitted before it and answers what it returned. The future does
    /// not borrow the writer.
    pub fn call<R, F>(&self, job: F) -> impl Future<Output = Result<R, WriterError>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> R + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let queued = self.submit(move |store| {
            let _ = answer.send(job(store));
        });
        let stopped = self.stopped();
        async move {
            queued?;
            answered.await.map_err(|_| stopped)
        }
    }

    /// Runs every queued job, then ends the thread.
    pub async fn close(self) {
        if let Runner::Thread { jobs, ended } = self.runner {
            drop(jobs);
            let _ = ended.await;
        }
    }

    fn stopped(&self) -> WriterError {
        WriterError::Stopped {
            path: self.path.clone(),
        }
    }
}

/// The writer thread's loop: until every sender is gone and the queue is empty.
fn run_jobs(store: &Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        run_one(store, job);
    }
}

/// Runs one job; a panic in it is logged, and the store stays usable (every write is its own
/// transaction, which SQLite rolls back if it was left open).
fn run_one(store: &Store, job: Job) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| job(store))) {
        tracing::error!(
            "a history job panicked: {}",
            crate::support::panic::message(&*panic)
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::adapters::store::NewRun;

    fn new_run() -> NewRun<'static> {
        NewRun {
            project: "/p",
            commit_id: "abc",
            commit_summary: "s",
            branch: "main",
            trigger: "test",
        }
    }

    #[tokio::test]
    async fn jobs_run_in_order_and_close_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        let writer = Writer::spawn(Store::open(&path).unwrap());
        let run = writer
            .call(|s| s.create_run(&new_run()))
            .await
            .unwrap()
            .unwrap();
        for i in 0..50 {
            writer
                .submit(move |s| {
                    s.add_event(Some(run), None, "t", &i.to_string()).unwrap();
                })
                .unwrap();
        }
        writer.close().await;
        let events = Store::open(&path).unwrap().events(run).unwrap();
        let texts: Vec<String> = events.into_iter().map(|e| e.3).collect();
        let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        assert_eq!(texts, want);
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::spawn(Store::open(&dir.path().join("h.sqlite3")).unwrap());
        writer.submit(|_| panic!("job exploded")).unwrap();
        let run = writer.call(|s| s.create_run(&new_run())).await.unwrap();
        assert!(run.is_ok());
        writer.close().await;
    }
}
