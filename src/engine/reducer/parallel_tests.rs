//! Trials side by side (`[budget] parallel`): filling the free slots, placing each iteration, the
//! budget over all of them, and stopping the others when one reaches the target.

use std::path::{Path, PathBuf};

use super::tests::{RUN, commit, events, exit, train};
use super::*;
use crate::core::config::{Config, EngineLimits, Params};
use crate::core::ids::IterationNo;
use crate::core::model::{ImageSpec, IterStatus, RunStatus};
use crate::engine::msg::{Health, IterationPlan, Operator};
use crate::engine::state::EngineState;
use crate::engine::trigger::Trigger;

const TOML: &str = r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = MAX
max_failures = 1
parallel = PARALLEL
[tweak]
strategy = "random"
apply = "APPLY"
[tweak.space]
k = { values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }
"#;

fn config(parallel: u32, max: u32, apply: &str) -> Config {
    let text = TOML
        .replace("PARALLEL", &parallel.to_string())
        .replace("MAX", &max.to_string())
        .replace("APPLY", apply);
    Config::parse(&text, Path::new("mlops.toml")).unwrap()
}

fn engine(name: &str, slots: u32) -> EngineState {
    EngineState {
        name: name.into(),
        endpoint: format!("tcp://{name}:2376"),
        slots,
        up: Some(true),
        down_since_ms: None,
        detail: String::new(),
        nodes: None,
    }
}

/// A state whose run has its image, on `engines`, and the effects of the image being ready.
fn ready(
    config: Config,
    engines: Vec<EngineState>,
    interactive: bool,
) -> (PipelineState, Vec<Effect>) {
    let mut s = PipelineState::new(PathBuf::from("/p"), interactive);
    s.engines = engines;
    prepare_on(&mut s, config, Vec::new())
}

/// Runs `s` up to the image being ready, its engines reporting `limits` while it is prepared.
fn prepare_on(
    s: &mut PipelineState,
    config: Config,
    limits: Vec<(String, EngineLimits)>,
) -> (PipelineState, Vec<Effect>) {
    let s = &mut *s;
    let (c, trigger) = (commit("a"), Trigger::Start);
    update(s, Msg::RunRequested { commit: c, trigger }, 0);
    update(
        s,
        Msg::RunCreated {
            run: RUN,
            commit: commit("a"),
        },
        1,
    );
    update(s, Msg::EngineLimits { run: RUN, limits }, 2);
    update(
        s,
        Msg::Prepared {
            run: RUN,
            config: Box::new(config),
            workspace: PathBuf::from("/w"),
            image_reason: "sklearn".into(),
            image: ImageSpec::Profile(crate::adapters::images::profile("sklearn").unwrap()),
            knobs: Box::default(),
            warnings: Vec::new(),
        },
        2,
    );
    let image = "mlops-tui/sklearn:x".to_string();
    let fx = update(s, Msg::ImageReady { run: RUN, image }, 3);
    (s.clone(), fx)
}

fn plans(fx: &[Effect]) -> Vec<&IterationPlan> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartIteration(p) => Some(&**p),
            _ => None,
        })
        .collect()
}

fn stops(fx: &[Effect]) -> Vec<(u32, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StopContainer { no, reason, .. } => Some((no.0, reason.clone())),
            _ => None,
        })
        .collect()
}

fn status(s: &PipelineState, no: u32) -> IterStatus {
    s.run
        .as_ref()
        .and_then(|r| r.iteration(IterationNo(no)))
        .map(|i| i.status)
        .unwrap()
}

fn run_status(s: &PipelineState) -> RunStatus {
    s.run.as_ref().unwrap().status
}

#[test]
fn a_run_starts_as_many_distinct_points_as_parallel_allows() {
    let (s, fx) = ready(config(3, 10, "auto"), vec![engine("local", 3)], false);
    let started = plans(&fx);
    assert_eq!(started.len(), 3, "{fx:?}");
    let nos: Vec<u32> = started.iter().map(|p| p.no.0).collect();
    assert_eq!(nos, [1, 2, 3]);
    assert_eq!(started[0].change, "starting parameters");
    let points: Vec<&Params> = started.iter().map(|p| &p.params).collect();
    assert!(points[0] != points[1] && points[1] != points[2] && points[0] != points[2]);
    assert_eq!(s.active().len(), 3);
    assert_eq!(s.free_slots("local"), 0);
}

