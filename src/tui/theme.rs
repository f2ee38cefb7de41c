//! Colours and the styles built from them.
//!
//! Themes are TOML files: the built-in ones (`themes/*.toml` in the source tree) are embedded in the
//! binary; a file `<config dir>/themes/<name>.toml` overrides the built-in of that name key by key, or
//! adds a new theme on top of the dark one. With `NO_COLOR` set every colour becomes the terminal's
//! own, and everything that colour alone would distinguish (the selection, the focused pane, search
//! matches) is also marked by reverse video, bold or underline, so the screen stays usable.

use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::settings::{SettingsError, offset_error};
use crate::engine::StageStatus;

/// Built-in themes: name and TOML text. The first is the default.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

pub const DEFAULT_THEME: &str = "dark";

/// Declares the palette once: the struct of colours, the raw (partial, spanned) form read from a
/// file, and the merge of one into the other. Keeps the key list in one place.
macro_rules! palette {
    ($($field:ident),+ $(,)?) => {
        /// Every colour a theme sets.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Palette {
            $(pub $field: Color,)+
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawColors {
            $($field: Option<toml::Spanned<String>>,)+
        }

        impl RawColors {
            /// Overwrites the colours this file sets; a bad colour names its key and position.
            fn apply(&self, to: &mut Palette, text: &str, path: &Path) -> Result<(), SettingsError> {
                $(
                    if let Some(v) = &self.$field {
                        to.$field = parse_color(v.get_ref()).map_err(|m| {
                            offset_error(path, text, v.span().start, format!("`{}`: {m}", stringify!($field)))
                        })?;
                    }
                )+
                Ok(())
            }
        }

        impl Palette {
            /// The terminal's own colours everywhere (`NO_COLOR`).
            fn plain() -> Palette {
                Palette { $($field: Color::Reset,)+ }
            }
        }
    };
}

palette!(
    text,
    dim,
    border,
    focus,
    waiting,
    running,
    passed,
    failed,
    skipped,
    warn,
    stderr,
    metric,
    match_fg,
    match_bg,
    selection_fg,
    selection_bg,
    value,
    target,
    best,
    epoch,
    pruned,
    trial_1,
    trial_2,
    trial_3,
    trial_4,
    bar_fg,
    bar_bg,
    banner_fg,
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    colors: RawColors,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub colors: Palette,
    /// `NO_COLOR`: colours are all `Reset` and styles lean on modifiers.
    pub no_color: bool,
}

fn parse_color(s: &str) -> Result<Color, String> {
    Color::from_str(s.trim()).map_err(|_| {
        format!("\"{s}\" is not a colour (use a name such as \"red\", \"#rrggbb\" or 0-255)")
    })
}

