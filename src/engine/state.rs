//! The pipeline's state, owned by the reducer alone. Views and headless output read it; nothing else
//! writes it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use crate::core::build_progress::BuildProgress;
use crate::core::config::{ApplyMode, Config, EngineLimits, Params};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::knobs::{Knobs, SourceEdit};
use crate::core::model::{CommitInfo, IterStatus, RunStatus};
use crate::core::prune::Pruned;
use crate::core::tweak::Proposal;

mod gpu;
mod nodes;

pub use nodes::NodePlace;

use super::event::EventLine;
use super::trigger::Trigger;

/// The job chain, in the order the pipeline graph draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Pull,
    Detect,
    Image,
    Train,
    Evaluate,
    Tweak,
    Notify,
    Monitor,
}

impl Stage {
    /// The pipeline a run goes through, in order. The Monitor is not part of it: it watches the
    /// containers beside the chain.
    pub const CHAIN: [Stage; 7] = [
        Stage::Pull,
        Stage::Detect,
        Stage::Image,
        Stage::Train,
        Stage::Evaluate,
        Stage::Tweak,
        Stage::Notify,
    ];

    /// Every stage: the chain, then the Monitor.
    pub const ALL: [Stage; 8] = {
        let mut all = [Stage::Monitor; 8];
        let mut i = 0;
        while i < Stage::CHAIN.len() {
            all[i] = Stage::CHAIN[i];
            i += 1;
        }
        all
    };

    /// The head of the tags of the event lines this stage says (`train` of `train:2`).
    pub fn tag(self) -> &'static str {
        match self {
            Stage::Pull => "pull",
            Stage::Detect => "detect",
            Stage::Image => "image",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Tweak => "tweak",
            Stage::Notify => "notify",
            Stage::Monitor => "monitor",
        }
    }

    /// The stage an event line's tag belongs to (`train:2` to Train), if any.
    pub fn of_tag(tag: &str) -> Option<Stage> {
        let head = tag.split(':').next().unwrap_or(tag);
        Stage::ALL.into_iter().find(|s| s.tag() == head)
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::Pull => "Pull",
            Stage::Detect => "Detect",
            Stage::Image => "Build image",
            Stage::Train => "Train",
            Stage::Evaluate => "Evaluate",
            Stage::Tweak => "Tweak",
            Stage::Notify => "Notify",
            Stage::Monitor => "Monitor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StageStatus {
    #[default]
    Waiting,
    Running,
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Default)]
pub struct StageState {
    pub status: StageStatus,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Short detail for the graph (e.g. the image, the failure reason).
    pub detail: String,
}

/// Lines of container output kept per iteration in the engine. The TUI keeps its own, larger scrollback.
pub const LOG_TAIL: usize = 200;
/// Event lines kept in memory (all of them are in the store).
pub const EVENT_CAP: usize = 1000;

#[derive(Debug, Clone)]
pub struct IterState {
    pub no: IterationNo,
    pub params: Params,
    pub status: IterStatus,
    pub reason: Option<String>,
    pub container: Option<ContainerId>,
    pub workdir: Option<PathBuf>,
    /// Per-epoch metric points in arrival order.
    pub points: Vec<(Option<u32>, f64)>,
    /// The last reported value of the metric.
    pub final_value: Option<f64>,
    pub epochs: Option<u32>,
    pub log_tail: VecDeque<String>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub proposal_reason: Option<String>,
    /// Revivals of this iteration's container so far (job 6).
    pub revivals: u32,
    /// Position in the back-off sequence; reset after a healthy stretch.
    pub backoff_step: u32,
    /// When the container's current life began (start or last revival).
    pub life_started_ms: Option<i64>,
    /// The source lines this iteration's parameters changed (empty when no knob moved).
    pub edits: Vec<SourceEdit>,
    /// The commit the iteration trained (`refs/mlops/run-N/iter-K`), once made.
    pub commit: Option<String>,
    /// The model file the script wrote next to itself, when `/mlops/model/` stayed empty.
    pub model: Option<PathBuf>,
    /// The iteration ended cleanly without saving a model anywhere (`/mlops/model/` empty, no model
    /// file next to the script): the success line says so instead of naming an empty directory.
    pub saved_no_model: bool,
    /// A digest of the iteration's whole output, reported at its exit.
    pub output_hash: Option<u64>,
    /// What a script that ended well without reporting the metric wrote into its workspace.
    pub written: Vec<(String, u64)>,
    /// The pruning verdict, once given: the container is being stopped and its exit ends the
    /// iteration as pruned, never as a failure or a death to revive.
    pub pruned: Option<Pruned>,
    /// The engine (its name in [`PipelineState::engines`]) the iteration's container runs on now;
    /// `None` before it is placed.
    pub engine: Option<String>,
    /// Every engine the iteration ran on, in order, with why it went there (first placement, the
    /// previous engine lost…). The last one is `engine`.
    pub placements: Vec<Placement>,
    /// The cluster node its task runs on (or last ran on), as the engine's node listing said;
    /// `None` on an engine that is not a cluster, and until the cluster placed it.
    pub node: Option<NodePlace>,
    /// Set when the loop (not the operator) asked for the container to stop because the run is
    /// decided (another iteration reached the target, the run failed): its exit, whatever it is,
    /// records the iteration `Stopped` with this reason, never failed and never revived.
    pub stop_reason: Option<String>,
    /// The GPUs (device ids of its engine) the iteration holds while undecided; empty when the
    /// run asks for none or the engine's devices are not known.
    pub gpus: Vec<String>,
    /// What `nvidia-smi` in the container said last of its GPUs (utilisation, memory).
    pub gpu_usage: Vec<crate::core::model::GpuSample>,
    /// Set when the worker killed the container for passing `[resources] disk`: its exit fails the
    /// iteration for this reason and stops the run (no revival, no tweak).
    pub over_disk: Option<String>,
}

