//! Command-line surface. `main.rs` only parses and calls [`main`]; every command lives here so that
//! tests can drive the same code paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::adapters::backend::ContainerBackend;
use crate::adapters::docker::DockerBackend;
use crate::adapters::engines::FIRST_ANSWER;
use crate::adapters::git::Project;
use crate::adapters::images;
use crate::adapters::store::{self, RunStatus, Store};
use crate::core::config::{self, Config};
use crate::core::detect;
use crate::core::text::escaped_lines;
use crate::engine::{Engine, EngineOptions};
use crate::headless;
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

/// Takes the project's lock in this history (see [`store::ProjectLock`]) before anything trains or
/// the dashboard takes the terminal, so that a refusal is a plain error on a sane terminal.
fn lock_project(paths: &Paths, opts: &EngineOptions) -> Result<store::ProjectLock, CliError> {
    let dir = &opts.project.dir;
    let project = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let command: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or(a)
            } else {
                a
            }
        })
        .collect();
    Ok(store::ProjectLock::acquire(
        &paths.data,
        &project.display().to_string(),
        &command.join(" "),
    )?)
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
            dashboard(&paths, cli.path, watch, cli.theme, cli.ascii).await
        }
        // `--once` is for scripts (its exit status says how the run ended): it always prints lines.
        Some(Command::Run {
            path,
            headless: false,
            once: false,
            quiet: _,
            watch,
        }) => dashboard(&paths, path, watch, cli.theme, cli.ascii).await,
        Some(Command::Run {
            path,
            headless: _,
            once,
            quiet,
            watch,
        }) => run(&paths, path, once, quiet, watch).await,
        Some(Command::Notify { path, test }) => notify_cmd(path, test).await,
        Some(Command::Detect { path }) => detect_cmd(path),
        Some(Command::Init { path, force }) => init_cmd(path, force),
        Some(Command::Images { command }) => images_cmd(command).await,
        Some(Command::History { recover: true, .. }) => recover_cmd(&paths),
        Some(Command::History { run, limit, .. }) => history_cmd(&paths, run, limit),
        Some(Command::Export { run, branch }) => export_cmd(&paths, run, branch),
        Some(Command::Info) => Ok(info_cmd(&paths)),
    }
}

/// `export RUN [--branch NAME]`: the best iteration's commit as a branch.
fn export_cmd(paths: &Paths, run: i64, branch: Option<String>) -> Result<i32, CliError> {
    let store = Store::open(&paths.db())?;
    let made = crate::history::export_run(&store, crate::core::ids::RunId(run), branch)
        .map_err(CliError::Message)?;
    print!("{}", escaped_lines(&made.text));
    Ok(0)
}

