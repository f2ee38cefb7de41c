//! `mlops-tui export-mlflow RUN [--uri URL] [--experiment NAME]`: a run of the history sent to an
//! MLflow tracking server after the fact (a run made with no `[track.mlflow]`, or while the server
//! was away). What the server already acknowledged (`runs/N/mlflow.json`) is not sent again, and
//! runs are found by their `mlops.key` tag before one is created, so a second export duplicates
//! nothing.

use crate::adapters::mlflow::{Client, sync};
use crate::adapters::store::Store;
use crate::core::config::track;
use crate::core::ids::RunId;
use crate::support::paths::Paths;

use super::CliError;

pub async fn export_mlflow(
    paths: &Paths,
    run: i64,
    uri: Option<String>,
    experiment: Option<String>,
) -> Result<i32, CliError> {
    let run = RunId(run);
    let dir = paths.runs().join(run.to_string());
    let db = paths.db();
    let snap = tokio::task::spawn_blocking(move || {
        let store = Store::open(&db)?;
        sync::snapshot(&store, run)
    })
    .await
    .map_err(|e| CliError::Message(format!("reading the history: {e}")))??;
    let Some(snap) = snap else {
        return Err(CliError::Message(format!("no run {run} in the history")));
    };
    let config = sync::run_config(&dir);
    let configured = config.as_ref().and_then(|c| c.track.mlflow.clone());
    let uri = match uri.or_else(|| configured.as_ref().map(|m| m.uri.clone())) {
        Some(u) => track::check_uri(&u).map_err(CliError::Message)?,
        None => {
            return Err(CliError::Message(format!(
                "run {run} names no MLflow server ([track.mlflow] uri): give --uri URL"
            )));
        }
    };
    let experiment = experiment
        .or_else(|| configured.and_then(|m| m.experiment))
        .unwrap_or_else(|| sync::project_name(&snap.run.project));
    let ctx = sync::context(&snap.run.project, config.as_ref());
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Message(format!("{}: {e}", dir.display())))?;
    let client = Client::new(&uri);
    match sync::sync_run(&client, &experiment, &ctx, &dir, &snap).await {
        Ok(sent) => {
            let acks = sync::load_acks(&dir, &uri, &experiment);
            let id = acks.parent.map(|p| p.run_id).unwrap_or_default();
            let iterations = acks.iterations.len();
            println!(
                "run {run} is MLflow run {id} in experiment \"{experiment}\" at {uri}, with {iterations} nested iteration runs ({sent} records sent)"
            );
            Ok(0)
        }
        Err(p) => Err(CliError::Message(format!(
            "{}; {} records not sent (run export-mlflow again)",
            p.error, p.queued
        ))),
    }
}
