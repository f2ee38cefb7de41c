//! Runs the loop: feeds messages to the reducer and turns its effects into work.
//!
//! The runtime owns the [`PipelineState`] (changed only by [`update`]), the history writer and the
//! [`ContainerBackend`]. Workers it spawns (export, detection, image builds, one per training container)
//! run under its [`Supervisor`] and report back only through the message channel; a worker's panic
//! becomes the failure of what it was doing. History writes go to the writer's thread in order, so no
//! fsync stalls the loop. An [`Observer`] (headless printer, the TUI) sees every message and every
//! event after the state has absorbed it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::adapters::backend::ContainerBackend;
use crate::adapters::engines::{Pool, PoolEngine};
use crate::adapters::store::{Store, Writer};
use crate::core::clock;
use crate::core::config::EngineSpec;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::RunStatus;

use super::msg::{EventLine, Health, Msg};
use super::options::EngineOptions;
use super::reducer::update;
use super::state::PipelineState;
use crate::engine::workers::iteration;
use supervisor::{Supervisor, Task};

mod adopt;
mod effects;
mod engines;
mod gpu;
mod guard;
mod history;
mod supervisor;
mod track;

/// Sees what the engine does. Called on the engine's task: keep it quick.
pub trait Observer: Send {
    /// A message the reducer has just applied; a batch of container output (`Msg::Logs`) is shown
    /// just before it is applied, so that its lines need not be copied.
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

/// Where the pool's slots come from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slots {
    /// Each engine's `slots`, as configured.
    Configured,
    /// The one implicit local engine: as many slots as a run asks for (`[budget] parallel`).
    FollowParallel,
}

pub struct Engine<B: ContainerBackend> {
    /// The first engine of the pool: images are built there, and it answers for "Docker".
    backend: Arc<B>,
    /// Every engine, by name, in the order given (the first is `backend`).
    pool: Vec<(String, Arc<B>)>,
    /// The history, written on its own thread in the order the effects came.
    history: Writer,
    state: PipelineState,
    opts: EngineOptions,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Why a new run could not be recorded (answered by the history writer): the run is refused.
    refusals: mpsc::UnboundedSender<String>,
    refused: mpsc::UnboundedReceiver<String>,
    /// Where failed history writes are reported.
    write_failures: history::WriteFailures,
    /// Control channels of live iteration workers.
    controls: HashMap<(RunId, IterationNo), mpsc::UnboundedSender<iteration::Control>>,
    /// The tasks of live iteration workers: a worker on a lost engine is aborted, sending nothing.
    workers: HashMap<(RunId, IterationNo), AbortHandle>,
    /// Every task the engine spawned.
    tasks: Supervisor,
    /// The triggers and the monitor: stopped when a `--once` run ends.
    watchers: Vec<AbortHandle>,
    /// The notifier of the current run's `[notify]` settings, respawned when they change.
    notifier: Option<(
        crate::adapters::notify::NotifyConfig,
        crate::adapters::notify::NotifierHandle,
    )>,
    /// The MLflow tracker of the current run's `[track.mlflow]`, respawned when it changes.
    tracker: Option<(
        crate::core::config::track::MlflowConfig,
        super::workers::track::TrackerHandle,
    )>,
    source: super::workers::poll::Source,
    outcome: Option<Outcome>,
    /// The predecessor's run this engine took over, if any. With `once`, its end is not the
    /// engine's answer: `--once` answers for the head commit, which trains after it.
    adopted: Option<RunId>,
    /// Whether the trigger has spoken (asked for the head's run, or failed to read it). With
    /// `once`, an adopted run that ends before then does not end the engine.
    head_requested: bool,
    /// Why the history cannot be written any more ([`Msg::HistoryLost`]): the engine ends once the
    /// current run has stopped, watching or not.
    fatal: Option<String>,
    /// Which running containers hold GPUs, for the GPU sampler once it runs (`gpu.rs`).
    gpu_watch: Option<tokio::sync::watch::Sender<Vec<crate::engine::workers::gpu::Holder>>>,
}

