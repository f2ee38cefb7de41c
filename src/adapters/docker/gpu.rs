//! GPUs on a Docker engine: the device request a training container carries, the probe that asks
//! the engine whether it can honour it before any training container exists, and what `nvidia-smi`
//! says inside a running container.

use std::time::Duration;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListImagesOptions, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt;

use crate::adapters::backend::{BackendError, GpuSample};
use crate::adapters::images;
use crate::core::gpu::GpuRequest;
use crate::core::ids::ContainerId;

use super::DockerBackend;

/// The engine's answer when no device driver handles GPUs (no NVIDIA container toolkit).
const NO_DRIVER: &str = "could not select device driver";

/// How long the probe container may take to start and print the devices.
const PROBE_WITHIN: Duration = Duration::from_secs(60);

/// The device request for `gpus`: the NVIDIA driver, capability `gpu`, a count (`-1` for all) or
/// the device ids. `None` asks for nothing.
pub fn device_requests(gpus: Option<&GpuRequest>) -> Option<Vec<DeviceRequest>> {
    let gpus = gpus?;
    let (count, device_ids) = match gpus {
        GpuRequest::Count(n) => (Some(i64::from(*n)), None),
        GpuRequest::All => (Some(-1), None),
        GpuRequest::Devices(ids) => (None, Some(ids.clone())),
    };
    Some(vec![DeviceRequest {
        driver: Some("nvidia".into()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".into()]]),
        options: None,
    }])
}

/// What the fix is when the engine has no GPU runtime.
pub fn no_runtime_message(refusal: &str) -> String {
    format!(
        "it has no GPU runtime (the engine said: {refusal}): install the NVIDIA driver and nvidia-container-toolkit on the engine's machine and restart dockerd (nvidia-ctk runtime configure --runtime=docker), or remove [resources] gpus to train on the CPU"
    )
}

impl DockerBackend {
    /// Creates and starts a small container with the device request of `request` and reads the
    /// devices it was given (`nvidia-smi`'s indices; empty when the image has no `nvidia-smi`). The
    /// engine's refusal is an error with the fix; the container is always removed.
    pub(super) async fn probe_gpu_devices(
        &self,
        request: &GpuRequest,
    ) -> Result<Vec<String>, BackendError> {
        let image = self.probe_image().await?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("mlops-gpu-probe-{nonce:08x}");
        let body = ContainerCreateBody {
            image: Some(image),
            cmd: Some(vec![
                "nvidia-smi".into(),
                "--query-gpu=index".into(),
                "--format=csv,noheader".into(),
            ]),
            network_disabled: Some(true),
            labels: Some(
                [("org.mlops-tui.gpu-probe".to_string(), "true".to_string())]
                    .into_iter()
                    .collect(),
            ),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                device_requests: device_requests(Some(request)),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| refused(request, &e.to_string()))?;
        let id = ContainerId(created.id);
        let result = self.run_probe(&id, request).await;
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(&id.0, Some(remove)).await;
        result
    }

    async fn run_probe(
        &self,
        id: &ContainerId,
        request: &GpuRequest,
    ) -> Result<Vec<String>, BackendError> {
        self.docker
            .start_container(
                &id.0,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| refused(request, &e.to_string()))?;
        let waited = tokio::time::timeout(PROBE_WITHIN, async {
            let mut wait = self
                .docker
                .wait_container(&id.0, None::<WaitContainerOptions>);
            match wait.next().await {
                Some(Ok(r)) => r.status_code,
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                _ => -1,
            }
        })
        .await;
        if waited != Ok(0) {
            // Started with the devices, but no `nvidia-smi` to list them: the devices are unknown.
            return Ok(Vec::new());
        }
        let options = LogsOptionsBuilder::default().stdout(true).build();
        let mut logs = self.docker.logs(&id.0, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
            .map(String::from)
            .collect())
    }

    /// An image the engine has, to run the probe from: the base image when present, else the
    /// smallest image; an engine that has none gets the base image copied from the engine its
    /// images come from, when it has it. Nothing is pulled.
    async fn probe_image(&self) -> Result<String, BackendError> {
        if self.image_present(images::BASE_IMAGE).await? {
            return Ok(images::BASE_IMAGE.into());
        }
        let list = self
            .docker
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|e| self.unavailable(e))?;
        let smallest = list
            .into_iter()
            .filter(|i| i.repo_tags.iter().any(|t| t != "<none>:<none>"))
            .min_by_key(|i| i.size)
            .and_then(|i| i.repo_tags.into_iter().find(|t| t != "<none>:<none>"));
        if let Some(tag) = smallest {
            return Ok(tag);
        }
        if let Some(source) = &self.image_source
            && source.image_present(images::BASE_IMAGE).await?
        {
            let (progress, _) = tokio::sync::mpsc::unbounded_channel();
            self.copy_image_from(source, images::BASE_IMAGE, &progress)
                .await?;
            return Ok(images::BASE_IMAGE.into());
        }
        Err(BackendError::Other(
            "cannot check its GPUs: it has no image to start a probe container from (build the images first: mlops-tui images build)".into(),
        ))
    }

    /// Utilisation and memory of the GPUs container `id` holds, from `nvidia-smi` run in it.
    pub(super) async fn sample_gpus(
        &self,
        id: &ContainerId,
    ) -> Result<Vec<GpuSample>, BackendError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let exec = self
            .docker
            .create_exec(
                &id.0,
                CreateExecOptions {
                    cmd: Some(vec![
                        "nvidia-smi",
                        "--query-gpu=index,utilization.gpu,memory.used,memory.total",
                        "--format=csv,noheader,nounits",
                    ]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| self.unavailable(e))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if text.len() > 64 * 1024 {
                    break;
                }
            }
        }
        Ok(parse_samples(&text))
    }
}

