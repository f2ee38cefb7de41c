//! Errors of the engine layer that travel in messages.

use std::sync::Arc;

use crate::adapters::git::{RemoteError, RepoError};

/// Why the branch's head could not be read. Cloned into the message that carries it: the adapter
/// errors are shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HeadError {
    #[error(transparent)]
    Repo(Arc<RepoError>),
    #[error(transparent)]
    Remote(Arc<RemoteError>),
    #[error("remote watcher poisoned")]
    Poisoned,
    #[error("remote watcher missing")]
    NoWatcher,
    #[error("{url}: branch {branch} has no commit yet")]
    NoCommit { url: String, branch: String },
    #[error("head lookup failed: {0}")]
    Task(Arc<tokio::task::JoinError>),
    /// No answer within this many seconds.
    #[error("no answer within {0}s")]
    Timeout(u64),
}

impl From<RepoError> for HeadError {
    fn from(e: RepoError) -> Self {
        HeadError::Repo(Arc::new(e))
    }
}

impl From<RemoteError> for HeadError {
    fn from(e: RemoteError) -> Self {
        HeadError::Remote(Arc::new(e))
    }
}
