//! The engine's side of the history. Effects become jobs for the history writer's thread, so no
//! fsync stalls the loop; the jobs run in the order the effects came, so the history tells the story
//! in the order the reducer decided it. What a job needs from the state is copied when it is queued.

use crate::engine::trigger::Trigger;
use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Engine, guard};
use crate::adapters::backend::ContainerBackend;
use crate::adapters::store::{
    IterationRow, MetricPoint, NewRun, PlacementRow, Store, StoreError, WriterError,
};
use crate::core::ids::{IterationNo, RunId};
use crate::core::metrics::Observation;
use crate::core::model::{CommitInfo, IterStatus, RunStatus};
use crate::engine::msg::{EventLine, Level, Msg};
use crate::engine::state::Carried;
use crate::support::fsutil;

/// Why a read of the history gave no answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// The writer's thread is gone.
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes failed history writes visible: each is logged, and the first failure of each kind reaches
/// the reducer as an error notice tagged `store` (shown in the dashboard and the headless output, and
/// recorded if events can still be written). Once per kind, so a history that refuses every metric
/// point does not bury the run's output under copies of one message.
///
/// A failure that means the history cannot go on (see [`guard::lost_history`]) is sent once as
/// [`Msg::HistoryLost`], which stops the training.
#[derive(Clone)]
pub(super) struct WriteFailures {
    tx: mpsc::UnboundedSender<Msg>,
    seen: Arc<Mutex<HashSet<&'static str>>>,
    lost: Arc<AtomicBool>,
    db: Arc<PathBuf>,
}

impl WriteFailures {
    pub(super) fn new(tx: mpsc::UnboundedSender<Msg>, db: PathBuf) -> Self {
        WriteFailures {
            tx,
            seen: Arc::default(),
            lost: Arc::default(),
            db: Arc::new(db),
        }
    }

    /// Sends [`Msg::HistoryLost`] when `e` says the history cannot go on (once); answers whether
    /// it did say so.
    fn check_lost(&self, e: &(dyn std::error::Error + 'static)) -> bool {
        let text = if let Some(e) = e.downcast_ref::<StoreError>() {
            guard::lost_history(e, &self.db)
        } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
            guard::lost_history_io(e, &self.db)
        } else {
            None
        };
        let Some(text) = text else { return false };
        if !self.lost.swap(true, Ordering::SeqCst) {
            tracing::error!("{text}");
            let _ = self.tx.send(Msg::HistoryLost { error: text });
        }
        true
    }

    fn report(&self, kind: &'static str, text: String) {
        tracing::error!("{text}");
        let first = match self.seen.lock() {
            Ok(mut seen) => seen.insert(kind),
            Err(_) => true,
        };
        if first {
            let _ = self.tx.send(Msg::Notice {
                tag: "store".into(),
                text: format!(
                    "history not saved: {text} (later failures of this kind go to the log only)"
                ),
                level: Level::Error,
            });
        }
    }
}

