//! A service's task as Swarm reports it: where it was placed, in what state, and why it waits.
//! Docker 20.10 sends no task events, so the task list is polled.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{NodeState, Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;

use super::SwarmBackend;
use crate::adapters::backend::BackendError;
use crate::core::ids::ContainerId;
use crate::core::model::{ContainerState, ExitStatus};

/// Between two looks at a task that has not ended.
const POLL: Duration = Duration::from_millis(500);
/// How long a task's node may stay down, as Swarm reports it, before the task counts as lost.
/// Swarm itself marks a node down only after its heartbeats stop (some 10 s here): this adds a
/// little to ride out a manager's brief doubt.
const NODE_GRACE: Duration = Duration::from_secs(3);

/// The newest task of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub task: String,
    /// The node Swarm placed it on (empty while unplaced).
    pub node: String,
    pub state: String,
    /// Swarm's words for the state: "pending", "no suitable node (insufficient resources on 3
    /// nodes)", "started", an error…
    pub message: String,
    pub exit_code: Option<i64>,
    /// The state is final: the task will not run again.
    pub ended: bool,
}

impl TaskView {
    fn of(task: Task) -> TaskView {
        let status = task.status.unwrap_or_default();
        let state = status.state.unwrap_or(TaskState::NEW);
        let ended = matches!(
            state,
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::SHUTDOWN
                | TaskState::REJECTED
                | TaskState::ORPHANED
                | TaskState::REMOVE
        );
        let message = match status.err.filter(|e| !e.is_empty()) {
            Some(err) => err,
            None => status.message.unwrap_or_default(),
        };
        TaskView {
            task: task.id.unwrap_or_default(),
            node: task.node_id.unwrap_or_default(),
            state: state.to_string(),
            message,
            exit_code: status.container_status.and_then(|c| c.exit_code),
            ended,
        }
    }

    /// Why the task does not run yet, in Swarm's words: a pending task's reason ("no suitable node
    /// (insufficient resources on 3 nodes)"), or the step it is at ("preparing": pulling the image).
    /// `None` once it runs or ended.
    pub fn waiting(&self) -> Option<String> {
        if self.ended || self.state == "running" {
            return None;
        }
        let words = match self.message.trim() {
            "" => self.state.clone(),
            m if m == self.state => m.to_string(),
            m => format!("{} ({m})", self.state),
        };
        Some(words)
    }

    /// The task as a container's state: waiting for a node or an image is starting.
    pub fn container_state(&self) -> ContainerState {
        if self.ended {
            ContainerState::Exited(ExitStatus {
                code: self.exit_code.unwrap_or(-1),
                oom_killed: false,
            })
        } else if self.state == "running" {
            ContainerState::Running
        } else {
            ContainerState::Starting
        }
    }
}

impl SwarmBackend {
    /// The service's newest task; `None` when the service is gone.
    pub async fn task_view(&self, id: &ContainerId) -> Result<Option<TaskView>, BackendError> {
        newest_task(&self.manager.docker, id)
            .await
            .map_err(|e| self.manager.unavailable(e))
    }
}

/// The newest task of the service `id`, from the manager `docker`; `None` when the service is gone.
pub(super) async fn newest_task(
    docker: &bollard::Docker,
    id: &ContainerId,
) -> Result<Option<TaskView>, bollard::errors::Error> {
    let options = ListTasksOptionsBuilder::default()
        .filters(&HashMap::from([(
            "service".to_string(),
            vec![id.0.clone()],
        )]))
        .build();
    let tasks = match docker.list_tasks(Some(options)).await {
        Ok(t) => t,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let newest = tasks.into_iter().max_by_key(|t| {
        (
            t.version.as_ref().and_then(|v| v.index).unwrap_or(0),
            t.created_at.clone().map(|d| d.to_string()),
        )
    });
    match newest {
        Some(t) => Ok(Some(TaskView::of(t))),
        None => match docker.inspect_service(&id.0, None).await {
            Ok(service) if scaled_to_zero(&service) => Ok(Some(TaskView {
                task: String::new(),
                node: String::new(),
                state: "removed".into(),
                message: STOPPED.into(),
                exit_code: Some(STOPPED_CODE),
                ended: true,
            })),
            Ok(_) => Ok(Some(TaskView {
                task: String::new(),
                node: String::new(),
                state: "new".into(),
                message: "no task yet".into(),
                exit_code: None,
                ended: false,
            })),
            Err(_) => Ok(None),
        },
    }
}

/// What a service stopped by scaling it to no replicas says: Swarm removes the task of a service
/// scaled down, and its exit status with it.
const STOPPED: &str = "stopped (the service was scaled to no replicas; Swarm removed its task)";
/// The exit status of a task stopped that way: SIGTERM's, as an engine reports a stopped container.
const STOPPED_CODE: i64 = 143;

/// Whether `service` was scaled to no replicas ([`SwarmBackend::scale_to_zero`]).
fn scaled_to_zero(service: &bollard::models::Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        == Some(0)
}

impl SwarmBackend {
    /// Waits for the service's task to end and answers its exit status. A task Swarm rejected (an
    /// image the nodes cannot pull, a spec a node refuses) is an error with Swarm's reason.
    pub(super) async fn wait_task(&self, id: &ContainerId) -> Result<ExitStatus, BackendError> {
        let mut down_since: Option<tokio::time::Instant> = None;
        loop {
            let Some(view) = self.task_view(id).await? else {
                return Err(BackendError::Container {
                    id: id.to_string(),
                    message: "the service is gone".into(),
                });
            };
            if view.ended {
                return match view.exit_code {
                    Some(code) => Ok(ExitStatus {
                        code,
                        oom_killed: false,
                    }),
                    None => Err(BackendError::Container {
                        id: id.to_string(),
                        message: format!(
                            "the swarm ended the task without running it ({}): {}",
                            view.state, view.message
                        ),
                    }),
                };
            }
            match self.node_down(&view).await {
                None => down_since = None,
                Some(why) => {
                    let since = *down_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= NODE_GRACE {
                        return Err(BackendError::Lost {
                            id: id.to_string(),
                            message: why,
                        });
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Why the node of a placed, unfinished task cannot be running it: Swarm says the node is down
    /// (its heartbeats stopped) or gone. `None` while the node is ready, or the task not placed.
    async fn node_down(&self, view: &TaskView) -> Option<String> {
        if view.node.is_empty() {
            return None;
        }
        let node = match self.manager.docker.inspect_node(&view.node).await {
            Ok(node) => node,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Some(format!("its node {} left the swarm", view.node)),
            // The manager itself did not answer: not a sign about the node.
            Err(_) => return None,
        };
        let host = node
            .description
            .and_then(|d| d.hostname)
            .unwrap_or_else(|| view.node.clone());
        let status = node.status.unwrap_or_default();
        let state = status.state.unwrap_or(NodeState::UNKNOWN);
        if matches!(state, NodeState::READY) {
            return None;
        }
        let addr = status
            .addr
            .filter(|a| !a.is_empty())
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let said = status.message.filter(|m| !m.is_empty());
        Some(format!(
            "its node {host}{addr} is {state}{}",
            said.map(|m| format!(", Swarm says \"{m}\""))
                .unwrap_or_default()
        ))
    }
}
