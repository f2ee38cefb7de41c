//! The training worker: one per iteration (job 3, and the hands of job 6). Starts or re-attaches to the
//! container, streams and parses its output, enforces the deadlines, rides out a lost Docker engine, and
//! reports each death. It never decides what a death means: the reducer answers with a [`Control`]
//! (revive after a delay, or release), and the worker carries it out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::{
    ContainerBackend, ContainerState, ExitStatus, LogLine, StampedLine, TrainSpec, labels,
};
use crate::adapters::git::Project;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::metrics::{MetricParser, Observation};
use crate::support::fsutil::{self, Owner};

use crate::engine::msg::{ExitReport, IterationPlan, Level, Msg};
use crate::engine::workers::output::{Admit, Cursor, OUTPUT_CAP, OutputLog};

use super::coalesce::Coalescer;
use super::{disk, workspace};

mod recover;
mod resume;
mod silence;

use recover::{last_line_fallback, recover_final_metric};

use silence::Silence;

/// Log lines are sent to the reducer at most this often (or when a batch fills up).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(100);
const BATCH_MAX: usize = 2000;
/// Time a container gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long the log stream may stay silent, after the container stopped, before the rest of its
/// output is given up. Measured from the last line, not from the exit: the engine serves a flood far
/// slower than a script can print it (some 50 000 lines/s), and everything printed must be read.
const DRAIN: Duration = Duration::from_secs(5);
/// Reconnection back-off while the Docker engine is unreachable.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// What the reducer tells a worker after a death.
#[derive(Debug, Clone)]
pub enum Control {
    /// Stop the container (operator, or the run ended) and fail with this reason.
    Stop(String),
    /// Start the same container again after `delay`.
    Revive { delay: Duration },
    /// The iteration is decided: remove the container and end.
    Release,
}

/// How one life of the container ended.
struct LifeEnd {
    status: Option<ExitStatus>,
    cause: Option<String>,
}

/// State kept across the container's lives (revivals share it).
struct Follow {
    run: RunId,
    no: IterationNo,
    parser: MetricParser,
    /// Where the lines already forwarded end in the container's log: a re-attachment (or a
    /// revival) replays from there, and what was forwarded is not forwarded again.
    cursor: Cursor,
    /// Every forwarded line, kept in the iteration's directory.
    out: OutputLog,
    deadline: Instant,
    /// The last observation forwarded, to tell which of the log tail's observations are new.
    last: Option<Observation>,
    /// The wait before asking an unreachable engine again; back to the minimum once it answers.
    backoff: Duration,
    /// `/mlops` on the host, where `params.json` is rewritten before every revival.
    workdir: PathBuf,
    /// A digest of every line taken, across lives, to tell two iterations' outputs apart.
    digest: std::hash::DefaultHasher,
    /// The engine does not share our disk: checkpoints and results come home by archive download.
    remote: bool,
    /// The last epoch after whose report `/mlops/checkpoints` was copied home (remote engines).
    copied_epoch: Option<u32>,
    /// When that copy started: copies are spaced by [`COPY_SPACING`].
    copied_at: Option<Instant>,
    /// What the container held when it was killed for passing `[resources] disk`.
    over_disk: Option<crate::adapters::backend::DiskUsage>,
    /// `[resources] disk`, in bytes: also the most a copy home may bring.
    disk_limit: u64,
    /// The batch's metric reports and metric lines, held to a bounded number (a metric flood).
    coalesce: Coalescer,
    /// When the cursor was last kept on disk for a successor (see [`resume`]), and for which
    /// container.
    marked_at: Option<Instant>,
    container: Option<ContainerId>,
}

/// An iteration worker's two channels: its reports to the engine, and the reducer's orders to it.
pub struct Links {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub ctl: mpsc::UnboundedReceiver<Control>,
}

/// How a worker takes up its iteration.
#[derive(Debug, Clone)]
pub enum Begin {
    /// Commit the iteration's tree, fill its workspace, start its container.
    Fresh,
    /// Follow a container that is already there (adoption after a restart).
    Attach(ContainerId),
    /// Start a new container from the iteration's existing directory (its engine was lost): the
    /// workspace and the checkpoints copied home are what the script resumes from.
    Resume,
}

