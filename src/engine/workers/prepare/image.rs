//! The image a run trains in, and the check that it provides every module the code imports.

use std::path::Path;

use crate::adapters::images::{self, ImageRequest};
use crate::core::config::{Config, ImageSetting};
use crate::core::detect::{self, DetectError};
use crate::core::model::{ImageSpec, Profile};
use crate::support::inside::{self, InsideError};
use crate::support::source_tree;

use super::MAX_SOURCE_BYTES;

/// The project's pip requirements, at the root of its tree.
const REQUIREMENTS: &str = "requirements.txt";

/// Why no image can be chosen for a commit; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "mlops.toml: train.image: the Dockerfile \"{0}\" is not a file in this commit (a symbolic link is never followed): commit it or set train.image = \"auto\""
    )]
    NoDockerfile(String),
    /// `train.image` names neither a profile nor a reference.
    #[error("mlops.toml: train.image: {0}")]
    Named(String),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("internal error: no built-in profile \"{0}\"")]
    NoProfile(String),
    #[error(
        "{REQUIREMENTS} is a symbolic link, which mlops-tui never follows: commit the file itself"
    )]
    RequirementsLink,
    #[error("{REQUIREMENTS}: {0}")]
    Requirements(InsideError),
    /// Modules the code imports that the image does not provide, one line each (file and line).
    #[error("{}", .0.join("\n"))]
    Missing(Vec<String>),
}

/// The image to run and the sentence that explains the choice. For a built-in profile (chosen by
/// detection or named by `train.image`), the code's third-party imports must all be provided by the
/// profile or by the project's `requirements.txt` (then installed on top of it): a missing module is
/// an error now, with its file and line, rather than a `ModuleNotFoundError` in every container. An
/// image named by reference or built from the project's Dockerfile is not checked: what it holds is
/// not known before it runs.
pub fn choose_image(config: &Config, workspace: &Path) -> Result<(ImageSpec, String), ImageError> {
    match &config.train.image {
        ImageSetting::Dockerfile(path) => {
            if !inside::is_regular_inside(workspace, Path::new(path)) {
                return Err(ImageError::NoDockerfile(path.clone()));
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
        ImageSetting::Named(name) => match images::resolve(name).map_err(ImageError::Named)? {
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
            let tree = source_tree::read(workspace)?;
            let verdict = detect::detect(&tree)?;
            let profile = images::profile(verdict.profile())
                .ok_or_else(|| ImageError::NoProfile(verdict.profile().to_string()))?;
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
) -> Result<(ImageSpec, String), ImageError> {
    let requirements =
        match inside::read_inside(workspace, Path::new(REQUIREMENTS), MAX_SOURCE_BYTES) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(InsideError::Missing(_)) => None,
            Err(InsideError::Link(_)) => return Err(ImageError::RequirementsLink),
            Err(e) => return Err(ImageError::Requirements(e)),
        };
    let listed = requirements
        .as_deref()
        .map(detect::requirement_names)
        .unwrap_or_default();
    let imports = detect::imports(&source_tree::read(workspace)?);
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
            let lines = missing.iter().map(ToString::to_string).collect();
            return Err(ImageError::Missing(lines));
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

    fn choose(files: &[(&str, &str)]) -> Result<(ImageSpec, String), ImageError> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let config = Config::parse(TOML, Path::new("mlops.toml")).unwrap();
        choose_image(&config, dir.path())
    }

    #[test]
    fn a_missing_module_is_an_error_with_file_and_line() {
        let e = choose(&[("train.py", "import numpy\n\n\nimport seaborn as sns\n")])
            .unwrap_err()
            .to_string();
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
        .unwrap_err()
        .to_string();
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
