//! The engines trials run on, connected: one backend per configured engine, each with its slots.

use std::sync::Arc;

use crate::adapters::backend::BackendError;
use crate::adapters::docker::DockerBackend;
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

/// Connects every engine of `specs` (an empty list means the local engine). The first is the image
/// source of the others. Only client set-up can fail here (a missing certificate, a bad address);
/// an engine that does not answer yet is found by `ping` and handled as an engine that is down.
pub fn connect_all(specs: &[EngineSpec]) -> Result<Pool<DockerBackend>, BackendError> {
    let local = [EngineSpec::local_default()];
    let specs = if specs.is_empty() { &local[..] } else { specs };
    let mut engines: Vec<PoolEngine<DockerBackend>> = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut backend = DockerBackend::connect(spec)?;
        if let Some(first) = engines.first() {
            backend = backend.with_image_source(Arc::clone(&first.backend));
        }
        engines.push(PoolEngine {
            spec: spec.clone(),
            backend: Arc::new(backend),
        });
    }
    Ok(Pool { engines })
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
        let pool = connect_all(&specs).unwrap();
        assert_eq!(pool.slots(), 5);
        assert!(pool.engines[0].backend.shares_disk());
        assert!(!pool.get("far").unwrap().backend.shares_disk());
        assert!(pool.get("gone").is_none());
    }
}
