//! A swarm's placement constraints and set-up faults on a real Docker Swarm (tests/swarm/up.sh):
//! constraints from mlops.toml place a trial on the node they name, or leave it waiting with Swarm's
//! reason; a registry nothing answers at, a registry that refuses the image and a service spec Swarm
//! refuses each fail the start at once with the engine, its `[[engines]]` entry and the fix, and
//! the triage of start failures stops the run on them.
//!
//! The swarm must be up: the tests fail, naming tests/swarm/up.sh, when it is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::{DockerBackend, SwarmBackend};
use mlops_tui::core::config::{Config, EngineSpec};
use mlops_tui::core::model::{ContainerState, ImageSpec};
use mlops_tui::core::triage::{self, SETUP_NOTE};

const LABEL: &str = "org.mlops-tui.test";
/// Small, with `sh`, `tar` and `base64` (what the task's wrapper needs).
const IMAGE: &str = "mlops-tui/base:bookworm";

/// The swarm as mlops.toml's `[[engines]]` entry `name`, with `extra` lines (constraints).
fn swarm_spec(env: &HashMap<String, String>, registry: &str, extra: &str) -> EngineSpec {
    let text = format!(
        "[train]\ncommand = [\"sh\", \"-c\", \"true\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\
         [[engines]]\nname = \"errs\"\nkind = \"swarm\"\nhost = \"{}\"\nregistry = \"{registry}\"\n{extra}",
        env["MLOPS_SWARM_MANAGER"]
    );
    Config::parse(&text, Path::new("mlops.toml"))
        .unwrap()
        .engines[0]
        .clone()
}

async fn connect(spec: &EngineSpec) -> SwarmBackend {
    let local = Arc::new(DockerBackend::connect_default().unwrap());
    SwarmBackend::connect(spec, Some(local)).await.unwrap()
}

/// The base image on the manager (copied from this machine's engine when missing).
async fn image_on_manager(b: &SwarmBackend) -> String {
    let (quiet, _) = tokio::sync::mpsc::unbounded_channel();
    b.prepare_image(&ImageSpec::Reference(IMAGE.into()), quiet)
        .await
        .unwrap()
}

/// A trial printing one line, under `root`.
fn trial(name: &str, root: &Path, image: &str) -> TrainSpec {
    let workspace = root.join(name).join("workspace");
    let workdir = root.join(name).join("workdir");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::write(workspace.join("note.txt"), "placed\n").unwrap();
    TrainSpec {
        name: name.into(),
        image: image.into(),
        command: vec!["sh".into(), "-c".into(), "cat note.txt".into()],
        workspace,
        workdir,
        data: vec![],
        user: "4242:4242".into(),
        env: vec![],
        labels: BTreeMap::from([(LABEL.to_string(), "swarm_errors_real".to_string())]),
        memory_bytes: 64 << 20,
        cpus: 0.25,
        pids: 64,
        disk_bytes: 64 << 20,
        gpus: None,
        transfer: Transfer::Archive,
    }
}

fn name(what: &str) -> String {
    format!("mlops-swarm-errs-{}-{what}", std::process::id())
}

/// The node up.sh labelled `which` (`mlops-test.node`): its id and hostname, read from the swarm.
async fn node(b: &SwarmBackend, which: &str) -> (String, String) {
    let n = b
        .client()
        .list_nodes(None)
        .await
        .unwrap()
        .into_iter()
        .find(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.labels.as_ref())
                .and_then(|l| l.get("mlops-test.node"))
                .is_some_and(|v| v == which)
        })
        .unwrap_or_else(|| panic!("no node labelled mlops-test.node={which}"));
    let host = n.description.and_then(|d| d.hostname).unwrap_or_default();
    (n.id.unwrap_or_default(), host)
}

/// The trial's tag is not on the manager: nothing was built, or what was built went again.
async fn no_trial_image(b: &SwarmBackend, registry: &str, name: &str) {
    let tag = format!("{registry}/mlops-trial:{name}");
    assert!(
        b.client().inspect_image(&tag).await.is_err(),
        "{tag} left on the manager"
    );
}

