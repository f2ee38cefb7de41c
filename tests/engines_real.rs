//! Remote engines, for real: the two test engines of `tests/engines/up.sh` (dockerd in network
//! namespaces, TCP with TLS client certificates, their own image stores and disks), reached through
//! bollard exactly as the product reaches them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveImageOptionsBuilder};
use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::{DockerBackend, VOLUME_OF};
use mlops_tui::adapters::engines::connect_all;
use mlops_tui::adapters::images::BASE_IMAGE;
use mlops_tui::adapters::pool_backend::PoolBackend;
use mlops_tui::core::config::{EngineHost, EngineSpec, TlsFiles};
use mlops_tui::core::ids::ContainerId;
use mlops_tui::core::model::{ContainerState, ImageSpec};

const TEST_LABEL: &str = "org.mlops-tui.test";
/// No cap on a copy home.
const ALL: u64 = u64::MAX;

fn progress() -> (
    tokio::sync::mpsc::UnboundedSender<String>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    tokio::sync::mpsc::unbounded_channel()
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    lines
}

#[tokio::test]
async fn tls_engines_answer_and_refuse_a_certificate_they_do_not_trust() {
    let engines = common::engines::require();
    for spec in &engines {
        let b = DockerBackend::connect(spec).unwrap();
        b.ping()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert!(!b.shares_disk());
        assert_eq!(b.endpoint(), spec.url());
    }
    let EngineHost::Tcp { addr, .. } = &engines[0].host else {
        panic!("tcp engine")
    };
    let rogue = EngineSpec {
        kind: Default::default(),
        name: "rogue".into(),
        host: EngineHost::Tcp {
            addr: addr.clone(),
            tls: Some(TlsFiles::in_dir(&common::engines::var(
                "MLOPS_TEST_ENGINE_ROGUE_TLS",
            ))),
        },
        slots: 1,
        gpus: 0,
    };
    let b = DockerBackend::connect(&rogue).unwrap();
    let err = b
        .ping()
        .await
        .expect_err("an untrusted client certificate is refused");
    let text = err.to_string();
    eprintln!("refused: {text}");
    assert!(
        text.starts_with(&format!("Docker engine not reachable (tcp://{addr})")),
        "{text}"
    );
    assert!(
        text.contains("BadCertificate"),
        "the cause is named: {text}"
    );
}

/// The local engine has the base image (the project's images are built there); e2 gets it by export
/// and import, announced in the progress lines.
#[tokio::test]
async fn a_missing_image_is_copied_from_the_first_engine() {
    let engines = common::engines::require();
    let specs = [EngineSpec::local_default(), engines[1].clone()];
    let pool = connect_all(&specs).await.unwrap();
    let e2 = &pool.engines[1].backend;
    let _ = e2
        .client()
        .remove_image(
            BASE_IMAGE,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await;
    let (tx, mut rx) = progress();
    let started = Instant::now();
    let image = ImageSpec::Reference(BASE_IMAGE.into());
    let tag = e2.prepare_image(&image, tx.clone()).await.unwrap();
    let took = started.elapsed();
    assert_eq!(tag, BASE_IMAGE);
    e2.client().inspect_image(BASE_IMAGE).await.unwrap();
    let lines = drain(&mut rx);
    assert!(
        lines.iter().any(|l| l
            .starts_with("copying image mlops-tui/base:bookworm from engine local to engine e2")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("copied image")),
        "{lines:?}"
    );
    eprintln!(
        "base image copied local -> e2 in {:.1} s: {lines:?}",
        took.as_secs_f64()
    );
    // Present now: no second copy.
    e2.prepare_image(&image, tx).await.unwrap();
    assert!(drain(&mut rx).iter().all(|l| !l.starts_with("copying")));
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The script: reads its workspace and data, writes a checkpoint, plants links that point out of its
/// directories, waits for the test to copy the checkpoints out while it runs, then writes a model.
const SCRIPT: &str = r#"set -u
cat /workspace/train.sh.txt > /mlops/seen-workspace
cat /data/set/rows.csv > /mlops/seen-data
touch /data/set/new 2>/dev/null && echo writable > /mlops/data-check || echo read-only > /mlops/data-check
touch /workspace/x 2>/dev/null || echo "workspace not writable" >&2
touch /etc/x 2>/dev/null && echo writable > /mlops/rootfs-check || echo read-only > /mlops/rootfs-check
mkdir -p /mlops/checkpoints
echo epoch-1 > /mlops/checkpoints/epoch-1.ckpt
ln -s /etc/passwd /mlops/checkpoints/evil
ln -s /etc /mlops/checkpoints/evil-dir
mkdir -p /mlops/checkpoints/deep/er && echo deep > /mlops/checkpoints/deep/er/f
while [ ! -e /mlops/go ]; do sleep 0.1; done
echo model > /workspace/model.bin
"#;

fn train_spec(name: &str, root: &Path, image: &str) -> TrainSpec {
    let workspace = root.join("workspace");
    let workdir = root.join("workdir");
    let data = root.join("data");
    write(&workspace.join("train.sh.txt"), "the script's own file\n");
    write(&workspace.join("sub/deeper/notes.txt"), "kept\n");
    std::fs::create_dir_all(&workdir).unwrap();
    write(&workdir.join("params.json"), "{\"lr\": 0.1}\n");
    write(&data.join("rows.csv"), "a,b\n1,2\n");
    TrainSpec {
        name: name.into(),
        image: image.into(),
        command: vec!["sh".into(), "-c".into(), SCRIPT.into()],
        workspace,
        workdir,
        data: vec![(data, "/data/set".into())],
        // Not this process's user: only the upload's ownership lets it write.
        user: "4242:4242".into(),
        env: vec![],
        labels: BTreeMap::from([(TEST_LABEL.to_string(), "engines_real".to_string())]),
        memory_bytes: 256 * 1024 * 1024,
        cpus: 0.5,
        pids: 64,
        disk_bytes: 1 << 30,
        transfer: Transfer::Archive,
        gpus: None,
    }
}

async fn volumes_of(b: &DockerBackend, name: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("{VOLUME_OF}={name}")])]);
    let options = ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = b.client().list_volumes(Some(options)).await.unwrap();
    list.volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