/// The whole life of one iteration's container: start it (or take over `attach`), follow it through
/// its revivals until the reducer releases it, then remove it. Every way it can end is reported as an
/// `Exited` first, so the reducer always learns the iteration's fate.
pub async fn run_iteration<B: ContainerBackend>(
    backend: Arc<B>,
    plan: IterationPlan,
    run_dir: PathBuf,
    project: Project,
    links: Links,
    attach: Option<ContainerId>,
) {
    let begin = attach.map(Begin::Attach).unwrap_or(Begin::Fresh);
    run_iteration_from(backend, plan, (run_dir, project), links, begin).await;
}

/// [`run_iteration`], begun as `begin` says.
pub async fn run_iteration_from<B: ContainerBackend>(
    backend: Arc<B>,
    plan: IterationPlan,
    (run_dir, project): (PathBuf, Project),
    links: Links,
    begin: Begin,
) {
    let Links { tx, mut ctl } = links;
    let (run, no) = (plan.run, plan.no);
    let adopted = matches!(begin, Begin::Attach(_));
    let workdir = run_dir.join(format!("iter-{no}"));
    let started = match begin {
        Begin::Attach(id) => Ok(id),
        Begin::Fresh => start(&*backend, &plan, &workdir, &project, (&run_dir, &tx)).await,
        Begin::Resume => start_again(&*backend, &plan, &workdir, &project, &run_dir).await,
    };
    let id = match started {
        Ok(id) => id,
        Err(cause) => {
            let _ = tx.send(exited(&plan, None, Some(cause)));
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
    match MetricParser::new(&metric.name, metric.pattern.as_deref())
        .or_else(|_| MetricParser::new(&metric.name, None))
    {
        Ok(parser) => {
            let mut f = match adopted {
                true => Follow::resumed(&plan, parser, workdir, &id),
                false => Follow::new(&plan, parser, workdir),
            };
            f.container = Some(id.clone());
            f.remote = !backend.shares_disk();
            lives(&*backend, &id, &plan, (&tx, &mut ctl), f, adopted).await;
        }
        Err(e) => {
            let cause = format!("cannot read `{}` from the output: {e}", metric.name);
            let _ = tx.send(exited(&plan, None, Some(cause)));
            released(&mut ctl).await;
        }
    }
    if let Err(e) = backend.remove(&id).await {
        tracing::warn!("removing container {id}: {e}");
    }
}

fn exited(plan: &IterationPlan, status: Option<ExitStatus>, cause: Option<String>) -> Msg {
    Msg::Exited {
        run: plan.run,
        no: plan.no,
        status,
        cause,
    }
}

/// Prepares the iteration's directory, commits its tree and fills its workspace, then starts its
/// container; the cause of a failure otherwise.
async fn start<B: ContainerBackend + ?Sized>(
    backend: &B,
    plan: &IterationPlan,
    workdir: &std::path::Path,
    project: &Project,
    links: (&std::path::Path, &mpsc::UnboundedSender<Msg>),
) -> Result<ContainerId, String> {
    let (run_dir, tx) = links;
    let owner = prepare_workdir(workdir, plan)
        .map_err(|e| format!("cannot prepare {}: {e}", workdir.display()))?;
    let commit = {
        let (project, plan, workdir) = (project.clone(), plan.clone(), workdir.to_path_buf());
        tokio::task::spawn_blocking(move || make_workspace(&project, &plan, &workdir, owner))
            .await
            .map_err(|e| format!("preparing the workspace failed: {e}"))??
    };
    let (commit, kept) = commit;
    let _ = tx.send(Msg::Committed {
        run: plan.run,
        no: plan.no,
        commit,
    });
    if let (Some(keep), Some(kept)) = (&plan.keep, kept) {
        let _ = tx.send(Msg::Kept {
            run: plan.run,
            no: plan.no,
            keep: keep.clone(),
            kept,
        });
    }
    launch(backend, plan, (workdir, project, run_dir), owner).await
}

/// Starts the iteration's container from its directory as it is (a move to another engine): no new
/// commit and no new workspace; `params.json` is rewritten and the checkpoints are kept.
async fn start_again<B: ContainerBackend + ?Sized>(
    backend: &B,
    plan: &IterationPlan,
    workdir: &std::path::Path,
    project: &Project,
    run_dir: &std::path::Path,
) -> Result<ContainerId, String> {
    let owner = prepare_workdir(workdir, plan)
        .map_err(|e| format!("cannot prepare {}: {e}", workdir.display()))?;
    launch(backend, plan, (workdir, project, run_dir), owner).await
}

/// Makes the run's image (built on the first engine) present on a remote engine: copied from the
/// first engine by export/import when missing, never pulled. The copy's progress goes to the log.
async fn image_here<B: ContainerBackend + ?Sized>(backend: &B, image: &str) -> Result<(), String> {
    let (progress, mut lines) = mpsc::unbounded_channel::<String>();
    let spec = crate::adapters::images::ImageSpec::Reference(image.to_string());
    let log = async {
        while let Some(line) = lines.recv().await {
            tracing::info!("{}: {line}", backend.endpoint());
        }
    };
    let (copied, ()) = tokio::join!(
        async move { backend.prepare_image(&spec, progress).await },
        log
    );
    copied
        .map(|_| ())
        .map_err(|e| format!("image {image} is not on {}: {e}", backend.endpoint()))
}

/// Creates and starts the container on `backend`: bind mounts on an engine that shares our disk,
/// archive upload on one that does not.
async fn launch<B: ContainerBackend + ?Sized>(
    backend: &B,
    plan: &IterationPlan,
    (workdir, project, run_dir): (&std::path::Path, &Project, &std::path::Path),
    owner: Owner,
) -> Result<ContainerId, String> {
    let data = workspace::data_mounts(&plan.config)?;
    let mut spec = spec(plan, workdir, project, run_dir, (owner, data));
    if backend.shares_disk() {
        return backend
            .start(spec)
            .await
            .map_err(|e| format!("could not start the container: {e}"));
    }
    spec.transfer = crate::adapters::backend::Transfer::Archive;
    // The image is asked for only when the start fails: the first engine, its source, may be the
    // engine that was lost.
    if let Ok(id) = backend.start(spec.clone()).await {
        return Ok(id);
    }
    image_here(backend, &plan.image).await?;
    backend
        .start(spec)
        .await
        .map_err(|e| format!("could not start the container: {e}"))
}

/// Commits the iteration's tree and exports it as the iteration's own workspace, replacing what a
/// failed earlier attempt left, then copies over it what `[train] keep` carries from an earlier
/// iteration. Blocking (git2 and file copies). Answers the commit and what was kept.
fn make_workspace(
    project: &Project,
    plan: &IterationPlan,
    workdir: &std::path::Path,
    owner: Owner,
) -> Result<(Option<String>, Option<crate::engine::msg::Kept>), String> {
    let commit = workspace::commit_iteration(project, plan)?;
    let dest = workdir.join(workspace::WORKSPACE_DIR);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    workspace::fill_workspace(project, plan, commit.as_deref(), &dest, owner)?;
    let run_dir = workdir.parent().unwrap_or(workdir);
    let kept = plan
        .keep
        .as_ref()
        .map(|k| super::keep::carry(k, run_dir, &dest, owner));
    Ok((commit, kept))
}

impl Follow {
    fn new(plan: &IterationPlan, parser: MetricParser, workdir: PathBuf) -> Follow {
        Follow {
            run: plan.run,
            no: plan.no,
            parser,
            cursor: Cursor::default(),
            out: OutputLog::create(&workdir, OUTPUT_CAP),
            deadline: Instant::now() + plan.config.budget.iteration_timeout.0,
            last: None,
            backoff: RECONNECT_MIN,
            workdir,
            digest: std::hash::DefaultHasher::new(),
            remote: false,
            copied_epoch: None,
            copied_at: None,
            over_disk: None,
            disk_limit: plan.config.resources.disk.0,
            coalesce: Coalescer::default(),
            marked_at: None,
            container: None,
        }
    }
}

/// Where an engine that does not share our disk keeps the iteration's checkpoints.
const CHECKPOINTS: &str = "/mlops/checkpoints";

/// The least time between two checkpoint copies of one trial. A copy is an archive download that
/// costs the engine a tar of the directory (≈0.2–0.4 s here): a script reporting many short epochs a
/// second would otherwise keep the engine busy copying and hold its own log reader back behind the
/// copies. Epochs slower than this are each copied; at worst a moved trial repeats this much work.
const COPY_SPACING: Duration = Duration::from_secs(5);

/// After a newly reported epoch on a remote engine, copies `/mlops/checkpoints` home (at most once
/// per [`COPY_SPACING`]), so that a trial can resume elsewhere from it if the engine is lost. The
/// script checkpoints an epoch after reporting it: the copy holds at least the epoch before. A failed
/// copy is only logged (the next epoch tries again); the end of the container's life copies all of
/// `/mlops` home anyway.
async fn copy_checkpoints<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &mut Follow,
) {
    let epoch = f.last.as_ref().and_then(|o| o.epoch);
    if !f.remote || epoch.is_none() || epoch <= f.copied_epoch {
        return;
    }
    if f.copied_at.is_some_and(|at| at.elapsed() < COPY_SPACING) {
        return;
    }
    f.copied_at = Some(Instant::now());
    let to = f.workdir.join("checkpoints");
    let cap = disk::checkpoint_cap(&f.workdir, f.disk_limit).await;
    match backend.copy_out(id, CHECKPOINTS, &to, cap).await {
        Ok(copied) => {
            if let Some((path, size)) = copied.left {
                let why = disk::left_behind(CHECKPOINTS, &path, size, f.disk_limit);
                tracing::warn!("iteration {}/{}: {why}", f.run, f.no);
            }
            f.copied_epoch = epoch;
        }
        Err(e) => tracing::warn!(
            "iteration {}/{}: copying checkpoints home: {e}",
            f.run,
            f.no
        ),
    }
}

/// [`admit_line`], then after a metric line the checkpoint copy of a remote engine. True for a
/// metric line.
async fn admit_and_copy<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    (tx, f, batch): (&mpsc::UnboundedSender<Msg>, &mut Follow, &mut Vec<LogLine>),
    line: StampedLine,
) -> bool {
    let metric = admit_line(tx, f, batch, line);
    if metric {
        copy_checkpoints(backend, id, f).await;
    }
    metric
}

