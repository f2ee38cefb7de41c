//! Watching the engine: container events (start, die, oom) and the containers that carry given labels.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::StreamExt;

use super::DockerBackend;
use crate::adapters::backend::{BackendError, EventStream, FoundContainer};
use crate::core::ids::ContainerId;
use crate::core::model::ContainerAction;
use crate::core::model::ContainerEvent;

impl DockerBackend {
    /// The engine's start, die and oom events of the containers carrying all of `labels`.
    pub(super) fn container_events(&self, labels: &[(String, String)]) -> EventStream {
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
                        Ok(ContainerEvent {
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

    /// The containers, running or not, that carry all of `labels`.
    pub(super) async fn find_labelled(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<FoundContainer>, BackendError> {
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
