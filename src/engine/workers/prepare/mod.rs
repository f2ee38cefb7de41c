//! The preparation workers: export the commit, read its `mlops.toml`, decide the image, then build
//! or find it (job 2).

mod error;
mod image;
mod knobs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::adapters::git::Project;
use crate::adapters::images::times::BuildTimes;
use crate::core::config::{Config, EngineLimits};
use crate::core::ids::RunId;
use crate::core::knobs::Knobs;
use crate::core::model::{CommitInfo, ImageSpec};
use crate::support::data_policy::DataPolicy;
use crate::support::inside::{self, InsideError};

use crate::engine::msg::Msg;
use crate::engine::state::Stage;

use super::workspace;
pub use error::{ConfigReadError, PrepareError};
pub use image::{ImageError, choose_image};
pub use knobs::{KnobFileError, KnobsError, resolve_knobs};

/// Exports and reads the commit on a blocking thread (git2 and file reads), then checks its
/// `[resources]` against the engine's limits, so that no container is ever started that the engine
/// would refuse; answers `Prepared` or `StageFailed`.
pub async fn prepare<B: ContainerBackend>(
    backend: Arc<B>,
    project: Project,
    commit: CommitInfo,
    run: RunId,
    run_dir: PathBuf,
    policy: DataPolicy,
) -> Msg {
    let prepared = async {
        let prepared = tokio::task::spawn_blocking(move || {
            prepare_blocking(&project, &commit, &run_dir, &policy)
        })
        .await
        .map_err(PrepareError::joined)??;
        check_engine_limits(&*backend, &prepared).await?;
        Ok::<_, PrepareError>(prepared)
    };
    match prepared.await {
        Ok(prepared) => Msg::Prepared {
            run,
            config: Box::new(prepared.config),
            workspace: prepared.workspace,
            image_reason: prepared.image_reason,
            image: prepared.image,
            knobs: Box::new(prepared.knobs),
            warnings: prepared.warnings,
        },
        Err(e) => Msg::StageFailed {
            run,
            stage: e.stage(),
            error: e.to_string(),
        },
    }
}

