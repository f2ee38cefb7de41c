//! The dashboard's workers. None of them knows about drawing: each does its I/O and sends a
//! [`UiMsg`].
//!
//! - [`TuiObserver`] runs on the engine's task and forwards container output and state snapshots.
//! - [`docker_monitor`] connects to the container engine (retrying with back-off) and hands the
//!   first connection to the runtime, which starts the engine with it; from then on the status bar
//!   reads the engine's own health signal.
//! - [`history_worker`] reads the history store on the blocking pool with its own connection.
//! - [`supervise`] reports a spawned task that dies, so a failure shows in the UI instead of
//!   silently stopping part of it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::adapters::store::Store;
use crate::core::clock;
use crate::core::ids::{IterationNo, RunId};
use crate::engine::{Msg, Observer, PipelineState};

use super::msg::{SavedLines, UiMsg};
use super::state::{DockerStatus, RunDetail, RunSummary};

/// Runs listed in the table.
pub const HISTORY_LIMIT: usize = 50;
/// Back-off bounds while the engine cannot be reached.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Forwards what the engine does to the UI task. Invariant: cheap enough for the engine's task; the
/// state snapshot goes through a `watch` channel, so a UI that is behind sees only the newest one.
pub struct TuiObserver {
    pub ui: mpsc::UnboundedSender<UiMsg>,
    pub state: watch::Sender<PipelineState>,
}

impl Observer for TuiObserver {
    fn on_msg(&mut self, msg: &Msg, _state: &PipelineState) {
        if let Msg::Logs { run, no, lines, .. } = msg {
            let _ = self.ui.send(UiMsg::Logs {
                run: *run,
                no: *no,
                lines: lines.clone(),
                at_ms: clock::now_ms(),
            });
        }
    }

    fn on_change(&mut self, state: &PipelineState) {
        self.state.send_modify(|s| s.clone_from(state));
    }
}

/// Spawns `fut` and reports to the UI if it ends by panicking or being cancelled.
pub fn supervise<F>(name: &'static str, ui: mpsc::UnboundedSender<UiMsg>, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = tokio::spawn(fut);
    tokio::spawn(async move {
        if let Err(e) = handle.await {
            let _ = ui.send(UiMsg::TaskFailed {
                task: name.to_string(),
                error: join_error_text(&e),
            });
        }
    });
}

pub fn join_error_text(e: &tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".into();
    }
    // The panic message itself was reported by the panic hook; say where to look.
    "panicked (details in the log file)".into()
}

