//! Command-line surface. `main.rs` only parses and calls [`main`]; every command lives here so that
//! tests can drive the same code paths.

mod export_mlflow;
mod history;
mod images;
mod project;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::adapters::store;
use crate::core::config;
use crate::core::detect;
use crate::support::paths::Paths;

#[derive(Debug, Parser)]
#[command(
    name = "mlops-tui",
    version,
    about = "Turns a git repository of ML training code into a self-driving, self-healing training loop"
)]
pub struct Cli {
    /// Where history and run directories live (default: the XDG data directory; env MLOPS_TUI_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Dashboard theme: dark, light, colorblind, or a file in <config dir>/themes/ (default: the
    /// config file's `theme`, else dark).
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// Dashboard in plain ASCII: borders, status glyphs and plot markers (fonts without Braille).
    #[arg(long, global = true)]
    pub ascii: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Project directory, when no command is given (default: the current directory).
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the training loop on a project: train, evaluate, tweak, retrain until the target or budget.
    Run {
        /// Project directory (holds mlops.toml).
        path: Option<PathBuf>,
        /// Print events and training output as lines instead of drawing the dashboard.
        #[arg(long)]
        headless: bool,
        /// One run on the current commit, then exit: 0 target reached, 3 budget spent, 1 failed.
        #[arg(long)]
        once: bool,
        /// Print only the engine's events, not the containers' output.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Send a test message through every channel of a project's `[notify]` settings.
    Notify {
        /// Project directory (holds mlops.toml).
        path: Option<PathBuf>,
        /// Required: says that a test message is wanted (the only thing this command does).
        #[arg(long)]
        test: bool,
    },
    /// Show what kind of model a project trains, the image it maps to, and why.
    Detect { path: Option<PathBuf> },
    /// Write a commented mlops.toml for a project from what is detected in its code.
    Init {
        path: Option<PathBuf>,
        /// Overwrite an existing mlops.toml.
        #[arg(long)]
        force: bool,
    },
    /// Build or list the built-in images.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// List past runs, or the iterations of one run.
    History {
        run: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Recover a damaged history: keep it as history.sqlite3.damaged-<time>, start a fresh one,
        /// and copy into it every run still readable.
        #[arg(long, conflicts_with = "run")]
        recover: bool,
    },
    /// Make the best iteration of a run a branch you can merge (default `mlops/run-N-best`).
    Export {
        run: i64,
        /// The branch to create; an existing branch is never moved.
        #[arg(long)]
        branch: Option<String>,
    },
    /// Send a run of the history to an MLflow tracking server (default: the run's [track.mlflow]).
    #[command(name = "export-mlflow")]
    ExportMlflow {
        run: i64,
        /// The tracking server, `http://host:port`.
        #[arg(long)]
        uri: Option<String>,
        /// The experiment (default: the run's [track.mlflow] experiment, else the project's name).
        #[arg(long)]
        experiment: Option<String>,
    },
    /// Print the resolved paths (data, history database, logs, config).
    Info,
}

/// Where new commits come from (job 1), and the engines trials run on.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// A Docker engine to train on, `NAME=URL[,slots=N][,tls=DIR]` (URL: unix:///…, tcp://host:port
    /// with TLS, ssh://user@host); repeat for several. Replaces mlops.toml's [[engines]]. The first
    /// builds the images. Default: the local engine, with as many slots as [budget] parallel.
    #[arg(long = "engine", value_name = "NAME=URL")]
    pub engines: Vec<String>,
    /// Branch to watch (default: mlops.toml's `train.branch`, else the checked-out branch; with
    /// --remote, `main`).
    #[arg(long)]
    pub branch: Option<String>,
    /// Seconds between checks for new commits.
    #[arg(long, default_value_t = 5.0)]
    pub poll: f64,
    /// Watch this repository (a path, file://, https:// or ssh URL) instead of the project's own;
    /// it is fetched into a mirror in the data directory.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// With --remote: the project's directory inside that repository.
    #[arg(long, value_name = "DIR")]
    pub subdir: Option<PathBuf>,
    /// Accept GitHub-style signed push webhooks on this address (e.g. 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR")]
    pub webhook: Option<std::net::SocketAddr>,
    /// The webhook secret, read from this file.
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The webhook secret, read from this environment variable.
    #[arg(long, value_name = "VAR", default_value = "MLOPS_TUI_WEBHOOK_SECRET")]
    pub webhook_secret_env: String,
    /// Train every commit that lands while a run is busy, in order (default: only the newest; the
    /// others are recorded as skipped).
    #[arg(long)]
    pub queue_all: bool,
    /// Start each run from the configured start: do not carry over what earlier runs of the branch
    /// tried on other commits (warm start).
    #[arg(long)]
    pub cold: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the images that are missing (all profiles, or the ones named).
    Build { profiles: Vec<String> },
    /// List the built-in profiles and their image tags.
    List,
}