impl<B: ContainerBackend> Engine<B> {
    /// An engine that trains on the one local `backend`.
    pub fn new(backend: Arc<B>, store: Store, opts: EngineOptions) -> Self {
        let local = PoolEngine {
            spec: EngineSpec::local_default(),
            backend,
        };
        let pool = Pool {
            engines: vec![local],
        };
        Self::with_pool(pool, Slots::FollowParallel, store, opts)
    }

    /// An engine that places trials on the connected engines of `pool`, each with its configured
    /// slots.
    pub fn from_pool(pool: Pool<B>, store: Store, opts: EngineOptions) -> Self {
        Self::with_pool(pool, Slots::Configured, store, opts)
    }

    /// An engine that places trials on `pool`'s engines. Invariant: `pool` is not empty and its
    /// names are unique; the first engine builds the images.
    fn with_pool(pool: Pool<B>, slots: Slots, store: Store, opts: EngineOptions) -> Self {
        let pool = pool.engines;
        assert!(
            !pool.is_empty(),
            "an engine needs at least one container engine"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let (refusals, refused) = mpsc::unbounded_channel();
        let mut state = PipelineState::new(opts.project.dir.clone(), opts.interactive);
        state.queue_all = opts.queue_all;
        state.cold = opts.cold;
        state.engines = pool.iter().map(|e| engine_state(e, slots)).collect();
        state.slots_follow_parallel = pool.len() == 1 && slots == Slots::FollowParallel;
        if slots == Slots::Configured {
            state.configured_slots = pool
                .iter()
                .map(|e| (e.spec.name.clone(), e.spec.slots))
                .collect();
        }
        state.engine_gpus = pool
            .iter()
            .filter(|e| e.spec.gpus > 0)
            .map(|e| {
                (
                    e.spec.name.clone(),
                    crate::core::gpu::device_ids(e.spec.gpus),
                )
            })
            .collect();
        let backend = pool[0].backend.clone();
        let pool = pool.into_iter().map(|e| (e.spec.name, e.backend)).collect();
        let source = super::workers::poll::Source::new(&opts);
        let write_failures = history::WriteFailures::new(tx.clone(), store.path().to_path_buf());
        Engine {
            backend,
            pool,
            history: Writer::spawn(store),
            state,
            opts,
            tx,
            rx,
            refusals,
            refused,
            write_failures,
            controls: HashMap::new(),
            workers: HashMap::new(),
            tasks: Supervisor::default(),
            watchers: Vec::new(),
            notifier: None,
            tracker: None,
            source,
            outcome: None,
            adopted: None,
            head_requested: false,
            fatal: None,
            gpu_watch: None,
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
    /// Returns only after every history write has been made.
    pub async fn run(mut self, observer: &mut dyn Observer) -> Outcome {
        self.start(observer).await;
        let outcome = self.serve(observer).await;
        self.history.close().await;
        outcome
    }

    /// Adopts a predecessor's run, learns whether Docker is there, starts the triggers and the monitor.
    async fn start(&mut self, observer: &mut dyn Observer) {
        if let Some(msg) = self.adopt().await {
            let _ = self.tx.send(msg);
        }
        // Know the engine's state before the first commit arrives: a run requested while it is down waits.
        let up = self.backend.ping().await;
        let detail = match &up {
            Ok(()) => self.backend.endpoint(),
            Err(e) => e.to_string(),
        };
        let mut health = Health::local(up.is_ok(), detail);
        // The monitor, started next, asks again within its first back-off.
        health.retry_s = (!health.up).then_some(1);
        self.apply(Msg::Health(health), observer);
        let trained = self.trained().await;
        self.start_triggers(trained);
        let monitor = super::workers::monitor::watch(
            self.backend.clone(),
            self.opts.runs_dir.clone(),
            self.tx.clone(),
        );
        let monitor = self.tasks.spawn(Task::Monitor, monitor);
        self.watchers.push(monitor);
        self.watch_engines();
        self.watch_nodes();
    }

    /// Applies messages in batches (the observer redraws once per batch), and turns a task's abnormal
    /// end into a message queued behind everything that task sent. With `once`, ends with the run.
    async fn serve(&mut self, observer: &mut dyn Observer) -> Outcome {
        loop {
            tokio::select! {
                first = self.rx.recv() => {
                    let Some(first) = first else { break };
                    self.apply(first, observer);
                    while let Ok(more) = self.rx.try_recv() {
                        self.apply(more, observer);
                    }
                }
                ended = self.tasks.next_end() => {
                    if let Some(msg) = ended {
                        let _ = self.tx.send(msg);
                    }
                    continue;
                }
                Some(error) = self.refused.recv() => self.refuse_run(error, observer),
            }
            observer.on_change(&self.state);
            self.publish_gpu_holders();
            if let Some(outcome) = self.ended_once(observer).await {
                return outcome;
            }
            if let Some(outcome) = self.ended_fatal(observer).await {
                return outcome;
            }
        }
        Outcome {
            run: None,
            status: RunStatus::Cancelled,
            reason: "the engine's channel closed".into(),
        }
    }

    /// With `once`, the run's outcome as soon as there is one, after the triggers are stopped and the
    /// workers settled.
    async fn ended_once(&mut self, observer: &mut dyn Observer) -> Option<Outcome> {
        if !self.opts.once || self.awaits_head() {
            return None;
        }
        let outcome = self.outcome.take()?;
        for w in self.watchers.drain(..) {
            w.abort();
        }
        self.settle(observer).await;
        Some(outcome)
    }

    /// Once the history is lost and the current run has stopped: the engine's end, whatever the
    /// mode (a watcher that cannot record must not train the next commit), with the reason that
    /// names the fix.
    async fn ended_fatal(&mut self, observer: &mut dyn Observer) -> Option<Outcome> {
        let reason = self.fatal.clone()?;
        let running = self.state.run.as_ref();
        if running.is_some_and(|r| r.status == RunStatus::Running) {
            return None;
        }
        for w in self.watchers.drain(..) {
            w.abort();
        }
        self.settle(observer).await;
        Some(Outcome {
            run: self.state.run.as_ref().map(|r| r.id),
            status: RunStatus::Failed,
            reason,
        })
    }

    /// Whether the outcome at hand is the adopted run's while the head commit's run is still to
    /// come: the trigger has not spoken yet, or its run waits, is being created or trains. The
    /// adopted run's outcome is kept (not taken): when the head turns out to be the adopted run's
    /// own commit, nothing else trains and that outcome is the answer; otherwise the head's run
    /// replaces it when it finishes.
    fn awaits_head(&self) -> bool {
        let Some(outcome) = self.outcome.as_ref() else {
            return false;
        };
        if self.adopted.is_none() || outcome.run != self.adopted {
            return false;
        }
        let another = self
            .state
            .run
            .as_ref()
            .is_some_and(|r| Some(r.id) != self.adopted);
        !self.head_requested || self.state.starting || !self.state.queued.is_empty() || another
    }

    /// Starts the triggers: the poller (one run on the head with `once`; otherwise a run for every new
    /// head) and, when configured, the webhook that wakes it.
    fn start_triggers(&mut self, trained: Vec<super::workers::poll::Trained>) {
        let source = self.source.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        if let (Some((addr, secret)), false) = (self.opts.webhook.clone(), self.opts.once) {
            let webhook = super::workers::poll::webhook(
                addr,
                secret,
                source.branch(),
                wake.clone(),
                self.tx.clone(),
            );
            self.tasks.spawn(Task::Webhook, webhook);
        }
        let once = self.opts.once;
        let watch = super::workers::poll::Watch {
            once,
            interval: self.opts.poll_interval,
            trained,
        };
        let poller = super::workers::poll::poll(source, watch, wake, self.tx.clone());
        let poller = self.tasks.spawn(Task::Poller { once }, poller);
        self.watchers.push(poller);
    }

    /// The last trained commit of each branch of the project, for the watcher (not with `once`,
    /// which trains the head in any case). Unreadable history means no commit counts as trained. The
    /// future does not borrow the engine, which keeps the engine's own future `Send`.
    fn trained(
        &self,
    ) -> impl std::future::Future<Output = Vec<super::workers::poll::Trained>> + use<B> {
        let project = self.opts.project.dir.display().to_string();
        let read = (!self.opts.once).then(|| self.read(move |s| s.last_finished_runs(&project)));
        async move {
            let Some(read) = read else {
                return Vec::new();
            };
            match read.await {
                Ok(rows) => super::workers::poll::Trained::from_rows(rows),
                Err(e) => {
                    tracing::warn!("cannot read which commits were trained; the head will be: {e}");
                    Vec::new()
                }
            }
        }
    }

    fn apply(&mut self, msg: Msg, observer: &mut dyn Observer) {
        match &msg {
            Msg::RunRequested { .. } | Msg::TriggerFailed { .. } => self.head_requested = true,
            Msg::HistoryLost { error } => self.fatal = Some(error.clone()),
            _ => {}
        }
        let effects = if let Msg::Logs { .. } = &msg {
            // The flood's message, shown without a copy: its lines are moved into the state. Lines
            // change no trial, engine or stage, so the state before them names their trial as well.
            observer.on_msg(&msg, &self.state);
            update(&mut self.state, msg, clock::now_ms())
        } else {
            let effects = update(&mut self.state, msg.clone(), clock::now_ms());
            observer.on_msg(&msg, &self.state);
            effects
        };
        for e in effects {
            self.execute(e, observer);
        }
    }

    /// Without a run row nothing can be recorded: the run is refused rather than trained without
    /// history.
    fn refuse_run(&mut self, error: String, observer: &mut dyn Observer) {
        let line = EventLine {
            at_ms: clock::now_ms(),
            tag: "store".into(),
            text: format!("cannot record a new run, not starting it: {error}"),
            level: super::msg::Level::Error,
        };
        observer.on_event(&line);
        self.outcome = Some(Outcome {
            run: None,
            status: RunStatus::Failed,
            reason: line.text,
        });
    }

    /// Lets iteration workers remove their containers and queued notifications go out before the
    /// engine returns, while still showing what they report (a notification's outcome is part of the
    /// run's story). Bounded: a stuck delivery or removal does not keep the engine forever.
    async fn settle(&mut self, observer: &mut dyn Observer) {
        let notifier = self.notifier.take();
        let limit = notifier
            .as_ref()
            .map(|(c, _)| c.timeout.0.saturating_mul(c.retries + 2))
            .unwrap_or_default()
            .max(Duration::from_secs(15));
        let closing = async move {
            if let Some((_, handle)) = notifier {
                handle.close().await;
            }
        };
        tokio::pin!(closing);
        let mut closed = false;
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        while !closed || self.tasks.has_container_work() {
            tokio::select! {
                _ = &mut closing, if !closed => closed = true,
                ended = self.tasks.next_end() => {
                    if let Some(msg) = ended {
                        let _ = self.tx.send(msg);
                    }
                }
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
        self.close_tracker().await;
        while let Ok(msg) = self.rx.try_recv() {
            self.apply(msg, observer);
        }
        observer.on_change(&self.state);
    }

    /// The backend of engine `name`; the first engine's when there is no such engine (an
    /// iteration not yet placed).
    fn backend_of(&self, name: Option<&str>) -> Arc<B> {
        name.and_then(|n| self.pool.iter().find(|(e, _)| e == n))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| self.backend.clone())
    }

    fn run_dir(&self, run: RunId) -> PathBuf {
        self.opts.runs_dir.join(run.to_string())
    }
}

/// What the reducer knows of a pool engine before it is first asked.
/// The endpoint is the one people know it by: the configured URL, or the local client's own.
fn engine_state<B: ContainerBackend>(e: &PoolEngine<B>, slots: Slots) -> super::state::EngineState {
    let endpoint = match slots {
        Slots::Configured => e.spec.url(),
        Slots::FollowParallel => e.backend.endpoint(),
    };
    super::state::EngineState {
        name: e.spec.name.clone(),
        endpoint,
        slots: e.spec.slots,
        up: None,
        down_since_ms: None,
        detail: String::new(),
        nodes: None,
    }
}