#[test]
fn parallel_is_bounded_by_the_free_slots_and_one_at_a_time_stays_one() {
    let (_, fx) = ready(config(4, 10, "auto"), vec![engine("local", 2)], false);
    assert_eq!(plans(&fx).len(), 2);
    let (_, fx) = ready(config(1, 10, "auto"), vec![engine("local", 3)], false);
    assert_eq!(plans(&fx).len(), 1);
}

#[test]
fn each_iteration_goes_to_the_engine_with_the_most_free_slots() {
    let engines = vec![engine("e1", 1), engine("e2", 2), engine("e3", 1)];
    let (s, fx) = ready(config(3, 10, "auto"), engines, false);
    let placed: Vec<String> = s
        .active()
        .iter()
        .map(|i| i.engine.clone().unwrap())
        .collect();
    assert_eq!(placed, ["e2", "e1", "e2"]);
    let texts = events(&fx);
    assert!(
        texts.contains(&"[place:1] iteration 1 → e2 (2 of 2 slots free)".to_string()),
        "{texts:?}"
    );
    assert!(texts.contains(&"[place:2] iteration 2 → e1 (1 of 1 slots free)".to_string()));
    let it = s.run.as_ref().unwrap().iteration(IterationNo(3)).unwrap();
    assert_eq!(it.placements.len(), 1);
    assert_eq!(it.placements[0].reason, "first placement");
    assert_eq!(s.free_slots("e3"), 1);
}

#[test]
fn an_iteration_below_target_frees_its_slot_for_a_new_point_told_what_trains() {
    let (mut s, _) = ready(config(2, 10, "auto"), vec![engine("local", 2)], false);
    let running = s.run.as_ref().unwrap().iteration(IterationNo(2)).unwrap();
    let still = running.params.clone();
    let fx = train(&mut s, 1, &[0.4], 0);
    let started = plans(&fx);
    assert_eq!(started.len(), 1, "{fx:?}");
    assert_eq!(started[0].no, IterationNo(3));
    assert_ne!(started[0].params, still);
    assert_eq!(status(&s, 1), IterStatus::BelowTarget);
}

#[test]
fn the_first_to_reach_the_target_stops_the_others_and_the_run_succeeds_once_they_end() {
    let (mut s, _) = ready(config(3, 10, "auto"), vec![engine("local", 3)], false);
    for no in [1, 3] {
        update(
            &mut s,
            Msg::ContainerStarted {
                run: RUN,
                no: IterationNo(no),
                id: crate::core::ids::ContainerId(format!("{no}").repeat(64)),
                workdir: PathBuf::from(format!("/d/iter-{no}")),
            },
            5,
        );
    }
    let fx = train(&mut s, 2, &[0.95], 0);
    let why = "stopped: iteration 2 reached the target".to_string();
    assert_eq!(stops(&fx), [(1, why.clone()), (3, why.clone())]);
    assert!(plans(&fx).is_empty());
    assert_eq!(status(&s, 2), IterStatus::Succeeded);
    assert_eq!(run_status(&s), RunStatus::Running, "waits for the others");
    // A stop ends with a signal: neither a failure nor a death to revive.
    let fx = exit(&mut s, 1, 143, false, 30);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Revive { .. })));
    assert_eq!(status(&s, 1), IterStatus::Stopped);
    assert_eq!(s.run.as_ref().unwrap().failures, 0);
    assert_eq!(run_status(&s), RunStatus::Running);
    let fx = exit(&mut s, 3, 137, false, 31);
    assert_eq!(status(&s, 3), IterStatus::Stopped);
    let r = s.run.as_ref().unwrap();
    assert_eq!(
        r.iteration(IterationNo(3)).unwrap().reason.as_deref(),
        Some(why.as_str())
    );
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .starts_with("target reached at iteration 2")
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::FinishRun {
            status: RunStatus::Succeeded,
            ..
        }
    )));
    // A stopped iteration never comes back.
    let fx = exit(&mut s, 3, 0, false, 32);
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn the_budget_counts_every_started_iteration_and_waits_for_those_still_training() {
    let (mut s, fx) = ready(config(3, 4, "auto"), vec![engine("local", 3)], false);
    assert_eq!(plans(&fx).len(), 3);
    let fx = train(&mut s, 1, &[0.5], 0);
    assert_eq!(plans(&fx).len(), 1, "the fourth and last");
    let fx = train(&mut s, 2, &[0.5], 0);
    assert!(plans(&fx).is_empty(), "{fx:?}");
    assert_eq!(run_status(&s), RunStatus::Running);
    train(&mut s, 4, &[0.6], 0);
    assert_eq!(run_status(&s), RunStatus::Running);
    let fx = train(&mut s, 3, &[0.5], 0);
    assert!(plans(&fx).is_empty());
    assert_eq!(run_status(&s), RunStatus::BudgetSpent);
    assert_eq!(s.run.as_ref().unwrap().iterations.len(), 4);
}

