//! The pool's engines at run time: their health and node workers, moving a trial off a lost engine, and
//! reconciling an engine that came back.

use super::Engine;
use super::supervisor::Task;
use crate::adapters::backend::ContainerBackend;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::labels;
use crate::engine::msg::{IterationPlan, Level, Msg};
use crate::engine::workers::iteration::{self, Begin};

impl<B: ContainerBackend> Engine<B> {
    /// One health worker per engine of a pool of several (a single engine is watched by the
    /// monitor, whose `Docker` reports stand for it).
    pub(super) fn watch_engines(&mut self) {
        if self.pool.len() < 2 {
            return;
        }
        for (name, backend) in self.pool.clone() {
            let work = crate::engine::workers::health::watch(name, backend, self.tx.clone());
            let handle = self.tasks.spawn(Task::Health, work);
            self.watchers.push(handle);
        }
    }

    /// One node worker per engine of the pool, a single one too: each ends at once unless its
    /// engine is a cluster, whose nodes become the dashboard's lanes.
    pub(super) fn watch_nodes(&mut self) {
        let store = iteration::store_label(&self.opts.runs_dir);
        for (name, backend) in self.pool.clone() {
            let work = crate::engine::workers::nodes::watch(
                name,
                backend,
                vec![store.clone()],
                self.tx.clone(),
            );
            let handle = self.tasks.spawn(Task::Nodes, work);
            self.watchers.push(handle);
        }
    }

    /// The iteration's engine is lost: its worker there is aborted (it sends nothing: no death, no
    /// failure) and a new one starts the iteration on the plan's engine from its host directory.
    pub(super) fn move_iteration(&mut self, plan: IterationPlan) {
        let key = (plan.run, plan.no);
        if let Some(old) = self.workers.remove(&key) {
            old.abort();
        }
        self.controls.remove(&key);
        self.spawn_worker_from(plan, Begin::Resume);
    }

    /// Stops and removes this store's containers on `engine` except those of `keep`, saying which
    /// iteration each belonged to. Never touches another store's containers.
    pub(super) fn reconcile(&mut self, engine: String, keep: Vec<(RunId, IterationNo)>) {
        let backend = self.backend_of(Some(&engine));
        let store = iteration::store_label(&self.opts.runs_dir);
        let tx = self.tx.clone();
        self.tasks.spawn(Task::Reconcile, async move {
            let found = match backend.find(&[store]).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!("reconciling engine {engine}: {e}");
                    return;
                }
            };
            for c in found {
                let key = (c.labels.get(labels::RUN), c.labels.get(labels::ITERATION));
                let (Some(run), Some(no)) = key else { continue };
                let (Ok(run), Ok(no)) = (run.parse().map(RunId), no.parse().map(IterationNo))
                else {
                    continue;
                };
                if keep.contains(&(run, no)) {
                    continue;
                }
                let text = match backend.remove(&c.id).await {
                    Ok(()) => format!("engine {engine} back: removed orphan of iteration {no}"),
                    Err(e) => format!(
                        "engine {engine} back: cannot remove orphan {} of iteration {no}: {e}",
                        c.id
                    ),
                };
                let _ = tx.send(Msg::Notice {
                    tag: format!("engine:{no}"),
                    text,
                    level: Level::Warn,
                });
            }
        });
    }
}
