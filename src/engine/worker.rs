//! The training worker: one per iteration (job 3). Starts the container, streams and parses its output,
//! enforces the deadlines, and reports the exit. It never decides what an exit means: the reducer does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backend::{ContainerBackend, ExitStatus, LogLine, TrainSpec, labels};
use crate::fsutil;
use crate::metrics::MetricParser;
use crate::repo::Project;

use super::msg::{IterationPlan, Msg};

/// Log lines are sent to the reducer at most this often (or when a batch fills up).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(100);
const BATCH_MAX: usize = 2000;
/// Time a container gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Time to drain the log stream after the container stopped.
const DRAIN: Duration = Duration::from_secs(5);

pub async fn run_iteration<B: ContainerBackend>(
    backend: Arc<B>,
    plan: IterationPlan,
    run_dir: PathBuf,
    project: Project,
    tx: mpsc::UnboundedSender<Msg>,
    stop_rx: oneshot::Receiver<String>,
) {
    let (run, no) = (plan.run, plan.no);
    let exited = |status: Option<ExitStatus>, cause: Option<String>| Msg::Exited {
        run,
        no,
        status,
        cause,
    };
    let workdir = run_dir.join(format!("iter-{no}"));
    if let Err(e) = prepare_workdir(&workdir, &plan) {
        let _ = tx.send(exited(
            None,
            Some(format!("cannot prepare {}: {e}", workdir.display())),
        ));
        return;
    }
    let spec = spec(&plan, &workdir, &project);
    let id = match backend.start(spec).await {
        Ok(id) => id,
        Err(e) => {
            let _ = tx.send(exited(
                None,
                Some(format!("could not start the container: {e}")),
            ));
            return;
        }
    };
    let _ = tx.send(Msg::ContainerStarted {
        run,
        no,
        id: id.clone(),
        workdir: workdir.clone(),
    });

    let metric = &plan.config.metric;
    let mut parser = MetricParser::new(&metric.name, metric.pattern.as_deref())
        .or_else(|_| MetricParser::new(&metric.name, None))
        .expect("a parser without a pattern always builds");
    let budget = &plan.config.budget;
    let mut logs = backend.logs(&id);
    let mut wait = backend.wait(&id);
    let deadline = tokio::time::sleep(budget.iteration_timeout.0);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    let mut stop_rx = stop_rx;
    let mut stop_open = true;
    let mut batch: Vec<LogLine> = Vec::new();
    let mut last_metric = Instant::now();
    let mut logs_done = false;
    let mut exit: Option<Result<ExitStatus, String>> = None;
    let mut drain_until: Option<Instant> = None;
    let mut cause: Option<String> = None;

    loop {
        if exit.is_some() && (logs_done || drain_until.is_some_and(|d| Instant::now() >= d)) {
            break;
        }
        tokio::select! {
            line = logs.next(), if !logs_done => match line {
                Some(Ok(line)) => {
                    if let Some(obs) = parser.feed(&line.text) {
                        batch.push(line);
                        flush(&tx, run, no, &mut batch);
                        last_metric = Instant::now();
                        let _ = tx.send(Msg::Metric { run, no, obs });
                    } else {
                        batch.push(line);
                        if batch.len() >= BATCH_MAX {
                            flush(&tx, run, no, &mut batch);
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("iteration {run}/{no}: {e}");
                    logs_done = true;
                }
                None => logs_done = true,
            },
            status = &mut wait, if exit.is_none() => {
                exit = Some(status.map_err(|e| e.to_string()));
                drain_until = Some(Instant::now() + DRAIN);
            }
            _ = tick.tick() => {
                flush(&tx, run, no, &mut batch);
                if exit.is_none() && cause.is_none() && last_metric.elapsed() >= budget.metric_timeout.0 {
                    let c = format!("no `{}` reported for {} (budget.metric_timeout): stopped", metric.name, budget.metric_timeout);
                    stop(&*backend, &id, &c).await;
                    cause = Some(c);
                }
            }
            _ = &mut deadline, if exit.is_none() && cause.is_none() => {
                let c = format!("ran past {} (budget.iteration_timeout): stopped", budget.iteration_timeout);
                stop(&*backend, &id, &c).await;
                cause = Some(c);
            }
            reason = &mut stop_rx, if stop_open && exit.is_none() => {
                stop_open = false;
                if let Ok(reason) = reason {
                    stop(&*backend, &id, &reason).await;
                    cause.get_or_insert(reason);
                }
            }
        }
    }
    flush(&tx, run, no, &mut batch);
    drop(wait);
    let status = match exit {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            cause.get_or_insert(format!("lost the container: {e}"));
            None
        }
        None => None,
    };
    // Removed before the exit is reported, so that a run that ends on this report leaves nothing behind.
    if let Err(e) = backend.remove(&id).await {
        tracing::warn!("removing container {id}: {e}");
    }
    let _ = tx.send(exited(status, cause));
}

async fn stop<B: ContainerBackend + ?Sized>(backend: &B, id: &crate::ids::ContainerId, why: &str) {
    tracing::info!("stopping {id}: {why}");
    if let Err(e) = backend.stop(id, STOP_GRACE).await {
        tracing::warn!("stopping {id}: {e}");
    }
}

fn flush(
    tx: &mpsc::UnboundedSender<Msg>,
    run: crate::ids::RunId,
    no: crate::ids::IterationNo,
    batch: &mut Vec<LogLine>,
) {
    if !batch.is_empty() {
        let lines = std::mem::take(batch);
        let _ = tx.send(Msg::Logs { run, no, lines });
    }
}

/// `/mlops` on the host: `params.json`, `checkpoints/`, `model/`, writable by the container's user.
fn prepare_workdir(workdir: &std::path::Path, plan: &IterationPlan) -> std::io::Result<()> {
    fsutil::make_shared_dir(workdir)?;
    fsutil::make_shared_dir(&workdir.join("checkpoints"))?;
    fsutil::make_shared_dir(&workdir.join("model"))?;
    let params = serde_json::to_vec_pretty(&plan.params).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&workdir.join("params.json"), &params)
}

