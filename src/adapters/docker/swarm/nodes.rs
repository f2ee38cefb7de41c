//! The swarm's nodes as the dashboard shows them: from the manager's node list, and its task list
//! for the trials of this store (services carrying its labels) that the manager means to run
//! (desired state `running`): where each is placed, and what it reserves there.

use std::collections::HashMap;

use bollard::models::{
    Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState as SwarmNodeState, Task,
};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};

use super::SwarmBackend;
use crate::adapters::backend::BackendError;
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::model::{
    NodeAvailability, NodeRole, NodeState, NodeTrial, NodeView, labels, name_nodes,
};

impl SwarmBackend {
    /// Every node of the swarm, with what the trials of the services carrying all of `labels`
    /// reserve on it and which of them run there.
    pub(super) async fn list_node_views(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<NodeView>, BackendError> {
        let mut views = self.named_nodes().await?;
        let ours = self.our_services(labels).await?;
        let options = ListTasksOptionsBuilder::default()
            .filters(&HashMap::from([(
                "desired-state".to_string(),
                vec!["running".to_string()],
            )]))
            .build();
        let tasks = self
            .manager
            .docker
            .list_tasks(Some(options))
            .await
            .map_err(|e| self.manager.unavailable(e))?;
        for task in tasks {
            place_task(&mut views, &ours, task);
        }
        for v in &mut views {
            v.trials.sort_by_key(|t| (t.run, t.no));
        }
        Ok(views)
    }

    /// The swarm's nodes, managers first, then by hostname and address, each named
    /// ([`name_nodes`]), with nothing placed on them.
    async fn named_nodes(&self) -> Result<Vec<NodeView>, BackendError> {
        let nodes = self
            .manager
            .docker
            .list_nodes(None)
            .await
            .map_err(|e| self.manager.unavailable(e))?;
        let mut views: Vec<NodeView> = nodes.into_iter().map(node_view).collect();
        views.sort_by(|a, b| {
            let key = |n: &NodeView| (!n.is_manager(), n.hostname.clone(), n.address.clone());
            key(a).cmp(&key(b))
        });
        name_nodes(&mut views);
        Ok(views)
    }

    /// The node (its name among the swarm's nodes) trial `id` (a service) is placed on; `None`
    /// while its task waits for a node or when the service is gone.
    pub async fn node_of(&self, id: &ContainerId) -> Result<Option<String>, BackendError> {
        let Some(task) = self.task_view(id).await? else {
            return Ok(None);
        };
        if task.node.is_empty() {
            return Ok(None);
        }
        let views = self.named_nodes().await?;
        Ok(views
            .into_iter()
            .find(|n| n.id == task.node)
            .map(|n| n.name))
    }

    /// The run and iteration of each service carrying all of `labels`, by service id.
    async fn our_services(
        &self,
        labels: &[(String, String)],
    ) -> Result<HashMap<String, (RunId, IterationNo)>, BackendError> {
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
        Ok(services
            .into_iter()
            .filter_map(|s| {
                let id = s.id?;
                let labels = s.spec?.labels?;
                let run = labels.get(labels::RUN)?.parse().ok().map(RunId)?;
                let no = labels
                    .get(labels::ITERATION)?
                    .parse()
                    .ok()
                    .map(IterationNo)?;
                Some((id, (run, no)))
            })
            .collect())
    }
}

/// A node as the manager lists it, with nothing placed yet.
fn node_view(n: Node) -> NodeView {
    let spec = n.spec.unwrap_or_default();
    let status = n.status.unwrap_or_default();
    let description = n.description.unwrap_or_default();
    let resources = description.resources.unwrap_or_default();
    let manager = n.manager_status;
    let role = match (spec.role, &manager) {
        (Some(NodeSpecRoleEnum::MANAGER), m) => NodeRole::Manager {
            leader: m.as_ref().and_then(|m| m.leader).unwrap_or(false),
        },
        _ => NodeRole::Worker,
    };
    // A manager may report 0.0.0.0 as its own address: its manager address says where it is.
    let address = status
        .addr
        .filter(|a| !a.is_empty() && a != "0.0.0.0")
        .or_else(|| {
            let addr = manager?.addr?;
            Some(
                addr.rsplit_once(':')
                    .map_or(addr.clone(), |(h, _)| h.into()),
            )
        })
        .unwrap_or_default();
    NodeView {
        id: n.id.unwrap_or_default(),
        hostname: description.hostname.unwrap_or_default(),
        name: String::new(),
        address,
        role,
        state: match status.state {
            Some(SwarmNodeState::READY) => NodeState::Ready,
            Some(SwarmNodeState::DOWN) => NodeState::Down,
            Some(SwarmNodeState::DISCONNECTED) => NodeState::Disconnected,
            _ => NodeState::Unknown,
        },
        availability: match spec.availability {
            Some(NodeSpecAvailabilityEnum::PAUSE) => NodeAvailability::Pause,
            Some(NodeSpecAvailabilityEnum::DRAIN) => NodeAvailability::Drain,
            _ => NodeAvailability::Active,
        },
        cpus: resources.nano_cpus.unwrap_or(0).max(0) as f64 / 1e9,
        memory_bytes: resources.memory_bytes.unwrap_or(0).max(0) as u64,
        reserved_cpus: 0.0,
        reserved_memory_bytes: 0,
        trials: Vec::new(),
    }
}

/// Counts `task` on its node when it is one of `ours` and placed: its reservation, and the trial.
fn place_task(views: &mut [NodeView], ours: &HashMap<String, (RunId, IterationNo)>, task: Task) {
    let Some(&(run, no)) = task.service_id.as_ref().and_then(|s| ours.get(s)) else {
        return;
    };
    let Some(node) = task.node_id.as_ref().filter(|n| !n.is_empty()) else {
        return;
    };
    let Some(view) = views.iter_mut().find(|v| &v.id == node) else {
        return;
    };
    let reserved = task
        .spec
        .and_then(|s| s.resources)
        .and_then(|r| r.reservations)
        .unwrap_or_default();
    view.reserved_cpus += reserved.nano_cpus.unwrap_or(0).max(0) as f64 / 1e9;
    view.reserved_memory_bytes += reserved.memory_bytes.unwrap_or(0).max(0) as u64;
    let task_state = task
        .status
        .and_then(|s| s.state)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "new".into());
    view.trials.push(NodeTrial {
        service: ContainerId(task.service_id.unwrap_or_default()),
        run,
        no,
        task_state,
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bollard::models::{
        ManagerStatus, NodeDescription, NodeSpec, NodeStatus, ResourceObject, TaskSpec,
        TaskSpecResources, TaskState, TaskStatus,
    };

    use super::*;

    fn node(id: &str, role: NodeSpecRoleEnum, state: SwarmNodeState) -> Node {
        Node {
            id: Some(id.into()),
            spec: Some(NodeSpec {
                role: Some(role),
                availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: Some("host".into()),
                resources: Some(ResourceObject {
                    nano_cpus: Some(2_000_000_000),
                    memory_bytes: Some(4 << 30),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(state),
                addr: Some("0.0.0.0".into()),
                ..Default::default()
            }),
            manager_status: (role == NodeSpecRoleEnum::MANAGER).then(|| ManagerStatus {
                leader: Some(true),
                addr: Some("10.78.0.11:2377".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(service: &str, node: &str, cpus: i64) -> Task {
        Task {
            service_id: Some(service.into()),
            node_id: Some(node.into()),
            spec: Some(TaskSpec {
                resources: Some(TaskSpecResources {
                    reservations: Some(ResourceObject {
                        nano_cpus: Some(cpus),
                        memory_bytes: Some(512 << 20),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: Some(TaskState::RUNNING),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The leader's address comes from its manager address; only our services' placed tasks count.
    #[test]
    fn tasks_of_our_services_are_counted_on_their_node() {
        let mut views = vec![
            node_view(node("m", NodeSpecRoleEnum::MANAGER, SwarmNodeState::READY)),
            node_view(node("w", NodeSpecRoleEnum::WORKER, SwarmNodeState::DOWN)),
        ];
        assert_eq!(views[0].role, NodeRole::Manager { leader: true });
        assert_eq!(views[0].address, "10.78.0.11");
        assert_eq!((views[0].cpus, views[1].state), (2.0, NodeState::Down));
        let ours = HashMap::from([("svc".to_string(), (RunId(2), IterationNo(3)))]);
        place_task(&mut views, &ours, task("svc", "w", 1_500_000_000));
        place_task(&mut views, &ours, task("other", "w", 1_000_000_000));
        place_task(&mut views, &ours, task("svc", "", 1_000_000_000));
        assert_eq!(views[1].reserved_cpus, 1.5);
        assert_eq!(views[1].reserved_memory_bytes, 512 << 20);
        assert_eq!(views[1].trials.len(), 1);
        assert_eq!(views[1].trials[0].task_state, "running");
        assert!(views[1].runs(RunId(2), IterationNo(3)));
        assert!(views[0].trials.is_empty() && views[0].reserved_cpus == 0.0);
    }
}
