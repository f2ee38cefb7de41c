//! Job 1 through the whole loop: a bare repository on disk is the remote; a push to it starts a run on
//! the pushed commit — by polling within seconds, and at once after a signed webhook call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::SharedBuf;
use git2::{Repository, Signature};
use hmac::{Hmac, KeyInit, Mac};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::store::Store;
use mlops_tui::engine::{Engine, EngineOptions, RemoteOptions};
use mlops_tui::headless::Printer;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"
[metric]
name = "accuracy"
target = 0.9
[budget]
max_iterations = 1
[notify.desktop]
enabled = false
"#;

struct Remote {
    dir: tempfile::TempDir,
    work: Repository,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        Repository::init_bare(dir.path().join("remote.git")).unwrap();
        let work = Repository::init(dir.path().join("work")).unwrap();
        work.remote("origin", dir.path().join("remote.git").to_str().unwrap())
            .unwrap();
        Remote { dir, work }
    }

    fn url(&self) -> String {
        self.dir.path().join("remote.git").display().to_string()
    }

    /// Commits `accuracy` as the script's result and pushes to `main`; returns the commit id.
    fn push(&self, accuracy: &str, message: &str) -> String {
        let root = self.work.workdir().unwrap().to_path_buf();
        std::fs::write(root.join("mlops.toml"), TOML).unwrap();
        std::fs::write(
            root.join("train.py"),
            format!("print('epoch 1/1 accuracy={accuracy}', flush=True)\n"),
        )
        .unwrap();
        let mut index = self.work.index().unwrap();
        index.add_path(Path::new("mlops.toml")).unwrap();
        index.add_path(Path::new("train.py")).unwrap();
        index.write().unwrap();
        let tree = self.work.find_tree(index.write_tree().unwrap()).unwrap();
        let who = Signature::now("Grace Hopper", "grace@example.org").unwrap();
        let parent = self
            .work
            .refname_to_id("refs/heads/main")
            .ok()
            .map(|id| self.work.find_commit(id).unwrap());
        let parents: Vec<_> = parent.iter().collect();
        let id = self
            .work
            .commit(
                Some("refs/heads/main"),
                &who,
                &who,
                message,
                &tree,
                &parents,
            )
            .unwrap();
        self.work
            .find_remote("origin")
            .unwrap()
            .push(&["refs/heads/main:refs/heads/main"], None)
            .unwrap();
        id.to_string()
    }
}

/// Starts a watching engine on the remote; returns its output buffer and task.
fn watch(
    remote: &Remote,
    data: &Path,
    poll: Duration,
    webhook: Option<std::net::SocketAddr>,
) -> (SharedBuf, tokio::task::JoinHandle<()>) {
    let cache = data.join("mirrors");
    let watcher =
        mlops_tui::adapters::git::RemoteWatcher::open(&remote.url(), "main", &cache).unwrap();
    let opts = EngineOptions {
        project: watcher.project(Path::new("")),
        runs_dir: data.join("runs"),
        interactive: false,
        once: false,
        branch: Some("main".into()),
        poll_interval: poll,
        queue_all: false,
        cold: false,
        remote: Some(RemoteOptions {
            url: remote.url(),
            branch: "main".into(),
            cache,
            subdir: "".into(),
        }),
        webhook: webhook.map(|a| {
            (
                a,
                mlops_tui::adapters::webhook::Secret::new("s3cret".as_bytes().to_vec()).unwrap(),
            )
        }),
        data_policy: mlops_tui::support::data_policy::DataPolicy::new(
            vec![std::env::temp_dir().display().to_string()],
            "test-config.toml".into(),
            &[],
        ),
    };
    let engine = Engine::new(
        Arc::new(DockerBackend::connect_default().unwrap()),
        Store::open(&data.join("h.sqlite3")).unwrap(),
        opts,
    );
    let out = SharedBuf::default();
    let printer_out = out.clone();
    let task = tokio::spawn(async move {
        let mut printer = Printer::new(printer_out, false);
        engine.run(&mut printer).await;
    });
    (out, task)
}

/// Waits for the engine to remove the containers of its finished runs, then stops it.
async fn stop_when_tidy(data: &Path, task: tokio::task::JoinHandle<()>) {
    let docker = DockerBackend::connect_default().unwrap();
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!(
            "{}={}",
            mlops_tui::core::model::labels::STORE,
            data.join("runs").display()
        )],
    )]);
    let start = Instant::now();
    loop {
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let left = docker.client().list_containers(Some(opts)).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "containers left behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
}

async fn wait_for(out: &SharedBuf, needle: &str, within: Duration) -> Duration {
    let start = Instant::now();
    while !out.text().contains(needle) {
        assert!(
            start.elapsed() < within,
            "`{needle}` did not appear within {within:?}:\n{}",
            out.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_push_starts_a_run_on_the_pushed_commit_by_polling() {
    let remote = Remote::new();
    let data = tempfile::tempdir().unwrap();
    let first = remote.push("0.95", "first model");
    let (out, task) = watch(&remote, data.path(), Duration::from_secs(1), None);
    wait_for(
        &out,
        &format!(
            "run 1: commit {} \"first model\" by Grace Hopper",
            &first[..8]
        ),
        Duration::from_secs(60),
    )
    .await;
    wait_for(&out, "[done] target reached", Duration::from_secs(120)).await;

    let second = remote.push("0.97", "wider layers");
    let took = wait_for(
        &out,
        &format!("run 2: commit {} \"wider layers\"", &second[..8]),
        Duration::from_secs(30),
    )
    .await;
    println!("pushed commit picked up by polling after {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "a 1 s poll notices a push within seconds ({took:?})"
    );
    wait_for(
        &out,
        "accuracy 0.9700 >= target 0.9",
        Duration::from_secs(120),
    )
    .await;
    stop_when_tidy(data.path(), task).await;
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn post(addr: std::net::SocketAddr, body: &str, signature: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: d-1\r\nX-Hub-Signature-256: {signature}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_signed_webhook_starts_the_run_at_once() {
    let remote = Remote::new();
    let data = tempfile::tempdir().unwrap();
    remote.push("0.95", "first model");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Polling every hour: only the webhook can make the second run start soon.
    let (out, task) = watch(&remote, data.path(), Duration::from_secs(3600), Some(addr));
    wait_for(
        &out,
        "listening for signed push webhooks",
        Duration::from_secs(30),
    )
    .await;
    wait_for(&out, "[done] target reached", Duration::from_secs(120)).await;

    let second = remote.push("0.97", "webhook push");
    let body =
        format!(r#"{{"ref":"refs/heads/main","after":"{second}","pusher":{{"name":"grace"}}}}"#);
    let bad = post(addr, &body, "sha256=0000").await;
    assert!(bad.starts_with("HTTP/1.1 401"), "{bad}");
    let answer = post(addr, &body, &sign(body.as_bytes())).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let took = wait_for(
        &out,
        &format!("run 2: commit {}", &second[..8]),
        Duration::from_secs(30),
    )
    .await;
    println!("webhook push started run 2 after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        out.text().contains("webhook: push to main by grace"),
        "{}",
        out.text()
    );
    wait_for(
        &out,
        "accuracy 0.9700 >= target 0.9",
        Duration::from_secs(120),
    )
    .await;
    stop_when_tidy(data.path(), task).await;
}
