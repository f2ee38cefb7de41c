//! Turning the reducer's effects into work: each effect is one small step, most of them a task for
//! the [`Supervisor`](super::supervisor::Supervisor) or a job for the history writer.

use tokio::sync::mpsc;

use super::supervisor::Task;
use super::{Engine, Outcome};
use crate::adapters::backend::ContainerBackend;
use crate::adapters::images::times::BuildTimes;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::model::{CommitInfo, ImageSpec, Notification, RunStatus};
use crate::engine::msg::{Effect, IterationPlan, Msg};
use crate::engine::runtime::Observer;
use crate::engine::workers::iteration::{self, Control};
use crate::engine::workers::prepare;

impl<B: ContainerBackend> Engine<B> {
    /// Reads the branch's head off the loop and answers `HeadRead`.
    fn read_head(&mut self) {
        let source = self.source.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(Task::HeadRead, async move {
            let _ = tx.send(Msg::HeadRead(source.head().await));
        });
    }

    /// The run cannot start (a `--once` trigger found no commit): the engine's outcome.
    fn abandon(&mut self, reason: String) {
        self.outcome = Some(Outcome {
            run: None,
            status: RunStatus::Failed,
            reason,
        });
    }

    pub(super) fn execute(&mut self, effect: Effect, observer: &mut dyn Observer) {
        let tracked = super::track::tracked_change(&effect);
        self.run_effect(effect, observer);
        if let Some(run) = tracked {
            self.track_changed(run);
        }
    }

    fn run_effect(&mut self, effect: Effect, observer: &mut dyn Observer) {
        match effect {
            Effect::ReadHead => self.read_head(),
            Effect::Abandon { reason } => self.abandon(reason),
            Effect::CreateRun { commit, trigger } => self.create_run(commit, trigger),
            Effect::Prepare { run, commit, warm } => self.spawn_prepare(run, commit, warm),
            Effect::PrepareImage { run, image } => self.spawn_image(run, image),
            Effect::StartIteration(plan) => self.spawn_worker(*plan, None),
            Effect::AttachIteration { plan, id } => self.spawn_worker(*plan, Some(id)),
            Effect::MoveIteration(plan) => self.move_iteration(*plan),
            Effect::Reconcile { engine, keep } => self.reconcile(engine, keep),
            Effect::Notify(n) => self.notify(*n),
            Effect::SkipCommit { commit, reason } => self.skip_commit(commit, reason),
            Effect::StopContainer { run, no, reason } => {
                self.control(run, no, Control::Stop(reason));
            }
            Effect::Revive { run, no, delay } => {
                self.control(run, no, Control::Revive { delay });
            }
            Effect::Release { run, no } => self.release(run, no),
            Effect::SaveIteration { run, no } => self.save_iteration(run, no),
            Effect::SaveMetric { run, no, obs } => self.save_metric(run, no, obs),
            Effect::SavePlacement { run, no } => self.save_placement(run, no),
            Effect::SaveBest { run, no } => self.save_best(run, no),
            Effect::FinishRun {
                run,
                status,
                reason,
            } => self.finish_run(run, status, reason),
            Effect::Event {
                run,
                no,
                line,
                persist,
            } => {
                observer.on_event(&line);
                if persist {
                    self.save_event(run, no, &line);
                }
            }
        }
    }