/// At the end of a life on a remote engine, copies `/mlops` and `/workspace` home into the
/// iteration's directory, so that model detection, `metric.file` and `best.json` read host copies
/// exactly as with bind mounts; at most `[resources] disk` (see [`disk::bring_home`]).
async fn bring_home<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &Follow,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    if !f.remote {
        return;
    }
    for text in disk::bring_home(backend, id, &f.workdir, f.disk_limit).await {
        let _ = tx.send(Msg::Notice {
            tag: format!("train:{}", f.no),
            text,
            level: Level::Warn,
        });
    }
}

/// Follows the container through every life the reducer grants it (revivals), reporting each death,
/// until the reducer releases it. An adopted container that already ended is taken up by
/// [`resume::ended_while_away`] instead of followed.
async fn lives<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    (tx, ctl): (
        &mpsc::UnboundedSender<Msg>,
        &mut mpsc::UnboundedReceiver<Control>,
    ),
    mut f: Follow,
    adopted: bool,
) {
    let mut ended = match adopted {
        true => resume::ended_while_away(backend, id, plan, tx, &mut f).await,
        false => None,
    };
    loop {
        let mut end = match ended.take() {
            Some(end) => end,
            None => follow(backend, id, plan, tx, ctl, &mut f).await,
        };
        bring_home(backend, id, &f, tx).await;
        let over_disk = match f.over_disk.take() {
            Some(usage) => Some(disk::account(plan, &f.workdir, usage, f.remote).await),
            None => None,
        };
        end.cause = over_disk.clone().or(end.cause);
        let mut report = exit_report(plan, &f, &mut end).await;
        report.over_disk = over_disk;
        let _ = tx.send(Msg::ExitReport {
            run: plan.run,
            no: plan.no,
            report,
        });
        let _ = tx.send(exited(plan, end.status, end.cause));
        let Some(delay) = verdict(ctl).await else {
            return;
        };
        let cancelled = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            c = ctl.recv() => !matches!(c, Some(Control::Revive { .. })),
        };
        if cancelled {
            return;
        }
        if let Err(e) = write_params(&f.workdir, plan) {
            let cause = format!(
                "could not revive the container: cannot rewrite {}: {e}",
                f.workdir.join(PARAMS_FILE).display()
            );
            let _ = tx.send(exited(plan, None, Some(cause)));
            released(ctl).await;
            return;
        }
        if let Err(e) = backend.restart(id).await {
            let cause = format!("could not revive the container: {e}");
            let _ = tx.send(exited(plan, None, Some(cause)));
            // The reducer releases a failed revival; wait for it so removal is ordered.
            released(ctl).await;
            return;
        }
        let _ = tx.send(Msg::Revived {
            run: plan.run,
            no: plan.no,
            id: id.clone(),
        });
    }
}

