//! [`ContainerBackend`] over a Docker Engine, through bollard only (never the `docker` CLI).
//!
//! Training code is untrusted: containers never run as root, with no network, all capabilities dropped,
//! `no-new-privileges`, a read-only root file system, and memory (no swap), CPU and pid limits. The
//! Docker socket is never mounted.
//!
//! An engine may be elsewhere (`tcp://` with TLS, `ssh://`, see [`connect`]): then it does not share
//! our disk, files go in and out as archives ([`transfer`]), and images it lacks are copied from the
//! engine they were built on ([`image_copy`]).

mod archive;
mod connect;
mod frozen;
pub mod gpu;
mod image_copy;
mod transfer;
mod usage;

pub use transfer::VOLUME_OF;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, TagImageOptionsBuilder, WaitContainerOptions,
};
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::adapters::backend::{
    BackendError, BoxFuture, ContainerAction, ContainerBackend, Copied, DiskUsage, ExitStatus,
    FoundContainer, LogLine, LogStream, Progress, StampedLine, StampedLogStream, TrainSpec,
    Transfer,
};
use crate::adapters::images::{self, ImageSpec};
use crate::core::config::EngineLimits;
use crate::core::ids::ContainerId;

/// Longest log line kept whole; the rest of a longer line is cut and the cut is marked, so a script that
/// prints a megabyte without a newline cannot stall parsing or drawing.
pub const MAX_LINE: usize = 16 * 1024;

/// Serialises image builds in this process: two runs asking for the same missing image build it once.
static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct DockerBackend {
    docker: Docker,
    endpoint: String,
    /// The engine's name in the configuration, for progress lines.
    name: String,
    /// The engine does not see this machine's files (`tcp://`, `ssh://`).
    remote: bool,
    /// Where images missing here are copied from (the engine images are built on).
    image_source: Option<Arc<DockerBackend>>,
    /// One image copy into this engine at a time: two trials asking for the same missing image copy
    /// it once, while copies into other engines go on side by side.
    copy_lock: tokio::sync::Mutex<()>,
}

impl DockerBackend {
    /// The bollard client, for tests and tools that need engine calls outside the pipeline's interface.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> BackendError {
        BackendError::Unavailable {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        }
    }

    async fn image_present(&self, reference: &str) -> Result<bool, BackendError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
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
    async fn build(
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
        profile: &'static images::Profile,
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
        profile: &'static images::Profile,
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

impl DockerBackend {
    /// Creates (does not start) the training container of `spec` with the given mounts. The limits
    /// and confinement are the same whatever the transfer.
    async fn create(
        &self,
        spec: &TrainSpec,
        binds: Option<Vec<String>>,
        mounts: Vec<Mount>,
    ) -> Result<ContainerId, BackendError> {
        let host_config = HostConfig {
            binds,
            mounts: Some(mounts),
            memory: Some(spec.memory_bytes as i64),
            memory_swap: Some(spec.memory_bytes as i64),
            nano_cpus: Some((spec.cpus * 1e9) as i64),
            pids_limit: Some(spec.pids),
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,nosuid,nodev,size=256m".to_string(),
            )])),
            privileged: Some(false),
            ulimits: Some(vec![file_size_limit(spec.disk_bytes)]),
            log_config: Some(log_config()),
            device_requests: gpu::device_requests(spec.gpus.as_ref()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.command.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            working_dir: Some("/workspace".into()),
            user: Some(spec.user.clone()),
            network_disabled: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| BackendError::Container {
                id: spec.name.clone(),
                message: format!("cannot create: {e}"),
            })?;
        Ok(ContainerId(created.id))
    }
}

/// The end of a call that removes or kills a container: a container already gone (404) or already
/// on its way out (409) is what the call wanted, so both are success.
fn gone_is_done(
    result: Result<(), bollard::errors::Error>,
    id: &ContainerId,
    doing: &str,
) -> Result<(), BackendError> {
    match result {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(e) => Err(BackendError::Container {
            id: id.to_string(),
            message: format!("cannot {doing}: {e}"),
        }),
    }
}

