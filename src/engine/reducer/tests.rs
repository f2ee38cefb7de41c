use std::path::{Path, PathBuf};

use super::*;
use crate::adapters::git::RepoError;
use crate::core::config::notify::NotificationKind;
use crate::core::config::{ApplyMode, Config};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::metrics::Observation;
use crate::core::model::Channel;
use crate::core::model::CommitInfo;
use crate::core::model::ContainerAction;
use crate::core::model::ContainerEvent;
use crate::core::model::ExitStatus;
use crate::core::model::ImageSpec;
use crate::core::model::IterStatus;
use crate::core::model::LogLine;
use crate::core::model::NotifyReport;
use crate::core::model::RunStatus;
use crate::core::model::labels;
use crate::engine::msg::{Health, IterationPlan, Operator};
use crate::engine::state::{Stage, StageStatus};
use crate::engine::trigger::Trigger;

const TOML: &str = r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = 3
max_failures = 1
[tweak]
strategy = "grow"
apply = "APPLY"
[tweak.space]
filters = { start = 8, max = 32, factor = 2 }
epochs = { start = 2, max = 4, step = 2 }
"#;

pub(super) fn config(apply: &str) -> Config {
    Config::parse(&TOML.replace("APPLY", apply), Path::new("mlops.toml")).unwrap()
}

pub(super) fn commit(id: &str) -> CommitInfo {
    CommitInfo {
        id: id.repeat(40 / id.len()),
        summary: "tune".into(),
        author: "Ada".into(),
        branch: "main".into(),
        time: 0,
    }
}

pub(super) const RUN: RunId = RunId(7);

/// Drives a state to the point where iteration 1 has been asked to start.
pub(super) fn started(apply: &str, interactive: bool) -> (PipelineState, Vec<Effect>) {
    let mut s = PipelineState::new(PathBuf::from("/p"), interactive);
    let fx = update(
        &mut s,
        Msg::RunRequested {
            commit: commit("a"),
            trigger: Trigger::Start,
        },
        0,
    );
    assert!(
        matches!(fx.as_slice(), [Effect::CreateRun { .. }]),
        "{fx:?}"
    );
    let fx = update(
        &mut s,
        Msg::RunCreated {
            run: RUN,
            commit: commit("a"),
        },
        1,
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Prepare { .. })));
    let fx = update(
        &mut s,
        Msg::Prepared {
            run: RUN,
            config: Box::new(config(apply)),
            workspace: PathBuf::from("/w"),
            image_reason: "cnn (torch)".into(),
            image: ImageSpec::Profile(crate::adapters::images::profile("torch").unwrap()),
            knobs: Box::default(),
            warnings: Vec::new(),
        },
        2,
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::PrepareImage { image, .. } if image.label() == "torch"))
    );
    let fx = update(
        &mut s,
        Msg::ImageReady {
            run: RUN,
            image: "mlops-tui/torch:x".into(),
        },
        3,
    );
    (s, fx)
}

pub(super) fn plan(fx: &[Effect]) -> &IterationPlan {
    fx.iter()
        .find_map(|e| match e {
            Effect::StartIteration(p) => Some(&**p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no StartIteration in {fx:?}"))
}

pub(super) fn train(s: &mut PipelineState, no: u32, values: &[f64], code: i64) -> Vec<Effect> {
    let no = IterationNo(no);
    update(
        s,
        Msg::ContainerStarted {
            run: RUN,
            no,
            id: ContainerId("c".repeat(64)),
            workdir: PathBuf::from(format!("/d/iter-{no}")),
        },
        10,
    );
    for (i, v) in values.iter().enumerate() {
        update(
            s,
            Msg::Logs {
                run: RUN,
                no,
                lines: vec![LogLine {
                    stderr: false,
                    text: format!("epoch {} accuracy={v}", i + 1),
                }],
            },
            11,
        );
        update(
            s,
            Msg::Metric {
                run: RUN,
                no,
                obs: Observation {
                    epoch: Some(i as u32 + 1),
                    epochs: Some(2),
                    value: *v,
                },
            },
            11,
        );
    }
    update(
        s,
        Msg::Exited {
            run: RUN,
            no,
            status: Some(ExitStatus {
                code,
                oom_killed: false,
            }),
            cause: None,
        },
        20,
    )
}

pub(super) fn events(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event { line, .. } => Some(format!("[{}] {}", line.tag, line.text)),
            _ => None,
        })
        .collect()
}

#[test]
fn first_iteration_uses_starting_params() {
    let (s, fx) = started("auto", false);
    let p = plan(&fx);
    assert_eq!(p.no, IterationNo(1));
    assert_eq!(p.params["filters"], serde_json::json!(8));
    assert_eq!(p.image, "mlops-tui/torch:x");
    assert_eq!(s.stage(Stage::Image).status, StageStatus::Passed);
    assert_eq!(s.stage(Stage::Train).status, StageStatus::Running);
}

#[test]
fn below_target_grows_and_retrains_then_succeeds() {
    let (mut s, _) = started("auto", false);
    let fx = train(&mut s, 1, &[0.5, 0.8], 0);
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| e == "[evaluate:1] accuracy 0.8000 < target 0.9"),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e.starts_with("[tweak:1→2] epochs 2→4, filters 8→16")),
        "{ev:?}"
    );
    let p = plan(&fx);
    assert_eq!(p.no, IterationNo(2));
    assert_eq!(p.params["filters"], serde_json::json!(16));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::SaveBest {
            no: IterationNo(1),
            ..
        }
    )));

    let fx = train(&mut s, 2, &[0.85, 0.93], 0);
    let ev = events(&fx);
    assert!(
        ev.iter().any(|e| e.starts_with(
            "[done] target reached at iteration 2: accuracy 0.9300 (best model: /d/iter-2/model)"
        )),
        "{ev:?}"
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::FinishRun {
            status: RunStatus::Succeeded,
            ..
        }
    )));
    let r = s.run.as_ref().unwrap();
    assert_eq!(r.best, Some(IterationNo(2)));
    assert_eq!(r.iteration(IterationNo(2)).unwrap().points.len(), 2);
    assert!(!s.busy());
}

