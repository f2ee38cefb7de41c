//! State a script keeps between runs, as a Jenkins workspace kept it between builds: the seeds'
//! KNN notebook export loads the model its previous run pickled (`pickle.load(open("mymodel.h5",
//! "rb"))`), refits it, and only then scores and writes `accuracy.txt`; on a clean copy it only
//! trains and saves. The project also holds an old `mymodel.h5` that cannot be unpickled. With
//! `mlops.toml` as `init` writes it (`[train] keep`, `metric.file`), the second iteration finds the
//! first one's model and reaches the target; the script and the user's branch never change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Fixture, commit_all, copy_dir};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{IterStatus, RunStatus};

const SCRIPT: &str = "knn_model.py";

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/byos/knn-seeds")
}

/// The seeds' project with only `mlops.toml` added: `init`'s file, with the knob it found
/// uncommented and the target and approvals set, as a user does. Answers the fixture and what
/// `init` printed.
fn project_from_init(keep_from: &str) -> (Fixture, String) {
    let f = Fixture::with_files(&[]);
    copy_dir(&fixture(), f.dir());
    let out = Command::new(common::bin())
        .arg("init")
        .arg(f.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(f.dir().join("mlops.toml")).unwrap();
    let edited: String = text
        .lines()
        .map(|l| match l {
            l if l.starts_with("# n_neighbors = { source = ") => l[2..].to_string(),
            "target = 0.95" => "target = 0.8".into(),
            "apply = \"ask\"" => "apply = \"auto\"".into(),
            l if l.starts_with("keep_from = ") => format!("keep_from = \"{keep_from}\""),
            l => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(f.dir().join("mlops.toml"), edited).unwrap();
    commit_all(f.dir(), "the seeds' KNN, with mlops.toml");
    (f, format!("{stdout}\n{text}"))
}

#[test]
fn init_proposes_keep_and_metric_file_with_the_lines() {
    let (_f, shown) = project_from_init("previous");
    for want in [
        "keep = [\"mymodel.h5\"]",
        "keep_from = \"previous\"",
        &format!(
            "# {SCRIPT}:29 open(\"mymodel.h5\", \"rb\") reads mymodel.h5; {SCRIPT}:37 open(\"mymodel.h5\", \"wb\") writes it"
        ),
        &format!("file = \"accuracy.txt\"   # {SCRIPT}:32 open(\"accuracy.txt\", \"w+\")"),
        &format!(
            "metric.file = \"accuracy.txt\": {SCRIPT}:32 open(\"accuracy.txt\", \"w+\") writes the result there"
        ),
        "command = [\"python3\", \"knn_model.py\"]",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }
}

#[tokio::test]
async fn the_seeds_knn_reaches_its_target_with_the_first_iterations_model_kept() {
    let (f, _) = project_from_init("previous");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{out}");
    let store = f.store();
    let iterations = store.iterations(RunId(1)).unwrap();
    assert_eq!(iterations.len(), 2, "{out}");
    // The first iteration only trained and saved (the old pickle did not load): it says what it
    // wrote and that it is kept, instead of "(no output)".
    assert_eq!(iterations[0].status, IterStatus::Failed);
    let reason = iterations[0].reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("the script ended without writing metric.file /workspace/accuracy.txt"),
        "{reason}"
    );
    assert!(
        reason.contains("it wrote mymodel.h5 (")
            && reason.contains("(mymodel.h5 kept for the next iteration by [train] keep)"),
        "{reason}"
    );
    // The second starts with the first one's model, loads it, refits and scores.
    assert!(
        out.contains("[keep:2] carried mymodel.h5 (")
            && out.contains("from the previous iteration, 1 ([train] keep)"),
        "{out}"
    );
    assert!(out.contains("model loaded"), "{out}");
    let value = iterations[1].final_value.unwrap();
    assert!(value >= 0.8, "{value}");
    assert!(
        out.contains("read from accuracy.txt (metric.file)"),
        "{out}"
    );
    // Each iteration has its own copy; the first one's model is the one its script pickled, not the
    // old file of the commit, which stays as it was.
    let runs = f.data.path().join("runs/1");
    let old = std::fs::read(fixture().join("mymodel.h5")).unwrap();
    let first = std::fs::read(runs.join("iter-1/workspace/mymodel.h5")).unwrap();
    assert_ne!(first, old);
    assert!(first.starts_with(&[0x80]), "a pickle");
    assert!(!runs.join("iter-1/workspace/accuracy.txt").exists());
    assert!(runs.join("iter-2/workspace/accuracy.txt").is_file());
    let repo = git2::Repository::open(f.dir()).unwrap();
    let head = repo.head().unwrap().peel_to_tree().unwrap();
    let blob = repo
        .find_blob(head.get_path(Path::new("mymodel.h5")).unwrap().id())
        .unwrap();
    assert_eq!(blob.content(), old.as_slice());
    assert_eq!(std::fs::read(f.dir().join("mymodel.h5")).unwrap(), old);
    assert_eq!(
        std::fs::read_to_string(f.dir().join(SCRIPT)).unwrap(),
        std::fs::read_to_string(fixture().join(SCRIPT)).unwrap()
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn without_keep_the_silent_first_run_names_what_it_wrote_and_the_fix() {
    let f = Fixture::with_files(&[(
        "mlops.toml",
        &format!(
            "[train]\ncommand = [\"python3\", \"{SCRIPT}\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.6\n\
             [budget]\nmax_iterations = 2\nmax_failures = 0\n[tweak]\napply = \"auto\"\n[tweak.space]\n\
             k = {{ source = \"{SCRIPT}\", call = \"KNeighborsClassifier\", arg = \"n_neighbors\", values = [1, 3] }}\n"
        ),
    )]);
    copy_dir(&fixture(), f.dir());
    commit_all(f.dir(), "the seeds' KNN");
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    let iterations = f.store().iterations(RunId(1)).unwrap();
    let reason = iterations[0].reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(
            "exited 0 without printing anything or reporting `accuracy`; it wrote mymodel.h5 ("
        ),
        "{reason}"
    );
    assert!(
        reason.ends_with(
            "in its workspace. A script that loads what it saved and only scores on its next run \
             needs that file carried over: [train] keep = [\"mymodel.h5\"]"
        ),
        "{reason}"
    );
    assert!(!reason.contains("(no output)"), "{reason}");
    assert!(f.leftover_containers().await.is_empty());
}

/// Continues from what an earlier iteration left: the list of `k`s that led to its state.
const WARM: &str = r#"import json, os
k = 1
state = json.load(open("state.json")) if os.path.exists("state.json") else {"ks": []}
state["ks"].append(k)
json.dump(state, open("state.json", "w"))
print(f"accuracy={ {1: 0.5, 2: 0.8, 3: 0.6, 4: 0.7}[k] + 0.01 * (len(state['ks']) - 1):.4f}")
"#;

#[tokio::test]
async fn keep_from_best_continues_from_the_best_iteration_not_the_last_one() {
    let toml = "[train]\ncommand = [\"python3\", \"warm.py\"]\nimage = \"numpy\"\nkeep = [\"state.json\"]\n\
                keep_from = \"best\"\n[metric]\nname = \"accuracy\"\ntarget = 0.99\n[budget]\nmax_iterations = 4\n\
                [tweak]\nstrategy = \"grow\"\napply = \"auto\"\n[tweak.space]\n\
                k = { source = \"warm.py\", assign = \"k\", values = [1, 2, 3, 4] }\n";
    let f = Fixture::with_files(&[("mlops.toml", toml), ("warm.py", WARM)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{out}");
    let ks = |no: u32| -> serde_json::Value {
        let path = f
            .data
            .path()
            .join(format!("runs/1/iter-{no}/workspace/state.json"));
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(path).unwrap()).unwrap()
            ["ks"]
            .clone()
    };
    // 1: 0.50; 2 (after 1): 0.81, the best; 3 (after 2): 0.62; 4 continues from 2, not from 3.
    assert_eq!(ks(1), serde_json::json!([1]));
    assert_eq!(ks(2), serde_json::json!([1, 2]));
    assert_eq!(ks(3), serde_json::json!([1, 2, 3]));
    assert_eq!(ks(4), serde_json::json!([1, 2, 4]), "{out}");
    assert!(
        out.contains("[keep:4] carried state.json (")
            && out.contains("from the best iteration, 2 (accuracy 0.8100) ([train] keep)"),
        "{out}"
    );
    assert!(
        out.contains(
            "[keep:2] carried state.json (11 B) from the best iteration, 1 (accuracy 0.5000)"
        ),
        "{out}"
    );
}
