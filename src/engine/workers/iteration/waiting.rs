//! A container asked for and not running yet: on a cluster, its task may wait for a node for as long
//! as none has room or meets its constraints. The scheduler's reason is said once, and again each
//! time it changes, so that a trial that does not start is never a silent one.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::engine::msg::{Level, Msg};

use super::Follow;

/// Between two questions to the backend about a container that has not started.
const ASK_EVERY: Duration = Duration::from_secs(2);

/// What was said of the container's wait.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    asked_at: Option<Instant>,
    said: Option<String>,
    /// The container ran (or printed): nothing more to say.
    over: bool,
}

impl Waiting {
    /// The container printed a line: it runs.
    pub(super) fn ran(&mut self) {
        self.over = true;
    }
}

/// Asks the backend, at most every [`ASK_EVERY`], why the container does not run yet, and says a
/// pending task's reason when it is new.
pub(super) async fn report<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    f: &mut Follow,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    let w = &mut f.waiting;
    if w.over || w.asked_at.is_some_and(|at| at.elapsed() < ASK_EVERY) {
        return;
    }
    w.asked_at = Some(Instant::now());
    let words = match backend.waiting(id).await {
        Ok(Some(words)) => words,
        Ok(None) => {
            w.over = true;
            return;
        }
        Err(_) => return,
    };
    if !words.starts_with("pending") || w.said.as_deref() == Some(words.as_str()) {
        return;
    }
    let _ = tx.send(Msg::Notice {
        tag: format!("train:{}", f.no),
        text: format!("iteration {} waits for a node: {words}", f.no),
        level: Level::Warn,
    });
    w.said = Some(words);
}