#[test]
fn crash_fails_iteration_with_log_tail_and_loop_goes_on() {
    let (mut s, _) = started("auto", false);
    let fx = train(&mut s, 1, &[], 1);
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    assert_eq!(it.status, IterStatus::Failed);
    let reason = it.reason.clone().unwrap();
    assert!(
        reason.starts_with("exited with code 1; last lines:"),
        "{reason}"
    );
    assert_eq!(
        plan(&fx).no,
        IterationNo(2),
        "failure budget not yet spent: the loop goes on"
    );
    // The second failure exceeds max_failures = 1.
    let fx = train(&mut s, 2, &[], 139);
    assert!(events(&fx).iter().any(|e| e.contains("(SIGSEGV)")));
    assert!(fx.iter().any(|e| matches!(e, Effect::FinishRun { status: RunStatus::Failed, reason, .. } if reason.contains("max_failures = 1"))), "{fx:?}");
}

#[test]
fn nan_is_never_best_nor_success() {
    let (mut s, _) = started("auto", false);
    let fx = train(&mut s, 1, &[0.95, f64::NAN], 0);
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    assert_eq!(it.status, IterStatus::Failed);
    assert!(it.reason.as_ref().unwrap().contains("`accuracy` was NaN"));
    assert!(!fx.iter().any(|e| matches!(e, Effect::SaveBest { .. })));
    assert_eq!(s.run.as_ref().unwrap().best, None);
}

#[test]
fn missing_metric_and_deadline_are_failures() {
    let (mut s, _) = started("auto", false);
    train(&mut s, 1, &[], 0);
    let reason = s
        .run
        .as_ref()
        .unwrap()
        .iteration(IterationNo(1))
        .unwrap()
        .reason
        .clone()
        .unwrap();
    assert_eq!(
        reason,
        "exited 0 without printing anything or reporting `accuracy`; it wrote no file in its workspace"
    );

    let (mut s, _) = started("auto", false);
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
            workdir: "/d".into(),
        },
        1,
    );
    update(
        &mut s,
        Msg::Exited {
            run: RUN,
            no: IterationNo(1),
            status: Some(ExitStatus {
                code: 137,
                oom_killed: false,
            }),
            cause: Some("ran past 5s (budget.iteration_timeout): stopped".into()),
        },
        2,
    );
    let reason = s
        .run
        .as_ref()
        .unwrap()
        .iteration(IterationNo(1))
        .unwrap()
        .reason
        .clone()
        .unwrap();
    assert!(reason.starts_with("ran past 5s"), "{reason}");
}

#[test]
fn budget_spent_after_max_iterations() {
    let (mut s, _) = started("auto", false);
    train(&mut s, 1, &[0.5], 0);
    train(&mut s, 2, &[0.6], 0);
    let fx = train(&mut s, 3, &[0.7], 0);
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
    assert_eq!(s.run.as_ref().unwrap().best, Some(IterationNo(3)));
}

#[test]
fn ask_mode_waits_for_approval_then_applies() {
    let (mut s, _) = started("ask", true);
    let fx = train(&mut s, 1, &[0.5], 0);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartIteration(_))),
        "must wait for the operator"
    );
    assert!(s.run.as_ref().unwrap().pending.is_some());
    assert_eq!(s.stage(Stage::Tweak).status, StageStatus::Running);
    let fx = update(&mut s, Msg::Operator(Operator::Approve), 30);
    assert_eq!(plan(&fx).params["filters"], serde_json::json!(16));
    assert!(s.run.as_ref().unwrap().pending.is_none());
}