impl DockerBackend {
    /// Removes the container (forced), a container already gone or being removed included.
    async fn remove_container(&self, id: &ContainerId) -> Result<(), BackendError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = self.docker.remove_container(&id.0, Some(options)).await;
        gone_is_done(result, id, "remove")
    }
}

/// The kernel's limit on the size of any one file the container writes (`RLIMIT_FSIZE`): a write
/// past it fails with EFBIG ("File too large"; Python ignores the SIGXFSZ that comes with it), so no
/// single file outgrows `[resources] disk`, however fast it is written.
fn file_size_limit(bytes: u64) -> bollard::models::ResourcesUlimits {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    bollard::models::ResourcesUlimits {
        name: Some("fsize".into()),
        soft: Some(bytes),
        hard: Some(bytes),
    }
}

/// The volumes [`Transfer::Archive`] makes for `spec`'s container.
fn transfer_volume_names(spec: &TrainSpec) -> Vec<String> {
    let mut names = vec![
        format!("{}-workspace", spec.name),
        format!("{}-mlops", spec.name),
    ];
    names.extend((0..spec.data.len()).map(|i| format!("{}-data{i}", spec.name)));
    names
}

/// A build context, or the error that names the image it was for.
fn pack(image: &str, context: std::io::Result<Vec<u8>>) -> Result<Vec<u8>, BackendError> {
    context.map_err(|e| BackendError::Image {
        image: image.into(),
        message: format!("cannot pack the build context: {e}"),
    })
}

