//! Runs recorded in a real MLflow tracking server (`/opt/mlops-mlflow`, installed by `.ci/setup`),
//! started here with a SQLite store and proxied artifacts, checked through its REST API: a run with
//! its iterations nested, parameters, metric history, tags and artifacts; a server killed mid-run
//! and restarted on the same database losing and duplicating nothing; `export-mlflow` backfilling
//! a run made with no server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;
use mlops_tui::core::model::RunStatus;
use serde_json::{Value, json};

const MLFLOW: &str = "/opt/mlops-mlflow/bin/mlflow";
/// How long a server may take to answer: its start is Python importing MLflow (and, the first
/// time, making its tables), a minute or more on a busy two-core machine.
const START_WAIT: Duration = Duration::from_secs(300);

/// One test at a time: four servers starting together on a small machine starve each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `mlflow server` in its own process group, on a fixed port and database so it can be restarted.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Server {
        assert!(
            Path::new(MLFLOW).exists(),
            "{MLFLOW} is missing: run .ci/setup (it makes the venv /opt/mlops-mlflow)"
        );
        let mut s = Server {
            child: None,
            dir: dir.to_path_buf(),
            port,
        };
        s.up();
        s
    }

    fn up(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = Command::new(MLFLOW)
            .args(["server", "--backend-store-uri"])
            .arg(format!(
                "sqlite:///{}",
                self.dir.join("mlflow.db").display()
            ))
            .arg("--serve-artifacts")
            .arg("--artifacts-destination")
            .arg(self.dir.join("artifacts"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--workers", "1"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = reqwest::blocking_get(&format!("{}/health", self.uri()));
            if ok {
                return;
            }
            assert!(
                start.elapsed() < START_WAIT,
                "mlflow server did not answer within {START_WAIT:?}:\n{}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// SIGKILL to the whole group (the server and its workers).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tiny blocking GET for the readiness poll (the tests' runtime must not be blocked by it for long).
mod reqwest {
    pub fn blocking_get(url: &str) -> bool {
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.") && out.contains(" 200 ")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The KNN sample, two iterations (k = 100, then 50) below an unreachable target, tracked at `uri`.
fn knn(track: Option<&str>) -> Fixture {
    let f = Fixture::sample("digits-knn-sklearn");
    let path = f.dir().join("mlops.toml");
    let mut toml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("target = 0.95", "target = 0.999")
        .replace("max_iterations = 5", "max_iterations = 2");
    if let Some(uri) = track {
        toml.push_str(&format!(
            "\n[track.mlflow]\nuri = \"{uri}\"\nexperiment = \"digits-tracked\"\n"
        ));
    }
    std::fs::write(&path, toml).unwrap();
    common::commit_all(f.dir(), "two iterations");
    f
}

async fn api(uri: &str, method: &str, endpoint: &str, body: Value) -> Value {
    let http = ::reqwest::Client::new();
    let url = format!("{uri}/api/2.0/{endpoint}");
    let req = match method {
        "GET" => http
            .get(url)
            .query(&body.as_object().map_or_else(Vec::new, |o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })),
        _ => http.post(url).json(&body),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{endpoint}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run.pointer("/data/tags")?
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?
        .get("value")?
        .as_str()
}

/// Every run of `experiment`: the parent first, then its children by iteration.
async fn runs_of(uri: &str, experiment: &str) -> (Value, Vec<Value>) {
    let exp = api(
        uri,
        "GET",
        "mlflow/experiments/get-by-name",
        json!({ "experiment_name": experiment }),
    )
    .await;
    let id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let found = api(
        uri,
        "POST",
        "mlflow/runs/search",
        json!({ "experiment_ids": [id], "max_results": 100 }),
    )
    .await;
    let runs = found["runs"].as_array().cloned().unwrap_or_default();
    let (parents, mut children): (Vec<Value>, Vec<Value>) = runs
        .into_iter()
        .partition(|r| tag(r, "mlflow.parentRunId").is_none());
    assert_eq!(parents.len(), 1, "one parent run: {parents:#?}");
    children.sort_by_key(|c| tag(c, "mlops.iteration").unwrap_or("").to_string());
    (parents.into_iter().next().unwrap(), children)
}

/// The checks every exported run must pass: two nested iterations with their parameters, four
/// epochs of accuracy each (steps 1–4, once each), tags and artifacts.
async fn check_run(uri: &str, experiment: &str, commit: &str) {
    let (parent, children) = runs_of(uri, experiment).await;
    let parent_id = parent["info"]["run_id"].as_str().unwrap();
    assert_eq!(parent["info"]["status"], "FINISHED", "{parent:#}");
    assert_eq!(tag(&parent, "mlops.status"), Some("budget_spent"));
    assert_eq!(tag(&parent, "mlops.commit"), Some(commit));
    assert_eq!(children.len(), 2, "two nested iterations: {children:#?}");
    for (child, k) in children.iter().zip(["100", "50"]) {
        assert_eq!(tag(child, "mlflow.parentRunId"), Some(parent_id));
        check_iteration(uri, child, k).await;
    }
}

/// One nested iteration: tags, parameters, metric history, artifacts.
async fn check_iteration(uri: &str, child: &Value, k: &str) {
    {
        let id = child["info"]["run_id"].as_str().unwrap();
        assert_eq!(tag(child, "mlops.strategy"), Some("grow"));
        assert_eq!(tag(child, "mlops.outcome"), Some("below_target"));
        assert_eq!(tag(child, "mlops.engine"), Some("local"));
        if k == "50" {
            let reason = tag(child, "mlops.strategy_reason").unwrap_or_default();
            assert!(reason.contains("k 100→50"), "{child:#}");
        }
        assert!(tag(child, "mlops.branch").is_some(), "{child:#}");
        assert_eq!(child["info"]["status"], "FINISHED");
        let params = child["data"]["params"].as_array().unwrap();
        assert!(
            params.contains(&json!({"key": "k", "value": k})),
            "{params:?}"
        );
        assert!(
            params.contains(&json!({"key": "epochs", "value": "4"})),
            "{params:?}"
        );
        let history = api(
            uri,
            "GET",
            "mlflow/metrics/get-history",
            json!({ "run_id": id, "metric_key": "accuracy" }),
        )
        .await;
        let steps: Vec<i64> = history["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["step"]
                    .as_str()
                    .map_or_else(|| m["step"].as_i64().unwrap(), |s| s.parse().unwrap())
            })
            .collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2, 3, 4], "each epoch once: {history:#}");
        let metrics = child["data"]["metrics"].as_array().unwrap();
        assert!(
            metrics.iter().any(|m| m["key"] == "final_accuracy"),
            "{metrics:?}"
        );
        let listed = api(uri, "GET", "mlflow/artifacts/list", json!({ "run_id": id })).await;
        let files: Vec<&str> = listed["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(files.contains(&"knobs.diff"), "{files:?}");
        assert!(files.contains(&"model"), "{files:?}");
        let model = api(
            uri,
            "GET",
            "mlflow/artifacts/list",
            json!({ "run_id": id, "path": "model" }),
        )
        .await;
        assert!(
            model["files"].as_array().is_some_and(|f| !f.is_empty()),
            "the model file is uploaded: {model:#}"
        );
        let diff = ::reqwest::get(format!("{uri}/get-artifact?path=knobs.diff&run_uuid={id}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(diff.contains(&format!("+k = {k}")), "{diff}");
    }
}

/// Waits until iteration `no`'s run is on the server (within 5 minutes); answers when it came.
async fn wait_for_iteration(uri: &str, experiment: &str, no: u32) -> Instant {
    let start = Instant::now();
    loop {
        let exp = ::reqwest::get(format!(
            "{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}"
        ))
        .await;
        if let Ok(exp) = exp
            && exp.status().is_success()
        {
            let id = exp.json::<Value>().await.unwrap()["experiment"]["experiment_id"].clone();
            let filter = format!("tags.`mlops.iteration` = '{no}'");
            let found = api(
                uri,
                "POST",
                "mlflow/runs/search",
                json!({ "experiment_ids": [id], "filter": filter }),
            )
            .await;
            if found["runs"].as_array().is_some_and(|r| !r.is_empty()) {
                return Instant::now();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no run of iteration {no} appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn export(f: &Fixture, args: &[&str]) -> String {
    let out = Command::new(common::bin())
        .arg("export-mlflow")
        .args(args)
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "export-mlflow {args:?} failed: {text}"
    );
    text
}

fn head(f: &Fixture) -> String {
    let repo = git2::Repository::open(f.dir()).unwrap();
    repo.head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_run_survives_a_server_killed_mid_run() {
    let _serial = SERIAL.lock().await;
    let server_dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(server_dir.path(), free_port());
    let uri = server.uri();
    let f = std::sync::Arc::new(knn(Some(&uri)));
    let running = {
        let f = f.clone();
        tokio::spawn(async move { f.run_once().await })
    };
    // Iteration 1 appears under its parent: then the server dies until the run is over.
    wait_for_iteration(&uri, "digits-tracked", 1).await;
    server.kill();
    let (outcome, printed) = running.await.unwrap();
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{printed}");
    let run = outcome.run.unwrap();
    let notice = format!("[mlflow] MLflow at {uri} unreachable: ");
    assert_eq!(printed.matches(&notice).count(), 1, "said once: {printed}");
    let run_dir = f.data.path().join("runs").join(run.to_string());
    let queued = std::fs::read_to_string(run_dir.join("mlflow-queue.jsonl")).unwrap();
    assert!(queued.lines().count() > 0, "records wait on disk");
    assert!(run_dir.join("mlflow.json").is_file());

    // Back on the same database: what waited goes, nothing twice.
    server.up();
    let text = export(&f, &[&run.0.to_string()]);
    assert!(text.contains("with 2 nested iteration runs"), "{text}");
    assert!(!run_dir.join("mlflow-queue.jsonl").exists());
    check_run(&uri, "digits-tracked", &head(&f)).await;

    // Again, and again without our acknowledgements: runs are found by their key, points kept once.
    let again = export(&f, &[&run.0.to_string()]);
    assert!(again.contains("(0 records sent)"), "{again}");
    std::fs::remove_file(run_dir.join("mlflow.json")).unwrap();
    export(&f, &[&run.0.to_string()]);
    check_run(&uri, "digits-tracked", &head(&f)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_backfills_a_run_made_with_no_server() {
    let _serial = SERIAL.lock().await;
    let f = knn(None);
    let (outcome, printed) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{printed}");
    assert!(!printed.contains("mlflow"), "{printed}");
    let run = outcome.run.unwrap().0.to_string();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), free_port());
    let uri = server.uri();
    let text = export(&f, &[&run, "--uri", &uri, "--experiment", "backfilled"]);
    assert!(text.contains("in experiment \"backfilled\""), "{text}");
    check_run(&uri, "backfilled", &head(&f)).await;
}

/// A history written through the store (as the engine writes it) with no server configured:
/// exported twice, and a third time without our acknowledgements, it is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_of_a_recorded_history_is_idempotent() {
    let _serial = SERIAL.lock().await;
    use mlops_tui::adapters::store::{IterationRow, MetricPoint, NewRun, PlacementRow};
    use mlops_tui::core::ids::IterationNo;
    use mlops_tui::core::model::IterStatus;
    let f = knn(None);
    let store = f.store();
    let project = f.dir().display().to_string();
    let commit = head(&f);
    let run = store
        .create_run(&NewRun {
            project: &project,
            commit_id: &commit,
            commit_summary: "two iterations",
            branch: "master",
            trigger: "manual",
        })
        .unwrap();
    let run_dir = f.data.path().join("runs").join(run.to_string());
    std::fs::create_dir_all(run_dir.join("workspace")).unwrap();
    std::fs::copy(
        f.dir().join("mlops.toml"),
        run_dir.join("workspace/mlops.toml"),
    )
    .unwrap();
    for (no, k) in [(1u32, 100), (2, 50)] {
        let mut params = mlops_tui::core::config::Params::new();
        params.insert("epochs".into(), json!(4));
        params.insert("k".into(), json!(k));
        let mut row = IterationRow::new(run, IterationNo(no), params);
        row.status = IterStatus::BelowTarget;
        row.started_at = Some(1_000 * i64::from(no));
        row.finished_at = Some(1_000 * i64::from(no) + 500);
        row.final_value = Some(0.9);
        row.proposal_reason = (no == 2).then(|| "grow capacity (k 100→50)".to_string());
        let workdir = run_dir.join(format!("iter-{no}"));
        std::fs::create_dir_all(workdir.join("model")).unwrap();
        std::fs::write(workdir.join("model/model.pkl"), b"weights").unwrap();
        row.workdir = Some(workdir.display().to_string());
        store.upsert_iteration(&row).unwrap();
        let stay = PlacementRow {
            engine: "local".into(),
            at: 1_000,
            reason: "first placement".into(),
        };
        store.add_placement(run, IterationNo(no), &stay).unwrap();
        for epoch in 1..=4 {
            let p = MetricPoint {
                epoch: Some(epoch),
                value: 0.8 + f64::from(epoch) / 100.0,
                at: 1_000 * i64::from(no) + i64::from(epoch),
            };
            store.add_metric_point(run, IterationNo(no), &p).unwrap();
        }
    }
    store
        .finish_run(run, RunStatus::BudgetSpent, Some("budget spent"))
        .unwrap();
    drop(store);
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), free_port());
    let uri = server.uri();
    let id = run.0.to_string();
    let first = export(&f, &[&id, "--uri", &uri]);
    assert!(first.contains("with 2 nested iteration runs"), "{first}");
    let experiment = f.dir().file_name().unwrap().to_string_lossy().into_owned();
    check_run(&uri, &experiment, &commit).await;
    let again = export(&f, &[&id, "--uri", &uri]);
    assert!(again.contains("(0 records sent)"), "{again}");
    std::fs::remove_file(run_dir.join("mlflow.json")).unwrap();
    export(&f, &[&id, "--uri", &uri]);
    check_run(&uri, &experiment, &commit).await;
}

/// The server goes away for 14 s while the run trains and comes back before it ends: training goes
/// on, the worker says once that the server is unreachable and once that it is back, and every
/// record arrives with no export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails on main since 2026-12-06: the queue drains, but the unreachable/back notices are not printed; to be fixed first (see the closing note of that stop)"]
async fn a_server_back_mid_run_gets_everything_without_an_export() {
    let _serial = SERIAL.lock().await;
    let server_dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(server_dir.path(), free_port());
    let uri = server.uri();
    let f = Fixture::sample("digits-knn-sklearn");
    let path = f.dir().join("mlops.toml");
    // Four iterations (k = 100, 50, 15, 5), each at least twenty seconds long, so the run outlasts the
    // outage.
    let toml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("target = 0.95", "target = 0.999")
        .replace("max_iterations = 5", "max_iterations = 4")
        .replace(
            r#"command = ["python3", "train.py"]"#,
            r#"command = ["sh", "-c", "sleep 20; exec python3 train.py"]"#,
        );
    std::fs::write(
        &path,
        format!("{toml}\n[track.mlflow]\nuri = \"{uri}\"\nexperiment = \"outage\"\n"),
    )
    .unwrap();
    common::commit_all(f.dir(), "four slow iterations");
    let f = std::sync::Arc::new(f);
    let running = {
        let f = f.clone();
        tokio::spawn(async move { f.run_once().await })
    };
    wait_for_iteration(&uri, "outage", 1).await;
    server.kill();
    let outage = Duration::from_secs(14);
    tokio::time::sleep(outage).await;
    assert!(!running.is_finished(), "the run ended during the outage");
    server.up();
    let back = Instant::now();
    // Iteration 2 started while the server was away: its run comes from the queue.
    let arrived = wait_for_iteration(&uri, "outage", 2).await;
    eprintln!(
        "queue drained into the restarted server {:.1} s after it answered ({} s outage)",
        arrived.duration_since(back).as_secs_f64(),
        outage.as_secs()
    );
    let (outcome, printed) = running.await.unwrap();
    assert!(outcome.status.is_final(), "{printed}");
    let down = format!("[mlflow] MLflow at {uri} unreachable: ");
    assert_eq!(printed.matches(&down).count(), 1, "said once: {printed}");
    let up = format!("[mlflow] MLflow at {uri} reachable again: ");
    assert_eq!(printed.matches(&up).count(), 1, "said once: {printed}");
    let run_dir = f
        .data
        .path()
        .join("runs")
        .join(outcome.run.unwrap().to_string());
    assert!(
        !run_dir.join("mlflow-queue.jsonl").exists(),
        "nothing left queued"
    );
    let (parent, children) = runs_of(&uri, "outage").await;
    assert_eq!(parent["info"]["status"], "FINISHED", "{parent:#}");
    assert_eq!(children.len(), 4, "four nested iterations: {children:#?}");
    for (child, k) in children.iter().zip(["100", "50", "15", "5"]) {
        check_iteration(&uri, child, k).await;
    }
}