#[test]
fn reject_proposes_another_point_and_edit_changes_it() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let first = s.run.as_ref().unwrap().pending.clone().unwrap();
    update(&mut s, Msg::Operator(Operator::Reject), 30);
    let second = s.run.as_ref().unwrap().pending.clone().unwrap();
    assert_ne!(first.params, second.params);
    update(
        &mut s,
        Msg::Operator(Operator::Edit {
            name: "filters".into(),
            raw: "24".into(),
        }),
        31,
    );
    let edited = s.run.as_ref().unwrap().pending.clone().unwrap();
    assert_eq!(edited.params["filters"], serde_json::json!(24));
    assert!(
        edited.summary().contains("filters 8→24"),
        "{}",
        edited.summary()
    );
    let fx = update(&mut s, Msg::Operator(Operator::Approve), 32);
    assert_eq!(plan(&fx).params["filters"], serde_json::json!(24));
}

/// Skipped, not Passed: a failed Train leaves nothing to evaluate, and proposing the next point
/// afterwards does not make the evaluation a success.
#[test]
fn after_a_failed_train_evaluate_is_skipped() {
    for (apply, interactive) in [("ask", true), ("auto", false)] {
        let (mut s, _) = started(apply, interactive);
        train(&mut s, 1, &[], 1);
        let eval = s.stage(Stage::Evaluate);
        assert_eq!(eval.status, StageStatus::Skipped, "{apply}: {eval:?}");
        assert_eq!(eval.detail, "nothing to evaluate");
    }
}

/// The Evaluate timer ends when the metric was judged; the wait for the operator is the Tweak
/// stage's, and rejecting or approving later does not move Evaluate's end.
#[test]
fn evaluate_timer_stops_when_evaluation_ends_not_at_approval() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let judged = s.stage(Stage::Evaluate).clone();
    assert_eq!(judged.status, StageStatus::Passed);
    assert_eq!(judged.finished_ms, Some(20));
    update(&mut s, Msg::Operator(Operator::Reject), 5_000);
    assert_eq!(s.stage(Stage::Evaluate).finished_ms, Some(20));
    assert_eq!(s.stage(Stage::Tweak).status, StageStatus::Running);
    update(&mut s, Msg::Operator(Operator::Approve), 9_000);
    let eval = s.stage(Stage::Evaluate);
    assert_eq!(
        (eval.status, eval.finished_ms),
        (StageStatus::Passed, Some(20))
    );
    assert_eq!(s.stage(Stage::Tweak).finished_ms, Some(9_000));
}

/// After iteration 1, a rejected proposal is for iteration 2, and the next proposal is still based
/// on iteration 1 (the rejected point is not an iteration).
#[test]
fn a_rejected_proposal_names_the_iterations_it_is_for_and_based_on() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let fx = update(&mut s, Msg::Operator(Operator::Reject), 30);
    let ev = events(&fx);
    assert!(
        ev[0].starts_with("[tweak:1→2] proposal for iteration 2 rejected: "),
        "{ev:?}"
    );
    assert!(ev[1].starts_with("[tweak:1→2] proposed "), "{ev:?}");
    let second = s.run.as_ref().unwrap().pending.clone().unwrap();
    assert!(
        second.reason.contains("after iteration 1:"),
        "{}",
        second.reason
    );
}

#[test]
fn an_edit_past_the_parameter_size_cap_is_refused() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let pending = s.run.as_mut().unwrap().pending.as_mut().unwrap();
    pending
        .params
        .insert("note".into(), serde_json::json!("short"));
    let before = pending.params.clone();
    let fx = update(
        &mut s,
        Msg::Operator(Operator::Edit {
            name: "note".into(),
            raw: "x".repeat(10 * 1024 * 1024),
        }),
        31,
    );
    let after = &s.run.as_ref().unwrap().pending.as_ref().unwrap().params;
    assert_eq!(after, &before, "the proposal is unchanged");
    let events = events(&fx);
    assert!(
        events.iter().any(|e| e.starts_with(
            "[tweak] `note` is 10.0 MiB as JSON; a parameter value may be at most 64 KiB"
        )),
        "{events:?}"
    );
}

#[test]
fn headless_applies_even_in_ask_mode() {
    let (mut s, _) = started("ask", false);
    let fx = train(&mut s, 1, &[0.5], 0);
    assert_eq!(plan(&fx).no, IterationNo(2));
}

#[test]
fn toggling_auto_applies_the_pending_proposal() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let fx = update(
        &mut s,
        Msg::Operator(Operator::SetApply(ApplyMode::Auto)),
        30,
    );
    assert_eq!(plan(&fx).no, IterationNo(2));
}

