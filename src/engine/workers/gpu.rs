//! GPUs before the first container: a run that asks for GPUs has every engine of the pool start a
//! probe container with the same device request. An engine that refuses (no GPU runtime), or that
//! has fewer GPUs than asked, fails the run at preparation, naming the engine and the fix; nothing
//! is retried and no trial ever trains on the CPU instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::adapters::backend::ContainerBackend;
use crate::core::gpu;
use crate::engine::msg::Msg;
use crate::engine::state::Stage;

/// Checks a `Prepared` answer's GPUs on every engine of `pool` (at once); `declared` are the device
/// ids of engines whose GPUs were declared. Returns what to send: the devices found, then `msg`, or
/// the failure instead of `msg`. Any other answer, or a run without GPUs, passes unchanged.
pub async fn probe<B: ContainerBackend>(
    pool: &[(String, Arc<B>)],
    declared: &BTreeMap<String, Vec<String>>,
    msg: Msg,
) -> Vec<Msg> {
    let Msg::Prepared { run, config, .. } = &msg else {
        return vec![msg];
    };
    let Some(request) = config.resources.gpus.clone() else {
        return vec![msg];
    };
    let run = *run;
    let asks = pool.iter().map(|(name, backend)| {
        let request = request.clone();
        async move { (name.clone(), backend.probe_gpus(&request).await) }
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut found = Vec::new();
    for (name, answer) in answers {
        let devices = match answer {
            Ok(devices) => devices,
            Err(e) => return vec![failed(run, format!("engine {name}: {e}"))],
        };
        let known = declared.get(&name).filter(|d| !d.is_empty());
        if let Some(all) = known.or((!devices.is_empty()).then_some(&devices))
            && let Err(why) = gpu::check_engine(&name, &request, all)
        {
            return vec![failed(run, why)];
        }
        found.push((name, devices));
    }
    vec![
        Msg::GpusFound {
            run,
            engines: found,
        },
        msg,
    ]
}

fn failed(run: crate::core::ids::RunId, error: String) -> Msg {
    Msg::StageFailed {
        run,
        stage: Stage::Detect,
        error: format!("[resources] gpus cannot be honoured: {error}"),
    }
}

/// How often the GPUs of running trials are sampled.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A running trial's container that holds GPUs, on its engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run: crate::core::ids::RunId,
    pub no: crate::core::ids::IterationNo,
    pub engine: String,
    pub container: crate::core::ids::ContainerId,
}

/// Every [`SAMPLE_EVERY`], asks the engine of each container `holders` names for its GPUs'
/// utilisation and memory (`nvidia-smi` in the container) and sends what it said. Slow or failing
/// answers are skipped: a sample is a hint, never a reason to stop anything. Ends when `holders`
/// is dropped.
pub async fn sample<B: ContainerBackend>(
    pool: Vec<(String, Arc<B>)>,
    mut holders: tokio::sync::watch::Receiver<Vec<Holder>>,
    tx: tokio::sync::mpsc::UnboundedSender<Msg>,
) {
    const WITHIN: std::time::Duration = std::time::Duration::from_secs(4);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = holders.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let now = holders.borrow().clone();
        for h in now {
            let Some((_, backend)) = pool.iter().find(|(n, _)| *n == h.engine) else {
                continue;
            };
            let asked = tokio::time::timeout(WITHIN, backend.gpu_usage(&h.container)).await;
            if let Ok(Ok(samples)) = asked
                && !samples.is_empty()
            {
                let msg = Msg::GpuUsage {
                    run: h.run,
                    no: h.no,
                    samples,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        }
    }
}