/// Files a silent script wrote that its failure's reason names, at most.
const WRITTEN_SHOWN: usize = 6;

/// What the iteration left when its container ended: the output's digest always; after a clean
/// exit also the model file written next to the script (when `/mlops/model/` is empty) and the
/// value of `metric.file`, whose absence or garbage fails the iteration (set as `end`'s cause).
async fn exit_report(plan: &IterationPlan, f: &Follow, end: &mut LifeEnd) -> ExitReport {
    let output_hash = Some(std::hash::Hasher::finish(&f.digest));
    let clean = end.cause.is_none() && end.status.is_some_and(|s| s.code == 0 && !s.oom_killed);
    if !clean {
        return ExitReport {
            output_hash,
            ..ExitReport::default()
        };
    }
    let (workdir, pristine, config) = (
        f.workdir.clone(),
        plan.workspace.clone(),
        plan.config.clone(),
    );
    let silent = f.last.is_none();
    let read = tokio::task::spawn_blocking(move || {
        let ws = workdir.join(workspace::WORKSPACE_DIR);
        let empty = workspace::model_dir_empty(&workdir);
        let model = empty
            .then(|| workspace::model_written(&ws, &pristine))
            .flatten();
        let no_model = empty && model.is_none();
        let metric = workspace::read_metric_file(&config, &workdir);
        let scored = matches!(metric, Some(Ok(_)));
        let written = match silent && !scored {
            true => super::keep::written(&ws, &pristine, WRITTEN_SHOWN),
            false => Vec::new(),
        };
        (model, no_model, metric, written)
    })
    .await;
    let Ok((model, no_model, metric, written)) = read else {
        return ExitReport {
            output_hash,
            ..ExitReport::default()
        };
    };
    let metric_file = match metric {
        Some(Ok(v)) => plan.config.metric.file.clone().map(|file| (file, v)),
        Some(Err(why)) => {
            let wrote = crate::core::config::keep::wrote_note(&plan.config.train.keep, &written);
            end.cause = Some(format!("{why}; {wrote}"));
            None
        }
        None => None,
    };
    ExitReport {
        model,
        no_model,
        output_hash,
        metric_file,
        over_disk: None,
        written,
    }
}

