//! The tracking worker: brings the MLflow records of the runs it is told about up to date with the
//! history, off the engine's loop.
//!
//! It is told "run N changed" ([`TrackerHandle::changed`], sent through the history writer so the
//! change is committed when it arrives), waits a moment so that a burst of metric points goes in one
//! request, and syncs the run ([`crate::adapters::mlflow::sync_run`]). A server that is down or slow
//! never holds training: the records wait in `runs/N/mlflow-queue.jsonl` and are retried with
//! back-off (1 s doubling to 60 s). The worker says once that the server is unreachable, with how many
//! records wait, and once that it is back ([`Msg::Tracking`]). On start it also picks up the queues
//! an earlier process left.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::adapters::mlflow::{Client, sync};
use crate::adapters::store::Store;
use crate::core::config::track::MlflowConfig;
use crate::core::ids::RunId;
use crate::engine::msg::Msg;

/// A burst of changes is sent together after this pause.
const SETTLE: Duration = Duration::from_millis(500);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

enum Poke {
    Changed(RunId),
    /// Send what is left (one attempt), then end.
    Close(oneshot::Sender<()>),
}

/// The worker's handle; dropping it ends the worker after its current attempt.
#[derive(Debug, Clone)]
pub struct TrackerHandle {
    tx: mpsc::UnboundedSender<Poke>,
}

impl TrackerHandle {
    /// Run `run`'s history changed.
    pub fn changed(&self, run: RunId) {
        let _ = self.tx.send(Poke::Changed(run));
    }

    /// Makes one last attempt to send what waits, and answers when it is over.
    pub async fn close(self) {
        let (done, over) = oneshot::channel();
        if self.tx.send(Poke::Close(done)).is_ok() {
            let _ = over.await;
        }
    }
}

/// What the worker needs to know of where it works.
pub struct Tracking {
    pub config: MlflowConfig,
    /// The project's directory as the history names it.
    pub project: String,
    pub db: PathBuf,
    pub runs_dir: PathBuf,
}

/// The worker and its handle; the future is to be spawned.
pub fn tracker(
    t: Tracking,
    msgs: mpsc::UnboundedSender<Msg>,
) -> (TrackerHandle, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = mpsc::unbounded_channel();
    (TrackerHandle { tx }, run(t, rx, msgs))
}

struct Worker {
    t: Tracking,
    client: Client,
    experiment: String,
    store: Option<Arc<Mutex<Store>>>,
    msgs: mpsc::UnboundedSender<Msg>,
    /// Records waiting while the server is unreachable; `None` while it answers.
    down: Option<usize>,
}

async fn run(t: Tracking, mut rx: mpsc::UnboundedReceiver<Poke>, msgs: mpsc::UnboundedSender<Msg>) {
    let client = Client::new(&t.config.uri);
    let experiment = t.config.experiment_or(&sync::project_name(&t.project));
    let mut w = Worker {
        client,
        experiment,
        store: None,
        msgs,
        down: None,
        t,
    };
    let mut dirty: BTreeSet<RunId> = sync::queued_runs(&w.t.runs_dir).into_iter().collect();
    let mut retry = RETRY_MIN;
    let mut next = Instant::now() + SETTLE;
    loop {
        let wake = tokio::time::sleep_until(next);
        tokio::select! {
            poke = rx.recv() => match poke {
                Some(Poke::Changed(r)) => {
                    if dirty.is_empty() && w.down.is_none() {
                        next = Instant::now() + SETTLE;
                    }
                    dirty.insert(r);
                }
                Some(Poke::Close(done)) => {
                    w.attempt(&mut dirty).await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            () = wake, if !dirty.is_empty() => {
                if w.attempt(&mut dirty).await {
                    retry = RETRY_MIN;
                    next = Instant::now() + SETTLE;
                } else {
                    next = Instant::now() + retry;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

impl Worker {
    /// Syncs every dirty run; false when the server could not be reached (they stay dirty).
    async fn attempt(&mut self, dirty: &mut BTreeSet<RunId>) -> bool {
        let mut queued = 0;
        let mut sent = 0;
        let mut failure = None;
        for run in dirty.clone() {
            if failure.is_some() {
                queued += self.waiting(run).await;
                continue;
            }
            match self.sync(run).await {
                Ok(n) => {
                    sent += n;
                    dirty.remove(&run);
                }
                Err(p) => {
                    queued += p.queued;
                    failure = Some(p.error);
                }
            }
        }
        match failure {
            Some(e) if e.is_unreachable() => {
                if self.down.is_none() {
                    let notice = format!(
                        "MLflow at {} unreachable: {queued} records queued",
                        self.client.uri()
                    );
                    tracing::warn!("{notice}: {e}");
                    let _ = self.msgs.send(Msg::Tracking {
                        down: Some(notice.clone()),
                        text: notice,
                    });
                }
                self.down = Some(queued);
                false
            }
            Some(e) => {
                // Refused outright (an experiment that cannot be made): said in the log, not retried
                // until the run changes again.
                tracing::warn!("{e}");
                dirty.clear();
                true
            }
            None => {
                if self.down.take().is_some() {
                    let text = format!(
                        "MLflow at {} reachable again: {sent} records sent",
                        self.client.uri()
                    );
                    let _ = self.msgs.send(Msg::Tracking { down: None, text });
                }
                true
            }
        }
    }

    async fn sync(&mut self, run: RunId) -> Result<usize, sync::Pending> {
        let dir = self.t.runs_dir.join(run.to_string());
        let Some(snap) = self.snapshot(run).await else {
            return Ok(0);
        };
        let config = sync::run_config(&dir);
        let ctx = sync::context(&self.t.project, config.as_ref());
        sync::sync_run(&self.client, &self.experiment, &ctx, &dir, &snap).await
    }

    /// Records a run would send, for the count of what waits.
    async fn waiting(&mut self, run: RunId) -> usize {
        let dir = self.t.runs_dir.join(run.to_string());
        let Some(snap) = self.snapshot(run).await else {
            return 0;
        };
        let ctx = sync::context(&self.t.project, sync::run_config(&dir).as_ref());
        let acks = sync::load_acks(&dir, self.client.uri(), &self.experiment);
        crate::adapters::mlflow::plan::plan(&ctx, &snap, &acks).len()
    }

    /// The run's history, read on a connection of our own, off the async threads.
    async fn snapshot(&mut self, run: RunId) -> Option<crate::adapters::mlflow::Snapshot> {
        let store = match &self.store {
            Some(s) => s.clone(),
            None => {
                let db = self.t.db.clone();
                let opened = tokio::task::spawn_blocking(move || Store::open(&db)).await;
                match opened {
                    Ok(Ok(s)) => self.store.insert(Arc::new(Mutex::new(s))).clone(),
                    Ok(Err(e)) => {
                        tracing::warn!("MLflow tracking cannot read the history: {e}");
                        return None;
                    }
                    Err(_) => return None,
                }
            }
        };
        let read = tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|p| p.into_inner());
            sync::snapshot(&store, run)
        })
        .await;
        match read {
            Ok(Ok(snap)) => snap,
            Ok(Err(e)) => {
                tracing::warn!("MLflow tracking cannot read run {run}: {e}");
                None
            }
            Err(_) => None,
        }
    }
}
