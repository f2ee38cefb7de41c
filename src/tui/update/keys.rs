//! Keys: typed text in the input modes, answers to questions, and bound [`Action`]s in normal mode.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::config::ApplyMode;
use crate::engine::{Msg, Stage};
use crate::tweak::Proposal;

use super::super::command::{self, Command};
use super::super::keymap::Action;
use super::super::layout::log_rows;
use super::super::msg::Effect;
use super::super::state::{Confirm, EngineStatus, Mode, Notice, Pane, UiState};

pub fn on_key(s: &mut UiState, k: KeyEvent) -> Vec<Effect> {
    if k.kind == KeyEventKind::Release {
        return Vec::new();
    }
    s.notice = None;
    match s.mode.clone() {
        Mode::Normal => match s.keymap.action(&k) {
            Some(a) => act(s, a),
            None => Vec::new(),
        },
        Mode::Search { input } => text_input(s, k, input, |s, t| {
            s.mode = Mode::Search { input: t };
        }),
        Mode::Command { input } => text_input(s, k, input, |s, t| {
            s.mode = Mode::Command { input: t };
        }),
        Mode::Edit { name, input } => text_input(s, k, input, move |s, t| {
            s.mode = Mode::Edit {
                name: name.clone(),
                input: t,
            };
        }),
        Mode::Confirm(c) => {
            s.mode = Mode::Normal;
            match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => confirmed(s, c),
                _ => {
                    note(s, "cancelled");
                    Vec::new()
                }
            }
        }
        Mode::Help { scroll } => {
            match s.keymap.action(&k) {
                Some(Action::Up) => {
                    s.mode = Mode::Help {
                        scroll: scroll.saturating_sub(1),
                    }
                }
                Some(Action::Down) => {
                    s.mode = Mode::Help {
                        scroll: scroll.saturating_add(1),
                    }
                }
                Some(Action::PageUp | Action::HalfPageUp) => {
                    s.mode = Mode::Help {
                        scroll: scroll.saturating_sub(10),
                    }
                }
                Some(Action::PageDown | Action::HalfPageDown) => {
                    s.mode = Mode::Help {
                        scroll: scroll.saturating_add(10),
                    }
                }
                Some(Action::Top) => s.mode = Mode::Help { scroll: 0 },
                Some(Action::Back | Action::Help | Action::Quit) => s.mode = Mode::Normal,
                _ => {}
            }
            Vec::new()
        }
        Mode::Detail => detail_key(s, &k),
    }
}

/// Line editing shared by search, command and edit: characters, backspace, ctrl-u, enter, esc.
fn text_input(
    s: &mut UiState,
    k: KeyEvent,
    mut input: String,
    keep: impl FnOnce(&mut UiState, String),
) -> Vec<Effect> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Esc => {
            s.mode = Mode::Normal;
            Vec::new()
        }
        KeyCode::Char('c') if ctrl => {
            s.mode = Mode::Normal;
            Vec::new()
        }
        KeyCode::Char('u') if ctrl => {
            keep(s, String::new());
            Vec::new()
        }
        KeyCode::Enter => submit(s, input),
        KeyCode::Backspace => {
            if input.pop().is_none() {
                s.mode = Mode::Normal;
            } else {
                keep(s, input);
            }
            Vec::new()
        }
        KeyCode::Char(c) if !ctrl => {
            input.push(c);
            keep(s, input);
            Vec::new()
        }
        _ => {
            keep(s, input);
            Vec::new()
        }
    }
}

fn submit(s: &mut UiState, input: String) -> Vec<Effect> {
    let mode = std::mem::replace(&mut s.mode, Mode::Normal);
    match mode {
        Mode::Search { .. } => {
            if input.is_empty() {
                s.logs.search = None;
                s.logs.current_match = None;
                return Vec::new();
            }
            s.focus = Pane::Logs;
            s.logs.search = Some(input);
            jump_to_match(s, None);
            Vec::new()
        }
        Mode::Command { .. } => match command::parse(&input) {
            Ok(c) => run_command(s, c),
            Err(e) => {
                error(s, e);
                Vec::new()
            }
        },
        Mode::Edit { name, .. } => {
            let raw = input.trim().to_string();
            note(s, &format!("asked the engine to set {name} = {raw}"));
            engine(s, Msg::Edit { name, raw })
        }
        _ => Vec::new(),
    }
}

