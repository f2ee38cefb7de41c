//! `/mlops` on the host: the iteration's directory and the `params.json` the script reads.

use std::path::Path;

use crate::engine::msg::IterationPlan;
use crate::engine::workers::notebook;
use crate::support::fsutil::{self, Owner};

/// `/mlops` on the host: `params.json`, `checkpoints/`, `model/`, private to the container's user
/// (see [`Owner::for_container`]). Answers who the container runs as.
pub(super) fn prepare_workdir(workdir: &Path, plan: &IterationPlan) -> std::io::Result<Owner> {
    std::fs::create_dir_all(workdir)?;
    let owner = Owner::for_container(workdir)?;
    write_params(workdir, plan)?;
    notebook::install(workdir, &plan.config.train.command)?;
    for dir in [workdir.join("checkpoints"), workdir.join("model")] {
        fsutil::make_private_dir(&dir, owner)?;
    }
    fsutil::make_private_dir(workdir, owner)?;
    Ok(owner)
}

/// The parameters file the script reads, under the iteration's `/mlops`.
pub(super) const PARAMS_FILE: &str = "params.json";

/// Writes `params.json` from the plan (which holds the recorded parameters), atomically. Done before
/// every life of the container: the script may have damaged the file, and a revival must see exactly
/// the parameters the history says this iteration tried.
pub(super) fn write_params(workdir: &Path, plan: &IterationPlan) -> std::io::Result<()> {
    let params = serde_json::to_vec_pretty(&plan.params).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&workdir.join(PARAMS_FILE), &params)
}

/// `runs/N/iter-K.attempt`, beside `runs/N/iter-K/` (out of the container's reach): the newest
/// attempt of the iteration. It fences the iteration's directory: a worker of an older attempt (one
/// aborted while copying, say) must not write checkpoints there any more.
fn attempt_path(workdir: &Path) -> std::path::PathBuf {
    let name = workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    workdir.with_file_name(format!("{name}.attempt"))
}

/// The newest attempt recorded for the iteration; 0 when none was.
pub(super) fn attempt(workdir: &Path) -> u32 {
    std::fs::read_to_string(attempt_path(workdir))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Records `attempt` as the iteration's newest.
pub(super) fn set_attempt(workdir: &Path, attempt: u32) -> std::io::Result<()> {
    fsutil::write_atomic(&attempt_path(workdir), attempt.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_attempt_is_kept_beside_the_iteration_directory() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = dir.path().join("iter-3");
        std::fs::create_dir_all(&workdir).unwrap();
        assert_eq!(super::attempt(&workdir), 0);
        super::set_attempt(&workdir, 2).unwrap();
        assert_eq!(super::attempt(&workdir), 2);
        assert!(dir.path().join("iter-3.attempt").is_file());
        assert!(!workdir.join("iter-3.attempt").exists());
    }
}