/// The reducer's verdict on a death: revive after the delay, or `None` when released.
async fn verdict(ctl: &mut mpsc::UnboundedReceiver<Control>) -> Option<Duration> {
    loop {
        match ctl.recv().await {
            Some(Control::Revive { delay }) => return Some(delay),
            Some(Control::Release) | None => return None,
            Some(Control::Stop(_)) => continue,
        }
    }
}

/// Waits until the reducer releases the iteration (or the engine is gone).
async fn released(ctl: &mut mpsc::UnboundedReceiver<Control>) {
    while let Some(c) = ctl.recv().await {
        if matches!(c, Control::Release) {
            break;
        }
    }
}

/// Follows one life of the container: logs, metrics, deadlines, the disk quota, operator stops,
/// engine loss.
async fn follow<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    ctl: &mut mpsc::UnboundedReceiver<Control>,
    f: &mut Follow,
) -> LifeEnd {
    let mut batch: Vec<LogLine> = Vec::new();
    let mut silence = Silence::new();
    let mut cause: Option<String> = None;
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    let host = (!f.remote).then(|| f.workdir.clone());
    let quota = disk::over_quota(backend, id, host, plan.config.resources.disk);
    tokio::pin!(quota);
    f.backoff = RECONNECT_MIN;
    // The engine may go away (the dashboard quit): the container then trains on, unattended.
    let mut ctl_open = true;
    'attach: loop {
        f.cursor.reattach();
        let mut logs = backend.logs_since(id, f.cursor.since());
        let mut wait = backend.wait(id);
        let mut logs_done = false;
        let mut exit: Option<ExitStatus> = None;
        let mut drain_until: Option<Instant> = None;
        loop {
            if exit.is_some() && (logs_done || drain_until.is_some_and(|d| Instant::now() >= d)) {
                flush(tx, f, &mut batch);
                recover_final_metric(backend, id, plan, tx, f).await;
                last_line_fallback(plan, tx, f, exit);
                return LifeEnd {
                    status: exit,
                    cause,
                };
            }
            tokio::select! {
                line = logs.next(), if !logs_done => match line {
                    Some(Ok(line)) => {
                        let at = line.at;
                        let metric = admit_and_copy(backend, id, (tx, f, &mut batch), line).await;
                        silence.line(at, metric);
                        // Draining after the exit: the silence is measured from this line.
                        drain_until = drain_until.map(|_| Instant::now() + DRAIN);
                    }
                    Some(Err(e)) => {
                        tracing::warn!("iteration {}/{}: {e}", f.run, f.no);
                        logs_done = true;
                    }
                    None => logs_done = true,
                },
                status = &mut wait, if exit.is_none() => match status {
                    Ok(s) => {
                        exit = Some(s);
                        drain_until = Some(Instant::now() + DRAIN);
                    }
                    Err(e) => {
                        flush(tx, f, &mut batch);
                        drop(wait);
                        drop(logs);
                        match lost(backend, id, plan, tx, f, &e.to_string()).await {
                            None => continue 'attach,
                            Some(end) => return LifeEnd { status: end.status, cause: cause.or(end.cause) },
                        }
                    }
                },
                _ = tick.tick() => {
                    flush(tx, f, &mut batch);
                    let stream = silence::Stream {
                        logs: &mut logs,
                        done: &mut logs_done,
                        exited: exit.is_some(),
                        stopping: cause.is_some(),
                    };
                    let due = silence::judge(backend, (id, plan), (tx, f, &mut batch), stream, &mut silence).await;
                    stop_for(backend, id, &mut cause, due).await;
                }
                usage = &mut quota, if exit.is_none() && cause.is_none() => {
                    // The full reason is made once it has stopped (`disk::account`).
                    disk::kill(backend, id, usage.total).await;
                    cause = Some("over [resources] disk: killed".into());
                    f.over_disk = Some(usage);
                }
                c = ctl.recv(), if ctl_open && exit.is_none() => {
                    ctl_open = obey(backend, id, c, &mut cause).await;
                }
            }
        }
    }
}

