//! The loop's next step: start an iteration, or after one that missed the target, stop on a budget
//! or propose the next point (applied at once or offered to the operator).

use crate::core::config::{ApplyMode, Config, Params};
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::{IterStatus, RunStatus};
use crate::core::tweak::{self, Proposal, Tried};
use crate::engine::event::Level;
use crate::engine::msg::{Effect, IterationPlan};
use crate::engine::state::{IterState, PipelineState, Placement, RunState, Stage, StageStatus};

use super::fx::Fx;
use super::lookup::current_run;
use super::run::finish;
use super::text::headline;

/// Starts the next iteration with `params`, or keeps it for resume while the loop is paused.
pub(super) fn start_iteration(
    state: &mut PipelineState,
    fx: &mut Fx,
    params: Params,
    proposal_reason: Option<String>,
) {
    if state.paused {
        state.deferred = Some((params, proposal_reason));
        fx.transient(
            state,
            "loop",
            "paused: the next iteration waits for resume (p)".into(),
        );
        return;
    }
    let Some(r) = state.run.as_mut() else { return };
    let (Some(config), Some(image), Some(workspace)) =
        (r.config.clone(), r.image.clone(), r.workspace.clone())
    else {
        return;
    };
    let patch = match r.knobs.patch(&params) {
        Ok(p) => p,
        Err(e) => return unpatchable(state, fx, params, &e.to_string()),
    };
    let previous = r.iterations.last().map(|i| i.params.clone());
    let no = r
        .iterations
        .last()
        .map(|i| i.no.next())
        .unwrap_or(IterationNo(1));
    let mut it = IterState::new(no, params.clone(), proposal_reason.clone());
    it.edits = patch.edits.clone();
    r.iterations.push(it);
    let (run, commit) = (r.id, r.commit.id.clone());
    place(state, fx, (run, no));
    fx.training(state, no);
    for s in [Stage::Evaluate, Stage::Tweak] {
        if state.stage(s).status == StageStatus::Running {
            fx.stage(state, s, StageStatus::Passed, "");
        }
    }
    fx.push(Effect::SaveIteration { run, no });
    if !patch.edits.is_empty() {
        let edits: Vec<String> = patch
            .edits
            .iter()
            .map(crate::core::text::source_edit)
            .collect();
        let text = format!(
            "iteration {no} trains the source edited: {}",
            edits.join("; ")
        );
        fx.event(state, Some(run), "tweak", Level::Info, text);
    }
    let engine = state
        .run
        .as_ref()
        .and_then(|r| r.iteration(no))
        .and_then(|i| i.engine.clone());
    let keep = state
        .run
        .as_ref()
        .and_then(|r| super::keep::plan(r, &config, no));
    let mut plan = IterationPlan {
        keep,
        engine,
        run,
        no,
        change: change_text(previous.as_ref(), &params),
        params,
        image,
        workspace,
        config,
        proposal_reason,
        commit,
        patch,
    };
    super::gpu::pin(state, &mut plan);
    fx.push(Effect::StartIteration(Box::new(plan)));
}

/// Puts new iteration `no` on the up engine with the most free slots and records why; says where
/// when there is a choice (more than one slot in all). Without engines nothing is placed.
fn place(state: &mut PipelineState, fx: &mut Fx, (run, no): (RunId, IterationNo)) {
    let Some(e) = state.place().or_else(|| state.engines.first()) else {
        return;
    };
    let (name, slots) = (e.name.clone(), e.slots);
    let free = state.free_slots(&name);
    let choice = state.engines.iter().map(|e| e.slots).sum::<u32>() > 1;
    let at_ms = fx.now;
    let Some(it) = state.run.as_mut().and_then(|r| r.iteration_mut(no)) else {
        return;
    };
    it.engine = Some(name.clone());
    it.placements.push(Placement {
        engine: name.clone(),
        at_ms,
        reason: "first placement".into(),
    });
    if choice {
        let text = format!("iteration {no} → {name} ({free} of {slots} slots free)");
        fx.iteration_event(state, (run, no), "place", Level::Info, text);
    }
    super::gpu::hold(state, fx, (run, no));
    fx.push(Effect::SavePlacement { run, no });
}

