//! Trials side by side, as the dashboard reads them from the engine's state: which engines there
//! are, whether each answers, its free slots, and the iterations running on it.
//!
//! A cluster engine (a swarm) whose nodes are known is drawn as its nodes: a lane per node with its
//! health, what our trials reserve there and the trials it runs.
//!
//! Pure functions of the [`PipelineState`] (and the clock for ages), shared by the views (graph lanes,
//! status bar, plot legend, logs title) and the reducer (which iteration the logs show). Invariant:
//! while the engine lists no engine (a single local engine, one iteration at a time) everything here
//! describes one engine named [`LOCAL`], so the screens look as they did before engines existed.

use crate::core::ids::IterationNo;
use crate::core::model::{IterStatus, NodeAvailability, NodeRole, NodeState, NodeView};
use crate::core::text;
use crate::engine::PipelineState;
use crate::engine::state::{EngineState, IterState};

/// The engine's name when the state lists none.
pub const LOCAL: &str = "local";

/// Whether an engine answers, as far as the dashboard knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    /// Not answering; since when, if the engine said.
    Down {
        since_ms: Option<i64>,
    },
}

/// One engine, or one node of a cluster engine, and what runs on it.
#[derive(Debug, Clone)]
pub struct Lane<'a> {
    pub name: String,
    /// The node this lane is, for a cluster engine's node (its `slots` and `free` are then 0: a
    /// cluster's slots are the engine's, not a node's).
    pub node: Option<&'a NodeView>,
    pub health: Health,
    pub slots: u32,
    pub free: u32,
    /// Its running iterations, in number order.
    pub trials: Vec<&'a IterState>,
}

/// Whether the screens show trials side by side: more than one runs now, or more than one engine
/// could take one. Otherwise everything is drawn as for a single iteration at a time.
/// A cluster engine's nodes are lanes too, even for one trial.
pub fn multi(p: &PipelineState) -> bool {
    p.engines.len() > 1 || p.running().len() > 1 || p.has_clusters()
}

/// The engine an iteration runs (or last ran) on.
pub fn engine_of(it: &IterState) -> &str {
    it.engine.as_deref().unwrap_or(LOCAL)
}

/// The engine the iteration ran on before the one it is on now, if it moved.
pub fn moved_from(it: &IterState) -> Option<&str> {
    let n = it.placements.len();
    (n >= 2).then(|| it.placements[n - 2].engine.as_str())
}

/// The lanes, one per engine in the state's order; `docker_up` (the status bar's own check) stands
/// for the single local engine when the state lists none, and for the first engine until the
/// engine's state says whether it answers. Iterations placed on no listed engine
/// (not placed yet), or on a cluster but on none of its nodes yet, get a last lane, `unplaced`.
/// A cluster engine whose nodes are known has a lane per node instead of its own.
pub fn lanes(p: &PipelineState, docker_up: Option<bool>) -> Vec<Lane<'_>> {
    let running = p.running();
    if p.engines.is_empty() {
        let parallel = p
            .run
            .as_ref()
            .and_then(|r| r.config.as_ref())
            .map_or(1, |c| c.budget.parallel);
        let slots = parallel.max(running.len() as u32).max(1);
        let health = match docker_up {
            None => Health::Unknown,
            Some(true) => Health::Up,
            Some(false) => Health::Down { since_ms: None },
        };
        return vec![Lane {
            name: LOCAL.into(),
            node: None,
            health,
            slots,
            free: slots.saturating_sub(running.len() as u32),
            trials: running,
        }];
    }
    let mut lanes: Vec<Lane<'_>> = Vec::new();
    for (i, e) in p.engines.iter().enumerate() {
        if let Some(nodes) = e.nodes.as_deref() {
            lanes.extend(node_lanes(p, e, nodes, &running));
            continue;
        }
        lanes.push(Lane {
            name: e.name.clone(),
            node: None,
            // The first engine is the one the status bar checks: its answer stands in until
            // the engine's own check has one.
            health: engine_health(e, if i == 0 { docker_up } else { None }),
            slots: e.slots,
            free: p.free_slots(&e.name),
            trials: running
                .iter()
                .copied()
                .filter(|i| i.engine.as_deref() == Some(e.name.as_str()))
                .collect(),
        });
    }
    let unplaced: Vec<&IterState> = running
        .iter()
        .copied()
        .filter(|i| !lanes.iter().any(|l| l.trials.iter().any(|t| t.no == i.no)))
        .collect();
    if !unplaced.is_empty() {
        lanes.push(Lane {
            name: "unplaced".into(),
            node: None,
            health: Health::Unknown,
            slots: 0,
            free: 0,
            trials: unplaced,
        });
    }
    lanes
}

