//! `export` does not trust `refs/mlops/run-N/iter-K` blindly: a ref overwritten to another commit
//! is reported and the commit the history recorded is used; a ref to an object that is not in the
//! repository is refused with the ref and the way out named. Real git repositories and the real
//! binary; no Docker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{bin, commit_all};
use mlops_tui::adapters::store::{IterationRow, NewRun, Store};
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::IterStatus;

/// A history with run 1 whose best iteration 1 trained `trained`.
fn history(data: &Path, project: &Path, trained: &str) {
    let store = Store::open(&data.join("history.sqlite3")).unwrap();
    let project = project.display().to_string();
    let run = store
        .create_run(&NewRun {
            project: &project,
            commit_id: trained,
            commit_summary: "train",
            branch: "main",
            trigger: "start",
        })
        .unwrap();
    assert_eq!(run, RunId(1));
    let mut it = IterationRow::new(run, IterationNo(1), BTreeMap::new());
    it.status = IterStatus::Succeeded;
    it.final_value = Some(0.9);
    it.commit_id = Some(trained.to_string());
    store.upsert_iteration(&it).unwrap();
    store.set_best(run, IterationNo(1)).unwrap();
}

fn export(data: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(["export", "1"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_overwritten_ref_is_reported_and_the_trained_commit_is_exported() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(repo_dir.path()).unwrap();
    std::fs::write(repo_dir.path().join("train.py"), "g = 1\n").unwrap();
    let trained = commit_all(repo_dir.path(), "trained").to_string();
    std::fs::write(repo_dir.path().join("train.py"), "g = 2\n").unwrap();
    let other = commit_all(repo_dir.path(), "something else").to_string();
    history(data.path(), repo_dir.path(), &trained);
    // Another history, numbered from 1 again, wrote its own iteration 1 over the ref.
    repo.reference(
        "refs/mlops/run-1/iter-1",
        git2::Oid::from_str(&other).unwrap(),
        true,
        "overwritten",
    )
    .unwrap();

    let (code, stdout, stderr) = export(data.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "note: refs/mlops/run-1/iter-1 points at {}, not at {} that the history says run 1 \
             iteration 1 trained",
            &other[..8],
            &trained[..8]
        )) && stdout.contains(&format!("git update-ref refs/mlops/run-1/iter-1 {trained}")),
        "{stdout}"
    );
    let branch = repo
        .find_branch("mlops/run-1-best", git2::BranchType::Local)
        .unwrap();
    assert_eq!(branch.get().target().unwrap().to_string(), trained);
}

#[test]
fn a_ref_to_a_missing_object_names_the_ref_and_the_fix() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(repo_dir.path()).unwrap();
    std::fs::write(repo_dir.path().join("train.py"), "g = 1\n").unwrap();
    commit_all(repo_dir.path(), "first");
    // The iteration's commit was pruned: the ref (and the history) name an object that is gone.
    let gone = "0123456789abcdef0123456789abcdef01234567";
    history(data.path(), repo_dir.path(), gone);
    let refs = repo_dir.path().join(".git/refs/mlops/run-1");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("iter-1"), format!("{gone}\n")).unwrap();

    let (code, stdout, stderr) = export(data.path());
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "refs/mlops/run-1/iter-1 points at {gone}, which is not in the repository"
        )) && stderr.contains("git update-ref -d refs/mlops/run-1/iter-1")
            && stderr.contains(&format!("git fetch <that clone> {gone}")),
        "{stderr}"
    );
    assert!(
        repo.find_branch("mlops/run-1-best", git2::BranchType::Local)
            .is_err()
    );
}
