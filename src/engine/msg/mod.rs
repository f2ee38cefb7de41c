//! What flows into the reducer ([`Msg`]) and out of it ([`Effect`]).
//!
//! Workers (git export, detection, image builds, containers, the store) and the triggers only ever
//! produce `Msg`s; the operator's orders arrive as [`Msg::Operator`]; the reducer only ever asks for
//! work through `Effect`s. Neither side sees the other's internals.
//!
//! - this file: the reports of triggers, workers and the runtime;
//! - [`operator`]: what the operator asks for;
//! - [`effect`]: the work the reducer asks for.

use std::path::PathBuf;

use crate::core::config::{Config, EngineLimits};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::knobs::Knobs;
use crate::core::metrics::Observation;
use crate::core::model::{
    CommitInfo, ContainerEvent, ExitStatus, ImageSpec, LogLine, NotifyReport,
};

use super::state::{Carried, RunState, Stage};
use super::trigger::Trigger;

pub mod effect;
pub mod operator;

pub use super::event::{EventLine, Level};
pub use effect::{Effect, IterationPlan, KeepPlan, Kept};
pub use operator::Operator;

/// Whether a container engine answers. The runtime's first ping and the event monitor report the
/// engine the runtime was started with (`engine: None`), on every change and on every failed try
/// while it is down; each health worker of a pool reports its engine (`Some(name)`) on every change,
/// and again every couple of seconds while it is down, so that the reducer can tell when its grace
/// is over. The reducer keeps what they say in the state; the dashboard only reads it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The engine of the pool it is about; `None` for the engine the runtime was started with.
    pub engine: Option<String>,
    pub up: bool,
    /// The engine's endpoint when it answers; why not when it does not.
    pub detail: String,
    /// While it does not answer: in how many seconds it is asked again.
    pub retry_s: Option<u64>,
}

impl Health {
    /// The engine the runtime was started with.
    pub fn local(up: bool, detail: impl Into<String>) -> Self {
        Health {
            engine: None,
            up,
            detail: detail.into(),
            retry_s: None,
        }
    }

    /// Engine `name` of the pool.
    pub fn of(name: impl Into<String>, up: bool, detail: impl Into<String>) -> Self {
        Health {
            engine: Some(name.into()),
            up,
            detail: detail.into(),
            retry_s: None,
        }
    }
}

/// What an iteration left behind when its container exited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExitReport {
    /// A model file the script wrote into its workspace (read when `/mlops/model/` stayed empty).
    pub model: Option<PathBuf>,
    /// After a clean exit: neither `/mlops/model/` nor the workspace holds a model file.
    pub no_model: bool,
    /// A digest of every output line of the iteration, to tell identical runs apart.
    pub output_hash: Option<u64>,
    /// The value read from `metric.file`, and the file as the script sees it.
    pub metric_file: Option<(String, f64)>,
    /// The container was killed for passing `[resources] disk`, for this reason: a failure no
    /// tweak can fix (the script writes that much whatever its parameters).
    pub over_disk: Option<String>,
    /// After a clean exit with no metric seen: what the script created or changed in its
    /// workspace (relative paths and sizes, newest first, a few at most).
    pub written: Vec<(String, u64)>,
}

