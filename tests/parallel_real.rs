//! Trials side by side on the real local engine (`[budget] parallel = 3`): three containers train at
//! once, as the engine's own events show, and when one reaches the target the others are stopped and
//! recorded `stopped`, never failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bollard::query_parameters::EventsOptionsBuilder;
use common::Fixture;
use futures_util::StreamExt;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{IterStatus, RunStatus, labels};

/// Iteration 1 reaches the target after a few seconds (long enough for the others to start); every
/// other iteration reports a low value each second for two minutes, so it can only end by being
/// stopped. The outcome does not depend on which points the strategy proposes.
const TRAIN: &str = r#"
import json, os, sys, time

params = json.loads(os.environ["MLOPS_PARAMS"])
winner = os.environ["MLOPS_ITERATION"] == "1"
print(f"k={params['k']} winner={winner}", flush=True)
epochs = 3 if winner else 120
for epoch in range(1, epochs + 1):
    time.sleep(2 if winner else 1)
    value = 0.95 if winner and epoch == epochs else 0.5
    print(f"epoch {epoch}/{epochs} accuracy={value}", flush=True)
"#;

/// One container's life as the engine saw it: start and death times (ns) and the iteration label.
#[derive(Debug, Default, Clone)]
struct Life {
    iteration: String,
    start: Option<i64>,
    die: Option<i64>,
}

/// Collects the engine's start/die events of this fixture's containers while the run goes on.
fn record_lives(
    f: &Fixture,
) -> (
    Arc<Mutex<BTreeMap<String, Life>>>,
    tokio::task::JoinHandle<()>,
) {
    let lives = Arc::new(Mutex::new(BTreeMap::<String, Life>::new()));
    let store = format!("{}={}", labels::STORE, f.data.path().join("runs").display());
    let sink = lives.clone();
    let task = tokio::spawn(async move {
        let docker = DockerBackend::connect_default().unwrap();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                vec!["start".to_string(), "die".to_string()],
            ),
            ("label".to_string(), vec![store]),
        ]);
        let opts = EventsOptionsBuilder::default().filters(&filters).build();
        let mut events = docker.client().events(Some(opts));
        while let Some(Ok(ev)) = events.next().await {
            let actor = ev.actor.unwrap_or_default();
            let attributes = actor.attributes.unwrap_or_default();
            let id = actor.id.unwrap_or_default();
            let mut lives = sink.lock().unwrap();
            let life = lives.entry(id).or_default();
            life.iteration = attributes
                .get(labels::ITERATION)
                .cloned()
                .unwrap_or_default();
            match ev.action.as_deref() {
                Some("start") => life.start = ev.time_nano,
                Some("die") => life.die = ev.time_nano,
                _ => {}
            }
        }
    });
    (lives, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_trials_overlap_and_the_first_to_reach_the_target_stops_the_others() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &common::race_toml(3, 3, "")),
        ("train.py", TRAIN),
    ]);
    let (lives, watcher) = record_lives(&f);
    // The subscription is live before the first container can start (image check, export…).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (outcome, text) = f.run_once_cold().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    watcher.abort();

    assert_eq!(outcome.status, RunStatus::Succeeded, "{text}");
    assert!(
        outcome.reason.starts_with("target reached at iteration 1"),
        "{}",
        outcome.reason
    );

    // The engine's own account: three containers, each started and dead, alive at the same time.
    let lives: Vec<Life> = lives.lock().unwrap().values().cloned().collect();
    assert_eq!(lives.len(), 3, "{lives:?}");
    let starts: Vec<i64> = lives.iter().map(|l| l.start.expect("started")).collect();
    let deaths: Vec<i64> = lives.iter().map(|l| l.die.expect("died")).collect();
    let last_start = *starts.iter().max().unwrap();
    let first_death = *deaths.iter().min().unwrap();
    assert!(
        last_start < first_death,
        "the three lifetimes overlap: {lives:?}"
    );
    let mut iterations: Vec<&str> = lives.iter().map(|l| l.iteration.as_str()).collect();
    iterations.sort_unstable();
    assert_eq!(iterations, ["1", "2", "3"]);

    // The history: the winner succeeded, the others were stopped because of it, nothing failed.
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 3, "{its:?}");
    assert_eq!(its[0].status, IterStatus::Succeeded);
    for it in &its[1..] {
        assert_eq!(it.status, IterStatus::Stopped, "{it:?}");
        assert_eq!(
            it.reason.as_deref(),
            Some("stopped: iteration 1 reached the target")
        );
    }
    let points: Vec<_> = its.iter().map(|i| i.params.clone()).collect();
    assert!(points[0] != points[1] && points[1] != points[2] && points[0] != points[2]);
    assert!(f.leftover_containers().await.is_empty());
}
