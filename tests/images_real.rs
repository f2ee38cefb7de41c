//! The built-in images on the real Docker engine: each profile's manifest is true (every module it lists
//! imports inside the image, in the same sandbox as training containers: an unprivileged user, no
//! network, a read-only root file system, `HOME=/tmp`), and matplotlib saves a figure headless there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use mlops_tui::adapters::backend::{ContainerBackend, TrainSpec};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::images::{self, PROFILES};
use mlops_tui::core::model::{ExitStatus, ImageSpec, Profile};

/// Builds the profile when missing (printing the build), and returns its tag.
async fn prepared(backend: &DockerBackend, profile: &'static Profile) -> String {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            println!("[image] {line}");
        }
    });
    let tag = backend
        .prepare_image(&ImageSpec::Profile(profile), tx)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", profile.name));
    printer.await.unwrap();
    tag
}

/// Runs `python3 -c <code>` in `image` as a training container would run; returns the exit code and
/// the last lines of output.
async fn python(backend: &DockerBackend, image: &str, name: &str, code: &str) -> (i64, String) {
    let dir = tempfile::tempdir().unwrap();
    let spec = TrainSpec {
        name: format!("mlops-tui-test-{name}-{}", std::process::id()),
        image: image.to_string(),
        command: vec!["python3".into(), "-c".into(), code.into()],
        workspace: dir.path().to_path_buf(),
        workdir: dir.path().to_path_buf(),
        data: Vec::new(),
        user: "65534:65534".into(),
        env: Vec::new(),
        labels: BTreeMap::new(),
        memory_bytes: 2 << 30,
        cpus: 1.0,
        pids: 256,
        disk_bytes: 1 << 30,
        transfer: mlops_tui::adapters::backend::Transfer::Bind,
        gpus: None,
    };
    let id = backend.start(spec).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(300), backend.wait(&id))
        .await
        .expect("the container ends within 5 minutes")
        .unwrap();
    let tail = backend.tail(&id, 30).await.unwrap();
    backend.remove(&id).await.unwrap();
    let ExitStatus { code, oom_killed } = status;
    assert!(!oom_killed, "{image}: out of memory");
    let text: Vec<String> = tail.into_iter().map(|l| l.text).collect();
    (code, text.join("\n"))
}

#[tokio::test]
async fn every_listed_module_imports_in_its_image() {
    let backend = DockerBackend::connect_default().expect("Docker engine");
    for profile in PROFILES {
        let tag = prepared(&backend, profile).await;
        assert!(
            !profile.provides.is_empty(),
            "{} lists nothing",
            profile.name
        );
        let code = format!(
            "import {}\nprint('imported', {})",
            profile.provides.join(", "),
            profile.provides.len()
        );
        let (status, out) = python(&backend, &tag, profile.name, &code).await;
        assert_eq!(
            (
                status,
                out.contains(&format!("imported {}", profile.provides.len()))
            ),
            (0, true),
            "image {} does not provide all of {:?}:\n{out}",
            profile.name,
            profile.provides
        );
    }
}

#[tokio::test]
async fn matplotlib_saves_a_figure_headless_as_the_unprivileged_user() {
    let backend = DockerBackend::connect_default().expect("Docker engine");
    let sklearn = images::profile("sklearn").unwrap();
    let tag = prepared(&backend, sklearn).await;
    let code = "\
import os
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
df = pd.DataFrame({'k': [1, 3, 5], 'accuracy': [0.9, 0.93, 0.95]})
df.plot(x='k', y='accuracy')
plt.savefig('/tmp/curve.png')
print('backend', matplotlib.get_backend(), 'home', os.environ['HOME'], 'png', os.path.getsize('/tmp/curve.png') > 1000)
";
    let (status, out) = python(&backend, &tag, "mpl", code).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("backend agg home /tmp png True"), "{out}");
}
