//! What each bound [`Action`] does in normal mode. Movement applies to the focused pane.

use crate::core::config::ApplyMode;
use crate::core::tweak::Proposal;
use crate::engine::{Operator, Stage};

use super::super::keymap::Action;
use super::super::layout::log_rows;
use super::super::msg::Effect;
use super::super::state::{Confirm, EngineStatus, Mode, Notice, Pane, UiState};
use super::keys::quit_now;
use super::logs::{jump_to_match, save_logs, scroll_logs, step_iteration};

/// A bound action in normal mode.
pub fn act(s: &mut UiState, a: Action) -> Vec<Effect> {
    match a {
        Action::Help => {
            s.mode = Mode::Help { scroll: 0 };
            Vec::new()
        }
        Action::Quit => {
            if s.training() {
                s.mode = Mode::Confirm(Confirm::Quit);
                Vec::new()
            } else {
                quit_now(s)
            }
        }
        Action::Command => {
            s.mode = Mode::Command {
                input: String::new(),
            };
            Vec::new()
        }
        Action::Back => {
            back(s);
            Vec::new()
        }
        Action::FocusNext | Action::FocusPrev => {
            let i = Pane::ALL.iter().position(|p| *p == s.focus).unwrap_or(0);
            let n = Pane::ALL.len();
            let j = if a == Action::FocusNext {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            s.focus = Pane::ALL[j];
            Vec::new()
        }
        Action::Up
        | Action::Down
        | Action::Left
        | Action::Right
        | Action::Top
        | Action::Bottom
        | Action::PageUp
        | Action::PageDown
        | Action::HalfPageUp
        | Action::HalfPageDown => {
            movement(s, a);
            Vec::new()
        }
        Action::Open => open(s),
        Action::Retry => {
            note(
                s,
                "retry requested: the last run's commit runs again when the loop is idle",
            );
            engine(s, Operator::Retry)
        }
        Action::Trigger => {
            note(s, "run requested on the branch head");
            engine(s, Operator::TriggerNow)
        }
        Action::Pause => {
            let p = !s.pipeline.paused;
            set_pause(s, p)
        }
        Action::Stop => {
            if s.training() {
                s.mode = Mode::Confirm(Confirm::Stop);
            } else {
                note(s, "no container is training");
            }
            Vec::new()
        }
        Action::Approve | Action::Reject => {
            let Some(p) = pending(s) else {
                note(s, "no proposal is waiting");
                return Vec::new();
            };
            let summary = p.summary();
            if a == Action::Approve {
                note(s, &format!("approved: {summary}"));
                engine(s, Operator::Approve)
            } else {
                note(s, &format!("rejected: {summary}; asking for another"));
                engine(s, Operator::Reject)
            }
        }
        Action::Edit => {
            let Some(p) = pending(s) else {
                note(s, "no proposal to edit");
                return Vec::new();
            };
            let rows = proposal_rows(p);
            let sel = s.tweak_sel.min(rows.len().saturating_sub(1));
            if let Some(row) = rows.get(sel) {
                s.mode = Mode::Edit {
                    name: row.name.clone(),
                    input: row.to.clone(),
                };
                s.focus = Pane::Tweak;
            }
            Vec::new()
        }
        Action::ToggleAuto => {
            let next = match s.apply_mode() {
                ApplyMode::Ask => ApplyMode::Auto,
                ApplyMode::Auto => ApplyMode::Ask,
            };
            set_apply(s, next)
        }
        Action::Search => {
            s.focus = Pane::Logs;
            s.mode = Mode::Search {
                input: String::new(),
            };
            Vec::new()
        }
        Action::NextMatch | Action::PrevMatch => {
            if s.logs.search.is_none() {
                note(s, "no search (/ to search)");
            } else {
                jump_to_match(s, Some(a == Action::NextMatch));
            }
            Vec::new()
        }
        Action::Wrap => {
            s.logs.wrap = !s.logs.wrap;
            s.logs.hscroll = 0;
            Vec::new()
        }
        Action::Timestamps => {
            s.logs.timestamps = !s.logs.timestamps;
            Vec::new()
        }
        Action::SaveLogs => save_logs(s, None),
        Action::PrevIteration | Action::NextIteration => {
            step_iteration(s, a == Action::NextIteration);
            Vec::new()
        }
    }
}

/// `esc` in normal mode: dismiss the most recent thing that is in the way.
fn back(s: &mut UiState) {
    if !s.errors.is_empty() {
        s.errors.clear();
        return;
    }
    let failed = s.pipeline.run.as_ref().map_or(0, |r| {
        r.iterations
            .iter()
            .filter(|i| i.status == crate::adapters::store::IterStatus::Failed)
            .count()
    });
    if failed > s.dismissed_failures {
        s.dismissed_failures = failed;
    } else if s.logs.search.is_some() {
        s.logs.search = None;
        s.logs.current_match = None;
    } else if s.logs.pinned.is_some() {
        s.logs.pinned = None;
        s.logs.follow = true;
    }
}

fn movement(s: &mut UiState, a: Action) {
    let rows = log_rows(s) as i64;
    let page = |a: Action| -> i64 {
        match a {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -rows,
            Action::PageDown => rows,
            Action::HalfPageUp => -(rows / 2).max(1),
            Action::HalfPageDown => (rows / 2).max(1),
            Action::Top => i64::MIN / 2,
            Action::Bottom => i64::MAX / 2,
            _ => 0,
        }
    };
    match s.focus {
        Pane::Graph => {
            let n = Stage::ALL.len() as i64;
            let d = match a {
                Action::Left | Action::Up => -1,
                Action::Right | Action::Down => 1,
                Action::Top => -n,
                Action::Bottom => n,
                _ => 0,
            };
            s.stage_sel = (s.stage_sel as i64 + d).clamp(0, n - 1) as usize;
        }
        Pane::Logs | Pane::Plot => match a {
            Action::Left => s.logs.hscroll = s.logs.hscroll.saturating_sub(8),
            Action::Right if !s.logs.wrap => s.logs.hscroll += 8,
            Action::Bottom => {
                s.logs.follow = true;
                s.logs.hscroll = 0;
            }
            _ => scroll_logs(s, page(a)),
        },
        Pane::Tweak => {
            let n = pending(s).map_or(0, |p| p.params.len()) as i64;
            let d = page(a);
            s.tweak_sel = (s.tweak_sel as i64 + d.signum() * d.abs().min(n))
                .clamp(0, (n - 1).max(0)) as usize;
        }
        Pane::Runs => {
            let n = s.history.runs.len() as i64;
            s.history.selected =
                (s.history.selected as i64 + page(a)).clamp(0, (n - 1).max(0)) as usize;
        }
    }
}

fn open(s: &mut UiState) -> Vec<Effect> {
    match s.focus {
        Pane::Runs => {
            let Some(r) = s.history.runs.get(s.history.selected) else {
                note(s, "no runs yet");
                return Vec::new();
            };
            let id = r.row.id;
            s.history.loading = Some(id);
            vec![Effect::LoadRun(id), Effect::LoadHistory]
        }
        Pane::Tweak => act(s, Action::Edit),
        Pane::Graph => {
            if matches!(Stage::ALL[s.stage_sel], Stage::Train | Stage::Evaluate) {
                s.focus = Pane::Logs;
            }
            Vec::new()
        }
        Pane::Logs | Pane::Plot => Vec::new(),
    }
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

/// One parameter of a proposal as the tweak panel lists it (all parameters, in name order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRow {
    pub name: String,
    /// The current value (`unset` when new).
    pub from: String,
    pub to: String,
    pub changed: bool,
}

pub fn proposal_rows(p: &Proposal) -> Vec<ProposalRow> {
    p.params
        .iter()
        .map(|(name, to)| {
            let change = p.changes.iter().find(|c| c.name == *name);
            ProposalRow {
                name: name.clone(),
                from: show(change.map_or(to, |c| &c.from)),
                to: show(to),
                changed: change.is_some(),
            }
        })
        .collect()
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "unset".into(),
        other => other.to_string(),
    }
}
