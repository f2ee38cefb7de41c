//! What each bound [`Action`] does in normal mode. Movement applies to the focused pane.

use crate::core::config::ApplyMode;
use crate::engine::{Operator, Stage};

use super::super::keymap::Action;
use super::super::layout::log_rows;
use super::super::msg::Effect;
use super::super::proposal::proposal_rows;
use super::super::state::{Confirm, Mode, Pane, UiState};
use super::logs::{cycle_trial, jump_to_match, save_logs, scroll_logs, step_iteration};
use super::shared::{engine, note, pending, quit_now, set_apply, set_pause};

/// A bound action in normal mode, handed to the handler of its group.
pub fn act(s: &mut UiState, a: Action) -> Vec<Effect> {
    match a {
        Action::Help
        | Action::Quit
        | Action::Command
        | Action::Back
        | Action::FocusNext
        | Action::FocusPrev => navigate(s, a),
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
        Action::Retry | Action::Trigger | Action::Pause | Action::Stop | Action::ToggleAuto => {
            steer(s, a)
        }
        Action::Approve | Action::Reject | Action::Edit => answer_proposal(s, a),
        Action::SearchSpace => {
            s.mode = Mode::Space { scroll: 0 };
            Vec::new()
        }
        Action::Search
        | Action::NextMatch
        | Action::PrevMatch
        | Action::Wrap
        | Action::Timestamps
        | Action::SaveLogs
        | Action::PrevIteration
        | Action::NextIteration
        | Action::NextTrial
        | Action::PrevTrial => logs_action(s, a),
    }
}

/// Modes and focus: help, quitting, the command line, `esc`, moving between panes.
fn navigate(s: &mut UiState, a: Action) -> Vec<Effect> {
    match a {
        Action::Help => s.mode = Mode::Help { scroll: 0 },
        Action::Quit if s.training() => s.mode = Mode::Confirm(Confirm::Quit),
        Action::Quit => return quit_now(s),
        Action::Command => {
            s.mode = Mode::Command {
                input: String::new(),
            }
        }
        Action::Back => back(s),
        Action::FocusNext | Action::FocusPrev => {
            let i = Pane::ALL.iter().position(|p| *p == s.focus).unwrap_or(0);
            let n = Pane::ALL.len();
            let j = if a == Action::FocusNext {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            s.focus = Pane::ALL[j];
        }
        _ => {}
    }
    Vec::new()
}

/// Steering the loop: retry, run now, pause, stop the container, ask/auto.
fn steer(s: &mut UiState, a: Action) -> Vec<Effect> {
    match a {
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
        Action::ToggleAuto => {
            let next = match s.apply_mode() {
                ApplyMode::Ask => ApplyMode::Auto,
                ApplyMode::Auto => ApplyMode::Ask,
            };
            set_apply(s, next)
        }
        _ => Vec::new(),
    }
}

/// Approve, reject or edit the proposal that waits for the operator.
fn answer_proposal(s: &mut UiState, a: Action) -> Vec<Effect> {
    let Some(p) = pending(s) else {
        let text = if a == Action::Edit {
            "no proposal to edit"
        } else {
            "no proposal is waiting"
        };
        note(s, text);
        return Vec::new();
    };
    match a {
        Action::Approve => {
            let summary = p.summary();
            note(s, &format!("approved: {summary}"));
            engine(s, Operator::Approve)
        }
        Action::Reject => {
            let summary = p.summary();
            note(s, &format!("rejected: {summary}; asking for another"));
            engine(s, Operator::Reject)
        }
        _ => {
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
    }
}

/// The logs pane: search, wrapping, timestamps, saving, switching iterations.
fn logs_action(s: &mut UiState, a: Action) -> Vec<Effect> {
    match a {
        Action::Search => {
            s.focus = Pane::Logs;
            s.mode = Mode::Search {
                input: String::new(),
            };
        }
        Action::NextMatch | Action::PrevMatch => {
            if s.logs.search.is_none() {
                note(s, "no search (/ to search)");
            } else {
                jump_to_match(s, Some(a == Action::NextMatch));
            }
        }
        Action::Wrap => {
            s.logs.wrap = !s.logs.wrap;
            s.logs.hscroll = 0;
        }
        Action::Timestamps => s.logs.timestamps = !s.logs.timestamps,
        Action::SaveLogs => return save_logs(s, None),
        Action::PrevIteration | Action::NextIteration => {
            step_iteration(s, a == Action::NextIteration)
        }
        Action::NextTrial | Action::PrevTrial => cycle_trial(s, a == Action::NextTrial),
        _ => {}
    }
    Vec::new()
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
            .filter(|i| i.status == crate::core::model::IterStatus::Failed)
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
