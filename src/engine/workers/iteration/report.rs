//! What an iteration left when its container ended: the output's digest, the model file, the value
//! of `metric.file`.

use crate::engine::msg::{ExitReport, IterationPlan};
use crate::engine::workers::{keep, workspace};

use super::{Follow, LifeEnd};

/// Files a silent script wrote that its failure's reason names, at most.
const WRITTEN_SHOWN: usize = 6;

/// What the iteration left when its container ended: the output's digest always; after a clean
/// exit also the model file written next to the script (when `/mlops/model/` is empty) and the
/// value of `metric.file`, whose absence or garbage fails the iteration (set as `end`'s cause).
pub(super) async fn exit_report(plan: &IterationPlan, f: &Follow, end: &mut LifeEnd) -> ExitReport {
    let output_hash = Some(std::hash::Hasher::finish(&f.digest));
    let clean = end.cause.is_none() && end.status.is_some_and(|s| s.code == 0 && !s.oom_killed);
    if !clean {
        return ExitReport {
            output_hash,
            ..ExitReport::default()
        };
    }
    let (workdir, pristine, config) = (
        f.workdir.clone(),
        plan.workspace.clone(),
        plan.config.clone(),
    );
    let silent = f.last.is_none();
    let read = tokio::task::spawn_blocking(move || {
        let ws = workdir.join(workspace::WORKSPACE_DIR);
        let empty = workspace::model_dir_empty(&workdir);
        let model = empty
            .then(|| workspace::model_written(&ws, &pristine))
            .flatten();
        let no_model = empty && model.is_none();
        let metric = workspace::read_metric_file(&config, &workdir);
        let scored = matches!(metric, Some(Ok(_)));
        let written = match silent && !scored {
            true => keep::written(&ws, &pristine, WRITTEN_SHOWN),
            false => Vec::new(),
        };
        (model, no_model, metric, written)
    })
    .await;
    let Ok((model, no_model, metric, written)) = read else {
        return ExitReport {
            output_hash,
            ..ExitReport::default()
        };
    };
    let metric_file = match metric {
        Some(Ok(v)) => plan.config.metric.file.clone().map(|file| (file, v)),
        Some(Err(why)) => {
            let wrote = crate::core::config::keep::wrote_note(&plan.config.train.keep, &written);
            end.cause = Some(format!("{why}; {wrote}"));
            None
        }
        None => None,
    };
    ExitReport {
        model,
        no_model,
        output_hash,
        metric_file,
        over_disk: None,
        written,
    }
}
