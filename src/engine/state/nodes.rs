//! The nodes of cluster engines (a Docker Swarm): which engines are clusters, and where a trial's
//! task was placed among their nodes.

use crate::core::model::NodeView;

use super::{IterState, PipelineState};

/// The node of a cluster an iteration's task runs on. `id` is the cluster's own, stable one;
/// `name` is how the node is shown (see [`NodeView::name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlace {
    pub id: String,
    pub name: String,
}

impl NodePlace {
    pub fn of(node: &NodeView) -> Self {
        NodePlace {
            id: node.id.clone(),
            name: node.name.clone(),
        }
    }
}

impl PipelineState {
    /// The nodes of engine `name`, when it is a cluster that was listed.
    pub fn nodes_of(&self, name: &str) -> Option<&[NodeView]> {
        self.engines
            .iter()
            .find(|e| e.name == name)?
            .nodes
            .as_deref()
    }

    /// Whether any engine is a cluster whose nodes are known.
    pub fn has_clusters(&self) -> bool {
        self.engines.iter().any(|e| e.nodes.is_some())
    }

    /// Whether iteration `it` runs on engine `name`: placed there, or not placed on any engine
    /// while `name` is the only one.
    pub fn runs_on(&self, it: &IterState, name: &str) -> bool {
        match it.engine.as_deref() {
            Some(e) => e == name,
            None => self.engines.len() == 1 && self.engines[0].name == name,
        }
    }
}
