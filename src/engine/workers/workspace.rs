//! An iteration's writable workspace and what is read from it when the container exits.
//!
//! Each iteration trains in `runs/<run>/iter-K/workspace/`, its own copy of its commit's tree
//! (the run's commit with the iteration's source patch), mounted read-write at `/workspace`, as in a
//! Jenkins workspace: what the script writes next to itself stays with the iteration, and a revival
//! finds it again. The commit itself (the `refs/mlops/run-N/iter-K` ref) stays pristine. The
//! workspace lies inside the iteration's directory, so the disk quota measures it too.
//!
//! Also here: `[data]` host paths (resolved and checked), the model file a script saved next to
//! itself, and `metric.file`.

use std::path::{Path, PathBuf};

use crate::adapters::git::{Project, RepoError, iteration_ref};
use crate::core::config::{Config, DataMount};
use crate::core::ids::IterationNo;
use crate::core::knobs::Patch;
use crate::core::metrics::MetricParser;
use crate::support::fsutil::Owner;
use crate::support::inside::InsideError;

use crate::engine::msg::IterationPlan;

/// The directory of the iteration's workspace inside its own directory.
pub const WORKSPACE_DIR: &str = "workspace";

/// Extensions of files that hold a trained model, for the frameworks people use.
pub use crate::core::config::keep::MODEL_EXTENSIONS;

/// Why an iteration's tree could not be recorded or its workspace filled.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("cannot record iteration {no} as a commit: {source}")]
    Commit { no: IterationNo, source: RepoError },
    #[error(transparent)]
    Export(#[from] RepoError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why `metric.file` gave no value after a clean exit. `shown` is the file as the container sees it.
#[derive(Debug, thiserror::Error)]
pub enum MetricFileError {
    #[error("the script ended without writing metric.file {shown} (on the host: {})", path.display())]
    Missing { shown: String, path: PathBuf },
    #[error(
        "metric.file {shown} is not read: {} is a symbolic link, which mlops-tui never follows; \
         write the value into a plain file",
        link.display()
    )]
    Link { shown: String, link: PathBuf },
    #[error("cannot read metric.file {shown}: {source}")]
    Unreadable { shown: String, source: InsideError },
    /// `first` is the file's first line (80 characters at most); `hint` a guess at the mistake.
    #[error(
        "metric.file {shown} holds no number for `{name}` (it starts with \"{first}\"){hint}: write \
         a bare number with a decimal point, or `{name}=0.93`"
    )]
    NoNumber {
        shown: String,
        name: String,
        first: String,
        hint: &'static str,
    },
}

/// Why a `[data]` host path cannot be mounted.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("`~` cannot be expanded: HOME is not set")]
    NoHome,
    #[error("{} does not exist: create it, or fix `host`", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the whole file system (/) cannot be mounted: name the data's directory")]
    Root,
    #[error(
        "{} is or holds the Docker socket {}: a container must never reach the engine",
        host.display(),
        socket.display()
    )]
    Socket { host: PathBuf, socket: PathBuf },
    #[error("{} is a socket, not data", host.display())]
    NotData { host: PathBuf },
    /// The entry of `[data]` the error is about.
    #[error("[data] {name}: {source}")]
    Entry {
        name: String,
        source: Box<DataError>,
    },
}

/// The commit of the iteration's tree: the run's commit with the plan's patch, recorded under
/// [`iteration_ref`]. `None` for a project outside git (nothing to commit into).
pub fn commit_iteration(
    project: &Project,
    plan: &IterationPlan,
) -> Result<Option<String>, WorkspaceError> {
    if project.repo_root.is_none() || plan.commit == crate::core::model::WORKING_TREE {
        return Ok(None);
    }
    let refname = iteration_ref(plan.run.0, plan.no.0);
    let message = format!(
        "mlops-tui run {} iteration {}: {}",
        plan.run, plan.no, plan.change
    );
    project
        .commit_patch(&plan.commit, &plan.patch, &refname, &message)
        .map(Some)
        .map_err(|source| WorkspaceError::Commit {
            no: plan.no,
            source,
        })
}

