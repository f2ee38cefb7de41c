//! [`Transfer::Archive`](crate::adapters::backend::Transfer::Archive): an engine that does not share
//! our disk gets the iteration's files as archive uploads and gives results back as archive downloads.
//!
//! Each training container has its own named volumes, `<container>-workspace`, `<container>-mlops` and
//! `<container>-data<i>`, labelled with the container's name so that they are removed with it. They
//! are filled before the training container exists, through an upload container that is created and
//! never started: it mounts the volumes under `/upload/<name>` and the archive is extracted at
//! `/upload`, so each volume's root gets the owner and mode of its archive entry (extracting into a
//! volume's own root leaves the root owned by root, which the unprivileged user could not write).
//! The training container then mounts them at `/workspace`, `/mlops` (read-write) and the data targets
//! (read-only), with everything else as for bind mounts (read-only root file system, no network, …).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};

use super::DockerBackend;
use super::archive::{self, ChunkReader, Owner};
use crate::adapters::backend::{BackendError, Copied, TrainSpec};
use crate::core::ids::ContainerId;

/// Label on each volume: the name of the container it belongs to.
pub const VOLUME_OF: &str = "org.mlops-tui.volume-of";
/// Where the upload container mounts the volumes.
const UPLOAD_ROOT: &str = "/upload";

/// One volume of a training container.
struct Volume {
    name: String,
    /// The host directory uploaded into it.
    host: PathBuf,
    /// Where the training container mounts it.
    target: String,
    read_only: bool,
    /// Its directory under [`UPLOAD_ROOT`] in the upload container and in the archive.
    entry: String,
}

fn volumes(spec: &TrainSpec) -> Vec<Volume> {
    let mut v = vec![
        Volume {
            name: format!("{}-workspace", spec.name),
            host: spec.workspace.clone(),
            target: "/workspace".into(),
            read_only: false,
            entry: "workspace".into(),
        },
        Volume {
            name: format!("{}-mlops", spec.name),
            host: spec.workdir.clone(),
            target: "/mlops".into(),
            read_only: false,
            entry: "mlops".into(),
        },
    ];
    for (i, (host, target)) in spec.data.iter().enumerate() {
        v.push(Volume {
            name: format!("{}-data{i}", spec.name),
            host: host.clone(),
            target: target.clone(),
            read_only: true,
            entry: format!("data{i}"),
        });
    }
    v
}

fn volume_mount(name: &str, target: String, read_only: bool) -> Mount {
    Mount {
        target: Some(target),
        source: Some(name.to_string()),
        typ: Some(MountType::VOLUME),
        read_only: Some(read_only),
        ..Default::default()
    }
}

impl DockerBackend {
    /// Creates the volumes, uploads the host directories into them and returns the training
    /// container's mounts. On failure, whatever was made is removed again.
    pub(super) async fn upload_volumes(
        &self,
        spec: &TrainSpec,
    ) -> Result<Vec<Mount>, BackendError> {
        let vols = volumes(spec);
        let result = self.fill_volumes(spec, &vols).await;
        if result.is_err() {
            self.remove_volumes(vols.iter().map(|v| v.name.clone()).collect())
                .await;
        }
        result?;
        Ok(vols
            .into_iter()
            .map(|v| volume_mount(&v.name, v.target, v.read_only))
            .collect())
    }

