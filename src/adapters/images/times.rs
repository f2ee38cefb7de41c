//! How long the last build of each image took, so that the next build can say how long it will take.
//! Kept in a small JSON object (`{"numpy": 470000}`, milliseconds by image name) beside the history
//! database; losing it only loses the estimate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::fsutil::write_atomic;

/// File name of the record, in the data directory.
pub const FILE_NAME: &str = "image-builds.json";

/// The record of build durations. Invariant: written whole (atomically), never partially.
#[derive(Debug, Clone)]
pub struct BuildTimes {
    path: PathBuf,
}

impl BuildTimes {
    /// The record in the data directory `data`.
    pub fn in_dir(data: &Path) -> BuildTimes {
        BuildTimes {
            path: data.join(FILE_NAME),
        }
    }

    /// How long the last finished build of `image` took; `None` when there is none or the file is
    /// unreadable (an estimate is never worth failing a build for).
    pub fn last(&self, image: &str) -> Option<u64> {
        self.read().get(image).copied()
    }

    /// Remembers that a build of `image` took `ms`.
    pub fn record(&self, image: &str, ms: u64) -> std::io::Result<()> {
        let mut all = self.read();
        all.insert(image.to_string(), ms);
        let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(&self.path, &text)
    }

    fn read(&self) -> BTreeMap<String, u64> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_build_time_is_read_back_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let times = BuildTimes::in_dir(dir.path());
        assert_eq!(times.last("numpy"), None);
        times.record("numpy", 470_000).unwrap();
        times.record("torch", 900_000).unwrap();
        times.record("numpy", 460_000).unwrap();
        assert_eq!(times.last("numpy"), Some(460_000));
        assert_eq!(BuildTimes::in_dir(dir.path()).last("torch"), Some(900_000));
    }

    #[test]
    fn a_damaged_record_is_no_estimate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        assert_eq!(BuildTimes::in_dir(dir.path()).last("numpy"), None);
    }
}
