//! Notebooks as written: a project whose training entry is a `.ipynb` runs it as it is, through
//! nbclient and an IPython kernel in the image, each cell's output read as it is printed. A knob in
//! one of its code cells is tuned by editing that cell inside the notebook's JSON (a git commit
//! like any source knob's), the executed notebook of each iteration is kept and named by `history`,
//! and a failing cell is named with its error line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Fixture, commit_all, copy_dir};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

const NB: &str = "plot_digits_classification.ipynb";

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/byos/svc-ipynb")
}

fn blob_at(repo: &git2::Repository, reference: &str, path: &str) -> String {
    let commit = repo
        .revparse_single(reference)
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let entry = commit.tree().unwrap().get_path(Path::new(path)).unwrap();
    String::from_utf8(repo.find_blob(entry.id()).unwrap().content().to_vec()).unwrap()
}

/// A notebook of its own with `mlops.toml`.
fn notebook_project(cells: &[&str], toml_extra: &str) -> Fixture {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            serde_json::json!({"cell_type": "code", "execution_count": null, "metadata": {},
                               "outputs": [], "source": c})
        })
        .collect();
    let nb =
        serde_json::json!({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5});
    let toml = format!(
        "[train]\ncommand = [\"python3\", \"nb.ipynb\"]\nimage = \"sklearn\"\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\
         [budget]\nmax_iterations = 1\n{toml_extra}"
    );
    Fixture::with_files(&[("mlops.toml", &toml), ("nb.ipynb", &nb.to_string())])
}

