//! The GPU sampler at run time: started the first time a running trial holds GPUs, told after each
//! batch of messages which containers hold them now (off the render path: the sampler asks the
//! engines on its own task and sends what they said as messages).

use super::Engine;
use super::supervisor::Task;
use crate::adapters::backend::ContainerBackend;
use crate::engine::workers::gpu::{self, Holder};

impl<B: ContainerBackend> Engine<B> {
    /// Tells the sampler which running containers hold GPUs; starts it on the first.
    pub(super) fn publish_gpu_holders(&mut self) {
        let holders = self.gpu_holders();
        if let Some(watch) = &self.gpu_watch {
            watch.send_if_modified(|old| {
                let changed = *old != holders;
                *old = holders;
                changed
            });
            return;
        }
        if holders.is_empty() {
            return;
        }
        let (watch, rx) = tokio::sync::watch::channel(holders);
        let work = gpu::sample(self.pool.clone(), rx, self.tx.clone());
        self.tasks.spawn(Task::GpuSampler, work);
        self.gpu_watch = Some(watch);
    }

    /// The running iterations of a run that asks for GPUs, with their containers and engines.
    fn gpu_holders(&self) -> Vec<Holder> {
        let (Some(r), Some(_)) = (self.state.run.as_ref(), self.state.gpu_request()) else {
            return Vec::new();
        };
        let first = self
            .pool
            .first()
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        self.state
            .running()
            .iter()
            .filter_map(|i| {
                Some(Holder {
                    run: r.id,
                    no: i.no,
                    engine: i.engine.clone().unwrap_or_else(|| first.clone()),
                    container: i.container.clone()?,
                })
            })
            .collect()
    }
}
