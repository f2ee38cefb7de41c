//! A swarm's nodes ([`Msg::Nodes`]): kept on the engine, a trial's node recorded on its iteration
//! and said (first placement, a move), a node lost or back said once.

use std::path::{Path, PathBuf};

use super::tests::{RUN, commit, events};
use super::*;
use crate::core::config::Config;
use crate::core::ids::{ContainerId, IterationNo};
use crate::core::model::{ImageSpec, NodeRole, NodeState, NodeTrial, NodeView, name_nodes};
use crate::engine::state::{EngineState, NodePlace};
use crate::engine::trigger::Trigger;

const TOML: &str = r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = 10
parallel = 2
[tweak]
strategy = "random"
apply = "auto"
[tweak.space]
k = { values = [1, 2, 3, 4, 5, 6] }
"#;

fn engine(name: &str, slots: u32) -> EngineState {
    EngineState {
        name: name.into(),
        endpoint: format!("unix:///run/mlops-{name}/docker.sock"),
        slots,
        up: Some(true),
        down_since_ms: None,
        detail: String::new(),
        nodes: None,
    }
}

/// Iterations 1 and 2 started on the swarm engine `s1` (the only engine, two slots).
fn on_swarm() -> PipelineState {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.engines = vec![engine("s1", 2)];
    let trigger = Trigger::Start;
    update(
        &mut s,
        Msg::RunRequested {
            commit: commit("a"),
            trigger,
        },
        0,
    );
    update(
        &mut s,
        Msg::RunCreated {
            run: RUN,
            commit: commit("a"),
        },
        1,
    );
    let config = Config::parse(TOML, Path::new("mlops.toml")).unwrap();
    let prepared = Msg::Prepared {
        run: RUN,
        config: Box::new(config),
        workspace: PathBuf::from("/w"),
        image_reason: "sklearn".into(),
        image: ImageSpec::Profile(crate::adapters::images::profile("sklearn").unwrap()),
        knobs: Box::default(),
        warnings: Vec::new(),
    };
    update(&mut s, prepared, 2);
    let image = "mlops-tui/sklearn:x".to_string();
    update(&mut s, Msg::ImageReady { run: RUN, image }, 3);
    assert_eq!(s.active().len(), 2);
    s
}

/// The manager `m` and the workers `w2`, `w3` (all named `host`, so shown by address), with the
/// trials `(no, node)` placed.
fn cluster(placed: &[(u32, &str)]) -> Vec<NodeView> {
    let mut nodes = vec![
        NodeView::fixture("m", "host", "10.78.0.11"),
        NodeView::fixture("w2", "host", "10.78.0.12"),
        NodeView::fixture("w3", "host", "10.78.0.13"),
    ];
    nodes[0].role = NodeRole::Manager { leader: true };
    for (no, on) in placed {
        let n = nodes.iter_mut().find(|n| n.id == *on).unwrap();
        n.reserved_cpus += 1.5;
        n.reserved_memory_bytes += 512 << 20;
        n.trials.push(NodeTrial {
            service: ContainerId(format!("svc{no}")),
            run: RUN,
            no: IterationNo(*no),
            task_state: "running".into(),
        });
    }
    name_nodes(&mut nodes);
    nodes
}

fn listed(s: &mut PipelineState, nodes: Vec<NodeView>, now: i64) -> Vec<String> {
    let fx = update(
        s,
        Msg::Nodes {
            engine: "s1".into(),
            nodes,
        },
        now,
    );
    events(&fx)
}

fn node_of(s: &PipelineState, no: u32) -> Option<NodePlace> {
    s.run.as_ref()?.iteration(IterationNo(no))?.node.clone()
}

#[test]
fn the_nodes_are_kept_on_the_engine_and_each_placement_is_said_once() {
    let mut s = on_swarm();
    // Iteration 2 waits for a node: it is on none, and nothing is said of it.
    let said = listed(&mut s, cluster(&[(1, "w2")]), 10);
    assert_eq!(
        said,
        ["[node:1] iteration 1 placed on node 10.78.0.12 by Swarm"]
    );
    let nodes = s.nodes_of("s1").unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[1].reserved_cpus, 1.5);
    assert_eq!(
        node_of(&s, 1),
        Some(NodePlace {
            id: "w2".into(),
            name: "10.78.0.12".into()
        })
    );
    assert_eq!(node_of(&s, 2), None);
    assert!(s.has_clusters());

    // The same listing again says nothing; iteration 2's placement is said when it comes.
    assert!(listed(&mut s, cluster(&[(1, "w2")]), 12).is_empty());
    let said = listed(&mut s, cluster(&[(1, "w2"), (2, "w3")]), 14);
    assert_eq!(
        said,
        ["[node:2] iteration 2 placed on node 10.78.0.13 by Swarm"]
    );
    // The events are in the state's log, which the dashboard's event pane shows.
    assert!(s.events.iter().any(|e| e.tag == "node:2"));
}

#[test]
fn a_lost_node_is_said_and_a_trial_revived_elsewhere_is_said_moved() {
    let mut s = on_swarm();
    listed(&mut s, cluster(&[(1, "w2")]), 10);
    let mut lost = cluster(&[(1, "w2")]);
    lost[1].state = NodeState::Down;
    let said = listed(&mut s, lost, 20);
    assert_eq!(
        said,
        ["[engine] swarm s1: node 10.78.0.12 down; its trials: #1"]
    );
    let level = s.events.back().unwrap().level;
    assert_eq!(level, Level::Warn);
    assert_eq!(node_of(&s, 1).unwrap().id, "w2", "still where it was");

    // Revived: the old task still listed on the lost node, the new one running on w3.
    let mut moved = cluster(&[(1, "w2"), (1, "w3")]);
    moved[1].state = NodeState::Down;
    let said = listed(&mut s, moved, 30);
    assert_eq!(
        said,
        ["[node:1] iteration 1 moved to node 10.78.0.13 (was on 10.78.0.12)"]
    );
    assert_eq!(node_of(&s, 1).unwrap().id, "w3");

    let said = listed(&mut s, cluster(&[(1, "w3")]), 40);
    assert_eq!(said, ["[engine] swarm s1: node 10.78.0.12 ready again"]);
}

#[test]
fn a_listing_of_an_engine_the_state_does_not_have_changes_nothing() {
    let mut s = on_swarm();
    let fx = update(
        &mut s,
        Msg::Nodes {
            engine: "elsewhere".into(),
            nodes: cluster(&[(1, "w2")]),
        },
        10,
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert!(s.nodes_of("s1").is_none() && !s.has_clusters());
    assert_eq!(node_of(&s, 1), None);
}

/// A trial of an earlier run (an orphan) on a node counts in its reservation but is no iteration
/// of this run: nothing is said of it.
#[test]
fn trials_of_other_runs_are_not_placed() {
    let mut s = on_swarm();
    let mut nodes = cluster(&[]);
    nodes[2].trials.push(NodeTrial {
        service: ContainerId("old".into()),
        run: crate::core::ids::RunId(RUN.0 - 1),
        no: IterationNo(1),
        task_state: "running".into(),
    });
    assert!(listed(&mut s, nodes, 10).is_empty());
    assert_eq!(node_of(&s, 1), None);
}
