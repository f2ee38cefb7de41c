//! Runs the loop: feeds messages to the reducer and turns its effects into work.
//!
//! The runtime owns the [`PipelineState`] (changed only by [`update`]), the history [`Store`] and the
//! [`ContainerBackend`]. Workers it spawns (export, detection, image builds, one per training container)
//! report back only through the message channel. An [`Observer`] (headless printer, the TUI) sees every
//! message and every event after the state has absorbed it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::adapters::store::{IterationRow, MetricPoint, NewRun, RunStatus, Store};
use crate::core::clock;
use crate::core::ids::{IterationNo, RunId};
use crate::support::fsutil;

use super::msg::{Effect, EventLine, Msg};
use super::options::EngineOptions;
use super::reducer::update;
use super::state::PipelineState;
use super::trigger::Trigger;
use crate::engine::workers::{iteration, prepare};

mod adopt;

/// Sees what the engine does. Called on the engine's task: keep it quick.
pub trait Observer: Send {
    /// A message the reducer has just applied.
    fn on_msg(&mut self, _msg: &Msg, _state: &PipelineState) {}
    /// A line for people.
    fn on_event(&mut self, _line: &EventLine) {}
    /// Called once after each batch of messages.
    fn on_change(&mut self, _state: &PipelineState) {}
}

/// How the last run ended; the exit status of `run --once`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub run: Option<RunId>,
    pub status: RunStatus,
    pub reason: String,
}

pub struct Engine<B: ContainerBackend> {
    backend: Arc<B>,
    store: Store,
    state: PipelineState,
    opts: EngineOptions,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Control channels of live iteration workers.
    controls: HashMap<(RunId, IterationNo), mpsc::UnboundedSender<iteration::Control>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// The notifier of the current run's `[notify]` settings, respawned when they change.
    notifier: Option<(
        crate::adapters::notify::NotifyConfig,
        crate::adapters::notify::NotifierHandle,
    )>,
    source: super::workers::poll::Source,
    outcome: Option<Outcome>,
}