/// The CPUs and memory of every engine of `pool` that answers within a few seconds, asked at once;
/// an engine that does not answer is left out (its slots stay as given).
pub async fn engine_limits<B: ContainerBackend>(
    pool: &[(String, Arc<B>)],
) -> Vec<(String, EngineLimits)> {
    const WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
    let asks = pool.iter().map(|(name, backend)| async move {
        match tokio::time::timeout(WITHIN, backend.limits()).await {
            Ok(Ok(limits)) => Some((name.clone(), limits)),
            _ => None,
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The configuration's resources fit the engine: an error names `mlops.toml`'s line for the key.
async fn check_engine_limits<B: ContainerBackend>(
    backend: &B,
    prepared: &Prepared,
) -> Result<(), PrepareError> {
    let limits = backend.limits().await.map_err(PrepareError::Limits)?;
    prepared
        .config
        .check_engine_limits(&prepared.text, &prepared.shown, limits)?;
    Ok(())
}

/// Makes the run's image available, forwarding the build's progress as it comes; answers
/// `ImageReady` or `StageFailed`. When the image had to be built (it printed progress), the build's
/// duration is recorded in `times` and the previous one is sent first as an estimate.
pub async fn build_image<B: ContainerBackend>(
    backend: Arc<B>,
    run: RunId,
    image: ImageSpec,
    times: BuildTimes,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let started = std::time::Instant::now();
    let key = image.label();
    let (progress, mut lines) = mpsc::unbounded_channel::<String>();
    let forward = async {
        let mut built = false;
        while let Some(line) = lines.recv().await {
            if !built {
                built = true;
                if let Some(last_build_ms) = times.last(&key) {
                    let _ = tx.send(Msg::ImageEstimate { run, last_build_ms });
                }
            }
            let _ = tx.send(Msg::ImageProgress { run, line });
        }
        built
    };
    // The build owns the progress sender: forwarding ends when the build does.
    let (result, built) = tokio::join!(backend.prepare_image(&image, progress), forward);
    if built && result.is_ok() {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = times.record(&key, ms) {
            tracing::warn!("cannot record the build time of {key}: {e}");
        }
    }
    let msg = match result {
        Ok(image) => Msg::ImageReady { run, image },
        Err(e) => Msg::StageFailed {
            run,
            stage: Stage::Image,
            error: e.to_string(),
        },
    };
    let _ = tx.send(msg);
}

/// A commit made ready to build: its configuration, where it was exported, the image and why, and
/// the configuration's text and the path it is shown under (for located errors).
struct Prepared {
    config: Config,
    workspace: PathBuf,
    image: ImageSpec,
    image_reason: String,
    text: String,
    shown: PathBuf,
    knobs: Knobs,
    warnings: Vec<String>,
}

fn prepare_blocking(
    project: &Project,
    commit: &CommitInfo,
    run_dir: &Path,
    policy: &DataPolicy,
) -> Result<Prepared, PrepareError> {
    let workspace = run_dir.join("workspace");
    if workspace.exists() {
        // A retried preparation starts from a clean export.
        std::fs::remove_dir_all(&workspace).map_err(|source| PrepareError::Clean {
            path: workspace.clone(),
            source,
        })?;
    }
    project.export(commit, &workspace)?;
    // Errors name the file as the user knows it (in their project), not the exported copy.
    let shown = project.dir.join(crate::core::config::FILE_NAME);
    let text = read_config(&workspace, &shown, commit, project)?;
    let config = Config::parse(&text, &shown)?;
    config.check_data_hosts(&text, &shown, |m| {
        let host = workspace::check_host(m).map_err(|e| e.to_string())?;
        policy.judge(&host)
    })?;
    let knobs = resolve_knobs(&config, &workspace, commit, (&text, &shown))?;
    let warnings = unread_parameters(&config, &workspace);
    let (image, image_reason) = choose_image(&config, &workspace)?;
    Ok(Prepared {
        config,
        workspace,
        image,
        image_reason,
        text,
        shown,
        knobs,
        warnings,
    })
}

/// The commit's `mlops.toml`, read from its export without following a link (a link committed as
/// `mlops.toml` would otherwise put a host file into the error messages).
fn read_config(
    workspace: &Path,
    shown: &Path,
    commit: &CommitInfo,
    project: &Project,
) -> Result<String, ConfigReadError> {
    let name = Path::new(crate::core::config::FILE_NAME);
    let shown = shown.to_path_buf();
    match inside::read_inside(workspace, name, MAX_SOURCE_BYTES) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| ConfigReadError::NotUtf8 {
            shown,
            at: e.utf8_error().valid_up_to(),
        }),
        Err(InsideError::Missing(_)) => Err(ConfigReadError::Missing {
            shown,
            commit: commit.short().to_string(),
            project: project.dir.clone(),
        }),
        Err(InsideError::Link(_)) => Err(ConfigReadError::Link {
            shown,
            commit: commit.short().to_string(),
        }),
        Err(source) => Err(ConfigReadError::Unreadable { shown, source }),
    }
}

/// Largest source file read for a knob (or `mlops.toml`): a training script is far smaller.
const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// Tweaked parameters that nothing in the tree reads (no binding, no `{name}` in the command, no
/// `params.json`), one warning each. A tree whose sources cannot be read gives no warning: the
/// warning is advice, and the run's real errors come from the steps that need the files.
fn unread_parameters(config: &Config, tree: &Path) -> Vec<String> {
    match crate::support::source_tree::read(tree) {
        Ok(files) => {
            let sources = files
                .sources()
                .into_iter()
                .map(|(p, text)| (p.to_string_lossy().replace('\\', "/"), text))
                .collect();
            crate::core::knobs::unread_dimensions(config, &sources)
        }
        Err(e) => {
            tracing::warn!("cannot read the sources to check for unread parameters: {e}");
            Vec::new()
        }
    }
}