/// The refusal of a container with `request`, for people, with the fix.
fn refused(request: &GpuRequest, said: &str) -> BackendError {
    let said = said.trim();
    if said.contains(NO_DRIVER) {
        return BackendError::Other(no_runtime_message(said));
    }
    BackendError::Other(format!(
        "it refused a container with [resources] gpus = {request} (the engine said: {said}): check the device ids and that the engine's machine has that many GPUs, or lower [resources] gpus"
    ))
}

/// `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`.
pub fn parse_samples(text: &str) -> Vec<GpuSample> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, util, used, total] = f.as_slice() else {
                return None;
            };
            Some(GpuSample {
                device: (*index).to_string(),
                utilization_pct: util.parse().ok()?,
                memory_used_mib: used.parse().ok()?,
                memory_total_mib: total.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_nvidia_driver_and_the_gpu_capability() {
        assert_eq!(device_requests(None), None);
        let one = device_requests(Some(&GpuRequest::Count(1))).unwrap();
        assert_eq!(one[0].driver.as_deref(), Some("nvidia"));
        assert_eq!(one[0].count, Some(1));
        assert_eq!(one[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
        let all = device_requests(Some(&GpuRequest::All)).unwrap();
        assert_eq!(all[0].count, Some(-1));
        let ids = device_requests(Some(&GpuRequest::Devices(vec!["0".into(), "2".into()])));
        let ids = ids.unwrap();
        assert_eq!(
            (ids[0].count, ids[0].device_ids.clone()),
            (None, Some(vec!["0".into(), "2".into()]))
        );
    }

    #[test]
    fn the_missing_driver_is_told_with_its_fix() {
        let e = refused(
            &GpuRequest::Count(1),
            "Docker responded with status code 500: could not select device driver \"nvidia\" with capabilities: [[gpu]]",
        )
        .to_string();
        assert!(e.starts_with("it has no GPU runtime"), "{e}");
        assert!(e.contains("nvidia-container-toolkit"), "{e}");
    }

    #[test]
    fn samples_are_read_from_nvidia_smi_lines() {
        let s = parse_samples("0, 87, 1234, 24576\n1, 0, 3, 24576\ngarbage\n");
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                s[0].device.as_str(),
                s[0].utilization_pct,
                s[0].memory_used_mib
            ),
            ("0", 87, 1234)
        );
    }
}
