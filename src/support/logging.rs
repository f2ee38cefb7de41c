//! Diagnostics go to a file in the XDG state directory, never to the terminal (which the dashboard
//! owns). `MLOPS_TUI_LOG` sets the filter (default `info`).

use tracing_appender::non_blocking::WorkerGuard;

use crate::support::paths::Paths;

/// Diagnostic lines that may wait for the log file before new ones are dropped (the writer is lossy:
/// a slow disk never blocks the engine or the dashboard). The appender's default, 128,000, is a
/// channel allocated and initialised up front at 32 bytes a slot: 3.9 MiB resident from the first
/// instant, about half of the dashboard's own memory at rest. At `info` a whole run writes a handful
/// of lines, so 8,192 (256 KiB) hold a long stall of the disk, and the bursts of `debug` too.
const BUFFERED_LINES: usize = 8_192;

/// Starts file logging; keep the guard alive for the life of the process. Returns `None` (and logs
/// nowhere) when the state directory cannot be created: logging must never stop the tool.
pub fn init(paths: &Paths) -> Option<WorkerGuard> {
    std::fs::create_dir_all(&paths.state).ok()?;
    let appender = tracing_appender::rolling::never(&paths.state, "mlops-tui.log");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(true)
        .finish(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("MLOPS_TUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}
