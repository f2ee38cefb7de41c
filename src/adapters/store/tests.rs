use super::fixtures::{new_run, open_temp, params};
use super::*;
use crate::core::model::{IterStatus, RunStatus};

#[test]
fn schema_created_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/history.db");
    let id = {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.path(), path);
        store.create_run(&new_run()).unwrap()
    };
    let store = Store::open(&path).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let run = store.run(id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.owner_pid, Some(std::process::id()));
    assert_eq!(run.commit_summary, "bigger model");
    assert_eq!(run.trigger, "manual");
    assert!(run.finished_at.is_none());
}

#[test]
fn a_first_version_history_gains_the_iteration_commit_edits_and_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO runs (id, project, commit_id, commit_summary, branch, triggered_by, \
         started_at, status) VALUES (1, '/p', 'abc', 's', 'main', 'manual', 0, 'succeeded');
         INSERT INTO iterations (run_id, no, params, status) VALUES (1, 1, '{}', 'succeeded');",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let mut it = store.iterations(RunId(1)).unwrap().remove(0);
    assert_eq!((it.commit_id.as_deref(), it.model.as_deref()), (None, None));
    assert!(it.edits.is_empty());
    it.commit_id = Some("f00d".into());
    store.upsert_iteration(&it).unwrap();
    let again = store.iterations(RunId(1)).unwrap().remove(0);
    assert_eq!(again.commit_id.as_deref(), Some("f00d"));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }));
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn pragmas_are_set() {
    let (_dir, store) = open_temp();
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
    let fk: i64 = store
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn status_spellings_round_trip() {
    for s in RunStatus::ALL {
        assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        assert_eq!(s.to_string(), s.as_str());
    }
    for s in IterStatus::ALL {
        assert_eq!(s.as_str().parse::<IterStatus>().unwrap(), *s);
    }
    assert!("bogus".parse::<RunStatus>().is_err());
}

#[test]
fn iteration_upsert_replaces_all_columns() {
    let (_dir, store) = open_temp();
    let run = store.create_run(&new_run()).unwrap();
    let mut row = IterationRow::new(run, IterationNo(1), params(8));
    row.proposal_reason = Some("starting parameters".into());
    store.upsert_iteration(&row).unwrap();
    row.status = IterStatus::BelowTarget;
    row.final_value = Some(0.83);
    row.container_id = Some("abc".into());
    row.image = Some("python:3.12".into());
    row.started_at = Some(1000);
    row.finished_at = Some(61_000);
    row.log_tail = Some("epoch 3 accuracy=0.83".into());
    row.workdir = Some("/tmp/w".into());
    row.proposal_reason = None;
    store.upsert_iteration(&row).unwrap();
    store
        .upsert_iteration(&IterationRow::new(run, IterationNo(2), params(16)))
        .unwrap();
    let rows = store.iterations(run).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], row);
    assert_eq!(rows[1].no, IterationNo(2));
    assert_eq!(rows[1].params, params(16));
}

#[test]
fn iteration_needs_an_existing_run() {
    let (_dir, store) = open_temp();
    let err = store
        .upsert_iteration(&IterationRow::new(RunId(42), IterationNo(1), params(8)))
        .unwrap_err();
    assert!(err.to_string().contains("iteration 1 of run 42"), "{err}");
}

#[test]
fn non_finite_values_round_trip() {
    let (_dir, store) = open_temp();
    let run = store.create_run(&new_run()).unwrap();
    let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 0.0];
    for (i, v) in values.iter().enumerate() {
        let no = IterationNo(i as u32 + 1);
        let mut row = IterationRow::new(run, no, params(8));
        row.final_value = Some(*v);
        store.upsert_iteration(&row).unwrap();
        store
            .add_metric_point(
                run,
                IterationNo(1),
                &MetricPoint {
                    epoch: Some(i as u32),
                    value: *v,
                    at: 5,
                },
            )
            .unwrap();
    }
    store
        .add_metric_point(
            run,
            IterationNo(1),
            &MetricPoint {
                epoch: None,
                value: 1.0,
                at: 6,
            },
        )
        .unwrap();
    let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
    let rows = store.iterations(run).unwrap();
    for (row, v) in rows.iter().zip(values) {
        assert!(
            same(row.final_value.unwrap(), v),
            "{:?} vs {v}",
            row.final_value
        );
    }
    let points = store.metric_points(run, IterationNo(1)).unwrap();
    assert_eq!(points.len(), values.len() + 1);
    for (i, (p, v)) in points.iter().zip(values).enumerate() {
        assert!(same(p.value, v), "{} vs {v}", p.value);
        assert_eq!(p.epoch, Some(i as u32));
    }
    assert_eq!(points[5].epoch, None);
    assert!(store.metric_points(run, IterationNo(2)).unwrap().is_empty());
    // A missing value stays missing.
    store
        .upsert_iteration(&IterationRow::new(run, IterationNo(9), params(8)))
        .unwrap();
    assert_eq!(store.iterations(run).unwrap()[5].final_value, None);
}