/// Engine `e`'s health; `fallback` until it was asked.
pub fn engine_health(e: &EngineState, fallback: Option<bool>) -> Health {
    match e.up.or(fallback) {
        None => Health::Unknown,
        Some(true) => Health::Up,
        Some(false) => Health::Down {
            since_ms: e.down_since_ms,
        },
    }
}

/// A lane per node of cluster engine `e`, each with the running trials the engine placed there
/// (as the reducer recorded them). Named by the node, after the engine when there are several.
fn node_lanes<'a>(
    p: &'a PipelineState,
    e: &'a EngineState,
    nodes: &'a [NodeView],
    running: &[&'a IterState],
) -> Vec<Lane<'a>> {
    nodes
        .iter()
        .map(|n| Lane {
            name: if p.engines.len() > 1 {
                format!("{}/{}", e.name, n.name)
            } else {
                n.name.clone()
            },
            node: Some(n),
            health: match n.state {
                NodeState::Ready => Health::Up,
                NodeState::Down | NodeState::Disconnected => Health::Down { since_ms: None },
                NodeState::Unknown => Health::Unknown,
            },
            slots: 0,
            free: 0,
            trials: running
                .iter()
                .copied()
                .filter(|i| p.runs_on(i, &e.name))
                .filter(|i| i.node.as_ref().is_some_and(|on| on.id == n.id))
                .collect(),
        })
        .collect()
}

/// `leader cpu 1.5/2 mem 0.5/3.8 GiB`: the node's role (managers only), a state other than
/// ready, an availability other than active, and what our trials reserve of what it has.
pub fn node_state(n: &NodeView) -> String {
    let mut parts: Vec<String> = Vec::new();
    match n.role {
        NodeRole::Manager { leader: true } => parts.push("leader".into()),
        NodeRole::Manager { leader: false } => parts.push("manager".into()),
        NodeRole::Worker => {}
    }
    match n.state {
        NodeState::Ready => {}
        NodeState::Down => parts.push("down".into()),
        NodeState::Disconnected => parts.push("disconnected".into()),
        NodeState::Unknown => parts.push("unknown".into()),
    }
    match n.availability {
        NodeAvailability::Active => {}
        NodeAvailability::Pause => parts.push("paused".into()),
        NodeAvailability::Drain => parts.push("drained".into()),
    }
    parts.push(reserved_text(n));
    parts.join(" ")
}

/// A node on the graph's one line: `down`, or the CPUs our trials reserve there, `cpu 1.5/2`.
pub fn node_short(n: &NodeView) -> String {
    if n.is_lost() {
        return "down".into();
    }
    format!("cpu {}/{}", short(n.reserved_cpus), short(n.cpus))
}

/// `cpu 1.5/2 mem 0.5/3.8 GiB`: reserved by our trials, of what the node has.
pub fn reserved_text(n: &NodeView) -> String {
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    format!(
        "cpu {}/{} mem {}/{} GiB",
        short(n.reserved_cpus),
        short(n.cpus),
        short(gib(n.reserved_memory_bytes)),
        short(gib(n.memory_bytes))
    )
}