fn run_command(s: &mut UiState, c: Command) -> Vec<Effect> {
    match c {
        Command::Quit { force: true } => quit_now(s),
        Command::Quit { force: false } => act(s, Action::Quit),
        Command::Theme(name) => vec![Effect::LoadTheme(name)],
        Command::Target(t) => {
            note(s, &format!("target set to {t}"));
            engine(s, Msg::SetTarget(t))
        }
        Command::Save(path) => save_logs(s, path),
        Command::Help => act(s, Action::Help),
        Command::Pause(p) => set_pause(s, p),
        Command::Auto(auto) => set_apply(
            s,
            if auto {
                ApplyMode::Auto
            } else {
                ApplyMode::Ask
            },
        ),
        Command::Retry => act(s, Action::Retry),
        Command::Trigger => act(s, Action::Trigger),
        Command::Stop => act(s, Action::Stop),
        Command::Wrap => act(s, Action::Wrap),
        Command::Timestamps => act(s, Action::Timestamps),
    }
}

fn confirmed(s: &mut UiState, c: Confirm) -> Vec<Effect> {
    match c {
        Confirm::Quit => quit_now(s),
        Confirm::Stop => {
            note(s, "stopping the training container");
            engine(s, Msg::StopTraining)
        }
    }
}

fn quit_now(s: &mut UiState) -> Vec<Effect> {
    s.quit = true;
    vec![Effect::Quit]
}

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
            engine(s, Msg::Retry)
        }
        Action::Trigger => {
            note(s, "run requested on the branch head");
            engine(s, Msg::TriggerNow)
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
                engine(s, Msg::Approve)
            } else {
                note(s, &format!("rejected: {summary}; asking for another"));
                engine(s, Msg::Reject)
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
            .filter(|i| i.status == crate::store::IterStatus::Failed)
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

/// Moves the logs view by `delta` lines. Moving up stops following; reaching the end follows again.
fn scroll_logs(s: &mut UiState, delta: i64) {
    let Some(src) = s.log_source() else { return };
    let Some(buf) = s.logs.buffers.get(&src) else {
        return;
    };
    let Some(last) = buf.last_seq() else { return };
    let first = buf.first_seq();
    let cur = if s.logs.follow {
        last
    } else {
        buf.clamp(s.logs.bottom)
    };
    // The bottom line never goes above the first screenful, so the view stays full.
    let floor = (first + log_rows(s) as u64 - 1).min(last);
    let new = (cur as i64)
        .saturating_add(delta)
        .clamp(floor as i64, last as i64) as u64;
    s.logs.bottom = new;
    s.logs.follow = new == last && delta > 0;
    if delta < 0 {
        s.logs.follow = false;
    }
}

/// Moves to the next (`Some(true)`), previous (`Some(false)`) or nearest (`None`) search match and
/// scrolls it into view.
fn jump_to_match(s: &mut UiState, forward: Option<bool>) {
    let (Some(q), Some(src)) = (s.logs.search.clone(), s.log_source()) else {
        return;
    };
    let Some(buf) = s.logs.buffers.get(&src) else {
        note(s, "no logs to search yet");
        return;
    };
    let Some(last) = buf.last_seq() else {
        note(s, "no logs to search yet");
        return;
    };
    let bottom = if s.logs.follow {
        last
    } else {
        buf.clamp(s.logs.bottom)
    };
    let found = match forward {
        None => {
            let here = buf
                .get(bottom)
                .is_some_and(|e| !super::super::logbuf::match_ranges(&e.text, &q).is_empty());
            if here {
                Some(bottom)
            } else {
                buf.find(&q, bottom, false)
            }
        }
        Some(fwd) => buf.find(&q, s.logs.current_match.unwrap_or(bottom), fwd),
    };
    let rows = log_rows(s) as u64;
    match found {
        None => {
            s.logs.current_match = None;
            error(s, format!("no match for \"{q}\""));
        }
        Some(m) => {
            s.logs.current_match = Some(m);
            s.logs.follow = false;
            let top = bottom.saturating_sub(rows.saturating_sub(1));
            if m < top || m > bottom {
                s.logs.bottom = (m + rows / 2).min(last);
            } else {
                s.logs.bottom = bottom;
            }
        }
    }
}

fn step_iteration(s: &mut UiState, next: bool) {
    let Some(cur) = s.log_source() else {
        note(s, "no iteration yet");
        return;
    };
    let mut all: Vec<_> = s.logs.buffers.keys().copied().collect();
    if let Some(r) = &s.pipeline.run {
        all.extend(r.iterations.iter().map(|i| (r.id, i.no)));
    }
    all.sort();
    all.dedup();
    let i = all.iter().position(|k| *k == cur).unwrap_or(0);
    let j = if next {
        (i + 1).min(all.len() - 1)
    } else {
        i.saturating_sub(1)
    };
    let target = all[j];
    let newest = s
        .pipeline
        .run
        .as_ref()
        .and_then(|r| r.current().map(|c| (r.id, c.no)));
    s.logs.pinned = if Some(target) == newest {
        None
    } else {
        Some(target)
    };
    s.logs.follow = true;
    s.logs.current_match = None;
    s.logs.hscroll = 0;
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

fn detail_key(s: &mut UiState, k: &KeyEvent) -> Vec<Effect> {
    let Some(a) = s.keymap.action(k) else {
        return Vec::new();
    };
    let n = s.history.detail.as_ref().map_or(0, |d| d.iterations.len());
    let Some(d) = s.history.detail.as_mut() else {
        s.mode = Mode::Normal;
        return Vec::new();
    };
    match a {
        Action::Up => d.selected = d.selected.saturating_sub(1),
        Action::Down => d.selected = (d.selected + 1).min(n.saturating_sub(1)),
        Action::Top => d.selected = 0,
        Action::Bottom => d.selected = n.saturating_sub(1),
        Action::Back | Action::Quit => s.mode = Mode::Normal,
        Action::Open => {
            // An iteration of a run whose output is still in memory: show it in the logs pane.
            let key = d
                .iterations
                .get(d.selected)
                .map(|(it, _)| (it.run_id, it.no));
            if let Some(key) = key.filter(|k| s.logs.buffers.contains_key(k)) {
                s.logs.pinned = Some(key);
                s.logs.follow = true;
                s.focus = Pane::Logs;
                s.mode = Mode::Normal;
            }
        }
        Action::Help => s.mode = Mode::Help { scroll: 0 },
        _ => {}
    }
    Vec::new()
}

fn save_logs(s: &mut UiState, path: Option<std::path::PathBuf>) -> Vec<Effect> {
    let Some((run, no)) = s.log_source() else {
        note(s, "no logs to save yet");
        return Vec::new();
    };
    let Some(buf) = s.logs.buffers.get(&(run, no)) else {
        note(s, "no logs to save yet");
        return Vec::new();
    };
    let path = path.unwrap_or_else(|| {
        s.save_dir
            .join(format!("run-{run}-iteration-{no}-{}.log", s.now_ms))
    });
    vec![Effect::SaveLogs {
        path,
        text: buf.to_text(s.logs.timestamps),
    }]
}

fn set_pause(s: &mut UiState, paused: bool) -> Vec<Effect> {
    note(
        s,
        if paused {
            "pausing: no new iteration starts until resumed"
        } else {
            "resuming the loop"
        },
    );
    engine(s, Msg::Pause(paused))
}

fn set_apply(s: &mut UiState, mode: ApplyMode) -> Vec<Effect> {
    note(
        s,
        match mode {
            ApplyMode::Auto => "auto-apply: proposals start at once",
            ApplyMode::Ask => "ask: proposals wait for approval",
        },
    );
    engine(s, Msg::SetApply(mode))
}

/// An operator message for the engine, or a note when the engine is not there to take it.
fn engine(s: &mut UiState, msg: Msg) -> Vec<Effect> {
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

fn pending(s: &UiState) -> Option<&Proposal> {
    s.pipeline.run.as_ref().and_then(|r| r.pending.as_ref())
}

fn note(s: &mut UiState, text: &str) {
    s.notice = Some(Notice {
        text: text.to_string(),
        error: false,
    });
}

fn error(s: &mut UiState, text: String) {
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
