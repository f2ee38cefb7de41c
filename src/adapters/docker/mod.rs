//! [`ContainerBackend`] over a Docker Engine, through bollard only (never the `docker` CLI).
//!
//! Training code is untrusted: containers never run as root, with no network, all capabilities dropped,
//! `no-new-privileges`, a read-only root file system, and memory (no swap), CPU and pid limits. The
//! Docker socket is never mounted.
//!
//! An engine may be elsewhere (`tcp://` with TLS, `ssh://`, see [`connect`]): then it does not share
//! our disk, files go in and out as archives ([`transfer`]), and images it lacks are copied from the
//! engine they were built on ([`image_copy`]).

mod archive;
mod build;
mod connect;
mod container;
mod events;
mod frozen;
pub mod gpu;
mod image_copy;
mod logs;
pub mod swarm;
mod transfer;
mod usage;

pub use logs::MAX_LINE;
pub use swarm::SwarmBackend;
pub use transfer::VOLUME_OF;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;

use crate::adapters::backend::{
    BackendError, BoxFuture, ContainerBackend, Copied, DiskUsage, EventStream, FoundContainer,
    LogStream, Progress, StampedLine, StampedLogStream, TrainSpec,
};
use crate::core::config::EngineLimits;
use crate::core::ids::ContainerId;
use crate::core::model::ContainerState;
use crate::core::model::ExitStatus;
use crate::core::model::ImageSpec;
use crate::core::model::LogLine;

pub struct DockerBackend {
    docker: Docker,
    endpoint: String,
    /// The engine's name in the configuration, for progress lines.
    name: String,
    /// The engine does not see this machine's files (`tcp://`, `ssh://`).
    remote: bool,
    /// Where images missing here are copied from (the engine images are built on).
    image_source: Option<Arc<DockerBackend>>,
    /// One image copy into this engine at a time: two trials asking for the same missing image copy
    /// it once, while copies into other engines go on side by side.
    copy_lock: tokio::sync::Mutex<()>,
}

impl DockerBackend {
    /// The bollard client, for tests and tools that need engine calls outside the pipeline's interface.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> BackendError {
        BackendError::Unavailable {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        }
    }

    async fn image_present(&self, reference: &str) -> Result<bool, BackendError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
        }
    }
}

/// Each call is answered in the module of its concern: [`build`], [`container`], [`logs`],
/// [`events`], [`transfer`], [`frozen`] and [`usage`].
impl ContainerBackend for DockerBackend {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.docker
                .ping()
                .await
                .map_err(|e| self.unavailable(crate::core::text::error_chain(&e)))?;
            Ok(())
        })
    }

    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>> {
        Box::pin(async move {
            let info = self.docker.info().await.map_err(|e| self.unavailable(e))?;
            let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            Ok(EngineLimits {
                cpus: positive(info.ncpu),
                memory_bytes: positive(info.mem_total),
                hosts: 1,
            })
        })
    }

    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        Box::pin(self.prepare(image, progress))
    }

    fn probe_gpus<'a>(
        &'a self,
        request: &'a crate::core::gpu::GpuRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(self.probe_gpu_devices(request))
    }

    fn gpu_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Vec<crate::adapters::backend::GpuSample>, BackendError>> {
        Box::pin(self.sample_gpus(id))
    }

    fn start(&self, spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>> {
        Box::pin(self.start_container(spec))
    }

    fn logs(&self, id: &ContainerId) -> LogStream {
        self.follow_logs(id)
    }

    fn logs_since(&self, id: &ContainerId, since: Option<i128>) -> StampedLogStream {
        self.follow_logs_since(id, since)
    }

    fn tail<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>> {
        Box::pin(self.last_lines(id, n))
    }

    fn tail_stamped<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<StampedLine>, BackendError>> {
        self.last_lines_stamped(id, n)
    }

    fn frozen<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.frozen_now(id))
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>> {
        Box::pin(self.wait_exit(id))
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.stop_container(id, grace))
    }

    fn remove<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.remove_with_volumes(id))
    }

    fn shares_disk(&self) -> bool {
        !self.remote
    }

    fn copy_out<'a>(
        &'a self,
        id: &'a ContainerId,
        from: &'a str,
        to: &'a Path,
        cap: u64,
    ) -> BoxFuture<'a, Result<Copied, BackendError>> {
        Box::pin(self.download(id, from, to, cap))
    }

    fn kill<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.kill_now(id))
    }

    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<DiskUsage, BackendError>> {
        Box::pin(self.usage(id))
    }

    fn restart<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.restart_container(id))
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<ContainerState>, BackendError>> {
        Box::pin(self.state(id))
    }

    fn events(&self, labels: &[(String, String)]) -> EventStream {
        self.container_events(labels)
    }

    fn find<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>> {
        Box::pin(self.find_labelled(labels))
    }
}