/// Fills `dest` (absent or empty) with the iteration's tree: the export of `commit` when there is
/// one, otherwise the run's export with the patch written over it. Then hands it to `owner`.
pub fn fill_workspace(
    project: &Project,
    plan: &IterationPlan,
    commit: Option<&str>,
    dest: &Path,
    owner: Owner,
) -> Result<(), WorkspaceError> {
    let io = |source| WorkspaceError::Io {
        path: dest.to_path_buf(),
        source,
    };
    match commit {
        Some(id) => project.export_id(id, dest)?,
        None => {
            copy_tree(&plan.workspace, dest).map_err(io)?;
            write_patch(&plan.patch, dest).map_err(io)?;
        }
    }
    hand_over(dest, owner).map_err(io)
}

/// Writes each patched file over its copy in `dest`, replacing the file rather than writing
/// through a link, and never below a linked directory.
fn write_patch(patch: &Patch, dest: &Path) -> std::io::Result<()> {
    for (file, text) in &patch.files {
        crate::support::inside::replace_inside(dest, Path::new(file), text.as_bytes())
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Copies a directory tree: files keep their mode, symbolic links stay links.
fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            copy_tree(&from, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// Makes every directory and file under `dir` the container user's, when that is not this process's
/// user (mlops-tui running as root trains as `nobody`); links are changed, never followed.
pub(super) fn hand_over(dir: &Path, owner: Owner) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if (meta.uid(), meta.gid()) != (owner.uid, owner.gid) {
        std::os::unix::fs::lchown(dir, Some(owner.uid), Some(owner.gid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            hand_over(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

/// The newest model file the script created or changed in the workspace (compared with the run's
/// pristine export), by extension; `None` when there is none.
pub fn model_written(workspace: &Path, pristine: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut todo = vec![workspace.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            let path = entry.path();
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() && is_model(&path) && changed(&path, workspace, pristine) {
                let at = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((at, path));
            }
        }
    }
    found.into_iter().max().map(|(_, p)| p)
}

fn is_model(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// True when `path` (under `workspace`) is not in `pristine` with the same bytes. Neither side is
/// read through a link: the container owns the workspace, and the pristine copy holds the commit's
/// links as links.
fn changed(path: &Path, workspace: &Path, pristine: &Path) -> bool {
    use crate::support::inside::read_inside;
    let Ok(rel) = path.strip_prefix(workspace) else {
        return true;
    };
    match (
        read_inside(workspace, rel, u64::MAX),
        read_inside(pristine, rel, u64::MAX),
    ) {
        (Ok(now), Ok(before)) => now != before,
        _ => true,
    }
}

/// True when `/mlops/model/` (in the iteration's directory) holds no file.
pub fn model_dir_empty(workdir: &Path) -> bool {
    std::fs::read_dir(workdir.join("model")).map_or(true, |mut d| d.next().is_none())
}

/// Where `metric.file` is on the host: under the workspace, or under `/mlops` for `/mlops/…`.
pub fn metric_file_path(file: &str, workdir: &Path) -> PathBuf {
    match file.strip_prefix("/mlops/") {
        Some(rel) => workdir.join(rel),
        None => workdir.join(WORKSPACE_DIR).join(file),
    }
}

/// Reads `metric.file` after a successful exit: its value, or why there is none (naming the file).
pub fn read_metric_file(config: &Config, workdir: &Path) -> Option<Result<f64, MetricFileError>> {
    let file = config.metric.file.as_deref()?;
    let path = metric_file_path(file, workdir);
    let (root, rel) = match file.strip_prefix("/mlops/") {
        Some(rel) => (workdir.to_path_buf(), rel),
        None => (workdir.join(WORKSPACE_DIR), file),
    };
    let shown = if file.starts_with("/mlops/") {
        file.to_string()
    } else {
        format!("/workspace/{file}")
    };
    let text = match crate::support::inside::read_inside(&root, Path::new(rel), 64 * 1024) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(InsideError::Missing(_)) => {
            return Some(Err(MetricFileError::Missing { shown, path }));
        }
        Err(InsideError::Link(link)) => return Some(Err(MetricFileError::Link { shown, link })),
        Err(source) => return Some(Err(MetricFileError::Unreadable { shown, source })),
    };
    Some(value_in(&text, &config.metric.name).ok_or_else(|| {
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect::<String>();
        let comma = first.trim().split_once(',').is_some_and(|(a, b)| {
            [a, b]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        });
        let hint = if comma { " (a decimal comma?)" } else { "" };
        MetricFileError::NoNumber {
            shown,
            name: config.metric.name.clone(),
            first,
            hint,
        }
    }))
}

/// The value a metric file holds: the last `name=value` / `name: value` line in it (as the output
/// parser reads lines), otherwise the last line that is a bare number (`0.93`, `93%`).
pub fn value_in(text: &str, name: &str) -> Option<f64> {
    let named = MetricParser::new(name, None).ok().and_then(|mut p| {
        text.lines()
            .filter_map(|l| p.feed(l))
            .last()
            .map(|o| o.value)
    });
    named.or_else(|| text.lines().rev().find_map(bare_number))
}

/// `0.93`, ` 93 % `, `1e-3`: a line that is only a number (a percentage scaled by 1/100).
fn bare_number(line: &str) -> Option<f64> {
    let t = line.trim();
    let (t, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim_end(), 0.01),
        None => (t, 1.0),
    };
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * scale)
}

/// The host path a `[data]` entry names: `~/` expanded with `$HOME`, made canonical.
pub fn resolve_host(m: &DataMount) -> Result<PathBuf, DataError> {
    let expanded = match m.host.strip_prefix("~/") {
        Some(rest) => {
            let home = std::env::var_os("HOME").ok_or(DataError::NoHome)?;
            PathBuf::from(home).join(rest)
        }
        None => PathBuf::from(&m.host),
    };
    expanded.canonicalize().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing { path: expanded }
        } else {
            DataError::Io {
                path: expanded,
                source,
            }
        }
    })
}

/// Where the Docker engine's socket is on this host, as canonical paths.
fn docker_sockets() -> Vec<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/docker.sock"),
    ];
    if let Some(p) = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
    {
        candidates.push(p);
    }
    candidates
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