#[test]
fn commits_arriving_while_busy_are_coalesced() {
    let (mut s, _) = started("auto", false);
    let fx = update(
        &mut s,
        Msg::RunRequested {
            commit: commit("b"),
            trigger: Trigger::Commit,
        },
        5,
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::CreateRun { .. })));
    let fx = update(
        &mut s,
        Msg::RunRequested {
            commit: commit("c"),
            trigger: Trigger::Commit,
        },
        6,
    );
    assert!(
        events(&fx)
            .iter()
            .any(|e| e.contains("skipped: superseded by cccccccc")),
        "{:?}",
        events(&fx)
    );
    // The run ends: the newest queued commit starts next.
    train(&mut s, 1, &[0.5], 0);
    train(&mut s, 2, &[0.6], 0);
    let fx = train(&mut s, 3, &[0.7], 0);
    let created: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::CreateRun { commit, .. } => Some(commit.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec!["c".repeat(40)]);
}

#[test]
fn preparation_failure_ends_the_run_with_the_stage() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    update(
        &mut s,
        Msg::RunRequested {
            commit: commit("a"),
            trigger: Trigger::Start,
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
    let fx = update(
        &mut s,
        Msg::StageFailed {
            run: RUN,
            stage: Stage::Detect,
            error: "p/mlops.toml:3:1: bad".into(),
        },
        2,
    );
    assert_eq!(s.stage(Stage::Detect).status, StageStatus::Failed);
    assert!(fx.iter().any(|e| matches!(e, Effect::FinishRun { status: RunStatus::Failed, reason, .. } if reason.contains("mlops.toml:3:1"))));
}

#[test]
fn pause_defers_the_next_iteration_until_resume() {
    let (mut s, _) = started("auto", false);
    update(&mut s, Msg::Operator(Operator::Pause(true)), 5);
    let fx = train(&mut s, 1, &[0.5], 0);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StartIteration(_))),
        "paused: {fx:?}"
    );
    let fx = update(&mut s, Msg::Operator(Operator::Pause(false)), 6);
    assert_eq!(plan(&fx).no, IterationNo(2));
}

#[test]
fn operator_target_applies_to_the_running_loop() {
    let (mut s, _) = started("auto", false);
    update(&mut s, Msg::Operator(Operator::SetTarget(0.5)), 5);
    let fx = train(&mut s, 1, &[0.6], 0);
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::FinishRun {
                status: RunStatus::Succeeded,
                ..
            }
        )),
        "{fx:?}"
    );
}

#[test]
fn retry_reruns_the_last_commit_when_idle() {
    let (mut s, _) = started("auto", false);
    update(
        &mut s,
        Msg::StageFailed {
            run: RUN,
            stage: Stage::Image,
            error: "boom".into(),
        },
        4,
    );
    let fx = update(&mut s, Msg::Operator(Operator::Retry), 5);
    assert!(
        matches!(fx.as_slice(), [Effect::CreateRun { trigger, .. }] if trigger.as_str() == "retry"),
        "{fx:?}"
    );
}

pub(super) fn exit(s: &mut PipelineState, no: u32, code: i64, oom: bool, now: i64) -> Vec<Effect> {
    update(
        s,
        Msg::Exited {
            run: RUN,
            no: IterationNo(no),
            status: Some(ExitStatus {
                code,
                oom_killed: oom,
            }),
            cause: None,
        },
        now,
    )
}

pub(super) fn revive_delay(fx: &[Effect]) -> Option<std::time::Duration> {
    fx.iter().find_map(|e| match e {
        Effect::Revive { delay, .. } => Some(*delay),
        _ => None,
    })
}

#[test]
fn killed_container_is_revived_with_backoff_then_given_up() {
    let (mut s, _) = started("auto", false);
    train(&mut s, 1, &[0.3], 0); // iteration 1 done, below target
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(2),
            id: ContainerId("c".into()),
            workdir: "/d".into(),
        },
        100,
    );
    let mut delays = Vec::new();
    for k in 0..5 {
        let fx = exit(&mut s, 2, 137, false, 101 + k);
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Release { .. })),
            "revived, not released"
        );
        delays.push(revive_delay(&fx).expect("revived").as_secs());
        update(
            &mut s,
            Msg::Revived {
                run: RUN,
                no: IterationNo(2),
                id: ContainerId("c".into()),
            },
            101 + k,
        );
    }
    assert_eq!(delays, vec![0, 1, 2, 4, 8]);
    let fx = exit(&mut s, 2, 137, false, 200);
    assert!(revive_delay(&fx).is_none());
    assert!(fx.iter().any(|e| matches!(e, Effect::Release { .. })));
    let it = s.run.as_ref().unwrap().iteration(IterationNo(2)).unwrap();
    assert_eq!(it.status, IterStatus::Failed);
    assert!(
        it.reason.as_ref().unwrap().starts_with(
            "gave up after 5 revivals (monitor.max_revivals); last death: exit 137, SIGKILL"
        ),
        "{:?}",
        it.reason
    );
    assert_eq!(s.stage(Stage::Monitor).status, StageStatus::Failed);
}

