//! What the pipeline knows of a training container: how it ended, what it printed, what happened to
//! it, and the labels that let it be found again. Any container backend reports in these terms.

use std::collections::BTreeMap;

use crate::core::ids::ContainerId;

/// Labels every training container carries, so that the monitor and re-attachment find them.
pub mod labels {
    pub const MANAGED: &str = "org.mlops-tui.managed";
    pub const PROJECT: &str = "org.mlops-tui.project";
    pub const RUN: &str = "org.mlops-tui.run";
    pub const ITERATION: &str = "org.mlops-tui.iteration";
    pub const STORE: &str = "org.mlops-tui.store";
    /// Which attempt of the iteration the container is (0 first; a new container per revival on a
    /// backend that does not revive in place, or after a move to another engine).
    pub const ATTEMPT: &str = "org.mlops-tui.attempt";
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i64,
    pub oom_killed: bool,
}

/// What `inspect` tells about a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    /// Created or restarting: neither running nor finished.
    Starting,
    Exited(ExitStatus),
}

/// One line of container output. `stderr` lines are kept apart so that views can tint them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stderr: bool,
    pub text: String,
}

/// A lifecycle event of a labelled container, as the engine's event stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: ContainerId,
    pub action: ContainerAction,
    pub exit_code: Option<i64>,
    pub labels: BTreeMap<String, String>,
}

/// What happened to a container, as far as the pipeline tells events apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    Start,
    /// The main process ended (any exit: success, failure, kill).
    Die,
    /// The kernel's OOM killer hit a process in the container.
    Oom,
    /// Anything else the engine reports, by the engine's own name.
    Other(String),
}
