//! Trials on a real Docker Swarm: three nodes in network namespaces and a registry
//! (tests/swarm/up.sh). Three trials of the sklearn sample are placed by Swarm, one per node (each
//! reserves more than half a node's CPUs), run from images pushed to the registry and pinned by
//! digest, and bring their results home through the manager; nothing is left behind.
//!
//! The swarm must be up: the test fails, naming tests/swarm/up.sh, when it is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListNetworksOptionsBuilder, ListServicesOptionsBuilder};
use futures_util::StreamExt;
use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::{DockerBackend, SwarmBackend};
use mlops_tui::core::config::{Config, EngineSpec};
use mlops_tui::core::ids::ContainerId;
use mlops_tui::core::model::ImageSpec;

const LABEL: &str = "org.mlops-tui.test";
const IMAGE: &str = "mlops-tui/sklearn:latest";

/// The swarm as an `[[engines]]` entry, read the way a project's mlops.toml is.
fn swarm_spec(env: &HashMap<String, String>, host: &str, registry: &str) -> EngineSpec {
    let text = format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\
         [[engines]]\nname = \"cluster\"\nkind = \"swarm\"\nhost = \"{host}\"\nregistry = \"{registry}\"\nslots = 3\n"
    );
    let _ = env;
    Config::parse(&text, Path::new("mlops.toml"))
        .unwrap()
        .engines[0]
        .clone()
}

async fn connect(env: &HashMap<String, String>) -> SwarmBackend {
    let spec = swarm_spec(
        env,
        &env["MLOPS_SWARM_MANAGER"],
        &env["MLOPS_SWARM_REGISTRY"],
    );
    let local = Arc::new(DockerBackend::connect_default().unwrap());
    SwarmBackend::connect(&spec, Some(local)).await.unwrap()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects/digits-knn-sklearn")
}

fn trial(name: &str, root: &Path, image: &str, k: u32) -> TrainSpec {
    let workspace = root.join("workspace");
    let workdir = root.join("workdir");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::copy(sample().join("train.py"), workspace.join("train.py")).unwrap();
    std::fs::write(
        workdir.join("params.json"),
        format!("{{\"k\": {k}, \"epochs\": 2}}"),
    )
    .unwrap();
    TrainSpec {
        name: name.into(),
        image: image.into(),
        command: vec!["python3".into(), "train.py".into()],
        workspace,
        workdir,
        data: vec![],
        user: "4242:4242".into(),
        env: vec![("MLOPS_DIR".into(), "/mlops".into())],
        labels: BTreeMap::from([(LABEL.to_string(), "swarm_real".to_string())]),
        memory_bytes: 512 << 20,
        // More than half of a node's two CPUs: no node can hold two of these trials.
        cpus: 1.5,
        pids: 128,
        disk_bytes: 256 << 20,
        gpus: None,
        transfer: Transfer::Archive,
    }
}

async fn leftovers(b: &SwarmBackend) -> (Vec<String>, Vec<String>) {
    let filter = HashMap::from([("label".to_string(), vec![format!("{LABEL}=swarm_real")])]);
    let services = b
        .client()
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.spec.and_then(|s| s.name))
        .collect();
    let networks = b
        .client()
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    (services, networks)
}

