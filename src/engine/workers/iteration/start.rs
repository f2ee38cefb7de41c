//! Taking up an iteration: its directory prepared, its tree committed and exported as its workspace,
//! then its container created and started (bind mounts, or an archive upload to an engine that
//! does not share our disk).

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::adapters::backend::{BackendError, ContainerBackend, Transfer};
use crate::adapters::git::Project;
use crate::core::ids::ContainerId;
use crate::engine::msg::{IterationPlan, Kept, Msg};
use crate::engine::workers::keep;
use crate::engine::workers::workspace::{self, DataError, WorkspaceError};
use crate::support::fsutil::Owner;

use super::{Launch, spec, workdir};

/// Why an iteration's container could not be started. The text is the iteration's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare {}: {source}", dir.display())]
    Prepare {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("preparing the workspace failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Data(#[from] DataError),
    /// The engine does not have the run's image, and it could not be copied there.
    #[error("image {image} is not on {endpoint}: {source}")]
    Image {
        image: String,
        endpoint: String,
        source: BackendError,
    },
    #[error("could not start the container: {0}")]
    Start(#[from] BackendError),
}

/// Prepares the iteration's directory, commits its tree and fills its workspace (saying so on
/// `tx`), then starts its container.
pub(super) async fn start<B: ContainerBackend + ?Sized>(
    backend: &B,
    at: &Launch<'_>,
    tx: &mpsc::UnboundedSender<Msg>,
) -> Result<ContainerId, StartError> {
    let plan = at.plan;
    let owner = prepare(at)?;
    let made = {
        let (project, plan, workdir) = (at.project.clone(), plan.clone(), at.workdir.to_path_buf());
        tokio::task::spawn_blocking(move || make_workspace(&project, &plan, &workdir, owner))
            .await??
    };
    let _ = tx.send(Msg::Committed {
        run: plan.run,
        no: plan.no,
        commit: made.commit,
    });
    if let (Some(keep), Some(kept)) = (&plan.keep, made.kept) {
        let _ = tx.send(Msg::Kept {
            run: plan.run,
            no: plan.no,
            keep: keep.clone(),
            kept,
        });
    }
    launch(backend, at, owner).await
}

/// Starts the iteration's container from its directory as it is (a move to another engine): no new
/// commit and no new workspace; `params.json` is rewritten and the checkpoints are kept.
pub(super) async fn start_again<B: ContainerBackend + ?Sized>(
    backend: &B,
    at: &Launch<'_>,
) -> Result<ContainerId, StartError> {
    let owner = prepare(at)?;
    let aside = OutputAside::take(at.workdir);
    let started = launch(backend, at, owner).await;
    aside.restore();
    started
}

/// `output.log` moved out of the iteration's directory while a new container is given that
/// directory: it is this machine's record of the output, not the script's. Shipped to an engine that
/// does not share our disk, its copy would come home with the container's files at the end and
/// replace the record written since. Renamed, not copied: the worker's open handle goes on writing
/// to the same file.
struct OutputAside(Option<(PathBuf, PathBuf)>);

impl OutputAside {
    fn take(workdir: &Path) -> OutputAside {
        let from = workdir.join(crate::engine::workers::output::OUTPUT_FILE);
        let name = workdir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = workdir.with_file_name(format!("{name}.output-aside"));
        OutputAside(std::fs::rename(&from, &to).ok().map(|()| (from, to)))
    }

    /// Puts `output.log` back; a failure is logged (the record then stays beside the directory).
    fn restore(self) {
        if let Some((from, to)) = self.0 {
            if let Err(e) = std::fs::rename(&to, &from) {
                tracing::warn!("cannot put {} back: {e}", from.display());
            }
        }
    }
}

/// [`workdir::prepare_workdir`], its failure named.
fn prepare(at: &Launch<'_>) -> Result<Owner, StartError> {
    workdir::prepare_workdir(at.workdir, at.plan).map_err(|source| StartError::Prepare {
        dir: at.workdir.to_path_buf(),
        source,
    })
}

/// Makes the run's image (built on the first engine) present on a remote engine: copied from the
/// first engine by export/import when missing, never pulled. The copy's progress goes to the log.
async fn image_here<B: ContainerBackend + ?Sized>(
    backend: &B,
    image: &str,
) -> Result<(), StartError> {
    let (progress, mut lines) = mpsc::unbounded_channel::<String>();
    let spec = crate::core::model::ImageSpec::Reference(image.to_string());
    let log = async {
        while let Some(line) = lines.recv().await {
            tracing::info!("{}: {line}", backend.endpoint());
        }
    };
    let (copied, ()) = tokio::join!(
        async move { backend.prepare_image(&spec, progress).await },
        log
    );
    copied.map(|_| ()).map_err(|source| StartError::Image {
        image: image.to_string(),
        endpoint: backend.endpoint(),
        source,
    })
}

/// Creates and starts the container on `backend`: bind mounts on an engine that shares our disk,
/// archive upload on one that does not.
async fn launch<B: ContainerBackend + ?Sized>(
    backend: &B,
    at: &Launch<'_>,
    owner: Owner,
) -> Result<ContainerId, StartError> {
    let data = workspace::data_mounts(&at.plan.config)?;
    let mut spec = spec::spec(at, owner, data);
    if backend.shares_disk() {
        return Ok(backend.start(spec).await?);
    }
    spec.transfer = Transfer::Archive;
    // The image is asked for only when the start fails: the first engine, its source, may be the
    // engine that was lost.
    match backend.start(spec.clone()).await {
        Ok(id) => return Ok(id),
        // A set-up fault (a registry that does not answer, a spec the swarm refuses) would only
        // be met again.
        Err(e) if crate::core::triage::start_failure(&e.to_string()).is_some() => {
            return Err(e.into());
        }
        Err(_) => {}
    }
    image_here(backend, &at.plan.image).await?;
    Ok(backend.start(spec).await?)
}

/// What [`make_workspace`] made: the iteration's commit (`None` outside git) and what `[train]
/// keep` carried into it.
struct Made {
    commit: Option<String>,
    kept: Option<Kept>,
}

/// Commits the iteration's tree and exports it as the iteration's own workspace, replacing what a
/// failed earlier attempt left, then copies over it what `[train] keep` carries from an earlier
/// iteration. Blocking (git2 and file copies).
fn make_workspace(
    project: &Project,
    plan: &IterationPlan,
    workdir: &Path,
    owner: Owner,
) -> Result<Made, WorkspaceError> {
    let commit = workspace::commit_iteration(project, plan)?;
    let dest = workdir.join(workspace::WORKSPACE_DIR);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|source| WorkspaceError::Io {
            path: dest.clone(),
            source,
        })?;
    }
    workspace::fill_workspace(project, plan, commit.as_deref(), &dest, owner)?;
    let run_dir = workdir.parent().unwrap_or(workdir);
    let kept = plan
        .keep
        .as_ref()
        .map(|k| keep::carry(k, run_dir, &dest, owner));
    Ok(Made { commit, kept })
}
