//! The work the reducer asks for; the runtime carries it out and answers with messages.

use std::path::PathBuf;
use std::time::Duration;

use crate::core::config::{Config, Params};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::knobs::Patch;
use crate::core::metrics::Observation;
use crate::core::model::{CommitInfo, ImageSpec, Notification, RunStatus};

use crate::engine::event::EventLine;
use crate::engine::trigger::Trigger;

#[derive(Debug, Clone)]
pub enum Effect {
    /// Read the branch's head (off the loop), then answer `HeadRead`.
    ReadHead,
    /// Allocate a run in the store, then answer `RunCreated`.
    CreateRun {
        commit: CommitInfo,
        trigger: Trigger,
    },
    /// Record a commit that will not be trained (superseded while busy) as a skipped run in the history.
    SkipCommit {
        commit: CommitInfo,
        reason: String,
    },
    /// No run can start (the trigger of a `--once` run failed): end with this failure.
    Abandon {
        reason: String,
    },
    /// Export, read `mlops.toml`, detect; answer `Prepared` or `StageFailed`. With `warm`, first
    /// read what earlier runs of the branch tried and answer `Carried` (before `Prepared`).
    Prepare {
        run: RunId,
        commit: CommitInfo,
        warm: bool,
    },
    PrepareImage {
        run: RunId,
        image: ImageSpec,
    },
    StartIteration(Box<IterationPlan>),
    StopContainer {
        run: RunId,
        no: IterationNo,
        reason: String,
    },
    /// Tell people (job 5); delivered by the notifier worker, never blocking the loop.
    Notify(Box<Notification>),
    /// Follow a container that already exists (adoption after a restart).
    AttachIteration {
        plan: Box<IterationPlan>,
        id: ContainerId,
    },
    /// The iteration's engine is lost: drop its worker there (sending nothing) and start it on
    /// `plan.engine` from its host directory (checkpoints copied home, `params.json` rewritten),
    /// without a new commit or workspace.
    MoveIteration(Box<IterationPlan>),
    /// Engine `engine` is back: stop and remove this store's containers there, except those of the
    /// iterations in `keep` (undecided and placed on it). Nothing runs twice.
    Reconcile {
        engine: String,
        keep: Vec<(RunId, IterationNo)>,
    },
    /// Start the iteration's dead container again after `delay`.
    Revive {
        run: RunId,
        no: IterationNo,
        delay: Duration,
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
    /// Record the iteration's newest placement (the last of `IterState::placements`).
    SavePlacement {
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
    /// The run's export of its commit, pristine: the iteration trains in its own copy.
    pub workspace: PathBuf,
    pub config: Config,
    pub proposal_reason: Option<String>,
    /// The run's commit (full id, or `working-tree`): the iteration's commit's parent.
    pub commit: String,
    /// The source edits that give the iteration's parameters to the code; empty when no knob moves.
    pub patch: Patch,
    /// What changed since the previous iteration, for the commit message (`gamma 0.001→0.01`).
    pub change: String,
    /// The engine (a name of the pool) the container runs on; `None` for the first engine.
    pub engine: Option<String>,
    /// Files copied into a fresh workspace from an earlier iteration's (`[train] keep`); `None`
    /// when nothing is kept or no iteration has ended yet.
    pub keep: Option<KeepPlan>,
}

/// What the worker copied for a [`KeepPlan`], for the event log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kept {
    /// Files copied, workspace-relative, with their sizes in bytes.
    pub files: Vec<(String, u64)>,
    /// Entries that matched nothing in the earlier workspace.
    pub missing: Vec<String>,
    /// Paths refused, with why (`out/model.h5: a symbolic link is not followed`).
    pub refused: Vec<String>,
}

/// What `[train] keep` copies into a new iteration's workspace, and from where.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepPlan {
    /// The iteration whose workspace the files come from.
    pub from: IterationNo,
    /// The `keep` entries (paths relative to `/workspace`, wildcards in the last component).
    pub entries: Vec<String>,
    /// Why that iteration, for people: `the previous iteration`, `the best iteration (accuracy 0.91)`.
    pub why: String,
}
