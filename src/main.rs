use clap::Parser;

fn main() {
    let cli = mlops_tui::cli::Cli::parse();
    let paths = mlops_tui::support::paths::Paths::resolve(cli.data_dir.clone());
    let _log_guard = mlops_tui::support::logging::init(&paths);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(mlops_tui::cli::main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    // Do not wait for detached tasks (pollers, log followers) to notice the end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
