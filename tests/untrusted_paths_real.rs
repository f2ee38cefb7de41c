//! A repository arrives by `git push` and its container writes its own workspace: neither may make
//! the host read, show or store a host file. Real git repositories (links committed as mode-120000
//! blobs with git2), the real Docker engine, the engine driven in-process as `run --headless --once`
//! drives it, and the real binary for the operator's allow-list file.
//!
//! Every test plants a host file outside the repository holding a marker string and checks that the
//! marker reaches nothing: the printed events, the history, the run's directory, any object of the
//! repository (refs/mlops included).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, SharedBuf};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;
use mlops_tui::engine::{Engine, EngineOptions, Outcome};
use mlops_tui::headless::Printer;
use mlops_tui::support::data_policy::DataPolicy;

const MARKER: &str = "HOST-SECRET-7f3a9c";

/// A host file outside any repository, readable by everyone (as `/etc/passwd` is), holding the marker.
fn secret() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow");
    std::fs::write(
        &path,
        format!("root:{MARKER}:19000:0:99999:7:::\nparameter = 1\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

/// A repository holding `files` and, as mode-120000 entries, `links` (name, target), committed.
fn repo_with_links(files: &[(&str, &str)], links: &[(&str, &Path)]) -> Fixture {
    let f = Fixture::with_files(files);
    for (name, target) in links {
        let at = f.dir().join(name);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &at).unwrap();
    }
    common::commit_all(f.dir(), "add links");
    let repo = git2::Repository::open(f.dir()).unwrap();
    let tree = repo.head().unwrap().peel_to_tree().unwrap();
    for (name, _) in links {
        let entry = tree.get_path(Path::new(name)).unwrap();
        assert_eq!(entry.filemode(), 0o120000, "{name} is committed as a link");
    }
    f
}

/// One run with `policy` deciding `[data]`, as `run --headless --once` does it.
async fn run_with(f: &Fixture, policy: DataPolicy) -> (Outcome, String) {
    let backend = Arc::new(DockerBackend::connect_default().expect("Docker engine"));
    let opts = EngineOptions {
        project: Project::locate(f.dir()).unwrap(),
        runs_dir: f.data.path().join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: false,
        remote: None,
        webhook: None,
        data_policy: policy,
    };
    let engine = Engine::new(backend, f.store(), opts);
    let out = SharedBuf::default();
    let mut printer = Printer::new(out.clone(), true);
    let outcome = tokio::time::timeout(Duration::from_secs(600), engine.run(&mut printer))
        .await
        .expect("run finished within 10 minutes");
    let text = out.text();
    println!("{text}");
    (outcome, text)
}

fn allowing(dirs: &[&Path]) -> DataPolicy {
    DataPolicy::new(
        dirs.iter().map(|d| d.display().to_string()).collect(),
        PathBuf::from("/home/op/.config/mlops-tui/config.toml"),
        &[],
    )
}

/// Every regular file under `dir`, read without following a link, and every link's target.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let meta = e.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                found.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    found
}

/// The marker is nowhere the host shows or keeps: the printed events, the outcome, the history
/// (its database and log files), the run directories, any object of the repository.
fn assert_no_marker(f: &Fixture, outcome: &Outcome, out: &str) {
    assert!(!out.contains(MARKER), "printed:\n{out}");
    assert!(!outcome.reason.contains(MARKER), "{}", outcome.reason);
    for (path, bytes) in files_under(f.data.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(MARKER),
            "{} holds the marker",
            path.display()
        );
    }
    let repo = git2::Repository::open(f.dir()).unwrap();
    let odb = repo.odb().unwrap();
    let mut objects = 0;
    odb.foreach(|id| {
        objects += 1;
        let obj = odb.read(*id).unwrap();
        assert!(
            !String::from_utf8_lossy(obj.data()).contains(MARKER),
            "object {id} ({:?}) holds the marker",
            obj.kind()
        );
        true
    })
    .unwrap();
    assert!(objects > 0);
}

fn toml(space: &str, extra: &str) -> String {
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.99
{extra}
[budget]
max_iterations = 2
max_failures = 1
metric_timeout = "60s"

[resources]
memory = "256m"

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
{space}
"#
    )
}

const TRAIN: &str = "import os\nprint('accuracy=0.5')\n";

