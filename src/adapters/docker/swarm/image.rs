//! A trial's image: the profile image with the trial's files as one more layer, built on the manager
//! and pushed to the cluster's registry, run by digest so every node runs exactly what was built.

use std::io;
use std::path::Path;

use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::SwarmBackend;
use crate::adapters::backend::{BackendError, TrainSpec};

/// The repository of trial images in the registry.
const REPOSITORY: &str = "mlops-trial";

impl SwarmBackend {
    /// The local tag of the trial image of `spec` (`registry/mlops-trial:<name>`).
    pub(super) fn trial_tag(&self, name: &str) -> String {
        format!("{}/{REPOSITORY}:{}", self.registry, tag_part(name))
    }

    /// Builds the trial's image on the manager, pushes it, and answers the reference pinned by
    /// digest (`registry/mlops-trial@sha256:…`).
    pub(super) async fn push_trial_image(&self, spec: &TrainSpec) -> Result<String, BackendError> {
        let tag = self.trial_tag(&spec.name);
        let fail = |message: String| BackendError::Image {
            image: tag.clone(),
            message,
        };
        let dockerfile = dockerfile(spec);
        let dirs = vec![
            ("files/workspace".to_string(), spec.workspace.clone()),
            ("files/mlops".to_string(), spec.workdir.clone()),
        ]
        .into_iter()
        .chain(
            spec.data
                .iter()
                .enumerate()
                .map(|(i, (host, _))| (format!("data{i}"), host.clone())),
        )
        .collect::<Vec<_>>();
        let context = tokio::task::spawn_blocking(move || context(&dockerfile, &dirs))
            .await
            .map_err(|e| fail(format!("packing the trial's files stopped: {e}")))?
            .map_err(|e| fail(format!("cannot pack the trial's files: {e}")))?;
        let (quiet, _) = tokio::sync::mpsc::unbounded_channel();
        self.manager
            .build(
                &tag,
                context,
                "Dockerfile",
                format!("building trial image {tag}"),
                &quiet,
            )
            .await?;
        let (repo, version) = tag.rsplit_once(':').unwrap_or((tag.as_str(), "latest"));
        let options = PushImageOptionsBuilder::default().tag(version).build();
        let mut push = self.manager.docker.push_image(repo, Some(options), None);
        while let Some(item) = push.next().await {
            let info = item.map_err(|e| {
                fail(format!(
                    "the registry {} refused the image: {e}; check that the manager's engine reaches it (and trusts it: `insecure-registries` for plain HTTP)",
                    self.registry
                ))
            })?;
            if let Some(detail) = info.error_detail {
                return Err(fail(format!(
                    "the registry {} refused the image: {}; check that the manager's engine reaches it (and trusts it: `insecure-registries` for plain HTTP)",
                    self.registry,
                    detail.message.unwrap_or_default()
                )));
            }
        }
        let inspected = self
            .manager
            .docker
            .inspect_image(&tag)
            .await
            .map_err(|e| fail(format!("cannot read the pushed image: {e}")))?;
        let prefix = format!("{}/{REPOSITORY}@", self.registry);
        inspected
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.starts_with(&prefix))
            .ok_or_else(|| fail("the push ended without a digest from the registry".into()))
    }

    /// Removes the trial image's tag from the manager (the registry keeps its copy). Forced: the
    /// task's ended container, when the manager ran it, may still hold the image for a moment.
    pub(super) async fn forget_trial_image(&self, name: &str) {
        let tag = self.trial_tag(name);
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        if let Err(e) = self
            .manager
            .docker
            .remove_image(&tag, Some(options), None)
            .await
        {
            tracing::warn!(image = %tag, "cannot remove the trial image from the manager: {e}");
        }
    }
}

/// A name as a tag: letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`.
fn tag_part(name: &str) -> String {
    let mut t: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if t.is_empty() || t.starts_with(['.', '-']) {
        t.insert(0, 't');
        t.truncate(128);
    }
    t
}

/// The trial image's Dockerfile: `/workspace` and `/mlops` owned by the trial's user (copied as
/// children of `/`, so the directories themselves change owner too, which a copy into an existing
/// directory would not do), the data directories at their targets.
fn dockerfile(spec: &TrainSpec) -> String {
    let mut text = format!("FROM {}\nCOPY --chown={} files/ /\n", spec.image, spec.user);
    for (i, (_, target)) in spec.data.iter().enumerate() {
        text.push_str(&format!("COPY data{i} {target}\n"));
    }
    text
}

/// The build context: the Dockerfile and each directory under its name. Symlinks stay symlinks.
fn context(dockerfile: &str, dirs: &[(String, std::path::PathBuf)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    let mut files = tar::Header::new_gnu();
    files.set_entry_type(tar::EntryType::Directory);
    files.set_size(0);
    files.set_mode(0o755);
    files.set_cksum();
    builder.append_data(&mut files, "files/", std::io::empty())?;
    for (name, dir) in dirs {
        if !Path::new(dir).is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory: a swarm gets directories only",
                dir.display()
            )));
        }
        builder.append_dir_all(name, dir)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_become_tags() {
        assert_eq!(tag_part("mlops-r3-i2"), "mlops-r3-i2");
        assert_eq!(tag_part("a/b c"), "a-b-c");
        assert_eq!(tag_part("-x"), "t-x");
        assert_eq!(tag_part(&"x".repeat(200)).len(), 128);
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.py"), "print(1)").unwrap();
        let bytes = context("FROM x\n", &[("workspace".into(), dir.path().into())]).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()), "{names:?}");
        assert!(
            names.contains(&"workspace/train.py".to_string()),
            "{names:?}"
        );
        let missing = context("FROM x\n", &[("w".into(), "/nonexistent/dir".into())]);
        assert!(missing.unwrap_err().to_string().contains("not a directory"));
    }
}