/// One decimal, none when it is 0: `1.5`, `2`.
fn short(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

/// `swarm cluster @ unix:///run/mlops-s1/docker.sock, 3 nodes (1 down)`: a cluster engine by its
/// manager, once its nodes are known.
pub fn cluster_text(e: &EngineState) -> Option<String> {
    let nodes = e.nodes.as_deref()?;
    let lost = nodes.iter().filter(|n| n.is_lost()).count();
    let count = match nodes.len() {
        1 => "1 node".to_string(),
        n => format!("{n} nodes"),
    };
    let lost = if lost > 0 {
        format!(" ({lost} down)")
    } else {
        String::new()
    };
    Some(format!("swarm cluster @ {}, {count}{lost}", e.endpoint))
}

/// `2/3 free`, or `down 12s` for an engine that does not answer, `checking` before it was asked.
/// A node's lane: its [`node_state`].
pub fn lane_state(l: &Lane<'_>, now_ms: i64) -> String {
    if let Some(n) = l.node {
        return node_state(n);
    }
    match l.health {
        Health::Down { since_ms: Some(t) } => format!("down {}", text::duration_whole(now_ms - t)),
        Health::Down { since_ms: None } => "down".into(),
        Health::Unknown if l.slots == 0 => String::new(),
        Health::Unknown => "checking".into(),
        Health::Up => format!("{}/{} free", l.free, l.slots),
    }
}

/// `#3 epoch 4 0.912 (1m12s)`: the iteration, its last reported epoch and value, how long it runs.
pub fn trial_text(it: &IterState, now_ms: i64) -> String {
    let mut t = format!("#{}", it.no);
    match (it.status, it.last_epoch(), it.final_value) {
        (IterStatus::Building, _, _) => t.push_str(" starting"),
        (_, Some(e), Some(v)) => t.push_str(&format!(" epoch {e} {}", text::value_short(v))),
        (_, None, Some(v)) => t.push_str(&format!(" {}", text::value_short(v))),
        _ => t.push_str(" waiting for epoch 1"),
    }
    if let Some(e) = text::elapsed(it.started_ms, it.finished_ms, now_ms) {
        t.push_str(&format!(" ({e})"));
    }
    t
}

/// The GPUs a trial holds and, once sampled, how busy they are: `gpu 0 87% 1.2/24.0G`
/// (`gpus 0,1 …` per device); `None` for a trial without GPUs.
pub fn gpu_text(it: &IterState) -> Option<String> {
    if it.gpus.is_empty() && it.gpu_usage.is_empty() {
        return None;
    }
    let gib = |mib: u64| mib as f64 / 1024.0;
    if it.gpu_usage.is_empty() {
        return Some(crate::core::gpu::label(&it.gpus));
    }
    let parts: Vec<String> = it
        .gpu_usage
        .iter()
        .map(|g| {
            format!(
                "{} {}% {:.1}/{:.1}G",
                g.device,
                g.utilization_pct,
                gib(g.memory_used_mib),
                gib(g.memory_total_mib)
            )
        })
        .collect();
    let word = if it.gpu_usage.len() == 1 {
        "gpu"
    } else {
        "gpus"
    };
    Some(format!("{word} {}", parts.join(", ")))
}

/// `↪ from e1` (`<- from e1` in ASCII) for an iteration that moved, else nothing.
pub fn moved_text(it: &IterState, ascii: bool) -> Option<String> {
    moved_from(it).map(|from| {
        let arrow = if ascii { "<-" } else { "↪" };
        format!("{arrow} from {from}")
    })
}

/// The running iterations in number order: what the logs pane cycles through.
pub fn running_nos(p: &PipelineState) -> Vec<IterationNo> {
    p.running().iter().map(|i| i.no).collect()
}

/// The newest running iteration (the logs pane follows it), else the run's last iteration.
pub fn newest(p: &PipelineState) -> Option<IterationNo> {
    let r = p.run.as_ref()?;
    running_nos(p)
        .last()
        .copied()
        .or_else(|| r.current().map(|i| i.no))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::state::{EngineState, Placement};

    fn engine(name: &str, slots: u32, up: Option<bool>) -> EngineState {
        EngineState {
            name: name.into(),
            endpoint: format!("tcp://{name}:2376"),
            slots,
            up,
            down_since_ms: None,
            detail: String::new(),
            nodes: None,
        }
    }

    #[test]
    fn no_engine_listed_is_one_local_lane_that_is_not_multi() {
        let p = PipelineState::new(".".into(), true);
        assert!(!multi(&p));
        let l = lanes(&p, Some(true));
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, LOCAL);
        assert_eq!(lane_state(&l[0], 0), "1/1 free");
    }

    /// Two trials at once on an engine the state does not list: one `local` lane holds both, its
    /// slots from `[budget] parallel`, and the logs follow the newer.
    #[test]
    fn trials_on_an_unlisted_engine_share_the_local_lane() {
        use crate::core::model::CommitInfo;
        use crate::engine::state::RunState;
        let mut run = RunState::new(
            crate::core::ids::RunId(1),
            CommitInfo {
                id: "a".repeat(40),
                summary: String::new(),
                author: String::new(),
                branch: String::new(),
                time: 0,
            },
        );
        let toml = "[train]\ncommand = [\"python3\", \"t.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n[budget]\nparallel = 3\n";
        let config =
            crate::core::config::Config::parse(toml, std::path::Path::new("mlops.toml")).unwrap();
        run.config = Some(config);
        for no in [1, 2] {
            let mut it = IterState::new(IterationNo(no), Default::default(), None);
            it.status = IterStatus::Running;
            run.iterations.push(it);
        }
        let mut p = PipelineState::new(".".into(), true);
        p.run = Some(run);
        assert!(multi(&p));
        let l = lanes(&p, Some(true));
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].trials.len(), 2);
        assert_eq!(lane_state(&l[0], 0), "1/3 free");
        assert_eq!(newest(&p), Some(IterationNo(2)));
        assert_eq!(engine_of(l[0].trials[0]), LOCAL);
    }

    #[test]
    fn a_moved_trial_names_where_it_came_from_and_a_down_engine_its_outage() {
        let mut it = IterState::new(IterationNo(3), Default::default(), None);
        it.placements = vec![
            Placement {
                engine: "e1".into(),
                at_ms: 0,
                reason: "first placement".into(),
            },
            Placement {
                engine: "e2".into(),
                at_ms: 5,
                reason: "moved".into(),
            },
        ];
        assert_eq!(moved_text(&it, false).as_deref(), Some("↪ from e1"));
        assert_eq!(moved_text(&it, true).as_deref(), Some("<- from e1"));
        let mut p = PipelineState::new(".".into(), true);
        p.engines = vec![engine("local", 1, Some(true)), engine("e1", 2, Some(false))];
        p.engines[1].down_since_ms = Some(1_000);
        assert!(multi(&p));
        let l = lanes(&p, None);
        assert_eq!(lane_state(&l[1], 13_000), "down 12s");
        assert_eq!(lane_state(&l[0], 13_000), "1/1 free");
        // Before the engine's own check, the first engine takes the status bar's answer.
        p.engines[0].up = None;
        assert_eq!(lanes(&p, Some(true))[0].health, Health::Up);
        assert_eq!(lanes(&p, None)[0].health, Health::Unknown);
        p.engines[1].up = None;
        assert_eq!(lanes(&p, Some(true))[1].health, Health::Unknown);
    }

    /// A node's state words: its role, a state other than ready, an availability other than
    /// active, then what our trials reserve; the cluster's text counts the nodes lost.
    #[test]
    fn node_and_cluster_texts() {
        let mut n = NodeView::fixture("w", "gpu-box", "10.0.0.5");
        n.reserved_cpus = 0.25;
        n.reserved_memory_bytes = 3 << 29;
        assert_eq!(node_state(&n), "cpu 0.2/2 mem 1.5/4 GiB");
        n.role = NodeRole::Manager { leader: false };
        n.availability = NodeAvailability::Drain;
        n.state = NodeState::Disconnected;
        assert_eq!(
            node_state(&n),
            "manager disconnected drained cpu 0.2/2 mem 1.5/4 GiB"
        );
        assert_eq!(node_short(&n), "down");
        let mut e = engine("s1", 2, Some(true));
        assert_eq!(cluster_text(&e), None);
        e.nodes = Some(vec![NodeView::fixture("a", "a", "")]);
        assert_eq!(
            cluster_text(&e).unwrap(),
            "swarm cluster @ tcp://s1:2376, 1 node"
        );
        e.nodes = Some(vec![n, NodeView::fixture("a", "a", "")]);
        assert_eq!(
            cluster_text(&e).unwrap(),
            "swarm cluster @ tcp://s1:2376, 2 nodes (1 down)"
        );
    }
}