#[test]
fn oom_is_revived_and_code_failures_are_not() {
    let (mut s, _) = started("auto", false);
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
            workdir: "/d".into(),
        },
        1,
    );
    let fx = exit(&mut s, 1, 137, true, 2);
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| e.starts_with("[monitor:1] container died (out of memory, limit 2g)")),
        "{ev:?}"
    );
    update(
        &mut s,
        Msg::Revived {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
        },
        3,
    );
    let fx = exit(&mut s, 1, 1, false, 4);
    assert!(
        revive_delay(&fx).is_none(),
        "exit 1 is the script's own failure"
    );
    assert_eq!(
        s.run
            .as_ref()
            .unwrap()
            .iteration(IterationNo(1))
            .unwrap()
            .status,
        IterStatus::Failed
    );
}

#[test]
fn healthy_stretch_resets_the_backoff() {
    let (mut s, _) = started("auto", false);
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
            workdir: "/d".into(),
        },
        0,
    );
    assert_eq!(
        revive_delay(&exit(&mut s, 1, 137, false, 10))
            .unwrap()
            .as_secs(),
        0
    );
    update(
        &mut s,
        Msg::Revived {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
        },
        10,
    );
    assert_eq!(
        revive_delay(&exit(&mut s, 1, 137, false, 20))
            .unwrap()
            .as_secs(),
        1
    );
    update(
        &mut s,
        Msg::Revived {
            run: RUN,
            no: IterationNo(1),
            id: ContainerId("c".into()),
        },
        20,
    );
    // Runs 61 s healthily (healthy_after = 60 s) before dying again: back to an immediate revival.
    assert_eq!(
        revive_delay(&exit(&mut s, 1, 137, false, 61_020))
            .unwrap()
            .as_secs(),
        0
    );
}

#[test]
fn a_repeated_epoch_after_revival_replaces_the_point() {
    let (mut s, _) = started("auto", false);
    let no = IterationNo(1);
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no,
            id: ContainerId("c".into()),
            workdir: "/d".into(),
        },
        0,
    );
    for (e, v) in [(1, 0.5), (2, 0.6), (2, 0.62), (3, 0.7)] {
        update(
            &mut s,
            Msg::Metric {
                run: RUN,
                no,
                obs: Observation {
                    epoch: Some(e),
                    epochs: Some(3),
                    value: v,
                },
            },
            1,
        );
    }
    let it = s.run.as_ref().unwrap().iteration(no).unwrap();
    assert_eq!(
        it.points,
        vec![(Some(1), 0.5), (Some(2), 0.62), (Some(3), 0.7)]
    );
}

#[test]
fn the_curve_stops_at_its_cap_once_said_and_the_last_value_still_counts() {
    use super::iteration::MAX_POINTS;
    let (mut s, _) = started("auto", false);
    let no = IterationNo(1);
    let metric = |e: usize| Msg::Metric {
        run: RUN,
        no,
        obs: Observation {
            epoch: Some(e as u32),
            epochs: None,
            value: e as f64 / 1e6,
        },
    };
    let mut saved = 0;
    let mut said = 0;
    for e in 1..=MAX_POINTS + 50 {
        for fx in update(&mut s, metric(e), 1) {
            match fx {
                Effect::SaveMetric { .. } => saved += 1,
                Effect::Event { line, .. } if line.text.contains("the curve is full") => said += 1,
                _ => {}
            }
        }
    }
    let it = s.run.as_ref().unwrap().iteration(no).unwrap();
    assert_eq!((it.points.len(), saved, said), (MAX_POINTS, MAX_POINTS, 1));
    let last = MAX_POINTS as f64 / 1e6;
    assert_eq!(it.points.last(), Some(&(Some(MAX_POINTS as u32), last)));
    assert_eq!(it.final_value, Some((MAX_POINTS + 50) as f64 / 1e6));
}

#[test]
fn a_run_waits_while_docker_is_down_and_starts_when_it_is_back() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    update(
        &mut s,
        Msg::Health(Health::local(false, "socket missing")),
        0,
    );
    let fx = update(
        &mut s,
        Msg::RunRequested {
            commit: commit("a"),
            trigger: Trigger::Start,
        },
        1,
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::CreateRun { .. })),
        "{fx:?}"
    );
    assert!(
        events(&fx)
            .iter()
            .any(|e| e.contains("waits for the engine"))
    );
    let fx = update(
        &mut s,
        Msg::Health(Health::local(true, "unix:///var/run/docker.sock")),
        2,
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::CreateRun { .. })),
        "{fx:?}"
    );
    assert!(events(&fx).iter().any(|e| e.contains("reachable again")));
}

#[test]
fn trigger_now_reads_the_head_and_runs_it_for_the_operator() {
    let mut s = PipelineState::new(PathBuf::from("/p"), true);
    let fx = update(&mut s, Msg::Operator(Operator::TriggerNow), 0);
    assert!(matches!(fx.as_slice(), [Effect::ReadHead]), "{fx:?}");
    let fx = update(&mut s, Msg::HeadRead(Ok(commit("b"))), 1);
    assert!(
        matches!(fx.as_slice(), [Effect::CreateRun { trigger: Trigger::Operator, commit }] if commit.id.starts_with('b')),
        "{fx:?}"
    );
    assert!(s.starting);
}

