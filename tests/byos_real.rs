//! Bring your own script: three training scripts written the way such code is found in the wild (a
//! notebook export of scikit-learn's digits example printing a classification report, a KNN that reads
//! a CSV with pandas and pickles its model next to itself, a Keras CNN in the style of the Jenkins
//! write-ups with a `for i in range(parameter): model.add(...)` loop), none of which reads
//! `params.json`. Each reaches its target on the real engine through source-knob tweaks; only
//! `mlops.toml` is added to the project, and the script on the user's branch never changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Fixture, commit_all, copy_dir};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

/// `tests/fixtures/byos/<name>` plus `mlops.toml`, committed to a fresh repository.
fn project(name: &str, toml: &str) -> Fixture {
    let f = Fixture::with_files(&[("mlops.toml", toml)]);
    copy_dir(&fixture(name), f.dir());
    commit_all(f.dir(), "the user's project, as it was");
    f
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/byos")
        .join(name)
}

/// The file as the commit behind `reference` holds it.
fn blob_at(repo: &git2::Repository, reference: &str, path: &str) -> String {
    let commit = repo
        .revparse_single(reference)
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let entry = commit.tree().unwrap().get_path(Path::new(path)).unwrap();
    let blob = repo.find_blob(entry.id()).unwrap();
    String::from_utf8(blob.content().to_vec()).unwrap()
}

/// The user's script is byte for byte what they wrote, on their branch and in their working tree.
fn assert_script_untouched(f: &Fixture, name: &str, script: &str) {
    let original = std::fs::read_to_string(fixture(name).join(script)).unwrap();
    let repo = git2::Repository::open(f.dir()).unwrap();
    assert_eq!(
        blob_at(&repo, "HEAD", script),
        original,
        "the branch's script changed"
    );
    assert_eq!(
        std::fs::read_to_string(f.dir().join(script)).unwrap(),
        original,
        "the working tree's script changed"
    );
    let statuses = repo.statuses(None).unwrap();
    assert!(statuses.is_empty(), "the working tree is dirty");
}

#[tokio::test]
async fn a_notebook_export_printing_a_classification_report_is_tuned_in_its_source() {
    let script = "plot_digits_classification.py";
    let f = project(
        "svc-notebook",
        &format!(
            r#"[train]
command = ["python3", "{script}"]

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 4

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
gamma = {{ source = "{script}", call = "svm.SVC", arg = "gamma", values = [0.1, 0.01, 0.001] }}
"#
        ),
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    let store = f.store();
    let iterations = store.iterations(RunId(1)).unwrap();
    let values: Vec<_> = iterations.iter().map(|i| i.final_value).collect();
    assert_eq!(
        iterations.len(),
        3,
        "0.1 and 0.01 miss, 0.001 reaches: {values:?}\n{out}"
    );
    assert!(
        values[0].unwrap() < 0.5 && values[2].unwrap() >= 0.95,
        "{values:?}"
    );
    // The notebook saves a figure, not a model: the end says so rather than naming an empty directory.
    assert!(out.contains("(best model: none saved)"), "{out}");

    // The tweak is a commit under refs/mlops, the diff is kept, the branch is untouched.
    let repo = git2::Repository::open(f.dir()).unwrap();
    let tuned = blob_at(&repo, "refs/mlops/run-1/iter-3", script);
    assert!(tuned.contains("clf = svm.SVC(gamma=0.001)"), "{tuned}");
    let edits = &iterations[2].edits;
    assert_eq!(edits.len(), 1, "{edits:?}");
    assert_eq!(edits[0].file, script);
    assert_eq!(edits[0].old.trim(), "clf = svm.SVC(gamma=0.1)");
    assert_eq!(edits[0].new.trim(), "clf = svm.SVC(gamma=0.001)");
    let original = std::fs::read_to_string(fixture("svc-notebook").join(script)).unwrap();
    let line = original
        .lines()
        .position(|l| l.contains("svm.SVC("))
        .unwrap()
        + 1;
    assert_eq!(edits[0].line, line);
    assert_script_untouched(&f, "svc-notebook", script);
    // The figure the notebook saves next to itself was written in the iteration's workspace.
    assert!(
        f.data
            .path()
            .join("runs/1/iter-3/workspace/confusion_matrix.png")
            .is_file()
    );
    let shown = mlops_tui::history::format_run(&store, RunId(1)).unwrap();
    assert!(shown.contains("− clf = svm.SVC(gamma=0.1)"), "{shown}");
    assert!(shown.contains("+ clf = svm.SVC(gamma=0.001)"), "{shown}");
    let made = mlops_tui::history::export_run(&store, RunId(1), None).unwrap();
    assert_eq!(
        blob_at(&repo, &format!("refs/heads/{}", made.branch), script),
        tuned
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn a_pandas_knn_that_pickles_next_to_itself_is_tuned_and_its_model_kept() {
    let f = project(
        "knn-pandas",
        r#"[train]
command = ["python3", "knn.py"]

[metric]
name = "accuracy"
target = 0.85
file = "accuracy.txt"

[budget]
max_iterations = 4

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
n_neighbors = { source = "knn.py", call = "KNeighborsClassifier", arg = "n_neighbors", values = [1, 3, 5, 9] }
"#,
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(out.contains("read from accuracy.txt"), "{out}");
    let iterations = f.store().iterations(RunId(1)).unwrap();
    assert_eq!(iterations.len(), 2, "{out}");
    assert!(iterations[0].final_value.unwrap() < 0.85);
    assert_eq!(
        iterations[1].edits[0].new.trim(),
        "classifier = KNeighborsClassifier(n_neighbors = 3, metric = 'minkowski', p = 2)"
    );
    let model = f.data.path().join("runs/1/iter-2/workspace/knn_model.pkl");
    assert!(model.is_file());
    assert_eq!(
        iterations[1].model.as_deref(),
        Some(model.to_string_lossy().as_ref())
    );
    assert!(out.contains("knn_model.pkl"), "{out}");
    assert_script_untouched(&f, "knn-pandas", "knn.py");
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn a_seeds_style_keras_cnn_grows_its_layers_in_the_source() {
    let script = "model_code3.py";
    let f = project(
        "keras-seeds",
        &format!(
            r#"[train]
command = ["python3", "{script}"]

[metric]
name = "accuracy"
target = 80
file = "accuracy.txt"

[budget]
max_iterations = 4

[resources]
memory = "3g"
cpus = 2.0

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
parameter = {{ source = "{script}", assign = "parameter", start = 1, max = 3, step = 1 }}
epochs = {{ source = "{script}", call = "model.fit", arg = "epochs", values = [1, 8, 20] }}
"#
        ),
    );
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(out.contains("keras"), "the keras image is chosen: {out}");
    let iterations = f.store().iterations(RunId(1)).unwrap();
    assert!(iterations.len() >= 2, "one epoch is not enough: {out}");
    let last = iterations.last().unwrap();
    assert!(last.final_value.unwrap() >= 80.0);
    let no = last.no;
    let repo = git2::Repository::open(f.dir()).unwrap();
    let tuned = blob_at(&repo, &format!("refs/mlops/run-1/iter-{no}"), script);
    assert!(
        tuned.contains("parameter = 2") || tuned.contains("parameter = 3"),
        "{tuned}"
    );
    assert!(!tuned.contains("epochs=1,"), "{tuned}");
    assert!(
        last.model
            .as_deref()
            .is_some_and(|m| m.ends_with("mymodel.h5")),
        "{:?}",
        last.model
    );
    assert_script_untouched(&f, "keras-seeds", script);
    assert!(f.leftover_containers().await.is_empty());
}