impl Theme {
    /// Loads theme `name`: the user's file in `<config_dir>/themes/` over the built-in of that name
    /// (or over the default theme when there is no such built-in).
    pub fn load(name: &str, config_dir: &Path, no_color: bool) -> Result<Theme, SettingsError> {
        let builtin = BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        let user_path = config_dir.join("themes").join(format!("{name}.toml"));
        let user_text = match std::fs::read_to_string(&user_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SettingsError::read(&user_path, &e)),
        };
        if builtin.is_none() && user_text.is_none() {
            return Err(SettingsError::plain(
                &user_path,
                format!(
                    "no theme \"{name}\" (built in: {}; or create this file)",
                    BUILTIN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let base_text = builtin.unwrap_or(BUILTIN[0].1);
        let builtin_path = Path::new("themes").join(format!("{name}.toml"));
        let mut colors = base_palette();
        apply_text(base_text, &builtin_path, &mut colors)?;
        if let Some(text) = &user_text {
            apply_text(text, &user_path, &mut colors)?;
        }
        Ok(Theme::from_palette(name, colors, no_color))
    }

    pub fn from_palette(name: &str, colors: Palette, no_color: bool) -> Theme {
        Theme {
            name: name.to_string(),
            colors: if no_color { Palette::plain() } else { colors },
            no_color,
        }
    }

    /// The built-in default, for tests and as the fallback when nothing else loads.
    pub fn default_dark(no_color: bool) -> Theme {
        let mut colors = base_palette();
        // The embedded file is checked by a test; a failure here would only leave the base colours.
        let _ = apply_text(BUILTIN[0].1, Path::new("themes/dark.toml"), &mut colors);
        Theme::from_palette(DEFAULT_THEME, colors, no_color)
    }

    /// Names a user can pass to `--theme` or `:theme`: the built-ins and any files in the user's
    /// theme directory.
    pub fn available(config_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        let files = std::fs::read_dir(config_dir.join("themes"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"));
        for p in files {
            let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !names.iter().any(|n| n == stem) {
                names.push(stem.to_string());
            }
        }
        names
    }

    fn fg(&self, c: Color) -> Style {
        Style::new().fg(c)
    }

    pub fn text(&self) -> Style {
        self.fg(self.colors.text)
    }

    pub fn dim(&self) -> Style {
        let s = self.fg(self.colors.dim);
        if self.no_color {
            s.add_modifier(Modifier::DIM)
        } else {
            s
        }
    }

    pub fn color(&self, c: Color) -> Style {
        self.fg(c)
    }

    /// A pane's border: the focused one stands out by colour and weight.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(self.colors.focus).add_modifier(Modifier::BOLD)
        } else {
            self.fg(self.colors.border)
        }
    }

    /// A pane's title; without colour the focused title is shown in reverse video.
    pub fn title(&self, focused: bool) -> Style {
        match (focused, self.no_color) {
            (true, true) => Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            (true, false) => self.fg(self.colors.focus).add_modifier(Modifier::BOLD),
            (false, _) => self.fg(self.colors.text),
        }
    }

    /// The selected row or stage. Never colour alone: bold always, reverse video without colour.
    pub fn selection(&self) -> Style {
        if self.no_color {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
                .fg(self.colors.selection_fg)
                .bg(self.colors.selection_bg)
                .add_modifier(Modifier::BOLD)
        }
    }

    pub fn search_match(&self) -> Style {
        if self.no_color {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        } else {
            Style::new()
                .fg(self.colors.match_fg)
                .bg(self.colors.match_bg)
        }
    }

    pub fn status(&self, s: StageStatus) -> Style {
        let c = match s {
            StageStatus::Waiting => self.colors.waiting,
            StageStatus::Running => self.colors.running,
            StageStatus::Passed => self.colors.passed,
            StageStatus::Failed => self.colors.failed,
            StageStatus::Skipped => self.colors.skipped,
        };
        let style = self.fg(c);
        match s {
            StageStatus::Failed | StageStatus::Running => style.add_modifier(Modifier::BOLD),
            _ => style,
        }
    }

    pub fn good(&self) -> Style {
        self.fg(self.colors.passed)
    }

    pub fn bad(&self) -> Style {
        self.fg(self.colors.failed).add_modifier(Modifier::BOLD)
    }

    pub fn warn(&self) -> Style {
        self.fg(self.colors.warn)
    }

    /// An iteration stopped early by pruning: its own colour, never the failure one, and italic so
    /// that it differs from a completed iteration without colour too.
    pub fn pruned(&self) -> Style {
        self.fg(self.colors.pruned).add_modifier(Modifier::ITALIC)
    }

    /// A pinned banner: failures on the failure colour, so they cannot be missed.
    pub fn banner(&self, failed: bool) -> Style {
        let bg = if failed {
            self.colors.failed
        } else {
            self.colors.passed
        };
        if self.no_color {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
                .fg(self.colors.banner_fg)
                .bg(bg)
                .add_modifier(Modifier::BOLD)
        }
    }

    /// The `i`-th trial colour (plot curves, graph lanes, legend), cycling through the theme's
    /// four; bold so that running trials stand apart from finished, dimmed curves without colour.
    pub fn trial(&self, i: usize) -> Style {
        let c = [
            self.colors.trial_1,
            self.colors.trial_2,
            self.colors.trial_3,
            self.colors.trial_4,
        ][i % 4];
        self.fg(c).add_modifier(Modifier::BOLD)
    }

    pub fn bar(&self) -> Style {
        if self.no_color {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(self.colors.bar_fg).bg(self.colors.bar_bg)
        }
    }
}

/// Colours every key starts from before any file is applied (the dark file sets them all).
fn base_palette() -> Palette {
    Palette {
        text: Color::Reset,
        dim: Color::DarkGray,
        border: Color::DarkGray,
        focus: Color::Cyan,
        waiting: Color::DarkGray,
        running: Color::Yellow,
        passed: Color::Green,
        failed: Color::Red,
        skipped: Color::DarkGray,
        warn: Color::Yellow,
        stderr: Color::LightRed,
        metric: Color::Cyan,
        match_fg: Color::Black,
        match_bg: Color::Yellow,
        selection_fg: Color::Black,
        selection_bg: Color::Cyan,
        value: Color::Cyan,
        target: Color::Magenta,
        best: Color::Green,
        epoch: Color::Yellow,
        pruned: Color::LightBlue,
        trial_1: Color::Yellow,
        trial_2: Color::LightMagenta,
        trial_3: Color::LightCyan,
        trial_4: Color::LightRed,
        bar_fg: Color::White,
        bar_bg: Color::Blue,
        banner_fg: Color::White,
    }
}

fn apply_text(text: &str, path: &Path, colors: &mut Palette) -> Result<(), SettingsError> {
    let raw: RawTheme = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        offset_error(path, text, offset, e.message().to_string())
    })?;
    raw.colors.apply(colors, text, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_builtin_theme_parses_and_sets_every_colour() {
        for (name, text) in BUILTIN {
            let raw: RawTheme = toml::from_str(text).unwrap();
            let mut c = base_palette();
            raw.colors.apply(&mut c, text, Path::new(name)).unwrap();
            // Each key must be present in each file, so that themes do not silently inherit.
            let table: toml::Table = toml::from_str(text).unwrap();
            let colors = table["colors"].as_table().unwrap();
            assert_eq!(colors.len(), 28, "{name} sets every key");
        }
    }

    #[test]
    fn user_file_overrides_a_builtin_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/dark.toml"),
            "[colors]\nfailed = \"#ff00ff\"\n",
        )
        .unwrap();
        let t = Theme::load("dark", dir.path(), false).unwrap();
        assert_eq!(t.colors.failed, Color::Rgb(255, 0, 255));
        assert_eq!(t.colors.passed, Color::Green);
    }

    #[test]
    fn a_bad_colour_names_file_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        let path = dir.path().join("themes/mine.toml");
        std::fs::write(&path, "[colors]\n\npassed = \"blurple\"\n").unwrap();
        let e = Theme::load("mine", dir.path(), false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}:3:10: `passed`: \"blurple\" is not a colour (use a name such as \"red\", \"#rrggbb\" or 0-255)",
                path.display()
            )
        );
    }

    #[test]
    fn unknown_theme_lists_the_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let e = Theme::load("neon", dir.path(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no theme \"neon\" (built in: dark, light, colorblind"),
            "{e}"
        );
    }

    #[test]
    fn no_color_keeps_selection_visible_without_colour() {
        let t = Theme::default_dark(true);
        assert_eq!(t.colors.failed, Color::Reset);
        assert!(t.selection().add_modifier.contains(Modifier::REVERSED));
        assert!(t.title(true).add_modifier.contains(Modifier::REVERSED));
    }
}
