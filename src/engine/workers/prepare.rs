//! The preparation workers: export the commit, read its `mlops.toml`, decide the image, then build
//! or find it (job 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::adapters::git::Project;
use crate::adapters::images::times::BuildTimes;
use crate::adapters::images::{self, ImageRequest};
use crate::core::config::{Config, EngineLimits, ImageSetting};
use crate::core::detect;
use crate::core::ids::RunId;
use crate::core::knobs::Knobs;
use crate::core::model::{CommitInfo, ImageSpec, Profile};
use crate::support::data_policy::DataPolicy;
use crate::support::inside::{self, InsideError};
use crate::support::source_tree;

use crate::engine::msg::Msg;
use crate::engine::state::Stage;

use super::workspace;
/// The project's pip requirements, at the root of its tree.
const REQUIREMENTS: &str = "requirements.txt";

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
    let result =
        tokio::task::spawn_blocking(move || prepare_blocking(&project, &commit, &run_dir, &policy))
            .await;
    let prepared = match result {
        Ok(Ok(p)) => p,
        Ok(Err((stage, error))) => return Msg::StageFailed { run, stage, error },
        Err(e) => {
            return Msg::StageFailed {
                run,
                stage: Stage::Pull,
                error: match e.try_into_panic() {
                    Ok(panic) => format!(
                        "internal error: preparation panicked: {}",
                        crate::support::panic::message(&*panic)
                    ),
                    Err(e) => format!("preparation task failed: {e}"),
                },
            };
        }
    };
    if let Err((stage, error)) = check_engine_limits(&*backend, &prepared).await {
        return Msg::StageFailed { run, stage, error };
    }
    Msg::Prepared {
        run,
        config: Box::new(prepared.config),
        workspace: prepared.workspace,
        image_reason: prepared.image_reason,
        image: prepared.image,
        knobs: Box::new(prepared.knobs),
        warnings: prepared.warnings,
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
) -> Result<(), (Stage, String)> {
    let limits = backend.limits().await.map_err(|e| {
        (
            Stage::Image,
            format!("cannot read the engine's CPUs and memory: {e}"),
        )
    })?;
    prepared
        .config
        .check_engine_limits(&prepared.text, &prepared.shown, limits)
        .map_err(|e| (Stage::Detect, e.to_string()))
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
) -> Result<Prepared, (Stage, String)> {
    let workspace = run_dir.join("workspace");
    if workspace.exists() {
        // A retried preparation starts from a clean export.
        std::fs::remove_dir_all(&workspace)
            .map_err(|e| (Stage::Pull, format!("{}: {e}", workspace.display())))?;
    }
    project
        .export(commit, &workspace)
        .map_err(|e| (Stage::Pull, e.to_string()))?;
    // Errors name the file as the user knows it (in their project), not the exported copy.
    let shown = project.dir.join(crate::core::config::FILE_NAME);
    let text = read_config(&workspace, &shown, commit, project).map_err(|e| (Stage::Detect, e))?;
    let config = Config::parse(&text, &shown).map_err(|e| (Stage::Detect, e.to_string()))?;
    config
        .check_data_hosts(&text, &shown, |m| {
            let host = workspace::check_host(m).map_err(|e| e.to_string())?;
            policy.judge(&host)
        })
        .map_err(|e| (Stage::Detect, e.to_string()))?;
    let knobs = resolve_knobs(&config, &workspace, commit, (&text, &shown))
        .map_err(|e| (Stage::Detect, e))?;
    let warnings = unread_parameters(&config, &workspace);
    let (image, image_reason) =
        choose_image(&config, &workspace).map_err(|e| (Stage::Detect, e))?;
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
) -> Result<String, String> {
    let name = Path::new(crate::core::config::FILE_NAME);
    match inside::read_inside(workspace, name, MAX_SOURCE_BYTES) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
            format!(
                "{}: not UTF-8 (invalid byte at offset {}); save it as UTF-8",
                shown.display(),
                e.utf8_error().valid_up_to()
            )
        }),
        Err(InsideError::Missing(_)) => Err(format!(
            "{}: not found in commit {}: run `mlops-tui init {}` to write one",
            shown.display(),
            commit.short(),
            project.dir.display()
        )),
        Err(InsideError::Link(_)) => Err(format!(
            "{}: a symbolic link in commit {}, which mlops-tui never follows: commit the file itself",
            shown.display(),
            commit.short()
        )),
        Err(e) => Err(format!("{}: {e}", shown.display())),
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

