//! Each sample project, committed to a fresh git repository, reaches its target through at least one
//! tweak on the real Docker engine, with its image chosen by detection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{IterStatus, RunStatus};

async fn reaches_target_after_a_tweak(name: &str, detected: &str) {
    let f = Fixture::sample(name);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains(detected),
        "detection line `{detected}` missing:\n{out}"
    );
    assert!(
        out.contains("[tweak:1→2]"),
        "the loop must tweak at least once:\n{out}"
    );
    assert!(
        outcome.reason.starts_with("target reached at iteration"),
        "{}",
        outcome.reason
    );

    let store = f.store();
    let run = store.run(RunId(1)).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let its = store.iterations(RunId(1)).unwrap();
    assert!(its.len() >= 2);
    assert_eq!(its[0].status, IterStatus::BelowTarget);
    assert_eq!(its.last().unwrap().status, IterStatus::Succeeded);
    assert!(
        its[1]
            .proposal_reason
            .as_deref()
            .unwrap()
            .contains("< target")
    );
    let best = run.best_iteration.expect("best iteration recorded");
    let best_row = its.iter().find(|i| i.no == best).unwrap();
    // The best model and its parameters are where the final line says.
    let model_dir = std::path::Path::new(best_row.workdir.as_deref().unwrap()).join("model");
    assert!(
        outcome.reason.contains(&model_dir.display().to_string()),
        "{}",
        outcome.reason
    );
    assert!(
        std::fs::read_dir(&model_dir).unwrap().next().is_some(),
        "model saved in {}",
        model_dir.display()
    );
    let best_json = f.data.path().join("runs/1/best.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(best_json).unwrap()).unwrap();
    assert_eq!(doc["iteration"], serde_json::json!(best.0));
    // Per-epoch points were recorded for every iteration.
    for it in &its {
        assert!(
            !store.metric_points(RunId(1), it.no).unwrap().is_empty(),
            "points of iteration {}",
            it.no
        );
    }
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn numpy_mlp_reaches_its_target() {
    reaches_target_after_a_tweak("digits-mlp-numpy", "[detect] ann (numpy)").await;
}

#[tokio::test]
async fn sklearn_knn_reaches_its_target() {
    reaches_target_after_a_tweak("digits-knn-sklearn", "[detect] classic (sklearn)").await;
}

#[tokio::test]
async fn torch_cnn_reaches_its_target() {
    reaches_target_after_a_tweak("digits-cnn-torch", "[detect] cnn (torch)").await;
}
