//! Opening the console does not train again: a watching `run --headless` started on a head that the
//! history holds a finished run for says so and waits; a new commit still trains. The real binary on
//! the real Docker engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, Headless, commit_all};
use mlops_tui::adapters::store::{RunRow, Store};
use mlops_tui::core::model::RunStatus;

const TRAIN: &str = include_str!("fixtures/monitor/train.py");

fn runs(f: &Fixture) -> Vec<RunRow> {
    let mut runs = Store::open(&f.data.path().join("history.sqlite3"))
        .and_then(|s| s.runs(100))
        .unwrap_or_default();
    runs.reverse();
    runs
}

/// Waits until the fixture has `n` runs, all finished, and none of its containers is left.
async fn finished_runs(f: &Fixture, h: &Headless, n: usize) -> Vec<RunRow> {
    let start = Instant::now();
    loop {
        let runs = runs(f);
        if runs.len() == n
            && runs.iter().all(|r| r.status.is_final())
            && f.leftover_containers().await.is_empty()
        {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{n} finished runs expected, have {runs:?}:\n{}",
            h.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_watcher_does_not_retrain_the_head_but_trains_a_new_commit() {
    let toml = "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n[metric]\nname = \"accuracy\"\ntarget = 0.99\n[budget]\nmax_iterations = 1\n[resources]\nmemory = \"256m\"\n[notify.desktop]\nenabled = false\n[params]\nepochs = 2\npace = 0.1\n";
    let f = Fixture::with_files(&[("mlops.toml", toml), ("train.py", TRAIN)]);

    // First start: the head is trained.
    let first = Headless::start(&f, None);
    let runs1 = finished_runs(&f, &first, 1).await;
    assert_eq!(runs1[0].status, RunStatus::Succeeded, "{}", first.text());
    drop(first);

    // Second start on the same head: said, not trained.
    let second = Headless::start(&f, None);
    second
        .wait_for(
            &format!("already trained in run {}", runs1[0].id),
            Duration::from_secs(60),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(runs(&f).len(), 1, "retrained:\n{}", second.text());
    assert!(
        f.containers(false).await.is_empty(),
        "a container was started:\n{}",
        second.text()
    );

    // A new commit still trains.
    std::fs::write(f.dir().join("notes.txt"), "more data\n").unwrap();
    let new_head = commit_all(f.dir(), "notes").to_string();
    let runs2 = finished_runs(&f, &second, 2).await;
    assert_eq!(runs2[1].commit_id, new_head, "{}", second.text());
    assert_eq!(runs2[1].status, RunStatus::Succeeded, "{}", second.text());
}