/// Reads the files the configuration binds dimensions in from the exported tree and finds every
/// binding's place in them. Before any container: a binding that matches nothing fails the run, and
/// so does a file that is a symbolic link (anywhere on its path), is missing, or is not UTF-8; those
/// errors point at the knob's `source` in `config_at` (the text of `mlops.toml` and its shown path).
pub fn resolve_knobs(
    config: &Config,
    tree: &Path,
    commit: &CommitInfo,
    config_at: (&str, &Path),
) -> Result<Knobs, String> {
    let mut sources = BTreeMap::new();
    for file in Knobs::files(config) {
        let text = read_knob_file(tree, &file, commit).map_err(|why| {
            let name = config
                .tweak
                .bindings
                .iter()
                .find(|(_, b)| b.file == file)
                .map_or("?", |(n, _)| n.as_str());
            config
                .binding_error(name, config_at.0, config_at.1, &why)
                .to_string()
        })?;
        sources.insert(file, text);
    }
    Knobs::resolve(config, sources).map_err(|e| e.to_string())
}

/// One knob's file as text, or why it cannot be used (the fix included).
fn read_knob_file(tree: &Path, file: &str, commit: &CommitInfo) -> Result<String, String> {
    let bytes = inside::read_inside(tree, Path::new(file), MAX_SOURCE_BYTES).map_err(|e| match e {
        InsideError::Missing(_) => format!(
            "file \"{file}\" is not in commit {}: commit it, or fix `source` (a path relative to the project)",
            commit.short()
        ),
        InsideError::Link(link) if link == Path::new(file) => format!(
            "file \"{file}\" is a symbolic link, which mlops-tui never follows (it could point \
             anywhere on this host); commit the file itself"
        ),
        InsideError::Link(link) => format!(
            "file \"{file}\" lies under \"{}\", a symbolic link, which mlops-tui never follows; \
             commit the directory itself",
            link.display()
        ),
        InsideError::NotFile(_) => format!("\"{file}\" is not a regular file in the commit"),
        other => format!("file \"{file}\": {other}"),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        format!(
            "{file} is not UTF-8 (invalid byte 0x{:02x} at offset {at}, line {line}); save it as UTF-8",
            bytes[at]
        )
    })
}

/// The image to run and the sentence that explains the choice. For a built-in profile (chosen by
/// detection or named by `train.image`), the code's third-party imports must all be provided by the
/// profile or by the project's `requirements.txt` (then installed on top of it): a missing module is
/// an error now, with its file and line, rather than a `ModuleNotFoundError` in every container. An
/// image named by reference or built from the project's Dockerfile is not checked: what it holds is
/// not known before it runs.
pub fn choose_image(config: &Config, workspace: &Path) -> Result<(ImageSpec, String), String> {
    match &config.train.image {
        ImageSetting::Dockerfile(path) => {
            if !inside::is_regular_inside(workspace, Path::new(path)) {
                return Err(format!(
                    "mlops.toml: train.image: the Dockerfile \"{path}\" is not a file in this commit (a symbolic link is never followed): commit it or set train.image = \"auto\""
                ));
            }
            let spec = ImageSpec::Dockerfile {
                context: workspace.to_path_buf(),
                dockerfile: path.clone(),
            };
            let reason = format!(
                "image built from the project's {path} (set by train.image in mlops.toml; what it provides is unknown, so imports are not checked)"
            );
            Ok((spec, reason))
        }
        ImageSetting::Named(name) => match images::resolve(name)
            .map_err(|e| format!("mlops.toml: train.image: {e}"))?
        {
            ImageRequest::Reference(reference) => {
                let reason = format!(
                    "image {reference} (set by train.image in mlops.toml; what it provides is unknown, so imports are not checked)"
                );
                Ok((ImageSpec::Reference(reference), reason))
            }
            ImageRequest::Profile(profile) => {
                let reason = format!("image {} (set by train.image in mlops.toml)", profile.name);
                let (profile, reason) = images::cuda::for_config(config, profile, reason);
                with_profile(profile, reason, workspace)
            }
        },
        ImageSetting::Auto => {
            let tree = source_tree::read(workspace).map_err(|e| e.to_string())?;
            let verdict = detect::detect(&tree).map_err(|e| e.to_string())?;
            let profile = images::profile(verdict.profile()).ok_or_else(|| {
                format!(
                    "internal error: no built-in profile \"{}\"",
                    verdict.profile()
                )
            })?;
            let (profile, reason) = images::cuda::for_config(config, profile, verdict.summary());
            with_profile(profile, reason, workspace)
        }
    }
}

