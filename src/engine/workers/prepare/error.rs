//! Why a commit cannot be prepared. Each error knows the stage it fails; its text is what the run's
//! `StageFailed` says.

use std::path::PathBuf;

use crate::adapters::backend::BackendError;
use crate::adapters::git::RepoError;
use crate::core::config::ConfigError;
use crate::engine::state::Stage;
use crate::support::inside::InsideError;

use super::image::ImageError;
use super::knobs::KnobsError;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The workspace of an earlier try cannot be removed.
    #[error("{}: {source}", path.display())]
    Clean {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Export(#[from] RepoError),
    #[error(transparent)]
    ConfigFile(#[from] ConfigReadError),
    /// `mlops.toml` parsed or checked (its `[data]` hosts, its resources against the engine's).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Knobs(#[from] KnobsError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot read the engine's CPUs and memory: {0}")]
    Limits(BackendError),
    #[error("internal error: preparation panicked: {0}")]
    Panicked(String),
    #[error("preparation task failed: {0}")]
    Task(tokio::task::JoinError),
}

impl PrepareError {
    /// The stage the run fails at.
    pub fn stage(&self) -> Stage {
        match self {
            PrepareError::Clean { .. }
            | PrepareError::Export(_)
            | PrepareError::Panicked(_)
            | PrepareError::Task(_) => Stage::Pull,
            PrepareError::ConfigFile(_)
            | PrepareError::Config(_)
            | PrepareError::Knobs(_)
            | PrepareError::Image(_) => Stage::Detect,
            PrepareError::Limits(_) => Stage::Image,
        }
    }

    /// The blocking part of the preparation did not answer: it panicked or was cancelled.
    pub(super) fn joined(e: tokio::task::JoinError) -> Self {
        match e.try_into_panic() {
            Ok(panic) => PrepareError::Panicked(crate::support::panic::message(&*panic)),
            Err(e) => PrepareError::Task(e),
        }
    }
}

/// Why the commit's `mlops.toml` cannot be read; `shown` is the path the user knows (in their
/// project), not the exported copy.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReadError {
    #[error("{}: not UTF-8 (invalid byte at offset {at}); save it as UTF-8", shown.display())]
    NotUtf8 { shown: PathBuf, at: usize },
    #[error(
        "{}: not found in commit {commit}: run `mlops-tui init {}` to write one",
        shown.display(),
        project.display()
    )]
    Missing {
        shown: PathBuf,
        commit: String,
        project: PathBuf,
    },
    #[error(
        "{}: a symbolic link in commit {commit}, which mlops-tui never follows: commit the file itself",
        shown.display()
    )]
    Link { shown: PathBuf, commit: String },
    #[error("{}: {source}", shown.display())]
    Unreadable {
        shown: PathBuf,
        #[source]
        source: InsideError,
    },
}
