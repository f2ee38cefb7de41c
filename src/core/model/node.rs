//! The nodes of a cluster engine (a Docker Swarm) as the dashboard shows them: each node's health,
//! what it has, what our trials reserve on it, and which trials run there. Plain data: the backend
//! fills it from the manager, the reducer keeps it, the views draw it.

use crate::core::ids::{ContainerId, IterationNo, RunId};

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Holds the cluster's state; `leader` for the one manager that leads the others.
    Manager {
        leader: bool,
    },
    Worker,
}

/// Whether the manager hears from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Ready,
    /// Missed its heartbeats: its tasks are lost to the cluster.
    Down,
    Disconnected,
    Unknown,
}

/// Whether the scheduler may place tasks on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAvailability {
    Active,
    /// Keeps its tasks, takes no new ones.
    Pause,
    /// Its tasks are moved off.
    Drain,
}

/// One trial's task on a node, read from its service's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTrial {
    /// The trial's service (the id the backend hands out as its container id).
    pub service: ContainerId,
    pub run: RunId,
    pub no: IterationNo,
    /// The task's state in Swarm's words: `pending`, `preparing`, `running`…
    pub task_state: String,
}

/// One node. Invariant: `name` is unique among the nodes of one listing ([`name_nodes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: String,
    pub hostname: String,
    /// How the dashboard calls the node: its hostname, or its address when several nodes share
    /// the hostname (engines of one machine in network namespaces do).
    pub name: String,
    /// Where the manager reaches it (`10.78.0.12`).
    pub address: String,
    pub role: NodeRole,
    pub state: NodeState,
    pub availability: NodeAvailability,
    /// What the node has.
    pub cpus: f64,
    pub memory_bytes: u64,
    /// What the tasks of this store's trials reserve on it (every such task the manager means to
    /// run, whichever run it belongs to).
    pub reserved_cpus: f64,
    pub reserved_memory_bytes: u64,
    /// This store's trials whose task is placed on the node, in run and iteration order.
    pub trials: Vec<NodeTrial>,
}

impl NodeView {
    pub fn is_manager(&self) -> bool {
        matches!(self.role, NodeRole::Manager { .. })
    }

    /// Down or disconnected: what it runs is lost to the cluster.
    pub fn is_lost(&self) -> bool {
        matches!(self.state, NodeState::Down | NodeState::Disconnected)
    }

    /// The node running trial `(run, no)`, if any.
    pub fn runs(&self, run: RunId, no: IterationNo) -> bool {
        self.trials.iter().any(|t| t.run == run && t.no == no)
    }

    /// For tests: a ready, active worker with two CPUs and 4 GiB, nothing reserved.
    #[cfg(test)]
    pub fn fixture(id: &str, hostname: &str, address: &str) -> NodeView {
        NodeView {
            id: id.into(),
            hostname: hostname.into(),
            name: hostname.into(),
            address: address.into(),
            role: NodeRole::Worker,
            state: NodeState::Ready,
            availability: NodeAvailability::Active,
            cpus: 2.0,
            memory_bytes: 4 << 30,
            reserved_cpus: 0.0,
            reserved_memory_bytes: 0,
            trials: Vec::new(),
        }
    }
}

/// Gives every node its [`NodeView::name`]: the hostname when no other node has it, else the
/// address (the hostname again when the address is unknown or shared too, then with the start of
/// the node id).
pub fn name_nodes(nodes: &mut [NodeView]) {
    let count = |f: &dyn Fn(&NodeView) -> &str, v: &str, nodes: &[NodeView]| {
        nodes.iter().filter(|n| f(n) == v).count()
    };
    let names: Vec<String> = nodes
        .iter()
        .map(|n| {
            if count(&|m| m.hostname.as_str(), &n.hostname, nodes) == 1 {
                n.hostname.clone()
            } else if !n.address.is_empty()
                && count(&|m| m.address.as_str(), &n.address, nodes) == 1
            {
                n.address.clone()
            } else {
                let short: String = n.id.chars().take(8).collect();
                format!("{} {short}", n.hostname)
            }
        })
        .collect();
    for (n, name) in nodes.iter_mut().zip(names) {
        n.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, hostname: &str, address: &str) -> NodeView {
        NodeView::fixture(id, hostname, address)
    }

    #[test]
    fn nodes_are_named_by_hostname_unless_they_share_it() {
        let mut nodes = vec![
            node("aaaaaaaaaa1", "gpu-box", "10.0.0.5"),
            node("bbbbbbbbbb2", "host", "10.0.0.11"),
            node("cccccccccc3", "host", "10.0.0.12"),
            node("dddddddddd4", "twin", ""),
            node("eeeeeeeeee5", "twin", ""),
        ];
        name_nodes(&mut nodes);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gpu-box",
                "10.0.0.11",
                "10.0.0.12",
                "twin dddddddd",
                "twin eeeeeeee"
            ]
        );
    }
}
