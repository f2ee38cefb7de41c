//! What a trial's GPUs are doing, as sampled in its container.

/// One GPU as `nvidia-smi` in a container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSample {
    /// The device id (`0`).
    pub device: String,
    pub utilization_pct: u32,
    pub memory_used_mib: u64,
    pub memory_total_mib: u64,
}