#[test]
fn spending_the_failure_allowance_stops_the_others_as_stopped_not_failed() {
    let (mut s, _) = ready(config(3, 10, "auto"), vec![engine("local", 3)], false);
    let fx = train(&mut s, 1, &[], 1);
    assert_eq!(
        plans(&fx).len(),
        1,
        "a failure within the allowance frees a slot"
    );
    let fx = train(&mut s, 2, &[], 1);
    let stopped = stops(&fx);
    let why = "stopped: the run failed".to_string();
    assert_eq!(stopped, [(3, why.clone()), (4, why)], "{fx:?}");
    exit(&mut s, 3, 143, false, 40);
    assert_eq!(run_status(&s), RunStatus::Running);
    exit(&mut s, 4, 143, false, 41);
    assert_eq!(status(&s, 3), IterStatus::Stopped);
    assert_eq!(status(&s, 4), IterStatus::Stopped);
    assert_eq!(s.run.as_ref().unwrap().failures, 2);
    assert_eq!(run_status(&s), RunStatus::Failed);
}

#[test]
fn with_ask_the_operator_approves_one_proposal_at_a_time() {
    let (mut s, fx) = ready(config(3, 10, "ask"), vec![engine("local", 3)], true);
    assert_eq!(plans(&fx).len(), 1, "the starting point needs no approval");
    assert!(s.run.as_ref().unwrap().pending.is_some());
    let fx = update(&mut s, Msg::Operator(Operator::Approve), 5);
    assert_eq!(plans(&fx).len(), 1);
    assert!(
        s.run.as_ref().unwrap().pending.is_some(),
        "the third slot's"
    );
    let fx = update(&mut s, Msg::Operator(Operator::Approve), 6);
    assert_eq!(plans(&fx).len(), 1);
    assert!(s.run.as_ref().unwrap().pending.is_none(), "no slot left");
    assert_eq!(s.active().len(), 3);
}

#[test]
fn pause_keeps_one_point_and_resume_fills_every_slot() {
    let (mut s, _) = ready(config(3, 10, "auto"), vec![engine("local", 3)], false);
    update(&mut s, Msg::Operator(Operator::Pause(true)), 5);
    let fx = train(&mut s, 1, &[0.5], 0);
    assert!(plans(&fx).is_empty());
    let fx = train(&mut s, 2, &[0.5], 0);
    assert!(plans(&fx).is_empty());
    assert!(s.deferred.is_some());
    let fx = update(&mut s, Msg::Operator(Operator::Pause(false)), 9);
    assert_eq!(plans(&fx).len(), 2, "{fx:?}");
    assert_eq!(s.active().len(), 3);
}

#[test]
fn the_operator_stops_every_running_iteration() {
    let (mut s, _) = ready(config(2, 10, "auto"), vec![engine("local", 2)], false);
    for no in [1, 2] {
        update(
            &mut s,
            Msg::ContainerStarted {
                run: RUN,
                no: IterationNo(no),
                id: crate::core::ids::ContainerId(format!("{no}").repeat(64)),
                workdir: PathBuf::from(format!("/d/iter-{no}")),
            },
            5,
        );
    }
    let fx = update(&mut s, Msg::Operator(Operator::StopTraining), 6);
    assert_eq!(stops(&fx).len(), 2);
}

fn engine_msg(s: &mut PipelineState, name: &str, up: bool, now: i64) -> Vec<Effect> {
    let detail = if up { "up" } else { "connection refused" };
    let msg = Msg::Health(Health::of(name, up, detail));
    update(s, msg, now)
}

