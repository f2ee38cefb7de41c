//! Owning the terminal: raw mode and the alternate screen while the dashboard runs, and a panic hook
//! that puts the terminal back before anything is printed.
//!
//! The hook distinguishes threads: a panic on the UI thread ends the dashboard, so the terminal is
//! restored first and the panic printed after. A panic on any other thread (a background task) must
//! not tear the dashboard down nor scribble over it: it goes to the log file and to the UI as a
//! message, and the task's supervisor reports it.

use std::io::{Stdout, stdout};
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::thread::ThreadId;

use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use super::msg::UiMsg;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// The terminal in raw mode on the alternate screen. Dropping it restores the terminal and the
/// panic hook that was there before.
pub struct TerminalGuard {
    pub terminal: Term,
    previous_hook: Hook,
}

impl TerminalGuard {
    /// Takes over the terminal. `ui_thread` is the thread the dashboard draws from; `report` gets
    /// background panics.
    pub fn enter(
        ui_thread: ThreadId,
        report: mpsc::UnboundedSender<UiMsg>,
    ) -> std::io::Result<TerminalGuard> {
        let previous: Hook = Arc::from(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == ui_thread {
                restore();
                chained(info);
            } else {
                let text = panic_text(info);
                tracing::error!("background task panicked: {text}");
                let _ = report.send(UiMsg::TaskFailed {
                    task: "a background task".into(),
                    error: format!("panicked: {text}"),
                });
            }
        }));
        let setup = || -> std::io::Result<Term> {
            enable_raw_mode()?;
            execute!(stdout(), EnterAlternateScreen)?;
            let mut t = Terminal::new(CrosstermBackend::new(stdout()))?;
            t.hide_cursor()?;
            t.clear()?;
            Ok(t)
        };
        match setup() {
            Ok(terminal) => Ok(TerminalGuard {
                terminal,
                previous_hook: previous,
            }),
            Err(e) => {
                restore();
                let prev = previous.clone();
                std::panic::set_hook(Box::new(move |i| prev(i)));
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        restore();
        let prev = self.previous_hook.clone();
        std::panic::set_hook(Box::new(move |i| prev(i)));
    }
}

/// Leaves raw mode and the alternate screen; safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

fn panic_text(info: &PanicHookInfo<'_>) -> String {
    let msg = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".into());
    match info.location() {
        Some(l) => format!("{msg} at {}:{}", l.file(), l.line()),
        None => msg,
    }
}