    async fn fill_volumes(&self, spec: &TrainSpec, vols: &[Volume]) -> Result<(), BackendError> {
        let fail = |message: String| BackendError::Container {
            id: spec.name.clone(),
            message,
        };
        let owner = Owner::parse(&spec.user)
            .ok_or_else(|| fail(format!("user {:?} is not uid:gid", spec.user)))?;
        // Leftovers of an earlier attempt under the same name (a crash between upload and start)
        // would merge into the new volumes: they go first.
        self.remove_container_keep_volumes(&format!("{}-upload", spec.name))
            .await;
        self.remove_volumes(vols.iter().map(|v| v.name.clone()).collect())
            .await;
        for v in vols {
            if !v.host.is_dir() {
                return Err(fail(format!(
                    "{} is not a directory: an engine that does not share this disk gets directories only (mount the directory that holds it)",
                    v.host.display()
                )));
            }
            let mut labels = spec.labels.clone();
            labels.retain(|k, _| k != crate::core::model::labels::MANAGED);
            labels.insert(VOLUME_OF.into(), spec.name.clone());
            let request = VolumeCreateRequest {
                name: Some(v.name.clone()),
                labels: Some(labels.into_iter().collect()),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map_err(|e| fail(format!("cannot create volume {}: {e}", v.name)))?;
        }
        let helper = self.create_upload_container(spec, vols).await?;
        let dirs = vols
            .iter()
            .map(|v| (v.entry.clone(), v.host.clone()))
            .collect();
        let options = UploadToContainerOptionsBuilder::default()
            .path(UPLOAD_ROOT)
            .build();
        let uploaded = self
            .docker
            .upload_to_container(
                &helper,
                Some(options),
                bollard::body_try_stream(archive::pack(dirs, owner)),
            )
            .await
            .map_err(|e| fail(format!("archive upload failed: {e}")));
        self.remove_container_keep_volumes(&helper).await;
        uploaded
    }

    /// A container that is never started: it only holds the volumes while the archive is extracted.
    async fn create_upload_container(
        &self,
        spec: &TrainSpec,
        vols: &[Volume],
    ) -> Result<String, BackendError> {
        let name = format!("{}-upload", spec.name);
        let mounts = vols
            .iter()
            .map(|v| volume_mount(&v.name, format!("{UPLOAD_ROOT}/{}", v.entry), false))
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(vec!["true".into()]),
            labels: Some(HashMap::from([(VOLUME_OF.to_string(), spec.name.clone())])),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| BackendError::Container {
                id: spec.name.clone(),
                message: format!("cannot create the upload container: {e}"),
            })?;
        Ok(created.id)
    }

    async fn remove_container_keep_volumes(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(id, Some(options)).await;
    }

    /// The named volumes a container mounts (empty when it no longer exists).
    pub(super) async fn container_volumes(&self, id: &ContainerId) -> Vec<String> {
        let Ok(info) = self.docker.inspect_container(&id.0, None).await else {
            return Vec::new();
        };
        let own = info.name.map(|n| n.trim_start_matches('/').to_string());
        info.mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| m.name)
            // Only the volumes made for this container, never a volume shared with others.
            .filter(|n| {
                own.as_ref()
                    .is_some_and(|own| n.starts_with(&format!("{own}-")))
            })
            .collect()
    }

    /// Removes volumes, ignoring those already gone.
    pub(super) async fn remove_volumes(&self, names: Vec<String>) {
        for name in names {
            let _ = self
                .docker
                .remove_volume(
                    &name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await;
        }
    }

    /// Downloads the directory `from` of the container and unpacks it safely into `to`, at most
    /// `cap` bytes of files: the download is dropped at the first file that would pass it.
    pub(super) async fn download(
        &self,
        id: &ContainerId,
        from: &str,
        to: &Path,
        cap: u64,
    ) -> Result<Copied, BackendError> {
        let fail = |message: String| BackendError::Container {
            id: id.to_string(),
            message,
        };
        // Fail early on a missing container or path, with the engine's own message.
        self.docker
            .inspect_container(&id.0, None)
            .await
            .map_err(|e| fail(format!("cannot copy {from} out: {e}")))?;
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(from)
            .build();
        let stream = self.docker.download_from_container(&id.0, Some(options));
        let reader = ChunkReader::spawn(stream);
        let to = to.to_path_buf();
        let done = tokio::task::spawn_blocking(move || archive::unpack(reader, &to, cap))
            .await
            .map_err(|e| fail(format!("copying {from} out stopped: {e}")))?
            .map_err(|e| fail(format!("cannot copy {from} out: {e}")))?;
        if done.skipped > 0 {
            tracing::warn!(container = %id, from, skipped = done.skipped, "copy out skipped links, devices or paths leaving the target");
        }
        Ok(Copied {
            bytes: done.bytes,
            left: done.left,
        })
    }
}