/// `gamma 0.001→0.01, k 15→9` from the previous iteration's parameters, or `starting parameters`.
pub(super) fn change_text(previous: Option<&Params>, params: &Params) -> String {
    let Some(previous) = previous else {
        return "starting parameters".into();
    };
    let changes: Vec<String> = params
        .iter()
        .filter(|(k, v)| previous.get(*k) != Some(*v))
        .map(|(k, v)| {
            let from = previous
                .get(k)
                .map(crate::core::text::param_value)
                .unwrap_or_else(|| "unset".into());
            format!("{k} {from}→{}", crate::core::text::param_value(v))
        })
        .collect();
    if changes.is_empty() {
        "same parameters".into()
    } else {
        changes.join(", ")
    }
}

/// The source cannot take `params` (a knob's value does not fit the code): the point is set aside
/// as rejected and the strategy asked again; on the first iteration, the run fails before any
/// container.
fn unpatchable(state: &mut PipelineState, fx: &mut Fx, params: Params, error: &str) {
    let Some(r) = state.run.as_mut() else { return };
    let run = r.id;
    let text = format!(
        "cannot write {} into the source: {error}",
        crate::core::text::params(&params)
    );
    if r.iterations.is_empty() {
        fx.stage(state, Stage::Detect, StageStatus::Failed, &text);
        finish(state, fx, RunStatus::Failed, text);
        return;
    }
    r.rejected.push(params);
    fx.event(
        state,
        Some(run),
        "tweak",
        Level::Error,
        format!("{text}; trying another point"),
    );
    fill(state, fx);
}

/// After an iteration that did not reach the target: give up on the failure budget (stopping the
/// iterations still training), wait for those still training once the iteration budget is spent,
/// or fill the free slots with new points.
pub(super) fn continue_loop(state: &mut PipelineState, fx: &mut Fx, config: &Config) {
    let Some(r) = state.run.as_ref() else { return };
    if r.ending.is_some() {
        return;
    }
    if r.failures > config.budget.max_failures {
        // The run's end is what people see last (banner, history): it carries the last failure's
        // own words, not only the count.
        let last = r
            .iterations
            .iter()
            .rev()
            .find(|i| i.status == IterStatus::Failed)
            .and_then(|i| i.reason.as_deref())
            .map(|why| format!("; the last: {}", headline(why)))
            .unwrap_or_default();
        let reason = format!(
            "{} iterations failed (max_failures = {}){last}",
            r.failures, config.budget.max_failures
        );
        let why = "stopped: the run failed".to_string();
        end_run(state, fx, (RunStatus::Failed, reason), &why);
        return;
    }
    if r.iterations.len() as u32 >= config.budget.max_iterations {
        if !state.active().is_empty() {
            // One of those still training may yet reach the target.
            return;
        }
        let reason = format!(
            "budget spent: {} of {} iterations without reaching the target",
            r.iterations.len(),
            config.budget.max_iterations
        );
        finish(state, fx, RunStatus::BudgetSpent, reason);
        return;
    }
    fill(state, fx);
}

/// The run is decided (`end`): it is finished now when nothing else trains; otherwise every
/// undecided iteration is stopped with `why` and the run finishes when the last of them has ended
/// (see [`settle_ending`]).
pub(super) fn end_run(state: &mut PipelineState, fx: &mut Fx, end: (RunStatus, String), why: &str) {
    let others: Vec<IterationNo> = state.active().iter().map(|i| i.no).collect();
    let Some(r) = state.run.as_mut() else { return };
    if others.is_empty() {
        let (status, reason) = end;
        finish(state, fx, status, reason);
        return;
    }
    let run = r.id;
    r.ending = Some(end);
    r.pending = None;
    for no in &others {
        if let Some(it) = r.iteration_mut(*no) {
            it.stop_reason = Some(why.to_string());
        }
    }
    state.deferred = None;
    for no in others {
        fx.iteration_event(
            state,
            (run, no),
            "train",
            Level::Warn,
            format!("{why}; stopping"),
        );
        let reason = why.to_string();
        fx.push(Effect::StopContainer { run, no, reason });
    }
}

/// The history cannot be written any more: what waits is dropped, and the current run stops as
/// failed with `error` (its containers stopped first). A failure no tweak can fix.
pub(super) fn history_lost(state: &mut PipelineState, fx: &mut Fx, error: String) {
    state.queued.clear();
    let run = current_run(state);
    fx.event(state, run, "store", Level::Error, error.clone());
    let Some(r) = state
        .run
        .as_mut()
        .filter(|r| r.status == RunStatus::Running)
    else {
        return;
    };
    if r.ending.is_some() {
        // Already stopping its iterations: it ends for this reason instead.
        r.ending = Some((RunStatus::Failed, error));
    } else {
        let why = "the history can no longer be written";
        end_run(state, fx, (RunStatus::Failed, error), why);
    }
}

