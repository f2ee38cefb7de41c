//! Shared parts of the real-engine tests: real git repositories made with git2, the real Docker engine
//! through bollard, and the engine driven in-process exactly as `run --headless --once` drives it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptionsBuilder;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::model::labels;
use mlops_tui::engine::{Engine, EngineOptions, Outcome};
use mlops_tui::headless::Printer;

pub mod engines;
pub mod swarm;
pub mod tmux;

/// A project in its own git repository, with a private data directory for history and runs.
pub struct Fixture {
    pub repo: tempfile::TempDir,
    pub data: tempfile::TempDir,
}

impl Fixture {
    /// Copies `sample-projects/<name>` into a fresh repository and commits it.
    pub fn sample(name: &str) -> Fixture {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-projects")
            .join(name);
        let f = Fixture::empty();
        copy_dir(&src, f.repo.path());
        commit_all(f.repo.path(), "add project");
        f
    }

    /// A repository holding the given files, committed.
    pub fn with_files(files: &[(&str, &str)]) -> Fixture {
        let f = Fixture::empty();
        for (path, text) in files {
            let p = f.repo.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        commit_all(f.repo.path(), "add project");
        f
    }

    fn empty() -> Fixture {
        let repo = tempfile::tempdir().unwrap();
        git2::Repository::init(repo.path()).unwrap();
        Fixture {
            repo,
            data: tempfile::tempdir().unwrap(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.repo.path()
    }

    pub fn store(&self) -> Store {
        Store::open(&self.data.path().join("history.sqlite3")).unwrap()
    }

    /// One run on the head commit, as `run --headless --once` does it. Returns the outcome and
    /// everything that was printed.
    pub async fn run_once(&self) -> (Outcome, String) {
        self.run_once_with(false).await
    }

    /// One run on the head commit, as `run --headless --once --cold` does it: nothing is carried
    /// over from earlier runs.
    pub async fn run_once_cold(&self) -> (Outcome, String) {
        self.run_once_with(true).await
    }

    async fn run_once_with(&self, cold: bool) -> (Outcome, String) {
        let backend = Arc::new(DockerBackend::connect_default().expect("Docker engine"));
        let opts = EngineOptions {
            project: Project::locate(self.dir()).unwrap(),
            runs_dir: self.data.path().join("runs"),
            interactive: false,
            once: true,
            branch: None,
            poll_interval: Duration::from_secs(1),
            queue_all: false,
            cold,
            remote: None,
            webhook: None,
            data_policy: test_data_policy(),
        };
        let engine = Engine::new(backend, self.store(), opts);
        let out = SharedBuf::default();
        let mut printer = Printer::new(out.clone(), true);
        let outcome = tokio::time::timeout(Duration::from_secs(600), engine.run(&mut printer))
            .await
            .expect("run finished within 10 minutes");
        let text = out.text();
        println!("{text}");
        (outcome, text)
    }

    /// Containers this fixture's runs left behind (running or not). Must be empty after a run.
    pub async fn leftover_containers(&self) -> Vec<String> {
        self.containers(false).await
    }

    /// This fixture's containers: only the running ones, or all of them.
    pub async fn containers(&self, running_only: bool) -> Vec<String> {
        let docker = DockerBackend::connect_default().unwrap();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!(
                "{}={}",
                labels::STORE,
                self.data.path().join("runs").display()
            )],
        )]);
        let opts = ListContainersOptionsBuilder::default()
            .all(!running_only)
            .filters(&filters)
            .build();
        docker
            .client()
            .list_containers(Some(opts))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    }
}

pub fn commit_all(dir: &Path, message: &str) -> git2::Oid {
    let repo = git2::Repository::open(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

pub fn copy_dir(src: &Path, dest: &Path) {
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "__pycache__" {
            continue;
        }
        let to = dest.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The built binary, for tests of the command line itself.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlops-tui"))
}

#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `run --headless` watching a fixture's project in a child process, its stdout and stderr collected.
pub struct Headless {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Headless {
    /// Starts watching with a 1 s poll; `socket` replaces the Docker engine's socket (a proxy).
    pub fn start(f: &Fixture, socket: Option<&Path>) -> Headless {
        let mut command = Command::new(bin());
        if let Some(socket) = socket {
            command.env("DOCKER_HOST", format!("unix://{}", socket.display()));
        }
        let mut child = command
            .args(["run", "--headless", "--poll", "1"])
            .arg(f.dir())
            .env("MLOPS_TUI_DATA_DIR", f.data.path())
            .env("MLOPS_TUI_STATE_DIR", f.data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Headless { child, out }
    }

    pub fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                start.elapsed() < within,
                "`{needle}` not seen within {within:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `mlops.toml` of the trials-side-by-side tests: the numpy image, target 0.9, `parallel` trials
/// over a random search of one dimension, `extra` appended (e.g. a `[monitor]` table).
pub fn race_toml(parallel: u32, max: u32, extra: &str) -> String {
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = {max}
max_failures = 0
metric_timeout = "60s"
parallel = {parallel}

[resources]
memory = "256m"
cpus = 0.5

[tweak]
strategy = "random"
apply = "auto"

[tweak.space]
k = {{ values = [1, 2, 3, 4, 5, 6] }}
{extra}
"#
    )
}

/// The `[data]` allow-list the tests' engines use: anything under the system's temporary directory.
#[allow(dead_code)]
pub fn test_data_policy() -> mlops_tui::support::data_policy::DataPolicy {
    mlops_tui::support::data_policy::DataPolicy::new(
        vec![std::env::temp_dir().display().to_string()],
        "test-config.toml".into(),
        &[],
    )
}
