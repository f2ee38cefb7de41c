//! The engine's side of MLflow tracking: the worker of the current run's `[track.mlflow]`, told
//! about every change of the history once the writer has committed it.

use std::time::Duration;

use super::Engine;
use super::supervisor::Task;
use crate::adapters::backend::ContainerBackend;
use crate::core::ids::RunId;
use crate::engine::msg::Effect;
use crate::engine::workers::track;

/// How long the engine's end waits for the last records to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The run whose MLflow records an effect changes, if any.
pub(super) fn tracked_change(effect: &Effect) -> Option<RunId> {
    match effect {
        Effect::SaveIteration { run, .. }
        | Effect::SaveMetric { run, .. }
        | Effect::SavePlacement { run, .. }
        | Effect::SaveBest { run, .. }
        | Effect::FinishRun { run, .. } => Some(*run),
        _ => None,
    }
}

impl<B: ContainerBackend> Engine<B> {
    /// Tells the tracker of the run's settings (spawning or replacing it) that `run` changed, after
    /// the history writes queued before now. Nothing when the run tracks nowhere.
    pub(super) fn track_changed(&mut self, run: RunId) {
        let Some(config) = self
            .state
            .run
            .as_ref()
            .and_then(|r| r.config.as_ref())
            .and_then(|c| c.track.mlflow.clone())
        else {
            return;
        };
        if self.tracker.as_ref().is_none_or(|(c, _)| *c != config) {
            let t = track::Tracking {
                config: config.clone(),
                project: self.opts.project.dir.display().to_string(),
                db: self.history.path().to_path_buf(),
                runs_dir: self.opts.runs_dir.clone(),
            };
            let (handle, work) = track::tracker(t, self.tx.clone());
            self.tasks.spawn(Task::Tracker, work);
            if let Some((_, old)) = self.tracker.replace((config, handle)) {
                self.tasks.spawn(Task::Tracker, old.close());
            }
        }
        if let Some((_, handle)) = &self.tracker {
            let handle = handle.clone();
            let _ = self.history.submit(move |_| handle.changed(run));
        }
    }

    /// One last attempt to send what waits, after every history write; bounded.
    pub(super) async fn close_tracker(&mut self) {
        let Some((_, handle)) = self.tracker.take() else {
            return;
        };
        let _ = self.history.call(|_| ()).await;
        if tokio::time::timeout(CLOSE_WAIT, handle.close())
            .await
            .is_err()
        {
            tracing::warn!("MLflow records still pending after {CLOSE_WAIT:?}: they stay queued");
        }
    }
}
