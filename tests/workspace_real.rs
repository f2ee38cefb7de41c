//! On the real engine and real git: every iteration trains its own writable copy of its commit,
//! kept as `refs/mlops/run-N/iter-K`; a model file the script saves next to itself is the model;
//! `[data]` is mounted read-only and checked at start; `metric.file` is read at the exit; `export`
//! turns the best iteration into a branch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use mlops_tui::adapters::backend::ContainerBackend;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::git::{Project, iteration_ref};
use mlops_tui::adapters::images;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::knobs::{Patch, SourceEdit};
use mlops_tui::core::model::ImageSpec;
use mlops_tui::core::model::RunStatus;
use mlops_tui::engine::msg::{ExitReport, IterationPlan, Msg};
use mlops_tui::engine::workers::iteration::{Control, Links, run_iteration};
use mlops_tui::support::config_file;
use tokio::sync::mpsc;

const TRAIN: &str = include_str!("fixtures/workspace/train.py");

fn toml(extra: &str) -> String {
    format!(
        r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.95
{extra}
[budget]
max_iterations = 2
max_failures = 0
metric_timeout = "20s"

[resources]
memory = "256m"
"#
    )
}

/// A host directory with the data set the script reads.
fn dataset() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("values.txt"), "1 2 3\n").unwrap();
    // The container runs as this process's user, or as nobody when that is root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn data_section(host: &Path) -> String {
    format!(
        "file = \"accuracy.txt\"\n\n[data]\nds = {{ host = \"{}\", path = \"/data/ds\" }}\n",
        host.display()
    )
}

/// What one iteration worker reported, in order: its output, its commit, its exit report, its
/// exit status. Releases the worker after its exit.
struct Reported {
    lines: Vec<String>,
    committed: Option<String>,
    report: Option<ExitReport>,
    status: Option<mlops_tui::core::model::ExitStatus>,
}

async fn follow(mut plan: IterationPlan, run_dir: &Path, project: &Project) -> Reported {
    let backend = Arc::new(DockerBackend::connect_default().expect("Docker engine"));
    let (progress, _) = mpsc::unbounded_channel();
    plan.image = backend
        .prepare_image(
            &ImageSpec::Profile(images::profile(&plan.image).expect("a built-in profile")),
            progress,
        )
        .await
        .expect("the image");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl) = mpsc::unbounded_channel();
    let worker = tokio::spawn(run_iteration(
        backend,
        plan,
        run_dir.to_path_buf(),
        project.clone(),
        Links { tx, ctl },
        None,
    ));
    let mut r = Reported {
        lines: Vec::new(),
        committed: None,
        report: None,
        status: None,
    };
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(300), rx.recv())
            .await
            .expect("the iteration ends")
            .expect("the worker reports");
        match msg {
            Msg::Logs { lines, .. } => r.lines.extend(lines.into_iter().map(|l| l.text)),
            Msg::Committed { commit, .. } => r.committed = commit,
            Msg::ExitReport { report, .. } => r.report = Some(report),
            Msg::Exited { status, cause, .. } => {
                assert_eq!(cause, None, "{:?}", r.lines);
                r.status = status;
                break;
            }
            _ => {}
        }
    }
    ctl_tx.send(Control::Release).unwrap();
    worker.await.unwrap();
    r
}

