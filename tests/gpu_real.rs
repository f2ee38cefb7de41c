//! GPUs on a real engine without any: the device request the engine receives (inspected on a
//! created container), and the engine's refusal turned into a run that stops before any training
//! container, with the fix, through the real binary. Real Docker, real git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{Fixture, bin};
use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec, Transfer};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::images;
use mlops_tui::core::gpu::GpuRequest;

fn spec(name: &str, dir: &std::path::Path, gpus: Option<GpuRequest>) -> TrainSpec {
    TrainSpec {
        name: format!("mlops-tui-test-gpu-{name}-{}", std::process::id()),
        image: images::BASE_IMAGE.into(),
        command: vec!["true".into()],
        workspace: dir.to_path_buf(),
        workdir: dir.to_path_buf(),
        data: Vec::new(),
        user: "65534:65534".into(),
        env: Vec::new(),
        labels: BTreeMap::new(),
        memory_bytes: 256 << 20,
        cpus: 0.5,
        pids: 64,
        disk_bytes: 1 << 30,
        transfer: Transfer::Bind,
        gpus,
    }
}

#[tokio::test]
async fn the_engine_receives_the_nvidia_device_request() {
    let backend = DockerBackend::connect_default().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids = vec!["0".to_string(), "2".to_string()];
    for (name, gpus, count, device_ids) in [
        ("one", GpuRequest::Count(1), Some(1), None),
        (
            "ids",
            GpuRequest::Devices(ids.clone()),
            None,
            Some(ids.clone()),
        ),
    ] {
        let id = backend
            .create_stopped(&spec(name, dir.path(), Some(gpus)))
            .await
            .unwrap();
        let info = backend.client().inspect_container(&id.0, None).await;
        backend.remove(&id).await.unwrap();
        let requests = info.unwrap().host_config.unwrap().device_requests.unwrap();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let r = &requests[0];
        assert_eq!(r.driver.as_deref(), Some("nvidia"));
        assert_eq!(r.capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert_eq!(r.count.filter(|c| *c != 0), count, "{r:?}");
        assert_eq!(
            r.device_ids.clone().filter(|d| !d.is_empty()),
            device_ids,
            "{r:?}"
        );
    }
    let id = backend
        .create_stopped(&spec("none", dir.path(), None))
        .await
        .unwrap();
    let info = backend.client().inspect_container(&id.0, None).await;
    backend.remove(&id).await.unwrap();
    let requests = info.unwrap().host_config.unwrap().device_requests;
    assert!(
        requests.unwrap_or_default().is_empty(),
        "no GPUs asked, none requested"
    );
}

#[tokio::test]
async fn the_probe_turns_the_refusal_into_the_fix() {
    let backend = DockerBackend::connect_default().unwrap();
    let e = backend
        .probe_gpus(&GpuRequest::Count(1))
        .await
        .expect_err("this engine has no GPU runtime")
        .to_string();
    assert!(e.starts_with("it has no GPU runtime"), "{e}");
    assert!(e.contains("could not select device driver"), "{e}");
    assert!(e.contains("nvidia-container-toolkit"), "{e}");
}

#[tokio::test]
async fn a_run_asking_for_a_gpu_stops_before_any_container_and_names_the_fix() {
    let toml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-projects/digits-mlp-numpy/mlops.toml"),
    )
    .unwrap()
    .replace("cpus = 1.0", "cpus = 1.0\ngpus = 1");
    let f = Fixture::sample("digits-mlp-numpy");
    std::fs::write(f.dir().join("mlops.toml"), toml).unwrap();
    common::commit_all(f.dir(), "ask for a GPU");
    let out = std::process::Command::new(bin())
        .args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let said = "[resources] gpus cannot be honoured: engine local: it has no GPU runtime";
    assert!(stderr.contains(said), "{stderr}");
    assert!(
        stderr.contains("install the NVIDIA driver and nvidia-container-toolkit"),
        "{stderr}"
    );
    // Said once at Detect, never retried (the closing `[done]` line repeats it as the run's end).
    let at_detect = stdout
        .lines()
        .filter(|l| l.starts_with("[detect]") && l.contains(said))
        .count();
    assert_eq!(at_detect, 1, "said once, never retried: {stdout}");
    assert!(
        !stdout.contains("[train:"),
        "no iteration may start: {stdout}"
    );
    assert!(f.leftover_containers().await.is_empty());
    let store = f.store();
    assert!(
        store
            .iterations(mlops_tui::core::ids::RunId(1))
            .unwrap()
            .is_empty()
    );
}

/// A remote engine (e1, over TLS) without a GPU runtime refuses the same way, and the probe says so
/// before any training container exists there.
#[tokio::test]
async fn a_remote_engine_without_a_gpu_runtime_is_refused_with_the_fix() {
    let engines = common::engines::require();
    let e1 = engines.iter().find(|e| e.name == "e1").expect("engine e1");
    let local = std::sync::Arc::new(DockerBackend::connect_default().unwrap());
    let far = DockerBackend::connect(e1).unwrap().with_image_source(local);
    far.ping().await.unwrap_or_else(|e| panic!("e1: {e}"));
    // The probe starts from an image the engine has: the base image, copied from here if missing.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    far.prepare_image(
        &mlops_tui::core::model::ImageSpec::Reference(images::BASE_IMAGE.into()),
        tx,
    )
    .await
    .unwrap();
    let e = far
        .probe_gpus(&GpuRequest::Count(1))
        .await
        .expect_err("e1 has no GPU runtime")
        .to_string();
    assert!(e.starts_with("it has no GPU runtime"), "{e}");
    assert!(e.contains("nvidia-container-toolkit"), "{e}");
}
