//! `train.command` templates: a script that takes its parameter as a flag (`--lr {lr}`) gets each
//! iteration's value on its command line. Real engine, real git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

const TRAIN: &str = r#"import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--optimizer", default="sgd")
args = parser.parse_args()
bonus = 0.05 if args.optimizer == "adam" else 0.0
print(f"optimizer={args.optimizer} accuracy={0.5 + args.lr + bonus:.2f}", flush=True)
"#;

const TOML: &str = r#"[train]
command = ["python3", "train.py", "--lr", "{lr}", "--optimizer={opt}"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 3
max_failures = 1

[tweak]
strategy = "grow"

[tweak.space]
lr = { values = [0.1, 0.4] }

[params]
opt = "adam"
"#;

#[tokio::test]
async fn each_iteration_runs_the_command_with_its_values() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 2, "{out}");
    assert!(out.contains("optimizer=adam accuracy=0.65"), "{out}");
    assert!(out.contains("optimizer=adam accuracy=0.95"), "{out}");
    assert!(f.leftover_containers().await.is_empty());
}
