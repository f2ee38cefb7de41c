//! Copies home from an engine that does not share our disk: the checkpoints after each reported
//! epoch, and all of `/mlops` and `/workspace` at the end of a life.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::engine::msg::{Level, Msg};
use crate::engine::workers::disk;

use super::Follow;

/// Where an engine that does not share our disk keeps the iteration's checkpoints.
const CHECKPOINTS: &str = "/mlops/checkpoints";

/// The least time between two checkpoint copies of one trial. A copy is an archive download that
/// costs the engine a tar of the directory (≈0.2–0.4 s here): a script reporting many short epochs a
/// second would otherwise keep the engine busy copying and hold its own log reader back behind the
/// copies. Epochs slower than this are each copied; at worst a moved trial repeats this much work.
const COPY_SPACING: Duration = Duration::from_secs(5);

/// After a newly reported epoch on a remote engine, copies `/mlops/checkpoints` home (at most once
/// per [`COPY_SPACING`]), so that a trial can resume elsewhere from it if the engine is lost. The
/// script checkpoints an epoch after reporting it: the copy holds at least the epoch before. A failed
/// copy is only logged (the next epoch tries again); the end of the container's life copies all of
/// `/mlops` home anyway.
pub(super) async fn copy_checkpoints<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &mut Follow,
) {
    let epoch = f.last.as_ref().and_then(|o| o.epoch);
    if !f.remote || epoch.is_none() || epoch <= f.copied_epoch {
        return;
    }
    if f.copied_at.is_some_and(|at| at.elapsed() < COPY_SPACING) {
        return;
    }
    f.copied_at = Some(Instant::now());
    if copy(backend, id, f).await {
        f.copied_epoch = epoch;
    }
}

/// The attempt's host is lost: the newest checkpoints that left it while it ran come home now,
/// whatever the spacing, since a new attempt resumes from them.
pub(super) async fn copy_last<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &mut Follow,
) {
    if f.remote {
        copy(backend, id, f).await;
    }
}

/// Copies `/mlops/checkpoints` home unless a newer attempt of the iteration owns the directory
/// (fenced off). True when copied.
async fn copy<B: ContainerBackend + ?Sized>(backend: &B, id: &ContainerId, f: &mut Follow) -> bool {
    if fenced_off(f) {
        return false;
    }
    let to = f.workdir.join("checkpoints");
    let cap = disk::checkpoint_cap(&f.workdir, f.disk_limit).await;
    match backend.copy_out(id, CHECKPOINTS, &to, cap).await {
        Ok(copied) => {
            if let Some((path, size)) = copied.left {
                let why = disk::left_behind(CHECKPOINTS, &path, size, f.disk_limit);
                tracing::warn!("iteration {}/{}: {why}", f.run, f.no);
            }
            true
        }
        Err(e) => {
            tracing::warn!(
                "iteration {}/{}: copying checkpoints home: {e}",
                f.run,
                f.no
            );
            false
        }
    }
}

/// Whether a newer attempt of the iteration was recorded than the one `f` follows: the older
/// attempt no longer writes the iteration's checkpoints.
fn fenced_off(f: &Follow) -> bool {
    let newest = super::workdir::attempt(&f.workdir);
    if newest <= f.attempt {
        return false;
    }
    tracing::warn!(
        "iteration {}/{}: attempt {} fenced off by attempt {newest}: its checkpoints stay out",
        f.run,
        f.no,
        f.attempt
    );
    true
}

/// At the end of a life on a remote engine, copies `/mlops` and `/workspace` home into the
/// iteration's directory, so that model detection, `metric.file` and `best.json` read host copies
/// exactly as with bind mounts; at most `[resources] disk` (see [`disk::bring_home`]).
pub(super) async fn bring_home<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &Follow,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    if !f.remote {
        return;
    }
    for text in disk::bring_home(backend, id, &f.workdir, f.disk_limit).await {
        let _ = tx.send(Msg::Notice {
            tag: format!("train:{}", f.no),
            text,
            level: Level::Warn,
        });
    }
}