/// The worker on its own, as the engine runs it, with a non-empty patch: iteration 2 trains a
/// commit whose tree differs from the run's by exactly the patched file, in a writable workspace.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one scenario, checked step by step
async fn a_patched_iteration_is_a_commit_and_trains_in_its_own_writable_copy() {
    let data = dataset();
    let f = Fixture::with_files(&[
        ("train.py", TRAIN),
        ("mlops.toml", &toml(&data_section(data.path()))),
        ("README.md", "a project\n"),
    ]);
    let project = Project::locate(f.dir()).unwrap();
    let head = project.head(None).unwrap();
    let repo = git2::Repository::open(f.dir()).unwrap();
    let head_before = repo.head().unwrap().target().unwrap();
    let config = config_file::load_dir(f.dir()).unwrap();
    let run_dir = f.data.path().join("runs/1");
    let pristine = run_dir.join("workspace");
    project.export(&head, &pristine).unwrap();
    let patched = TRAIN.replace("gamma = 0.001", "gamma = 0.002");
    let line = TRAIN.lines().position(|l| l == "gamma = 0.001").unwrap() + 1;
    let patch = Patch {
        files: BTreeMap::from([("train.py".to_string(), patched.clone())]),
        edits: vec![SourceEdit {
            file: "train.py".into(),
            line,
            old: "gamma = 0.001".into(),
            new: "gamma = 0.002".into(),
        }],
    };
    let plan = IterationPlan {
        run: RunId(1),
        no: IterationNo(2),
        params: BTreeMap::from([("gamma".to_string(), serde_json::json!(0.002))]),
        image: "numpy".into(),
        workspace: pristine.clone(),
        config,
        proposal_reason: None,
        commit: head.id.clone(),
        patch,
        engine: None,
        change: "gamma 0.001→0.002".into(),
        keep: None,
    };
    let Reported {
        lines,
        committed,
        report,
        status,
    } = follow(plan, &run_dir, &project).await;
    assert_eq!(status.map(|s| s.code), Some(0), "{lines:?}");

    // The commit: on its ref, child of the run's commit, differing exactly by train.py.
    let refname = iteration_ref(1, 2);
    assert_eq!(refname, "refs/mlops/run-1/iter-2");
    let id = repo.refname_to_id(&refname).expect("the iteration's ref");
    assert_eq!(committed, Some(id.to_string()));
    let commit = repo.find_commit(id).unwrap();
    assert_eq!(commit.parent_id(0).unwrap().to_string(), head.id);
    assert_eq!(
        commit.message().unwrap(),
        "mlops-tui run 1 iteration 2: gamma 0.001→0.002"
    );
    let base_tree = repo.find_commit(head_before).unwrap().tree().unwrap();
    let diff = repo
        .diff_tree_to_tree(Some(&base_tree), Some(&commit.tree().unwrap()), None)
        .unwrap();
    let changed: Vec<String> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().display().to_string())
        .collect();
    assert_eq!(changed, ["train.py"]);
    // Branches, HEAD and the index are the user's: untouched.
    assert_eq!(repo.head().unwrap().target().unwrap(), head_before);
    assert_eq!(repo.branches(None).unwrap().count(), 1);
    assert!(repo.statuses(None).unwrap().is_empty());

    // The container saw the patched file, wrote next to it, and could not write the data.
    assert!(
        lines.iter().any(|l| l == "training with gamma 0.002"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "model saved next to the script: True"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "data is read-only (errno 30)"),
        "{lines:?}"
    );
    let workspace = run_dir.join("iter-2/workspace");
    assert_eq!(
        std::fs::read_to_string(workspace.join("train.py")).unwrap(),
        patched
    );
    assert!(!data.path().join("new.txt").exists());
    // The run's export stays pristine.
    assert_eq!(
        std::fs::read_to_string(pristine.join("train.py")).unwrap(),
        TRAIN
    );

    let ExitReport {
        model,
        no_model,
        output_hash,
        metric_file,
        over_disk,
        ..
    } = report.expect("an exit report");
    assert_eq!(over_disk, None);
    assert_eq!(
        (model, no_model),
        (Some(workspace.join("mymodel.pkl")), false)
    );
    assert!(output_hash.is_some());
    assert_eq!(metric_file, Some(("accuracy.txt".to_string(), 1.0)));
    assert!(f.leftover_containers().await.is_empty());
}

