//! Pruning and warm start, fed through `update` like the runtime does.

use std::path::{Path, PathBuf};

use super::tests::{RUN, commit, events, plan};
use super::*;
use crate::core::config::{Config, Params};
use crate::core::ids::{ContainerId, IterationNo};
use crate::core::metrics::Observation;
use crate::core::model::{ExitStatus, ImageSpec, IterStatus, RunStatus};
use crate::engine::state::Carried;
use crate::engine::trigger::Trigger;

const TOML: &str = r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.95
[budget]
max_iterations = MAX
max_failures = 0
[tweak]
strategy = "grow"
[tweak.space]
filters = { start = 8, max = 64, factor = 2 }
epochs = { values = [2, 4] }
[tweak.pruning]
rule = "median"
warmup = 1
min_trials = 2
"#;

fn config(max_iterations: u32) -> Config {
    let text = TOML.replace("MAX", &max_iterations.to_string());
    Config::parse(&text, Path::new("mlops.toml")).unwrap()
}

/// Drives a run up to the start of iteration 1; `carried` is what the store answered for a warm run.
fn start(
    max_iterations: u32,
    cold: bool,
    carried: Option<Vec<Carried>>,
) -> (PipelineState, Vec<Effect>, Vec<Effect>) {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.cold = cold;
    let request = Msg::RunRequested {
        commit: commit("b"),
        trigger: Trigger::Start,
    };
    update(&mut s, request, 0);
    let created = Msg::RunCreated {
        run: RUN,
        commit: commit("b"),
    };
    let prepare = update(&mut s, created, 1);
    if let Some(observations) = carried {
        update(
            &mut s,
            Msg::Carried {
                run: RUN,
                observations,
            },
            1,
        );
    }
    let prepared = Msg::Prepared {
        run: RUN,
        config: Box::new(config(max_iterations)),
        workspace: PathBuf::from("/w"),
        image_reason: "mlp (numpy)".into(),
        image: ImageSpec::Profile(crate::adapters::images::profile("numpy").unwrap()),
        knobs: Box::default(),
        warnings: Vec::new(),
    };
    update(&mut s, prepared, 2);
    let ready = Msg::ImageReady {
        run: RUN,
        image: "mlops-tui/numpy:x".into(),
    };
    let fx = update(&mut s, ready, 3);
    (s, prepare, fx)
}

fn started(s: &mut PipelineState, no: u32) {
    let msg = Msg::ContainerStarted {
        run: RUN,
        no: IterationNo(no),
        id: ContainerId(format!("c{no}")),
        workdir: PathBuf::from(format!("/d/iter-{no}")),
    };
    update(s, msg, 10);
}

fn epoch(s: &mut PipelineState, no: u32, epoch: Option<u32>, value: f64) -> Vec<Effect> {
    let obs = Observation {
        epoch,
        epochs: Some(3),
        value,
    };
    let msg = Msg::Metric {
        run: RUN,
        no: IterationNo(no),
        obs,
    };
    update(s, msg, 11)
}

fn exit(s: &mut PipelineState, no: u32, code: i64, cause: Option<&str>) -> Vec<Effect> {
    let msg = Msg::Exited {
        run: RUN,
        no: IterationNo(no),
        status: Some(ExitStatus {
            code,
            oom_killed: false,
        }),
        cause: cause.map(str::to_string),
    };
    update(s, msg, 20)
}

/// Trains iteration `no` to its end with one value per epoch.
fn complete(s: &mut PipelineState, no: u32, curve: &[f64]) -> Vec<Effect> {
    started(s, no);
    for (e, v) in curve.iter().enumerate() {
        let fx = epoch(s, no, Some(e as u32 + 1), *v);
        assert!(
            !stops(&fx),
            "iteration {no} stopped at epoch {}: {fx:?}",
            e + 1
        );
    }
    exit(s, no, 0, None)
}

fn stops(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::StopContainer { .. }))
}

