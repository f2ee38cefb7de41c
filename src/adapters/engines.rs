//! The engines trials run on, connected: one backend per configured engine, each with its slots.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::adapters::docker::{DockerBackend, SwarmBackend};
use crate::adapters::pool_backend::PoolBackend;
use crate::core::config::EngineSpec;

/// Engines in configuration order. Invariant: the first is the engine images are built on; the
/// others copy images from it.
pub struct Pool<B> {
    pub engines: Vec<PoolEngine<B>>,
}

/// One engine of a [`Pool`].
pub struct PoolEngine<B> {
    pub spec: EngineSpec,
    pub backend: Arc<B>,
}

impl<B> Pool<B> {
    /// The engine named `name`.
    pub fn get(&self, name: &str) -> Option<&PoolEngine<B>> {
        self.engines.iter().find(|e| e.spec.name == name)
    }

    /// Slots of all engines together: how many trials can run at once.
    pub fn slots(&self) -> u32 {
        self.engines.iter().map(|e| e.spec.slots).sum()
    }
}

/// Connects every engine of `specs` (an empty list means the local engine). The first Docker
/// engine is the image source of the others; a swarm whose list has no Docker engine before it takes
/// its images from this machine's engine (its manager builds nothing). For a Docker engine only
/// client set-up can fail here (a missing certificate, a bad address): one that does not answer yet
/// is found by `ping` and handled as an engine that is down. A swarm's manager must answer now, since
/// its API version is negotiated and its role checked before anything is sent to it.
pub async fn connect_all(specs: &[EngineSpec]) -> Result<Pool<PoolBackend>, BackendError> {
    let local = [EngineSpec::local_default()];
    let specs = if specs.is_empty() { &local[..] } else { specs };
    let mut engines: Vec<PoolEngine<PoolBackend>> = Vec::with_capacity(specs.len());
    let mut source: Option<Arc<DockerBackend>> = None;
    for spec in specs {
        let backend = if spec.swarm_registry().is_some() {
            let images = match &source {
                Some(s) => Arc::clone(s),
                None => Arc::new(DockerBackend::connect_default()?),
            };
            let swarm = tokio::time::timeout(FIRST_ANSWER, SwarmBackend::connect(spec, Some(images)))
                .await
                .map_err(|_| BackendError::Unavailable {
                    endpoint: spec.url(),
                    message: format!(
                        "the swarm manager of engine {} did not answer in {}s: check that dockerd runs there, or fix `host`",
                        spec.name,
                        FIRST_ANSWER.as_secs()
                    ),
                })??;
            PoolBackend::Swarm(swarm)
        } else {
            let backend = DockerBackend::connect(spec)?;
            match &source {
                Some(first) => PoolBackend::Docker(backend.with_image_source(Arc::clone(first))),
                None => {
                    // The image source is a second client of the same engine (clients are cheap).
                    source = Some(Arc::new(DockerBackend::connect(spec)?));
                    PoolBackend::Docker(backend)
                }
            }
        };
        engines.push(PoolEngine {
            spec: spec.clone(),
            backend: Arc::new(backend),
        });
    }
    Ok(Pool { engines })
}

/// How long a one-shot run (`run --once`) waits at start for an engine's first answer. The client's
/// own limit is minutes per call and the engine would retry forever: a script or CI job must learn
/// within a bounded time that the engine it named is not there.
pub const FIRST_ANSWER: Duration = Duration::from_secs(30);

/// Asks every backend at once whether it answers within `within`. Answers, for each one that did
/// not, its position in `backends` and why: the engine's own error (refused, no such socket), or
/// `None` when it stayed silent (a listener that accepts and never replies, a host that dropped
/// the packets).
pub async fn unanswered<B: ContainerBackend>(
    backends: &[Arc<B>],
    within: Duration,
) -> Vec<(usize, Option<String>)> {
    let pings = backends
        .iter()
        .map(|b| tokio::time::timeout(within, b.ping()));
    futures_util::future::join_all(pings)
        .await
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some((i, Some(e.to_string()))),
            Err(_) => Some((i, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::adapters::backend::ContainerBackend;

    #[test]
    fn slots_add_up_and_only_local_engines_share_the_disk() {
        // bollard checks that a unix socket exists; nothing is sent to it here.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let specs = [
            EngineSpec::parse_flag(&format!("here=unix://{},slots=2", sock.display())).unwrap(),
            EngineSpec::parse_flag("far=ssh://me@far,slots=3").unwrap(),
        ];
        let pool = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(connect_all(&specs))
            .unwrap();
        assert_eq!(pool.slots(), 5);
        assert!(pool.engines[0].backend.shares_disk());
        assert!(!pool.get("far").unwrap().backend.shares_disk());
        assert!(pool.get("gone").is_none());
    }
}
