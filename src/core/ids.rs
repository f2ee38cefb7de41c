//! Newtypes for the identities that flow between the engine, the store and the backends, so that the
//! compiler catches a run id passed where an iteration number was meant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A run: one pass of the loop over one commit. Allocated by the history store (SQLite rowid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// The 1-based number of an iteration inside its run. Iteration 1 trains the starting parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IterationNo(pub u32);

/// A container as the backend names it (the Docker id, or later a Kubernetes Job name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for IterationNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl IterationNo {
    pub fn next(self) -> Self {
        IterationNo(self.0 + 1)
    }
}

impl ContainerId {
    /// The short form people recognise from `docker ps`.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}
