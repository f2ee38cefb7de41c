//! Trials on a Docker Swarm, for the view tests: the swarm engine `s1` whose lanes are its three
//! nodes (one machine's engines in network namespaces, so all named `host` and shown by address).
#![allow(clippy::unwrap_used)]

use crate::core::ids::{IterationNo, RunId};
use crate::core::model::{IterStatus, NodeRole, NodeState, NodeTrial, NodeView, name_nodes};
use crate::engine::state::NodePlace;
use crate::tui::msg::UiMsg;
use crate::tui::state::UiState;
use crate::tui::update::update;

use super::fixtures::{NOW, config, engine, place, running_trial, training_state};

pub const SWARM: &str = "unix:///run/mlops-s1/docker.sock";

/// The leader (idle), `10.78.0.12` running #3, `10.78.0.13` down with #4 still on it; #5 waits
/// for a node.
fn nodes() -> Vec<NodeView> {
    let mut nodes = vec![
        NodeView::fixture("m1", "host", "10.78.0.11"),
        NodeView::fixture("w2", "host", "10.78.0.12"),
        NodeView::fixture("w3", "host", "10.78.0.13"),
    ];
    nodes[0].role = NodeRole::Manager { leader: true };
    nodes[2].state = NodeState::Down;
    for (n, no) in [(1, 3), (2, 4)] {
        nodes[n].reserved_cpus = 1.5;
        nodes[n].reserved_memory_bytes = 1288 << 20;
        nodes[n].trials.push(NodeTrial {
            service: crate::core::ids::ContainerId(format!("svc{no}")),
            run: RunId(3),
            no: IterationNo(no),
            task_state: "running".into(),
        });
    }
    name_nodes(&mut nodes);
    nodes
}

/// Three trials on the swarm `s1` (the only engine): #3 on `10.78.0.12`, #4 on `10.78.0.13`,
/// which is down, and #5 waiting for a node.
pub fn swarm_state() -> UiState {
    with_engines(false)
}

/// As [`swarm_state`], with the local engine beside the swarm (first, one slot, idle).
pub fn swarm_pool_state() -> UiState {
    with_engines(true)
}

fn with_engines(local: bool) -> UiState {
    let mut s = training_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    let mut cfg = config();
    cfg.budget.parallel = 3;
    cfg.budget.max_iterations = 12;
    r.config = Some(cfg);
    let it2 = r.iteration_mut(IterationNo(2)).unwrap();
    it2.status = IterStatus::BelowTarget;
    it2.finished_ms = Some(NOW - 90_000);
    let mut s1 = engine("s1", SWARM, 3, true);
    let nodes = nodes();
    let on = |i: usize| Some(NodePlace::of(&nodes[i]));
    s1.nodes = Some(nodes.clone());
    p.engines = vec![s1];
    if local {
        let local = engine("local", "unix:///var/run/docker.sock", 1, true);
        p.engines.insert(0, local);
    }
    let r = p.run.as_mut().unwrap();
    for (no, curve, started, node) in [
        (3, &[0.74, 0.8840][..], NOW - 21_000, on(1)),
        (4, &[0.71, 0.83, 0.88, 0.9120][..], NOW - 72_000, on(2)),
        (5, &[][..], NOW - 3_000, None),
    ] {
        let at = vec![place("s1", started, "first placement")];
        let mut it = running_trial(no, 16 * i64::from(no), curve, started, at);
        it.node = node;
        r.iterations.push(it);
    }
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    s
}