/// Checks a `[data]` host path at the start of a run: it exists, is not `/`, and neither is nor
/// holds the Docker socket (a container that reaches the engine owns the host). Answers the
/// canonical path.
pub fn check_host(m: &DataMount) -> Result<PathBuf, DataError> {
    let host = resolve_host(m)?;
    if host == Path::new("/") {
        return Err(DataError::Root);
    }
    let socket = docker_sockets().into_iter().find(|s| s.starts_with(&host));
    let is_socket = {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(&host).is_ok_and(|md| md.file_type().is_socket())
    };
    if let Some(socket) = socket {
        return Err(DataError::Socket { host, socket });
    }
    if is_socket {
        return Err(DataError::NotData { host });
    }
    Ok(host)
}

/// The `[data]` mounts of `config` for the container: canonical host paths and their targets.
pub fn data_mounts(config: &Config) -> Result<Vec<(PathBuf, String)>, DataError> {
    config
        .data
        .iter()
        .map(|(name, m)| {
            check_host(m)
                .map(|h| (h, m.path.clone()))
                .map_err(|e| DataError::Entry {
                    name: name.clone(),
                    source: Box::new(e),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pristine: &Path, patch: Patch) -> IterationPlan {
        let toml = "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\n\
                    target = 0.9\n";
        IterationPlan {
            run: crate::core::ids::RunId(1),
            no: crate::core::ids::IterationNo(2),
            params: Default::default(),
            image: "numpy".into(),
            workspace: pristine.to_path_buf(),
            config: Config::parse(toml, Path::new("mlops.toml")).unwrap(),
            proposal_reason: None,
            commit: crate::core::model::WORKING_TREE.into(),
            patch,
            engine: None,
            change: String::new(),
            keep: None,
        }
    }

    #[test]
    fn outside_git_the_workspace_is_the_export_with_the_patch_written_over() {
        let project_dir = tempfile::tempdir().unwrap();
        std::fs::write(project_dir.path().join("train.py"), "g = 1\n").unwrap();
        let project = Project::locate(project_dir.path()).unwrap();
        let pristine = tempfile::tempdir().unwrap();
        std::fs::write(pristine.path().join("train.py"), "g = 1\n").unwrap();
        std::fs::create_dir(pristine.path().join("data")).unwrap();
        std::fs::write(pristine.path().join("data/x.csv"), "1,2\n").unwrap();
        let patch = Patch {
            files: [("train.py".to_string(), "g = 2\n".to_string())].into(),
            edits: Vec::new(),
        };
        let plan = plan(pristine.path(), patch);
        assert_eq!(commit_iteration(&project, &plan).unwrap(), None);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("workspace");
        let owner = Owner::for_container(out.path()).unwrap();
        fill_workspace(&project, &plan, None, &dest, owner).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("train.py")).unwrap(),
            "g = 2\n"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("data/x.csv")).unwrap(),
            "1,2\n"
        );
        let pristine_now = std::fs::read_to_string(pristine.path().join("train.py")).unwrap();
        assert_eq!(pristine_now, "g = 1\n");
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dest.join("train.py")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (owner.uid, owner.gid));
    }

    #[test]
    fn a_metric_file_holds_a_bare_number_or_a_pair() {
        assert_eq!(value_in("0.93\n", "accuracy"), Some(0.93));
        assert_eq!(value_in("93 %\n", "accuracy"), Some(0.93));
        assert_eq!(value_in("accuracy=0.91\n", "accuracy"), Some(0.91));
        assert_eq!(
            value_in("loss: 0.2\naccuracy: 0.8\n", "accuracy"),
            Some(0.8)
        );
        assert_eq!(value_in("hello\n", "accuracy"), None);
        assert_eq!(value_in("0,95\n", "accuracy"), None, "not 0 nor 95");
        assert_eq!(value_in("accuracy=0,95\n", "accuracy"), None);
    }

    /// A file holding `0,95` is no number, and the error asks whether it is a decimal comma.
    #[test]
    fn a_metric_file_with_a_decimal_comma_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(WORKSPACE_DIR)).unwrap();
        std::fs::write(dir.path().join(WORKSPACE_DIR).join("acc.txt"), "0,95\n").unwrap();
        let toml = "[train]\ncommand = [\"python3\", \"t.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\nfile = \"acc.txt\"\n";
        let config = Config::parse(toml, Path::new("mlops.toml")).unwrap();
        let e = read_metric_file(&config, dir.path())
            .unwrap()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "metric.file /workspace/acc.txt holds no number for `accuracy` (it starts with \"0,95\") \
             (a decimal comma?): write a bare number with a decimal point, or `accuracy=0.93`"
        );
    }

    #[test]
    fn a_model_file_counts_when_new_or_changed() {
        let ws = tempfile::tempdir().unwrap();
        let pristine = tempfile::tempdir().unwrap();
        std::fs::write(pristine.path().join("old.pkl"), b"same").unwrap();
        std::fs::write(ws.path().join("old.pkl"), b"same").unwrap();
        std::fs::write(ws.path().join("train.py"), b"x").unwrap();
        assert_eq!(model_written(ws.path(), pristine.path()), None);
        std::fs::create_dir(ws.path().join("out")).unwrap();
        std::fs::write(ws.path().join("out/mymodel.h5"), b"weights").unwrap();
        assert_eq!(
            model_written(ws.path(), pristine.path()),
            Some(ws.path().join("out/mymodel.h5"))
        );
    }

    #[test]
    fn data_hosts_that_cannot_be_shared_are_refused() {
        let mount = |host: &str| DataMount {
            host: host.into(),
            path: "/data".into(),
        };
        let e = check_host(&mount("/nonexistent/datasets"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/datasets does not exist"), "{e}");
        let root = check_host(&mount("/")).unwrap_err().to_string();
        assert!(root.contains("(/)"), "{root}");
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        assert_eq!(
            check_host(&mount(&host)).unwrap(),
            dir.path().canonicalize().unwrap()
        );
        if Path::new("/var/run/docker.sock").exists() {
            let e = check_host(&mount("/var/run")).unwrap_err().to_string();
            assert!(e.contains("Docker socket"), "{e}");
        }
    }
}
