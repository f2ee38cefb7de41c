//! The pool's engines coming and going: an engine unreachable past the grace loses its trials, each
//! moved to another engine to resume from its last checkpoint; an engine that comes back is
//! reconciled (what it still runs for us that is placed elsewhere now is removed).

use crate::core::ids::{IterationNo, RunId};
use crate::core::units::HumanDuration;
use crate::engine::event::Level;
use crate::engine::msg::{Effect, IterationPlan};
use crate::engine::state::{PipelineState, Placement};

use super::fx::Fx;
use super::lookup::current_run;

/// Engine `name` answered (`up`) or not. A change is said once; an engine back is reconciled. The
/// caller then fills the slots, which first moves the trials of engines down past their grace
/// ([`migrate`]): each report of a down engine is a chance for that.
pub(super) fn engine(state: &mut PipelineState, fx: &mut Fx, name: &str, up: bool, detail: String) {
    let (now, grace, run) = (fx.now, grace(state), current_run(state));
    let Some(e) = state.engines.iter_mut().find(|e| e.name == name) else {
        return;
    };
    let was = e.up.replace(up);
    e.detail = detail.clone();
    if up {
        e.down_since_ms = None;
        if was == Some(false) {
            let text = format!("engine {name} reachable again ({detail})");
            fx.event(state, run, "engine", Level::Good, text);
            reconcile(state, fx, name);
        }
        return;
    }
    if e.down_since_ms.is_none() {
        e.down_since_ms = Some(now);
        let text = format!(
            "engine {name} unreachable: {detail}; its trials move to another engine after {grace}"
        );
        fx.event(state, run, "engine", Level::Error, text);
    }
}

/// The grace of the current run's configuration (the default without a run).
fn grace(state: &PipelineState) -> HumanDuration {
    state
        .run
        .as_ref()
        .and_then(|r| r.config.as_ref())
        .map(|c| c.monitor.engine_grace)
        .unwrap_or_else(|| crate::core::config::Monitor::default().engine_grace)
}

/// Moves every undecided iteration whose engine has been down past the grace to the up engine with
/// the most free slots; one that finds no free slot waits for the next report or freed slot.
pub(super) fn migrate(state: &mut PipelineState, fx: &mut Fx) {
    let grace = grace(state);
    let lost: Vec<String> = state
        .engines
        .iter()
        .filter(|e| e.up == Some(false))
        .filter(|e| {
            e.down_since_ms
                .is_some_and(|d| fx.now - d >= grace.0.as_millis() as i64)
        })
        .map(|e| e.name.clone())
        .collect();
    if lost.is_empty() {
        return;
    }
    let stranded: Vec<(IterationNo, String)> = state
        .active()
        .iter()
        .filter_map(|i| {
            let on = i.engine.as_ref()?;
            lost.contains(on).then(|| (i.no, on.clone()))
        })
        .collect();
    for (no, from) in stranded {
        let Some(to) = state.place().map(|e| e.name.clone()) else {
            return;
        };
        move_iteration(state, fx, no, (&from, &to), grace);
    }
}

/// Places iteration `no` on `to`, says why, and asks for it to resume there.
fn move_iteration(
    state: &mut PipelineState,
    fx: &mut Fx,
    no: IterationNo,
    (from, to): (&str, &str),
    grace: HumanDuration,
) {
    let at_ms = fx.now;
    let Some(r) = state.run.as_mut() else { return };
    let run = r.id;
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    let resumes = it
        .last_epoch()
        .map(|e| format!("resumes from epoch {e}"))
        .unwrap_or_else(|| "starts over (no epoch reported yet)".into());
    let reason = format!("moved: engine {from} unreachable for {grace}; {resumes}");
    it.engine = Some(to.to_string());
    it.placements.push(Placement {
        engine: to.to_string(),
        at_ms,
        reason: reason.clone(),
    });
    if plan_for(state, run, no).is_none() {
        return;
    }
    let text = format!("iteration {no} → {to}: {reason}");
    fx.iteration_event(state, (run, no), "engine", Level::Warn, text);
    super::gpu::hold(state, fx, (run, no));
    let Some(mut plan) = plan_for(state, run, no) else {
        return;
    };
    super::gpu::pin(state, &mut plan);
    fx.push(Effect::SavePlacement { run, no });
    fx.push(Effect::MoveIteration(Box::new(plan)));
}

/// What a worker needs to run iteration `no` again from its existing directory.
fn plan_for(state: &PipelineState, run: RunId, no: IterationNo) -> Option<IterationPlan> {
    let r = state.run.as_ref().filter(|r| r.id == run)?;
    let it = r.iteration(no)?;
    let (config, image, workspace) = (r.config.clone()?, r.image.clone()?, r.workspace.clone()?);
    Some(IterationPlan {
        run,
        no,
        params: it.params.clone(),
        image,
        workspace,
        config,
        proposal_reason: it.proposal_reason.clone(),
        commit: r.commit.id.clone(),
        // The iteration's workspace exists already: the patch only describes it.
        patch: r.knobs.patch(&it.params).unwrap_or_default(),
        change: String::new(),
        // A moved trial resumes in its own workspace: nothing is carried into it again.
        keep: None,
        engine: it.engine.clone(),
    })
}

/// Engine `name` is back: whatever it still runs for us that is not an undecided iteration placed
/// on it goes (stopped and removed by the runtime).
fn reconcile(state: &mut PipelineState, fx: &mut Fx, name: &str) {
    let run = current_run(state);
    let keep: Vec<(RunId, IterationNo)> = state
        .active()
        .iter()
        .filter(|i| i.engine.as_deref() == Some(name))
        .filter_map(|i| run.map(|r| (r, i.no)))
        .collect();
    fx.push(Effect::Reconcile {
        engine: name.to_string(),
        keep,
    });
}