impl ContainerBackend for DockerBackend {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.docker
                .ping()
                .await
                .map_err(|e| self.unavailable(connect::explain(&e)))?;
            Ok(())
        })
    }

    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>> {
        Box::pin(async move {
            let info = self.docker.info().await.map_err(|e| self.unavailable(e))?;
            let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            Ok(EngineLimits {
                cpus: positive(info.ncpu),
                memory_bytes: positive(info.mem_total),
            })
        })
    }

    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        Box::pin(async move {
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
        })
    }

    fn probe_gpus<'a>(
        &'a self,
        request: &'a crate::core::gpu::GpuRequest,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(self.probe_gpu_devices(request))
    }

    fn gpu_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Vec<crate::adapters::backend::GpuSample>, BackendError>> {
        Box::pin(self.sample_gpus(id))
    }

    fn start(&self, spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>> {
        Box::pin(async move {
            let (binds, mounts) = match spec.transfer {
                Transfer::Bind => (
                    Some(vec![
                        format!("{}:/workspace:rw", spec.workspace.display()),
                        format!("{}:/mlops:rw", spec.workdir.display()),
                    ]),
                    data_mounts(&spec),
                ),
                Transfer::Archive => (None, self.upload_volumes(&spec).await?),
            };
            let created = self.create(&spec, binds, mounts).await;
            let id = match created {
                Ok(id) => id,
                Err(e) => {
                    if spec.transfer == Transfer::Archive {
                        let names = transfer_volume_names(&spec);
                        self.remove_volumes(names).await;
                    }
                    return Err(e);
                }
            };
            if let Err(e) = self
                .docker
                .start_container(
                    &id.0,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
            {
                let _ = self.remove(&id).await;
                return Err(BackendError::Container {
                    id: spec.name,
                    message: format!("cannot start: {e}"),
                });
            }
            Ok(id)
        })
    }

    fn logs(&self, id: &ContainerId) -> LogStream {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(split_lines(raw, id.clone()))
    }

    fn logs_since(&self, id: &ContainerId, since: Option<i128>) -> StampedLogStream {
        let secs = since.map_or(0, |ns| ns.div_euclid(1_000_000_000));
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(secs).unwrap_or(0))
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(split_stamped(raw, id.clone(), true))
    }

    fn tail<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>> {
        Box::pin(async move {
            let options = LogsOptionsBuilder::default()
                .follow(false)
                .stdout(true)
                .stderr(true)
                .tail(&n.to_string())
                .build();
            let raw = self.docker.logs(&id.0, Some(options));
            split_lines(raw, id.clone())
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect()
        })
    }

    fn tail_stamped<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<StampedLine>, BackendError>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail(&n.to_string())
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(
            split_stamped(raw, id.clone(), true)
                .collect::<Vec<_>>()
                .map(|v| v.into_iter().collect()),
        )
    }

    fn frozen<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.frozen_now(id))
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>> {
        Box::pin(async move {
            let mut stream = self
                .docker
                .wait_container(&id.0, None::<WaitContainerOptions>);
            let code = match stream.next().await {
                Some(Ok(r)) => r.status_code,
                // A non-zero exit arrives as this error: it is an exit status, not a failure to wait.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return Err(self.unavailable(e)),
                None => return Err(self.unavailable("wait stream ended without a status")),
            };
            let oom_killed = match self.docker.inspect_container(&id.0, None).await {
                Ok(info) => info.state.and_then(|s| s.oom_killed).unwrap_or(false),
                Err(_) => false,
            };
            Ok(ExitStatus { code, oom_killed })
        })
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let options = StopContainerOptionsBuilder::default()
                .t(grace.as_secs() as i32)
                .build();
            match self.docker.stop_container(&id.0, Some(options)).await {
                Ok(()) => Ok(()),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304 | 404,
                    ..
                }) => Ok(()),
                Err(e) => Err(BackendError::Container {
                    id: id.to_string(),
                    message: format!("cannot stop: {e}"),
                }),
            }
        })
    }

    fn remove<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            // Its own volumes (archive transfer) go with it; read before the container is gone.
            let volumes = self.container_volumes(id).await;
            self.remove_container(id).await?;
            self.remove_volumes(volumes).await;
            Ok(())
        })
    }

    fn shares_disk(&self) -> bool {
        !self.remote
    }

    fn copy_out<'a>(
        &'a self,
        id: &'a ContainerId,
        from: &'a str,
        to: &'a Path,
        cap: u64,
    ) -> BoxFuture<'a, Result<Copied, BackendError>> {
        Box::pin(self.download(id, from, to, cap))
    }

    fn kill<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.kill_now(id))
    }

    fn disk_usage<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<DiskUsage, BackendError>> {
        Box::pin(self.usage(id))
    }

    fn restart<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.docker
                .start_container(
                    &id.0,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(|e| match e {
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404, ..
                    } => BackendError::Container {
                        id: id.to_string(),
                        message: "cannot restart: the container no longer exists".into(),
                    },
                    bollard::errors::Error::DockerResponseServerError { .. } => {
                        BackendError::Container {
                            id: id.to_string(),
                            message: format!("cannot restart: {e}"),
                        }
                    }
                    other => self.unavailable(other),
                })
        })
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<crate::adapters::backend::ContainerState>, BackendError>> {
        Box::pin(async move {
            use bollard::models::ContainerStateStatusEnum as S;
            match self.docker.inspect_container(&id.0, None).await {
                Ok(info) => {
                    let st = info.state.unwrap_or_default();
                    Ok(Some(match st.status {
                        Some(S::RUNNING) | Some(S::PAUSED) => {
                            crate::adapters::backend::ContainerState::Running
                        }
                        Some(S::EXITED) | Some(S::DEAD) => {
                            crate::adapters::backend::ContainerState::Exited(ExitStatus {
                                code: st.exit_code.unwrap_or(-1),
                                oom_killed: st.oom_killed.unwrap_or(false),
                            })
                        }
                        _ => crate::adapters::backend::ContainerState::Starting,
                    }))
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(None),
                Err(e) => Err(self.unavailable(e)),
            }
        })
    }

    fn events(&self, labels: &[(String, String)]) -> crate::adapters::backend::EventStream {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                vec!["start".to_string(), "die".to_string(), "oom".to_string()],
            ),
            (
                "label".to_string(),
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ),
        ]);
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .filters(&filters)
            .build();
        let endpoint = self.endpoint.clone();
        Box::pin(
            self.docker
                .events(Some(options))
                .map(move |item| match item {
                    Ok(ev) => {
                        let actor = ev.actor.unwrap_or_default();
                        let attributes: BTreeMap<String, String> =
                            actor.attributes.unwrap_or_default().into_iter().collect();
                        Ok(crate::adapters::backend::ContainerEvent {
                            id: ContainerId(actor.id.unwrap_or_default()),
                            action: container_action(ev.action.unwrap_or_default()),
                            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
                            labels: attributes,
                        })
                    }
                    Err(e) => Err(BackendError::Unavailable {
                        endpoint: endpoint.clone(),
                        message: e.to_string(),
                    }),
                }),
        )
    }

    fn find<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>> {
        Box::pin(async move {
            let filters = HashMap::from([(
                "label".to_string(),
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            )]);
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let list = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(|e| self.unavailable(e))?;
            Ok(list
                .into_iter()
                .filter_map(|c| {
                    Some(FoundContainer {
                        id: ContainerId(c.id?),
                        labels: c
                            .labels
                            .unwrap_or_default()
                            .into_iter()
                            .collect::<BTreeMap<_, _>>(),
                        running: matches!(
                            c.state,
                            Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                        ),
                    })
                })
                .collect())
        })
    }
}