impl<B: ContainerBackend> Engine<B> {
    pub fn new(backend: Arc<B>, store: Store, opts: EngineOptions) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = PipelineState::new(opts.project.dir.clone(), opts.interactive);
        state.queue_all = opts.queue_all;
        let source = super::workers::poll::Source::new(&opts);
        Engine {
            backend,
            store,
            state,
            opts,
            tx,
            rx,
            controls: HashMap::new(),
            workers: Vec::new(),
            notifier: None,
            source,
            outcome: None,
        }
    }

    /// For triggers and the operator: messages sent here reach the reducer.
    pub fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }

    pub fn state(&self) -> &PipelineState {
        &self.state
    }

    /// Runs until the first run ends (`once`) or forever (watching), returning the last run's outcome.
    pub async fn run(mut self, observer: &mut dyn Observer) -> Outcome {
        if let Some(msg) = self.adopt().await {
            let _ = self.tx.send(msg);
        }
        // Know the engine's state before the first commit arrives: a run requested while it is down waits.
        let up = self.backend.ping().await;
        let detail = match &up {
            Ok(()) => self.backend.endpoint(),
            Err(e) => e.to_string(),
        };
        self.apply(
            Msg::Docker {
                connected: up.is_ok(),
                detail,
            },
            observer,
        );
        let poller = self.start_triggers();
        let monitor = tokio::spawn(super::workers::monitor::watch(
            self.backend.clone(),
            self.opts.runs_dir.clone(),
            self.tx.clone(),
        ));
        while let Some(first) = self.rx.recv().await {
            self.apply(first, observer);
            while let Ok(more) = self.rx.try_recv() {
                self.apply(more, observer);
            }
            observer.on_change(&self.state);
            if self.opts.once {
                if let Some(outcome) = self.outcome.take() {
                    if let Some(p) = poller {
                        p.abort();
                    }
                    monitor.abort();
                    self.settle(observer).await;
                    return outcome;
                }
            }
        }
        Outcome {
            run: None,
            status: RunStatus::Cancelled,
            reason: "the engine's channel closed".into(),
        }
    }

    /// Starts the triggers: the poller (one run on the head with `once`; otherwise a run for every new
    /// head) and, when configured, the webhook that wakes it.
    fn start_triggers(&self) -> Option<tokio::task::JoinHandle<()>> {
        let source = self.source.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        if let (Some((addr, secret)), false) = (self.opts.webhook.clone(), self.opts.once) {
            tokio::spawn(super::workers::poll::webhook(
                addr,
                secret,
                source.branch(),
                wake.clone(),
                self.tx.clone(),
            ));
        }
        Some(tokio::spawn(super::workers::poll::poll(
            source,
            self.opts.once,
            self.opts.poll_interval,
            wake,
            self.tx.clone(),
        )))
    }

    fn apply(&mut self, msg: Msg, observer: &mut dyn Observer) {
        let effects = update(&mut self.state, msg.clone(), clock::now_ms());
        observer.on_msg(&msg, &self.state);
        for e in effects {
            self.execute(e, observer);
        }
    }

    fn execute(&mut self, effect: Effect, observer: &mut dyn Observer) {
        match effect {
            Effect::ReadHead => self.read_head(),
            Effect::Abandon { reason } => {
                self.outcome = Some(Outcome {
                    run: None,
                    status: RunStatus::Failed,
                    reason,
                });
            }
            Effect::CreateRun { commit, trigger } => {
                match self.create_run(&commit, trigger) {
                    Ok(run) => {
                        let _ = self.tx.send(Msg::RunCreated { run, commit });
                    }
                    Err(e) => {
                        // Without a run row nothing can be recorded: refuse to train rather than lose history.
                        let line = EventLine {
                            at_ms: clock::now_ms(),
                            tag: "store".into(),
                            text: format!("cannot record a new run, not starting it: {e}"),
                            level: super::msg::Level::Error,
                        };
                        observer.on_event(&line);
                        self.outcome = Some(Outcome {
                            run: None,
                            status: RunStatus::Failed,
                            reason: line.text,
                        });
                    }
                }
            }
            Effect::Prepare { run, commit } => {
                let dir = self.run_dir(run);
                let project = self.opts.project.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let msg = prepare::prepare(project, commit, run, dir).await;
                    let _ = tx.send(msg);
                });
            }
            Effect::PrepareImage { run, image } => {
                let backend = self.backend.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let (ptx, mut prx) = mpsc::unbounded_channel::<String>();
                    let fwd_tx = tx.clone();
                    let forward = tokio::spawn(async move {
                        while let Some(line) = prx.recv().await {
                            let _ = fwd_tx.send(Msg::ImageProgress { run, line });
                        }
                    });
                    let result = backend.prepare_image(&image, ptx).await;
                    let _ = forward.await;
                    let msg = match result {
                        Ok(image) => Msg::ImageReady { run, image },
                        Err(e) => Msg::StageFailed {
                            run,
                            stage: super::state::Stage::Image,
                            error: e.to_string(),
                        },
                    };
                    let _ = tx.send(msg);
                });
            }
            Effect::StartIteration(plan) => self.spawn_worker(*plan, None),
            Effect::AttachIteration { plan, id } => self.spawn_worker(*plan, Some(id)),
            Effect::Notify(n) => self.notify(*n),
            Effect::SkipCommit { commit, reason } => {
                let recorded = self.create_run(&commit, Trigger::Commit).and_then(|id| {
                    self.store
                        .finish_run(id, RunStatus::Cancelled, Some(&reason))
                });
                if let Err(e) = recorded {
                    tracing::error!("recording skipped commit {}: {e}", commit.short());
                }
            }
            Effect::StopContainer { run, no, reason } => {
                self.control(run, no, iteration::Control::Stop(reason))
            }
            Effect::Revive { run, no, delay } => {
                self.control(run, no, iteration::Control::Revive { delay })
            }
            Effect::Release { run, no } => {
                self.control(run, no, iteration::Control::Release);
                self.controls.remove(&(run, no));
            }
            Effect::SaveIteration { run, no } => {
                if let Some(row) = self.iteration_row(run, no) {
                    if let Err(e) = self.store.upsert_iteration(&row) {
                        tracing::error!("saving iteration {run}/{no}: {e}");
                    }
                }
            }
            Effect::SaveMetric { run, no, obs } => {
                let p = MetricPoint {
                    epoch: obs.epoch,
                    value: obs.value,
                    at: clock::now_ms(),
                };
                if let Err(e) = self.store.add_metric_point(run, no, &p) {
                    tracing::error!("saving metric point: {e}");
                }
            }
            Effect::SaveBest { run, no } => {
                if let Err(e) = self.store.set_best(run, no) {
                    tracing::error!("saving best iteration: {e}");
                }
            }
            Effect::FinishRun {
                run,
                status,
                reason,
            } => {
                if let Err(e) = self.store.finish_run(run, status, Some(&reason)) {
                    tracing::error!("finishing run {run}: {e}");
                }
                self.write_best(run);
                self.outcome = Some(Outcome {
                    run: Some(run),
                    status,
                    reason,
                });
            }
            Effect::Event {
                run,
                no,
                line,
                persist,
            } => {
                observer.on_event(&line);
                if persist {
                    if let Err(e) = self.store.add_event(run, no, &line.tag, &line.text) {
                        tracing::error!("saving event: {e}");
                    }
                }
            }
        }
    }

    /// Reads the branch's head off the loop and answers `HeadRead`. The task is kept with the workers,
    /// so the engine waits for it like for any other work it started.
    fn read_head(&mut self) {
        let source = self.source.clone();
        let tx = self.tx.clone();
        self.workers.retain(|h| !h.is_finished());
        self.workers.push(tokio::spawn(async move {
            let _ = tx.send(Msg::HeadRead(source.head().await));
        }));
    }

    /// Starts the worker of one iteration; `attach` re-attaches to a container that is already there.
    fn spawn_worker(
        &mut self,
        plan: super::msg::IterationPlan,
        attach: Option<crate::core::ids::ContainerId>,
    ) {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        self.controls.insert((plan.run, plan.no), ctl_tx);
        let dir = self.run_dir(plan.run);
        let project = self.opts.project.clone();
        self.workers.retain(|h| !h.is_finished());
        self.workers.push(tokio::spawn(iteration::run_iteration(
            self.backend.clone(),
            plan,
            dir,
            project,
            self.tx.clone(),
            ctl_rx,
            attach,
        )));
    }

    fn control(&self, run: RunId, no: IterationNo, c: iteration::Control) {
        if let Some(tx) = self.controls.get(&(run, no)) {
            let _ = tx.send(c);
        }
    }

    /// Hands a notification to the notifier of the current run's settings (spawning or replacing it).
    /// Never waits: delivery, retries and failures happen on the notifier's tasks.
    fn notify(&mut self, n: crate::adapters::notify::Notification) {
        let Some(config) = self
            .state
            .run
            .as_ref()
            .and_then(|r| r.config.as_ref())
            .map(|c| c.notify.clone())
        else {
            return;
        };
        let stale = self.notifier.as_ref().is_none_or(|(c, _)| *c != config);
        if stale {
            let (rtx, mut rrx) = mpsc::unbounded_channel();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                while let Some(report) = rrx.recv().await {
                    if tx.send(Msg::NotifyReport(report)).is_err() {
                        return;
                    }
                }
            });
            let handle = crate::adapters::notify::spawn(config.clone(), rtx);
            if let Some((_, old)) = self.notifier.replace((config, handle)) {
                tokio::spawn(old.close());
            }
        }
        if let Some((_, handle)) = &self.notifier {
            handle.send(n);
        }
    }

    /// Gives released workers a moment to remove their containers before the engine returns.
    async fn settle(&mut self, observer: &mut dyn Observer) {
        // Deliver queued notifications and let released workers remove their containers, while still
        // showing what they report (a notification's outcome is part of the run's story).
        let notifier = self.notifier.take();
        let limit = notifier
            .as_ref()
            .map(|(c, _)| c.timeout.0.saturating_mul(c.retries + 2))
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(15));
        let handles = std::mem::take(&mut self.workers);
        let done = async move {
            if let Some((_, handle)) = notifier {
                handle.close().await;
            }
            futures_util::future::join_all(handles).await;
        };
        tokio::pin!(done);
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut done => break,
                _ = &mut deadline => {
                    tracing::warn!("workers or notifications still pending after {limit:?}");
                    break;
                }
                Some(msg) = self.rx.recv() => {
                    self.apply(msg, observer);
                    observer.on_change(&self.state);
                }
            }
        }
        while let Ok(msg) = self.rx.try_recv() {
            self.apply(msg, observer);
        }
        observer.on_change(&self.state);
    }

    fn create_run(
        &self,
        commit: &crate::adapters::git::CommitInfo,
        trigger: Trigger,
    ) -> Result<RunId, crate::adapters::store::StoreError> {
        let project = self.opts.project.dir.display().to_string();
        self.store.create_run(&NewRun {
            project: &project,
            commit_id: &commit.id,
            commit_summary: &commit.summary,
            branch: &commit.branch,
            trigger: trigger.as_str(),
        })
    }

    fn run_dir(&self, run: RunId) -> PathBuf {
        self.opts.runs_dir.join(run.to_string())
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
        })
    }

    /// `<run dir>/best.json`: where the best model and its parameters are, for people and scripts.
    fn write_best(&self, run: RunId) {
        let Some(r) = self.state.run.as_ref().filter(|r| r.id == run) else {
            return;
        };
        let Some(best) = r.best_iteration() else {
            return;
        };
        let metric = r
            .config
            .as_ref()
            .map(|c| c.metric.name.clone())
            .unwrap_or_default();
        let doc = serde_json::json!({
            "run": run.0,
            "iteration": best.no.0,
            "commit": r.commit.id,
            "metric": metric,
            "value": best.final_value.filter(|v| v.is_finite()),
            "params": best.params,
            "model_dir": best.workdir.as_ref().map(|w| w.join("model")),
            "status": r.status.as_str(),
        });
        let path = self.run_dir(run).join("best.json");
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        if let Err(e) = fsutil::write_atomic(&path, &bytes) {
            tracing::error!("writing {}: {e}", path.display());
        }
    }
}