/// Carries out an order received while the container runs. False when the engine is gone (the
/// container then trains on, unattended).
async fn obey<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    order: Option<Control>,
    cause: &mut Option<String>,
) -> bool {
    match order {
        Some(Control::Stop(reason)) => {
            stop(backend, id, &reason).await;
            cause.get_or_insert(reason);
            true
        }
        Some(_) => true,
        None => false,
    }
}

/// What stands in the output where the engine's log could not give back everything printed.
pub const GAP_NOTE: &str = "… lines may be missing here: when it was read again, the container's \
                            log no longer held all the output printed before this point …";

/// Takes a line of the log stream unless it was taken already (a re-attachment replays some); marks
/// a gap the replay revealed. True for a metric line.
fn admit_line(
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    batch: &mut Vec<LogLine>,
    line: StampedLine,
) -> bool {
    match f.cursor.admit(&line) {
        Admit::Skip => false,
        Admit::Take => take_line(tx, f, batch, line.line),
        Admit::TakeAfterGap => {
            tracing::warn!(
                "iteration {}/{}: output lost in the engine's log",
                f.run,
                f.no
            );
            let note = LogLine {
                stderr: false,
                text: GAP_NOTE.into(),
            };
            f.out.write(&note);
            batch.push(note);
            take_line(tx, f, batch, line.line)
        }
    }
}

