//! A swarm's nodes as the console sees them, on a real Docker Swarm (tests/swarm/up.sh): the three
//! nodes, the one manager, a trial on the node Swarm placed it with its reservation counted there;
//! then a worker's dockerd is killed and the node worker reports that node down within a bounded
//! time. The swarm is made whole again (up.sh) before the test ends, pass or fail.
//!
//! The swarm must be up: the test fails, naming tests/swarm/up.sh, when it is not. It kills a
//! node: give it a swarm of its own (MLOPS_SWARM_PREFIX, MLOPS_SWARM_NET, MLOPS_TEST_SWARM).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::{DockerBackend, SwarmBackend};
use mlops_tui::adapters::pool_backend::PoolBackend;
use mlops_tui::core::config::Config;
use mlops_tui::core::ids::{ContainerId, IterationNo, RunId};
use mlops_tui::core::model::{ImageSpec, NodeRole, NodeView, labels};
use mlops_tui::engine::msg::Msg;

const IMAGE: &str = "mlops-tui/sklearn:latest";
/// How long a killed worker may take to be reported down: Swarm's heartbeat grace (≈ 15 s here)
/// plus a couple of listings.
const DOWN_WITHIN: Duration = Duration::from_secs(90);

fn root() -> PathBuf {
    PathBuf::from(std::env::var("MLOPS_TEST_SWARM").unwrap_or_else(|_| "/tmp/mlops-swarm".into()))
}

async fn connect(env: &HashMap<String, String>) -> SwarmBackend {
    let text = format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\
         [[engines]]\nname = \"cluster\"\nkind = \"swarm\"\nhost = \"{}\"\nregistry = \"{}\"\nslots = 3\n",
        env["MLOPS_SWARM_MANAGER"], env["MLOPS_SWARM_REGISTRY"]
    );
    let spec = Config::parse(&text, Path::new("mlops.toml"))
        .unwrap()
        .engines[0]
        .clone();
    let local = Arc::new(DockerBackend::connect_default().unwrap());
    SwarmBackend::connect(&spec, Some(local)).await.unwrap()
}

/// Iteration 1 of run 1 of the store `store`: sleeps, reserving 1.5 CPUs and 512 MiB.
fn trial(root: &Path, image: &str, store: &(String, String)) -> TrainSpec {
    let (workspace, workdir) = (root.join("workspace"), root.join("workdir"));
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::write(workspace.join("train.py"), "import time\ntime.sleep(600)\n").unwrap();
    TrainSpec {
        name: format!("mlops-swarm-nodes-{}", std::process::id()),
        image: image.into(),
        command: vec!["python3".into(), "train.py".into()],
        workspace,
        workdir,
        data: vec![],
        user: "4242:4242".into(),
        env: vec![("MLOPS_DIR".into(), "/mlops".into())],
        labels: BTreeMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::RUN.to_string(), "1".to_string()),
            (labels::ITERATION.to_string(), "1".to_string()),
            store.clone(),
        ]),
        memory_bytes: 512 << 20,
        cpus: 1.5,
        pids: 128,
        disk_bytes: 64 << 20,
        gpus: None,
        transfer: Transfer::Archive,
    }
}

/// Waits until the trial's task runs; answers the node id Swarm placed it on.
async fn placed(b: &SwarmBackend, id: &ContainerId) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let view = b.task_view(id).await.unwrap().expect("the service exists");
        if view.state == "running" {
            return view.node;
        }
        assert!(!view.ended, "the task ended: {view:?}");
        assert!(Instant::now() < deadline, "the task never ran: {view:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Node id → the name up.sh labelled it with (`a2`).
async fn test_names(b: &SwarmBackend) -> HashMap<String, String> {
    let nodes = b.client().list_nodes(None).await.unwrap();
    nodes
        .into_iter()
        .map(|n| {
            let name = n
                .spec
                .and_then(|s| s.labels)
                .and_then(|l| l.get("mlops-test.node").cloned());
            (n.id.unwrap_or_default(), name.unwrap_or_default())
        })
        .collect()
}

/// Restarts whatever node is down with tests/swarm/up.sh (same prefix, network and directory as
/// the swarm of `env`) when dropped: the swarm is whole again whether the test passed or not.
struct Heal {
    env: HashMap<String, String>,
    armed: bool,
}

impl Heal {
    fn now(&mut self) {
        self.armed = false;
        let first = self.env["MLOPS_SWARM_NODES"]
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let prefix = first.trim_end_matches(|c: char| c.is_ascii_digit());
        let registry = &self.env["MLOPS_SWARM_REGISTRY"];
        let net = registry.split(':').next().unwrap().trim_end_matches(".2");
        let status = std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/swarm/up.sh"))
            .env("MLOPS_SWARM_PREFIX", prefix)
            .env("MLOPS_SWARM_NET", net)
            .env("MLOPS_TEST_SWARM", root())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "tests/swarm/up.sh makes the swarm whole again"
        );
    }
}

impl Drop for Heal {
    fn drop(&mut self) {
        if self.armed {
            self.now();
        }
    }
}

