//! The training container's life: created with its limits and confinement, started, waited for,
//! stopped, restarted, inspected and removed (with the volumes archive transfer made for it).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptions,
};
use futures_util::StreamExt;

use super::DockerBackend;
use crate::adapters::backend::{BackendError, TrainSpec, Transfer};
use crate::core::ids::ContainerId;
use crate::core::model::ContainerState;
use crate::core::model::ExitStatus;

impl DockerBackend {
    /// Creates and starts the container of `spec`, with its files bound or uploaded as `spec.transfer`
    /// says; nothing is left behind when either step fails.
    pub(super) async fn start_container(
        &self,
        spec: TrainSpec,
    ) -> Result<ContainerId, BackendError> {
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
            let _ = self.remove_with_volumes(&id).await;
            return Err(BackendError::Container {
                id: spec.name,
                message: format!("cannot start: {e}"),
            });
        }
        Ok(id)
    }

    /// Creates the training container of `spec` (bind mounts) without starting it: what the engine
    /// received (its device request among the rest) can then be inspected through the API, even on
    /// an engine that would refuse to start it.
    pub async fn create_stopped(&self, spec: &TrainSpec) -> Result<ContainerId, BackendError> {
        let binds = vec![
            format!("{}:/workspace:rw", spec.workspace.display()),
            format!("{}:/mlops:rw", spec.workdir.display()),
        ];
        self.create(spec, Some(binds), data_mounts(spec)).await
    }

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
            device_requests: super::gpu::device_requests(spec.gpus.as_ref()),
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

    /// The container's exit status, once it has exited.
    pub(super) async fn wait_exit(&self, id: &ContainerId) -> Result<ExitStatus, BackendError> {
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
    }

    /// Stops the container, giving it `grace` after SIGTERM; one already stopped or gone is fine.
    pub(super) async fn stop_container(
        &self,
        id: &ContainerId,
        grace: Duration,
    ) -> Result<(), BackendError> {
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
    }

    /// Removes the container and the volumes archive transfer made for it.
    pub(super) async fn remove_with_volumes(&self, id: &ContainerId) -> Result<(), BackendError> {
        // Its own volumes (archive transfer) go with it; read before the container is gone.
        let volumes = self.container_volumes(id).await;
        self.remove_container(id).await?;
        self.remove_volumes(volumes).await;
        Ok(())
    }

    /// Removes the container (forced), a container already gone or being removed included.
    async fn remove_container(&self, id: &ContainerId) -> Result<(), BackendError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = self.docker.remove_container(&id.0, Some(options)).await;
        gone_is_done(result, id, "remove")
    }

    /// Starts a stopped container again.
    pub(super) async fn restart_container(&self, id: &ContainerId) -> Result<(), BackendError> {
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
    }

    /// Where the container is in its life; `None` when it no longer exists.
    pub(super) async fn state(
        &self,
        id: &ContainerId,
    ) -> Result<Option<ContainerState>, BackendError> {
        use bollard::models::ContainerStateStatusEnum as S;
        match self.docker.inspect_container(&id.0, None).await {
            Ok(info) => {
                let st = info.state.unwrap_or_default();
                Ok(Some(match st.status {
                    Some(S::RUNNING) | Some(S::PAUSED) => ContainerState::Running,
                    Some(S::EXITED) | Some(S::DEAD) => ContainerState::Exited(ExitStatus {
                        code: st.exit_code.unwrap_or(-1),
                        oom_killed: st.oom_killed.unwrap_or(false),
                    }),
                    _ => ContainerState::Starting,
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.unavailable(e)),
        }
    }
}

/// The end of a call that removes or kills a container: a container already gone (404) or already
/// on its way out (409) is what the call wanted, so both are success.
pub(super) fn gone_is_done(
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