/// One stay of an iteration on an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub engine: String,
    pub at_ms: i64,
    /// `first placement`, `moved: engine e1 unreachable for 20s; resumes from epoch 3`.
    pub reason: String,
}

/// One Docker engine trials can run on, as the reducer sees it. Invariant: names are unique in
/// [`PipelineState::engines`]; the first engine is the one images are built on.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineState {
    pub name: String,
    /// Where it is reached (`unix:///var/run/docker.sock`, `tcp://10.77.1.2:2376`, `ssh://…`).
    pub endpoint: String,
    /// How many trials it runs at once.
    pub slots: u32,
    /// `None` until first asked; whether it answered last time.
    pub up: Option<bool>,
    /// When it stopped answering (the start of the outage), while it is down.
    pub down_since_ms: Option<i64>,
    /// What it said last (version, or the error).
    pub detail: String,
    /// A cluster engine's nodes, as last listed; `None` for an engine that is not a cluster (its
    /// lane is the engine itself) or until first listed.
    pub nodes: Option<Vec<crate::core::model::NodeView>>,
}

impl IterState {
    pub fn new(no: IterationNo, params: Params, proposal_reason: Option<String>) -> Self {
        IterState {
            no,
            params,
            status: IterStatus::Pending,
            reason: None,
            container: None,
            workdir: None,
            points: Vec::new(),
            final_value: None,
            epochs: None,
            log_tail: VecDeque::new(),
            started_ms: None,
            finished_ms: None,
            proposal_reason,
            revivals: 0,
            backoff_step: 0,
            life_started_ms: None,
            edits: Vec::new(),
            commit: None,
            model: None,
            saved_no_model: false,
            output_hash: None,
            written: Vec::new(),
            pruned: None,
            engine: None,
            placements: Vec::new(),
            node: None,
            stop_reason: None,
            over_disk: None,
            gpus: Vec::new(),
            gpu_usage: Vec::new(),
        }
    }

    /// The per-epoch metric in epoch order (`curve[k]` after the k+1-th reported epoch); values
    /// reported without an epoch are left out, so a script that reports no epochs has an empty curve.
    pub fn curve(&self) -> Vec<f64> {
        let mut points: Vec<(u32, f64)> = self
            .points
            .iter()
            .filter_map(|(e, v)| e.map(|e| (e, *v)))
            .collect();
        points.sort_by_key(|(e, _)| *e);
        points.into_iter().map(|(_, v)| v).collect()
    }

    /// The highest epoch reported so far.
    pub fn last_epoch(&self) -> Option<u32> {
        self.points.iter().filter_map(|(e, _)| *e).max()
    }
}