#[test]
fn an_unreadable_head_is_said_and_starts_nothing() {
    let mut s = PipelineState::new(PathBuf::from("/p"), true);
    let fx = update(
        &mut s,
        Msg::HeadRead(Err(RepoError::Git {
            path: "/p".into(),
            message: "no such branch".into(),
        }
        .into())),
        0,
    );
    assert_eq!(
        events(&fx),
        vec!["[pull] cannot read the branch: /p: no such branch"]
    );
    assert!(!s.busy());
}

#[test]
fn a_failed_once_trigger_abandons_the_engine() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    let fx = update(
        &mut s,
        Msg::TriggerFailed {
            error: "not a repository".into(),
        },
        0,
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Abandon { reason }] if reason == "not a repository"),
        "{fx:?}"
    );
}

#[test]
fn the_watcher_repeating_the_running_commit_is_ignored_but_a_person_is_queued() {
    let (mut s, _) = started("auto", false);
    let watcher = Msg::RunRequested {
        commit: commit("a"),
        trigger: Trigger::Commit,
    };
    assert!(update(&mut s, watcher, 5).is_empty());
    let fx = update(&mut s, Msg::HeadRead(Ok(commit("a"))), 6);
    assert!(events(&fx).iter().any(|e| e.contains("queued")), "{fx:?}");
    assert_eq!(s.queued.len(), 1);
    assert_eq!(s.queued[0].1, Trigger::Operator);
}

fn report(channel: Channel, result: Result<(), String>, unavailable: bool) -> Msg {
    Msg::NotifyReport(NotifyReport {
        channel,
        kind: NotificationKind::TargetReached,
        result,
        unavailable,
    })
}

#[test]
fn an_unavailable_channel_is_a_skip_that_never_hides_a_send_or_a_failure() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    let missing = || report(Channel::Desktop, Err("no session bus".into()), true);
    update(&mut s, missing(), 0);
    assert_eq!(s.stage(Stage::Notify).status, StageStatus::Skipped);
    update(&mut s, report(Channel::Webhook, Ok(()), false), 1);
    assert_eq!(s.stage(Stage::Notify).status, StageStatus::Passed);
    update(&mut s, missing(), 2);
    assert_eq!(s.stage(Stage::Notify).status, StageStatus::Passed);
    let refused = report(Channel::Email, Err("refused".into()), false);
    update(&mut s, refused, 3);
    assert_eq!(s.stage(Stage::Notify).status, StageStatus::Failed);
    update(&mut s, report(Channel::Webhook, Ok(()), false), 4);
    assert_eq!(s.stage(Stage::Notify).status, StageStatus::Failed);
}

fn container_event(action: ContainerAction, exit_code: Option<i64>) -> Msg {
    Msg::ContainerEvent(ContainerEvent {
        id: ContainerId("c1".into()),
        action,
        exit_code,
        labels: [(labels::ITERATION.to_string(), "2".to_string())].into(),
    })
}

#[test]
fn container_deaths_show_on_the_monitor_and_oom_is_said() {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    let fx = update(&mut s, container_event(ContainerAction::Die, Some(137)), 0);
    assert!(fx.is_empty());
    assert_eq!(
        s.stage(Stage::Monitor).detail,
        "iteration 2 container exited (exit 137)"
    );
    let fx = update(&mut s, container_event(ContainerAction::Oom, None), 1);
    assert_eq!(
        events(&fx),
        vec!["[monitor:2] the engine reports container c1 out of memory"]
    );
    let other = ContainerAction::Other("pause".into());
    assert!(update(&mut s, container_event(other, None), 2).is_empty());
}

/// A run whose image is being built (Prepared at t=2s).
fn building() -> PipelineState {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    update(
        &mut s,
        Msg::RunRequested {
            commit: commit("a"),
            trigger: Trigger::Start,
        },
        0,
    );
    update(
        &mut s,
        Msg::RunCreated {
            run: RUN,
            commit: commit("a"),
        },
        1_000,
    );
    update(
        &mut s,
        Msg::Prepared {
            run: RUN,
            config: Box::new(config("auto")),
            workspace: PathBuf::from("/w"),
            image_reason: "mlp (numpy)".into(),
            image: ImageSpec::Profile(crate::adapters::images::profile("numpy").unwrap()),
            knobs: Box::default(),
            warnings: Vec::new(),
        },
        2_000,
    );
    s
}

fn progress(s: &mut PipelineState, line: &str, at: i64) -> Vec<Effect> {
    update(
        s,
        Msg::ImageProgress {
            run: RUN,
            line: line.into(),
        },
        at,
    )
}