#[tokio::test]
async fn a_knob_on_a_linked_file_is_refused_at_its_line_and_nothing_of_the_host_file_is_kept() {
    let (_dir, shadow) = secret();
    let space = "parameter = { source = \"shadow.py\", assign = \"parameter\", start = 1, max = 3, step = 1 }";
    let f = repo_with_links(
        &[("mlops.toml", &toml(space, "")), ("train.py", TRAIN)],
        &[("shadow.py", &shadow)],
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    let expected = format!(
        "{}:22:15: knob \"parameter\": file \"shadow.py\" is a symbolic link, which mlops-tui never follows",
        f.dir().canonicalize().unwrap().join("mlops.toml").display()
    );
    assert!(outcome.reason.contains(&expected), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("commit the file itself"),
        "{}",
        outcome.reason
    );
    assert!(!out.contains("[train:"), "no container:\n{out}");
    assert!(f.leftover_containers().await.is_empty());
    let repo = git2::Repository::open(f.dir()).unwrap();
    assert!(
        repo.references_glob("refs/mlops/*")
            .unwrap()
            .next()
            .is_none()
    );
    assert_no_marker(&f, &outcome, &out);
}

#[tokio::test]
async fn a_repeat_knob_under_a_linked_directory_and_a_linked_mlops_toml_are_refused() {
    let (dir, _) = secret();
    std::fs::write(dir.path().join("block.py"), format!("x = 1  # {MARKER}\n")).unwrap();
    let space = "blocks = { source = \"src/block.py:1-1\", repeat = { start = 1, max = 3 } }";
    let f = repo_with_links(
        &[("mlops.toml", &toml(space, "")), ("train.py", TRAIN)],
        &[("src", dir.path())],
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(
        outcome
            .reason
            .contains("knob \"blocks\": file \"src/block.py\" lies under \"src\", a symbolic link"),
        "{}",
        outcome.reason
    );
    assert!(outcome.reason.contains(":22:12: "), "{}", outcome.reason);
    assert_no_marker(&f, &outcome, &out);

    // mlops.toml itself as a link to a host file: its text never reaches an error message.
    let (_d2, shadow) = secret();
    let g = repo_with_links(&[("train.py", TRAIN)], &[("mlops.toml", &shadow)]);
    let (outcome, out) = g.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(
        outcome
            .reason
            .contains("mlops.toml: a symbolic link in commit")
            && outcome.reason.contains("commit the file itself"),
        "{}",
        outcome.reason
    );
    assert_no_marker(&g, &outcome, &out);
}

#[tokio::test]
async fn a_knob_on_a_file_that_is_not_utf8_names_the_line_the_offset_and_the_fix() {
    let space = "gamma = { source = \"model.py\", assign = \"gamma\", values = [0.1, 0.2] }";
    let f = Fixture::with_files(&[("mlops.toml", &toml(space, "")), ("train.py", TRAIN)]);
    // Latin-1 "é" in a comment: Python 3 refuses the file too, so nothing could train it.
    let mut bytes = b"# caf".to_vec();
    bytes.push(0xe9);
    bytes.extend_from_slice(b"\ngamma = 0.1\n");
    std::fs::write(f.dir().join("model.py"), bytes).unwrap();
    common::commit_all(f.dir(), "latin-1");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(
        outcome.reason.contains(
            "mlops.toml:22:11: knob \"gamma\": model.py is not UTF-8 (invalid byte 0xe9 at offset 5, line 1); save it as UTF-8"
        ),
        "{}",
        outcome.reason
    );
    assert!(!out.contains("[train:"), "no container:\n{out}");
}

/// `[data]` naming `host` (as written), checked with `policy`: the run fails before any container
/// with `says` at the `host` line (line 8 of the toml below).
async fn data_refused(host: &str, policy: DataPolicy, says: &str) {
    let extra = format!("\n[data]\nds = {{ host = \"{host}\", path = \"/data/ds\" }}\n");
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("k = { values = [1, 2] }", &extra)),
        ("train.py", TRAIN),
    ]);
    let (outcome, out) = run_with(&f, policy).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(
        outcome.reason.contains("mlops.toml:10:"),
        "{}",
        outcome.reason
    );
    assert!(outcome.reason.contains("[data] ds: "), "{}", outcome.reason);
    assert!(outcome.reason.contains(says), "{}", outcome.reason);
    assert!(!out.contains("[train:"), "no container:\n{out}");
    assert!(!out.contains("500"), "never a raw engine error:\n{out}");
    assert!(f.leftover_containers().await.is_empty());
    let store = f.store();
    assert!(store.iterations(RunId(1)).unwrap().is_empty());
}

