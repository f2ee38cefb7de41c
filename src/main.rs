use std::io::Write;

use clap::Parser;

fn main() {
    let cli = mlops_tui::cli::Cli::parse();
    let paths = mlops_tui::support::paths::Paths::resolve(cli.data_dir.clone());
    let _log_guard = mlops_tui::support::logging::init(&paths);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            std::process::exit(1);
        }
    };
    // A panic that escapes (e.g. a write to a terminal that was closed under us) must still end the
    // process: unwinding past the runtime would drop it, and dropping a runtime waits for every
    // blocking task without limit, which can be forever once the terminal is gone.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(mlops_tui::cli::main(cli))
    }));
    let code = match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            // Not `eprintln!`: it panics when stderr is gone (a closed terminal).
            let shown = mlops_tui::core::text::escaped_lines(&e.to_string());
            let _ = writeln!(std::io::stderr(), "error: {shown}");
            1
        }
        Err(_) => 101,
    };
    // Do not wait for detached tasks (pollers, log followers) to notice the end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
