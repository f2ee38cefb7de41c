//! How the engine is set up: the project, where runs live, and what starts them.

use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::git::Project;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub project: Project,
    pub runs_dir: PathBuf,
    /// An operator is there to approve proposals.
    pub interactive: bool,
    /// Stop after the first run instead of watching the branch.
    pub once: bool,
    pub branch: Option<String>,
    pub poll_interval: Duration,
    /// Run every commit that lands while busy, instead of only the newest.
    pub queue_all: bool,
    /// Start runs without what earlier runs of the branch tried (no warm start).
    pub cold: bool,
    /// Watch this remote instead of the project's own repository.
    pub remote: Option<RemoteOptions>,
    /// Accept signed push webhooks here; each one makes the watcher look at once.
    pub webhook: Option<(std::net::SocketAddr, crate::adapters::webhook::Secret)>,
    /// Which host directories `[data]` may mount: the operator's allow-list (never the
    /// repository's); the engine adds its own data directory to the protected ones.
    pub data_policy: crate::support::data_policy::DataPolicy,
}

/// A remote repository to watch (job 1): fetched into a bare mirror under `cache`.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub url: String,
    pub branch: String,
    pub cache: PathBuf,
    /// The project's directory inside the repository (empty for the root).
    pub subdir: PathBuf,
}
