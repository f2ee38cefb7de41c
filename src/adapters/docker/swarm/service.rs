//! A trial as a Swarm service: one replica that is never restarted, on a network of its own with no
//! route out, with a read-only root, no capabilities, a non-root user and `[resources]` as both
//! reservation (so Swarm places it where it fits) and limit.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    GenericResources, GenericResourcesInner, GenericResourcesInnerDiscreteResourceSpec,
    GenericResourcesInnerNamedResourceSpec, Limit, Mount, MountType, NetworkAttachmentConfig,
    NetworkCreateRequest, NodeSpecAvailabilityEnum, NodeState, ResourceObject, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecLogDriver,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{ListServicesOptionsBuilder, UpdateServiceOptionsBuilder};

use super::SwarmBackend;
use super::results;
use crate::adapters::backend::{BackendError, FoundContainer, TrainSpec};
use crate::core::config::EngineLimits;
use crate::core::gpu::GpuRequest;
use crate::core::ids::ContainerId;

/// Label on a trial's network: the service it was made for.
const NETWORK_OF: &str = "org.mlops-tui.network-of";
/// How long removal waits for a service's task to be gone before its network can go.
const TASK_GONE: Duration = Duration::from_secs(30);

impl SwarmBackend {
    /// Builds and pushes the trial's image, makes its network and creates its service. Whatever was
    /// made is removed again when a later step fails.
    pub(super) async fn start_service(&self, spec: TrainSpec) -> Result<ContainerId, BackendError> {
        if matches!(spec.gpus, Some(GpuRequest::All)) {
            return Err(BackendError::Container {
                id: spec.name.clone(),
                message: "[resources] gpus = \"all\" cannot be reserved on a swarm (Swarm reserves a number of GPUs or named devices, never a node's all): set gpus = N or a list of device ids".into(),
            });
        }
        let image = self.push_trial_image(&spec).await?;
        let network = self.make_network(&spec).await?;
        let service = service_spec(&spec, &image, &network);
        match self.manager.docker.create_service(service, None).await {
            Ok(created) => {
                let id = created
                    .id
                    .map(ContainerId)
                    .ok_or_else(|| BackendError::Container {
                        id: spec.name.clone(),
                        message: "the manager created the service without an id".into(),
                    })?;
                self.captures.started(&id.0, attempt_of(&spec));
                Ok(id)
            }
            Err(e) => {
                let _ = self.manager.docker.remove_network(&network).await;
                self.forget_trial_image(&spec.name).await;
                Err(BackendError::Container {
                    id: spec.name.clone(),
                    message: format!("the swarm refused the service: {e}"),
                })
            }
        }
    }