    /// Export, read `mlops.toml`, detect, check it against the engine: answers `Prepared` or
    /// `StageFailed`. A `warm` run first answers `Carried` with what earlier runs of the branch tried;
    /// the same task sends both, so the observations are there before the first iteration starts.
    fn spawn_prepare(&mut self, run: RunId, commit: CommitInfo, warm: bool) {
        let dir = self.run_dir(run);
        let project = self.opts.project.clone();
        let backend = self.backend.clone();
        let pool = self.pool.clone();
        let tx = self.tx.clone();
        // The data directory this engine writes to is never mountable, whatever it is.
        let mut policy = self.opts.data_policy.clone();
        policy.protect(self.opts.runs_dir.parent().unwrap_or(&self.opts.runs_dir));
        if let Some(remote) = &self.opts.remote {
            policy.protect(&remote.cache);
        }
        let earlier = warm.then(|| self.carried_over(&commit));
        let declared = self.state.engine_gpus.clone();
        self.tasks.spawn(Task::Prepare(run), async move {
            if let Some(earlier) = earlier {
                match earlier.await {
                    Ok(observations) => {
                        let _ = tx.send(Msg::Carried { run, observations });
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Notice {
                            tag: "tweak".into(),
                            text: format!("starting cold: cannot read earlier runs: {e}"),
                            level: crate::engine::msg::Level::Warn,
                        });
                    }
                }
            }
            let limits = prepare::engine_limits(&pool).await;
            let _ = tx.send(Msg::EngineLimits { run, limits });
            let msg = prepare::prepare(backend, project, commit, run, dir, policy).await;
            for msg in crate::engine::workers::gpu::probe(&pool, &declared, msg).await {
                let _ = tx.send(msg);
            }
        });
    }

    fn spawn_image(&mut self, run: RunId, image: ImageSpec) {
        // The data directory holds the runs' directory; the build times sit beside the history.
        let data = self.opts.runs_dir.parent().unwrap_or(&self.opts.runs_dir);
        let times = BuildTimes::in_dir(data);
        let work = prepare::build_image(self.backend.clone(), run, image, times, self.tx.clone());
        self.tasks.spawn(Task::Image(run), work);
    }

    /// Starts the worker of one iteration; `attach` re-attaches to a container that is already there.
    fn spawn_worker(&mut self, plan: IterationPlan, attach: Option<ContainerId>) {
        let begin = attach
            .map(iteration::Begin::Attach)
            .unwrap_or(iteration::Begin::Fresh);
        self.spawn_worker_from(plan, begin);
    }

    /// Starts the worker of one iteration on the plan's engine, begun as `begin` says.
    pub(super) fn spawn_worker_from(&mut self, plan: IterationPlan, begin: iteration::Begin) {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let key = (plan.run, plan.no);
        let task = Task::Iteration(plan.run, plan.no);
        self.controls.insert(key, ctl_tx);
        let dir = self.run_dir(plan.run);
        let work = iteration::run_iteration_from(
            self.backend_of(plan.engine.as_deref()),
            plan,
            iteration::Workplace {
                run_dir: dir,
                project: self.opts.project.clone(),
            },
            iteration::Links {
                tx: self.tx.clone(),
                ctl: ctl_rx,
            },
            begin,
        );
        let handle = self.tasks.spawn(task, work);
        self.workers.insert(key, handle);
    }

    /// Tells an iteration's worker what to do; `false` when the worker is gone.
    fn control(&self, run: RunId, no: IterationNo, c: Control) -> bool {
        self.controls
            .get(&(run, no))
            .is_some_and(|tx| tx.send(c).is_ok())
    }

    /// The iteration is decided: its worker removes the container and ends. A worker that is gone
    /// (it panicked) cannot: its container is removed here instead, never left behind.
    fn release(&mut self, run: RunId, no: IterationNo) {
        let released = self.control(run, no, Control::Release);
        self.controls.remove(&(run, no));
        self.workers.remove(&(run, no));
        if released {
            return;
        }
        let it = self
            .state
            .run
            .as_ref()
            .filter(|r| r.id == run)
            .and_then(|r| r.iteration(no));
        let container = it.and_then(|it| it.container.clone());
        let engine = it.and_then(|it| it.engine.clone());
        if let Some(id) = container {
            let backend = self.backend_of(engine.as_deref());
            self.tasks.spawn(Task::Cleanup(run, no), async move {
                if let Err(e) = backend.remove(&id).await {
                    tracing::warn!("removing container {id}: {e}");
                }
            });
        }
    }

    /// Hands a notification to the notifier of the current run's settings (spawning or replacing it).
    /// Never waits: delivery, retries and failures happen on the notifier's tasks.
    fn notify(&mut self, n: Notification) {
        let Some(config) = self
            .state
            .run
            .as_ref()
            .and_then(|r| r.config.as_ref())
            .map(|c| c.notify.clone())
        else {
            return;
        };
        if self.notifier.as_ref().is_none_or(|(c, _)| *c != config) {
            self.replace_notifier(config);
        }
        if let Some((_, handle)) = &self.notifier {
            handle.send(n);
        }
    }

    /// A notifier for `config` whose reports come back as messages; the one it replaces finishes
    /// its deliveries on its own.
    fn replace_notifier(&mut self, config: crate::adapters::notify::NotifyConfig) {
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let tx = self.tx.clone();
        self.tasks.spawn(Task::Notifier, async move {
            while let Some(report) = rrx.recv().await {
                if tx.send(Msg::NotifyReport(report)).is_err() {
                    return;
                }
            }
        });
        let handle = crate::adapters::notify::spawn(config.clone(), rtx);
        if let Some((_, old)) = self.notifier.replace((config, handle)) {
            self.tasks.spawn(Task::Notifier, old.close());
        }
    }
}