/// A failed start's text as the iteration's failure reason carries it: said with the engine, its
/// entry and a fix, and stopping the run.
fn assert_setup_fault(text: &str, expect: &str) {
    eprintln!("swarm_errors_real: {text}");
    assert!(text.contains(expect), "{text}");
    assert!(
        text.contains("engine errs (its [[engines]] entry in mlops.toml)"),
        "{text}"
    );
    assert!(text.contains("; fix: "), "{text}");
    assert!(text.ends_with(SETUP_NOTE), "{text}");
    let cause = format!("could not start the container: {text}");
    let d = triage::start_failure(&cause).expect("a set-up fault");
    assert!(d.is_permanent(), "{d:?}");
}

#[tokio::test]
async fn constraints_place_the_trial_on_the_node_they_name() {
    let env = common::swarm::env();
    let b0 = connect(&swarm_spec(&env, &env["MLOPS_SWARM_REGISTRY"], "")).await;
    let last = env["MLOPS_SWARM_NODES"]
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let (id, host) = node(&b0, &last).await;
    // The test nodes share this machine's hostname: node.id tells them apart.
    let constraints = format!("constraints = [\"node.hostname=={host}\", \"node.id == {id}\"]\n");
    let spec = swarm_spec(&env, &env["MLOPS_SWARM_REGISTRY"], &constraints);
    let b = connect(&spec).await;
    let image = image_on_manager(&b).await;
    let dir = tempfile::tempdir().unwrap();
    let t = trial(&name("placed"), dir.path(), &image);
    let service = b.start(t.clone()).await.unwrap();

    let placement = b
        .client()
        .inspect_service(&service.0, None)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.task_template)
        .and_then(|t| t.placement)
        .and_then(|p| p.constraints);
    assert_eq!(
        placement,
        Some(vec![
            format!("node.hostname=={host}"),
            format!("node.id == {id}")
        ])
    );
    let status = tokio::time::timeout(Duration::from_secs(120), b.wait(&service))
        .await
        .expect("the trial ends")
        .unwrap();
    let tail = b.tail(&service, 5).await.unwrap();
    assert_eq!(status.code, 0, "{tail:?}");
    assert!(tail.iter().any(|l| l.text == "placed"), "{tail:?}");
    let view = b.task_view(&service).await.unwrap().unwrap();
    assert_eq!(view.node, id, "placed on {last} ({id}): {view:?}");
    b.remove(&service).await.unwrap();
}

#[tokio::test]
async fn a_constraint_no_node_meets_leaves_the_trial_waiting_with_swarms_reason() {
    let env = common::swarm::env();
    let spec = swarm_spec(
        &env,
        &env["MLOPS_SWARM_REGISTRY"],
        "constraints = [\"node.labels.mlops-test.node==nowhere\"]\n",
    );
    let b = connect(&spec).await;
    let image = image_on_manager(&b).await;
    let dir = tempfile::tempdir().unwrap();
    let service = b
        .start(trial(&name("nowhere"), dir.path(), &image))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let view = b.task_view(&service).await.unwrap().unwrap();
        if view.message.contains("no suitable node") || Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    eprintln!("swarm_errors_real: waiting: {view:?}");
    assert_eq!(view.state, "pending", "{view:?}");
    assert!(
        view.message
            .contains("no suitable node (scheduling constraints not satisfied on 3 nodes)"),
        "{view:?}"
    );
    assert!(view.node.is_empty() && !view.ended, "{view:?}");
    assert_eq!(
        b.inspect(&service).await.unwrap(),
        Some(ContainerState::Starting)
    );
    b.remove(&service).await.unwrap();
}

