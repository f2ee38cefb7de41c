//! Every task the engine spawns runs under the [`Supervisor`], so that no abnormal end goes unseen.
//!
//! A task that panics would otherwise vanish silently, leaving what it was doing (an iteration, an
//! image build) marked running forever. The supervisor knows each task's [`Task`] key and turns a
//! panic into the message that fails that piece of work, with the panic's text; the loop then goes
//! on or stops exactly as after any other failure. A task that returns normally, or is aborted on
//! purpose, needs no message.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

use crate::core::ids::{IterationNo, RunId};
use crate::engine::msg::{Level, Msg};
use crate::engine::state::Stage;

/// What a supervised task does; decides what its panic means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    /// Export, read `mlops.toml`, detect.
    Prepare(RunId),
    /// Build or find the run's image.
    Image(RunId),
    /// One iteration's worker.
    Iteration(RunId, IterationNo),
    /// Reads the branch's head for the operator.
    HeadRead,
    /// Watches the branch; with `once`, must produce the run's commit.
    Poller { once: bool },
    /// Serves the push webhook.
    Webhook,
    /// Follows the container engine's events.
    Monitor,
    /// Forwards notification reports, or closes a replaced notifier.
    Notifier,
    /// Removes the container of an iteration whose worker is gone.
    Cleanup(RunId, IterationNo),
    /// Asks one engine of the pool whether it answers.
    Health,
    /// Lists the nodes of one cluster engine of the pool.
    Nodes,
    /// Removes what an engine that came back still runs for iterations placed elsewhere.
    Reconcile,
    /// Samples the GPUs of running trials.
    GpuSampler,
    /// Records runs in MLflow, or closes a replaced tracker.
    Tracker,
}

/// The engine's tasks and what each one is. Invariant: `tasks` holds exactly the tasks in `set`.
#[derive(Default)]
pub(super) struct Supervisor {
    set: JoinSet<()>,
    tasks: HashMap<Id, Task>,
}

impl Supervisor {
    pub(super) fn spawn<F>(&mut self, task: Task, work: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(work);
        self.tasks.insert(handle.id(), task);
        handle
    }

    /// Whether a task that owns a container (an iteration worker, a clean-up) is still running: the
    /// engine waits for them before it returns, so that no container is left behind.
    pub(super) fn has_container_work(&self) -> bool {
        self.tasks
            .values()
            .any(|t| matches!(t, Task::Iteration(..) | Task::Cleanup(..)))
    }

    /// Waits for the next task to end and answers the message its end calls for, if any. Pending
    /// forever when there is no task. Cancel-safe, so it can sit in a `select!`; its `None` must not
    /// be matched away there (a refuted pattern would stop the `select!` from watching the tasks).
    pub(super) async fn next_end(&mut self) -> Option<Msg> {
        let Some(ended) = self.set.join_next_with_id().await else {
            return std::future::pending().await;
        };
        match ended {
            Ok((id, ())) => {
                self.tasks.remove(&id);
                None
            }
            Err(e) => {
                let task = self.tasks.remove(&e.id())?;
                verdict(task, e)
            }
        }
    }
}

/// The message that reports a task's abnormal end; `None` for a cancellation (the engine aborts
/// tasks only on purpose).
fn verdict(task: Task, error: JoinError) -> Option<Msg> {
    let panic = crate::support::panic::message(&*error.try_into_panic().ok()?);
    let notice = |tag: &str, what: &str| Msg::Notice {
        tag: tag.into(),
        text: format!("internal error: {what} panicked: {panic}"),
        level: Level::Error,
    };
    tracing::error!("{task:?} panicked: {panic}");
    Some(match task {
        Task::Iteration(run, no) => Msg::Exited {
            run,
            no,
            status: None,
            cause: Some(format!("internal error: worker panicked: {panic}")),
        },
        Task::Prepare(run) => Msg::StageFailed {
            run,
            stage: Stage::Pull,
            error: format!("internal error: preparation panicked: {panic}"),
        },
        Task::Image(run) => Msg::StageFailed {
            run,
            stage: Stage::Image,
            error: format!("internal error: image build panicked: {panic}"),
        },
        Task::Poller { once: true } => Msg::TriggerFailed {
            error: format!("internal error: the commit watcher panicked: {panic}"),
        },
        Task::Poller { once: false } => notice("pull", "the commit watcher"),
        Task::HeadRead => notice("pull", "reading the branch head"),
        Task::Webhook => notice("webhook", "the webhook listener"),
        Task::Monitor => notice("monitor", "the container event monitor"),
        Task::Notifier => notice("notify", "the notifier"),
        Task::Cleanup(_, no) => notice(&format!("monitor:{no}"), "a container clean-up"),
        Task::Health => notice("engine", "an engine's health check"),
        Task::Nodes => notice("engine", "listing a cluster's nodes"),
        Task::Reconcile => notice("engine", "reconciling an engine that came back"),
        Task::GpuSampler => notice("gpu", "the GPU sampler"),
        Task::Tracker => notice("mlflow", "the MLflow tracker"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_iteration_becomes_its_failed_exit() {
        let mut s = Supervisor::default();
        s.spawn(Task::Iteration(RunId(4), IterationNo(2)), async {
            panic!("boom at epoch 3")
        });
        let msg = s.next_end().await;
        match msg {
            Some(Msg::Exited {
                run,
                no,
                status: None,
                cause: Some(cause),
            }) => {
                assert_eq!((run, no), (RunId(4), IterationNo(2)));
                assert_eq!(cause, "internal error: worker panicked: boom at epoch 3");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.tasks.is_empty() && !s.has_container_work());
    }

    #[tokio::test]
    async fn a_normal_end_or_an_abort_says_nothing() {
        let mut s = Supervisor::default();
        s.spawn(Task::Monitor, async {});
        assert!(s.next_end().await.is_none());
        let h = s.spawn(Task::Image(RunId(1)), std::future::pending());
        h.abort();
        assert!(s.next_end().await.is_none());
        assert!(s.set.is_empty() && s.tasks.is_empty());
    }
}
