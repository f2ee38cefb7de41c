use super::*;
use crate::core::ids::{IterationNo, RunId};

fn ctx() -> RunContext {
    RunContext {
        project: "/p/digits".into(),
        metric: "accuracy".into(),
        strategy: Some("grow".into()),
    }
}

fn run(status: RunStatus) -> RunRow {
    RunRow {
        id: RunId(3),
        project: "/p/digits".into(),
        commit_id: "abc123".into(),
        commit_summary: "train".into(),
        branch: "main".into(),
        trigger: "manual".into(),
        started_at: 1_000,
        finished_at: status.is_final().then_some(9_000),
        status,
        reason: Some("target met".into()),
        best_iteration: Some(IterationNo(1)),
        owner_pid: None,
    }
}

fn iteration(no: u32, status: IterStatus, points: usize) -> IterSnapshot {
    let mut p = crate::core::config::Params::new();
    p.insert("gamma".into(), serde_json::json!(0.01));
    p.insert("kernel".into(), serde_json::json!("rbf"));
    let mut row = IterationRow::new(RunId(3), IterationNo(no), p);
    row.status = status;
    row.started_at = Some(2_000);
    row.proposal_reason = Some("starting point".into());
    if status.is_final() {
        row.finished_at = Some(5_000);
        row.final_value = Some(0.9);
        row.model = Some("/runs/3/iter-1/workspace/model.pkl".into());
        row.edits = vec![SourceEdit {
            file: "train.py".into(),
            line: 4,
            old: "gamma = 0.001".into(),
            new: "gamma = 0.01".into(),
        }];
    }
    IterSnapshot {
        row,
        points: (0..points)
            .map(|i| MetricPoint {
                epoch: Some(i as u32 + 1),
                value: if i == 1 { f64::NAN } else { 0.5 },
                at: 3_000 + i as i64,
            })
            .collect(),
        engine: Some("local".into()),
    }
}

fn kinds(recs: &[Record]) -> Vec<&'static str> {
    recs.iter()
        .map(|r| match r {
            Record::CreateRun { .. } => "create",
            Record::LogParams { .. } => "params",
            Record::LogMetrics { .. } => "metrics",
            Record::SetTags { .. } => "tags",
            Record::Artifact { .. } => "artifact",
            Record::EndRun { .. } => "end",
        })
        .collect()
}

fn ack_all(acks: &mut Acks, recs: &[Record]) {
    for (i, r) in recs.iter().enumerate() {
        let made = matches!(r, Record::CreateRun { .. }).then(|| RunAck {
            run_id: format!("r{i}"),
            artifact_uri: format!("mlflow-artifacts:/1/r{i}/artifacts"),
        });
        acks.acknowledge(r, made);
    }
}

#[test]
fn a_finished_run_is_a_parent_with_its_iterations_nested_and_closed() {
    let snap = Snapshot {
        run: run(RunStatus::Succeeded),
        iterations: vec![iteration(1, IterStatus::Succeeded, 3)],
    };
    let recs = plan(&ctx(), &snap, &Acks::default());
    assert_eq!(
        kinds(&recs),
        [
            "create", "create", "params", "metrics", "tags", "metrics", "artifact", "artifact",
            "end", "tags", "end"
        ]
    );
    let Record::CreateRun { key, tags, .. } = &recs[1] else {
        panic!("{recs:?}")
    };
    assert_eq!(key, "/p/digits#run-3/iter-1");
    assert!(tags.contains(&("mlops.strategy_reason".into(), "starting point".into())));
    assert!(tags.contains(&("mlops.engine".into(), "local".into())));
    let Record::LogParams { params, .. } = &recs[2] else {
        panic!()
    };
    assert_eq!(
        params[1],
        ("kernel".into(), "rbf".into()),
        "strings lose their quotes"
    );
    let Record::LogMetrics { metrics, upto, .. } = &recs[3] else {
        panic!()
    };
    assert_eq!(*upto, Some(3));
    assert_eq!(
        (metrics[1].step, &metrics[1].value),
        (2, &serde_json::json!("NaN"))
    );
    let Record::Artifact { text, .. } = &recs[7] else {
        panic!()
    };
    assert_eq!(
        text.as_deref(),
        Some("@@ train.py:4 @@\n-gamma = 0.001\n+gamma = 0.01\n")
    );
    assert!(matches!(&recs[8], Record::EndRun { status, .. } if status == "FINISHED"));
}

#[test]
fn what_was_acknowledged_is_not_planned_again() {
    let mut snap = Snapshot {
        run: run(RunStatus::Running),
        iterations: vec![iteration(1, IterStatus::Running, 2)],
    };
    let mut acks = Acks::default();
    let first = plan(&ctx(), &snap, &acks);
    assert_eq!(kinds(&first), ["create", "create", "params", "metrics"]);
    ack_all(&mut acks, &first);
    assert!(plan(&ctx(), &snap, &acks).is_empty());
    snap.iterations[0].points = iteration(1, IterStatus::Running, 3).points;
    let more = plan(&ctx(), &snap, &acks);
    let Record::LogMetrics { metrics, upto, .. } = &more[0] else {
        panic!("{more:?}")
    };
    assert_eq!((metrics.len(), *upto, metrics[0].step), (1, Some(3), 3));
    ack_all(&mut acks, &more);
    snap.iterations[0] = iteration(1, IterStatus::Pruned, 3);
    snap.run = run(RunStatus::BudgetSpent);
    let end = plan(&ctx(), &snap, &acks);
    assert_eq!(
        kinds(&end),
        [
            "tags", "metrics", "artifact", "artifact", "end", "tags", "end"
        ]
    );
    assert!(matches!(&end[4], Record::EndRun { status, .. } if status == "KILLED"));
    ack_all(&mut acks, &end);
    assert!(plan(&ctx(), &snap, &acks).is_empty());
    let mut before = crate::core::config::Params::new();
    before.insert("gamma".into(), serde_json::json!(0.1));
    before.insert("kernel".into(), serde_json::json!("rbf"));
    assert_eq!(
        params_diff(Some(&before), &snap.iterations[0].row.params),
        "@@ params.json @@\n-gamma = 0.1\n+gamma = 0.01\n"
    );
    let json = serde_json::to_string(&acks).unwrap();
    assert_eq!(serde_json::from_str::<Acks>(&json).unwrap(), acks);
}

#[test]
fn long_series_are_sent_in_batches_and_pending_iterations_wait() {
    let snap = Snapshot {
        run: run(RunStatus::Running),
        iterations: vec![
            iteration(1, IterStatus::Running, BATCH + 5),
            IterSnapshot {
                row: IterationRow::new(RunId(3), IterationNo(2), Default::default()),
                points: vec![],
                engine: None,
            },
        ],
    };
    let recs = plan(&ctx(), &snap, &Acks::default());
    assert_eq!(
        kinds(&recs),
        ["create", "create", "params", "metrics", "metrics"]
    );
    assert!(
        matches!(&recs[4], Record::LogMetrics { upto: Some(n), metrics, .. } if *n == BATCH + 5 && metrics.len() == 5)
    );
    let line = serde_json::to_string(&recs[0]).unwrap();
    assert!(line.starts_with("{\"record\":\"create_run\""), "{line}");
}

#[test]
fn an_interrupted_run_stays_open_and_keys_are_quoted_safely() {
    let snap = Snapshot {
        run: run(RunStatus::Interrupted),
        iterations: vec![],
    };
    assert_eq!(kinds(&plan(&ctx(), &snap, &Acks::default())), ["create"]);
    assert_eq!(key("/p/it's", 2, None), "/p/it_s#run-2");
}
