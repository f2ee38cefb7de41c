//! The loop after a failure the triage calls permanent: one container, then the run ends.

use std::path::PathBuf;

use super::tests::{RUN, exit, plan, revive_delay, started};
use super::*;
use crate::core::config::notify::NotificationKind;
use crate::core::ids::{ContainerId, IterationNo};
use crate::core::metrics::Observation;
use crate::core::model::{IterStatus, LogLine, RunStatus};
use crate::engine::state::{Stage, StageStatus};

fn container(s: &mut PipelineState, no: u32) {
    update(
        s,
        Msg::ContainerStarted {
            run: RUN,
            no: IterationNo(no),
            id: ContainerId("c".repeat(64)),
            workdir: PathBuf::from(format!("/d/iter-{no}")),
        },
        10,
    );
}

fn print(s: &mut PipelineState, no: u32, text: &str) {
    let lines = text
        .lines()
        .map(|l| LogLine {
            stderr: true,
            text: l.into(),
        })
        .collect();
    update(
        s,
        Msg::Logs {
            run: RUN,
            no: IterationNo(no),
            lines,
        },
        11,
    );
}

fn report(s: &mut PipelineState, no: u32, value: f64) {
    print(s, no, &format!("accuracy={value}"));
    let obs = Observation {
        epoch: None,
        epochs: None,
        value,
    };
    update(
        s,
        Msg::Metric {
            run: RUN,
            no: IterationNo(no),
            obs,
        },
        11,
    );
}

const SEABORN: &str = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 4, in <module>\n    import seaborn\nModuleNotFoundError: No module named 'seaborn'";

/// The run's end: its status and reason.
fn finished(fx: &[Effect]) -> Option<(RunStatus, String)> {
    fx.iter().find_map(|e| match e {
        Effect::FinishRun { status, reason, .. } => Some((*status, reason.clone())),
        _ => None,
    })
}

