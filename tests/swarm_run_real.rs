//! The run loop on a real Docker Swarm (tests/swarm/up.sh: three dockerd in network namespaces and
//! a registry), through the real binary with the swarm as the project's `[[engines]]` entry:
//! - `parallel = 3` trains on three different nodes, as Swarm reports the placement;
//! - SIGKILL of the dockerd of the node a trial runs on: the trial resumes on another node from the
//!   checkpoint that came home while it ran, each epoch is stored once, and the old task's output
//!   does not reach the history;
//! - a SIGKILLed mlops-tui, started again, re-attaches to the running services and finishes the run;
//! - nothing is left on the swarm (services, networks) after a run.
//!
//! The swarm must be up: the tests fail, naming tests/swarm/up.sh, when it is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{NodeSpecAvailabilityEnum, TaskState};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    UpdateNodeOptionsBuilder,
};
use common::Fixture;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, labels};

/// The tests share the swarm, and one kills a node: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The manager's client, API version negotiated (the test swarm speaks 1.41).
async fn manager(env: &HashMap<String, String>) -> Docker {
    let sock = env["MLOPS_SWARM_MANAGER"].trim_start_matches("unix://");
    assert!(
        std::os::unix::net::UnixStream::connect(sock).is_ok(),
        "the test swarm's manager does not answer at {sock}: run `bash tests/swarm/up.sh` as root"
    );
    Docker::connect_with_unix(sock, 60, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// The project's `mlops.toml`: the sklearn image, `parallel` trials of more than half a node's two
/// CPUs each (so no node holds two), the swarm as the only engine.
fn toml(env: &HashMap<String, String>, parallel: u32, max: u32, extra: &str) -> String {
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "sklearn"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = {max}
max_failures = 0
metric_timeout = "90s"
parallel = {parallel}

[resources]
memory = "256m"
cpus = 1.5

[tweak]
strategy = "random"
apply = "auto"

[tweak.space]
k = {{ values = [1, 2, 3, 4, 5, 6] }}

[[engines]]
name = "cluster"
kind = "swarm"
host = "{host}"
registry = "{registry}"
slots = 3
{extra}
"#,
        host = env["MLOPS_SWARM_MANAGER"],
        registry = env["MLOPS_SWARM_REGISTRY"],
    )
}

/// Iteration 1 reaches the target at its fifteenth epoch of two seconds, checkpointing each epoch
/// after reporting it and resuming after the checkpoint's epoch; the others report a low value each
/// second for two minutes, so they can only end by being stopped.
const STEADY: &str = r#"
import os, time
winner = os.environ["MLOPS_ITERATION"] == "1"
ckpt = "/mlops/checkpoints/epoch.txt"
start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0
print(f"resuming after epoch {start} (attempt {os.environ.get('MLOPS_ATTEMPT')})" if start else "starting", flush=True)
epochs = 15 if winner else 120
for epoch in range(start + 1, epochs + 1):
    time.sleep(2 if winner else 1)
    value = 0.95 if winner and epoch == epochs else 0.5
    print(f"epoch {epoch}/{epochs} accuracy={value}", flush=True)
    with open(ckpt + ".tmp", "w") as f:
        f.write(str(epoch))
    os.replace(ckpt + ".tmp", ckpt)
"#;

/// `run --headless --once` of the real binary on the fixture's project.
fn start_headless(f: &Fixture) -> std::process::Child {
    Command::new(common::bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the binary to end (at most `within`); its exit code and everything it printed.
async fn finish(child: std::process::Child, within: Duration) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        within,
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the run ended in time")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.code(), text)
}

/// Waits until `check` holds on the history, or fails saying `what`.
async fn wait_for(f: &Fixture, what: &str, check: impl Fn(&Store) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(420);
    loop {
        if Store::open(&f.data.path().join("history.sqlite3"))
            .ok()
            .is_some_and(|s| check(&s))
        {
            return;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every task Swarm ran for the fixture's services: task id → (iteration, node id), as Swarm
/// reports them (placement read from Swarm, not from mlops-tui).
type Placements = Arc<Mutex<BTreeMap<String, (String, String)>>>;

/// The fixture's store label, `key=value`: on every service and network of its trials.
fn store_of(f: &Fixture) -> String {
    format!("{}={}", labels::STORE, f.data.path().join("runs").display())
}

/// The services carrying `store` (see [`store_of`]): id → labels.
async fn services(docker: &Docker, store: &str) -> Vec<(String, HashMap<String, String>)> {
    let store = store.to_string();
    let filters = HashMap::from([("label".to_string(), vec![store])]);
    docker
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((s.id?, s.spec?.labels.unwrap_or_default())))
        .collect()
}

/// The running tasks of the services carrying `store`: (task id, iteration, node id).
async fn running_tasks(docker: &Docker, store: &str) -> Vec<(String, String, String)> {
    let mut running = Vec::new();
    for (id, labels_of) in services(docker, store).await {
        let no = labels_of
            .get(labels::ITERATION)
            .cloned()
            .unwrap_or_default();
        let filters = HashMap::from([("service".to_string(), vec![id])]);
        let tasks = docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .unwrap_or_default();
        running.extend(
            tasks
                .into_iter()
                .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
                .filter_map(|t| Some((t.id?, no.clone(), t.node_id?))),
        );
    }
    running
}

/// Records, until aborted, where Swarm runs each task of the fixture's services.
fn record_placements(docker: Docker, f: &Fixture) -> (Placements, tokio::task::JoinHandle<()>) {
    let seen: Placements = Arc::default();
    let sink = seen.clone();
    let store = store_of(f);
    let task = tokio::spawn(async move {
        loop {
            for (task, no, node) in running_tasks(&docker, &store).await {
                sink.lock().unwrap().insert(task, (no, node));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (seen, task)
}

/// The fixture's services and trial networks still on the swarm, once removal had time to finish.
async fn leftovers(docker: &Docker, f: &Fixture) -> (usize, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let services = services(docker, &store_of(f)).await.len();
        let filters = HashMap::from([("label".to_string(), vec![store_of(f)])]);
        let networks: Vec<String> = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|n| n.name)
            .collect();
        if (services == 0 && networks.is_empty()) || Instant::now() >= deadline {
            return (services, networks);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Each epoch of iteration `no` stored once, in order.
fn epochs_of(store: &Store, no: u32) -> Vec<u32> {
    let mut seen: Vec<u32> = store
        .metric_points(RunId(1), IterationNo(no))
        .unwrap()
        .iter()
        .filter_map(|p| p.epoch)
        .collect();
    seen.sort_unstable();
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn three_trials_run_on_three_nodes_and_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    let env = common::swarm::env();
    let docker = manager(&env).await;
    let f = Fixture::with_files(&[("mlops.toml", &toml(&env, 3, 3, "")), ("train.py", STEADY)]);
    let (placements, recorder) = record_placements(docker.clone(), &f);
    let (code, text) = finish(start_headless(&f), Duration::from_secs(600)).await;
    recorder.abort();

    assert_eq!(code, Some(0), "{text}");
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its[0].status, IterStatus::Succeeded, "{its:?}");
    assert!(
        its[1..].iter().all(|i| i.status == IterStatus::Stopped),
        "{its:?}"
    );
    assert_eq!(epochs_of(&store, 1), (1..=15).collect::<Vec<u32>>());
    let names = common::swarm::node_names(&docker).await;
    let placed: BTreeMap<String, String> = placements
        .lock()
        .unwrap()
        .values()
        .map(|(no, node)| (no.clone(), names[node].clone()))
        .collect();
    let nodes: BTreeSet<&String> = placed.values().collect();
    assert_eq!(placed.len(), 3, "three trials ran: {placed:?}");
    assert_eq!(
        nodes.len(),
        3,
        "Swarm placed them on three nodes: {placed:?}"
    );
    // Headless output names each trial's node: where Swarm placed it, and on its lines.
    for no in 1..=3 {
        let said = format!("[node:{no}] iteration {no} placed on node ");
        assert!(text.contains(&said), "{said} in {text}");
    }
    assert!(text.contains("[#1 cluster/"), "{text}");
    let (services, networks) = leftovers(&docker, &f).await;
    assert_eq!((services, networks.len()), (0, 0), "left: {networks:?}");
}

/// Sets the manager node's availability: drained, no trial is placed on it (so that killing the
/// node a trial runs on never kills the manager).
async fn drain_manager(docker: &Docker, drain: bool) {
    let names = common::swarm::node_names(docker).await;
    let (id, _) = names.iter().find(|(_, n)| n.ends_with('1')).unwrap();
    let node = docker.inspect_node(id).await.unwrap();
    let mut spec = node.spec.unwrap();
    spec.availability = Some(match drain {
        true => NodeSpecAvailabilityEnum::DRAIN,
        false => NodeSpecAvailabilityEnum::ACTIVE,
    });
    let version = node.version.and_then(|v| v.index).unwrap() as i64;
    docker
        .update_node(
            id,
            spec,
            UpdateNodeOptionsBuilder::default().version(version).build(),
        )
        .await
        .unwrap();
}

/// The pid of the dockerd of test node `name` (s2, s3), as up.sh wrote it.
fn dockerd_pid(env: &HashMap<String, String>, name: &str) -> i32 {
    let key = format!("MLOPS_SWARM_{}_PID", name.to_uppercase());
    let value = &env[&key];
    let text = std::fs::read_to_string(value).unwrap_or_else(|_| value.clone());
    text.trim().parse().unwrap()
}

/// The node iteration 1's running task is on, by its test name.
async fn node_of_iteration_1(docker: &Docker, f: &Fixture) -> String {
    let names = common::swarm::node_names(docker).await;
    let running = running_tasks(docker, &store_of(f)).await;
    let (_, _, node) = running
        .iter()
        .find(|(_, no, _)| no == "1")
        .expect("iteration 1 has a running task");
    names[node].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_on_a_killed_node_resumes_on_another_from_its_checkpoint() {
    let _serial = SERIAL.lock().await;
    let env = common::swarm::env();
    let docker = manager(&env).await;
    drain_manager(&docker, true).await;
    let f = Fixture::with_files(&[("mlops.toml", &toml(&env, 1, 1, "")), ("train.py", STEADY)]);
    drop(f.store());
    let child = start_headless(&f);
    wait_for(&f, "iteration 1 reaches epoch 5", |s| {
        s.metric_points(RunId(1), IterationNo(1))
            .is_ok_and(|p| p.len() >= 5)
    })
    .await;
    let node = node_of_iteration_1(&docker, &f).await;
    let pid = dockerd_pid(&env, &node);
    let killed_at = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&f, "iteration 1 reports an epoch again", |s| {
        s.events(RunId(1))
            .is_ok_and(|e| e.iter().any(|e| e.3.contains("new attempt")))
    })
    .await;
    let resumed_after = killed_at.elapsed();
    let (code, text) = finish(child, Duration::from_secs(600)).await;
    let up = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/swarm/up.sh"))
        .status()
        .unwrap();
    drain_manager(&docker, false).await;
    assert!(up.success(), "tests/swarm/up.sh brings node {node} back");

    assert_eq!(code, Some(0), "{text}");
    println!("node {node} killed; new attempt started after {resumed_after:?}");
    assert!(
        text.contains("is down") || text.contains("is unknown"),
        "{text}"
    );
    assert!(text.contains("resuming after epoch"), "{text}");
    assert!(text.contains("fenced off"), "{text}");
    let store = f.store();
    assert_eq!(
        epochs_of(&store, 1),
        (1..=15).collect::<Vec<u32>>(),
        "each epoch once"
    );
    let output = std::fs::read_to_string(f.data.path().join("runs/1/iter-1/output.log")).unwrap();
    let resumed = output
        .lines()
        .filter(|l| l.starts_with("resuming after epoch"))
        .count();
    assert_eq!(resumed, 1, "{output}");
    assert!(
        !output.contains("@@mlops-tui"),
        "checkpoint archives stay out of the output: {output}"
    );
    let (services, networks) = leftovers(&docker, &f).await;
    assert_eq!((services, networks.len()), (0, 0), "left: {networks:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_mlops_tui_reattaches_to_its_services_and_finishes_the_run() {
    let _serial = SERIAL.lock().await;
    let env = common::swarm::env();
    let docker = manager(&env).await;
    let f = Fixture::with_files(&[("mlops.toml", &toml(&env, 3, 3, "")), ("train.py", STEADY)]);
    drop(f.store());
    let mut first = start_headless(&f);
    let points = |s: &Store, no: u32| s.metric_points(RunId(1), IterationNo(no)).map(|p| p.len());
    wait_for(&f, "three trials report epochs", |s| {
        points(s, 1).is_ok_and(|n| n >= 3) && (2..=3).all(|no| points(s, no).is_ok_and(|n| n >= 2))
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    assert_eq!(
        services(&docker, &store_of(&f)).await.len(),
        3,
        "the trials train on"
    );

    let (code, text) = finish(start_headless(&f), Duration::from_secs(600)).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("3 container(s) to re-attach"), "{text}");
    assert!(
        !text.contains("reviving"),
        "live services are re-attached: {text}"
    );
    let store = f.store();
    assert_eq!(store.runs(10).unwrap().len(), 1, "no second run");
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 3, "every iteration exactly once: {its:?}");
    assert_eq!(its[0].status, IterStatus::Succeeded);
    assert_eq!(
        epochs_of(&store, 1),
        (1..=15).collect::<Vec<u32>>(),
        "each epoch once"
    );
    let (services, networks) = leftovers(&docker, &f).await;
    assert_eq!((services, networks.len()), (0, 0), "left: {networks:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_no_node_can_take_waits_and_says_swarms_reason() {
    let _serial = SERIAL.lock().await;
    let env = common::swarm::env();
    let docker = manager(&env).await;
    let nowhere = "constraints = [\"node.labels.mlops-test.node==nowhere\"]\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml(&env, 1, 1, nowhere)),
        ("train.py", STEADY),
    ]);
    let h = common::Headless::start(&f, None);
    h.wait_for(
        "iteration 1 waits for a node: pending (no suitable node (scheduling constraints not satisfied on 3 nodes))",
        Duration::from_secs(300),
    )
    .await;
    drop(h);
    for (id, _) in services(&docker, &store_of(&f)).await {
        docker.delete_service(&id).await.unwrap();
    }
    let (services, networks) = leftovers(&docker, &f).await;
    assert_eq!(services, 0);
    for n in networks {
        let _ = docker.remove_network(&n).await;
    }
}
