//! The dashboard's state, owned by the UI reducer ([`super::update::update`]) alone.
//!
//! It holds the newest snapshot of the engine's [`PipelineState`] (read-only here: the engine owns the
//! real one), the dashboard's own log scrollback, the history rows the store worker sent, and the
//! purely visual state (focus, modes, scroll positions). Views read it and never change it. Time
//! enters only through `now_ms`, set by a message, so a view draws the same frame for the same state.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::adapters::store::{IterationRow, MetricPoint, RunRow};
use crate::core::config::ApplyMode;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::RunStatus;
use crate::engine::PipelineState;

use super::keymap::Keymap;
use super::logbuf::LogBuffer;
use super::theme::Theme;
use super::trials;

/// The panes that take focus, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Graph,
    Logs,
    Plot,
    Tweak,
    Runs,
}

impl Pane {
    pub const ALL: [Pane; 5] = [Pane::Graph, Pane::Logs, Pane::Plot, Pane::Tweak, Pane::Runs];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Graph => "Pipeline",
            Pane::Logs => "Logs",
            Pane::Plot => "Metric",
            Pane::Tweak => "Tweak",
            Pane::Runs => "Runs",
        }
    }
}

/// What keys do right now. Every mode but `Normal` is left with `esc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help {
        scroll: u16,
    },
    /// Typing a search for the logs.
    Search {
        input: String,
    },
    /// Typing after `:`.
    Command {
        input: String,
    },
    /// Editing the proposed value of `name`.
    Edit {
        name: String,
        input: String,
    },
    Confirm(Confirm),
    /// A run from the history is open (see [`HistoryState::detail`]).
    Detail,
    /// The search space view: one panel per dimension; `scroll` is the first panel row shown
    /// (kept within the rows there are by the reducer).
    Space {
        scroll: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Quit,
    Stop,
}

/// The container engine as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerStatus {
    Unknown,
    Connected {
        endpoint: String,
    },
    /// Not reachable; the monitor tries again in `retry_s` seconds.
    Unavailable {
        endpoint: String,
        message: String,
        retry_s: u64,
    },
}

/// Whether the engine runs: it starts once the container engine answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineStatus {
    WaitingForDocker,
    Running,
    /// The engine's task ended (panic or return); the dashboard stays up to show why.
    Stopped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Which iteration the logs pane shows and how.
#[derive(Debug, Clone)]
pub struct LogsState {
    /// Scrollback per iteration of the current and the previous run (older runs are dropped; their
    /// last lines stay in the history store).
    pub buffers: BTreeMap<(RunId, IterationNo), LogBuffer>,
    /// `None`: show the newest iteration, switching as new ones start.
    pub pinned: Option<(RunId, IterationNo)>,
    /// Stick to the newest line. Scrolling up clears it; `G`/End sets it.
    pub follow: bool,
    /// Sequence number of the bottom visible line when not following.
    pub bottom: u64,
    /// First visible column when not wrapping.
    pub hscroll: usize,
    pub wrap: bool,
    pub timestamps: bool,
    pub search: Option<String>,
    /// The line of the current match (`n`/`N` move it).
    pub current_match: Option<u64>,
    /// Lines kept per iteration.
    pub cap: usize,
    /// Finished iterations whose saved output was asked for (each is asked once).
    pub saved: BTreeMap<(RunId, IterationNo), SavedOutput>,
}

/// Where reading a finished iteration's saved output stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedOutput {
    Reading,
    Read,
    Failed(String),
}

impl LogsState {
    pub fn new(cap: usize) -> LogsState {
        LogsState {
            buffers: BTreeMap::new(),
            pinned: None,
            follow: true,
            bottom: 0,
            hscroll: 0,
            wrap: false,
            timestamps: false,
            search: None,
            current_match: None,
            cap,
            saved: BTreeMap::new(),
        }
    }
}

/// One row of the runs table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub row: RunRow,
    pub iterations: usize,
    /// The best iteration's final value.
    pub best_value: Option<f64>,
}

/// A run opened from the table: its iterations with their metric points.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: RunRow,
    pub iterations: Vec<(IterationRow, Vec<MetricPoint>)>,
    pub selected: usize,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryState {
    pub runs: Vec<RunSummary>,
    pub selected: usize,
    pub loaded: bool,
    pub detail: Option<RunDetail>,
    /// A detail was asked for and has not arrived.
    pub loading: Option<RunId>,
    pub error: Option<String>,
    /// Runs finished when the history was last asked for; a change means it is stale.
    pub seen_finished: u32,
}

