//! A trial's image: the profile image with the trial's files as one more layer, built on the manager
//! and pushed to the cluster's registry, run by digest so every node runs exactly what was built.

use std::io;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::SwarmBackend;
use crate::adapters::backend::{BackendError, TrainSpec};
use crate::core::triage::SetupFault;

/// The repository of trial images in the registry.
const REPOSITORY: &str = "mlops-trial";
/// How long the manager's engine may take to reach the registry when asked before a build. Its own
/// timeouts are longer (a TLS handshake may hang 10 s, a dial 30 s): a registry slower than this
/// to answer one request is as good as missing for a run.
const REGISTRY_ANSWER: Duration = Duration::from_secs(8);

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
        // Before anything is built: a registry the manager cannot reach fails every trial alike.
        self.check_registry(&tag).await?;
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
        if let Err(e) = self.push(&tag).await {
            self.forget_trial_image(&spec.name).await;
            return Err(e);
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

    /// Pushes `tag` from the manager. A refusal is a set-up fault: the registry missing (in the
    /// manager's words) or refusing the image. The engine retries a layer whose upload failed
    /// (five times, up to a minute): at its first retry the registry is asked again, and a registry
    /// gone ends the push at once.
    async fn push(&self, tag: &str) -> Result<(), BackendError> {
        let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        let options = PushImageOptionsBuilder::default().tag(version).build();
        let mut push = self.manager.docker.push_image(repo, Some(options), None);
        while let Some(item) = push.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(self.push_refused(tag, &error));
                }
                Err(e @ bollard::errors::Error::DockerResponseServerError { .. }) => {
                    return Err(self.push_refused(tag, &e.to_string()));
                }
                Err(e) => return Err(self.manager.unavailable(e)),
            };
            if let Some(detail) = info.error_detail {
                let why = detail.message.unwrap_or_default();
                return Err(self.push_refused(tag, &why));
            }
            let retrying = info
                .status
                .as_deref()
                .is_some_and(|s| s.starts_with("Retrying in"));
            if retrying {
                self.check_registry(tag).await?;
            }
        }
        Ok(())
    }

    /// A push that failed for `why` (the engine's words), as the set-up fault it is.
    fn push_refused(&self, tag: &str, why: &str) -> BackendError {
        let fault = match unreachable(why) {
            true => SetupFault::registry_unreachable(&self.manager.name, &self.registry, why),
            false => SetupFault::registry_refused(&self.manager.name, &self.registry, why),
        };
        BackendError::Image {
            image: tag.to_string(),
            message: fault.to_string(),
        }
    }

    /// Asks the manager's engine, which pushes, whether it reaches the registry: it looks `tag` up
    /// there (the distribution endpoint, one request). Any answer of the registry's ("manifest
    /// unknown" included) is fine; an error of reaching it, or no answer within
    /// [`REGISTRY_ANSWER`], is [`SetupFault::registry_unreachable`]. Asked from the manager and not
    /// from this machine, which may reach a registry the manager does not, or the other way round.
    pub(super) async fn check_registry(&self, tag: &str) -> Result<(), BackendError> {
        let docker = &self.manager.docker;
        let fault = |why: &str| BackendError::Image {
            image: tag.to_string(),
            message: SetupFault::registry_unreachable(&self.manager.name, &self.registry, why)
                .to_string(),
        };
        match tokio::time::timeout(REGISTRY_ANSWER, docker.inspect_registry_image(tag, None)).await
        {
            Err(_) => Err(fault(&format!(
                "no answer within {} s",
                REGISTRY_ANSWER.as_secs()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(bollard::errors::Error::DockerResponseServerError { message, .. })) => {
                match unreachable(&message) {
                    true => Err(fault(&message)),
                    false => Ok(()),
                }
            }
            Ok(Err(e)) => Err(self.manager.unavailable(e)),
        }
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

/// The engine's words for a registry it could not reach, as opposed to one that answered and
/// refused: a failed request to the registry's `/v2/` (where every exchange starts, so the words
/// of Go's HTTP client: `Get "https://r:5000/v2/": dial tcp …`), or a network error.
fn unreachable(why: &str) -> bool {
    why.contains("/v2/\": ")
        || [
            "dial tcp",
            "connection refused",
            "no route to host",
            "network is unreachable",
            "no such host",
            "i/o timeout",
            "TLS handshake timeout",
            "server gave HTTP response to HTTPS client",
        ]
        .iter()
        .any(|t| why.contains(t))
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
    fn an_unreachable_registry_is_told_from_a_refusing_one() {
        assert!(unreachable(
            "Get \"https://10.80.0.2:5999/v2/\": dial tcp 10.80.0.2:5999: connect: connection refused"
        ));
        assert!(unreachable(
            "Put \"http://r:5000/v2/x/blobs/uploads/\": dial tcp r:5000: i/o timeout"
        ));
        assert!(!unreachable("manifest unknown: manifest unknown"));
        assert!(!unreachable(
            "error parsing HTTP 405 response body: invalid character 'M' looking for beginning of value: \"Method not allowed\\n\""
        ));
        assert!(!unreachable(
            "denied: requested access to the resource is denied"
        ));
    }

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