/// The profile, or the profile with the project's `requirements.txt` on top, once every import is
/// known to be provided by it.
fn with_profile(
    profile: &'static Profile,
    reason: String,
    workspace: &Path,
) -> Result<(ImageSpec, String), String> {
    let requirements = match inside::read_inside(
        workspace,
        Path::new(REQUIREMENTS),
        MAX_SOURCE_BYTES,
    ) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(InsideError::Missing(_)) => None,
        Err(InsideError::Link(_)) => {
            return Err(format!(
                "{REQUIREMENTS} is a symbolic link, which mlops-tui never follows: commit the file itself"
            ));
        }
        Err(e) => return Err(format!("{REQUIREMENTS}: {e}")),
    };
    let listed = requirements
        .as_deref()
        .map(detect::requirement_names)
        .unwrap_or_default();
    let imports = detect::imports(&source_tree::read(workspace).map_err(|e| e.to_string())?);
    let missing = detect::missing(&imports, profile.name, |m| {
        profile.provides(m) || detect::required(m, &listed)
    });
    // A requirement that matches no import by name may be the one that provides a missing module
    // under another name (`protobuf` for `google`): then the missing modules are noted, not refused.
    let unmatched: Vec<&String> = listed
        .iter()
        .filter(|r| {
            !imports
                .iter()
                .any(|i| detect::required(&i.module, std::slice::from_ref(r)))
        })
        .collect();
    let mut reason = reason;
    if !missing.is_empty() {
        if unmatched.is_empty() {
            let lines: Vec<String> = missing.iter().map(ToString::to_string).collect();
            return Err(lines.join("\n"));
        }
        let modules: Vec<&str> = missing.iter().map(|m| m.import.module.as_str()).collect();
        reason.push_str(&format!(
            "; not checked: {} (assumed to come from {REQUIREMENTS})",
            modules.join(", ")
        ));
    }
    Ok(match requirements {
        Some(requirements) => (
            ImageSpec::Requirements {
                profile,
                requirements,
            },
            format!("{reason}; with {REQUIREMENTS} installed on top"),
        ),
        None => (ImageSpec::Profile(profile), reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"sklearn\"\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n";

    fn choose(files: &[(&str, &str)]) -> Result<(ImageSpec, String), String> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let config = Config::parse(TOML, Path::new("mlops.toml")).unwrap();
        choose_image(&config, dir.path())
    }

    #[test]
    fn a_missing_module_is_an_error_with_file_and_line() {
        let e = choose(&[("train.py", "import numpy\n\n\nimport seaborn as sns\n")]).unwrap_err();
        assert_eq!(
            e,
            "train.py:4: imports `seaborn`, which image `sklearn` does not provide: list it in requirements.txt (mlops-tui builds a derived image with it) or set train.image"
        );
    }

    #[test]
    fn requirements_provide_modules_and_make_a_derived_image() {
        let (spec, reason) = choose(&[
            ("train.py", "import seaborn\nimport yaml\n"),
            ("requirements.txt", "seaborn==0.13\nPyYAML\n"),
        ])
        .unwrap();
        assert!(
            matches!(spec, ImageSpec::Requirements { profile, .. } if profile.name == "sklearn")
        );
        assert!(
            reason.ends_with("with requirements.txt installed on top"),
            "{reason}"
        );
        // Listed, but not the module the code imports: still an error.
        let e = choose(&[
            ("train.py", "import seaborn\nimport tabulate\n"),
            ("requirements.txt", "seaborn\n"),
        ])
        .unwrap_err();
        assert!(e.starts_with("train.py:2: imports `tabulate`"), "{e}");
    }

    #[test]
    fn a_requirement_under_another_name_is_trusted_and_noted() {
        let (_, reason) = choose(&[
            ("train.py", "from google.protobuf import text_format\n"),
            ("requirements.txt", "protobuf\n"),
        ])
        .unwrap();
        assert!(
            reason.contains("not checked: google (assumed to come from requirements.txt)"),
            "{reason}"
        );
    }

    #[test]
    fn named_references_are_not_checked_and_say_so() {
        let toml = TOML.replace("\"sklearn\"", "\"me/img:1\"");
        let config = Config::parse(&toml, Path::new("mlops.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.py"), "import seaborn\n").unwrap();
        let (spec, reason) = choose_image(&config, dir.path()).unwrap();
        assert_eq!(spec, ImageSpec::Reference("me/img:1".into()));
        assert!(reason.contains("imports are not checked"), "{reason}");
    }
}
