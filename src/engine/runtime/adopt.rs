//! Job 6 across restarts: a new mlops-tui adopts the run its predecessor left.

use std::path::PathBuf;

use super::Engine;
use super::history::ReadError;
use crate::adapters::backend::ContainerBackend;
use crate::adapters::store::{IterationRow, MetricPoint, PlacementRow, RunRow, Store, StoreError};
use crate::core::config::ConfigError;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::model::{IterStatus, labels};
use crate::engine::msg::Msg;
use crate::engine::state::{IterState, Placement, RunState};
use crate::engine::workers::iteration;
use crate::engine::workers::prepare::KnobsError;

/// What the history holds about a run to adopt: its row, and each iteration with its metric points
/// and its stays on engines.
type Recorded = (
    RunRow,
    Vec<(IterationRow, Vec<MetricPoint>, Vec<PlacementRow>)>,
);

/// Why a run left by an earlier process is not resumed (its event log says `not resumed: …`).
#[derive(Debug, thiserror::Error)]
pub(super) enum AdoptError {
    #[error(transparent)]
    History(#[from] ReadError),
    #[error("run not in the history")]
    NotRecorded,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Knobs(#[from] KnobsError),
    #[error("it stopped before its first iteration; the head commit starts afresh")]
    NoIteration,
    #[error("no engine answers")]
    NoEngine,
}

impl<B: ContainerBackend> Engine<B> {
    /// Finds the newest run of this project left `running` by a process that is gone, rebuilds its state
    /// from the history and the containers that carry its labels, and claims it. Older orphans are marked
    /// interrupted: they stay visible as such, never silently lost.
    pub(super) async fn adopt(&mut self) -> Option<Msg> {
        let project = self.opts.project.dir.display().to_string();
        let orphans = match self.read(move |s| s.orphaned_runs(&project)).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("looking for orphaned runs: {e}");
                return None;
            }
        };
        let orphans = self.finish_from_disk(orphans);
        let (&newest, older) = orphans.split_first()?;
        for &id in older {
            self.write("run", format!("marking run {id} interrupted"), move |s| {
                s.interrupt_run(id)
            });
        }
        match self.rebuild(newest).await {
            Ok((run, attach)) => {
                self.write("run", format!("claiming run {newest}"), move |s| {
                    s.claim_run(newest)
                });
                self.adopted = Some(newest);
                Some(Msg::Adopt {
                    run: Box::new(run),
                    attach,
                })
            }
            Err(why) => {
                tracing::warn!("cannot resume run {newest}: {why}");
                let text = format!("not resumed: {why}");
                self.write(
                    "run",
                    format!("marking run {newest} interrupted"),
                    move |s| {
                        s.interrupt_run(newest)?;
                        s.add_event(Some(newest), None, "monitor", &text)
                    },
                );
                None
            }
        }
    }

    /// Orphans whose directory says they had already ended (their last history write failed: a full
    /// disk, see `guard`) are finished as it says, not resumed: resuming would train the old commit
    /// again, on a disk that filled up once. Answers the others, in order.
    fn finish_from_disk(&mut self, orphans: Vec<RunId>) -> Vec<RunId> {
        let mut left = Vec::new();
        for id in orphans {
            let Some((status, reason)) = super::guard::recorded_outcome(&self.run_dir(id)) else {
                left.push(id);
                continue;
            };
            let text = format!(
                "run {id} was left running in the history, but its directory records that it \
                 ended ({status}: {reason}); recorded so, not resumed"
            );
            let _ = self.tx.send(Msg::Notice {
                tag: "monitor".into(),
                text: text.clone(),
                level: crate::engine::msg::Level::Warn,
            });
            self.write("run", format!("finishing run {id}"), move |s| {
                s.interrupt_run(id)?;
                s.finish_run(id, status, Some(&reason))?;
                s.add_event(Some(id), None, "monitor", &text)
            });
        }
        left
    }

    /// The run's state as the history and its `mlops.toml` left it, and the containers to re-attach.
    async fn rebuild(
        &mut self,
        id: RunId,
    ) -> Result<(RunState, Vec<(IterationNo, ContainerId)>), AdoptError> {
        let (row, rows) = self
            .read(move |s| recorded(s, id))
            .await?
            .ok_or(AdoptError::NotRecorded)?;
        let workspace = self.run_dir(id).join("workspace");
        let config = crate::support::config_file::load_dir(&workspace)?;
        let mut run = restore(id, &row, rows)?;
        if !self.opts.cold && !run.commit.is_working_tree() {
            // The strategy of a resumed run sees what the run saw before the restart.
            run.carried = self.carried_over(&run.commit).await.unwrap_or_default();
        }
        let config_at = workspace.join(crate::core::config::FILE_NAME);
        let text = std::fs::read_to_string(&config_at).unwrap_or_default();
        run.knobs = crate::engine::workers::prepare::resolve_knobs(
            &config,
            &workspace,
            &run.commit,
            (&text, &config_at),
        )?;
        run.config = Some(config);
        run.workspace = Some(workspace);
        let attach = self.reattach(&mut run).await?;
        Ok((run, attach))
    }

