//! Key bindings: one table from keys to [`Action`]s, overridable from `[keys]` in the user's config.
//!
//! Terminal key events are not actions: the reducer looks a key up here and acts on the result, so the
//! help overlay, the config file and the reducer all read the same table. Invariant of a [`Keymap`]:
//! every key maps to at most one action.

mod key;

use std::collections::HashMap;

use crossterm::event::KeyEvent;

pub use key::Key;

use super::settings::{Settings, SettingsError};

/// What the operator asks for. How an action applies can depend on the focused pane (movement keys
/// scroll the logs or select a run), but a key always means the same action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Help,
    Quit,
    Command,
    Back,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Left,
    Right,
    Top,
    Bottom,
    PageUp,
    PageDown,
    HalfPageUp,
    HalfPageDown,
    Open,
    Retry,
    Trigger,
    Pause,
    Stop,
    Approve,
    Reject,
    Edit,
    ToggleAuto,
    Search,
    NextMatch,
    PrevMatch,
    Wrap,
    Timestamps,
    SaveLogs,
    PrevIteration,
    NextIteration,
    NextTrial,
    PrevTrial,
    SearchSpace,
}

/// One row of the binding table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub action: Action,
    /// The name used in `[keys]`.
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub group: &'static str,
    pub help: &'static str,
}

const fn b(
    action: Action,
    name: &'static str,
    keys: &'static [&'static str],
    group: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        action,
        name,
        keys,
        group,
        help,
    }
}

/// The default bindings, in the order the help overlay lists them. Conventions follow k9s, lazydocker
/// and gitui.
pub const BINDINGS: &[Binding] = &[
    b(Action::Help, "help", &["?"], "General", "show this help"),
    b(
        Action::Quit,
        "quit",
        &["q", "ctrl-c"],
        "General",
        "quit (asks first while a container trains)",
    ),
    b(
        Action::Command,
        "command",
        &[":"],
        "General",
        "command line: :theme NAME, :target X, :w FILE, :q",
    ),
    b(
        Action::Back,
        "back",
        &["esc"],
        "General",
        "back out of any mode, close, clear the search",
    ),
    b(
        Action::FocusNext,
        "focus_next",
        &["tab", "]"],
        "Move",
        "focus the next pane",
    ),
    b(
        Action::FocusPrev,
        "focus_prev",
        &["shift-tab", "["],
        "Move",
        "focus the previous pane",
    ),
    b(
        Action::Up,
        "up",
        &["k", "up"],
        "Move",
        "up (scrolling the logs up pauses following)",
    ),
    b(Action::Down, "down", &["j", "down"], "Move", "down"),
    b(
        Action::Left,
        "left",
        &["h", "left"],
        "Move",
        "previous stage; scroll logs left",
    ),
    b(
        Action::Right,
        "right",
        &["l", "right"],
        "Move",
        "next stage; scroll logs right",
    ),
    b(
        Action::Top,
        "top",
        &["g", "home"],
        "Move",
        "first line / row",
    ),
    b(
        Action::Bottom,
        "bottom",
        &["G", "end"],
        "Move",
        "last line / row; logs follow again",
    ),
    b(Action::PageUp, "page_up", &["pgup"], "Move", "page up"),
    b(
        Action::PageDown,
        "page_down",
        &["pgdn"],
        "Move",
        "page down",
    ),
    b(
        Action::HalfPageUp,
        "half_page_up",
        &["ctrl-u"],
        "Move",
        "half a page up",
    ),
    b(
        Action::HalfPageDown,
        "half_page_down",
        &["ctrl-d"],
        "Move",
        "half a page down",
    ),
    b(
        Action::Open,
        "open",
        &["enter"],
        "Move",
        "open the selected run or iteration",
    ),
    b(
        Action::Retry,
        "retry",
        &["r"],
        "Loop",
        "retry the last run's commit (when idle)",
    ),
    b(
        Action::Trigger,
        "trigger",
        &["t"],
        "Loop",
        "start a run on the branch head now",
    ),
    b(
        Action::Pause,
        "pause",
        &["p"],
        "Loop",
        "pause / resume the loop",
    ),
    b(
        Action::Stop,
        "stop",
        &["s"],
        "Loop",
        "stop the training container (asks first)",
    ),
    b(
        Action::Approve,
        "approve",
        &["a"],
        "Tweak",
        "approve the proposed parameters",
    ),
    b(
        Action::Reject,
        "reject",
        &["x"],
        "Tweak",
        "reject the proposal (propose another)",
    ),
    b(
        Action::Edit,
        "edit",
        &["e"],
        "Tweak",
        "edit the selected proposed value",
    ),
    b(
        Action::ToggleAuto,
        "toggle_auto",
        &["A"],
        "Tweak",
        "toggle auto-apply / ask",
    ),
    b(
        Action::SearchSpace,
        "search_space",
        &["v"],
        "Tweak",
        "search space view: each dimension against the metric",
    ),
    b(Action::Search, "search", &["/"], "Logs", "search the logs"),
    b(
        Action::NextMatch,
        "next_match",
        &["n"],
        "Logs",
        "next match",
    ),
    b(
        Action::PrevMatch,
        "prev_match",
        &["N"],
        "Logs",
        "previous match",
    ),
    b(
        Action::Wrap,
        "wrap",
        &["w"],
        "Logs",
        "wrap long lines on / off",
    ),
    b(
        Action::Timestamps,
        "timestamps",
        &["T"],
        "Logs",
        "arrival timestamps on / off",
    ),
    b(
        Action::SaveLogs,
        "save_logs",
        &["S"],
        "Logs",
        "save the shown logs to a file",
    ),
    b(
        Action::PrevIteration,
        "prev_iteration",
        &["<"],
        "Logs",
        "logs of the previous iteration",
    ),
    b(
        Action::NextIteration,
        "next_iteration",
        &[">"],
        "Logs",
        "logs of the next iteration",
    ),
    b(
        Action::NextTrial,
        "next_trial",
        &["c"],
        "Logs",
        "logs of the next running trial (trials side by side)",
    ),
    b(
        Action::PrevTrial,
        "prev_trial",
        &["C"],
        "Logs",
        "logs of the previous running trial",
    ),
];