/// A point an earlier run of the branch tried, on another commit: it seeds the strategy (down-weighted)
/// and its best one is the new run's first iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub params: Params,
    /// The final value; for a pruned iteration the last it reported; `None` when it failed.
    pub value: Option<f64>,
    pub pruned: bool,
    /// `run 3 @ 1a2b3c4`: the run and the commit it trained.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct RunState {
    pub id: RunId,
    pub commit: CommitInfo,
    pub status: RunStatus,
    pub config: Option<Config>,
    pub workspace: Option<PathBuf>,
    pub image: Option<String>,
    pub image_reason: Option<String>,
    /// How far the image build has got (empty when the image was there).
    pub build: BuildProgress,
    pub iterations: Vec<IterState>,
    pub best: Option<IterationNo>,
    pub failures: u32,
    /// A proposal waiting for the operator (apply = ask).
    pub pending: Option<Proposal>,
    /// Proposals the operator rejected; the strategy treats them as tried.
    pub rejected: Vec<Params>,
    pub reason: Option<String>,
    /// The configuration's dimensions bound to the source, resolved against the commit.
    pub knobs: Knobs,
    /// The warning that two iterations differ only in parameters nothing reads was given.
    pub warned_identical: bool,
    /// What earlier runs of the branch tried (warm start), oldest first; empty for a cold run.
    pub carried: Vec<Carried>,
    /// The run is decided (status and reason) but iterations it stopped are still ending: it is
    /// finished with this once none is left. `None` while the run goes on.
    pub ending: Option<(RunStatus, String)>,
}

impl RunState {
    /// The name of the metric the run optimises (`metric.name`); empty before its configuration
    /// is read.
    pub fn metric_name(&self) -> String {
        self.config
            .as_ref()
            .map(|c| c.metric.name.clone())
            .unwrap_or_default()
    }

    pub fn new(id: RunId, commit: CommitInfo) -> Self {
        RunState {
            id,
            commit,
            status: RunStatus::Running,
            config: None,
            workspace: None,
            image: None,
            image_reason: None,
            build: BuildProgress::default(),
            iterations: Vec::new(),
            best: None,
            failures: 0,
            pending: None,
            rejected: Vec::new(),
            reason: None,
            knobs: Knobs::default(),
            warned_identical: false,
            carried: Vec::new(),
            ending: None,
        }
    }

    pub fn iteration(&self, no: IterationNo) -> Option<&IterState> {
        self.iterations.iter().find(|i| i.no == no)
    }

    pub fn iteration_mut(&mut self, no: IterationNo) -> Option<&mut IterState> {
        self.iterations.iter_mut().find(|i| i.no == no)
    }

    pub fn current(&self) -> Option<&IterState> {
        self.iterations.last()
    }

    pub fn best_iteration(&self) -> Option<&IterState> {
        self.best.and_then(|b| self.iteration(b))
    }

    /// The source lines the pending proposal would change, for the operator to review (empty when
    /// no dimension is bound to the source or the proposal cannot be written into it).
    pub fn pending_edits(&self) -> Vec<SourceEdit> {
        self.pending
            .as_ref()
            .and_then(|p| self.knobs.patch(&p.params).ok())
            .map(|p| p.edits)
            .unwrap_or_default()
    }

    /// Where iteration `it`'s model is: the file the script wrote next to itself, or `/mlops/model`;
    /// `None` when it saved none.
    pub fn model_of(it: &IterState) -> Option<PathBuf> {
        if it.saved_no_model {
            return None;
        }
        it.model
            .clone()
            .or_else(|| it.workdir.as_ref().map(|w| w.join("model")))
    }
}

/// Whether `i` takes a slot on its engine: not decided and not waiting for approval.
fn holds_slot(i: &IterState) -> bool {
    !i.status.is_final() && i.status != IterStatus::AwaitingApproval
}