fn event_texts(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event { line, .. } => Some(line.text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_image_stage_shows_step_packages_and_estimate_and_logs_one_line_per_step() {
    let mut s = building();
    update(
        &mut s,
        Msg::ImageEstimate {
            run: RUN,
            last_build_ms: 470_000,
        },
        2_000,
    );
    let intro = progress(
        &mut s,
        "building image mlops-tui/numpy:1 from dockerfiles/numpy/Dockerfile",
        2_000,
    );
    assert_eq!(event_texts(&intro).len(), 1);
    let step = progress(
        &mut s,
        "Step 2/5 : RUN apt-get install -y python3-numpy",
        3_000,
    );
    assert_eq!(
        event_texts(&step),
        ["step 2/5: RUN apt-get install -y python3-numpy"]
    );
    let mut quiet = Vec::new();
    quiet.extend(progress(
        &mut s,
        "0 upgraded, 4 newly installed, 0 to remove and 0 not upgraded.",
        4_000,
    ));
    for p in ["a", "b", "c"] {
        quiet.extend(progress(
            &mut s,
            &format!("Unpacking {p} (1.0) ..."),
            232_000,
        ));
    }
    assert!(event_texts(&quiet).is_empty(), "{quiet:?}");
    assert_eq!(
        s.stage(Stage::Image).detail,
        "step 2/5 · apt ███░░░░░░░ 3/4 unpacked · about 4m left (last build took 7m50s)"
    );
}

#[test]
fn an_image_build_chunk_of_several_lines_counts_each() {
    let mut s = building();
    let fx = progress(
        &mut s,
        "Step 2/2 : RUN apt-get install -y python3\n0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.\nUnpacking a (1) ...\nUnpacking b (1) ...\n",
        3_000,
    );
    assert_eq!(
        event_texts(&fx),
        ["step 2/2: RUN apt-get install -y python3"]
    );
    assert_eq!(
        s.stage(Stage::Image).detail,
        "step 2/2 · apt █████░░░░░ 2/2 unpacked"
    );
}

/// Reports what the worker read at the exit, then the exit itself.
fn exit_with(
    s: &mut PipelineState,
    no: u32,
    report: crate::engine::msg::ExitReport,
) -> Vec<Effect> {
    let no = IterationNo(no);
    let mut fx = update(
        s,
        Msg::ExitReport {
            run: RUN,
            no,
            report,
        },
        19,
    );
    fx.extend(update(
        s,
        Msg::Exited {
            run: RUN,
            no,
            status: Some(ExitStatus {
                code: 0,
                oom_killed: false,
            }),
            cause: None,
        },
        20,
    ));
    fx
}

fn started_iteration(s: &mut PipelineState, no: u32, lines: &[&str]) {
    let no = IterationNo(no);
    update(
        s,
        Msg::ContainerStarted {
            run: RUN,
            no,
            id: ContainerId("c".repeat(64)),
            workdir: PathBuf::from(format!("/d/iter-{no}")),
        },
        10,
    );
    let lines = lines
        .iter()
        .map(|t| LogLine {
            stderr: false,
            text: t.to_string(),
        })
        .collect();
    update(
        s,
        Msg::Logs {
            run: RUN,
            no,
            lines,
        },
        11,
    );
}

#[test]
fn plans_carry_the_run_commit_the_patch_and_what_changed() {
    let (mut s, fx) = started("auto", false);
    let p = plan(&fx);
    assert_eq!(p.commit, commit("a").id);
    assert_eq!(p.change, "starting parameters");
    let knobs = s.run.as_ref().unwrap().knobs.clone();
    assert_eq!(p.patch, knobs.patch(&p.params).unwrap());
    let fx = train(&mut s, 1, &[0.5, 0.8], 0);
    let p = plan(&fx);
    assert_eq!(p.change, "epochs 2→4, filters 8→16");
    assert_eq!(p.patch, knobs.patch(&p.params).unwrap());
    let it = s.run.as_ref().unwrap().iteration(IterationNo(2)).unwrap();
    assert_eq!(it.edits, p.patch.edits);
}

#[test]
fn a_waiting_proposal_shows_the_source_lines_it_would_change() {
    let (mut s, _) = started("ask", true);
    train(&mut s, 1, &[0.5], 0);
    let r = s.run.as_ref().unwrap();
    let pending = r.pending.as_ref().unwrap();
    assert_eq!(
        r.pending_edits(),
        r.knobs.patch(&pending.params).unwrap().edits
    );
}

#[test]
fn the_commit_of_an_iteration_is_kept_and_saved() {
    let (mut s, _) = started("auto", false);
    let fx = update(
        &mut s,
        Msg::Committed {
            run: RUN,
            no: IterationNo(1),
            commit: Some("b".repeat(40)),
        },
        5,
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::SaveIteration { .. })));
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    assert_eq!(it.commit.as_deref(), Some("b".repeat(40).as_str()));
}