    /// An overlay network for this trial alone, `internal`: the task gets an address and no route
    /// out (services have no `network none`).
    async fn make_network(&self, spec: &TrainSpec) -> Result<String, BackendError> {
        let name = format!("{}-net", spec.name);
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(NETWORK_OF.into(), spec.name.clone());
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("overlay".into()),
            internal: Some(true),
            attachable: Some(false),
            labels: Some(labels),
            ..Default::default()
        };
        // A leftover of an earlier attempt under the same name goes first.
        let _ = self.manager.docker.remove_network(&name).await;
        self.manager
            .docker
            .create_network(request)
            .await
            .map_err(|e| BackendError::Container {
                id: spec.name.clone(),
                message: format!("cannot create network {name}: {e}"),
            })?;
        Ok(name)
    }

    /// Ends the task (SIGTERM, SIGKILL after `grace`) by scaling the service to no replicas; the
    /// service and its log stay until [`remove_service`](Self::remove_service).
    pub(super) async fn scale_to_zero(
        &self,
        id: &ContainerId,
        grace: Duration,
    ) -> Result<(), BackendError> {
        let fail = |message: String| BackendError::Container {
            id: id.to_string(),
            message,
        };
        let service = match self.manager.docker.inspect_service(&id.0, None).await {
            Ok(s) => s,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) => return Err(fail(format!("cannot stop: {e}"))),
        };
        let version = service.version.and_then(|v| v.index).unwrap_or(0);
        let Some(mut spec) = service.spec else {
            return Err(fail("the manager sent the service without its spec".into()));
        };
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
            ..Default::default()
        });
        if let Some(c) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        {
            c.stop_grace_period = Some(grace.as_nanos().try_into().unwrap_or(i64::MAX));
        }
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.manager
            .docker
            .update_service(&id.0, spec, options, None)
            .await
            .map_err(|e| fail(format!("cannot stop: {e}")))?;
        Ok(())
    }

    /// Removes the service, then (once its task is gone) its network and the trial image's tag on
    /// the manager. One already gone is fine.
    pub(super) async fn remove_service(&self, id: &ContainerId) -> Result<(), BackendError> {
        let service = match self.manager.docker.inspect_service(&id.0, None).await {
            Ok(s) => s,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) => return Err(self.manager.unavailable(e)),
        };
        let name = service
            .spec
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_default();
        match self.manager.docker.delete_service(&id.0).await {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                return Err(BackendError::Container {
                    id: id.to_string(),
                    message: format!("cannot remove: {e}"),
                });
            }
        }
        let deadline = tokio::time::Instant::now() + TASK_GONE;
        let network = format!("{name}-net");
        loop {
            match self.manager.docker.remove_network(&network).await {
                Ok(()) => break,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(BackendError::Container {
                        id: id.to_string(),
                        message: format!("cannot remove network {network}: {e}"),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
        self.forget_trial_image(&name).await;
        Ok(())
    }

    /// Services carrying all of `labels`; running while their task runs.
    pub(super) async fn find_services(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<FoundContainer>, BackendError> {
        let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let options = ListServicesOptionsBuilder::default()
            .filters(&HashMap::from([("label".to_string(), filter)]))
            .build();
        let services = self
            .manager
            .docker
            .list_services(Some(options))
            .await
            .map_err(|e| self.manager.unavailable(e))?;
        let mut found = Vec::new();
        for s in services {
            let Some(id) = s.id else { continue };
            let id = ContainerId(id);
            let running = matches!(
                self.task_view(&id).await?.map(|t| t.container_state()),
                Some(crate::core::model::ContainerState::Running)
            );
            let labels = s
                .spec
                .and_then(|s| s.labels)
                .unwrap_or_default()
                .into_iter()
                .collect();
            found.push(FoundContainer {
                id,
                labels,
                running,
            });
        }
        Ok(found)
    }

    /// What one task can have: the largest CPUs and memory of any node; and how many nodes take
    /// tasks now (ready, active).
    pub(super) async fn largest_node(&self) -> Result<EngineLimits, BackendError> {
        let nodes = self
            .manager
            .docker
            .list_nodes(None)
            .await
            .map_err(|e| self.manager.unavailable(e))?;
        let mut limits = EngineLimits {
            cpus: 0,
            memory_bytes: 0,
            hosts: 0,
        };
        for n in nodes {
            let ready = n.status.and_then(|s| s.state) == Some(NodeState::READY);
            let active =
                n.spec.and_then(|s| s.availability) == Some(NodeSpecAvailabilityEnum::ACTIVE);
            let Some(res) = n.description.and_then(|d| d.resources) else {
                continue;
            };
            if ready && active {
                limits.hosts += 1;
            }
            let cpus = res.nano_cpus.unwrap_or(0).max(0) as u64 / 1_000_000_000;
            let mem = res.memory_bytes.unwrap_or(0).max(0) as u64;
            limits.cpus = limits.cpus.max(cpus);
            limits.memory_bytes = limits.memory_bytes.max(mem);
        }
        Ok(limits)
    }
}

/// The service of one trial. `[resources]` is reserved (Swarm places the task only where it fits)
/// and enforced as a limit. `/workspace`, `/mlops` and `/tmp` are the only writable places:
/// anonymous volumes, which the engine fills from the image (so with the trial's files, owned by its
/// user) and removes with the task. Not memory file systems: Swarm of Docker 20.10 ignores a tmpfs
/// mount's mode, leaving it writable by root only. Each file at most `[resources] disk`.
fn service_spec(spec: &TrainSpec, image: &str, network: &str) -> ServiceSpec {
    let nano_cpus = (spec.cpus * 1e9) as i64;
    let memory = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
    let disk = i64::try_from(spec.disk_bytes).unwrap_or(i64::MAX);
    let volume = |target: &str| Mount {
        target: Some(target.into()),
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    let container = TaskSpecContainerSpec {
        image: Some(image.into()),
        labels: Some(labels.clone()),
        command: Some(results::wrapper(&spec.command)),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        dir: Some("/workspace".into()),
        user: Some(spec.user.clone()),
        read_only: Some(true),
        capability_drop: Some(vec!["ALL".into()]),
        mounts: Some(vec![volume("/workspace"), volume("/mlops"), volume("/tmp")]),
        ulimits: Some(vec![bollard::models::ResourcesUlimits {
            name: Some("fsize".into()),
            soft: Some(disk),
            hard: Some(disk),
        }]),
        stop_grace_period: Some(10_000_000_000),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some(nano_cpus),
                    memory_bytes: Some(memory),
                    pids: Some(spec.pids),
                }),
                reservations: Some(ResourceObject {
                    nano_cpus: Some(nano_cpus),
                    memory_bytes: Some(memory),
                    generic_resources: spec.gpus.as_ref().and_then(gpu_reservation),
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.into()),
                ..Default::default()
            }]),
            log_driver: Some(TaskSpecLogDriver {
                name: Some("json-file".into()),
                options: Some(HashMap::from([
                    ("max-size".to_string(), "128m".to_string()),
                    ("max-file".to_string(), "8".to_string()),
                ])),
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The attempt the trial is (`MLOPS_ATTEMPT`, 0 for the first).
fn attempt_of(spec: &TrainSpec) -> u32 {
    spec.env
        .iter()
        .find(|(k, _)| k == "MLOPS_ATTEMPT")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The kind under which a node advertises its NVIDIA GPUs to Swarm (`node-generic-resources` in the
/// node's daemon.json, e.g. `"NVIDIA-GPU=GPU-1a2b…"`), as NVIDIA's container toolkit documents it.
const GPU_KIND: &str = "NVIDIA-GPU";

/// `[resources] gpus` as a Swarm reservation: a count, or the named devices. `All` has no Swarm form
/// (refused before the service is made); `None` for it here.
fn gpu_reservation(gpus: &GpuRequest) -> Option<GenericResources> {
    match gpus {
        GpuRequest::Count(n) => Some(vec![GenericResourcesInner {
            discrete_resource_spec: Some(GenericResourcesInnerDiscreteResourceSpec {
                kind: Some(GPU_KIND.into()),
                value: Some(i64::from(*n)),
            }),
            ..Default::default()
        }]),
        GpuRequest::Devices(ids) => Some(
            ids.iter()
                .map(|id| GenericResourcesInner {
                    named_resource_spec: Some(GenericResourcesInnerNamedResourceSpec {
                        kind: Some(GPU_KIND.into()),
                        value: Some(id.clone()),
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
        GpuRequest::All => None,
    }
}

#[cfg(test)]
mod gpu_tests {
    use super::*;

    #[test]
    fn a_gpu_count_is_a_discrete_reservation_and_device_ids_are_named_ones() {
        let count = gpu_reservation(&GpuRequest::Count(2)).unwrap_or_default();
        let spec = count[0].discrete_resource_spec.clone().unwrap_or_default();
        assert_eq!(
            (spec.kind.as_deref(), spec.value),
            (Some("NVIDIA-GPU"), Some(2))
        );
        let named =
            gpu_reservation(&GpuRequest::Devices(vec!["0".into(), "2".into()])).unwrap_or_default();
        let ids: Vec<_> = named
            .iter()
            .filter_map(|g| g.named_resource_spec.as_ref()?.value.clone())
            .collect();
        assert_eq!(ids, ["0", "2"]);
        assert!(gpu_reservation(&GpuRequest::All).is_none());
    }
}
