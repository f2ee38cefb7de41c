//! The iteration's disk quota: its directory on the host (`/mlops`, with the iteration's workspace
//! mounted at `/workspace` inside it) outlives the run, so what a script writes there is measured
//! while its container runs, and too much stops it (`resources.disk`). The workspace's copy of the
//! commit counts too.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::core::units::ByteSize;
use crate::support::fsutil;

/// How often `/mlops` is measured while the container runs.
pub const DISK_INTERVAL: Duration = Duration::from_secs(1);

/// Resolves, with the reason the container is stopped, once the files under `dir` hold more than
/// `limit`; never otherwise. Measures every [`DISK_INTERVAL`] on a blocking thread, one walk at a
/// time, so a slow walk delays the next one instead of piling up.
pub async fn over_quota(dir: PathBuf, limit: ByteSize) -> String {
    let mut every = tokio::time::interval(DISK_INTERVAL);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let d = dir.clone();
        let size = tokio::task::spawn_blocking(move || fsutil::tree_size(&d))
            .await
            .unwrap_or(0);
        if size > limit.0 {
            return quota_reason(size, limit);
        }
    }
}

/// "wrote 2.1 GiB into /mlops and /workspace, over the limit resources.disk = 2g: stopped"
fn quota_reason(size: u64, limit: ByteSize) -> String {
    format!(
        "wrote {} into /mlops and /workspace, over the limit resources.disk = {limit}: stopped",
        ByteSize(size).approx()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_says_how_much_and_which_setting() {
        assert_eq!(
            quota_reason(2_254_857_830, ByteSize(2 << 30)),
            "wrote 2.1 GiB into /mlops and /workspace, over the limit resources.disk = 2g: stopped"
        );
    }

    #[tokio::test]
    async fn resolves_once_the_directory_is_over_the_limit() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("small"), vec![0u8; 100]).unwrap();
        let watch = over_quota(d.path().to_path_buf(), ByteSize(1000));
        tokio::pin!(watch);
        let early = tokio::time::timeout(Duration::from_millis(1500), &mut watch).await;
        assert!(early.is_err(), "under the limit: {early:?}");
        std::fs::create_dir(d.path().join("model")).unwrap();
        std::fs::write(d.path().join("model/big"), vec![0u8; 1948]).unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(3), watch)
            .await
            .unwrap();
        assert_eq!(
            reason,
            "wrote 2 KiB into /mlops and /workspace, over the limit resources.disk = 1000: stopped"
        );
    }
}