/// The bindings in force: the defaults with the user's overrides applied.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<Key, Action>,
    /// In table order, for the help overlay and the hints.
    rows: Vec<(Binding, Vec<Key>)>,
}

impl Keymap {
    pub fn defaults() -> Keymap {
        let rows: Vec<(Binding, Vec<Key>)> = BINDINGS
            .iter()
            .map(|b| {
                let keys = b.keys.iter().filter_map(|k| Key::parse(k).ok()).collect();
                (*b, keys)
            })
            .collect();
        let mut by_key = HashMap::new();
        for (b, keys) in &rows {
            for k in keys {
                by_key.insert(*k, b.action);
            }
        }
        Keymap { by_key, rows }
    }

    /// The defaults with `[keys]` from the settings applied. An override replaces all keys of its
    /// action; a key claimed by two actions is an error that points at the override.
    pub fn with_overrides(settings: &Settings) -> Result<Keymap, SettingsError> {
        let mut map = Keymap::defaults();
        for o in &settings.keys {
            let Some(row) = map.rows.iter().position(|(b, _)| b.name == o.action) else {
                return Err(settings.error_at(
                    o.action_at,
                    format!(
                        "unknown action \"{}\" in [keys] (known: {})",
                        o.action,
                        BINDINGS
                            .iter()
                            .map(|b| b.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let mut keys = Vec::new();
            for k in o.keys.keys() {
                keys.push(Key::parse(k).map_err(|m| settings.error_at(o.keys_at, m))?);
            }
            if keys.is_empty() {
                return Err(
                    settings.error_at(o.keys_at, format!("`{}` needs at least one key", o.action))
                );
            }
            map.rows[row].1 = keys;
        }
        map.by_key.clear();
        for (b, keys) in &map.rows {
            for k in keys {
                if let Some(other) = map.by_key.insert(*k, b.action) {
                    let other_name = map
                        .rows
                        .iter()
                        .find(|(ob, _)| ob.action == other)
                        .map(|(ob, _)| ob.name)
                        .unwrap_or("?");
                    let at = settings
                        .keys
                        .iter()
                        .find(|o| o.action == b.name || o.action == other_name)
                        .map(|o| o.keys_at)
                        .unwrap_or(0);
                    return Err(settings.error_at(
                        at,
                        format!(
                            "key \"{k}\" is bound to both `{other_name}` and `{}`; rebind one of them",
                            b.name
                        ),
                    ));
                }
            }
        }
        Ok(map)
    }

    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        self.by_key.get(&Key::from_event(key)).copied()
    }

    pub fn rows(&self) -> &[(Binding, Vec<Key>)] {
        &self.rows
    }

    /// The first key of `action`, for hints (`a approve`).
    pub fn key_of(&self, action: Action) -> String {
        self.rows
            .iter()
            .find(|(b, _)| b.action == action)
            .and_then(|(_, k)| k.first())
            .map(ToString::to_string)
            .unwrap_or_else(|| "?".into())
    }

    /// All keys of `action`, joined for the help overlay.
    pub fn keys_text(&self, action: Action) -> String {
        self.rows
            .iter()
            .find(|(b, _)| b.action == action)
            .map(|(_, k)| {
                k.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::*;
    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new_with_kind(code, mods, KeyEventKind::Press)
    }

    #[test]
    fn every_default_key_parses_and_none_is_bound_twice() {
        let mut seen = HashMap::new();
        for b in BINDINGS {
            for k in b.keys {
                let key = Key::parse(k).unwrap_or_else(|e| panic!("{}: {e}", b.name));
                if let Some(prev) = seen.insert(key, b.name) {
                    panic!("{k} bound to {prev} and {}", b.name);
                }
            }
        }
        assert!(BINDINGS.iter().all(|b| !b.keys.is_empty()));
    }

    #[test]
    fn shifted_characters_and_ctrl_normalise() {
        let m = Keymap::defaults();
        assert_eq!(
            m.action(&ev(KeyCode::Char('A'), KeyModifiers::SHIFT)),
            Some(Action::ToggleAuto)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('a'), KeyModifiers::NONE)),
            Some(Action::Approve)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            m.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(Key::parse("ctrl-u").unwrap().to_string(), "ctrl-u");
        assert_eq!(Key::parse("shift-tab").unwrap().to_string(), "shift-tab");
    }

    #[test]
    fn overrides_replace_the_keys_of_an_action() {
        let s = Settings::parse(
            "[keys]\napprove = [\"y\", \"ctrl-a\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let m = Keymap::with_overrides(&s).unwrap();
        assert_eq!(
            m.action(&ev(KeyCode::Char('y'), KeyModifiers::NONE)),
            Some(Action::Approve)
        );
        assert_eq!(m.action(&ev(KeyCode::Char('a'), KeyModifiers::NONE)), None);
        assert_eq!(m.keys_text(Action::Approve), "y ctrl-a");
    }

    #[test]
    fn a_clash_and_a_bad_name_point_at_the_line() {
        let s = Settings::parse("[keys]\n\nstop = \"x\"\n", Path::new("c.toml")).unwrap();
        assert_eq!(
            Keymap::with_overrides(&s).unwrap_err().to_string(),
            "c.toml:3:8: key \"x\" is bound to both `stop` and `reject`; rebind one of them"
        );
        let s = Settings::parse("[keys]\napprov = \"y\"\n", Path::new("c.toml")).unwrap();
        let e = Keymap::with_overrides(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("c.toml:2:1: unknown action \"approv\" in [keys]"),
            "{e}"
        );
        let s = Settings::parse("[keys]\napprove = \"ctrl-\"\n", Path::new("c.toml")).unwrap();
        let e = Keymap::with_overrides(&s).unwrap_err().to_string();
        assert_eq!(e, "c.toml:2:11: \"ctrl-\" is not a key");
    }
}
