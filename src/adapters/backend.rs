//! The one interface through which the pipeline reaches containers.
//!
//! The pipeline never names Docker: it asks a [`ContainerBackend`] to prepare an image, start a training
//! container from a [`TrainSpec`], stream its output, wait for it, stop it and find it again by label.
//! [`docker::DockerBackend`] implements it over bollard; a remote engine or Kubernetes Jobs would be other
//! implementations.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::core::config::EngineLimits;
pub use crate::core::disk::DiskUsage;
use crate::core::ids::ContainerId;
use crate::core::model::{
    ContainerEvent, ContainerState, ExitStatus, ImageSpec, LogLine, NodeView,
};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("Docker engine not reachable ({endpoint}): {message}")]
    Unavailable { endpoint: String, message: String },
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    #[error("container {id}: {message}")]
    Container { id: String, message: String },
    /// The container's host is lost (a swarm node that went down): the container may still run
    /// there, unreachable; its attempt is over and a new one must start elsewhere.
    #[error("container {id}: {message}")]
    Lost { id: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// How an iteration's files reach its container and come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transfer {
    /// The host paths are bind-mounted: the fast path of an engine that shares this machine's disk.
    #[default]
    Bind,
    /// The engine does not share our disk: `workspace`, `workdir` and the `data` directories are
    /// uploaded (archive upload) into the container's own volumes before it starts; results come
    /// back through [`ContainerBackend::copy_out`].
    Archive,
}

/// Everything needed to start one training container. Invariant: `workspace`, `workdir` and every
/// `data` host path are absolute host paths that exist; `workspace` and `workdir` are writable by the
/// container's user. With [`Transfer::Archive`] they are what is uploaded, not what is mounted.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    /// The iteration's own copy of its commit's tree, mounted read-write at `/workspace` (the
    /// working directory): scripts write models and checkpoints next to themselves.
    pub workspace: PathBuf,
    /// The iteration's own directory, mounted read-write at `/mlops`.
    pub workdir: PathBuf,
    /// Host paths mounted read-only, and where: `[data]` (data sets, caches).
    pub data: Vec<(PathBuf, String)>,
    /// Who the container runs as, `uid:gid`: the owner of `workdir`, never root.
    pub user: String,
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub memory_bytes: u64,
    pub cpus: f64,
    pub pids: i64,
    /// `[resources] disk`: the largest file the container may write (the kernel's per-file limit,
    /// `RLIMIT_FSIZE`, so a write past it fails with "File too large"). The total is watched apart.
    pub disk_bytes: u64,
    pub transfer: Transfer,
    /// `[resources] gpus`, as the devices the trial holds when they are counted: the container's
    /// device request. `None` trains on the CPU.
    pub gpus: Option<crate::core::gpu::GpuRequest>,
}

pub use crate::core::model::GpuSample;

/// What [`ContainerBackend::copy_out`] brought home.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// Bytes of files written on this machine.
    pub bytes: u64,
    /// The copy stopped at its cap: the first file left in the container (its path below `from`)
    /// and its size; it and every entry after it were not copied.
    pub left: Option<(String, u64)>,
}

/// A container found by label (re-attachment, clean-up).
#[derive(Debug, Clone)]
pub struct FoundContainer {
    pub id: ContainerId,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent, BackendError>> + Send>>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogLine, BackendError>> + Send>>;

/// A line of output with its place in the container's log, so that a reader that re-attaches resumes
/// after the last line it took instead of counting lines (the engine's log may have rotated since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampedLine {
    /// Nanoseconds since the Unix epoch, as the engine stamped the line; for a backend without a
    /// clock, the line's ordinal in the replay. Never decreases within one stream (stdout or stderr)
    /// of one container.
    pub at: i128,
    pub line: LogLine,
}

pub type StampedLogStream = Pin<Box<dyn Stream<Item = Result<StampedLine, BackendError>> + Send>>;

/// Progress of an image build, one human-readable line at a time.
pub type Progress = mpsc::UnboundedSender<String>;