    /// The run's containers still there, on every engine of the pool, whose iteration is undecided;
    /// each such iteration is attached to one container only (the one on the engine its placements
    /// name, else the first found, whose engine it then runs on), and every other container of the
    /// run (decided iterations, copies left by a move) is removed: nothing runs twice. An engine
    /// that does not answer is skipped (it is reconciled when it comes back).
    async fn reattach(
        &mut self,
        run: &mut RunState,
    ) -> Result<Vec<(IterationNo, ContainerId)>, AdoptError> {
        let labels = [
            iteration::store_label(&self.opts.runs_dir),
            (labels::RUN.to_string(), run.id.to_string()),
        ];
        let mut found = Vec::new();
        let mut answered = 0;
        for (engine, backend) in self.pool.clone() {
            match backend.find(&labels).await {
                Ok(list) => {
                    answered += 1;
                    found.extend(
                        list.into_iter()
                            .map(|c| (engine.clone(), backend.clone(), c)),
                    );
                }
                Err(e) => tracing::warn!("looking for run {} on engine {engine}: {e}", run.id),
            }
        }
        if answered == 0 {
            return Err(AdoptError::NoEngine);
        }
        // Containers on the engine the iteration is placed on come first.
        found.sort_by_key(|(engine, _, c)| {
            let no = iteration_of(c);
            let placed = no
                .and_then(|no| run.iteration(no))
                .and_then(|i| i.engine.clone());
            placed.as_deref() != Some(engine.as_str())
        });
        let mut attach: Vec<(IterationNo, ContainerId)> = Vec::new();
        for (engine, backend, c) in found {
            let Some(no) = iteration_of(&c) else { continue };
            let undecided = run.iteration(no).is_some_and(|i| !i.status.is_final());
            if undecided && !attach.iter().any(|(n, _)| *n == no) {
                if let Some(it) = run.iteration_mut(no) {
                    it.engine = Some(engine);
                }
                attach.push((no, c.id));
            } else {
                // Decided, or a second copy: tidy it away.
                let _ = backend.remove(&c.id).await;
            }
        }
        Ok(attach)
    }
}

/// The iteration a found container belongs to, from its label.
fn iteration_of(c: &crate::adapters::backend::FoundContainer) -> Option<IterationNo> {
    c.labels
        .get(labels::ITERATION)
        .and_then(|n| n.parse().ok())
        .map(IterationNo)
}

/// Reads the run's row and its iterations with their points (on the history writer's thread).
fn recorded(store: &Store, id: RunId) -> Result<Option<Recorded>, StoreError> {
    let Some(row) = store.run(id)? else {
        return Ok(None);
    };
    let mut iterations = Vec::new();
    let mut stays = store.placements(id)?;
    for it in store.iterations(id)? {
        let points = store.metric_points(id, it.no)?;
        let (mine, rest) = stays.into_iter().partition(|(no, _)| *no == it.no);
        stays = rest;
        let mine = mine.into_iter().map(|(_, p)| p).collect();
        iterations.push((it, points, mine));
    }
    Ok(Some((row, iterations)))
}

/// The run's state from its history rows. A run that never got to its first iteration is not
/// resumed: the head commit starts afresh.
fn restore(
    id: RunId,
    row: &RunRow,
    rows: Vec<(IterationRow, Vec<MetricPoint>, Vec<PlacementRow>)>,
) -> Result<RunState, AdoptError> {
    let commit = crate::core::model::CommitInfo {
        id: row.commit_id.clone(),
        summary: row.commit_summary.clone(),
        author: String::new(),
        branch: row.branch.clone(),
        time: 0,
    };
    let mut run = RunState::new(id, commit);
    for (r, points, stays) in rows {
        if r.status == IterStatus::Failed {
            run.failures += 1;
        }
        run.image = run.image.or(r.image.clone());
        let mut it = restore_iteration(r, points);
        it.placements = stays
            .into_iter()
            .map(|p| Placement {
                engine: p.engine,
                at_ms: p.at,
                reason: p.reason,
            })
            .collect();
        it.engine = it.placements.last().map(|p| p.engine.clone());
        run.iterations.push(it);
    }
    if run.iterations.is_empty() {
        return Err(AdoptError::NoIteration);
    }
    run.best = row.best_iteration;
    run.image_reason = Some("image chosen before the restart".into());
    Ok(run)
}

fn restore_iteration(r: IterationRow, points: Vec<MetricPoint>) -> IterState {
    let mut it = IterState::new(r.no, r.params, r.proposal_reason);
    it.status = r.status;
    it.reason = r.reason;
    it.final_value = r.final_value;
    it.container = r.container_id.map(ContainerId);
    it.workdir = r.workdir.map(PathBuf::from);
    it.started_ms = r.started_at;
    it.finished_ms = r.finished_at;
    it.points = points.into_iter().map(|p| (p.epoch, p.value)).collect();
    it.commit = r.commit_id;
    it.edits = r.edits;
    it.model = r.model.map(PathBuf::from);
    if let Some(tail) = &r.log_tail {
        it.log_tail = tail.lines().map(str::to_string).collect();
    }
    it
}