/// How the engine keeps a training container's output. The daemon's default (often `json-file` with a
/// small `max-size`) rotates a flood away before the follower reads it, losing lines silently. The
/// `local` driver stores entries compactly and compresses rotated files; 8 files of 128 MB keep about
/// ten million typical lines per container, so a follower that falls minutes behind a flood still
/// finds every line, while the disk a container can fill stays bounded (about 1 GiB before
/// compression). The iteration's own `output.log` keeps the lines for good.
fn log_config() -> bollard::models::HostConfigLogConfig {
    bollard::models::HostConfigLogConfig {
        typ: Some("local".into()),
        config: Some(HashMap::from([
            ("max-size".to_string(), "128m".to_string()),
            ("max-file".to_string(), "8".to_string()),
            ("compress".to_string(), "true".to_string()),
        ])),
    }
}

/// Turns Docker's frames (which split and join lines arbitrarily) into whole lines per stream.
fn split_lines(
    raw: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
    + Send
    + 'static,
    id: ContainerId,
) -> impl Stream<Item = Result<LogLine, BackendError>> + Send {
    split_stamped(raw, id, false).map(|r| r.map(|s| s.line))
}

/// Whole lines per stream, as [`split_lines`]; with `stamped`, every frame starts with the engine's
/// RFC 3339 timestamp (one frame per log entry), which is taken off and given to the line it ends.
fn split_stamped(
    raw: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
    + Send
    + 'static,
    id: ContainerId,
    stamped: bool,
) -> impl Stream<Item = Result<StampedLine, BackendError>> + Send {
    let st = Splitter {
        raw: Box::pin(raw),
        out: Vec::new(),
        err: Vec::new(),
        at: [0, 0],
        ready: VecDeque::new(),
        done: false,
        stamped,
        id,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.raw.next().await {
                Some(Ok(frame)) => st.frame(frame),
                Some(Err(e)) => {
                    st.done = true;
                    st.ready.push_back(Err(BackendError::Container {
                        id: st.id.to_string(),
                        message: format!("log stream: {e}"),
                    }));
                }
                None => st.finish(),
            }
        }
    })
}

/// The state of [`split_stamped`]: the unfinished line of each stream and the lines ready to go.
struct Splitter<S> {
    raw: S,
    out: Vec<u8>,
    err: Vec<u8>,
    /// The last stamp seen on stdout and on stderr.
    at: [i128; 2],
    ready: VecDeque<Result<StampedLine, BackendError>>,
    done: bool,
    stamped: bool,
    id: ContainerId,
}

