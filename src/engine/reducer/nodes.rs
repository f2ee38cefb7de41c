//! A cluster engine's nodes ([`Msg::Nodes`]): kept on the engine for the dashboard's lanes; a node
//! that is lost or back is said once; a trial the cluster placed on a node, or moved to another
//! (a revival placed elsewhere), is recorded on its iteration and said, so that headless output
//! names the node.
//!
//! [`Msg::Nodes`]: crate::engine::msg::Msg::Nodes

use crate::core::ids::{IterationNo, RunId};
use crate::core::model::{NodeState, NodeView};
use crate::engine::event::Level;
use crate::engine::state::{NodePlace, PipelineState};

use super::fx::Fx;
use super::lookup::current_run;

/// Engine `engine` listed `nodes`. Nothing happens for an engine the state does not list.
pub(super) fn listed(state: &mut PipelineState, fx: &mut Fx, engine: &str, nodes: Vec<NodeView>) {
    let Some(e) = state.engines.iter_mut().find(|e| e.name == engine) else {
        return;
    };
    let before = e.nodes.replace(nodes);
    node_changes(state, fx, engine, before.as_deref().unwrap_or_default());
    placements(state, fx, engine);
}

/// Says which nodes of `engine` were lost or came back since the listing `before` (on the first
/// listing, which are lost).
fn node_changes(state: &mut PipelineState, fx: &mut Fx, engine: &str, before: &[NodeView]) {
    let Some(nodes) = state.nodes_of(engine) else {
        return;
    };
    let mut lines = Vec::new();
    for n in nodes {
        let was = before.iter().find(|b| b.id == n.id);
        let was_lost = was.is_some_and(NodeView::is_lost);
        if n.is_lost() && !was_lost {
            let trials = trial_list(n);
            let text = format!(
                "swarm {engine}: node {} {}{trials}",
                n.name,
                state_word(n.state)
            );
            lines.push((Level::Warn, text));
        } else if was_lost && n.state == NodeState::Ready {
            lines.push((
                Level::Good,
                format!("swarm {engine}: node {} ready again", n.name),
            ));
        }
    }
    let run = current_run(state);
    for (level, text) in lines {
        fx.event(state, run, "engine", level, text);
    }
}

/// `; its trials: #3 #5`, or nothing for a node without trials.
fn trial_list(n: &NodeView) -> String {
    if n.trials.is_empty() {
        return String::new();
    }
    let nos: Vec<String> = n.trials.iter().map(|t| format!("#{}", t.no)).collect();
    format!("; its trials: {}", nos.join(" "))
}

fn state_word(s: NodeState) -> &'static str {
    match s {
        NodeState::Ready => "ready",
        NodeState::Down => "down",
        NodeState::Disconnected => "disconnected",
        NodeState::Unknown => "in an unknown state",
    }
}

/// Records, for each undecided iteration of the current run on `engine`, the node its task is
/// placed on, and says when that is a first placement or a different node than before. An
/// iteration the listing shows on no node (waiting for one) keeps the node it had.
fn placements(state: &mut PipelineState, fx: &mut Fx, engine: &str) {
    let Some(run) = current_run(state) else {
        return;
    };
    let Some(nodes) = state.nodes_of(engine) else {
        return;
    };
    let changes: Vec<(IterationNo, NodePlace, Option<NodePlace>)> = state
        .active()
        .into_iter()
        .filter(|it| state.runs_on(it, engine))
        .filter_map(|it| {
            let on = NodePlace::of(node_running(nodes, run, it.no)?);
            let old = it.node.clone();
            (old.as_ref().map(|o| &o.id) != Some(&on.id)).then_some((it.no, on, old))
        })
        .collect();
    for (no, on, old) in changes {
        let text = match &old {
            None => format!("iteration {no} placed on node {} by Swarm", on.name),
            Some(old) => format!(
                "iteration {no} moved to node {} (was on {})",
                on.name, old.name
            ),
        };
        let level = if old.is_some() {
            Level::Warn
        } else {
            Level::Info
        };
        if let Some(it) = state.run.as_mut().and_then(|r| r.iteration_mut(no)) {
            it.node = Some(on);
        }
        fx.iteration_event(state, (run, no), "node", level, text);
    }
}

/// The node trial `(run, no)` runs on. A trial listed on several nodes (the task of a lost node
/// that the manager still means to run, beside the one of its revival) is where its task runs on a
/// ready node, else the first listing.
fn node_running(nodes: &[NodeView], run: RunId, no: IterationNo) -> Option<&NodeView> {
    let mut on = nodes.iter().filter(|n| n.runs(run, no));
    let first = on.clone().next()?;
    let healthy = on.find(|n| {
        n.state == NodeState::Ready
            && n.trials
                .iter()
                .any(|t| t.run == run && t.no == no && t.task_state == "running")
    });
    Some(healthy.unwrap_or(first))
}