fn spec(plan: &IterationPlan, workdir: &std::path::Path, project: &Project) -> TrainSpec {
    let cfg = &plan.config;
    let params = serde_json::to_string(&plan.params).unwrap_or_else(|_| "{}".into());
    let threads = (cfg.resources.cpus.ceil() as i64).max(1).to_string();
    let slug: String = project
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 0x10000)
        .unwrap_or(0);
    let labels = BTreeMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (
            labels::PROJECT.to_string(),
            project.dir.display().to_string(),
        ),
        (labels::RUN.to_string(), plan.run.to_string()),
        (labels::ITERATION.to_string(), plan.no.to_string()),
        (
            labels::STORE.to_string(),
            workdir
                .parent()
                .and_then(|p| p.parent())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
    ]);
    TrainSpec {
        name: format!("mlops-{slug}-r{}-i{}-{nonce:04x}", plan.run, plan.no),
        image: plan.image.clone(),
        command: cfg.train.command.clone(),
        workspace: plan.workspace.clone(),
        workdir: workdir.to_path_buf(),
        env: vec![
            ("MLOPS_PARAMS".into(), params),
            ("MLOPS_DIR".into(), "/mlops".into()),
            ("MLOPS_RUN".into(), plan.run.to_string()),
            ("MLOPS_ITERATION".into(), plan.no.to_string()),
            ("MLOPS_CPUS".into(), threads.clone()),
            ("OMP_NUM_THREADS".into(), threads.clone()),
            ("OPENBLAS_NUM_THREADS".into(), threads),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("HOME".into(), "/tmp".into()),
        ],
        labels,
        memory_bytes: cfg.resources.memory.0,
        cpus: cfg.resources.cpus,
        pids: cfg.resources.pids,
    }
}