/// Errors that end a command; printed as `error: …` by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Backend(#[from] crate::adapters::backend::BackendError),
    #[error(transparent)]
    Repo(#[from] crate::adapters::git::RepoError),
    #[error(transparent)]
    Lock(#[from] store::LockError),
}

/// Runs a parsed command line and returns the process exit code.
pub async fn main(cli: Cli) -> Result<i32, CliError> {
    let paths = Paths::resolve(cli.data_dir.clone());
    match cli.command {
        None => {
            let watch = WatchArgs {
                engines: Vec::new(),
                branch: None,
                poll: 5.0,
                remote: None,
                subdir: None,
                webhook: None,
                webhook_secret_file: None,
                webhook_secret_env: "MLOPS_TUI_WEBHOOK_SECRET".into(),
                queue_all: false,
                cold: false,
            };
            run::dashboard(&paths, cli.path, watch, cli.theme, cli.ascii).await
        }
        // `--once` is for scripts (its exit status says how the run ended): it always prints lines.
        Some(Command::Run {
            path,
            headless: false,
            once: false,
            quiet: _,
            watch,
        }) => run::dashboard(&paths, path, watch, cli.theme, cli.ascii).await,
        Some(Command::Run {
            path,
            headless: _,
            once,
            quiet,
            watch,
        }) => run::run(&paths, path, once, quiet, watch).await,
        Some(Command::Notify { path, test }) => project::notify_cmd(path, test).await,
        Some(Command::Detect { path }) => project::detect_cmd(path),
        Some(Command::Init { path, force }) => project::init_cmd(path, force),
        Some(Command::Images { command }) => images::images_cmd(command).await,
        Some(Command::History { recover: true, .. }) => history::recover_cmd(&paths),
        Some(Command::History { run, limit, .. }) => history::history_cmd(&paths, run, limit),
        Some(Command::Export { run, branch }) => history::export_cmd(&paths, run, branch),
        Some(Command::ExportMlflow {
            run,
            uri,
            experiment,
        }) => export_mlflow::export_mlflow(&paths, run, uri, experiment).await,
        Some(Command::Info) => Ok(info_cmd(&paths)),
    }
}

/// `info`: where things are kept.
fn info_cmd(paths: &Paths) -> i32 {
    println!("data directory:   {}", paths.data.display());
    println!("history database: {}", paths.db().display());
    println!("run directories:  {}", paths.runs().display());
    println!("log file:         {}", paths.log_file().display());
    println!("config directory: {}", paths.config.display());
    for line in crate::tui::info_lines(paths) {
        println!("{line}");
    }
    0
}

pub(super) fn project_dir(path: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let dir = match path {
        Some(p) => p,
        None => std::env::current_dir()
            .map_err(|e| CliError::Message(format!("current directory: {e}")))?,
    };
    if !dir.is_dir() {
        return Err(CliError::Message(format!(
            "{}: not a directory",
            dir.display()
        )));
    }
    Ok(dir)
}
