//! What the operator asks of the loop (the dashboard's keys and commands).

use crate::core::config::ApplyMode;

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// Apply the proposal waiting for approval.
    Approve,
    /// Drop the waiting proposal and propose another point.
    Reject,
    /// Change one parameter of the waiting proposal.
    Edit {
        name: String,
        raw: String,
    },
    SetApply(ApplyMode),
    /// Stop the training container and fail the iteration.
    StopTraining,
    /// Start a run on the branch's head now (the reducer asks the runtime to read the head).
    TriggerNow,
    /// Run the last run's commit again (when idle).
    Retry,
    /// While paused no new iteration starts; the one that would have is kept and started on resume.
    Pause(bool),
    /// Change the target of the current run and of the runs that follow.
    SetTarget(f64),
}