#[test]
fn a_missing_module_ends_the_run_after_one_container_without_a_proposal() {
    // Ask mode with an operator: today's loop would offer a tweak and wait for approval.
    let (mut s, _) = started("ask", true);
    container(&mut s, 1);
    print(&mut s, 1, SEABORN);
    let fx = exit(&mut s, 1, 1, false, 20);
    let (status, reason) = finished(&fx).unwrap_or_else(|| panic!("the run goes on: {fx:?}"));
    assert_eq!(status, RunStatus::Failed);
    assert!(
        reason.starts_with(
            "ModuleNotFoundError: No module named 'seaborn' (at train.py:4) — the image has no \
             Python module `seaborn`"
        ),
        "{reason}"
    );
    assert!(reason.contains("requirements.txt"), "{reason}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::StartIteration(_))));
    assert_eq!(revive_delay(&fx), None);
    let r = s.run.as_ref().unwrap();
    assert!(r.pending.is_none(), "no approval asked");
    assert_eq!(r.iterations.len(), 1);
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.reason.as_deref(), Some(reason.as_str()));
    let it = r.iteration(IterationNo(1)).unwrap();
    assert_eq!(it.status, IterStatus::Failed);
    assert!(
        it.reason
            .as_deref()
            .unwrap()
            .starts_with("ModuleNotFoundError: No module named 'seaborn' (at train.py:4) — "),
        "{:?}",
        it.reason
    );
    assert_eq!(s.stage(Stage::Tweak).status, StageStatus::Skipped);
    // The notification names the error and the fix.
    let body = fx
        .iter()
        .find_map(|e| match e {
            Effect::Notify(n) if n.kind == NotificationKind::IterationFailed => {
                Some(n.body.clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(body.contains("No module named 'seaborn'"), "{body}");
    assert!(body.contains("requirements.txt"), "{body}");
    assert!(!body.contains("last lines"), "{body}");
    // A late repeat of the exit changes nothing.
    let again = exit(&mut s, 1, 1, false, 21);
    assert!(finished(&again).is_none());
}

#[test]
fn a_permanent_failure_is_not_revived_even_with_a_revival_exit_code() {
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(
        &mut s,
        1,
        "Traceback (most recent call last):\n  File \"/workspace/get.py\", line 3, in <module>\n    urlretrieve(URL)\nurllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>",
    );
    // 143 is in monitor.revive_exit_codes: a death from outside would be revived.
    let fx = exit(&mut s, 1, 143, false, 20);
    assert_eq!(revive_delay(&fx), None, "{fx:?}");
    let (status, reason) = finished(&fx).unwrap();
    assert_eq!(status, RunStatus::Failed);
    assert!(
        reason.contains("training containers have no network"),
        "{reason}"
    );
}

#[test]
fn a_library_value_error_lets_the_loop_go_on_with_the_error_line_first() {
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(
        &mut s,
        1,
        "Traceback (most recent call last):\n  File \"/workspace/knn.py\", line 22, in <module>\n    knn.fit(X, y)\n  File \"/usr/lib/python3/dist-packages/sklearn/neighbors/_base.py\", line 569, in _fit\n    raise ValueError(\nValueError: Expected n_neighbors <= n_samples,  but n_samples = 5, n_neighbors = 9",
    );
    let fx = exit(&mut s, 1, 1, false, 20);
    assert!(finished(&fx).is_none(), "{fx:?}");
    assert_eq!(plan(&fx).no, IterationNo(2));
    let r = s.run.as_ref().unwrap();
    let reason = r.iteration(IterationNo(1)).unwrap().reason.clone().unwrap();
    assert!(
        reason.starts_with(
            "exited with code 1: ValueError: Expected n_neighbors <= n_samples,  but n_samples = \
             5, n_neighbors = 9 (at knn.py:22); last lines:\n"
        ),
        "{reason}"
    );
}

#[test]
fn an_error_after_the_metric_stops_the_run_and_one_before_it_does_not() {
    let trace = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 30, in <module>\n    plt.savefig(out)\nNameError: name 'plt' is not defined";
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(&mut s, 1, "Epoch 1/1");
    report(&mut s, 1, 0.95);
    print(&mut s, 1, trace);
    let fx = exit(&mut s, 1, 1, false, 20);
    let (status, reason) = finished(&fx).unwrap_or_else(|| panic!("the run goes on: {fx:?}"));
    assert_eq!(status, RunStatus::Failed);
    assert!(
        reason.starts_with("NameError: name 'plt' is not defined (at train.py:30) — the script reported its metric, then failed at train.py:30"),
        "{reason}"
    );

    // The same error before any report: not known to be permanent, the loop goes on.
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(&mut s, 1, trace);
    let fx = exit(&mut s, 1, 1, false, 20);
    assert!(finished(&fx).is_none(), "{fx:?}");
    assert_eq!(plan(&fx).no, IterationNo(2));
}

#[test]
fn out_of_memory_is_revived_as_before() {
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(&mut s, 1, SEABORN);
    // Killed for memory: the triage never calls that permanent, whatever was printed.
    let fx = exit(&mut s, 1, 137, true, 20);
    assert!(revive_delay(&fx).is_some(), "{fx:?}");
    assert!(finished(&fx).is_none());
}

#[test]
fn a_run_out_of_failures_ends_with_the_last_error_line() {
    let trace = "Traceback (most recent call last):\n  File \"/workspace/knn.py\", line 22, in <module>\n    knn.fit(X, y)\n  File \"/usr/lib/python3/dist-packages/sklearn/neighbors/_base.py\", line 569, in _fit\n    raise ValueError(\nValueError: Expected n_neighbors <= n_samples";
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    print(&mut s, 1, trace);
    let fx = exit(&mut s, 1, 1, false, 20);
    assert!(finished(&fx).is_none(), "{fx:?}");
    // max_failures = 1: the second failure ends the run.
    container(&mut s, 2);
    print(&mut s, 2, trace);
    let fx = exit(&mut s, 2, 1, false, 30);
    let (status, reason) = finished(&fx).unwrap_or_else(|| panic!("the run goes on: {fx:?}"));
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(
        reason,
        "2 iterations failed (max_failures = 1); the last: exited with code 1: ValueError: \
         Expected n_neighbors <= n_samples (at knn.py:22)"
    );
}

#[test]
fn a_container_killed_for_its_disk_stops_the_run_without_a_revival_or_a_tweak() {
    let (mut s, _) = started("auto", false);
    container(&mut s, 1);
    let why = "it wrote 5.1 GiB in /workspace, over [resources] disk = \"300m\" (mlops.toml:9): \
               killed at once; delete or shrink /workspace/junk (5.1 GiB), or raise [resources] disk";
    let report = crate::engine::msg::ExitReport {
        over_disk: Some(why.into()),
        ..Default::default()
    };
    update(
        &mut s,
        Msg::ExitReport {
            run: RUN,
            no: IterationNo(1),
            report,
        },
        19,
    );
    let fx = update(
        &mut s,
        Msg::Exited {
            run: RUN,
            no: IterationNo(1),
            status: Some(crate::core::model::ExitStatus {
                code: 137,
                oom_killed: false,
            }),
            cause: Some(why.into()),
        },
        20,
    );
    assert_eq!(revive_delay(&fx), None, "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::StartIteration(_))));
    let (status, reason) = finished(&fx).unwrap_or_else(|| panic!("the run goes on: {fx:?}"));
    assert_eq!(status, RunStatus::Failed);
    assert_eq!(
        reason,
        format!("iteration 1 stopped: {why} (no tweak can fix this, so the run stopped)")
    );
    let it = s.run.as_ref().unwrap().iteration(IterationNo(1)).unwrap();
    assert_eq!(it.status, IterStatus::Failed);
    assert_eq!(it.reason.as_deref(), Some(why));
    assert_eq!(s.stage(Stage::Tweak).status, StageStatus::Skipped);
}