/// Finishes a decided run once the last iteration it stopped has ended.
pub(super) fn settle_ending(state: &mut PipelineState, fx: &mut Fx) {
    if !state.active().is_empty() {
        return;
    }
    let Some((status, reason)) = state.run.as_mut().and_then(|r| r.ending.take()) else {
        return;
    };
    finish(state, fx, status, reason);
}

/// How many new iterations may start now: the free slots, within `parallel` and what is left of
/// `max_iterations`; none while the run is decided or a proposal waits for the operator.
fn room(state: &PipelineState) -> u32 {
    let Some(r) = state.run.as_ref() else {
        return 0;
    };
    let Some(config) = r.config.as_ref() else {
        return 0;
    };
    if r.status != RunStatus::Running || r.ending.is_some() || r.pending.is_some() {
        return 0;
    }
    let budget = &config.budget;
    let active = state.active().len() as u32;
    let left = budget
        .max_iterations
        .saturating_sub(r.iterations.len() as u32);
    budget
        .parallel
        .saturating_sub(active)
        .min(state.capacity())
        .min(left)
}

/// Keeps the free slots busy: first with the trials of lost engines, then asks the run's strategy for as many points as may start (told which
/// points are still training) and starts them; one at a time when the operator approves each, or
/// while the loop is paused (the point waits for resume). The run ends when the space is exhausted
/// and nothing trains any more.
pub(super) fn fill(state: &mut PipelineState, fx: &mut Fx) {
    // Trials of a lost engine take the free slots before new points do.
    super::engines::migrate(state, fx);
    let mut k = room(state);
    if k == 0 {
        return;
    }
    let ask = state.apply_mode() == ApplyMode::Ask && state.interactive;
    if ask {
        k = 1;
    } else if state.paused {
        if state.deferred.is_some() {
            return;
        }
        k = 1;
    }
    let Some(r) = state.run.as_ref() else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(last) = r.iterations.last() else {
        return;
    };
    let current = last.params.clone();
    let from = last.no;
    let history = tried(r);
    let pending: Vec<Params> = state.active().iter().map(|i| i.params.clone()).collect();
    let mut strategy = tweak::strategy_for(&config.tweak);
    end_evaluation(state, fx);
    let search = tweak::Search {
        space: &config.tweak.space,
        metric: &config.metric,
        current: &current,
        history: &history,
        pending: &pending,
        seed: config.tweak.seed,
    };
    let proposals = strategy.propose(&search, k as usize);
    if proposals.is_empty() {
        exhausted(state, fx);
        return;
    }
    for p in proposals {
        if ask {
            offer(state, fx, p, from);
            return;
        }
        // A point the source cannot take asks again on its own, and may have filled the slots.
        if room(state) == 0 {
            return;
        }
        apply_proposal(state, fx, p, "");
    }
}

/// The strategy has nothing left to try: the run ends once nothing trains any more.
fn exhausted(state: &mut PipelineState, fx: &mut Fx) {
    if !state.active().is_empty() {
        return;
    }
    fx.stage(
        state,
        Stage::Tweak,
        StageStatus::Failed,
        "search space exhausted",
    );
    let reason =
        "budget spent: the search space is exhausted (every dimension at its end)".to_string();
    finish(state, fx, RunStatus::BudgetSpent, reason);
}

/// An evaluation in progress is done once the loop moves on. A stage already decided keeps its
/// status and end time: Skipped after a failed Train (there was nothing to evaluate), and Passed with
/// the time evaluation ended, not the time a proposal was rejected or approved later.
fn end_evaluation(state: &mut PipelineState, fx: &mut Fx) {
    if state.stage(Stage::Evaluate).status == StageStatus::Running {
        fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
    }
}

/// How much an observation carried over from an earlier commit counts against one of this run: the
/// code changed since, so its value is a hint, not a measurement of today's model.
pub(super) const CARRIED_WEIGHT: f64 = 0.5;

/// What the strategy knows was tried: points carried over from earlier runs (warm start, marked with
/// their origin and down-weighted), rejected points (as failures, with no iteration), then the
/// iterations in order (a pruned one with the last value it reported).
pub(super) fn tried(r: &RunState) -> Vec<Tried> {
    let carried = r.carried.iter().map(|c| Tried {
        pruned: c.pruned,
        weight: CARRIED_WEIGHT,
        origin: Some(c.origin.clone()),
        ..Tried::new(c.params.clone(), c.value, None)
    });
    let rejected = r.rejected.iter().map(|p| Tried::new(p.clone(), None, None));
    // Iterations still training are the strategy's `pending` points, not observations: taken here
    // with no value they would count as failures (the worst value seen) while they may yet win.
    let iterations = r
        .iterations
        .iter()
        .filter(|i| i.status.is_final())
        .map(|i| {
            let value = if i.status == IterStatus::Failed {
                None
            } else {
                i.final_value
            };
            Tried {
                pruned: i.status == IterStatus::Pruned,
                seconds: full_seconds(i),
                ..Tried::new(i.params.clone(), value, Some(i.no))
            }
        });
    carried.chain(rejected).chain(iterations).collect()
}

