//! Trials on a Docker Swarm: the manager's engine builds each trial's image (its workspace as a
//! layer on the profile image), pushes it to the cluster's registry, and runs it as a service of one
//! replica that Swarm places on a node by its reservations. The service never restarts a task (restart
//! condition `none`): a new attempt is a new service, decided by our own revival policy.
//!
//! Nothing here reaches a node's engine: files go in as an image layer and come back through the
//! service's log (see [`results`]), because Swarm moves no files and a node may be anywhere.
//!
//! Engines of Swarm's age (Docker 20.10) speak API 1.41: a swarm engine's client negotiates its
//! version at connect time. Docker engines of `[[engines]]` keep the client's own version.

mod image;
mod live;
mod nodes;
mod results;
mod service;
mod tasks;

pub use tasks::TaskView;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::DockerBackend;
use crate::adapters::backend::{
    BackendError, BoxFuture, ContainerBackend, Copied, EventStream, FoundContainer, LogStream,
    Progress, TrainSpec,
};
use crate::core::config::{EngineLimits, EngineSpec};
use crate::core::ids::ContainerId;
use crate::core::model::{ContainerState, ExitStatus, ImageSpec, LogLine};

/// A swarm, reached through its manager. Container ids it hands out are service ids.
pub struct SwarmBackend {
    /// The manager's engine: builds trial images, pushes them, and answers for the cluster.
    manager: DockerBackend,
    /// `host:port` of the registry the nodes pull from.
    registry: String,
    /// Checkpoint archives the running tasks printed, newest per service.
    captures: live::Captures,
    /// Placement constraints of the engine's `[[engines]]` entry, on every trial service.
    constraints: Vec<String>,
}

impl SwarmBackend {
    /// Connects to the manager of the swarm `spec` names (`kind = "swarm"`), negotiating the API
    /// version, and checks that it is a manager. `image_source` is the engine profile images are
    /// built on (they are copied to the manager, which pushes them).
    pub async fn connect(
        spec: &EngineSpec,
        image_source: Option<Arc<DockerBackend>>,
    ) -> Result<SwarmBackend, BackendError> {
        let Some(registry) = spec.swarm_registry() else {
            return Err(BackendError::Other(format!(
                "engine {}: not a swarm (kind = \"swarm\" is not set)",
                spec.name
            )));
        };
        let mut manager = DockerBackend::connect(spec)?;
        let endpoint = manager.endpoint.clone();
        manager.docker =
            manager
                .docker
                .negotiate_version()
                .await
                .map_err(|e| BackendError::Unavailable {
                    endpoint,
                    message: crate::core::text::error_chain(&e),
                })?;
        if let Some(source) = image_source {
            manager = manager.with_image_source(source);
        }
        let backend = SwarmBackend {
            manager,
            registry: registry.to_string(),
            captures: live::Captures::default(),
            constraints: spec.swarm_constraints().to_vec(),
        };
        backend.check_manager().await?;
        Ok(backend)
    }

    /// The bollard client of the manager, for tests and tools.
    pub fn client(&self) -> &bollard::Docker {
        &self.manager.docker
    }

    /// An engine that is not a swarm manager cannot create services: say so, and how to fix it.
    async fn check_manager(&self) -> Result<(), BackendError> {
        let info = self
            .manager
            .docker
            .info()
            .await
            .map_err(|e| self.manager.unavailable(e))?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.control_available != Some(true) {
            let state = swarm
                .local_node_state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            let fault = crate::core::triage::SetupFault::not_manager(
                &self.manager.name,
                &self.manager.endpoint,
                &state,
            );
            return Err(BackendError::Other(fault.to_string()));
        }
        Ok(())
    }
}

impl ContainerBackend for SwarmBackend {
    fn endpoint(&self) -> String {
        self.manager.endpoint.clone()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.manager.ping().await?;
            self.check_manager().await
        })
    }

    fn limits(&self) -> BoxFuture<'_, Result<EngineLimits, BackendError>> {
        Box::pin(self.largest_node())
    }

    fn prepare_image<'a>(
        &'a self,
        image: &'a ImageSpec,
        progress: Progress,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        self.manager.prepare_image(image, progress)
    }

    fn start(&self, spec: TrainSpec) -> BoxFuture<'_, Result<ContainerId, BackendError>> {
        Box::pin(self.start_service(spec))
    }

    fn logs(&self, id: &ContainerId) -> LogStream {
        self.follow_service_logs(id)
    }

    fn tail<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<LogLine>, BackendError>> {
        Box::pin(async move {
            let lines = self.whole_log(id).await?;
            let mut lines = results::without_archives(lines);
            lines.retain(|l| !live::is_archive_line(l));
            let skip = lines.len().saturating_sub(n);
            Ok(lines.into_iter().skip(skip).collect())
        })
    }

    fn wait<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<ExitStatus, BackendError>> {
        Box::pin(self.wait_task(id))
    }

    fn stop<'a>(
        &'a self,
        id: &'a ContainerId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.scale_to_zero(id, grace))
    }

    fn remove<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.captures.forget(&id.0);
            self.remove_service(id).await
        })
    }

    /// A task that ended stays ended: a new attempt is a new service.
    fn restart<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            Err(BackendError::Container {
                id: id.to_string(),
                message: "a swarm service is never restarted: a new attempt is a new service"
                    .into(),
            })
        })
    }

    fn revives_in_place(&self) -> bool {
        false
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<ContainerState>, BackendError>> {
        Box::pin(async move { Ok(self.task_view(id).await?.map(|t| t.container_state())) })
    }

    /// A task not yet placed, or placed and not yet started, says why in Swarm's words.
    fn waiting<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>> {
        Box::pin(async move { Ok(self.task_view(id).await?.and_then(|t| t.waiting())) })
    }

    /// Docker 20.10 sends no task events: followers poll [`wait`](Self::wait) and
    /// [`inspect`](Self::inspect) instead, so this stream ends at once.
    fn events(&self, _labels: &[(String, String)]) -> EventStream {
        Box::pin(futures_util::stream::empty())
    }

    fn find<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<FoundContainer>, BackendError>> {
        Box::pin(self.find_services(labels))
    }

    fn shares_disk(&self) -> bool {
        false
    }

    fn nodes<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Option<Vec<crate::core::model::NodeView>>, BackendError>> {
        Box::pin(async move { self.list_node_views(labels).await.map(Some) })
    }

    fn copy_out<'a>(
        &'a self,
        id: &'a ContainerId,
        from: &'a str,
        to: &'a Path,
        cap: u64,
    ) -> BoxFuture<'a, Result<Copied, BackendError>> {
        Box::pin(async move {
            if from.trim_end_matches('/') == live::CHECKPOINTS {
                if let Some(c) = self.captures.newest(&id.0) {
                    return results::unpack_tar(id, &c.tar, from, to, cap).await;
                }
            }
            let lines = self.whole_log(id).await?;
            results::unpack_from_log(id, &lines, from, to, cap).await
        })
    }
}

