//! `run` and the dashboard: the training loop on a project, headless or drawn.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, WatchArgs, project_dir};
use crate::adapters::backend::ContainerBackend;
use crate::adapters::docker::DockerBackend;
use crate::adapters::engines::FIRST_ANSWER;
use crate::adapters::git::Project;
use crate::adapters::pool_backend::PoolBackend;
use crate::adapters::store::{self, Store};
use crate::core::config::{self, Config};
use crate::core::model::RunStatus;
use crate::core::text::escaped_lines;
use crate::engine::{Engine, EngineOptions};
use crate::headless;
use crate::support::config_file;
use crate::support::paths::Paths;

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

/// The dashboard on the same engine as headless mode, with an operator (`interactive`). Falls back
/// to headless output when stdout is not a terminal. Docker need not answer yet: the dashboard opens,
/// shows it unavailable, and starts the engine once it answers.
pub(super) async fn dashboard(
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
    let pool = pool(&watch, cfg_engines).await?;
    crate::tui::run(
        ui,
        || DockerBackend::connect_default().map(PoolBackend::Docker),
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
                Some(config_file::load_dir(&project.dir)?)
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

pub(super) async fn run(
    paths: &Paths,
    path: Option<PathBuf>,
    once: bool,
    quiet: bool,
    watch: WatchArgs,
) -> Result<i32, CliError> {
    let (opts, cfg) = engine_options(paths, path, &watch, false, once)?;
    let _lock = lock_project(paths, &opts)?;
    let cfg_engines = cfg.map(|c| c.engines).unwrap_or_default();
    if let Some(pool) = pool(&watch, cfg_engines).await? {
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
    let engine = Engine::new(Arc::new(PoolBackend::Docker(backend)), store, opts);
    let mut printer = headless::Printer::stdout(!quiet);
    Ok(exit_code(engine.run(&mut printer).await))
}

/// A one-shot run waits [`FIRST_ANSWER`] at most for its engines: it cannot start when the first
/// (where images are built) or every engine stays silent or refuses. Another engine that does not
/// answer is only reported; the run places its trials on those that do, as with any engine down.
async fn first_answers(pool: &crate::adapters::engines::Pool<PoolBackend>) -> Result<(), CliError> {
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
async fn pool(
    watch: &WatchArgs,
    configured: Vec<crate::core::config::EngineSpec>,
) -> Result<Option<crate::adapters::engines::Pool<PoolBackend>>, CliError> {
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
    Ok(Some(crate::adapters::engines::connect_all(&specs).await?))
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