#[tokio::test]
async fn data_outside_the_operators_allow_list_or_in_protected_places_is_refused() {
    let tmp = std::env::temp_dir();
    // Allowed everywhere under /: the protected places are still refused.
    data_refused(
        "/etc",
        allowing(&[Path::new("/")]),
        "/etc is inside /etc (a system directory)",
    )
    .await;
    // Through a link that resolves into /etc, and through `..`.
    let links = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/ssl", links.path().join("certs")).unwrap();
    let via = format!("{}/certs", links.path().display());
    data_refused(&via, allowing(&[&tmp]), "is inside /etc").await;
    let dotdot = format!("{}/../../etc", links.path().display());
    data_refused(&dotdot, allowing(&[Path::new("/")]), "is inside /etc").await;
    // Not under the allow-list: the fix names the operator's file.
    let data = tempfile::tempdir().unwrap();
    data_refused(
        &data.path().display().to_string(),
        allowing(&[Path::new("/srv/datasets")]),
        "is not under a directory allowed for [data] (the repository cannot decide what the host \
         shares): add it to `allow` under [data] in /home/op/.config/mlops-tui/config.toml",
    )
    .await;
}

#[tokio::test]
async fn the_engines_own_data_directory_cannot_be_mounted() {
    let f = Fixture::with_files(&[("train.py", TRAIN)]);
    let extra = format!(
        "\n[data]\nds = {{ host = \"{}\", path = \"/data/ds\" }}\n",
        f.data.path().display()
    );
    std::fs::write(
        f.dir().join("mlops.toml"),
        toml("k = { values = [1, 2] }", &extra),
    )
    .unwrap();
    common::commit_all(f.dir(), "mount the history");
    let (outcome, out) = run_with(&f, allowing(&[&std::env::temp_dir()])).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(
        outcome
            .reason
            .contains("mlops-tui's own data, state or configuration"),
        "{}",
        outcome.reason
    );
    assert!(!out.contains("[train:"), "no container:\n{out}");
}

/// The operator's file, read by the real binary: `[data] allow` in `<config dir>/config.toml`.
#[tokio::test]
async fn the_allow_list_is_read_from_the_operators_config_file() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("values.txt"), "1 2 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!(
        "\n[data]\nds = {{ host = \"{}\", path = \"/data/ds\" }}\n",
        data.path().display()
    );
    let script = "print(open('/data/ds/values.txt').read().split()[1])\nprint('accuracy=0.995')\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("k = { values = [1, 2] }", &extra)),
        ("train.py", script),
    ]);
    let config = tempfile::tempdir().unwrap();
    let run = |config: &Path| {
        std::process::Command::new(common::bin())
            .args(["run", "--headless", "--once"])
            .arg(f.dir())
            .env("MLOPS_TUI_DATA_DIR", f.data.path())
            .env("MLOPS_TUI_STATE_DIR", f.data.path())
            .env("MLOPS_TUI_CONFIG_DIR", config)
            .output()
            .unwrap()
    };
    let refused = run(config.path());
    let text = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    let file = config.path().join("config.toml");
    assert!(
        text.contains(&format!(
            "add it to `allow` under [data] in {}",
            file.display()
        )),
        "{text}"
    );
    assert!(!text.contains("[train:"), "{text}");
    std::fs::write(
        &file,
        format!(
            "theme = \"light\"\n\n[data]\nallow = [\"{}\"]\n",
            data.path().display()
        ),
    )
    .unwrap();
    let allowed = run(config.path());
    let text = String::from_utf8_lossy(&allowed.stdout).into_owned()
        + &String::from_utf8_lossy(&allowed.stderr);
    assert!(allowed.status.success(), "{text}");
    assert!(text.contains("target reached"), "{text}");
    // A typo in the operator's file is an error at its line, before anything runs.
    std::fs::write(&file, "[data]\nallowed = [\"/srv\"]\n").unwrap();
    let typo = run(config.path());
    let text = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success());
    assert!(
        text.contains(&format!("{}:2:1: unknown field `allowed`", file.display())),
        "{text}"
    );
}

