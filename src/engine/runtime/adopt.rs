//! Job 6 across restarts: a new mlops-tui adopts the run its predecessor left.

use std::path::PathBuf;

use super::Engine;
use crate::adapters::backend::ContainerBackend;
use crate::core::ids::{IterationNo, RunId};
use crate::engine::msg::Msg;
use crate::engine::state;
use crate::engine::workers::iteration;

impl<B: ContainerBackend> Engine<B> {
    /// Finds the newest run of this project left `running` by a process that is gone, rebuilds its state
    /// from the history and the containers that carry its labels, and claims it. Older orphans are marked
    /// interrupted: they stay visible as such, never silently lost.
    pub(super) async fn adopt(&mut self) -> Option<Msg> {
        let project = self.opts.project.dir.display().to_string();
        let orphans = match self.store.orphaned_runs(&project) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("looking for orphaned runs: {e}");
                return None;
            }
        };
        let (&newest, older) = orphans.split_first()?;
        for id in older {
            if let Err(e) = self.store.interrupt_run(*id) {
                tracing::error!("marking run {id} interrupted: {e}");
            }
        }
        match self.rebuild(newest).await {
            Ok((run, attach)) => {
                if let Err(e) = self.store.claim_run(newest) {
                    tracing::error!("claiming run {newest}: {e}");
                }
                Some(Msg::Adopt {
                    run: Box::new(run),
                    attach,
                })
            }
            Err(why) => {
                tracing::warn!("cannot resume run {newest}: {why}");
                let _ = self.store.interrupt_run(newest);
                let _ = self.store.add_event(
                    Some(newest),
                    None,
                    "monitor",
                    &format!("not resumed: {why}"),
                );
                None
            }
        }
    }

    async fn rebuild(
        &mut self,
        id: RunId,
    ) -> Result<
        (
            state::RunState,
            Vec<(IterationNo, crate::core::ids::ContainerId)>,
        ),
        String,
    > {
        let row = self
            .store
            .run(id)
            .map_err(|e| e.to_string())?
            .ok_or("run not in the history")?;
        let workspace = self.run_dir(id).join("workspace");
        let config =
            crate::core::config::Config::load_dir(&workspace).map_err(|e| e.to_string())?;
        let commit = crate::adapters::git::CommitInfo {
            id: row.commit_id.clone(),
            summary: row.commit_summary.clone(),
            author: String::new(),
            branch: row.branch.clone(),
            time: 0,
        };
        let mut run = state::RunState::new(id, commit);
        let rows = self.store.iterations(id).map_err(|e| e.to_string())?;
        for r in &rows {
            let mut it = state::IterState::new(r.no, r.params.clone(), r.proposal_reason.clone());
            it.status = r.status;
            it.reason = r.reason.clone();
            it.final_value = r.final_value;
            it.container = r.container_id.clone().map(crate::core::ids::ContainerId);
            it.workdir = r.workdir.clone().map(PathBuf::from);
            it.started_ms = r.started_at;
            it.finished_ms = r.finished_at;
            it.points = self
                .store
                .metric_points(id, r.no)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|p| (p.epoch, p.value))
                .collect();
            if let Some(tail) = &r.log_tail {
                it.log_tail = tail.lines().map(str::to_string).collect();
            }
            if it.status == crate::adapters::store::IterStatus::Failed {
                run.failures += 1;
            }
            run.image = run.image.or(r.image.clone());
            run.iterations.push(it);
        }
        if run.iterations.is_empty() {
            return Err(
                "it stopped before its first iteration; the head commit starts afresh".into(),
            );
        }
        run.best = row.best_iteration;
        run.image_reason = Some("image chosen before the restart".into());
        run.config = Some(config);
        run.workspace = Some(workspace);
        let labels = [
            iteration::store_label(&self.opts.runs_dir),
            (
                crate::adapters::backend::labels::RUN.to_string(),
                id.to_string(),
            ),
        ];
        // A local handle: `&self` must not live across an await (the store is not `Sync`).
        let backend = self.backend.clone();
        let found = backend.find(&labels).await.map_err(|e| e.to_string())?;
        let mut attach = Vec::new();
        for c in found {
            let Some(no) = c
                .labels
                .get(crate::adapters::backend::labels::ITERATION)
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let decided = run
                .iteration(IterationNo(no))
                .is_none_or(|i| i.status.is_final());
            if decided {
                // Its verdict was recorded but the container outlived the old process: tidy it away.
                let _ = backend.remove(&c.id).await;
            } else {
                attach.push((IterationNo(no), c.id));
            }
        }
        Ok((run, attach))
    }
}
