//! Job 1: notice new commits. A poller asks the branch's head on an interval (the project's own
//! repository, or a remote fetched into a bare mirror); a signed push webhook only makes it look at
//! once. Polling stays on as the fallback, so a lost webhook delays a run, never loses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::adapters::git::{Project, RemoteWatcher};
use crate::core::model::CommitInfo;
pub use crate::engine::error::HeadError;

use crate::adapters::store::RunRow;
use crate::core::ids::RunId;
use crate::core::model::RunStatus;
use crate::engine::event::Level;
use crate::engine::msg::Msg;
use crate::engine::options::{EngineOptions, RemoteOptions};
use crate::engine::trigger::Trigger;

/// A remote check that takes longer than this is abandoned for this round (git2 has no safe connect
/// timeout); the next round tries again.
const REMOTE_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// Where heads come from. Cheap to clone; the remote watcher is shared behind a mutex because git2
/// handles are not `Sync` and checks run on blocking threads.
#[derive(Clone)]
pub enum Source {
    Local {
        project: Project,
        branch: Option<String>,
    },
    Remote {
        opts: RemoteOptions,
        watcher: Arc<Mutex<Option<RemoteWatcher>>>,
    },
}

impl Source {
    pub fn new(opts: &EngineOptions) -> Source {
        match &opts.remote {
            Some(r) => Source::Remote {
                opts: r.clone(),
                watcher: Arc::new(Mutex::new(None)),
            },
            None => Source::Local {
                project: opts.project.clone(),
                branch: opts.branch.clone(),
            },
        }
    }

    /// The branch's head now (fetching a remote when it moved). Blocking.
    fn head_blocking(&self) -> Result<CommitInfo, HeadError> {
        match self {
            Source::Local { project, branch } => Ok(project.head(branch.as_deref())?),
            Source::Remote { opts, watcher } => {
                let mut guard = watcher.lock().map_err(|_| HeadError::Poisoned)?;
                if guard.is_none() {
                    *guard = Some(RemoteWatcher::open(&opts.url, &opts.branch, &opts.cache)?);
                }
                let w = guard.as_mut().ok_or(HeadError::NoWatcher)?;
                w.check()?;
                let id = w.last_seen().ok_or_else(|| HeadError::NoCommit {
                    url: opts.url.clone(),
                    branch: opts.branch.clone(),
                })?;
                Ok(w.commit(&id)?)
            }
        }
    }

    pub async fn head(&self) -> Result<CommitInfo, HeadError> {
        let me = self.clone();
        let task = tokio::task::spawn_blocking(move || me.head_blocking());
        match tokio::time::timeout(REMOTE_CHECK_TIMEOUT, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(HeadError::Task(Arc::new(e))),
            Err(_) => Err(HeadError::Timeout(REMOTE_CHECK_TIMEOUT.as_secs())),
        }
    }

    pub fn branch(&self) -> Option<String> {
        match self {
            Source::Local { branch, .. } => branch.clone(),
            Source::Remote { opts, .. } => Some(opts.branch.clone()),
        }
    }
}

/// A commit the history says was trained to its end: the newest such run on its branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub run: RunId,
    pub branch: String,
    pub commit: String,
    pub status: RunStatus,
}

impl Trained {
    /// The newest run per branch that ran to its end, from the history's rows.
    pub fn from_rows(rows: Vec<RunRow>) -> Vec<Trained> {
        rows.into_iter()
            .filter(|r| r.status.ran_to_end())
            .map(|r| Trained {
                run: r.id,
                branch: r.branch,
                commit: r.commit_id,
                status: r.status,
            })
            .collect()
    }
}

/// What the watcher starts from: with `once`, one run on the head whatever the history says;
/// otherwise a head that is the last trained commit of its branch is reported, not trained again.
#[derive(Debug, Clone)]
pub struct Watch {
    pub once: bool,
    pub interval: Duration,
    pub trained: Vec<Trained>,
}

