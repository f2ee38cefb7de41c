//! Small state changes that every handler shares: notices in the status bar, messages to the engine
//! (or the reason they cannot be sent), quitting. A leaf: it uses no other handler module.

use crate::core::config::ApplyMode;
use crate::core::tweak::Proposal;
use crate::engine::Operator;

use super::super::msg::Effect;
use super::super::state::{EngineStatus, Notice, UiState};

pub(super) fn quit_now(s: &mut UiState) -> Vec<Effect> {
    s.quit = true;
    vec![Effect::Quit]
}

pub(super) fn set_pause(s: &mut UiState, paused: bool) -> Vec<Effect> {
    note(
        s,
        if paused {
            "pausing: no new iteration starts until resumed"
        } else {
            "resuming the loop"
        },
    );
    engine(s, Operator::Pause(paused))
}

pub(super) fn set_apply(s: &mut UiState, mode: ApplyMode) -> Vec<Effect> {
    note(
        s,
        match mode {
            ApplyMode::Auto => "auto-apply: proposals start at once",
            ApplyMode::Ask => "ask: proposals wait for approval",
        },
    );
    engine(s, Operator::SetApply(mode))
}

/// An operator message for the engine, or a note when the engine is not there to take it.
pub(super) fn engine(s: &mut UiState, msg: Operator) -> Vec<Effect> {
    match &s.engine {
        EngineStatus::Running => vec![Effect::Engine(msg)],
        EngineStatus::WaitingForDocker => {
            error(
                s,
                "the engine starts once Docker answers; try again then".into(),
            );
            Vec::new()
        }
        EngineStatus::Stopped { .. } => {
            error(s, "the engine has stopped; restart mlops-tui".into());
            Vec::new()
        }
    }
}

pub(super) fn pending(s: &UiState) -> Option<&Proposal> {
    s.pipeline.run.as_ref().and_then(|r| r.pending.as_ref())
}

pub(super) fn note(s: &mut UiState, text: &str) {
    s.notice = Some(Notice {
        text: text.to_string(),
        error: false,
    });
}

pub(super) fn error(s: &mut UiState, text: String) {
    s.notice = Some(Notice { text, error: true });
}