#[test]
fn a_run_that_saved_no_model_says_so_instead_of_naming_an_empty_directory() {
    let (mut s, _) = started("auto", false);
    started_iteration(&mut s, 1, &["accuracy=0.95"]);
    let report = crate::engine::msg::ExitReport {
        model: None,
        no_model: true,
        output_hash: Some(1),
        metric_file: Some(("accuracy.txt".into(), 0.95)),
        over_disk: None,
        written: Vec::new(),
    };
    let fx = exit_with(&mut s, 1, report);
    let ev = events(&fx);
    assert!(
        ev.iter().any(|e| e.contains("(best model: none saved)")),
        "{ev:?}"
    );
}

#[test]
fn a_metric_file_gives_the_value_and_a_model_file_is_named_on_success() {
    let (mut s, _) = started("auto", false);
    started_iteration(&mut s, 1, &["training…"]);
    let report = crate::engine::msg::ExitReport {
        model: Some(PathBuf::from("/d/iter-1/workspace/mymodel.pkl")),
        no_model: false,
        output_hash: Some(1),
        metric_file: Some(("accuracy.txt".into(), 0.95)),
        over_disk: None,
        written: Vec::new(),
    };
    let fx = exit_with(&mut s, 1, report);
    let ev = events(&fx);
    assert!(
        ev.iter()
            .any(|e| e == "[evaluate:1] accuracy 0.9500 read from accuracy.txt (metric.file)"),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| e.contains(
            "target reached at iteration 1: accuracy 0.9500 (best model: /d/iter-1/workspace/mymodel.pkl)"
        )),
        "{ev:?}"
    );
    assert_eq!(
        s.run.as_ref().unwrap().status,
        RunStatus::Succeeded,
        "{ev:?}"
    );
}

#[test]
fn identical_output_with_other_parameters_is_said_once() {
    let (mut s, _) = started("auto", false);
    let same = |v| crate::engine::msg::ExitReport {
        model: None,
        no_model: false,
        output_hash: Some(42),
        metric_file: Some(("accuracy.txt".into(), v)),
        over_disk: None,
        written: Vec::new(),
    };
    started_iteration(&mut s, 1, &["accuracy 0.5"]);
    let fx = exit_with(&mut s, 1, same(0.5));
    assert!(!events(&fx).iter().any(|e| e.contains("differ only")));
    started_iteration(&mut s, 2, &["accuracy 0.5"]);
    let fx = exit_with(&mut s, 2, same(0.5));
    let ev = events(&fx);
    let warned: Vec<_> = ev.iter().filter(|e| e.contains("differ only")).collect();
    assert_eq!(
        warned,
        [
            "[evaluate:2] iterations 1 and 2 differ only in `epochs` (2→4) and `filters` (8→16) \
             yet printed the same output and accuracy 0.5: nothing seems to read `epochs` or \
             `filters` — bind it to the source (see README)"
        ],
        "{ev:?}"
    );
    started_iteration(&mut s, 3, &["accuracy 0.5"]);
    let fx = exit_with(&mut s, 3, same(0.5));
    assert!(
        !events(&fx).iter().any(|e| e.contains("differ only")),
        "said once per run"
    );
}

#[test]
fn different_output_is_no_warning() {
    let (mut s, _) = started("auto", false);
    for (no, hash) in [(1, 1), (2, 2)] {
        started_iteration(&mut s, no, &["x"]);
        let fx = exit_with(
            &mut s,
            no,
            crate::engine::msg::ExitReport {
                model: None,
                no_model: false,
                output_hash: Some(hash),
                metric_file: Some(("accuracy.txt".into(), 0.5)),
                over_disk: None,
                written: Vec::new(),
            },
        );
        assert!(!events(&fx).iter().any(|e| e.contains("differ only")));
    }
}

#[test]
fn a_lost_history_stops_the_training_iteration_drops_what_waits_and_fails_the_run() {
    let (mut s, fx) = started("auto", false);
    let no = plan(&fx).no;
    update(
        &mut s,
        Msg::ContainerStarted {
            run: RUN,
            no,
            id: ContainerId("c".repeat(64)),
            workdir: PathBuf::from("/d/iter-1"),
        },
        10,
    );
    update(
        &mut s,
        Msg::RunRequested {
            commit: commit("b"),
            trigger: Trigger::Commit,
        },
        11,
    );
    assert_eq!(s.queued.len(), 1);
    let lost = "no space left on /srv: free space on /srv and run again".to_string();
    let fx = update(
        &mut s,
        Msg::HistoryLost {
            error: lost.clone(),
        },
        12,
    );
    assert!(s.queued.is_empty(), "nothing new starts");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::StopContainer { no: n, .. } if *n == no)),
        "{fx:?}"
    );
    assert!(events(&fx).contains(&format!("[store] {lost}")), "{fx:?}");
    let fx = exit(&mut s, no.0, 137, false, 13);
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::FinishRun { status: RunStatus::Failed, reason, .. } if *reason == lost
        )),
        "{fx:?}"
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::CreateRun { .. })),
        "{fx:?}"
    );
}