#[tokio::test]
async fn a_notebook_is_tuned_through_a_knob_in_its_cell_and_each_executed_notebook_is_kept() {
    let toml = format!(
        r#"[train]
command = ["python3", "{NB}"]

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 4

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
gamma = {{ source = "{NB}", call = "svm.SVC", arg = "gamma", values = [0.1, 0.01, 0.001] }}
"#
    );
    let f = Fixture::with_files(&[("mlops.toml", &toml)]);
    copy_dir(&fixture(), f.dir());
    commit_all(f.dir(), "the digits notebook");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    // The cells' output streams through: the classification report's accuracy row is the metric.
    assert!(
        out.contains("Classification report for classifier SVC(gamma=0.1)"),
        "{out}"
    );
    let store = f.store();
    let iterations = store.iterations(RunId(1)).unwrap();
    assert_eq!(iterations.len(), 3, "{out}");
    assert!(iterations[2].final_value.unwrap() >= 0.95);
    // The edit is the cell's code, named by its cell, not a line of JSON.
    let edits = &iterations[2].edits;
    assert_eq!(edits.len(), 1, "{edits:?}");
    assert_eq!(edits[0].file, format!("{NB} In[3]"));
    assert_eq!(edits[0].line, 6);
    assert_eq!(edits[0].old, "clf = svm.SVC(gamma=0.1)");
    assert_eq!(edits[0].new, "clf = svm.SVC(gamma=0.001)");
    // The iteration's commit holds the notebook with only that line of that cell changed.
    let repo = git2::Repository::open(f.dir()).unwrap();
    let original = std::fs::read_to_string(fixture().join(NB)).unwrap();
    let tuned = blob_at(&repo, "refs/mlops/run-1/iter-3", NB);
    assert_eq!(
        tuned,
        original.replace(
            "\"clf = svm.SVC(gamma=0.1)\\n\"",
            "\"clf = svm.SVC(gamma=0.001)\\n\""
        )
    );
    assert_ne!(tuned, original);
    assert_eq!(
        blob_at(&repo, "HEAD", NB),
        original,
        "the branch's notebook changed"
    );
    assert_eq!(std::fs::read_to_string(f.dir().join(NB)).unwrap(), original);
    // Each iteration's executed notebook is kept, readable, with its outputs (the report, the plots).
    for (no, gamma) in [(1, "0.1"), (3, "0.001")] {
        let path = f.data.path().join(format!(
            "runs/1/iter-{no}/plot_digits_classification.executed.ipynb"
        ));
        let nb: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let text = nb.to_string();
        assert!(
            text.contains(&format!(
                "Classification report for classifier SVC(gamma={gamma})"
            )),
            "{text}"
        );
        assert!(
            text.contains("image/png"),
            "the plots are in the executed notebook"
        );
    }
    let shown = mlops_tui::history::format_run(&store, RunId(1)).unwrap();
    assert!(
        shown.contains("executed notebook ")
            && shown.contains("iter-3/plot_digits_classification.executed.ipynb"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{NB} In[3]:6")), "{shown}");
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn each_cells_output_is_read_while_the_notebook_runs() {
    let f = notebook_project(
        &[
            "import time\nprint('epoch 1/3 accuracy=0.5', flush=True)\ntime.sleep(2)",
            "print('epoch 2/3 accuracy=0.7')\ntime.sleep(2)",
            "print('epoch 3/3 accuracy=0.95')",
        ],
        "",
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    let points = f
        .store()
        .metric_points(RunId(1), mlops_tui::core::ids::IterationNo(1))
        .unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    // Read as printed: the points arrived about 2 s apart, not together at the end.
    assert!(points[1].at - points[0].at >= 1500, "{points:?}");
    assert!(points[2].at - points[1].at >= 1500, "{points:?}");
}

#[tokio::test]
async fn a_failing_cell_is_named_with_its_error_line_and_triaged() {
    let f = notebook_project(
        &[
            "x = 1\nprint('hello')",
            "import numpy as np\nrows = open('patients.csv').read()\nprint(x)",
        ],
        "",
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    let run = f.store().run(RunId(1)).unwrap().unwrap();
    let reason = run.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "FileNotFoundError: [Errno 2] No such file or directory: 'patients.csv' (at nb.ipynb, cell In[2]:2)"
        ),
        "{reason}"
    );
    assert!(reason.contains("no tweak can fix this"), "{reason}");
    assert!(out.contains("cell In[2] failed"), "{out}");
    // The executed notebook up to the failure is kept, with the error in its cell.
    let executed =
        std::fs::read_to_string(f.data.path().join("runs/1/iter-1/nb.executed.ipynb")).unwrap();
    assert!(
        executed.contains("\"ename\": \"FileNotFoundError\""),
        "{executed}"
    );
}

#[tokio::test]
async fn a_magic_that_needs_the_network_stops_the_run_with_the_hint() {
    let f = notebook_project(&["%pip install seaborn", "print('accuracy=0.99')"], "");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    let reason = f
        .store()
        .run(RunId(1))
        .unwrap()
        .unwrap()
        .reason
        .unwrap_or_default();
    assert!(
        reason.starts_with(
            "ConnectionError: `%pip install seaborn` needs the network (cell In[1], line 1)"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("training containers have no network"),
        "{reason}"
    );
}

#[test]
fn init_finds_the_notebook_its_image_and_the_knobs_in_its_cells() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let out = std::process::Command::new(common::bin())
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("command: python3 {NB}")),
        "{stdout}"
    );
    let text = std::fs::read_to_string(dir.path().join("mlops.toml")).unwrap();
    assert!(
        text.contains(&format!("command = [\"python3\", \"{NB}\"]")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{NB} In[3]:6 uses sklearn.svm.SVC → image sklearn"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("# {NB} In[3]:6 svm.SVC(gamma=0.1)")),
        "{text}"
    );
    let knob = format!("# gamma = {{ source = \"{NB}\", call = \"svm.SVC\", arg = \"gamma\"");
    assert!(text.contains(&knob), "{text}");
    // Uncommented, the knob resolves against the notebook and its patch edits the cell.
    let uncommented = text.replace(&knob, &knob[2..]);
    let config =
        mlops_tui::core::config::Config::parse(&uncommented, Path::new("mlops.toml")).unwrap();
    let json = std::fs::read_to_string(fixture().join(NB)).unwrap();
    let knobs =
        mlops_tui::core::knobs::Knobs::resolve(&config, [(NB.to_string(), json.clone())].into())
            .unwrap();
    let params = [("gamma".to_string(), serde_json::json!(0.01))].into();
    let patch = knobs.patch(&params).unwrap();
    assert_eq!(
        patch.files[NB],
        json.replace(
            "\"clf = svm.SVC(gamma=0.1)\\n\"",
            "\"clf = svm.SVC(gamma=0.01)\\n\""
        )
    );
}

#[tokio::test]
async fn a_module_the_image_lacks_is_named_by_its_cell_before_any_container() {
    let f = notebook_project(&["x = 1", "import numpy as np\nimport seaborn"], "");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        out.contains("nb.ipynb In[2]:2: imports `seaborn`, which image `sklearn` does not provide"),
        "{out}"
    );
    assert!(f.leftover_containers().await.is_empty());
}
