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