async fn wait_exit(b: &DockerBackend, id: &ContainerId) -> ContainerState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = b.inspect(id).await.unwrap().expect("container exists");
        if matches!(state, ContainerState::Exited(_)) || Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The local engine and test engine `i`, connected as a pool.
async fn pool_with(i: usize) -> mlops_tui::adapters::engines::Pool<PoolBackend> {
    let engines = common::engines::require();
    connect_all(&[EngineSpec::local_default(), engines[i].clone()])
        .await
        .unwrap()
}

/// The Docker engine behind a pool's backend.
fn docker_of(backend: &PoolBackend) -> &DockerBackend {
    match backend {
        PoolBackend::Docker(d) => d,
        PoolBackend::Swarm(_) => panic!("a Docker engine, not a swarm"),
    }
}

#[tokio::test]
async fn an_archive_transfer_trains_on_a_remote_engine_and_brings_results_home() {
    let pool = pool_with(0).await;
    let e1 = docker_of(&pool.engines[1].backend);
    let (tx, _rx) = progress();
    let image = e1
        .prepare_image(&ImageSpec::Reference(BASE_IMAGE.into()), tx)
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let name = format!("mlt-engines-real-{}", std::process::id());
    let spec = train_spec(&name, root.path(), &image);
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let id = e1.start(spec).await.unwrap();
    assert_eq!(
        volumes_of(e1, &name).await.len(),
        3,
        "workspace, mlops, data"
    );

    // While it runs: the checkpoints come home, the links it planted do not.
    let home = root.path().join("home");
    let checkpoints = home.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(30);
    let bytes = loop {
        let got = e1.copy_out(&id, "/mlops/checkpoints", &checkpoints, ALL);
        let got = got.await.map(|c| c.bytes);
        if let Ok(n) = got {
            if checkpoints.join("deep/er/f").exists() {
                break n;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint while running: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(matches!(
        e1.inspect(&id).await.unwrap(),
        Some(ContainerState::Running)
    ));
    assert_eq!(bytes, 8 + 5);
    assert_eq!(
        std::fs::read_to_string(checkpoints.join("epoch-1.ckpt")).unwrap(),
        "epoch-1\n"
    );
    assert!(std::fs::symlink_metadata(checkpoints.join("evil")).is_err());
    assert!(std::fs::symlink_metadata(checkpoints.join("evil-dir")).is_err());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);

    // Let it finish; after exit, /workspace and /mlops come home too.
    // The container has no network and shares no disk: the signal goes in the way files do.
    upload_go(e1, &id).await;
    let state = wait_exit(e1, &id).await;
    let logs = e1.tail(&id, 20).await.unwrap();
    assert_eq!(
        state,
        ContainerState::Exited(mlops_tui::core::model::ExitStatus {
            code: 0,
            oom_killed: false
        }),
        "{logs:?}"
    );
    assert!(logs.is_empty(), "the workspace was writable: {logs:?}");
    let ws = home.join("workspace");
    e1.copy_out(&id, "/workspace", &ws, ALL).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(ws.join("model.bin")).unwrap(),
        "model\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("sub/deeper/notes.txt")).unwrap(),
        "kept\n"
    );
    let mlops = home.join("mlops");
    e1.copy_out(&id, "/mlops", &mlops, ALL).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(mlops.join("seen-workspace")).unwrap(),
        "the script's own file\n"
    );
    assert_eq!(
        std::fs::read_to_string(mlops.join("seen-data")).unwrap(),
        "a,b\n1,2\n"
    );
    assert_eq!(
        std::fs::read_to_string(mlops.join("data-check")).unwrap(),
        "read-only\n"
    );
    assert_eq!(
        std::fs::read_to_string(mlops.join("rootfs-check")).unwrap(),
        "read-only\n",
        "the root file system stays read-only with archive transfer"
    );
    assert!(std::fs::symlink_metadata(mlops.join("checkpoints/evil")).is_err());

    // A path that is not there is an error naming it.
    let err = e1
        .copy_out(&id, "/mlops/nothing", &home.join("x"), ALL)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/mlops/nothing"), "{err}");

    e1.remove(&id).await.unwrap();
    assert!(e1.inspect(&id).await.unwrap().is_none());
    assert!(
        volumes_of(e1, &name).await.is_empty(),
        "volumes removed with the container"
    );
}