/// `notify --test`: one test message through every configured channel; exit 1 if any failed.
async fn notify_cmd(path: Option<PathBuf>, test: bool) -> Result<i32, CliError> {
    if !test {
        return Err(CliError::Message(
            "say `mlops-tui notify --test [PATH]` to send a test message".into(),
        ));
    }
    let dir = project_dir(path)?;
    let cfg = Config::load_dir(&dir)?;
    let project = dir.canonicalize().unwrap_or(dir).display().to_string();
    let results = crate::adapters::notify::send_test(&cfg.notify, &project).await;
    if results.is_empty() {
        println!("no notification channel is configured in [notify]");
    }
    let mut failed = 0;
    for (channel, result) in results {
        match result {
            Ok(()) => println!("{channel}: sent"),
            Err(e) => {
                failed += 1;
                println!("{channel}: failed: {e}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `detect`: the verdict and its evidence, file:line.
fn detect_cmd(path: Option<PathBuf>) -> Result<i32, CliError> {
    let dir = project_dir(path)?;
    let verdict = detect::detect(&dir)?;
    println!("{}", verdict.summary());
    let config = config::Config::load_dir(&dir).ok();
    if let Some(note) = images::cuda::detect_note(config.as_ref(), verdict.profile()) {
        println!("{note}");
    }
    println!("evidence:");
    for e in &verdict.evidence {
        let line = format!("  {}  {}  ({})", e.at(), e.symbol, e.meaning);
        println!("{}", escaped_lines(&line));
    }
    println!("scanned {} Python file(s)", verdict.scanned.len());
    print_imports(&dir, verdict.profile())?;
    Ok(0)
}

/// The third-party imports and whether the detected profile provides each (else the fix).
fn print_imports(dir: &Path, profile: &str) -> Result<(), CliError> {
    let imports = detect::imports(dir)?;
    if imports.is_empty() {
        return Ok(());
    }
    let provides = |m: &str| images::profile(profile).is_some_and(|p| p.provides(m));
    println!("third-party imports (image {profile}):");
    for i in &imports {
        let note = if provides(&i.module) {
            "provided".to_owned()
        } else if i.optional {
            "not provided, but optional: its ImportError is caught".to_owned()
        } else {
            format!(
                "not provided: list `{}` in requirements.txt",
                detect::package_name(&i.module)
            )
        };
        let line = format!("  {}  {}  ({note})", i.at(), i.module);
        println!("{}", escaped_lines(&line));
    }
    Ok(())
}

/// `init`: a commented `mlops.toml` written from what is detected.
fn init_cmd(path: Option<PathBuf>, force: bool) -> Result<i32, CliError> {
    let dir = project_dir(path)?;
    let target = dir.join(config::FILE_NAME);
    if target.exists() && !force {
        return Err(CliError::Message(format!(
            "{} exists; use --force to overwrite it",
            target.display()
        )));
    }
    let sources = detect::read_sources(&dir)?;
    let verdict = detect::detect_sources(&dir, &sources)?;
    let discovery = crate::core::knobs::discover(&verdict, &sources);
    let env = config::template::Environment {
        dockerfile: dir.join("Dockerfile").is_file(),
        requirements: dir.join("requirements.txt").is_file(),
    };
    let text = config::template::for_project(&verdict, &discovery, env);
    // The template must always parse: a file we write is a file we accept.
    Config::parse(&text, &target)?;
    crate::support::fsutil::write_atomic(&target, text.as_bytes())
        .map_err(|e| CliError::Message(format!("{}: {e}", target.display())))?;
    println!("wrote {} ({})", target.display(), verdict.summary());
    if let Some(entry) = &discovery.entry {
        println!("command: python3 {}", escaped_lines(entry));
    }
    if !discovery.knobs.is_empty() {
        println!(
            "{} knob(s) found in the code, commented out in [tweak.space]: uncomment the ones to tune",
            discovery.knobs.len()
        );
    }
    for f in &discovery.files.state {
        println!(
            "keep = [\"{}\"]: {} reads it, {} writes it; each iteration starts with the previous one's",
            f.path, f.read, f.written
        );
    }
    if let Some((file, at)) = &discovery.files.metric_file {
        println!("metric.file = \"{file}\": {at} writes the result there");
    }
    Ok(0)
}

/// `history [RUN]`: the runs table, or one run's iterations.
fn history_cmd(paths: &Paths, run: Option<i64>, limit: usize) -> Result<i32, CliError> {
    let store = Store::open(&paths.db())?;
    let text = match run {
        Some(id) => crate::history::format_run(&store, crate::core::ids::RunId(id))?,
        None => crate::history::format_runs(&store, limit)?,
    };
    print!("{}", escaped_lines(&text));
    Ok(0)
}

/// `history --recover`: only a damaged history is touched; a sound one is left as it is.
fn recover_cmd(paths: &Paths) -> Result<i32, CliError> {
    let db = paths.db();
    if !db.exists() {
        println!(
            "{}: no history database here; nothing to recover",
            db.display()
        );
        return Ok(0);
    }
    match Store::open(&db) {
        Ok(_) => {
            println!(
                "{}: the history database is sound; nothing to recover",
                db.display()
            );
            return Ok(0);
        }
        Err(crate::adapters::store::StoreError::Damaged { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let report = crate::adapters::store::recover(&db)?;
    print!("{}", recovery_text(&report));
    Ok(0)
}

/// What a recovery saved and lost, for people.
fn recovery_text(r: &crate::adapters::store::Recovery) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "damaged history kept as {}", r.damaged.display());
    let _ = writeln!(out, "fresh history at {}", r.fresh.display());
    let _ = writeln!(
        out,
        "saved: {} runs whole, {} runs in part or not at all",
        r.runs_saved.len(),
        r.runs_lost.len()
    );
    for t in &r.tables {
        let _ = writeln!(out, "  {}: {} rows copied", t.table, t.rows);
    }
    if !r.runs_lost.is_empty() {
        let lost: Vec<String> = r.runs_lost.iter().map(|id| id.to_string()).collect();
        let _ = writeln!(out, "lost (in part or whole): runs {}", lost.join(", "));
    }
    for p in &r.problems {
        let _ = writeln!(out, "unreadable: {p}");
    }
    out
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

fn project_dir(path: Option<PathBuf>) -> Result<PathBuf, CliError> {
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

/// The dashboard on the same engine as headless mode, with an operator (`interactive`). Falls back
/// to headless output when stdout is not a terminal. Docker need not answer yet: the dashboard opens,
/// shows it unavailable, and starts the engine once it answers.
async fn dashboard(
    paths: &Paths,
    path: Option<PathBuf>,
    watch: WatchArgs,
    theme: Option<String>,
    ascii: bool,
) -> Result<i32, CliError> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        eprintln!("note: stdout is not a terminal; running headless (mlops-tui run --headless)");
        return run(paths, path, false, false, watch).await;
    }
    let (opts, cfg) = engine_options(paths, path, &watch, true, false)?;
    let cfg_engines = cfg.as_ref().map(|c| c.engines.clone()).unwrap_or_default();
    let apply = cfg.map(|c| c.tweak.apply);
    let branch = opts.branch.clone();
    let project = opts.project.clone();
    let _lock = lock_project(paths, &opts)?;
    let store = Store::open(&paths.db())?;
    let ui = crate::tui::Options {
        paths: paths.clone(),
        project: project.dir.clone(),
        branch: branch.clone(),
        theme,
        ascii,
        apply,
    };
    let pool = pool(&watch, cfg_engines)?;
    crate::tui::run(
        ui,
        DockerBackend::connect_default,
        move |backend| match pool {
            Some(pool) => Engine::from_pool(pool, store, opts),
            None => Engine::new(backend, store, opts),
        },
    )
    .await
    .map_err(|e| CliError::Message(e.to_string()))
}

/// The engine's options from the command line, plus the working copy's `mlops.toml` when there is
/// one (read first, so a broken file is reported before anything starts).
fn engine_options(
    paths: &Paths,
    path: Option<PathBuf>,
    watch: &WatchArgs,
    interactive: bool,
    once: bool,
) -> Result<(EngineOptions, Option<Config>), CliError> {
    let mut branch = watch.branch.clone();
    let (project, remote, cfg) = match &watch.remote {
        Some(url) => {
            let branch = branch.get_or_insert_with(|| "main".into()).clone();
            let cache = paths.data.join("mirrors");
            let watcher = crate::adapters::git::RemoteWatcher::open(url, &branch, &cache)
                .map_err(|e| CliError::Message(e.to_string()))?;
            let subdir = watch.subdir.clone().unwrap_or_default();
            let project = watcher.project(&subdir);
            let remote = crate::engine::RemoteOptions {
                url: url.clone(),
                branch,
                cache,
                subdir,
            };
            (project, Some(remote), None)
        }
        None => {
            let dir = project_dir(path)?;
            let project = Project::locate(&dir)?;
            let cfg = if dir.join(config::FILE_NAME).exists() {
                Some(Config::load_dir(&project.dir)?)
            } else {
                None
            };
            if let Some(c) = &cfg {
                branch = branch.or(c.train.branch.clone());
            }
            (project, None, cfg)
        }
    };
    let webhook = match watch.webhook {
        None => None,
        Some(addr) => {
            let secret = match &watch.webhook_secret_file {
                Some(f) => crate::adapters::webhook::Secret::from_file(f),
                None => crate::adapters::webhook::Secret::from_env(&watch.webhook_secret_env),
            }
            .map_err(|e| CliError::Message(format!("--webhook needs a secret: {e}")))?;
            Some((addr, secret))
        }
    };
    let opts = EngineOptions {
        project,
        runs_dir: paths.runs(),
        interactive,
        once,
        branch,
        poll_interval: Duration::from_secs_f64(watch.poll.max(0.5)),
        queue_all: watch.queue_all,
        cold: watch.cold,
        remote,
        webhook,
        data_policy: crate::support::data_policy::DataPolicy::load(paths)
            .map_err(CliError::Message)?,
    };
    Ok((opts, cfg))
}

async fn run(
    paths: &Paths,
    path: Option<PathBuf>,
    once: bool,
    quiet: bool,
    watch: WatchArgs,
) -> Result<i32, CliError> {
    let (opts, cfg) = engine_options(paths, path, &watch, false, once)?;
    let _lock = lock_project(paths, &opts)?;
    let cfg_engines = cfg.map(|c| c.engines).unwrap_or_default();
    if let Some(pool) = pool(&watch, cfg_engines)? {
        if once {
            first_answers(&pool).await?;
        }
        let store = Store::open(&paths.db())?;
        let engine = Engine::from_pool(pool, store, opts);
        let mut printer = headless::Printer::stdout(!quiet);
        return Ok(exit_code(engine.run(&mut printer).await));
    }
    let backend = match DockerBackend::connect_default() {
        Ok(b) => b,
        Err(e) if once => return Err(e.into()),
        Err(e) => {
            // A watching console outlives a missing engine: wait for its socket with back-off.
            eprintln!("warning: {e}; waiting for it (retrying with back-off)");
            let mut delay = Duration::from_millis(500);
            loop {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                if let Ok(b) = DockerBackend::connect_default() {
                    break b;
                }
            }
        }
    };
    let answer = if once {
        let silent = || silent_engine("local", &backend.endpoint(), true);
        tokio::time::timeout(FIRST_ANSWER, backend.ping())
            .await
            .map_err(|_| CliError::Message(silent()))?
    } else {
        backend.ping().await
    };
    if let Err(e) = answer {
        if once {
            // A one-shot run (scripts, CI) says at once that it cannot work.
            return Err(e.into());
        }
        eprintln!("warning: {e}; waiting for it (retrying with back-off)");
    }
    let store = Store::open(&paths.db())?;
    let engine = Engine::new(Arc::new(backend), store, opts);
    let mut printer = headless::Printer::stdout(!quiet);
    Ok(exit_code(engine.run(&mut printer).await))
}

/// A one-shot run waits [`FIRST_ANSWER`] at most for its engines: it cannot start when the first
/// (where images are built) or every engine stays silent or refuses. Another engine that does not
/// answer is only reported; the run places its trials on those that do, as with any engine down.
async fn first_answers(
    pool: &crate::adapters::engines::Pool<DockerBackend>,
) -> Result<(), CliError> {
    let backends: Vec<_> = pool.engines.iter().map(|e| e.backend.clone()).collect();
    let silent = crate::adapters::engines::unanswered(&backends, FIRST_ANSWER).await;
    let lines: Vec<String> = silent
        .iter()
        .map(|(i, why)| {
            let spec = &pool.engines[*i].spec;
            let from_env = matches!(spec.host, config::EngineHost::Local { socket: None });
            let endpoint = pool.engines[*i].backend.endpoint();
            match why {
                None => silent_engine(&spec.name, &endpoint, from_env),
                Some(e) => format!("engine {}: {e}", spec.name),
            }
        })
        .collect();
    let first_silent = silent.first().is_some_and(|(i, _)| *i == 0);
    if first_silent || (!silent.is_empty() && silent.len() == backends.len()) {
        return Err(CliError::Message(lines.join("\n")));
    }
    for line in lines {
        eprintln!("warning: {line}; trials go to the other engines");
    }
    Ok(())
}

/// What a one-shot run says about an engine that accepted the connection (or never refused it) but
/// gave no answer within [`FIRST_ANSWER`]: which engine, where, and what to fix.
fn silent_engine(name: &str, endpoint: &str, from_env: bool) -> String {
    let fix = if from_env {
        "or fix DOCKER_HOST"
    } else {
        "or fix its address (--engine NAME=URL, or [[engines]] in mlops.toml)"
    };
    format!(
        "engine {name} ({endpoint}) did not answer in {}s: check that dockerd runs there and \
         listens on that address, {fix}",
        FIRST_ANSWER.as_secs()
    )
}

/// The engines given by `--engine` flags, else by the working copy's `[[engines]]`, connected; `None`
/// when neither names any (the local engine then trains, with slots following `parallel`). An
/// engine that does not answer yet is not an error here: the engine sees it down and waits.
fn pool(
    watch: &WatchArgs,
    configured: Vec<crate::core::config::EngineSpec>,
) -> Result<Option<crate::adapters::engines::Pool<DockerBackend>>, CliError> {
    let specs = if watch.engines.is_empty() {
        configured
    } else {
        watch
            .engines
            .iter()
            .map(|f| crate::core::config::EngineSpec::parse_flag(f))
            .collect::<Result<Vec<_>, String>>()
            .map_err(CliError::Message)?
    };
    if specs.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::adapters::engines::connect_all(&specs)?))
}

/// The process's exit status for how the run ended: 0 target reached, 3 budget spent, 1 otherwise.
fn exit_code(outcome: crate::engine::Outcome) -> i32 {
    match outcome.status {
        RunStatus::Succeeded => 0,
        RunStatus::BudgetSpent => {
            eprintln!("error: {}", escaped_lines(&outcome.reason));
            3
        }
        _ => {
            eprintln!("error: {}", escaped_lines(&outcome.reason));
            1
        }
    }
}

async fn images_cmd(command: ImagesCommand) -> Result<i32, CliError> {
    match command {
        ImagesCommand::List => {
            for p in images::PROFILES {
                println!("{:<8} {:<32} {}", p.name, p.tag(), p.summary);
            }
            Ok(0)
        }
        ImagesCommand::Build { profiles } => {
            let names: Vec<String> = if profiles.is_empty() {
                images::PROFILES
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect()
            } else {
                profiles
            };
            let mut wanted = Vec::new();
            for n in &names {
                let Some(p) = images::profile(n) else {
                    let known: Vec<_> = images::PROFILES.iter().map(|p| p.name).collect();
                    return Err(CliError::Message(format!(
                        "unknown profile \"{n}\" (known: {})",
                        known.join(", ")
                    )));
                };
                wanted.push(p);
            }
            let backend = DockerBackend::connect_default()?;
            backend.ping().await?;
            for p in wanted {
                let n = p.name;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let printer = tokio::spawn(async move {
                    while let Some(line) = rx.recv().await {
                        println!("[image] {line}");
                    }
                });
                let result = backend
                    .prepare_image(&images::ImageSpec::Profile(p), tx)
                    .await;
                let _ = printer.await;
                let tag = result?;
                println!("{n}: {tag} ready");
            }
            Ok(0)
        }
    }
}