/// The training seconds a full run of `i` takes, for strategies that weigh cost: the measured wall time
/// of a completed iteration; for a pruned one, its time scaled from the epochs it ran to the epochs the
/// script announced. `None` when unknown (not finished, failed, or a pruned script that gave no total).
fn full_seconds(i: &IterState) -> Option<f64> {
    let (Some(start), Some(end)) = (i.started_ms, i.finished_ms) else {
        return None;
    };
    let spent = (end - start) as f64 / 1000.0;
    match i.status {
        IterStatus::Succeeded | IterStatus::BelowTarget if spent > 0.0 => Some(spent),
        IterStatus::Pruned => {
            let ran = i.points.iter().filter_map(|(e, _)| *e).max()?;
            let total = i.epochs?;
            (ran > 0 && total >= ran && spent > 0.0)
                .then(|| spent * f64::from(total) / f64::from(ran))
        }
        _ => None,
    }
}

/// Keeps `p` for the operator to approve, reject or edit.
fn offer(state: &mut PipelineState, fx: &mut Fx, p: Proposal, from: IterationNo) {
    let Some(run) = state.run.as_ref().map(|r| r.id) else {
        return;
    };
    fx.stage(
        state,
        Stage::Tweak,
        StageStatus::Running,
        "awaiting approval",
    );
    let text = format!(
        "proposed {} — {}; waiting for approval (a approve, x reject, e edit)",
        p.summary(),
        p.reason
    );
    if let Some(r) = state.run.as_mut() {
        r.pending = Some(p);
    }
    let tag = format!("tweak:{from}→{}", from.next());
    fx.event(state, Some(run), &tag, Level::Info, text);
}

/// Starts the iteration `p` proposes; `how` says who applied it (`approved`, `auto-applied`), if
/// anyone did.
pub(super) fn apply_proposal(state: &mut PipelineState, fx: &mut Fx, p: Proposal, how: &str) {
    let Some(r) = state.run.as_ref() else { return };
    let from = r.iterations.last().map(|i| i.no).unwrap_or(IterationNo(0));
    let run = r.id;
    let tag = format!("tweak:{from}→{}", from.next());
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" ({how})")
    };
    fx.stage(state, Stage::Tweak, StageStatus::Passed, &p.summary());
    fx.event(
        state,
        Some(run),
        &tag,
        Level::Info,
        format!("{}{how} — {}", p.summary(), p.reason),
    );
    start_iteration(state, fx, p.params, Some(p.reason));
}

#[cfg(test)]
mod seconds_tests {
    use super::*;

    fn iteration(
        status: IterStatus,
        points: &[(Option<u32>, f64)],
        epochs: Option<u32>,
    ) -> IterState {
        let mut i = IterState::new(IterationNo(1), Params::new(), None);
        i.status = status;
        i.started_ms = Some(10_000);
        i.finished_ms = Some(14_000);
        i.points = points.to_vec();
        i.epochs = epochs;
        i
    }

    #[test]
    fn a_completed_iteration_costs_its_wall_time() {
        let i = iteration(IterStatus::BelowTarget, &[(Some(1), 0.5)], Some(1));
        assert_eq!(full_seconds(&i), Some(4.0));
    }

    #[test]
    fn a_pruned_iteration_costs_its_time_scaled_to_every_epoch() {
        let i = iteration(
            IterStatus::Pruned,
            &[(Some(1), 0.3), (Some(2), 0.4)],
            Some(10),
        );
        assert_eq!(full_seconds(&i), Some(20.0));
        let no_total = iteration(IterStatus::Pruned, &[(Some(2), 0.4)], None);
        assert_eq!(full_seconds(&no_total), None);
    }

    #[test]
    fn a_failed_or_unfinished_iteration_has_no_cost() {
        assert_eq!(
            full_seconds(&iteration(IterStatus::Failed, &[], None)),
            None
        );
        let mut running = iteration(IterStatus::Running, &[], None);
        running.finished_ms = None;
        assert_eq!(full_seconds(&running), None);
    }
}