#[tokio::test]
async fn a_registry_nothing_answers_at_is_said_before_anything_is_built() {
    let env = common::swarm::env();
    // The test network's bridge, a port nothing listens on.
    let host = env["MLOPS_SWARM_REGISTRY"].split(':').next().unwrap();
    let registry = format!("{host}:5999");
    let b = connect(&swarm_spec(&env, &registry, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let n = name("noregistry");
    let began = Instant::now();
    // The image is not even on the manager: the registry is asked before any build.
    let err = b
        .start(trial(&n, dir.path(), "no-such-image:anywhere"))
        .await
        .expect_err("no registry, no trial");
    let took = began.elapsed();
    let text = err.to_string();
    assert_setup_fault(
        &text,
        &format!("the registry {registry} does not answer the swarm manager's engine"),
    );
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("insecure-registries"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    no_trial_image(&b, &registry, &n).await;
}

/// A registry of Debian's `docker-registry` in read-only mode, listening on the manager's own
/// loopback (inside its network namespace): its engine trusts a registry on 127.0.0.0/8 over plain
/// HTTP without being told, and the manager is the engine that pushes. Stopped when dropped.
struct ReadOnlyRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl ReadOnlyRegistry {
    fn start(env: &HashMap<String, String>) -> ReadOnlyRegistry {
        let manager = env["MLOPS_SWARM_NODES"].split(' ').next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let addr = "127.0.0.1:5001".to_string();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    readonly:\n      enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/mlt-{manager}"))
            .args(["docker-registry", "serve"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter and docker-registry (run bash .ci/setup)");
        let registry = ReadOnlyRegistry {
            child,
            addr,
            _dir: dir,
        };
        registry.wait_listening(manager);
        registry
    }

    /// Until the registry listens in the manager's namespace (its loopback is not ours).
    fn wait_listening(&self, manager: &str) {
        for _ in 0..40 {
            let up = Command::new("nsenter")
                .arg(format!("--net=/run/netns/mlt-{manager}"))
                .args(["curl", "-sf", "--max-time", "1"])
                .arg(format!("http://{}/v2/", self.addr))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the read-only registry did not answer at {}", self.addr);
    }
}

impl Drop for ReadOnlyRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_registry_that_refuses_the_image_is_said_in_its_words() {
    let env = common::swarm::env();
    let registry = ReadOnlyRegistry::start(&env);
    let b = connect(&swarm_spec(&env, &registry.addr, "")).await;
    let image = image_on_manager(&b).await;
    let dir = tempfile::tempdir().unwrap();
    let n = name("readonly");
    let began = Instant::now();
    let err = b
        .start(trial(&n, dir.path(), &image))
        .await
        .expect_err("a read-only registry takes no image");
    let took = began.elapsed();
    let text = err.to_string();
    assert_setup_fault(
        &text,
        &format!("the registry {} refused the trial image: \"", registry.addr),
    );
    assert!(text.contains("405"), "the registry's own answer: {text}");
    assert!(text.contains("not read-only"), "{text}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    no_trial_image(&b, &registry.addr, &n).await;
}

#[tokio::test]
async fn a_service_swarm_refuses_is_said_with_the_setting() {
    let env = common::swarm::env();
    let b = connect(&swarm_spec(&env, &env["MLOPS_SWARM_REGISTRY"], "")).await;
    let image = image_on_manager(&b).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("memory", "[resources] memory", "Must be at least 4MiB"),
        ("cpus", "[resources] cpus", "invalid cpu value"),
    ];
    for (what, setting, swarm_says) in cases {
        let n = name(what);
        let mut t = trial(&n, dir.path(), &image);
        match what {
            "memory" => t.memory_bytes = 1 << 20,
            _ => t.cpus = 0.0005,
        }
        let err = b.start(t).await.expect_err("Swarm refuses the service");
        let text = err.to_string();
        assert_setup_fault(
            &text,
            &format!("the swarm refused the trial's service over {setting}: \""),
        );
        assert!(text.contains(swarm_says), "{text}");
        no_trial_image(&b, &env["MLOPS_SWARM_REGISTRY"], &n).await;
        let network = b
            .client()
            .inspect_network(
                &format!("{n}-net"),
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        assert!(network.is_err(), "the trial's network was left behind");
    }
}

#[tokio::test]
async fn a_registry_that_never_answers_is_given_up_on_in_seconds() {
    let env = common::swarm::env();
    // This machine's leg in the test network: a port that takes connections and never answers
    // (the kernel completes the handshake; nothing reads), as a hung registry does.
    let bridge = env["MLOPS_SWARM_REGISTRY"].split(':').next().unwrap();
    let (net, _) = bridge.rsplit_once('.').unwrap();
    let hung = std::net::TcpListener::bind(format!("{net}.1:0")).unwrap();
    let registry = hung.local_addr().unwrap().to_string();
    let b = connect(&swarm_spec(&env, &registry, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let n = name("hung");
    let began = Instant::now();
    let err = b
        .start(trial(&n, dir.path(), "no-such-image:anywhere"))
        .await
        .expect_err("a registry that never answers takes no image");
    let took = began.elapsed();
    let text = err.to_string();
    assert_setup_fault(
        &text,
        &format!(
            "the registry {registry} does not answer the swarm manager's engine (no answer within 8 s)"
        ),
    );
    assert!(took < Duration::from_secs(9), "took {took:?}");
    no_trial_image(&b, &registry, &n).await;
    drop(hung);
}