fn epochs(s: &mut PipelineState, no: u32, upto: u32) {
    update(
        s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(no),
            id: crate::core::ids::ContainerId(format!("{no}").repeat(64)),
            workdir: PathBuf::from(format!("/d/iter-{no}")),
        },
        5,
    );
    for epoch in 1..=upto {
        let obs = crate::core::metrics::Observation {
            epoch: Some(epoch),
            epochs: Some(10),
            value: 0.5,
        };
        let (run, no) = (RUN, IterationNo(no));
        update(s, Msg::Metric { run, no, obs }, 6);
    }
}

fn moves(fx: &[Effect]) -> Vec<(u32, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::MoveIteration(p) => Some((p.no.0, p.engine.clone().unwrap())),
            _ => None,
        })
        .collect()
}

fn engine_of(s: &PipelineState, no: u32) -> String {
    let r = s.run.as_ref().unwrap();
    r.iteration(IterationNo(no))
        .unwrap()
        .engine
        .clone()
        .unwrap()
}

#[test]
fn a_trial_moves_off_an_engine_down_past_the_grace_and_resumes_from_its_epoch() {
    let engines = vec![engine("e1", 1), engine("e2", 1), engine("e3", 1)];
    let (mut s, fx) = ready(config(2, 10, "auto"), engines, false);
    assert_eq!(plans(&fx).len(), 2);
    assert_eq!(
        (engine_of(&s, 1), engine_of(&s, 2)),
        ("e1".into(), "e2".into())
    );
    epochs(&mut s, 1, 3);
    let fx = engine_msg(&mut s, "e1", false, 1_000);
    assert!(moves(&fx).is_empty(), "within the grace nothing moves");
    assert!(
        events(&fx)
            .iter()
            .any(|e| e.contains("engine e1 unreachable")),
        "{fx:?}"
    );
    let fx = engine_msg(&mut s, "e1", false, 15_000);
    assert!(moves(&fx).is_empty());
    let fx = engine_msg(&mut s, "e1", false, 21_000);
    assert_eq!(moves(&fx), [(1, "e3".to_string())], "{fx:?}");
    assert!(plans(&fx).is_empty(), "no new point takes a slot");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SavePlacement { no, .. } if no.0 == 1))
    );
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    assert_eq!(it.status, IterStatus::Running, "neither failed nor revived");
    let reasons: Vec<&str> = it.placements.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "first placement",
            "moved: engine e1 unreachable for 20s; resumes from epoch 3"
        ]
    );
    // Later reports of the same outage move nothing twice.
    let fx = engine_msg(&mut s, "e1", false, 23_000);
    assert!(moves(&fx).is_empty());
    // The resumed script repeats epoch 3: one point per epoch.
    epochs(&mut s, 1, 4);
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    let seen: Vec<Option<u32>> = it.points.iter().map(|(e, _)| *e).collect();
    assert_eq!(seen, [Some(1), Some(2), Some(3), Some(4)]);
}

#[test]
fn a_stranded_trial_waits_for_a_slot_and_takes_it_before_any_new_point() {
    let engines = vec![engine("e1", 1), engine("e2", 1)];
    let (mut s, _) = ready(config(2, 10, "auto"), engines, false);
    epochs(&mut s, 1, 2);
    // The helpers' iteration ends at t = 20 ms: the outage began long before.
    engine_msg(&mut s, "e1", false, -40_000);
    let fx = engine_msg(&mut s, "e1", false, -10_000);
    assert!(moves(&fx).is_empty(), "no free slot anywhere: it waits");
    let fx = train(&mut s, 2, &[0.5], 0);
    assert_eq!(moves(&fx), [(1, "e2".to_string())], "{fx:?}");
    assert!(plans(&fx).is_empty(), "{fx:?}");
}

