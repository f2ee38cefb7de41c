//! Trials side by side, as the dashboard reads them from the engine's state: which engines there
//! are, whether each answers, its free slots, and the iterations running on it.
//!
//! Pure functions of the [`PipelineState`] (and the clock for ages), shared by the views (graph lanes,
//! status bar, plot legend, logs title) and the reducer (which iteration the logs show). Invariant:
//! while the engine lists no engine (a single local engine, one iteration at a time) everything here
//! describes one engine named [`LOCAL`], so the screens look as they did before engines existed.

use crate::core::ids::IterationNo;
use crate::core::model::IterStatus;
use crate::core::text;
use crate::engine::PipelineState;
use crate::engine::state::IterState;

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

/// One engine and what runs on it.
#[derive(Debug, Clone)]
pub struct Lane<'a> {
    pub name: String,
    pub health: Health,
    pub slots: u32,
    pub free: u32,
    /// Its running iterations, in number order.
    pub trials: Vec<&'a IterState>,
}

/// Whether the screens show trials side by side: more than one runs now, or more than one engine
/// could take one. Otherwise everything is drawn as for a single iteration at a time.
pub fn multi(p: &PipelineState) -> bool {
    p.engines.len() > 1 || p.running().len() > 1
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
/// (not placed yet) get a last lane, `unplaced`.
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
            health,
            slots,
            free: slots.saturating_sub(running.len() as u32),
            trials: running,
        }];
    }
    let mut lanes: Vec<Lane<'_>> = p
        .engines
        .iter()
        .enumerate()
        .map(|(i, e)| Lane {
            name: e.name.clone(),
            // The first engine is the one the status bar checks: its answer stands in until
            // the engine's own check has one.
            health: match e.up.or(if i == 0 { docker_up } else { None }) {
                None => Health::Unknown,
                Some(true) => Health::Up,
                Some(false) => Health::Down {
                    since_ms: e.down_since_ms,
                },
            },
            slots: e.slots,
            free: p.free_slots(&e.name),
            trials: running
                .iter()
                .copied()
                .filter(|i| i.engine.as_deref() == Some(e.name.as_str()))
                .collect(),
        })
        .collect();
    let unplaced: Vec<&IterState> = running
        .iter()
        .copied()
        .filter(|i| {
            !p.engines
                .iter()
                .any(|e| Some(e.name.as_str()) == i.engine.as_deref())
        })
        .collect();
    if !unplaced.is_empty() {
        lanes.push(Lane {
            name: "unplaced".into(),
            health: Health::Unknown,
            slots: 0,
            free: 0,
            trials: unplaced,
        });
    }
    lanes
}

/// `2/3 free`, or `down 12s` for an engine that does not answer, `checking` before it was asked.
pub fn lane_state(l: &Lane<'_>, now_ms: i64) -> String {
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
}