/// Polls until the channel closes: a run for the head now, and for every new head after. With `once`,
/// only the first. `wake` cuts a wait short (webhooks).
pub async fn poll(source: Source, watch: Watch, wake: Arc<Notify>, tx: mpsc::UnboundedSender<Msg>) {
    let mut last: Option<String> = None;
    let mut last_error: Option<String> = None;
    loop {
        match source.head().await {
            Ok(commit) => {
                last_error = None;
                if last.as_deref() != Some(commit.id.as_str()) {
                    let first = last.is_none();
                    last = Some(commit.id.clone());
                    if !sighted(&watch, first, commit, &tx) {
                        return;
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                // Say a lasting problem once, not every poll.
                if last_error.as_deref() != Some(text.as_str()) {
                    let _ = tx.send(Msg::Notice {
                        tag: "pull".into(),
                        text: format!("cannot read the branch: {text}"),
                        level: Level::Error,
                    });
                    if watch.once {
                        let _ = tx.send(Msg::TriggerFailed { error: text });
                        return;
                    }
                    last_error = Some(text);
                }
            }
        }
        if watch.once || tx.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(watch.interval) => {}
            _ = wake.notified() => {}
        }
    }
}

/// A head the watcher has not seen before: a run for it, or (at start-up, when the history says it
/// was trained already) a notice saying so. False once the engine is gone.
fn sighted(
    watch: &Watch,
    first: bool,
    commit: CommitInfo,
    tx: &mpsc::UnboundedSender<Msg>,
) -> bool {
    if first && let Some(t) = already_trained(watch, &commit) {
        let text = format!(
            "commit {} was already trained in run {} ({}): not training it again until a new \
             commit (t in the dashboard, or run --once, trains it now)",
            commit.short(),
            t.run,
            t.status
        );
        return tx
            .send(Msg::Notice {
                tag: "pull".into(),
                text,
                level: Level::Info,
            })
            .is_ok();
    }
    let trigger = if first {
        Trigger::Start
    } else {
        Trigger::Commit
    };
    tx.send(Msg::RunRequested { commit, trigger }).is_ok()
}

/// The finished run of `commit` when it is the last trained commit of its branch. A working tree (no
/// git) can change without a new id, so it is never taken as trained; nor is anything with `once`.
fn already_trained<'a>(watch: &'a Watch, commit: &CommitInfo) -> Option<&'a Trained> {
    if watch.once || commit.is_working_tree() {
        return None;
    }
    watch
        .trained
        .iter()
        .find(|t| t.branch == commit.branch && t.commit == commit.id)
}

/// Serves the push webhook and wakes the poller for pushes to the watched branch.
pub async fn webhook(
    addr: std::net::SocketAddr,
    secret: crate::adapters::webhook::Secret,
    branch: Option<String>,
    wake: Arc<Notify>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let (wtx, mut wrx) = mpsc::unbounded_channel();
    match crate::adapters::webhook::serve(addr, secret, wtx).await {
        Ok((bound, _server)) => {
            let _ = tx.send(Msg::Notice {
                tag: "pull".into(),
                text: format!("listening for signed push webhooks on http://{bound}/webhook"),
                level: Level::Info,
            });
            while let Some(ev) = wrx.recv().await {
                if branch.as_deref().is_some_and(|b| b != ev.branch) {
                    continue;
                }
                let who = ev
                    .pusher
                    .as_deref()
                    .map(|p| format!(" by {p}"))
                    .unwrap_or_default();
                let _ = tx.send(Msg::Notice {
                    tag: "pull".into(),
                    text: format!(
                        "webhook: push to {}{who} ({}): fetching",
                        ev.branch,
                        &ev.after[..ev.after.len().min(8)]
                    ),
                    level: Level::Info,
                });
                wake.notify_one();
            }
        }
        Err(e) => {
            let _ = tx.send(Msg::Notice {
                tag: "pull".into(),
                text: format!("webhook not started: {e}; polling continues"),
                level: Level::Error,
            });
        }
    }
}
