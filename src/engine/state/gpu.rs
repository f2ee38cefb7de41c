//! GPUs as slots: on an engine whose devices are known, a run that asks for GPUs places a trial only
//! where enough devices are free, and each trial holds its own until it is decided (see
//! [`crate::core::gpu`]).

use crate::core::gpu::{self, GpuRequest};

use super::PipelineState;

impl PipelineState {
    /// What the current run asks each trial for, if anything.
    pub fn gpu_request(&self) -> Option<&GpuRequest> {
        self.run.as_ref()?.config.as_ref()?.resources.gpus.as_ref()
    }

    /// The devices of engine `name`, when known (declared or read from the engine).
    pub fn engine_devices(&self, name: &str) -> Option<&[String]> {
        self.engine_gpus
            .get(name)
            .map(Vec::as_slice)
            .filter(|d| !d.is_empty())
    }

    /// The devices of engine `name` held by undecided trials.
    pub fn held_gpus(&self, name: &str) -> Vec<String> {
        self.active()
            .iter()
            .filter(|i| i.engine.as_deref() == Some(name))
            .flat_map(|i| i.gpus.iter().cloned())
            .collect()
    }

    /// How many more trials the free GPUs of engine `name` take; `None` when GPUs are not counted
    /// there (the run asks for none, or the engine's devices are not known).
    pub fn gpu_room(&self, name: &str) -> Option<u32> {
        let request = self.gpu_request()?;
        let all = self.engine_devices(name)?;
        Some(gpu::trials_that_fit(request, all, &self.held_gpus(name)))
    }

    /// The devices a new trial on engine `name` gets; empty when GPUs are not counted there.
    pub fn pick_gpus(&self, name: &str) -> Vec<String> {
        let (Some(request), Some(all)) = (self.gpu_request(), self.engine_devices(name)) else {
            return Vec::new();
        };
        gpu::pick(request, all, &self.held_gpus(name)).unwrap_or_default()
    }
}