/// Creates `/mlops/go` in the running container by archive upload (as root, into the volume).
async fn upload_go(b: &DockerBackend, id: &ContainerId) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "go", std::io::empty()).unwrap();
    let body = tar.into_inner().unwrap();
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/mlops")
        .build();
    b.client()
        .upload_to_container(&id.0, Some(options), bollard::body_full(body.into()))
        .await
        .unwrap();
}

/// The figure in `src/adapters/docker/image_copy.rs`: the numpy profile image copied from the local
/// engine to e2 (removed there first). `cargo test --test engines_real -- --ignored --nocapture numpy`
#[tokio::test]
#[ignore = "copies 1.6 GB; run by hand for the figure"]
async fn numpy_profile_copy_time() {
    let engines = common::engines::require();
    let pool = connect_all(&[EngineSpec::local_default(), engines[1].clone()])
        .await
        .unwrap();
    let profile = mlops_tui::adapters::images::profile("numpy").unwrap();
    let e2 = &pool.engines[1].backend;
    let _ = e2
        .client()
        .remove_image(
            &profile.tag(),
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await;
    let (tx, mut rx) = progress();
    let started = Instant::now();
    e2.prepare_image(&ImageSpec::Profile(profile), tx)
        .await
        .unwrap();
    let took = started.elapsed();
    let lines = drain(&mut rx);
    eprintln!(
        "numpy image local -> e2: {:.1} s; {:?}",
        took.as_secs_f64(),
        lines.last()
    );
    assert!(
        lines.iter().any(|l| l.starts_with("copied image")),
        "{lines:?}"
    );
}

/// `ssh://`: bollard reaches the engine through the system's ssh client and `docker system
/// dial-stdio` on the far side (up.sh runs an sshd in e1's namespace whose sessions talk to e1). The
/// archive transfer streams through it both ways.
#[tokio::test]
async fn an_ssh_engine_runs_a_container_with_archive_transfer() {
    common::engines::require();
    let url = common::engines::var("MLOPS_TEST_ENGINE_SSH");
    let spec = EngineSpec::parse_flag(&format!("far={url}")).unwrap();
    let far = DockerBackend::connect(&spec).unwrap();
    assert!(!far.shares_disk());
    far.ping().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let root_dir = far.client().info().await.unwrap().docker_root_dir;
    assert_eq!(
        root_dir.as_deref(),
        Some("/var/lib/mlops-e1"),
        "e1 behind sshd"
    );
    // The base image is on e1 (copied by the other tests, or now from the local engine).
    let local = Arc::new(DockerBackend::connect_default().unwrap());
    let far = far.with_image_source(local);
    let (tx, _rx) = progress();
    let image = far
        .prepare_image(&ImageSpec::Reference(BASE_IMAGE.into()), tx)
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let name = format!("mlt-engines-ssh-{}", std::process::id());
    let mut spec = train_spec(&name, root.path(), &image);
    spec.command = vec![
        "sh".into(),
        "-c".into(),
        "cat /workspace/train.sh.txt /data/set/rows.csv > /mlops/out".into(),
    ];
    let id = far.start(spec).await.unwrap();
    let state = wait_exit(&far, &id).await;
    assert!(
        matches!(state, ContainerState::Exited(s) if s.code == 0),
        "{state:?}"
    );
    let home = root.path().join("home");
    let bytes = far.copy_out(&id, "/mlops", &home, ALL).await.unwrap().bytes;
    let out = std::fs::read_to_string(home.join("out")).unwrap();
    assert_eq!(out, "the script's own file\na,b\n1,2\n");
    assert!(bytes >= out.len() as u64);
    far.remove(&id).await.unwrap();
    assert!(volumes_of(&far, &name).await.is_empty());
}