/// Takes one new output line into the batch, its observation into the batch's coalesced ones (sent
/// with the batch). True for a metric line.
fn take_line(
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    batch: &mut Vec<LogLine>,
    line: LogLine,
) -> bool {
    f.out.write(&line);
    std::hash::Hash::hash(&(line.stderr, &line.text), &mut f.digest);
    let obs = f.parser.feed(&line.text);
    let metric = obs.is_some();
    if let Some(obs) = &obs {
        f.last = Some(obs.clone());
    }
    f.coalesce.line(batch, line, obs);
    if let Some(hint) = f.parser.take_malformed() {
        flush(tx, f, batch);
        let (tag, level) = (format!("evaluate:{}", f.no), Level::Warn);
        let _ = tx.send(Msg::Notice {
            tag,
            text: hint,
            level,
        });
    } else if batch.len() >= BATCH_MAX || f.coalesce.full() {
        flush(tx, f, batch);
    }
    metric
}

/// The container exited while the engine was unreachable: what it printed since the connection was
/// lost is read now, as a reattached reader would (the lines already forwarded are skipped), then the
/// log tail is checked as after any exit. Given up after [`DRAIN`] without a line.
async fn catch_up<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
) {
    let mut batch = Vec::new();
    f.cursor.reattach();
    let mut logs = backend.logs_since(id, f.cursor.since());
    while let Ok(Some(Ok(line))) = tokio::time::timeout(DRAIN, logs.next()).await {
        admit_line(tx, f, &mut batch, line);
    }
    flush(tx, f, &mut batch);
    recover_final_metric(backend, id, plan, tx, f).await;
}

/// The engine stopped answering while the container ran: waits for it, then `None` to re-attach to a
/// running container, or how the life ended (after catching up on what an exited container printed).
async fn lost<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    error: &str,
) -> Option<LifeEnd> {
    match reconcile(backend, id, tx, f, error).await {
        Reconciled::Running => None,
        Reconciled::Exited(s) => {
            catch_up(backend, id, plan, tx, f).await;
            Some(LifeEnd {
                status: Some(s),
                cause: None,
            })
        }
        Reconciled::Gone(why) => Some(LifeEnd {
            status: None,
            cause: Some(why),
        }),
    }
}

enum Reconciled {
    Running,
    Exited(ExitStatus),
    Gone(String),
}

