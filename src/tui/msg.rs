//! What reaches the UI reducer ([`UiMsg`]) and what it asks the runtime to do ([`Effect`]).
//!
//! Workers (the engine observer, the history reader, the Docker monitor) only send `UiMsg`s; the
//! reducer reaches the outside world only through `Effect`s, which the runtime carries out.

use std::path::PathBuf;

use crossterm::event::KeyEvent;

use crate::core::ids::{IterationNo, RunId};
use crate::core::model::LogLine;
use crate::engine::{Operator, PipelineState};

use super::state::{DockerStatus, EngineStatus, RunDetail, RunSummary};
use super::theme::Theme;

#[derive(Debug)]
pub enum UiMsg {
    Key(KeyEvent),
    Resize(u16, u16),
    /// The clock, read by the runtime before a frame (for elapsed times and the spinner).
    Tick(i64),
    /// The engine's newest state (older undelivered snapshots are skipped).
    Pipeline(Box<PipelineState>),
    /// A batch of container output, stamped by the runtime when it arrived.
    Logs {
        run: RunId,
        no: IterationNo,
        lines: Vec<LogLine>,
        at_ms: i64,
    },
    Docker(DockerStatus),
    Engine(EngineStatus),
    History(Result<Vec<RunSummary>, String>),
    Detail(Result<RunDetail, String>),
    Theme(Result<Theme, String>),
    /// Logs were written (path) or could not be.
    Saved(Result<PathBuf, String>),
    /// A background task died; the dashboard keeps running and shows it.
    TaskFailed {
        task: String,
        error: String,
    },
    /// The output the history keeps for a finished iteration (its last lines), asked for by
    /// [`Effect::LoadOutput`] when the logs pane shows it with nothing in memory.
    SavedOutput {
        run: RunId,
        no: IterationNo,
        saved: Result<SavedLines, String>,
    },
    /// The process was asked to end (SIGTERM, SIGHUP): quit at once, as `q` does with nothing
    /// training, without asking.
    Signal(QuitSignal),
}

/// An iteration's saved output and when it ended (the lines' time stamps).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedLines {
    pub lines: Vec<String>,
    pub at_ms: i64,
}

/// The signals the dashboard ends on instead of dying with the terminal still in raw mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitSignal {
    Terminate,
    Hangup,
}

impl QuitSignal {
    /// The exit status a shell reports for a process this signal ended: 128 + the signal's number.
    pub fn exit_code(self) -> i32 {
        match self {
            QuitSignal::Terminate => 128 + 15,
            QuitSignal::Hangup => 128 + 1,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Effect {
    /// An operator message for the engine.
    Engine(Operator),
    /// Read the runs table from the store.
    LoadHistory,
    /// Read one run's iterations and metric points.
    LoadRun(RunId),
    /// Read one finished iteration's saved output.
    LoadOutput(RunId, IterationNo),
    LoadTheme(String),
    SaveLogs {
        path: PathBuf,
        text: String,
    },
    Quit,
}