fn stop_reason(fx: &[Effect]) -> Option<String> {
    fx.iter().find_map(|e| match e {
        Effect::StopContainer { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// Two finished iterations, then a third that lags at epoch 2 and is told to stop.
fn lagging_third(max_iterations: u32) -> PipelineState {
    let (mut s, _, _) = start(max_iterations, true, None);
    complete(&mut s, 1, &[0.5, 0.7, 0.8]);
    complete(&mut s, 2, &[0.6, 0.75, 0.85]);
    started(&mut s, 3);
    assert!(!stops(&epoch(&mut s, 3, Some(1), 0.1)), "epoch 1 is warmup");
    let fx = epoch(&mut s, 3, Some(2), 0.4);
    assert_eq!(
        stop_reason(&fx).as_deref(),
        Some("pruned at epoch 2: 0.4 < median 0.725 at epoch 2")
    );
    s
}

#[test]
fn a_lagging_iteration_is_stopped_and_pruned_not_failed() {
    let mut s = lagging_third(6);
    // A value arriving before the stop takes effect asks for nothing more.
    assert!(!stops(&epoch(&mut s, 3, Some(3), 0.41)));
    let fx = exit(
        &mut s,
        3,
        143,
        Some("pruned at epoch 2: 0.4 < median 0.725 at epoch 2"),
    );
    let r = s.run.as_ref().unwrap();
    let it = r.iteration(IterationNo(3)).unwrap();
    assert_eq!(it.status, IterStatus::Pruned);
    assert_eq!(
        it.reason.as_deref(),
        Some("pruned at epoch 2: 0.4 < median 0.725 at epoch 2")
    );
    assert_eq!(r.failures, 0, "a pruned iteration is no failure");
    assert_eq!(
        r.best,
        Some(IterationNo(2)),
        "a partial value is never the best"
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Release { no, .. } if *no == IterationNo(3)))
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Revive { .. })));
    assert_eq!(plan(&fx).no, IterationNo(4), "the loop goes on");
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| e == "[evaluate:3] pruned at epoch 2: 0.4 < median 0.725 at epoch 2"),
        "{ev:?}"
    );
    // The strategy sees the point as tried, with the last value it reported.
    let tried = next::tried(r);
    let third = tried
        .iter()
        .find(|t| t.iteration == Some(IterationNo(3)))
        .unwrap();
    assert_eq!(third.value, Some(0.41));
    assert!(third.pruned);
    assert_eq!(third.weight, 1.0);
}

#[test]
fn a_pruned_iteration_counts_against_the_budget() {
    let mut s = lagging_third(3);
    let fx = exit(&mut s, 3, 143, Some("pruned"));
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::FinishRun {
                status: RunStatus::BudgetSpent,
                ..
            }
        )),
        "{fx:?}"
    );
}

#[test]
fn a_pruned_container_killed_from_outside_is_not_revived() {
    let mut s = lagging_third(6);
    // The stop reached the container as a SIGKILL the worker did not report as its own.
    let fx = exit(&mut s, 3, 137, None);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Revive { .. })),
        "{fx:?}"
    );
    let it = s.run.as_ref().unwrap().iteration(IterationNo(3)).unwrap();
    assert_eq!(it.status, IterStatus::Pruned);
    assert_eq!(it.revivals, 0);
}

#[test]
fn a_script_that_ends_before_the_stop_is_scored() {
    let mut s = lagging_third(6);
    let fx = exit(&mut s, 3, 0, None);
    let it = s.run.as_ref().unwrap().iteration(IterationNo(3)).unwrap();
    assert_eq!(it.status, IterStatus::BelowTarget, "{fx:?}");
}

#[test]
fn metrics_without_epochs_are_never_pruned() {
    let (mut s, _, _) = start(6, true, None);
    complete(&mut s, 1, &[0.5, 0.7, 0.8]);
    complete(&mut s, 2, &[0.6, 0.75, 0.85]);
    started(&mut s, 3);
    for v in [0.01, 0.02, 0.03] {
        assert!(!stops(&epoch(&mut s, 3, None, v)));
    }
}