/// The nodes' listing as the node worker reports it, until `done` holds of one (or the time is up).
async fn reported(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>,
    within: Duration,
    done: impl Fn(&[NodeView]) -> bool,
) -> Vec<NodeView> {
    let deadline = Instant::now() + within;
    let mut last = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Msg::Nodes { engine, nodes })) => {
                assert_eq!(engine, "cluster");
                if done(&nodes) {
                    return nodes;
                }
                last = nodes;
            }
            Ok(other) => panic!("the node worker stopped or sent {other:?}"),
            Err(_) => panic!("not within {within:?}; last listing: {last:#?}"),
        }
    }
}

/// The manager's listing for `store`: three nodes, one leader, the trial `id` on node `on` (where
/// Swarm placed it) with its reservation, nothing elsewhere; another store sees none of it.
async fn assert_listing(b: &SwarmBackend, store: &(String, String), id: &ContainerId, on: &str) {
    let nodes = b
        .nodes(std::slice::from_ref(store))
        .await
        .unwrap()
        .expect("a cluster");
    assert_eq!(nodes.len(), 3, "{nodes:#?}");
    let managers: Vec<&NodeView> = nodes.iter().filter(|n| n.is_manager()).collect();
    assert_eq!(managers.len(), 1, "{nodes:#?}");
    assert_eq!(managers[0].role, NodeRole::Manager { leader: true });
    assert!(
        nodes
            .iter()
            .all(|n| !n.is_lost() && n.cpus > 0.0 && !n.address.is_empty())
    );
    let names: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), 3, "each node has its own name: {names:?}");
    let host = nodes
        .iter()
        .find(|n| n.id == on)
        .expect("the trial's node is listed");
    assert_eq!(host.trials.len(), 1, "{host:#?}");
    let t = &host.trials[0];
    assert_eq!(
        (t.run, t.no, t.task_state.as_str()),
        (RunId(1), IterationNo(1), "running")
    );
    assert_eq!(&t.service, id);
    assert_eq!(
        (host.reserved_cpus, host.reserved_memory_bytes),
        (1.5, 512 << 20)
    );
    for n in nodes.iter().filter(|n| n.id != on) {
        assert!(n.trials.is_empty() && n.reserved_cpus == 0.0, "{n:#?}");
    }
    assert_eq!(
        b.node_of(id).await.unwrap().as_deref(),
        Some(host.name.as_str())
    );
    // Another store's listing counts nothing of this trial.
    let other = [(labels::STORE.to_string(), "/elsewhere".to_string())];
    let theirs = b.nodes(&other).await.unwrap().unwrap();
    assert!(
        theirs
            .iter()
            .all(|n| n.trials.is_empty() && n.reserved_cpus == 0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_show_the_trial_where_swarm_placed_it_and_a_killed_worker_goes_down() {
    let env = common::swarm::env();
    let b = Arc::new(connect(&env).await);
    let (quiet, _) = tokio::sync::mpsc::unbounded_channel();
    let image = b
        .prepare_image(&ImageSpec::Reference(IMAGE.into()), quiet)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = (
        labels::STORE.to_string(),
        dir.path().join("runs").display().to_string(),
    );
    let id = b.start(trial(dir.path(), &image, &store)).await.unwrap();
    let on = placed(&b, &id).await;

    assert_listing(&b, &store, &id, &on).await;

    // The node worker, on the swarm as the run loop's pool holds it, reports the listing, then
    // the killed worker down.
    let pool = Arc::new(PoolBackend::Swarm(connect(&env).await));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = tokio::spawn(mlops_tui::engine::workers::nodes::watch(
        "cluster".into(),
        pool,
        vec![store.clone()],
        tx,
    ));
    let first = reported(&mut rx, Duration::from_secs(10), |_| true).await;
    assert!(
        first
            .iter()
            .find(|n| n.id == on)
            .is_some_and(|n| n.trials.len() == 1)
    );
    let victim = first
        .iter()
        .find(|n| !n.is_manager() && n.id != on)
        .expect("a worker without the trial")
        .clone();
    let label = test_names(&b).await[&victim.id].to_uppercase();
    let pidfile = &env[&format!("MLOPS_SWARM_{label}_PID")];
    let pid = std::fs::read_to_string(pidfile).unwrap().trim().to_string();
    let mut heal = Heal {
        env: env.clone(),
        armed: true,
    };
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    let at = Instant::now();
    let down = reported(&mut rx, DOWN_WITHIN, |nodes| {
        nodes.iter().any(|n| n.id == victim.id && n.is_lost())
    })
    .await;
    let took = at.elapsed();
    let still = down.iter().find(|n| n.id == on).unwrap();
    assert_eq!(
        still.trials.len(),
        1,
        "the trial stays on its node: {still:#?}"
    );
    worker.abort();

    b.remove(&id).await.unwrap();
    heal.now();
    eprintln!(
        "swarm_nodes_real: node {} ({label}) reported down {:.1} s after its dockerd was killed",
        victim.name,
        took.as_secs_f64()
    );
}