/// A container that plants links in its own workspace, to the host file, where the host reads
/// after the exit (`metric.file`, a model file, a directory on the way to them).
#[tokio::test]
async fn links_a_container_plants_in_its_workspace_are_never_followed() {
    let (dir, shadow) = secret();
    let script = format!(
        "import os\n\
         os.symlink({shadow:?}, 'accuracy.txt')\n\
         os.symlink({shadow:?}, 'model.pkl')\n\
         os.symlink({dir:?}, 'out')\n\
         print('epoch 1 loss=0.3')\n",
        shadow = shadow.display().to_string(),
        dir = dir.path().display().to_string()
    );
    let f = Fixture::with_files(&[
        (
            "mlops.toml",
            &toml("k = { values = [1, 2] }", "file = \"accuracy.txt\"\n"),
        ),
        ("train.py", &script),
    ]);
    let (outcome, out) = f.run_once().await;
    assert!(out.contains("[train:1]"), "{out}");
    assert!(
        out.contains(
            "metric.file /workspace/accuracy.txt is not read: accuracy.txt is a symbolic link, \
             which mlops-tui never follows"
        ),
        "{out}"
    );
    assert_no_marker(&f, &outcome, &out);
    // The metric file in a linked directory.
    let g = Fixture::with_files(&[
        (
            "mlops.toml",
            &toml("k = { values = [1, 2] }", "file = \"out/shadow\"\n"),
        ),
        ("train.py", &script),
    ]);
    let (outcome, out) = g.run_once().await;
    assert!(out.contains("out is a symbolic link"), "{out}");
    assert_no_marker(&g, &outcome, &out);
    let store = Store::open(&g.data.path().join("history.sqlite3")).unwrap();
    let its = store.iterations(RunId(1)).unwrap();
    assert!(its.iter().all(|i| i.model.is_none()), "{its:?}");
}

/// A project whose command writes into its read-only `[data]` mount: the run stops after one
/// container, as an environment error with the fix, whatever printed the error.
async fn read_only_data_stops(command: &str, script: &str, error: &str) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("values.txt"), "1 2 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let extra = format!(
        "\n[data]\nds = {{ host = \"{}\", path = \"/data/ds\" }}\n",
        data.path().display()
    );
    let toml = toml("k = { values = [1, 2, 3] }", &extra)
        .replace("max_iterations = 2", "max_iterations = 3")
        .replace("max_failures = 1", "max_failures = 2")
        .replace("[\"python3\", \"train.py\"]", command);
    let f = Fixture::with_files(&[("mlops.toml", &toml), ("train.py", script)]);
    let (outcome, out) = run_with(&f, allowing(&[data.path()])).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(outcome.reason.contains(error), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("no tweak can fix this"),
        "{}",
        outcome.reason
    );
    assert!(
        outcome.reason.contains("[data] mounts are read-only"),
        "{}",
        outcome.reason
    );
    assert!(!out.contains("[train:2]"), "one container only:\n{out}");
    let its = f.store().iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "{its:?}");
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_shell_writing_into_read_only_data_stops_the_run() {
    read_only_data_stops(
        r#"["sh", "-ec", "echo 'epoch 1 loss=0.3'; echo cached > /data/ds/cache.txt; echo accuracy=0.5"]"#,
        TRAIN,
        "Read-only file system",
    )
    .await;
}

#[tokio::test]
async fn a_database_in_read_only_data_stops_the_run() {
    let script = "import sqlite3\nprint('epoch 1 loss=0.3')\ndb = sqlite3.connect('/data/ds/cache.sqlite3')\ndb.execute('create table t (x)')\n";
    read_only_data_stops(
        r#"["python3", "train.py"]"#,
        script,
        "sqlite3.OperationalError",
    )
    .await;
}

#[tokio::test]
async fn numpy_saving_into_read_only_data_stops_the_run() {
    let script = "import numpy as np\nprint('epoch 1 loss=0.3')\nnp.save('/data/ds/features.npy', np.zeros(3))\n";
    read_only_data_stops(
        r#"["python3", "train.py"]"#,
        script,
        "OSError: [Errno 30] Read-only file system: '/data/ds/features.npy'",
    )
    .await;
}