#[test]
fn pruning_off_never_stops() {
    let (mut s, _, _) = start(6, true, None);
    if let Some(c) = s.run.as_mut().and_then(|r| r.config.as_mut()) {
        c.tweak.pruning.rule = crate::core::config::PruneRule::Off;
    }
    complete(&mut s, 1, &[0.5, 0.7, 0.8]);
    complete(&mut s, 2, &[0.6, 0.75, 0.85]);
    started(&mut s, 3);
    for (e, v) in [0.01, 0.02, 0.03].iter().enumerate() {
        assert!(!stops(&epoch(&mut s, 3, Some(e as u32 + 1), *v)));
    }
}

fn params(filters: i64, epochs: i64) -> Params {
    [
        ("epochs".to_string(), serde_json::json!(epochs)),
        ("filters".to_string(), serde_json::json!(filters)),
    ]
    .into_iter()
    .collect()
}

fn earlier() -> Vec<Carried> {
    let c = |filters, epochs, value, pruned, origin: &str| Carried {
        params: params(filters, epochs),
        value,
        pruned,
        origin: origin.into(),
    };
    vec![
        c(8, 2, Some(0.7), false, "run 2 @ 0a0a0a0"),
        c(16, 4, Some(0.93), false, "run 3 @ 1a2b3c4"),
        c(32, 2, Some(0.97), true, "run 3 @ 1a2b3c4"),
        c(64, 4, None, false, "run 3 @ 1a2b3c4"),
    ]
}

#[test]
fn a_warm_run_trains_the_earlier_best_first() {
    let (s, prepare, fx) = start(6, false, Some(earlier()));
    assert!(
        prepare
            .iter()
            .any(|e| matches!(e, Effect::Prepare { warm: true, .. }))
    );
    let p = plan(&fx);
    assert_eq!(
        p.params,
        params(16, 4),
        "the best completed point, not the pruned one"
    );
    assert_eq!(
        p.proposal_reason.as_deref(),
        Some("warm start: best of run 3 @ 1a2b3c4 (accuracy 0.93)")
    );
    let r = s.run.as_ref().unwrap();
    assert_eq!(r.carried, earlier());
}

#[test]
fn carried_observations_come_first_in_the_history() {
    let (mut s, _, _) = start(6, false, Some(earlier()));
    complete(&mut s, 1, &[0.6, 0.8, 0.9]);
    let r = s.run.as_ref().unwrap();
    let tried = next::tried(r);
    assert_eq!(
        tried.len(),
        5,
        "4 carried and iteration 1; iteration 2, just started, is pending, not tried"
    );
    assert_eq!(tried[4].iteration, Some(IterationNo(1)));
    assert!(tried[..4].iter().all(|t| t.iteration.is_none()));
    assert_eq!(tried[1].params, params(16, 4));
    assert_eq!(tried[1].value, Some(0.93));
    assert_eq!(tried[3].value, None, "a failed point carries no value");
    assert!(tried[2].pruned && !tried[1].pruned);
    for t in &tried[..4] {
        assert_eq!(t.weight, 0.5);
        assert!(t.origin.as_deref().is_some_and(|o| o.starts_with("run ")));
    }
    assert_eq!(tried[1].origin.as_deref(), Some("run 3 @ 1a2b3c4"));
    assert_eq!(tried[4].iteration, Some(IterationNo(1)));
    assert_eq!((tried[4].weight, tried[4].origin.clone()), (1.0, None));
}

#[test]
fn an_earlier_best_outside_todays_space_starts_from_the_start() {
    let mut carried = earlier();
    carried[1].params = params(128, 4);
    carried.truncate(2);
    let (_, _, fx) = start(6, false, Some(carried));
    let p = plan(&fx);
    assert_eq!(p.params, params(8, 2));
    let why = p.proposal_reason.clone().unwrap_or_default();
    assert!(
        why.starts_with("warm start: best of run 3 @ 1a2b3c4 (accuracy 0.93) lies outside"),
        "{why}"
    );
}

#[test]
fn a_cold_run_reads_nothing_and_starts_from_the_start() {
    let (s, prepare, fx) = start(6, true, None);
    assert!(
        prepare
            .iter()
            .any(|e| matches!(e, Effect::Prepare { warm: false, .. }))
    );
    let p = plan(&fx);
    assert_eq!(p.params, params(8, 2));
    assert_eq!(p.proposal_reason, None);
    assert!(s.run.as_ref().unwrap().carried.is_empty());
}
