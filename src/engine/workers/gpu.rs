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