impl<B: ContainerBackend> Engine<B> {
    /// Queues a write of `kind`; a failure is reported as `what: error` through [`WriteFailures`]
    /// (the loop goes on without it).
    /// Before each job, the history's file is checked to still be at its path: writes into a
    /// deleted file would be lost without a word.
    pub(super) fn write<E: std::error::Error + 'static>(
        &self,
        kind: &'static str,
        what: impl Display + Send + 'static,
        job: impl FnOnce(&Store) -> Result<(), E> + Send + 'static,
    ) {
        let failures = self.write_failures.clone();
        let queued = self.history.submit(move |s| {
            if let Err(e) = s.check_file() {
                failures.check_lost(&e);
                return;
            }
            if let Err(e) = job(s) {
                if !failures.check_lost(&e) {
                    failures.report(kind, format!("{what}: {e}"));
                }
            }
        });
        if let Err(e) = queued {
            self.write_failures.report("writer", e.to_string());
        }
    }

    /// Reads after every write queued before it. The future does not borrow the engine.
    pub(super) fn read<R, F>(
        &self,
        job: F,
    ) -> impl Future<Output = Result<R, ReadError>> + use<B, R, F>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
    {
        let answer = self.history.call(job);
        async move { Ok(answer.await??) }
    }

    /// What earlier runs of `commit`'s branch tried on other commits, oldest first: the newest
    /// [`WARM_RUNS`] runs that ran to their end, their iterations that finished.
    pub(super) fn carried_over(
        &self,
        commit: &CommitInfo,
    ) -> impl Future<Output = Result<Vec<Carried>, ReadError>> + use<B> {
        let project = self.opts.project.dir.display().to_string();
        let (branch, id) = (commit.branch.clone(), commit.id.clone());
        self.read(move |s| {
            let mut out = Vec::new();
            for run in s
                .earlier_runs(&project, &branch, &id, WARM_RUNS)?
                .into_iter()
                .rev()
            {
                let origin = format!("run {} @ {}", run.id, short(&run.commit_id));
                let rows = s.iterations(run.id)?;
                out.extend(rows.into_iter().filter_map(|row| carried(row, &origin)));
            }
            Ok(out)
        })
    }

    /// Allocates the run (numbered above every run directory and ref already there, see
    /// [`guard::taken_numbers`]) and its directory, then answers `RunCreated`; a refusal when it
    /// cannot be recorded.
    pub(super) fn create_run(&self, commit: CommitInfo, trigger: Trigger) {
        let project = self.opts.project.clone();
        let runs_dir = self.opts.runs_dir.clone();
        let tx = self.tx.clone();
        let refusals = self.refusals.clone();
        let failures = self.write_failures.clone();
        let queued = self.history.submit(move |s| {
            let name = project.dir.display().to_string();
            let taken = guard::taken_numbers(&runs_dir, &project);
            match s.create_run_above(&new_run(&name, &commit, trigger.as_str()), taken) {
                Ok(run) => {
                    if let Err(e) = guard::reserve(&runs_dir.join(run.to_string())) {
                        tracing::warn!("cannot make the directory of run {run}: {e}");
                        failures.check_lost(&e);
                    }
                    let _ = tx.send(Msg::RunCreated { run, commit });
                }
                Err(e) => {
                    failures.check_lost(&e);
                    let _ = refusals.send(e.to_string());
                }
            }
        });
        if let Err(e) = queued {
            let _ = self.refusals.send(e.to_string());
        }
    }

    /// Records a commit that will not be trained as a cancelled run.
    pub(super) fn skip_commit(&self, commit: CommitInfo, reason: String) {
        let project = self.opts.project.clone();
        let runs_dir = self.opts.runs_dir.clone();
        let what = format!("recording skipped commit {}", commit.short());
        self.write("run", what, move |s| {
            let taken = guard::taken_numbers(&runs_dir, &project);
            let name = project.dir.display().to_string();
            let id = s.create_run_above(&new_run(&name, &commit, "commit"), taken)?;
            s.finish_run(id, RunStatus::Cancelled, Some(&reason))
        });
    }

    pub(super) fn save_iteration(&self, run: RunId, no: IterationNo) {
        if let Some(row) = self.iteration_row(run, no) {
            self.write(
                "iteration",
                format!("saving iteration {run}/{no}"),
                move |s| s.upsert_iteration(&row),
            );
        }
    }

    pub(super) fn save_metric(&self, run: RunId, no: IterationNo, obs: Observation) {
        let p = MetricPoint {
            epoch: obs.epoch,
            value: obs.value,
            at: crate::core::clock::now_ms(),
        };
        self.write("metric", "saving metric point", move |s| {
            s.add_metric_point(run, no, &p)
        });
    }

    pub(super) fn save_placement(&self, run: RunId, no: IterationNo) {
        let Some(p) = self
            .state
            .run
            .as_ref()
            .filter(|r| r.id == run)
            .and_then(|r| r.iteration(no))
            .and_then(|it| it.placements.last())
        else {
            return;
        };
        let row = PlacementRow {
            engine: p.engine.clone(),
            at: p.at_ms,
            reason: p.reason.clone(),
        };
        self.write("placement", "saving where an iteration runs", move |s| {
            s.add_placement(run, no, &row)
        });
    }

    pub(super) fn save_best(&self, run: RunId, no: IterationNo) {
        self.write("best", "saving best iteration", move |s| {
            s.set_best(run, no)
        });
    }

    pub(super) fn save_event(&self, run: Option<RunId>, no: Option<IterationNo>, line: &EventLine) {
        let (tag, text) = (line.tag.clone(), line.text.clone());
        self.write("event", "saving event", move |s| {
            s.add_event(run, no, &tag, &text)
        });
    }

    /// Records how the run ended, writes `best.json`, and makes it the engine's outcome.
    pub(super) fn finish_run(&mut self, run: RunId, status: RunStatus, reason: String) {
        let why = reason.clone();
        let dir = self.run_dir(run);
        // First in the run's directory, which needs no free space (see `guard`), then in the
        // history: a run whose last write fails is still known to have ended.
        // Not `write`: the run's directory is kept even when the history's file is gone.
        let failures = self.write_failures.clone();
        let queued = self.history.submit(move |_| {
            if let Err(e) = guard::record_outcome(&dir, status, &why) {
                failures.report("outcome", format!("recording how run {run} ended: {e}"));
            }
        });
        if let Err(e) = queued {
            self.write_failures.report("writer", e.to_string());
        }
        let why = reason.clone();
        self.write("run", format!("finishing run {run}"), move |s| {
            s.finish_run(run, status, Some(&why))
        });
        self.write_best(run);
        self.outcome = Some(super::Outcome {
            run: Some(run),
            status,
            reason,
        });
    }

    fn iteration_row(&self, run: RunId, no: IterationNo) -> Option<IterationRow> {
        let r = self.state.run.as_ref().filter(|r| r.id == run)?;
        let it = r.iteration(no)?;
        Some(IterationRow {
            run_id: run,
            no,
            params: it.params.clone(),
            status: it.status,
            reason: it.reason.clone(),
            final_value: it.final_value,
            container_id: it.container.as_ref().map(|c| c.0.clone()),
            image: r.image.clone(),
            started_at: it.started_ms,
            finished_at: it.finished_ms,
            proposal_reason: it.proposal_reason.clone(),
            log_tail: Some(it.log_tail.iter().cloned().collect::<Vec<_>>().join("\n")),
            workdir: it.workdir.as_ref().map(|w| w.display().to_string()),
            commit_id: it.commit.clone(),
            edits: it.edits.clone(),
            model: it.model.as_ref().map(|m| m.display().to_string()),
        })
    }

    /// `<run dir>/best.json`: where the best model and its parameters are, for people and scripts.
    /// Written by the history writer, after the run's last rows.
    fn write_best(&self, run: RunId) {
        let Some(r) = self.state.run.as_ref().filter(|r| r.id == run) else {
            return;
        };
        let Some(best) = r.best_iteration() else {
            return;
        };
        let metric = r.metric_name();
        let doc = serde_json::json!({
            "run": run.0,
            "iteration": best.no.0,
            "commit": r.commit.id,
            "metric": metric,
            "value": best.final_value.filter(|v| v.is_finite()),
            "params": best.params,
            "model_dir": best.workdir.as_ref().map(|w| w.join("model")),
            "model": crate::engine::state::RunState::model_of(best),
            "iteration_commit": best.commit,
            "iteration_ref": crate::adapters::git::iteration_ref(run.0, best.no.0),
            "status": r.status.as_str(),
        });
        let path = self.run_dir(run).join("best.json");
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        self.write(
            "best.json",
            format!("writing {}", path.display()),
            move |_| fsutil::write_atomic(&path, &bytes),
        );
    }
}

/// Earlier runs a warm start reads: enough to seed a model, few enough to stay relevant to the code.
pub(super) const WARM_RUNS: usize = 5;

/// A finished iteration as a carried-over observation; `None` for one that never finished.
fn carried(row: IterationRow, origin: &str) -> Option<Carried> {
    let (value, pruned) = match row.status {
        IterStatus::Succeeded | IterStatus::BelowTarget => (row.final_value, false),
        IterStatus::Pruned => (row.final_value, true),
        IterStatus::Failed => (None, false),
        _ => return None,
    };
    Some(Carried {
        params: row.params,
        value,
        pruned,
        origin: origin.to_string(),
    })
}

/// A commit id as people see it: its first seven characters.
fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

fn new_run<'a>(project: &'a str, commit: &'a CommitInfo, trigger: &'a str) -> NewRun<'a> {
    NewRun {
        project,
        commit_id: &commit.id,
        commit_summary: &commit.summary,
        branch: &commit.branch,
        trigger,
    }
}
