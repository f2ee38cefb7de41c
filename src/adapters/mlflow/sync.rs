//! Bringing one run's MLflow records up to date with the history.
//!
//! The history is the durable source: what the server has acknowledged is kept in
//! `runs/N/mlflow.json` ([`Acks`]), and what is still to send is written to
//! `runs/N/mlflow-queue.jsonl` (one [`Record`] a line) while it waits, so a tracking server that is
//! down loses nothing and a restart sends only what was not acknowledged. The queue holds at most a
//! few records per iteration (metric points go 1000 to a record), and it is rebuilt from the history
//! at every attempt, so it never grows past the run.

use std::path::{Path, PathBuf};

use super::client::{Client, MlflowError};
use super::plan::{self, Acks, IterSnapshot, Record, RunAck, RunContext, Snapshot, Target};
use crate::adapters::store::{Store, StoreError};
use crate::core::config::Config;
use crate::core::ids::RunId;

pub const ACKS_FILE: &str = "mlflow.json";
pub const QUEUE_FILE: &str = "mlflow-queue.jsonl";
/// Larger files are not uploaded (a note says so in the log).
const ARTIFACT_MAX: u64 = 1 << 30;

/// How an attempt ended when the server could not be reached.
#[derive(Debug)]
pub struct Pending {
    /// Records still to send.
    pub queued: usize,
    pub error: MlflowError,
}

/// The run's history, as [`plan::plan`] reads it; `None` when there is no such run.
pub fn snapshot(store: &Store, run: RunId) -> Result<Option<Snapshot>, StoreError> {
    let Some(row) = store.run(run)? else {
        return Ok(None);
    };
    let stays = store.placements(run)?;
    let mut iterations = Vec::new();
    for it in store.iterations(run)? {
        let points = store.metric_points(run, it.no)?;
        let engine = stays
            .iter()
            .rev()
            .find(|(no, _)| *no == it.no)
            .map(|(_, p)| p.engine.clone());
        iterations.push(IterSnapshot {
            row: it,
            points,
            engine,
        });
    }
    Ok(Some(Snapshot {
        run: row,
        iterations,
    }))
}

/// The run's `mlops.toml` as it was trained (`runs/N/workspace/mlops.toml`), when it can be read.
pub fn run_config(run_dir: &Path) -> Option<Config> {
    let path = run_dir.join("workspace").join("mlops.toml");
    let text = std::fs::read_to_string(&path).ok()?;
    Config::parse(&text, &path).ok()
}