/// Connects (retrying with back-off until the socket is there), says why not while it cannot, and
/// hands the first connection over; then it ends. From there on whether the engine answers is the
/// engine's own health signal, which the status bar reads from its state. Never gives up: Docker
/// being down is a state, not an exit.
pub async fn docker_monitor<B, C>(
    connect: C,
    ui: mpsc::UnboundedSender<UiMsg>,
    ready: oneshot::Sender<Arc<B>>,
) where
    B: ContainerBackend,
    C: Fn() -> Result<B, BackendError> + Send + 'static,
{
    let mut delay = RETRY_MIN;
    loop {
        match connect() {
            Ok(b) => {
                // The engine treats an engine that does not answer as a state (runs wait for it),
                // so it starts as soon as there is a connection to ping.
                let _ = ready.send(Arc::new(b));
                return;
            }
            Err(e) => {
                let _ = ui.send(UiMsg::Docker(unavailable(e, delay)));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

fn unavailable(e: BackendError, retry: Duration) -> DockerStatus {
    let (endpoint, message) = match e {
        BackendError::Unavailable { endpoint, message } => (endpoint, message),
        other => (String::new(), other.to_string()),
    };
    DockerStatus::Unavailable {
        endpoint,
        message,
        retry_s: retry.as_secs(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRequest {
    Runs,
    Run(RunId),
    /// A finished iteration's saved output.
    Output(RunId, IterationNo),
}

/// Answers history requests with a read connection of its own, on the blocking pool. Requests that
/// pile up while a query runs are merged (one table refresh is enough).
pub async fn history_worker(
    db: PathBuf,
    mut requests: mpsc::UnboundedReceiver<HistoryRequest>,
    ui: mpsc::UnboundedSender<UiMsg>,
) {
    let mut store: Option<Store> = None;
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = requests.try_recv() {
            if !batch.contains(&more) {
                batch.push(more);
            }
        }
        for req in batch {
            let db = db.clone();
            let taken = store.take();
            let job = tokio::task::spawn_blocking(move || {
                let s = match taken {
                    Some(s) => s,
                    None => match Store::open(&db) {
                        Ok(s) => s,
                        Err(e) => return (None, answer_err(req, e.to_string())),
                    },
                };
                let msg = match req {
                    HistoryRequest::Runs => UiMsg::History(summaries(&s)),
                    HistoryRequest::Run(id) => UiMsg::Detail(detail(&s, id)),
                    HistoryRequest::Output(run, no) => UiMsg::SavedOutput {
                        run,
                        no,
                        saved: saved_output(&s, run, no),
                    },
                };
                (Some(s), msg)
            });
            match job.await {
                Ok((s, msg)) => {
                    store = s;
                    let _ = ui.send(msg);
                }
                Err(e) => {
                    // The connection went down with the task; the next request opens a new one.
                    let _ = ui.send(answer_err(
                        req,
                        format!("reading the history {}", join_error_text(&e)),
                    ));
                }
            }
        }
    }
}

fn answer_err(req: HistoryRequest, e: String) -> UiMsg {
    match req {
        HistoryRequest::Runs => UiMsg::History(Err(e)),
        HistoryRequest::Run(_) => UiMsg::Detail(Err(e)),
        HistoryRequest::Output(run, no) => UiMsg::SavedOutput {
            run,
            no,
            saved: Err(e),
        },
    }
}

/// The last lines the engine kept of an iteration's output (the same the run detail shows).
fn saved_output(s: &Store, run: RunId, no: IterationNo) -> Result<SavedLines, String> {
    let it = s
        .iterations(run)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|i| i.no == no)
        .ok_or_else(|| format!("iteration {no} of run {run} is not in the history"))?;
    Ok(SavedLines {
        lines: it
            .log_tail
            .as_deref()
            .unwrap_or("")
            .lines()
            .map(str::to_string)
            .collect(),
        at_ms: it.finished_at.or(it.started_at).unwrap_or(0),
    })
}

fn summaries(s: &Store) -> Result<Vec<RunSummary>, String> {
    let runs = s.runs(HISTORY_LIMIT).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(runs.len());
    for row in runs {
        let its = s.iterations(row.id).map_err(|e| e.to_string())?;
        let best_value = row
            .best_iteration
            .and_then(|b| its.iter().find(|i| i.no == b))
            .and_then(|i| i.final_value);
        out.push(RunSummary {
            iterations: its.len(),
            best_value,
            row,
        });
    }
    Ok(out)
}

fn detail(s: &Store, id: RunId) -> Result<RunDetail, String> {
    let run = s
        .run(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {id} is not in the history"))?;
    let mut iterations = Vec::new();
    for it in s.iterations(id).map_err(|e| e.to_string())? {
        let points = s.metric_points(id, it.no).map_err(|e| e.to_string())?;
        iterations.push((it, points));
    }
    let selected = iterations.len().saturating_sub(1);
    Ok(RunDetail {
        run,
        iterations,
        selected,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::adapters::store::{IterationRow, NewRun};

    #[tokio::test]
    async fn history_worker_reads_runs_and_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite3");
        {
            let s = Store::open(&db).unwrap();
            s.create_run(&NewRun {
                project: "/p",
                commit_id: "abc",
                commit_summary: "first",
                branch: "main",
                trigger: "start",
            })
            .unwrap();
            let mut it = IterationRow::new(RunId(1), IterationNo(1), Default::default());
            it.finished_at = Some(61_000);
            it.log_tail = Some("epoch 1 accuracy=0.5\nfinal accuracy=0.5".into());
            s.upsert_iteration(&it).unwrap();
        }
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let (ui_tx, mut ui_rx) = mpsc::unbounded_channel();
        tokio::spawn(history_worker(db, req_rx, ui_tx));
        req_tx.send(HistoryRequest::Runs).unwrap();
        match ui_rx.recv().await.unwrap() {
            UiMsg::History(Ok(runs)) => {
                assert_eq!(runs.len(), 1);
                assert_eq!(runs[0].row.commit_summary, "first");
            }
            other => panic!("{other:?}"),
        }
        req_tx.send(HistoryRequest::Run(RunId(1))).unwrap();
        assert!(
            matches!(ui_rx.recv().await.unwrap(), UiMsg::Detail(Ok(d)) if d.run.id == RunId(1))
        );
        req_tx.send(HistoryRequest::Run(RunId(9))).unwrap();
        assert!(
            matches!(ui_rx.recv().await.unwrap(), UiMsg::Detail(Err(e)) if e.contains("run 9"))
        );
        req_tx
            .send(HistoryRequest::Output(RunId(1), IterationNo(1)))
            .unwrap();
        match ui_rx.recv().await.unwrap() {
            UiMsg::SavedOutput {
                saved: Ok(saved), ..
            } => {
                assert_eq!(saved.lines, ["epoch 1 accuracy=0.5", "final accuracy=0.5"]);
                assert_eq!(saved.at_ms, 61_000);
            }
            other => panic!("{other:?}"),
        }
        req_tx
            .send(HistoryRequest::Output(RunId(1), IterationNo(7)))
            .unwrap();
        assert!(matches!(
            ui_rx.recv().await.unwrap(),
            UiMsg::SavedOutput { saved: Err(e), .. } if e.contains("iteration 7 of run 1")
        ));
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_not_fatal() {
        let (ui_tx, mut ui_rx) = mpsc::unbounded_channel();
        supervise("test task", ui_tx, async { panic!("boom") });
        match ui_rx.recv().await.unwrap() {
            UiMsg::TaskFailed { task, error } => {
                assert_eq!(task, "test task");
                assert!(error.contains("panicked"));
            }
            other => panic!("{other:?}"),
        }
    }
}