#[test]
fn an_engine_back_is_reconciled_keeping_only_what_is_placed_on_it() {
    let engines = vec![engine("e1", 1), engine("e2", 1), engine("e3", 1)];
    let (mut s, _) = ready(config(2, 10, "auto"), engines, false);
    epochs(&mut s, 1, 1);
    engine_msg(&mut s, "e1", false, 1_000);
    engine_msg(&mut s, "e1", false, 25_000);
    assert_eq!(engine_of(&s, 1), "e3");
    let fx = engine_msg(&mut s, "e1", true, 26_000);
    let keep = fx.iter().find_map(|e| match e {
        Effect::Reconcile { engine, keep } if engine == "e1" => Some(keep.clone()),
        _ => None,
    });
    assert_eq!(
        keep,
        Some(Vec::new()),
        "iteration 1 is on e3 now: e1's copy is an orphan"
    );
    assert!(
        events(&fx)
            .iter()
            .any(|e| e.contains("engine e1 reachable again"))
    );
    let e1 = s.engines.iter().find(|e| e.name == "e1").unwrap();
    assert_eq!((e1.up, e1.down_since_ms), (Some(true), None));
    // Back within the grace: what runs there stays.
    engine_msg(&mut s, "e2", false, 27_000);
    let fx = engine_msg(&mut s, "e2", true, 28_000);
    let keep = fx.iter().find_map(|e| match e {
        Effect::Reconcile { keep, .. } => Some(keep.clone()),
        _ => None,
    });
    assert_eq!(keep, Some(vec![(RUN, IterationNo(2))]));
}

/// The texts of the state's event log.
fn logged(s: &PipelineState) -> Vec<String> {
    s.events.iter().map(|e| e.text.clone()).collect()
}

fn two_cpus() -> EngineLimits {
    EngineLimits {
        cpus: 2,
        memory_bytes: 24 << 30,
        hosts: 1,
    }
}

/// `parallel = 50` on the implicit local engine with 2 CPUs, each trial held to 1 CPU: 2 start, and
/// the event log says why.
#[test]
fn parallel_is_capped_by_what_the_local_engine_holds_and_says_so() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.engines = vec![engine("local", 1)];
    s.slots_follow_parallel = true;
    let limits = vec![("local".to_string(), two_cpus())];
    let (s, fx) = prepare_on(&mut s, config(50, 100, "auto"), limits);
    assert_eq!(plans(&fx).len(), 2, "{fx:?}");
    assert_eq!(s.engines[0].slots, 2);
    let said = logged(&s);
    assert!(
        said.iter()
            .any(|e| e
                == "parallel = 50 capped to 2: engine local has 2 CPUs and [resources] cpus = 1"),
        "{said:?}"
    );
    // What fits is not capped, and nothing is said.
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.engines = vec![engine("local", 1)];
    s.slots_follow_parallel = true;
    let limits = vec![("local".to_string(), two_cpus())];
    let (s, fx) = prepare_on(&mut s, config(2, 100, "auto"), limits);
    assert_eq!(plans(&fx).len(), 2);
    assert!(!logged(&s).iter().any(|e| e.contains("capped")));
}

/// A configured engine keeps the slots it was given when they fit and is capped when not; one that
/// did not answer keeps them. A later run with smaller containers gets the given slots back.
#[test]
fn configured_slots_are_capped_per_engine_and_given_back() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.engines = vec![engine("local", 1), engine("e1", 4), engine("e2", 3)];
    s.configured_slots = [("local", 1), ("e1", 4), ("e2", 3)]
        .map(|(n, k)| (n.to_string(), k))
        .into();
    let limits = vec![
        ("local".to_string(), two_cpus()),
        ("e1".to_string(), two_cpus()),
    ];
    let (s2, _) = prepare_on(&mut s, config(8, 100, "auto"), limits.clone());
    let slots: Vec<u32> = s2.engines.iter().map(|e| e.slots).collect();
    assert_eq!(slots, [1, 2, 3]);
    assert!(
        logged(&s2).iter().any(
            |e| e == "engine e1: slots = 4 capped to 2: it has 2 CPUs and [resources] cpus = 1"
        ),
        "{:?}",
        logged(&s2)
    );
    let mut half = config(8, 100, "auto");
    half.resources.cpus = 0.5;
    let mut s3 = PipelineState::new(PathBuf::from("/p"), false);
    s3.engines = s2.engines.clone();
    s3.configured_slots = s2.configured_slots.clone();
    let (s3, _) = prepare_on(&mut s3, half, limits);
    let slots: Vec<u32> = s3.engines.iter().map(|e| e.slots).collect();
    assert_eq!(slots, [1, 4, 3]);
}
