//! One type for every kind of engine a pool holds, so that a pool may mix a plain Docker engine and
//! a swarm: each call goes to the backend of the engine's kind. Nothing above the adapters names a
//! kind: the run loop sees a [`ContainerBackend`].

use std::path::Path;
use std::time::Duration;

use crate::adapters::backend::{
    BackendError, BoxFuture, ContainerBackend, Copied, DiskUsage, EventStream, FoundContainer,
    GpuSample, LogStream, Progress, StampedLine, StampedLogStream, TrainSpec,
};
use crate::adapters::docker::{DockerBackend, SwarmBackend};
use crate::core::config::EngineLimits;
use crate::core::gpu::GpuRequest;
use crate::core::ids::ContainerId;
use crate::core::model::{ContainerState, ExitStatus, ImageSpec, LogLine, NodeView};

/// An engine of a pool: one Docker engine, or a swarm reached through its manager.
pub enum PoolBackend {
    Docker(DockerBackend),
    Swarm(SwarmBackend),
}

/// Calls the same method on whichever backend `$self` holds.
macro_rules! each {
    ($self:expr, $b:ident => $call:expr) => {
        match $self {
            PoolBackend::Docker($b) => $call,
            PoolBackend::Swarm($b) => $call,
        }
    };
}

impl PoolBackend {
    /// The bollard client of the engine (a swarm's manager), for tests and tools.
    pub fn client(&self) -> &bollard::Docker {
        each!(self, b => b.client())
    }
}

impl ContainerBackend for PoolBackend {
    fn endpoint(&self) -> String {
        each!(self, b => b.endpoint())
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        each!(self, b => b.ping())
    }
    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>> {
        each!(self, b => b.limits())
    }
    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        each!(self, b => b.prepare_image(image, progress))
    }
    fn start(&self, spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>> {
        each!(self, b => b.start(spec))
    }
    fn probe_gpus<'a>(
        &'a self,
        request: &'a GpuRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        each!(self, b => b.probe_gpus(request))
    }
    fn gpu_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Vec<GpuSample>, BackendError>> {
        each!(self, b => b.gpu_usage(id))
    }
    fn logs(&self, id: &ContainerId) -> LogStream {
        each!(self, b => b.logs(id))
    }
    fn logs_since(&self, id: &ContainerId, since: Option<i128>) -> StampedLogStream {
        each!(self, b => b.logs_since(id, since))
    }
    fn tail<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>> {
        each!(self, b => b.tail(id, n))
    }
    fn tail_stamped<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<StampedLine>, BackendError>> {
        each!(self, b => b.tail_stamped(id, n))
    }
    fn frozen<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<bool, BackendError>> {
        each!(self, b => b.frozen(id))
    }
    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>> {
        each!(self, b => b.wait(id))
    }
    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        each!(self, b => b.stop(id, grace))
    }
    fn kill<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        each!(self, b => b.kill(id))
    }
    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<DiskUsage, BackendError>> {
        each!(self, b => b.disk_usage(id))
    }
    fn remove<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        each!(self, b => b.remove(id))
    }
    fn restart<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        each!(self, b => b.restart(id))
    }
    fn revives_in_place(&self) -> bool {
        each!(self, b => b.revives_in_place())
    }
    fn waiting<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>> {
        each!(self, b => b.waiting(id))
    }
    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<ContainerState>, BackendError>> {
        each!(self, b => b.inspect(id))
    }
    fn events(&self, labels: &[(String, String)]) -> EventStream {
        each!(self, b => b.events(labels))
    }
    fn find<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>> {
        each!(self, b => b.find(labels))
    }
    fn shares_disk(&self) -> bool {
        each!(self, b => b.shares_disk())
    }
    fn nodes<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Option<Vec<NodeView>>, BackendError>> {
        each!(self, b => b.nodes(labels))
    }
    fn copy_out<'a>(
        &'a self,
        id: &'a ContainerId,
        from: &'a str,
        to: &'a Path,
        cap: u64,
    ) -> BoxFuture<'a, Result<Copied, BackendError>> {
        each!(self, b => b.copy_out(id, from, to, cap))
    }
}
