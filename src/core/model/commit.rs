//! The commit a run trains.

/// The commit a run trains, as shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full hex id, or [`WORKING_TREE`] for a directory outside git.
    pub id: String,
    pub summary: String,
    pub author: String,
    pub branch: String,
    /// Unix seconds.
    pub time: i64,
}

impl CommitInfo {
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }

    pub fn is_working_tree(&self) -> bool {
        self.id == WORKING_TREE
    }
}

/// The commit id of a project outside any repository, which runs from its working files.
pub const WORKING_TREE: &str = "working-tree";
