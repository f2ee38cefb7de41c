//! What flows into the reducer ([`Msg`]) and out of it ([`Effect`]).
//!
//! Workers (git export, detection, image builds, containers, the store) only ever produce `Msg`s; the
//! reducer only ever asks for work through `Effect`s. Neither side sees the other's internals.

use std::path::PathBuf;

use crate::adapters::backend::{ExitStatus, LogLine};
use crate::adapters::git::CommitInfo;
use crate::adapters::store::RunStatus;
use crate::core::config::{ApplyMode, Config, Params};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::metrics::Observation;

use super::state::Stage;

#[derive(Debug, Clone)]
pub enum Msg {
    /// A trigger (start-up, a new commit, the operator) asks for a run on `commit`.
    RunRequested {
        commit: CommitInfo,
        trigger: String,
    },
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
        /// What to ask the backend for: a profile name or an image reference.
        image: String,
    },
    /// A preparation stage failed; the run cannot go on.
    StageFailed {
        run: RunId,
        stage: Stage,
        error: String,
    },
    ImageProgress {
        run: RunId,
        line: String,
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
        run: Box<super::state::RunState>,
        attach: Vec<(IterationNo, ContainerId)>,
    },
    /// The Docker engine became reachable or unreachable.
    Docker {
        connected: bool,
        detail: String,
    },
    /// A lifecycle event of one of this store's containers.
    ContainerEvent(crate::adapters::backend::ContainerEvent),
    /// How a notification went on one channel.
    NotifyReport(crate::adapters::notify::NotifyReport),
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
    // The operator.
    Approve,
    Reject,
    Edit {
        name: String,
        raw: String,
    },
    SetApply(ApplyMode),
    /// Stop the training container and fail the iteration.
    StopTraining,
    /// Start a run on the branch's head now (the runtime reads the head, then sends `RunRequested`).
    TriggerNow,
    /// Run the last run's commit again (when idle).
    Retry,
    /// While paused no new iteration starts; the one that would have is kept and started on resume.
    Pause(bool),
    /// Change the target of the current run and of the runs that follow.
    SetTarget(f64),
}

/// A line for people: printed by headless mode, kept in the event log, stored in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub at_ms: i64,
    /// `detect`, `train:2`, `tweak:1→2`, `done` …
    pub tag: String,
    pub text: String,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub enum Effect {
    /// Allocate a run in the store, then answer `RunCreated`.
    CreateRun {
        commit: CommitInfo,
        trigger: String,
    },
    /// Record a commit that will not be trained (superseded while busy) as a skipped run in the history.
    SkipCommit {
        commit: CommitInfo,
        reason: String,
    },
    /// Export, read `mlops.toml`, detect; answer `Prepared` or `StageFailed`.
    Prepare {
        run: RunId,
        commit: CommitInfo,
    },
    PrepareImage {
        run: RunId,
        image: String,
    },
    StartIteration(Box<IterationPlan>),
    StopContainer {
        run: RunId,
        no: IterationNo,
        reason: String,
    },
    /// Tell people (job 5); delivered by the notifier worker, never blocking the loop.
    Notify(Box<crate::adapters::notify::Notification>),
    /// Follow a container that already exists (adoption after a restart).
    AttachIteration {
        plan: Box<IterationPlan>,
        id: ContainerId,
    },
    /// Start the iteration's dead container again after `delay`.
    Revive {
        run: RunId,
        no: IterationNo,
        delay: std::time::Duration,
    },
    /// The iteration is decided: its worker removes the container and ends.
    Release {
        run: RunId,
        no: IterationNo,
    },
    /// Write the iteration as the state now has it.
    SaveIteration {
        run: RunId,
        no: IterationNo,
    },
    SaveMetric {
        run: RunId,
        no: IterationNo,
        obs: Observation,
    },
    SaveBest {
        run: RunId,
        no: IterationNo,
    },
    FinishRun {
        run: RunId,
        status: RunStatus,
        reason: String,
    },
    /// `persist = false` for chatter (image build output) that is shown but not kept in the history.
    Event {
        run: Option<RunId>,
        no: Option<IterationNo>,
        line: EventLine,
        persist: bool,
    },
}

/// Everything a worker needs to run one iteration.
#[derive(Debug, Clone)]
pub struct IterationPlan {
    pub run: RunId,
    pub no: IterationNo,
    pub params: Params,
    pub image: String,
    pub workspace: PathBuf,
    pub config: Config,
    pub proposal_reason: Option<String>,
}
