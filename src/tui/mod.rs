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
mod options;
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

use std::sync::Arc;

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::engine::Engine;
use crate::support::paths::Paths;

use options::prepare;
pub use options::{Options, TuiError};
use theme::Theme;

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