/// Everything the dashboard draws from.
pub struct UiState {
    pub pipeline: PipelineState,
    pub engine: EngineStatus,
    /// What the dashboard's attempts to connect found, before the engine runs; once the engine has
    /// asked, the status bar reads the engine's own health instead (see [`UiState::docker_status`]).
    pub docker: DockerStatus,
    /// The branch watched, if given; the status bar shows the run's branch once known.
    pub branch: Option<String>,
    /// The apply mode of the project's `mlops.toml` as read at start, shown until the engine knows
    /// one (a run's config or the operator's toggle).
    pub configured_apply: Option<ApplyMode>,
    pub focus: Pane,
    pub mode: Mode,
    pub logs: LogsState,
    pub history: HistoryState,
    /// Index into `Stage::ALL` of the selected stage.
    pub stage_sel: usize,
    /// Index of the selected parameter in the proposal.
    pub tweak_sel: usize,
    pub theme: Theme,
    pub keymap: Keymap,
    /// ASCII borders, glyphs and plot markers.
    pub ascii: bool,
    pub now_ms: i64,
    /// Terminal size, for page sizes; set by `Resize`.
    pub size: (u16, u16),
    pub notice: Option<Notice>,
    /// When the notice appeared (it expires after [`super::update::NOTICE_MS`]).
    pub notice_at: i64,
    /// Failures of background tasks, pinned until dismissed with `esc`.
    pub errors: Vec<String>,
    /// Failed iterations of the current run already dismissed with `esc`.
    pub dismissed_failures: usize,
    /// Where `S` writes logs when no file is named.
    pub save_dir: PathBuf,
    pub quit: bool,
    /// The process's exit status once `quit` is set: 0, or 128 + n after signal n.
    pub exit_code: i32,
}

impl UiState {
    pub fn new(pipeline: PipelineState, theme: Theme, keymap: Keymap, cap: usize) -> UiState {
        UiState {
            pipeline,
            engine: EngineStatus::WaitingForDocker,
            docker: DockerStatus::Unknown,
            branch: None,
            configured_apply: None,
            focus: Pane::Logs,
            mode: Mode::Normal,
            logs: LogsState::new(cap),
            history: HistoryState::default(),
            stage_sel: 3,
            tweak_sel: 0,
            theme,
            keymap,
            ascii: false,
            now_ms: 0,
            size: (0, 0),
            notice: None,
            notice_at: 0,
            errors: Vec::new(),
            dismissed_failures: 0,
            save_dir: std::env::temp_dir(),
            quit: false,
            exit_code: 0,
        }
    }

    /// The apply mode in force, or the one the project's file asks for before the first run.
    pub fn apply_mode(&self) -> ApplyMode {
        let p = &self.pipeline;
        let engine_knows =
            p.apply_override.is_some() || p.run.as_ref().is_some_and(|r| r.config.is_some());
        match (engine_knows, self.configured_apply) {
            (false, Some(m)) => m,
            _ => p.apply_mode(),
        }
    }

    /// The iteration whose logs the logs pane shows: the pinned one, else the newest running one
    /// (with one iteration at a time, the run's last).
    pub fn log_source(&self) -> Option<(RunId, IterationNo)> {
        self.logs.pinned.or_else(|| {
            let r = self.pipeline.run.as_ref()?;
            trials::newest(&self.pipeline).map(|no| (r.id, no))
        })
    }

    /// The container engine as the status bar shows it: the engine's health as its reducer keeps it
    /// (one signal, [`crate::engine::msg::Msg::Health`]), or before the engine has asked, what the
    /// dashboard's attempts to connect found.
    pub fn docker_status(&self) -> DockerStatus {
        let health = &self.pipeline.docker;
        match health.up {
            Some(true) => DockerStatus::Connected {
                endpoint: health.detail.clone(),
            },
            Some(false) => DockerStatus::Unavailable {
                endpoint: String::new(),
                message: health.detail.clone(),
                retry_s: health.retry_s.unwrap_or(0),
            },
            None => self.docker.clone(),
        }
    }

    /// Whether the container engine answers, as the status bar shows it (`None` before anyone
    /// asked): it stands for the one local engine while the engine's state lists none.
    pub fn docker_up(&self) -> Option<bool> {
        match self.docker_status() {
            DockerStatus::Unknown => None,
            DockerStatus::Connected { .. } => Some(true),
            DockerStatus::Unavailable { .. } => Some(false),
        }
    }

    /// True while a training container runs (quitting asks first).
    pub fn training(&self) -> bool {
        self.pipeline.run.as_ref().is_some_and(|r| {
            r.status == RunStatus::Running
                && r.iterations
                    .iter()
                    .any(|i| i.status == crate::core::model::IterStatus::Running)
        })
    }

    /// The iteration number of a running container, if any.
    pub fn training_iteration(&self) -> Option<IterationNo> {
        let r = self.pipeline.run.as_ref()?;
        r.iterations
            .iter()
            .rev()
            .find(|i| i.status == crate::core::model::IterStatus::Running)
            .map(|i| i.no)
    }
}