/// Whether the engine the runtime was started with answers (from [`Msg::Health`] reports).
///
/// [`Msg::Health`]: super::msg::Msg::Health
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerHealth {
    /// `None` until it was first asked.
    pub up: Option<bool>,
    /// Its endpoint when it answers; why not when it does not.
    pub detail: String,
    /// While it does not answer: in how many seconds it is asked again.
    pub retry_s: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct PipelineState {
    pub project: PathBuf,
    /// Whether an operator is there to approve proposals. Headless runs apply them.
    pub interactive: bool,
    /// `None` until a run's `mlops.toml` is read; an operator's toggle overrides the file.
    pub apply_override: Option<ApplyMode>,
    pub run: Option<RunState>,
    /// The newest commit that arrived while a run was busy; older waiting ones are skipped.
    pub queued: VecDeque<(CommitInfo, Trigger)>,
    /// Run every commit that arrives while busy, in order, instead of only the newest.
    pub queue_all: bool,
    /// A run was requested and the store has not yet allocated it.
    pub starting: bool,
    pub stages: [StageState; 8],
    pub events: VecDeque<EventLine>,
    /// Runs finished by this process, newest last.
    pub finished_runs: u32,
    /// The operator paused the loop: no iteration starts until resumed.
    pub paused: bool,
    /// The iteration that was due when the loop was paused: parameters and the proposal's reason.
    pub deferred: Option<(Params, Option<String>)>,
    /// The engine the runtime was started with, as its last health report said.
    pub docker: DockerHealth,
    /// A target set by the operator; applies to the current and later runs.
    pub target_override: Option<f64>,
    /// Runs start from scratch: nothing is carried over from earlier runs of the branch (`--cold`).
    pub cold: bool,
    /// The engines trials run on, in the order they were given; one (the local engine) by default.
    pub engines: Vec<EngineState>,
    /// The only engine is the implicit local one: its slots are set to each run's `parallel`.
    pub slots_follow_parallel: bool,
    /// The slots each configured engine was given (`slots = N`), before a run's cap: a run whose
    /// containers are smaller gets them back. Empty when slots follow `parallel`.
    pub configured_slots: BTreeMap<String, u32>,
    /// What each engine said it has (CPUs, memory), read when the current run was prepared.
    pub engine_limits: BTreeMap<String, EngineLimits>,
    /// The GPU device ids of each engine whose GPUs are known (declared, or read from the engine
    /// when a run asks for GPUs); see `gpu.rs`.
    pub engine_gpus: BTreeMap<String, Vec<String>>,
    /// While the MLflow tracking server cannot be reached: what the status bar says of it.
    pub tracking: Option<String>,
}

impl PipelineState {
    pub fn new(project: PathBuf, interactive: bool) -> Self {
        PipelineState {
            project,
            interactive,
            apply_override: None,
            run: None,
            queued: VecDeque::new(),
            queue_all: false,
            starting: false,
            stages: Default::default(),
            events: VecDeque::new(),
            finished_runs: 0,
            paused: false,
            deferred: None,
            target_override: None,
            docker: DockerHealth::default(),
            cold: false,
            engines: Vec::new(),
            slots_follow_parallel: false,
            configured_slots: BTreeMap::new(),
            engine_limits: BTreeMap::new(),
            engine_gpus: BTreeMap::new(),
            tracking: None,
        }
    }

    /// Iterations of the current run whose container is running (or being started), in number order.
    pub fn running(&self) -> Vec<&IterState> {
        self.run
            .as_ref()
            .map(|r| {
                r.iterations
                    .iter()
                    .filter(|i| matches!(i.status, IterStatus::Running | IterStatus::Building))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Iterations of the current run that hold a slot: started (or being started) and not decided.
    pub fn active(&self) -> Vec<&IterState> {
        self.run
            .as_ref()
            .map(|r| r.iterations.iter().filter(|i| holds_slot(i)).collect())
            .unwrap_or_default()
    }

    /// Slots of engine `name` not taken by an undecided iteration (one being started counts: its
    /// container is on its way); 0 for an engine that is down.
    pub fn free_slots(&self, name: &str) -> u32 {
        let Some(e) = self.engines.iter().find(|e| e.name == name) else {
            return 0;
        };
        if e.up == Some(false) {
            return 0;
        }
        let taken = self
            .active()
            .iter()
            .filter(|i| i.engine.as_deref() == Some(name))
            .count() as u32;
        let free = e.slots.saturating_sub(taken);
        self.gpu_room(name).map_or(free, |room| free.min(room))
    }

    /// Free slots over every engine that is not known to be down. Without engines (a state built
    /// by hand, before the pool is known) there is one implicit slot.
    pub fn capacity(&self) -> u32 {
        if self.engines.is_empty() {
            return u32::from(self.active().is_empty());
        }
        self.engines.iter().map(|e| self.free_slots(&e.name)).sum()
    }

    /// Where a new iteration goes: the engine with the most free slots (ties: the order given);
    /// `None` when no engine has one.
    pub fn place(&self) -> Option<&EngineState> {
        let mut best: Option<(&EngineState, u32)> = None;
        for e in &self.engines {
            let free = self.free_slots(&e.name);
            if free > 0 && best.is_none_or(|(_, f)| free > f) {
                best = Some((e, free));
            }
        }
        best.map(|(e, _)| e)
    }

    pub fn stage(&self, s: Stage) -> &StageState {
        &self.stages[s as usize]
    }

    pub fn stage_mut(&mut self, s: Stage) -> &mut StageState {
        &mut self.stages[s as usize]
    }

    /// True while a run is between its request and its end.
    pub fn busy(&self) -> bool {
        self.starting
            || self
                .run
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Running)
    }

    pub fn apply_mode(&self) -> ApplyMode {
        self.apply_override
            .or_else(|| {
                self.run
                    .as_ref()
                    .and_then(|r| r.config.as_ref())
                    .map(|c| c.tweak.apply)
            })
            .unwrap_or_default()
    }
}