impl<S> Splitter<S> {
    fn frame(&mut self, frame: bollard::container::LogOutput) {
        use bollard::container::LogOutput;
        let (stderr, mut bytes) = match frame {
            LogOutput::StdErr { message } => (true, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
            LogOutput::StdIn { .. } => return,
        };
        if self.stamped
            && let Some((at, rest)) = strip_stamp(&bytes)
        {
            self.at[usize::from(stderr)] = at;
            bytes = bytes.slice(bytes.len() - rest..);
        }
        let at = self.at[usize::from(stderr)];
        let buf = if stderr { &mut self.err } else { &mut self.out };
        buf.extend_from_slice(&bytes);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = make_line(stderr, &line[..line.len() - 1]);
            self.ready.push_back(Ok(StampedLine { at, line }));
        }
        // Cut a newline-less flood so memory stays bounded.
        if buf.len() > MAX_LINE * 4 {
            let line = make_line(stderr, &std::mem::take(buf));
            self.ready.push_back(Ok(StampedLine { at, line }));
        }
    }

    /// The stream ended: what is left of each stream's last line is a line too.
    fn finish(&mut self) {
        self.done = true;
        for stderr in [false, true] {
            let buf = std::mem::take(if stderr { &mut self.err } else { &mut self.out });
            if !buf.is_empty() {
                let at = self.at[usize::from(stderr)];
                let line = make_line(stderr, &buf);
                self.ready.push_back(Ok(StampedLine { at, line }));
            }
        }
    }
}

/// Splits `2026-01-02T03:04:05.123456789Z rest` into the stamp (nanoseconds since the epoch) and the
/// length of the rest; `None` when the frame does not start with a timestamp.
fn strip_stamp(bytes: &[u8]) -> Option<(i128, usize)> {
    let space = bytes.iter().take(64).position(|b| *b == b' ')?;
    let text = std::str::from_utf8(&bytes[..space]).ok()?;
    Some((parse_rfc3339(text)?, bytes.len() - space - 1))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to nanoseconds since the Unix epoch.
fn parse_rfc3339(text: &str) -> Option<i128> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    // 1970-01-01 is Julian day 2 440 588.
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let rest = text.get(19..)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let nanos: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let offset = match zone {
        "Z" | "" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let h: i64 = z.get(1..3)?.parse().ok()?;
            let m: i64 = z.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(i128::from(secs - offset) * 1_000_000_000 + i128::from(nanos))
}

fn make_line(stderr: bool, bytes: &[u8]) -> LogLine {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > MAX_LINE {
        let total = text.len();
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(" …[line cut: {total} bytes]"));
    }
    LogLine { stderr, text }
}

/// The engine's name for an event (`die`, `oom`, …) as the pipeline tells them apart.
fn container_action(action: String) -> ContainerAction {
    match action.as_str() {
        "start" => ContainerAction::Start,
        "die" => ContainerAction::Die,
        "oom" => ContainerAction::Oom,
        _ => ContainerAction::Other(action),
    }
}

/// `[data]`: read-only bind mounts. Given as mounts rather than `host:target` strings, so that a
/// host path holding `:` or `,` is taken as it is.
fn data_mounts(spec: &TrainSpec) -> Vec<Mount> {
    spec.data
        .iter()
        .map(|(host, target)| Mount {
            target: Some(target.clone()),
            source: Some(host.display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_are_nanoseconds_since_the_epoch() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.000000002Z"),
            Some(1_000_000_002)
        );
        assert_eq!(
            parse_rfc3339("2026-11-29T02:30:50.5Z"),
            parse_rfc3339("2026-11-29T03:30:50.500000000+01:00")
        );
        assert_eq!(
            strip_stamp(b"1970-01-01T00:00:00Z hello"),
            Some((0, "hello".len()))
        );
        assert_eq!(strip_stamp(b"hello world"), None);
    }

    #[test]
    fn event_actions_are_parsed_once_here() {
        assert_eq!(container_action("die".into()), ContainerAction::Die);
        assert_eq!(container_action("oom".into()), ContainerAction::Oom);
        assert_eq!(container_action("start".into()), ContainerAction::Start);
        assert_eq!(
            container_action("pause".into()),
            ContainerAction::Other("pause".into())
        );
    }
}
