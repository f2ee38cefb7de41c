//! Finding the run and iteration a message is about. A message about a run that is no longer the
//! current one finds nothing and is ignored.

use crate::core::ids::{IterationNo, RunId};
use crate::core::model::RunStatus;
use crate::engine::state::{IterState, PipelineState, RunState};

pub(super) fn run_mut(state: &mut PipelineState, run: RunId) -> Option<&mut RunState> {
    state.run.as_mut().filter(|r| r.id == run)
}

/// `run` is the current run and still running.
pub(super) fn is_current(state: &PipelineState, run: RunId) -> bool {
    state
        .run
        .as_ref()
        .is_some_and(|r| r.id == run && r.status == RunStatus::Running)
}

pub(super) fn iter_mut(
    state: &mut PipelineState,
    run: RunId,
    no: IterationNo,
) -> Option<&mut IterState> {
    run_mut(state, run).and_then(|r| r.iteration_mut(no))
}

/// The current run's id, for events that belong to whatever run is on.
pub(super) fn current_run(state: &PipelineState) -> Option<RunId> {
    state.run.as_ref().map(|r| r.id)
}