/// What the records need besides the history: the metric's name and the strategy come from the
/// run's `mlops.toml` (`metric` when it cannot be read).
pub fn context(project: &str, config: Option<&Config>) -> RunContext {
    RunContext {
        project: project.to_string(),
        metric: config.map_or_else(|| "metric".into(), |c| c.metric.name.clone()),
        strategy: config.map(|c| {
            serde_json::to_value(c.tweak.strategy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", c.tweak.strategy).to_lowercase())
        }),
    }
}

/// The experiment of a project when `[track.mlflow]` names none: the directory's name.
pub fn project_name(project: &str) -> String {
    Path::new(project)
        .file_name()
        .map_or_else(|| project.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The acknowledgements kept for the run, or none when they were for another server or experiment.
pub fn load_acks(run_dir: &Path, uri: &str, experiment: &str) -> Acks {
    let read = std::fs::read(run_dir.join(ACKS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Acks>(&b).ok());
    match read {
        Some(a) if a.uri == uri && a.experiment == experiment => a,
        _ => Acks {
            uri: uri.to_string(),
            experiment: experiment.to_string(),
            ..Acks::default()
        },
    }
}

fn save_acks(run_dir: &Path, acks: &Acks) {
    let Ok(bytes) = serde_json::to_vec_pretty(acks) else {
        return;
    };
    if let Err(e) = crate::support::fsutil::write_atomic(&run_dir.join(ACKS_FILE), &bytes) {
        tracing::warn!("cannot write {}: {e}", run_dir.join(ACKS_FILE).display());
    }
}

fn write_queue(run_dir: &Path, records: &[Record]) {
    let path = run_dir.join(QUEUE_FILE);
    if records.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let mut text = String::new();
    for r in records {
        if let Ok(line) = serde_json::to_string(r) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    if let Err(e) = crate::support::fsutil::write_atomic(&path, text.as_bytes()) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

/// Runs whose directory holds a queue not yet sent (left by a process that ended while the server
/// was down).
pub fn queued_runs(runs_dir: &Path) -> Vec<RunId> {
    let Ok(dir) = std::fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    let mut out: Vec<RunId> = dir
        .flatten()
        .filter(|e| e.path().join(QUEUE_FILE).is_file())
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok().map(RunId))
        .collect();
    out.sort();
    out
}

/// Sends what the server has not acknowledged of `snap`; answers how many records went. A server
/// that refuses a record (a parameter that changed value, artifacts not served) is reported in the
/// log and the record skipped; one that cannot be reached ends the attempt with [`Pending`].
pub async fn sync_run(
    client: &Client,
    experiment: &str,
    ctx: &RunContext,
    run_dir: &Path,
    snap: &Snapshot,
) -> Result<usize, Pending> {
    let mut acks = load_acks(run_dir, client.uri(), experiment);
    let records = plan::plan(ctx, snap, &acks);
    if records.is_empty() {
        write_queue(run_dir, &[]);
        return Ok(0);
    }
    write_queue(run_dir, &records);
    let pending = |done: usize, error: MlflowError| Pending {
        queued: records.len() - done,
        error,
    };
    let exp = match &acks.experiment_id {
        Some(id) => id.clone(),
        None => match client.experiment_id(experiment).await {
            Ok(id) => {
                acks.experiment_id = Some(id.clone());
                id
            }
            Err(e) if e.is_unreachable() => return Err(pending(0, e)),
            Err(e) => {
                tracing::warn!("{e}");
                return Err(pending(0, e));
            }
        },
    };
    for (i, rec) in records.iter().enumerate() {
        match send(client, &exp, &acks, rec).await {
            Ok(made) => acks.acknowledge(rec, made),
            Err(e) if e.is_unreachable() => {
                save_acks(run_dir, &acks);
                write_queue(run_dir, &records[i..]);
                return Err(pending(i, e));
            }
            Err(e) => {
                tracing::warn!("{e}; skipping it");
                acks.acknowledge(rec, None);
            }
        }
        save_acks(run_dir, &acks);
    }
    write_queue(run_dir, &[]);
    Ok(records.len())
}

/// Sends one record; a `CreateRun` answers the run it found or made.
async fn send(
    client: &Client,
    exp: &str,
    acks: &Acks,
    rec: &Record,
) -> Result<Option<RunAck>, MlflowError> {
    let run_of = |target: Target| {
        acks.run_of(target).ok_or_else(|| MlflowError::Refused {
            uri: client.uri().to_string(),
            what: format!("{rec:?}"),
            detail: "its run was not created".into(),
        })
    };
    match rec {
        Record::CreateRun {
            target,
            key,
            name,
            start_time,
            tags,
        } => {
            if let Some(found) = client.find_run(exp, key).await? {
                return Ok(Some(found));
            }
            let mut tags = tags.clone();
            tags.push(("mlops.key".into(), key.clone()));
            if let Target::Iteration(_) = target {
                let parent = run_of(Target::Parent)?;
                tags.push(("mlflow.parentRunId".into(), parent.run_id.clone()));
            }
            client
                .create_run(exp, name, *start_time, &tags)
                .await
                .map(Some)
        }
        Record::LogParams { no, params } => {
            let run = run_of(Target::Iteration(*no))?;
            client.log_batch(&run.run_id, &[], params, &[]).await?;
            Ok(None)
        }
        Record::LogMetrics { no, metrics, .. } => {
            let run = run_of(Target::Iteration(*no))?;
            client.log_batch(&run.run_id, metrics, &[], &[]).await?;
            Ok(None)
        }
        Record::SetTags { target, tags } => {
            let run = run_of(*target)?;
            client.log_batch(&run.run_id, &[], &[], tags).await?;
            Ok(None)
        }
        Record::Artifact {
            no,
            name,
            file,
            text,
        } => {
            let run = run_of(Target::Iteration(*no))?;
            for (artifact, bytes) in artifact_files(name, file.as_deref(), text.as_deref()) {
                client.upload(&run.artifact_uri, &artifact, bytes).await?;
            }
            Ok(None)
        }
        Record::EndRun {
            target,
            status,
            end_time,
        } => {
            let run = run_of(*target)?;
            client.end_run(&run.run_id, status, *end_time).await?;
            Ok(None)
        }
    }
}

/// What an artifact record uploads: its text, its file, or each file under its directory.
fn artifact_files(name: &str, file: Option<&str>, text: Option<&str>) -> Vec<(String, Vec<u8>)> {
    if let Some(t) = text {
        return vec![(name.to_string(), t.as_bytes().to_vec())];
    }
    let Some(path) = file.map(PathBuf::from) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    collect(&path, name, &mut files);
    files
        .into_iter()
        .filter_map(|(artifact, p)| match std::fs::metadata(&p) {
            Ok(m) if m.len() > ARTIFACT_MAX => {
                tracing::warn!("{} is too large to upload to MLflow", p.display());
                None
            }
            _ => std::fs::read(&p).ok().map(|b| (artifact, b)),
        })
        .collect()
}

/// Regular files at or under `path` (links are not followed), named under `name`.
fn collect(path: &Path, name: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        out.push((name.to_string(), path.to_path_buf()));
    } else if meta.is_dir() {
        let Ok(dir) = std::fs::read_dir(path) else {
            return;
        };
        let mut entries: Vec<_> = dir.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = format!("{name}/{}", e.file_name().to_string_lossy());
            collect(&e.path(), &child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_for_another_server_start_afresh_and_queued_runs_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("4");
        std::fs::create_dir_all(&run).unwrap();
        let mut acks = load_acks(&run, "http://a", "e");
        acks.experiment_id = Some("1".into());
        save_acks(&run, &acks);
        assert_eq!(
            load_acks(&run, "http://a", "e").experiment_id.as_deref(),
            Some("1")
        );
        assert_eq!(load_acks(&run, "http://b", "e").experiment_id, None);
        assert_eq!(load_acks(&run, "http://a", "f").experiment_id, None);
        let rec = Record::EndRun {
            target: Target::Parent,
            status: "FINISHED".into(),
            end_time: 1,
        };
        write_queue(&run, &[rec]);
        assert_eq!(queued_runs(dir.path()), vec![RunId(4)]);
        write_queue(&run, &[]);
        assert!(queued_runs(dir.path()).is_empty());
    }

    #[test]
    fn a_model_directory_uploads_each_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("model/sub")).unwrap();
        std::fs::write(dir.path().join("model/a.pkl"), b"a").unwrap();
        std::fs::write(dir.path().join("model/sub/b.pt"), b"bb").unwrap();
        let files = artifact_files("model", dir.path().join("model").to_str(), None);
        let names: Vec<_> = files.iter().map(|(n, b)| (n.as_str(), b.len())).collect();
        assert_eq!(names, [("model/a.pkl", 1), ("model/sub/b.pt", 2)]);
        assert_eq!(
            artifact_files("x.diff", None, Some("d")),
            [("x.diff".into(), b"d".to_vec())]
        );
    }
}
