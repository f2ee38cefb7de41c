//! Whether a container is frozen: paused (the cgroup freezer) or every process of it stopped by a
//! signal (SIGSTOP, SIGTSTP; a debugger). A frozen script reports nothing, and that is no sign that
//! it hangs: the metric's silence is not counted against it.

use bollard::query_parameters::TopOptionsBuilder;

use super::DockerBackend;
use crate::adapters::backend::BackendError;
use crate::core::ids::ContainerId;

impl DockerBackend {
    /// Paused, or every process in the `T` (stopped) state of `ps`. The engine runs `ps` for
    /// `docker top`; an engine that cannot answers an error, taken by callers as "not frozen".
    pub(super) async fn frozen_now(&self, id: &ContainerId) -> Result<bool, BackendError> {
        let info = self
            .docker
            .inspect_container(&id.0, None)
            .await
            .map_err(|e| self.unavailable(e))?;
        if info.state.and_then(|s| s.paused).unwrap_or(false) {
            return Ok(true);
        }
        let options = TopOptionsBuilder::default().ps_args("-o pid,stat").build();
        let top = self
            .docker
            .top_processes(&id.0, Some(options))
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(all_stopped(
            &top.titles.unwrap_or_default(),
            &top.processes.unwrap_or_default(),
        ))
    }
}

/// True when the `STAT` column is there and every process (at least one) is stopped (`T`; `t` is
/// stopped by a tracer).
fn all_stopped(titles: &[String], processes: &[Vec<String>]) -> bool {
    let Some(col) = titles.iter().position(|t| t == "STAT") else {
        return false;
    };
    !processes.is_empty()
        && processes.iter().all(|p| {
            p.get(col)
                .is_some_and(|s| s.starts_with('T') || s.starts_with('t'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(stats: &[&str]) -> Vec<Vec<String>> {
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| vec![i.to_string(), (*s).to_string()])
            .collect()
    }

    #[test]
    fn frozen_only_when_every_process_is_stopped() {
        let titles = vec!["PID".to_string(), "STAT".to_string()];
        assert!(all_stopped(&titles, &rows(&["Ts", "T"])));
        assert!(!all_stopped(&titles, &rows(&["Ts", "S"])));
        assert!(!all_stopped(&titles, &rows(&[])));
        assert!(!all_stopped(&["PID".to_string()], &rows(&["T"])));
    }
}