/// The engine stopped answering: retry with back-off until it does, then look at the container again.
/// Listing/inspecting is the only reliable way back: the event stream cannot be replayed far.
async fn reconcile<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    error: &str,
) -> Reconciled {
    let mut said = false;
    loop {
        match backend.inspect(id).await {
            Ok(Some(ContainerState::Running | ContainerState::Starting)) => {
                if said {
                    let _ = tx.send(Msg::Notice {
                        tag: format!("monitor:{}", f.no),
                        text: format!("Docker engine back: re-attached to container {id}"),
                        level: Level::Good,
                    });
                }
                f.backoff = RECONNECT_MIN;
                return Reconciled::Running;
            }
            Ok(Some(ContainerState::Exited(s))) => return Reconciled::Exited(s),
            Ok(None) => {
                return Reconciled::Gone(format!(
                    "container {id} vanished while the Docker engine was unreachable"
                ));
            }
            Err(e) => {
                if !said {
                    said = true;
                    let _ = tx.send(Msg::Notice {
                        tag: format!("monitor:{}", f.no),
                        text: format!("lost the Docker engine ({error}); retrying: {e}"),
                        level: Level::Warn,
                    });
                }
                if Instant::now() >= f.deadline {
                    return Reconciled::Gone(
                        "the Docker engine stayed unreachable past budget.iteration_timeout".into(),
                    );
                }
                tokio::time::sleep(f.backoff).await;
                f.backoff = (f.backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

/// Stops the container when there is a reason `why` and it is not being stopped already: the first
/// cause found is the one reported.
async fn stop_for<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    cause: &mut Option<String>,
    why: Option<String>,
) {
    if cause.is_some() {
        return;
    }
    if let Some(why) = why {
        stop(backend, id, &why).await;
        *cause = Some(why);
    }
}

async fn stop<B: ContainerBackend + ?Sized>(backend: &B, id: &ContainerId, why: &str) {
    tracing::info!("stopping {id}: {why}");
    if let Err(e) = backend.stop(id, STOP_GRACE).await {
        tracing::warn!("stopping {id}: {e}");
    }
}

/// Sends the batch's lines, then its coalesced observations (so the log shows a line before the
/// plot moves).
fn flush(tx: &mpsc::UnboundedSender<Msg>, f: &mut Follow, batch: &mut Vec<LogLine>) {
    f.out.flush();
    resume::keep_mark(f);
    let points = f.coalesce.close(batch);
    if !batch.is_empty() {
        let lines = std::mem::take(batch);
        let _ = tx.send(Msg::Logs {
            run: f.run,
            no: f.no,
            lines,
        });
    }
    for obs in points {
        let _ = tx.send(Msg::Metric {
            run: f.run,
            no: f.no,
            obs,
        });
    }
}

/// `/mlops` on the host: `params.json`, `checkpoints/`, `model/`, private to the container's user
/// (see [`Owner::for_container`]). Answers who the container runs as.
fn prepare_workdir(workdir: &std::path::Path, plan: &IterationPlan) -> std::io::Result<Owner> {
    std::fs::create_dir_all(workdir)?;
    let owner = Owner::for_container(workdir)?;
    write_params(workdir, plan)?;
    super::notebook::install(workdir, &plan.config.train.command)?;
    for dir in [workdir.join("checkpoints"), workdir.join("model")] {
        fsutil::make_private_dir(&dir, owner)?;
    }
    fsutil::make_private_dir(workdir, owner)?;
    Ok(owner)
}

/// The parameters file the script reads, under the iteration's `/mlops`.
const PARAMS_FILE: &str = "params.json";

/// Writes `params.json` from the plan (which holds the recorded parameters), atomically. Done before
/// every life of the container: the script may have damaged the file, and a revival must see exactly
/// the parameters the history says this iteration tried.
fn write_params(workdir: &std::path::Path, plan: &IterationPlan) -> std::io::Result<()> {
    let params = serde_json::to_vec_pretty(&plan.params).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&workdir.join(PARAMS_FILE), &params)
}

/// Labels that find this engine's containers again: the runs directory identifies the history store.
pub fn store_label(runs_dir: &std::path::Path) -> (String, String) {
    (labels::STORE.to_string(), runs_dir.display().to_string())
}

fn spec(
    plan: &IterationPlan,
    workdir: &std::path::Path,
    project: &Project,
    run_dir: &std::path::Path,
    (owner, data): (Owner, Vec<(PathBuf, String)>),
) -> TrainSpec {
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
    let runs_dir = run_dir.parent().unwrap_or(run_dir);
    let (store_key, store_value) = store_label(runs_dir);
    let labels = BTreeMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (
            labels::PROJECT.to_string(),
            project.dir.display().to_string(),
        ),
        (labels::RUN.to_string(), plan.run.to_string()),
        (labels::ITERATION.to_string(), plan.no.to_string()),
        (store_key, store_value),
    ]);
    TrainSpec {
        name: format!("mlops-{slug}-r{}-i{}-{nonce:04x}", plan.run, plan.no),
        image: plan.image.clone(),
        command: super::notebook::container_command(cfg.render_command(&plan.params)),
        workspace: workdir.join(workspace::WORKSPACE_DIR),
        workdir: workdir.to_path_buf(),
        data,
        user: owner.spec(),
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
        disk_bytes: cfg.resources.disk.0,
        transfer: crate::adapters::backend::Transfer::Bind,
        gpus: cfg.resources.gpus.clone(),
    }
}