/// The whole engine: the model line names the file saved next to the script, `metric.file` gives
/// the value, every iteration has its ref, and `export` makes a branch once.
#[tokio::test]
async fn the_engine_names_the_model_file_reads_the_metric_file_and_exports_the_best() {
    let data = dataset();
    let f = Fixture::with_files(&[
        ("train.py", TRAIN),
        ("mlops.toml", &toml(&data_section(data.path()))),
    ]);
    let head = Project::locate(f.dir()).unwrap().head(None).unwrap();
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(
        out.contains("accuracy 0.9500 read from accuracy.txt (metric.file)"),
        "{out}"
    );
    let model = f.data.path().join("runs/1/iter-1/workspace/mymodel.pkl");
    assert!(
        out.contains(&format!("(best model: {})", model.display())),
        "{out}"
    );
    assert!(model.is_file());
    let repo = git2::Repository::open(f.dir()).unwrap();
    let iter1 = repo.refname_to_id("refs/mlops/run-1/iter-1").unwrap();
    assert_eq!(
        iter1.to_string(),
        head.id,
        "an empty patch is the run's commit"
    );

    let store = f.store();
    let made = mlops_tui::history::export_run(&store, RunId(1), None).unwrap();
    assert_eq!(made.branch, "mlops/run-1-best");
    assert!(
        made.text.contains("git merge mlops/run-1-best"),
        "{}",
        made.text
    );
    let branch = repo
        .find_branch("mlops/run-1-best", git2::BranchType::Local)
        .unwrap();
    assert_eq!(branch.get().target().unwrap(), iter1);
    let again = mlops_tui::history::export_run(&store, RunId(1), None).unwrap_err();
    assert!(
        again.contains("already exists") && again.contains("--branch"),
        "{again}"
    );
    let shown = mlops_tui::history::format_run(&store, RunId(1)).unwrap();
    assert!(
        shown.contains(&format!("iteration 1: commit {}", &head.id[..8])),
        "{shown}"
    );
    assert!(
        shown.contains("model ") && shown.contains("mymodel.pkl"),
        "{shown}"
    );
    assert!(f.leftover_containers().await.is_empty());
}

/// A script that ends without writing its `metric.file` fails the iteration, naming the file.
#[tokio::test]
async fn a_missing_metric_file_fails_the_iteration_by_name() {
    let data = dataset();
    let script = TRAIN.replace(
        "with open(\"accuracy.txt\", \"w\") as fh:",
        "with open(\"other.txt\", \"w\") as fh:",
    );
    let f = Fixture::with_files(&[
        ("train.py", &script),
        ("mlops.toml", &toml(&data_section(data.path()))),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        out.contains("the script ended without writing metric.file /workspace/accuracy.txt"),
        "{out}"
    );
}

/// A `[data]` host path that does not exist fails the run at its line, before any container.
#[tokio::test]
async fn a_missing_data_directory_is_refused_at_its_line() {
    let missing = std::env::temp_dir().join("mlops-tui-no-such-dataset");
    let f = Fixture::with_files(&[
        ("train.py", TRAIN),
        ("mlops.toml", &toml(&data_section(&missing))),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(out.contains("mlops.toml:11:"), "{out}");
    let expected = format!("[data] ds: {} does not exist", missing.display());
    assert!(out.contains(&expected), "{out}");
    assert!(f.store().iterations(RunId(1)).unwrap().is_empty());
}

/// A tweaked parameter the script never reads: the same output and value twice is said once, naming
/// it; each iteration still has its ref (the run's commit, since no source line moved).
#[tokio::test]
async fn a_parameter_nothing_reads_is_named_once() {
    let data = dataset();
    let extra = data_section(data.path()).replace(
        "\n[data]",
        "\n[tweak]\nstrategy = \"grow\"\n[tweak.space]\nk = { values = [15, 9, 3] }\n\n[data]",
    );
    let f = Fixture::with_files(&[
        ("train.py", TRAIN),
        (
            "mlops.toml",
            &toml(&extra)
                .replace("target = 0.95", "target = 0.99")
                .replace("max_iterations = 2", "max_iterations = 3"),
        ),
    ]);
    let head = Project::locate(f.dir()).unwrap().head(None).unwrap();
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{out}");
    let warning = "[evaluate:2] iterations 1 and 2 differ only in `k` (15→9) yet printed the same \
                   output and accuracy 0.95: nothing seems to read `k` — bind it to the source \
                   (see README)";
    assert!(out.contains(warning), "{out}");
    assert_eq!(out.matches("nothing seems to read").count(), 1, "{out}");
    let repo = git2::Repository::open(f.dir()).unwrap();
    for no in 1..=3 {
        let id = repo.refname_to_id(&iteration_ref(1, no)).unwrap();
        assert_eq!(id.to_string(), head.id);
    }
}