impl SwarmBackend {
    /// Every line the service's task printed so far (not following), archives included.
    async fn whole_log(&self, id: &ContainerId) -> Result<Vec<LogLine>, BackendError> {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .follow(false)
            .stdout(true)
            .stderr(true)
            .build();
        let raw = self.manager.docker.service_logs(&id.0, Some(options));
        super::logs::split_lines(raw, id.clone())
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// The task's output as it comes, without the archives of its results, until the task ends. A
    /// followed service log does not end with its task (and hangs when the task's node dies), so the
    /// task is polled beside it; once it has ended, what the follower had not yet delivered is read
    /// from the whole log.
    fn follow_service_logs(&self, id: &ContainerId) -> LogStream {
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let raw = self.manager.docker.service_logs(&id.0, Some(options));
        let follow = super::logs::split_lines(raw, id.clone());
        let state = Follow {
            follow: Some(Box::pin(follow)),
            seen: 0,
            rest: std::collections::VecDeque::new(),
            ended: false,
            docker: self.manager.docker.clone(),
            endpoint: self.manager.endpoint.clone(),
            id: id.clone(),
        };
        let lines = futures_util::stream::unfold(state, Follow::next);
        let mut checkpoints = live::Assembler::new(&id.0, self.captures.clone());
        let lines = lines.filter(move |l| {
            let script = match l {
                Ok(l) => !checkpoints.take(l),
                Err(_) => true,
            };
            std::future::ready(script)
        });
        Box::pin(results::skip_archives(lines))
    }
}

/// Between two looks at whether a followed task has ended.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// The state of [`SwarmBackend::follow_service_logs`].
struct Follow {
    follow: Option<LogStream>,
    /// Lines the follower delivered.
    seen: usize,
    /// After the task ended: the lines of the whole log the follower had not delivered.
    rest: std::collections::VecDeque<LogLine>,
    ended: bool,
    docker: bollard::Docker,
    endpoint: String,
    id: ContainerId,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<LogLine, BackendError>, Follow)> {
        loop {
            if let Some(line) = self.rest.pop_front() {
                return Some((Ok(line), self));
            }
            if self.ended {
                return None;
            }
            let Some(follow) = self.follow.as_mut() else {
                return self.finish().await;
            };
            tokio::select! {
                line = follow.next() => match line {
                    Some(Ok(line)) => {
                        self.seen += 1;
                        return Some((Ok(line), self));
                    }
                    Some(Err(e)) => {
                        self.follow = None;
                        return Some((Err(e), self));
                    }
                    None => self.follow = None,
                },
                () = tokio::time::sleep(FOLLOW_POLL) => {
                    let done = match tasks::newest_task(&self.docker, &self.id).await {
                        Ok(view) => view.is_none_or(|v| v.ended),
                        Err(_) => false,
                    };
                    if done {
                        self.follow = None;
                    }
                }
            }
        }
    }

    /// The task ended (or the follower stopped): the lines it had not delivered, from the whole log.
    async fn finish(mut self) -> Option<(Result<LogLine, BackendError>, Follow)> {
        self.ended = true;
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .follow(false)
            .stdout(true)
            .stderr(true)
            .build();
        let raw = self.docker.service_logs(&self.id.0, Some(options));
        let all: Result<Vec<LogLine>, BackendError> =
            super::logs::split_lines(raw, self.id.clone())
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect();
        match all {
            Ok(all) => {
                self.rest = all.into_iter().skip(self.seen).collect();
                let line = self.rest.pop_front()?;
                Some((Ok(line), self))
            }
            Err(e) => Some((
                Err(BackendError::Unavailable {
                    endpoint: self.endpoint.clone(),
                    message: e.to_string(),
                }),
                self,
            )),
        }
    }
}