pub trait ContainerBackend: Send + Sync + 'static {
    /// Where the backend talks to, for status lines (`unix:///var/run/docker.sock`).
    fn endpoint(&self) -> String;
    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>>;
    /// What the engine can give one container: its CPUs and memory. Checked against `[resources]`
    /// before a run starts any container, since the engine refuses a container that asks for more.
    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>>;
    /// Makes `image` available and returns the reference to run. Builds what is missing (a profile, a
    /// profile with requirements, a project's Dockerfile), reporting progress; never pulls.
    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>>;
    fn start(&self, spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>>;
    /// Whether the engine gives a container the GPUs of `request`, asked before any training
    /// container starts: the devices it gave (empty when it cannot say which), or why not with the
    /// fix. A backend without GPUs refuses.
    fn probe_gpus<'a>(
        &'a self,
        request: &'a crate::core::gpu::GpuRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        let _ = request;
        Box::pin(async { Err(BackendError::Other("it cannot give containers GPUs".into())) })
    }
    /// Utilisation and memory of the GPUs container `id` holds; empty when it holds none or the
    /// engine cannot say.
    fn gpu_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Vec<GpuSample>, BackendError>> {
        let _ = id;
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Follows the container's output from its start until it stops.
    fn logs(&self, id: &ContainerId) -> LogStream;
    /// Follows the container's output from `since` (nanoseconds since the epoch; lines from the same
    /// second may come again, the reader skips what it already took) until it stops, each line with
    /// its stamp. By default, the whole of [`logs`](Self::logs), stamped with each line's ordinal.
    fn logs_since(&self, id: &ContainerId, since: Option<i128>) -> StampedLogStream {
        let _ = since;
        let mut n: i128 = -1;
        Box::pin(self.logs(id).map(move |line| {
            n += 1;
            line.map(|line| StampedLine { at: n, line })
        }))
    }
    /// The last `n` lines the container printed (not following). Lets a reader that fell behind a
    /// flood still see how the output ended.
    fn tail<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>>;
    /// The last `n` lines the container printed, with their stamps (not following): all a
    /// re-attachment reads of a container that ended while nobody followed it. The default reads
    /// the whole log.
    fn tail_stamped<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<StampedLine>, BackendError>> {
        Box::pin(async move {
            let lines: Vec<StampedLine> = self
                .logs_since(id, None)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let skip = lines.len().saturating_sub(n);
            Ok(lines.into_iter().skip(skip).collect())
        })
    }
    /// Whether the container is frozen (paused, or all its processes stopped by a signal): it
    /// cannot report anything, which is no sign that it hangs. The default knows no such state.
    fn frozen<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<bool, BackendError>> {
        let _ = id;
        Box::pin(async { Ok(false) })
    }
    /// Resolves when the container stops.
    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>>;
    /// Asks the container to stop, killing it after `grace`.
    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Kills the container at once (SIGKILL, no grace): for a container that must not write one more
    /// byte. A script that is PID 1 ignores SIGTERM, so a stop would wait out its grace.
    fn kill<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        self.stop(id, Duration::ZERO)
    }
    /// What a running container holds under `/workspace` and `/mlops` on the engine's own disk, for
    /// an engine that does not share ours (on one that does, the host directories are measured).
    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<DiskUsage, BackendError>> {
        Box::pin(async move {
            Err(BackendError::Container {
                id: id.to_string(),
                message: "this backend cannot measure a container's files".into(),
            })
        })
    }
    fn remove<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Starts a stopped container again with the same mounts, so the script resumes from `/mlops`.
    /// Only asked of a backend that [`revives_in_place`](Self::revives_in_place).
    fn restart<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Whether a revival restarts the same container. A backend that answers false (a swarm: a
    /// task that ended stays ended, and its node may be gone) revives by starting a new container,
    /// a new attempt, from the iteration's directory on this machine.
    fn revives_in_place(&self) -> bool {
        true
    }
    /// The container's state; `None` when it no longer exists.
    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<ContainerState>, BackendError>>;
    /// Follows `start`/`die`/`oom` events of containers carrying all of `labels`. Ends or errs when
    /// the engine goes away; the engine replays little history, so callers reconcile by listing.
    fn events(&self, labels: &[(String, String)]) -> EventStream;
    /// Containers carrying all of `labels` (running or not).
    fn find<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>>;
    /// Whether the engine sees this machine's files, so that bind mounts work ([`Transfer::Bind`]).
    /// A remote engine answers false and is given [`Transfer::Archive`] specs.
    fn shares_disk(&self) -> bool {
        true
    }
    /// Why a container that was asked for is not running yet, in the scheduler's words ("no
    /// suitable node (insufficient resources on 3 nodes)"); `None` when it runs or ended, or when
    /// the backend places containers at once (the default).
    fn waiting<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>> {
        let _ = id;
        Box::pin(async { Ok(None) })
    }
    /// The nodes of a cluster engine (a swarm), with what this store's trials (the services
    /// carrying all of `labels`) reserve on each and which run there; `None` for an engine that is
    /// not a cluster, which is the default: a plain engine is its own one node.
    fn nodes<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Option<Vec<NodeView>>, BackendError>> {
        let _ = labels;
        Box::pin(async { Ok(None) })
    }
    /// Copies the directory `from` inside the container (running or stopped; e.g.
    /// `/mlops/checkpoints`) into the host directory `to`, which is made if missing and whose entries
    /// of the same names are replaced. The archive download that brings a remote engine's checkpoints
    /// and results home. At most `cap` bytes of files land: the first file that would pass it, and
    /// everything after it, stay in the container ([`Copied::left`] names it), so a container that
    /// filled its disk cannot fill ours.
    fn copy_out<'a>(
        &'a self,
        id: &'a ContainerId,
        from: &'a str,
        to: &'a Path,
        cap: u64,
    ) -> BoxFuture<'a, Result<Copied, BackendError>> {
        let _ = (from, to, cap);
        Box::pin(async move {
            Err(BackendError::Container {
                id: id.to_string(),
                message: "this backend cannot copy files out of a container".into(),
            })
        })
    }
}
