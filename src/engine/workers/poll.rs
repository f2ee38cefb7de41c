//! Job 1: notice new commits. A poller asks the branch's head on an interval (the project's own
//! repository, or a remote fetched into a bare mirror); a signed push webhook only makes it look at
//! once. Polling stays on as the fallback, so a lost webhook delays a run, never loses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::adapters::git::RemoteWatcher;
use crate::adapters::git::{CommitInfo, Project};

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
    fn head_blocking(&self) -> Result<CommitInfo, String> {
        match self {
            Source::Local { project, branch } => {
                project.head(branch.as_deref()).map_err(|e| e.to_string())
            }
            Source::Remote { opts, watcher } => {
                let mut guard = watcher
                    .lock()
                    .map_err(|_| "remote watcher poisoned".to_string())?;
                if guard.is_none() {
                    *guard = Some(
                        RemoteWatcher::open(&opts.url, &opts.branch, &opts.cache)
                            .map_err(|e| e.to_string())?,
                    );
                }
                let w = guard.as_mut().ok_or("remote watcher missing")?;
                w.check().map_err(|e| e.to_string())?;
                let id = w.last_seen().ok_or_else(|| {
                    format!("{}: branch {} has no commit yet", opts.url, opts.branch)
                })?;
                w.commit(&id).map_err(|e| e.to_string())
            }
        }
    }

    pub async fn head(&self) -> Result<CommitInfo, String> {
        let me = self.clone();
        let task = tokio::task::spawn_blocking(move || me.head_blocking());
        match tokio::time::timeout(REMOTE_CHECK_TIMEOUT, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("head lookup failed: {e}")),
            Err(_) => Err(format!(
                "no answer within {}s",
                REMOTE_CHECK_TIMEOUT.as_secs()
            )),
        }
    }

    pub fn branch(&self) -> Option<String> {
        match self {
            Source::Local { branch, .. } => branch.clone(),
            Source::Remote { opts, .. } => Some(opts.branch.clone()),
        }
    }
}

/// Polls until the channel closes: a run for the head now, and for every new head after. With `once`,
/// only the first. `wake` cuts a wait short (webhooks).
pub async fn poll(
    source: Source,
    once: bool,
    interval: Duration,
    wake: Arc<Notify>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut last: Option<String> = None;
    let mut last_error: Option<String> = None;
    loop {
        match source.head().await {
            Ok(commit) => {
                last_error = None;
                if last.as_deref() != Some(commit.id.as_str()) {
                    let trigger = if last.is_none() {
                        Trigger::Start
                    } else {
                        Trigger::Commit
                    };
                    last = Some(commit.id.clone());
                    if tx.send(Msg::RunRequested { commit, trigger }).is_err() {
                        return;
                    }
                }
            }
            Err(text) => {
                // Say a lasting problem once, not every poll.
                if last_error.as_deref() != Some(text.as_str()) {
                    let _ = tx.send(Msg::Notice {
                        tag: "pull".into(),
                        text: format!("cannot read the branch: {text}"),
                        level: Level::Error,
                    });
                    if once {
                        let _ = tx.send(Msg::TriggerFailed { error: text });
                        return;
                    }
                    last_error = Some(text);
                }
            }
        }
        if once || tx.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
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