#[derive(Debug, Clone)]
pub enum Msg {
    /// A trigger (start-up, a new commit, the operator) asks for a run on `commit`.
    RunRequested {
        commit: CommitInfo,
        trigger: Trigger,
    },
    /// The answer to [`Effect::ReadHead`]: the branch's head, or why it could not be read.
    HeadRead(Result<CommitInfo, crate::engine::error::HeadError>),
    /// The store allocated the run.
    RunCreated {
        run: RunId,
        commit: CommitInfo,
    },
    /// The commit was exported, its `mlops.toml` read and its model detected.
    Prepared {
        run: RunId,
        config: Box<Config>,
        workspace: PathBuf,
        /// One-line explanation of the image choice (detector verdict or explicit setting).
        image_reason: String,
        /// What to ask the backend for.
        image: ImageSpec,
        /// The configuration's source knobs, resolved against the commit.
        knobs: Box<Knobs>,
        /// What the operator should know before the first container (e.g. a tweaked parameter that
        /// nothing in the code reads).
        warnings: Vec<String>,
    },
    /// A preparation stage failed; the run cannot go on.
    StageFailed {
        run: RunId,
        stage: Stage,
        error: String,
    },
    /// One line of an image build's output.
    ImageProgress {
        run: RunId,
        line: String,
    },
    /// An image is being built, and the previous build of it took `last_build_ms`.
    ImageEstimate {
        run: RunId,
        last_build_ms: u64,
    },
    ImageReady {
        run: RunId,
        image: String,
    },
    ContainerStarted {
        run: RunId,
        no: IterationNo,
        id: ContainerId,
        workdir: PathBuf,
    },
    /// A batch of output lines (batched by the worker so that a flood is not a message per line).
    Logs {
        run: RunId,
        no: IterationNo,
        lines: Vec<LogLine>,
    },
    Metric {
        run: RunId,
        no: IterationNo,
        obs: Observation,
    },
    /// A restarted mlops-tui takes over a run (state rebuilt from the history) and the containers of
    /// its unfinished iterations that are still there.
    Adopt {
        run: Box<RunState>,
        attach: Vec<(IterationNo, ContainerId)>,
    },
    /// Whether an engine answers: the one signal of an engine's health, whoever asked.
    Health(Health),
    /// A cluster engine's nodes, listed by its node worker when they change: their health, what
    /// this store's trials reserve on each, and which trials run where.
    Nodes {
        engine: String,
        nodes: Vec<crate::core::model::NodeView>,
    },
    /// A lifecycle event of one of this store's containers.
    ContainerEvent(ContainerEvent),
    /// How a notification went on one channel.
    NotifyReport(NotifyReport),
    /// The MLflow tracking server became unreachable (`down`: the notice while it stays so) or
    /// reachable again (`down: None`); `text` is said once.
    Tracking {
        down: Option<String>,
        text: String,
    },
    /// The iteration's tree was committed (`refs/mlops/run-N/iter-K`) and its workspace made; sent
    /// before the container starts. `commit` is `None` for a project outside git.
    Committed {
        run: RunId,
        no: IterationNo,
        commit: Option<String>,
    },
    /// `[train] keep` copied files from an earlier iteration's workspace into this one's; sent
    /// after `Committed`, before the container starts.
    Kept {
        run: RunId,
        no: IterationNo,
        keep: KeepPlan,
        kept: Kept,
    },
    /// What the worker read after a container's life ended, sent just before its `Exited`.
    ExitReport {
        run: RunId,
        no: IterationNo,
        report: ExitReport,
    },
    /// The worker started the dead container again.
    Revived {
        run: RunId,
        no: IterationNo,
        id: ContainerId,
    },
    /// The container is gone. `cause` is set when the worker stopped it (deadline, operator).
    Exited {
        run: RunId,
        no: IterationNo,
        status: Option<ExitStatus>,
        cause: Option<String>,
    },
    /// The attempt's host is lost (a swarm node down): the container may live on there, out of
    /// reach. Revivable as a death outside the script.
    Lost {
        run: RunId,
        no: IterationNo,
        why: String,
    },
    /// A worker's remark for people (a poll error, a retry); it changes nothing else.
    Notice {
        tag: String,
        text: String,
        level: Level,
    },
    /// The trigger could not produce the first commit of a `--once` run.
    TriggerFailed {
        error: String,
    },
    /// The CPUs and memory of the pool's engines that answered, read while the run was prepared
    /// (sent before `Prepared`): each engine's slots are capped to the run's containers it holds.
    EngineLimits {
        run: RunId,
        limits: Vec<(String, EngineLimits)>,
    },
    /// The GPU devices each engine gave the probe of a run that asks for GPUs (sent before
    /// `Prepared`); an engine that could not say which has an empty list.
    GpusFound {
        run: RunId,
        engines: Vec<(String, Vec<String>)>,
    },
    /// What `nvidia-smi` in a running trial's container said of its GPUs (sampled every few seconds).
    GpuUsage {
        run: RunId,
        no: IterationNo,
        samples: Vec<crate::core::model::GpuSample>,
    },
    /// What earlier runs of the branch, on other commits, tried: the new run starts warm from it.
    Carried {
        run: RunId,
        observations: Vec<Carried>,
    },
    /// The history can no longer be written (its file was deleted or replaced, or its file system
    /// is full): the run stops as failed with `error`, which names the fix, and nothing new starts.
    HistoryLost {
        error: String,
    },
    /// The operator.
    Operator(Operator),
}
