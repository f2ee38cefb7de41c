//! Images: the built-in profiles (with the Debian base they build on), a profile with a project's
//! requirements, and a project's own Dockerfile, each built once and then found by its tag.

use std::collections::VecDeque;
use std::process::Stdio;

use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::DockerBackend;
use crate::adapters::backend::{BackendError, ContainerBackend, Progress};
use crate::adapters::images;
use crate::core::model::ImageSpec;

/// Serialises image builds in this process: two runs asking for the same missing image build it once.
static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl DockerBackend {
    /// The image `image` names, built (or, for an engine with an image source, copied) when missing.
    pub(super) async fn prepare(
        &self,
        image: &ImageSpec,
        progress: Progress,
    ) -> Result<String, BackendError> {
        if let Some(source) = &self.image_source {
            let tag = source.prepare_image(image, progress.clone()).await?;
            self.copy_image_from(source, &tag, &progress).await?;
            return Ok(tag);
        }
        match image {
            ImageSpec::Reference(reference) => {
                if self.image_present(reference).await? {
                    Ok(reference.clone())
                } else {
                    Err(BackendError::Image {
                            image: reference.clone(),
                            message: "not present in the engine, and images cannot be pulled here: build it first or use a built-in profile".into(),
                        })
                }
            }
            ImageSpec::Profile(profile) => self.ensure_profile(profile, &progress).await,
            ImageSpec::Requirements {
                profile,
                requirements,
            } => {
                self.ensure_requirements(profile, requirements, &progress)
                    .await
            }
            ImageSpec::Dockerfile {
                context,
                dockerfile,
            } => self.ensure_dockerfile(context, dockerfile, &progress).await,
        }
    }

    /// Imports a Debian root file system made by `mmdebstrap` as [`images::BASE_IMAGE`].
    async fn build_base(&self, progress: &Progress) -> Result<(), BackendError> {
        let image_err = |message: String| BackendError::Image {
            image: images::BASE_IMAGE.into(),
            message,
        };
        let argv = images::base_rootfs_command(&images::mirror());
        let _ = progress.send(format!(
            "building base image {} with: {}",
            images::BASE_IMAGE,
            argv.join(" ")
        ));
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                image_err(if e.kind() == std::io::ErrorKind::NotFound {
                    "the base image is missing and `mmdebstrap` is not installed (apt-get install mmdebstrap)".into()
                } else {
                    format!("cannot run mmdebstrap: {e}")
                })
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| image_err("mmdebstrap has no stdout".into()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| image_err("mmdebstrap has no stderr".into()))?;
        let progress_err = progress.clone();
        let stderr_task = tokio::spawn(async move {
            let mut tail = VecDeque::new();
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = progress_err.send(format!("mmdebstrap: {line}"));
                tail.push_back(line);
                if tail.len() > 20 {
                    tail.pop_front();
                }
            }
            tail.into_iter().collect::<Vec<_>>().join("\n")
        });
        let body = futures_util::stream::unfold(stdout, |mut out| async move {
            let mut buf = vec![0u8; 1 << 20];
            match out.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), out))
                }
                Err(e) => Some((Err(e), out)),
            }
        });
        let (repo, tag) = images::BASE_IMAGE
            .split_once(':')
            .unwrap_or((images::BASE_IMAGE, "latest"));
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        let mut import =
            self.docker
                .create_image(Some(options), Some(bollard::body_try_stream(body)), None);
        let mut import_error = None;
        while let Some(item) = import.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.status {
                        let _ = progress.send(format!("import: {s}"));
                    }
                }
                Err(e) => import_error = Some(e.to_string()),
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| image_err(format!("mmdebstrap: {e}")))?;
        let tail = stderr_task.await.unwrap_or_default();
        if !status.success() {
            // A truncated root file system must never be left behind under the base tag.
            let _ = self
                .docker
                .remove_image(
                    images::BASE_IMAGE,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
            return Err(image_err(format!("mmdebstrap failed ({status}):\n{tail}")));
        }
        if let Some(e) = import_error {
            return Err(image_err(format!("import failed: {e}")));
        }
        Ok(())
    }

    /// Builds `context` (a tar holding a Dockerfile at `dockerfile`) as `tag`, forwarding the builder's
    /// output after `announce`.
    pub(super) async fn build(
        &self,
        tag: &str,
        context: Vec<u8>,
        dockerfile: &str,
        announce: String,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let _ = progress.send(announce);
        let options = BuildImageOptionsBuilder::default()
            .t(tag)
            .dockerfile(dockerfile)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(Bytes::from(context))),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| BackendError::Image {
                image: tag.into(),
                message: format!("build failed: {e}"),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(BackendError::Image {
                    image: tag.into(),
                    message: format!("build failed: {}", detail.message.unwrap_or_default()),
                });
            }
            if let Some(s) = info.stream {
                let s = s.trim_end();
                if !s.is_empty() {
                    let _ = progress.send(s.to_string());
                }
            }
        }
        Ok(())
    }

    /// The profile's image, built (with the base) when missing; `mlops-tui/<name>:latest` is moved to
    /// it, so that a project's `FROM mlops-tui/<name>` builds on the current version.
    async fn ensure_profile(
        &self,
        profile: &'static crate::core::model::Profile,
        progress: &Progress,
    ) -> Result<String, BackendError> {
        let tag = profile.tag();
        if !self.image_present(&tag).await? {
            let _guard = BUILD_LOCK.lock().await;
            if !self.image_present(&tag).await? {
                if !self.image_present(images::BASE_IMAGE).await? {
                    self.build_base(progress).await?;
                }
                let ca = images::build_ca();
                let context = pack(&tag, images::build_context(profile.dockerfile, &ca))?;
                let announce = format!(
                    "building image {tag} from dockerfiles/{}/Dockerfile",
                    profile.name
                );
                self.build(&tag, context, "Dockerfile", announce, progress)
                    .await?;
            }
        }
        let options = TagImageOptionsBuilder::default()
            .repo(&format!("mlops-tui/{}", profile.name))
            .tag("latest")
            .build();
        self.docker
            .tag_image(&tag, Some(options))
            .await
            .map_err(|e| BackendError::Image {
                image: profile.latest(),
                message: format!("cannot tag {tag}: {e}"),
            })?;
        Ok(tag)
    }

    /// A profile with the project's requirements installed: built once per profile version and
    /// requirements text, then reused.
    async fn ensure_requirements(
        &self,
        profile: &'static crate::core::model::Profile,
        requirements: &str,
        progress: &Progress,
    ) -> Result<String, BackendError> {
        self.ensure_profile(profile, progress).await?;
        let tag = images::spec::requirements_tag(profile, requirements);
        if self.image_present(&tag).await? {
            return Ok(tag);
        }
        let _guard = BUILD_LOCK.lock().await;
        if self.image_present(&tag).await? {
            return Ok(tag);
        }
        let context = pack(
            &tag,
            images::spec::requirements_context(profile, requirements, &images::build_ca()),
        )?;
        let announce = format!(
            "building image {tag}: image {} + pip install -r requirements.txt",
            profile.name
        );
        self.build(&tag, context, "Dockerfile", announce, progress)
            .await?;
        Ok(tag)
    }

    /// The project's own Dockerfile, with the exported tree as context; the built-in profiles it
    /// builds `FROM` are prepared first.
    async fn ensure_dockerfile(
        &self,
        context_dir: &std::path::Path,
        dockerfile: &str,
        progress: &Progress,
    ) -> Result<String, BackendError> {
        let path = context_dir.join(dockerfile);
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| BackendError::Image {
                image: dockerfile.into(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
        let mut bases = Vec::new();
        for profile in images::spec::base_profiles(&text) {
            bases.push(self.ensure_profile(profile, progress).await?);
        }
        let dir = context_dir.to_path_buf();
        let packed = tokio::task::spawn_blocking(move || images::spec::project_context(&dir))
            .await
            .map_err(|e| BackendError::Image {
                image: dockerfile.into(),
                message: format!("packing the build context failed: {e}"),
            })?;
        let context = pack(dockerfile, packed)?;
        let tag = images::spec::project_tag(&context, &bases);
        if self.image_present(&tag).await? {
            return Ok(tag);
        }
        let _guard = BUILD_LOCK.lock().await;
        if self.image_present(&tag).await? {
            return Ok(tag);
        }
        let announce = format!(
            "building image {tag} from the project's {dockerfile} ({} KiB of context)",
            context.len() / 1024
        );
        self.build(&tag, context, dockerfile, announce, progress)
            .await?;
        Ok(tag)
    }
}

/// A build context, or the error that names the image it was for.
fn pack(image: &str, context: std::io::Result<Vec<u8>>) -> Result<Vec<u8>, BackendError> {
    context.map_err(|e| BackendError::Image {
        image: image.into(),
        message: format!("cannot pack the build context: {e}"),
    })
}