/// Isolation as Swarm holds it: read-only root, no capabilities, the trial's user, the image pinned
/// by digest from the registry, limits and reservations, a network with no route out.
async fn assert_confined(
    b: &SwarmBackend,
    id: &ContainerId,
    spec: &TrainSpec,
    env: &HashMap<String, String>,
) {
    let service = b.client().inspect_service(&id.0, None).await.unwrap();
    let task = service.spec.unwrap().task_template.unwrap();
    let c = task.container_spec.unwrap();
    assert_eq!(c.read_only, Some(true));
    assert_eq!(c.capability_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(c.user.as_deref(), Some("4242:4242"));
    let pinned = c.image.unwrap();
    assert!(
        pinned.starts_with(&format!("{}/mlops-trial", env["MLOPS_SWARM_REGISTRY"]))
            && pinned.contains("@sha256:"),
        "{pinned}"
    );
    let res = task.resources.unwrap();
    assert_eq!(res.reservations.unwrap().nano_cpus, Some(1_500_000_000));
    assert_eq!(res.limits.unwrap().memory_bytes, Some(512 << 20));
    let net = b
        .client()
        .inspect_network(
            &format!("{}-net", spec.name),
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    assert_eq!(
        net.internal,
        Some(true),
        "the trial's network has no route out"
    );
}

/// All of /mlops and /workspace came home, and the checkpoints alone.
async fn results_came_home(b: &SwarmBackend, id: &ContainerId, spec: &TrainSpec, dir: &Path) {
    let home = dir.join(format!("home-{}", spec.name));
    let copied = b.copy_out(id, "/mlops", &home, 1 << 30).await.unwrap();
    assert!(copied.bytes > 0 && copied.left.is_none(), "{copied:?}");
    assert!(home.join("params.json").is_file());
    assert!(home.join("model").is_dir(), "the final model came home");
    let ws = dir.join(format!("ws-{}", spec.name));
    b.copy_out(id, "/workspace", &ws, 1 << 30).await.unwrap();
    assert!(ws.join("train.py").is_file());
    let ck = dir.join(format!("ck-{}", spec.name));
    b.copy_out(id, "/mlops/checkpoints", &ck, 1 << 30)
        .await
        .unwrap();
    assert!(
        std::fs::read_dir(&ck).unwrap().count() > 0,
        "checkpoints came home"
    );
}

#[tokio::test]
async fn three_trials_run_on_three_nodes_and_bring_their_results_home() {
    let env = common::swarm::env();
    let started = Instant::now();
    let b = connect(&env).await;
    b.ping().await.unwrap();
    let (quiet, _) = tokio::sync::mpsc::unbounded_channel();
    let image = b
        .prepare_image(&ImageSpec::Reference(IMAGE.into()), quiet)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = std::process::id();
    let specs: Vec<TrainSpec> = [15u32, 5, 1]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            trial(
                &format!("mlops-swarm-real-{run}-{i}"),
                &dir.path().join(i.to_string()),
                &image,
                *k,
            )
        })
        .collect();
    let ids: Vec<_> = futures_util::future::join_all(specs.iter().map(|s| b.start(s.clone())))
        .await
        .into_iter()
        .map(|r| r.expect("service started"))
        .collect();
    let placed = Instant::now();

    assert_confined(&b, &ids[0], &specs[0], &env).await;

    // The output follows while the task runs; the archives of its results stay out of it.
    let mut follow = b.logs(&ids[0]);
    let mut followed = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(240), follow.next())
        .await
        .expect("the log stream answers")
    {
        followed.push(line.unwrap().text);
    }
    assert!(
        followed
            .iter()
            .any(|l| l.starts_with("epoch 2/2 accuracy=")),
        "{followed:?}"
    );
    assert!(
        !followed.iter().any(|l| l.contains("@@mlops-tui-archive")),
        "{followed:?}"
    );

    let mut nodes = BTreeSet::new();
    let names = common::swarm::node_names(b.client()).await;
    for (id, spec) in ids.iter().zip(&specs) {
        let status = tokio::time::timeout(Duration::from_secs(240), b.wait(id))
            .await
            .expect("the trial ends")
            .unwrap();
        let tail = b.tail(id, 5).await.unwrap();
        assert_eq!(status.code, 0, "{}: {tail:?}", spec.name);
        assert!(
            tail.iter().any(|l| l.text.starts_with("final accuracy=")),
            "{tail:?}"
        );
        let view = b.task_view(id).await.unwrap().unwrap();
        nodes.insert(names[&view.node].clone());

        results_came_home(&b, id, spec, dir.path()).await;
    }
    assert_eq!(
        nodes.len(),
        3,
        "Swarm placed the three trials on three nodes: {nodes:?}"
    );
    let ran = placed.elapsed();

    for id in &ids {
        b.remove(id).await.unwrap();
        b.remove(id).await.unwrap();
    }
    assert_eq!(
        leftovers(&b).await,
        (vec![], vec![]),
        "services or networks left behind"
    );
    for spec in &specs {
        let tag = format!("{}/mlops-trial:{}", env["MLOPS_SWARM_REGISTRY"], spec.name);
        assert!(
            b.client().inspect_image(&tag).await.is_err(),
            "{tag} left on the manager"
        );
    }
    eprintln!(
        "swarm_real: three trials on {nodes:?} in {:.1} s ({:.1} s after the services were created)",
        started.elapsed().as_secs_f64(),
        ran.as_secs_f64()
    );
}

#[tokio::test]
async fn a_worker_is_not_a_manager_and_the_error_says_so() {
    let env = common::swarm::env();
    let nodes: Vec<&str> = env["MLOPS_SWARM_NODES"].split(' ').collect();
    let worker = &env[&format!("MLOPS_SWARM_{}_SOCK", nodes[1].to_uppercase())];
    let spec = swarm_spec(
        &env,
        &format!("unix://{worker}"),
        &env["MLOPS_SWARM_REGISTRY"],
    );
    let err = SwarmBackend::connect(&spec, None)
        .await
        .err()
        .expect("a worker is refused");
    let text = err.to_string();
    assert!(text.contains("not a swarm manager"), "{text}");
    assert!(text.contains("docker swarm init"), "{text}");
}
