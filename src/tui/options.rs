//! What the command line decides about the dashboard ([`Options`]), and what is read before the
//! terminal is taken ([`Prepared`]), so that a bad settings or theme file is a plain error.

use std::path::PathBuf;

use crate::support::paths::Paths;

use super::keymap::Keymap;
use super::settings::{Settings, SettingsError};
use super::theme::{self, Theme};

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
}

/// What the command line decides about the dashboard.
#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Paths,
    /// The project directory.
    pub project: PathBuf,
    /// The branch watched, when given.
    pub branch: Option<String>,
    /// `--theme`, over the config file's `theme`.
    pub theme: Option<String>,
    /// `--ascii`, or'ed with the config file's `ascii`.
    pub ascii: bool,
    /// `tweak.apply` of the project's `mlops.toml`, shown before the first run has read it.
    pub apply: Option<crate::core::config::ApplyMode>,
}

/// Settings, theme and key table, read before the terminal is taken so that a bad file is reported
/// as a plain error.
pub struct Prepared {
    pub settings: Settings,
    pub theme: Theme,
    pub keymap: Keymap,
    pub no_color: bool,
}

/// `NO_COLOR` set to anything non-empty (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Reads `<config dir>/config.toml` and the chosen theme.
pub fn prepare(opts: &Options) -> Result<Prepared, SettingsError> {
    let settings = Settings::load(&opts.paths.config)?;
    let no_color = no_color();
    let name = opts
        .theme
        .clone()
        .or_else(|| settings.theme.clone())
        .unwrap_or_else(|| theme::DEFAULT_THEME.to_string());
    let theme = Theme::load(&name, &opts.paths.config, no_color)?;
    let keymap = Keymap::with_overrides(&settings)?;
    Ok(Prepared {
        settings,
        theme,
        keymap,
        no_color,
    })
}
