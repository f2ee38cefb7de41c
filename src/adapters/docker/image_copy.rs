//! Copying an image between engines: `docker save` on the source streamed straight into `docker load`
//! here. Nothing is pulled from a registry and nothing is buffered whole: the export's chunks are the
//! import's body, so memory stays at a few chunks whatever the image's size.
//!
//! Measured on the test engines (tests/engines/up.sh: same machine, TLS over a veth pair,
//! fuse-overlayfs on both sides, 2 shared cores): the numpy profile image (1.53 GB as exported) copied
//! local → e2 in 73 s, about 21 MB/s, most of it the engines' own work (layer tar and untar); the base
//! image (171 MB) in 10 s. Building the numpy image takes minutes and needs the Debian mirror and the
//! Python package registry, which a remote engine may not reach. Rerun with
//! `cargo test --test engines_real -- --ignored --nocapture numpy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bollard::query_parameters::ImportImageOptionsBuilder;
use futures_util::StreamExt;

use super::DockerBackend;
use crate::adapters::backend::{BackendError, Progress};

/// One copy at a time per process: two trials asking for the same image copy it once.
static COPY_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes between two progress lines.
const REPORT_EVERY: u64 = 100 * 1024 * 1024;

impl DockerBackend {
    /// Makes `tag` present here, copying it from `source` when missing.
    pub(super) async fn copy_image_from(
        &self,
        source: &DockerBackend,
        tag: &str,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        if self.image_present(tag).await? {
            return Ok(());
        }
        let _guard = COPY_LOCK.lock().await;
        if self.image_present(tag).await? {
            return Ok(());
        }
        let _ = progress.send(format!(
            "copying image {tag} from engine {} to engine {} (export, import)",
            source.name, self.name
        ));
        let started = Instant::now();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&sent);
        let report = progress.clone();
        let export = source.docker.export_image(tag).map(move |chunk| {
            if let Ok(c) = &chunk {
                let before = counted.fetch_add(c.len() as u64, Ordering::Relaxed);
                if (before + c.len() as u64) / REPORT_EVERY > before / REPORT_EVERY {
                    let _ = report.send(format!("copied {} MB", (before + c.len() as u64) >> 20));
                }
            }
            chunk
        });
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut import = self.docker.import_image_stream(options, export, None);
        let fail = |message: String| BackendError::Image {
            image: tag.into(),
            message,
        };
        while let Some(item) = import.next().await {
            let info =
                item.map_err(|e| fail(format!("copy from engine {} failed: {e}", source.name)))?;
            if let Some(detail) = info.error_detail {
                return Err(fail(format!(
                    "copy from engine {} failed: {}",
                    source.name,
                    detail.message.unwrap_or_default()
                )));
            }
        }
        if !self.image_present(tag).await? {
            return Err(fail(format!(
                "copy from engine {} ended without the image",
                source.name
            )));
        }
        let _ = progress.send(format!(
            "copied image {tag} ({} MB) in {:.1} s",
            sent.load(Ordering::Relaxed) >> 20,
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}
