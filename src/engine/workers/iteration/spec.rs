//! The container an iteration trains in: its name, mounts, limits, environment and labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::adapters::backend::{TrainSpec, Transfer};
use crate::core::model::labels;
use crate::engine::workers::{notebook, workspace};
use crate::support::fsutil::Owner;

use super::Launch;

/// Labels that find this engine's containers again: the runs directory identifies the history store.
pub fn store_label(runs_dir: &Path) -> (String, String) {
    (labels::STORE.to_string(), runs_dir.display().to_string())
}

/// The container of the iteration `at` describes, run as `owner`, with the `[data]` mounts `data`
/// (canonical host paths and their targets).
pub(super) fn spec(at: &Launch<'_>, owner: Owner, data: Vec<(PathBuf, String)>) -> TrainSpec {
    let Launch {
        plan,
        workdir,
        project,
        run_dir,
        attempt,
    } = *at;
    let cfg = &plan.config;
    let params = serde_json::to_string(&plan.params).unwrap_or_else(|_| "{}".into());
    let threads = (cfg.resources.cpus.ceil() as i64).max(1).to_string();
    let slug: String = project
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 0x10000)
        .unwrap_or(0);
    let runs_dir = run_dir.parent().unwrap_or(run_dir);
    let (store_key, store_value) = store_label(runs_dir);
    let labels = BTreeMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (
            labels::PROJECT.to_string(),
            project.dir.display().to_string(),
        ),
        (labels::RUN.to_string(), plan.run.to_string()),
        (labels::ITERATION.to_string(), plan.no.to_string()),
        (store_key, store_value),
        (labels::ATTEMPT.to_string(), attempt.to_string()),
    ]);
    TrainSpec {
        name: format!("mlops-{slug}-r{}-i{}-{nonce:04x}", plan.run, plan.no),
        image: plan.image.clone(),
        command: notebook::container_command(cfg.render_command(&plan.params)),
        workspace: workdir.join(workspace::WORKSPACE_DIR),
        workdir: workdir.to_path_buf(),
        data,
        user: owner.spec(),
        env: vec![
            ("MLOPS_PARAMS".into(), params),
            ("MLOPS_DIR".into(), "/mlops".into()),
            ("MLOPS_RUN".into(), plan.run.to_string()),
            ("MLOPS_ITERATION".into(), plan.no.to_string()),
            ("MLOPS_ATTEMPT".into(), attempt.to_string()),
            ("MLOPS_CPUS".into(), threads.clone()),
            ("OMP_NUM_THREADS".into(), threads.clone()),
            ("OPENBLAS_NUM_THREADS".into(), threads),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("HOME".into(), "/tmp".into()),
        ],
        labels,
        memory_bytes: cfg.resources.memory.0,
        cpus: cfg.resources.cpus,
        pids: cfg.resources.pids,
        disk_bytes: cfg.resources.disk.0,
        transfer: Transfer::Bind,
        gpus: cfg.resources.gpus.clone(),
    }
}
