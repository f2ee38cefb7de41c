//! The interactive dashboard: the same engine as `run --headless`, drawn as a live pipeline graph,
//! streaming logs, a metric plot, the tweak panel and the run history.
//!
//! Shape (the Elm architecture): workers ([`workers`]) and the terminal produce [`msg::UiMsg`]s; the
//! reducer ([`update::update`]) is the only code that changes the [`state::UiState`] and asks for
//! outside work through [`msg::Effect`]s; views ([`views`]) only draw the state. Nothing here talks
//! to Docker or git except through the engine and the `ContainerBackend::ping` of the status bar.

mod command;
pub mod keymap;
mod layout;
mod logbuf;
mod msg;
mod proposal;
mod runtime;
mod search_space;
pub mod settings;
mod state;
mod terminal;
pub mod theme;
mod trials;
mod update;
mod views;
mod workers;

#[cfg(test)]
mod bench;

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::engine::Engine;
use crate::support::paths::Paths;

use keymap::Keymap;
use settings::{Settings, SettingsError};
use theme::Theme;

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

/// Runs the dashboard until the operator quits; returns the exit code.
///
/// `connect` makes a backend connection (retried with back-off by the Docker monitor while it
/// fails, e.g. while the socket is missing); `build` makes the engine from the first connection. So
/// the dashboard opens and shows "Docker unavailable, retrying" when Docker is down at start; the
/// engine, once built, lets runs wait until Docker answers.
pub async fn run<B, C, E>(opts: Options, connect: C, build: E) -> Result<i32, TuiError>
where
    B: ContainerBackend,
    C: Fn() -> Result<B, BackendError> + Send + 'static,
    E: FnOnce(Arc<B>) -> Engine<B>,
{
    let prepared = prepare(&opts)?;
    runtime::run(opts, prepared, connect, build).await
}

/// Lines for `mlops-tui info`: where the dashboard reads its settings and themes.
pub fn info_lines(paths: &Paths) -> Vec<String> {
    let cfg = paths.config.join(settings::FILE_NAME);
    let themes = Theme::available(&paths.config).join(", ");
    vec![
        format!(
            "dashboard config: {}{}",
            cfg.display(),
            if cfg.exists() {
                ""
            } else {
                " (absent: defaults)"
            }
        ),
        format!(
            "user themes:      {}",
            paths.config.join("themes").display()
        ),
        format!("themes:           {themes}"),
    ]
}