#[test]
fn finish_best_and_status_updates() {
    let (_dir, store) = open_temp();
    let run = store.create_run(&new_run()).unwrap();
    store
        .upsert_iteration(&IterationRow::new(run, IterationNo(1), params(8)))
        .unwrap();
    store
        .set_iteration_status(run, IterationNo(1), IterStatus::Running, None)
        .unwrap();
    let it = &store.iterations(run).unwrap()[0];
    assert_eq!(it.status, IterStatus::Running);
    assert!(it.started_at.is_some() && it.finished_at.is_none());
    store
        .set_iteration_status(run, IterationNo(1), IterStatus::Failed, Some("OOM"))
        .unwrap();
    let it = &store.iterations(run).unwrap()[0];
    assert_eq!(it.reason.as_deref(), Some("OOM"));
    assert!(it.finished_at.is_some());
    store.set_best(run, IterationNo(1)).unwrap();
    store
        .finish_run(run, RunStatus::BudgetSpent, Some("5 iterations"))
        .unwrap();
    let r = store.run(run).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::BudgetSpent);
    assert_eq!(r.reason.as_deref(), Some("5 iterations"));
    assert_eq!(r.best_iteration, Some(IterationNo(1)));
    assert!(r.finished_at.is_some());
    assert!(matches!(
        store.finish_run(RunId(99), RunStatus::Failed, None),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert!(matches!(
        store.set_iteration_status(run, IterationNo(7), IterStatus::Failed, None),
        Err(StoreError::NoSuchIteration { .. })
    ));
}

#[test]
fn runs_newest_first_with_limit() {
    let (_dir, store) = open_temp();
    let ids: Vec<RunId> = (0..3)
        .map(|_| store.create_run(&new_run()).unwrap())
        .collect();
    let runs = store.runs(2).unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
    assert!(store.run(RunId(1000)).unwrap().is_none());
}

#[test]
fn events_in_recording_order() {
    let (_dir, store) = open_temp();
    let run = store.create_run(&new_run()).unwrap();
    let other = store.create_run(&new_run()).unwrap();
    store.add_event(Some(run), None, "run", "started").unwrap();
    store
        .add_event(Some(other), None, "run", "other run")
        .unwrap();
    store.add_event(None, None, "tool", "tool-wide").unwrap();
    store
        .add_event(Some(run), Some(IterationNo(1)), "build", "image built")
        .unwrap();
    store
        .add_event(Some(run), Some(IterationNo(1)), "metric", "accuracy 0.5")
        .unwrap();
    let events = store.events(run).unwrap();
    let summary: Vec<(Option<IterationNo>, &str, &str)> = events
        .iter()
        .map(|(_, no, kind, msg)| (*no, kind.as_str(), msg.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (None, "run", "started"),
            (Some(IterationNo(1)), "build", "image built"),
            (Some(IterationNo(1)), "metric", "accuracy 0.5"),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn recover_marks_only_dead_owners() {
    let (_dir, store) = open_temp();
    let live = store.create_run(&new_run()).unwrap();
    let dead = store.create_run(&new_run()).unwrap();
    let finished = store.create_run(&new_run()).unwrap();
    store
        .finish_run(finished, RunStatus::Succeeded, None)
        .unwrap();
    // Far above any pid_max (2^22 on Linux), so no such process can exist.
    store
        .conn
        .execute(
            "UPDATE runs SET owner_pid = ?2 WHERE id IN (?1, ?3)",
            rusqlite::params![dead.0, 999_999_999u32, finished.0],
        )
        .unwrap();
    for (no, status) in [
        (1, IterStatus::BelowTarget),
        (2, IterStatus::Running),
        (3, IterStatus::AwaitingApproval),
    ] {
        let mut row = IterationRow::new(dead, IterationNo(no), params(8));
        row.status = status;
        store.upsert_iteration(&row).unwrap();
    }
    let mut live_it = IterationRow::new(live, IterationNo(1), params(8));
    live_it.status = IterStatus::Running;
    store.upsert_iteration(&live_it).unwrap();

    assert_eq!(store.recover_interrupted().unwrap(), vec![dead]);
    let d = store.run(dead).unwrap().unwrap();
    assert_eq!(d.status, RunStatus::Interrupted);
    assert_eq!(d.reason.as_deref(), Some(INTERRUPTED_REASON));
    assert!(d.finished_at.is_some());
    let its = store.iterations(dead).unwrap();
    assert_eq!(its[0].status, IterStatus::BelowTarget);
    assert_eq!(its[0].reason, None);
    assert_eq!(its[1].status, IterStatus::Stopped);
    assert_eq!(its[1].reason.as_deref(), Some(INTERRUPTED_REASON));
    assert_eq!(its[2].status, IterStatus::Stopped);

    assert_eq!(store.run(live).unwrap().unwrap().status, RunStatus::Running);
    assert_eq!(
        store.iterations(live).unwrap()[0].status,
        IterStatus::Running
    );
    assert_eq!(
        store.run(finished).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    // Idempotent.
    assert!(store.recover_interrupted().unwrap().is_empty());
}

#[test]
fn recover_leaves_runs_of_other_hosts() {
    let (_dir, store) = open_temp();
    let run = store.create_run(&new_run()).unwrap();
    store
        .conn
        .execute(
            "UPDATE runs SET owner_pid = 999999999, owner_host = 'elsewhere-host-name' WHERE id = ?1",
            [run.0],
        )
        .unwrap();
    if host_name().is_some() {
        assert!(store.recover_interrupted().unwrap().is_empty());
    }
}

#[test]
fn store_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    let (_dir, store) = open_temp();
    let handle = std::thread::spawn(move || store.runs(1).map(|r| r.len()));
    assert_eq!(handle.join().unwrap().unwrap(), 0);
}

#[test]
fn last_finished_runs_are_the_newest_trained_per_branch() {
    let (_dir, s) = open_temp();
    let on = |branch: &'static str, commit: &'static str, status: RunStatus| {
        let id = s
            .create_run(&NewRun {
                branch,
                commit_id: commit,
                ..new_run()
            })
            .unwrap();
        if status != RunStatus::Running {
            s.finish_run(id, status, None).unwrap();
        }
        id
    };
    on("main", "a", RunStatus::Succeeded);
    let b = on("main", "b", RunStatus::BudgetSpent);
    on("main", "c", RunStatus::Cancelled);
    on("main", "d", RunStatus::Interrupted);
    on("main", "e", RunStatus::Running);
    let f = on("dev", "f", RunStatus::Failed);
    let found: Vec<(RunId, String, String)> = s
        .last_finished_runs("/home/me/cnn")
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.branch, r.commit_id))
        .collect();
    assert_eq!(
        found,
        [
            (f, "dev".to_string(), "f".to_string()),
            (b, "main".to_string(), "b".to_string())
        ]
    );
    assert!(s.last_finished_runs("/other").unwrap().is_empty());
}

#[test]
fn earlier_runs_are_the_branchs_finished_runs_on_other_commits_newest_first() {
    let (_dir, store) = open_temp();
    let make = |commit: &str, branch: &str, project: &str, status: Option<RunStatus>| {
        let run = NewRun {
            project,
            commit_id: commit,
            branch,
            ..new_run()
        };
        let id = store.create_run(&run).unwrap();
        if let Some(s) = status {
            store.finish_run(id, s, None).unwrap();
        }
        id
    };
    let old = make("c1", "main", "/p", Some(RunStatus::BudgetSpent));
    let newer = make("c2", "main", "/p", Some(RunStatus::Succeeded));
    make("c3", "main", "/p", Some(RunStatus::Succeeded)); // the commit being trained
    make("c4", "main", "/p", Some(RunStatus::Cancelled)); // never trained
    make("c5", "main", "/p", None); // still running
    make("c6", "dev", "/p", Some(RunStatus::Succeeded)); // another branch
    make("c7", "main", "/q", Some(RunStatus::Succeeded)); // another project
    let ids: Vec<RunId> = store
        .earlier_runs("/p", "main", "c3", 5)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![newer, old]);
    assert_eq!(store.earlier_runs("/p", "main", "c3", 1).unwrap().len(), 1);
}

#[test]
fn new_runs_are_numbered_above_the_history_and_above_numbers_taken_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("h.db")).unwrap();
    assert_eq!(store.create_run_above(&new_run(), 0).unwrap(), RunId(1));
    // runs/1..4 or refs/mlops/run-4 exist from an older history.
    assert_eq!(store.create_run_above(&new_run(), 4).unwrap(), RunId(5));
    assert_eq!(store.create_run_above(&new_run(), 2).unwrap(), RunId(6));
    assert_eq!(store.create_run(&new_run()).unwrap(), RunId(7));
}

#[test]
fn a_history_file_deleted_or_replaced_under_the_connection_refuses_new_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = Store::open(&path).unwrap();
    store.check_file().unwrap();
    std::fs::remove_file(&path).unwrap();
    let e = store.create_run(&new_run()).unwrap_err();
    assert!(matches!(e, StoreError::Deleted { .. }), "{e}");
    assert!(e.to_string().contains("was deleted"), "{e}");
    // Another file in its place is not the file this connection writes to either.
    drop(Store::open(&path).unwrap());
    assert!(matches!(
        store.check_file(),
        Err(StoreError::Deleted { .. })
    ));
}
