//! The training worker: one per iteration (job 3, and the hands of job 6). Starts or re-attaches to the
//! container, streams and parses its output, enforces the deadlines, rides out a lost Docker engine, and
//! reports each death. It never decides what a death means: the reducer answers with a [`Control`]
//! (revive after a delay, or release), and the worker carries it out.
//!
//! By responsibility: [`start`] takes the iteration up (workspace, container), [`spec`] describes its
//! container, [`workdir`] keeps `/mlops` and `params.json`, [`follow`] reads one life of the
//! container, [`reconnect`] rides out a lost engine, [`checkpoints`] copies home from an engine that
//! does not share our disk, [`recover`] reads the log's end again after an exit, [`report`] says what
//! the iteration left, [`resume`] takes up a container after a restart, [`silence`] judges
//! `budget.metric_timeout`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::{ContainerBackend, StampedLine};
use crate::adapters::git::Project;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::metrics::{MetricParser, Observation};
use crate::core::model::ExitStatus;
use crate::core::model::LogLine;

use crate::engine::msg::{IterationPlan, Level, Msg};
use crate::engine::workers::output::{Admit, Cursor, OUTPUT_CAP, OutputLog};

use super::coalesce::Coalescer;

mod checkpoints;
use checkpoints::copy_checkpoints;
mod follow;
mod lives;
mod reconnect;
mod recover;
mod report;
mod resume;
mod silence;
mod spec;
mod start;
mod waiting;
mod workdir;

pub use follow::BATCH_INTERVAL;
pub use spec::store_label;
pub use start::StartError;

use lives::{lives, released};
use recover::{last_line_fallback, recover_final_metric};

/// Reconnection back-off while the Docker engine is unreachable.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
/// The most lines a batch holds before it is sent.
const BATCH_MAX: usize = 2000;

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
    /// The container's host was lost (`cause` says how): the container may live on there, out of
    /// reach; nothing more can be read from it.
    lost: bool,
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
    /// The attempt being followed: checkpoints are copied home only while no newer attempt of the
    /// iteration was recorded (see [`workdir::attempt`]).
    attempt: u32,
    /// What was said of a container that waits to run (a task pending for a node).
    waiting: waiting::Waiting,
}

/// An iteration worker's two channels: its reports to the engine, and the reducer's orders to it.
pub struct Links {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub ctl: mpsc::UnboundedReceiver<Control>,
}

/// Where an iteration works: the project it trains, and its run's directory (which holds the
/// iteration's own `iter-N/`).
pub struct Workplace {
    pub run_dir: PathBuf,
    pub project: Project,
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
    let at = Workplace { run_dir, project };
    run_iteration_from(backend, plan, at, links, begin).await;
}

/// [`run_iteration`], begun as `begin` says.
pub async fn run_iteration_from<B: ContainerBackend>(
    backend: Arc<B>,
    plan: IterationPlan,
    at: Workplace,
    mut links: Links,
    begin: Begin,
) {
    let (run, no) = (plan.run, plan.no);
    let adopted = matches!(begin, Begin::Attach(_));
    let workdir = at.run_dir.join(format!("iter-{no}"));
    let attempt = match begin {
        Begin::Fresh => 0,
        Begin::Attach(_) => workdir::attempt(&workdir),
        Begin::Resume => workdir::attempt(&workdir) + 1,
    };
    if let Err(e) = workdir::set_attempt(&workdir, attempt) {
        tracing::warn!("iteration {run}/{no}: cannot record attempt {attempt}: {e}");
    }
    let launch = Launch {
        plan: &plan,
        workdir: &workdir,
        project: &at.project,
        run_dir: &at.run_dir,
        attempt,
    };
    let started = match begin {
        Begin::Attach(id) => Ok(id),
        Begin::Fresh => start::start(&*backend, &launch, &links.tx).await,
        Begin::Resume => start::start_again(&*backend, &launch).await,
    };
    let id = match started {
        Ok(id) => id,
        Err(cause) => {
            let _ = links.tx.send(exited(&plan, None, Some(cause.to_string())));
            return;
        }
    };
    let _ = links.tx.send(Msg::ContainerStarted {
        run,
        no,
        id: id.clone(),
        workdir: workdir.clone(),
    });
    let metric = &plan.config.metric;
    let parser = MetricParser::new(&metric.name, metric.pattern.as_deref())
        .or_else(|_| MetricParser::new(&metric.name, None));
    let last = match parser {
        Ok(parser) => {
            let mut f = match adopted {
                true => Follow::resumed(&plan, parser, workdir.clone(), &id),
                false => Follow::new(&plan, parser, workdir.clone()),
            };
            f.container = Some(id.clone());
            f.remote = !backend.shares_disk();
            f.attempt = attempt;
            lives(&*backend, id, launch, &mut links, f, adopted).await
        }
        Err(e) => {
            let cause = format!("cannot read `{}` from the output: {e}", metric.name);
            let _ = links.tx.send(exited(&plan, None, Some(cause)));
            released(&mut links.ctl).await;
            lives::Last {
                id,
                fenced: Vec::new(),
            }
        }
    };
    remove_all(&*backend, last).await;
}

/// Removes the iteration's container and every earlier attempt fenced off on the way.
async fn remove_all<B: ContainerBackend + ?Sized>(backend: &B, last: lives::Last) {
    for id in last.fenced.iter().chain(std::iter::once(&last.id)) {
        if let Err(e) = backend.remove(id).await {
            tracing::warn!("removing container {id}: {e}");
        }
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
            attempt: 0,
            waiting: waiting::Waiting::default(),
        }
    }
}

/// What a container is started from: the iteration's plan, its directory (`/mlops` on the host),
/// the project it trains and its run's directory.
#[derive(Clone, Copy)]
struct Launch<'a> {
    pub plan: &'a IterationPlan,
    pub workdir: &'a Path,
    pub project: &'a Project,
    pub run_dir: &'a Path,
    /// Which attempt of the iteration the container is (see [`labels::ATTEMPT`]).
    ///
    /// [`labels::ATTEMPT`]: crate::core::model::labels::ATTEMPT
    pub attempt: u32,
}

/// How long the log stream may stay silent, after the container stopped, before the rest of its
/// output is given up. Measured from the last line, not from the exit: the engine serves a flood far
/// slower than a script can print it (some 50 000 lines/s), and everything printed must be read.
const DRAIN: Duration = Duration::from_secs(5);

/// Where the lines being read go: the follower, and the batch of lines not yet sent on `tx`.
struct Intake<'a> {
    pub tx: &'a mpsc::UnboundedSender<Msg>,
    pub f: &'a mut Follow,
    pub batch: &'a mut Vec<LogLine>,
}

impl Intake<'_> {
    /// [`flush`]es the batch.
    fn flush(&mut self) {
        flush(self.tx, self.f, self.batch);
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

/// [`admit_line`], then after a metric line the checkpoint copy of a remote engine. True for a
/// metric line.
async fn admit_and_copy<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    into: &mut Intake<'_>,
    line: StampedLine,
) -> bool {
    let metric = admit_line(into.tx, into.f, into.batch, line);
    if metric {
        copy_checkpoints(backend, id, into.f).await;
    }
    metric
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
    f.waiting.ran();
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
