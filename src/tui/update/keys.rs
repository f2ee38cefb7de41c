//! Keys: typed text in the input modes, answers to questions, and the open run's detail. In normal
//! mode a key is looked up in the key table and handed to [`act`].

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::core::config::ApplyMode;
use crate::core::tweak;
use crate::engine::Operator;

use super::super::command::{self, Command};
use super::super::keymap::Action;
use super::super::layout::space_max_scroll;
use super::super::msg::Effect;
use super::super::state::{Confirm, Mode, Pane, UiState};
use super::actions::act;
use super::logs::{jump_to_match, save_logs};
use super::shared::{engine, error, note, quit_now, set_apply, set_pause};

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
        Mode::Space { scroll } => {
            space_key(s, &k, scroll);
            Vec::new()
        }
    }
}

/// The search space view: movement scrolls panel rows (kept within the rows there are); `esc`,
/// `q` or the view's own key close it.
fn space_key(s: &mut UiState, k: &KeyEvent, scroll: usize) {
    let max = space_max_scroll(s);
    let page = max.max(1);
    let scroll = scroll.min(max);
    let next = match s.keymap.action(k) {
        Some(Action::Up) => scroll.saturating_sub(1),
        Some(Action::Down) => scroll + 1,
        Some(Action::PageUp | Action::HalfPageUp) => scroll.saturating_sub(page),
        Some(Action::PageDown | Action::HalfPageDown) => scroll + page,
        Some(Action::Top) => 0,
        Some(Action::Bottom) => max,
        Some(Action::Back | Action::Quit | Action::SearchSpace) => {
            s.mode = Mode::Normal;
            return;
        }
        Some(Action::Help) => {
            s.mode = Mode::Help { scroll: 0 };
            return;
        }
        _ => scroll,
    };
    s.mode = Mode::Space {
        scroll: next.min(max),
    };
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
            // An empty field stays open: closing it would hand the next keys to the key table
            // (a digit meant for the value would run a command). `esc` closes it.
            input.pop();
            keep(s, input);
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
        Mode::Edit { name, .. } => submit_edit(s, name, input),
        _ => Vec::new(),
    }
}

/// Checks an edited value the way the engine will (the same pure check on the same proposal and
/// space): a bad value is said in the status bar and the field stays open to fix it; only a good
/// one is sent.
fn submit_edit(s: &mut UiState, name: String, input: String) -> Vec<Effect> {
    let raw = input.trim().to_string();
    let checked = s.pipeline.run.as_ref().and_then(|r| {
        let p = r.pending.as_ref()?;
        let cfg = r.config.as_ref()?;
        Some(tweak::apply_edit(&p.params, &name, &raw, &cfg.tweak.space))
    });
    if let Some(Err(e)) = checked {
        error(s, e);
        s.mode = Mode::Edit { name, input };
        return Vec::new();
    }
    note(s, &format!("asked the engine to set {name} = {raw}"));
    engine(s, Operator::Edit { name, raw })
}

fn run_command(s: &mut UiState, c: Command) -> Vec<Effect> {
    match c {
        Command::Quit { force: true } => quit_now(s),
        Command::Quit { force: false } => act(s, Action::Quit),
        Command::Theme(name) => vec![Effect::LoadTheme(name)],
        Command::Target(t) => {
            note(s, &format!("target set to {t}"));
            engine(s, Operator::SetTarget(t))
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
            engine(s, Operator::StopTraining)
        }
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
