//! The notifier worker: one task per channel, each behind its own bounded queue, so a slow or failing
//! channel delays only itself and never the engine.
//!
//! Invariants:
//! - [`NotifierHandle::send`] never blocks and never waits for I/O: it filters by subscription and
//!   pushes onto each channel's queue. A full queue drops its *oldest* waiting notification (the newest
//!   news matters most) and reports the drop.
//! - Every delivery ends in exactly one [`NotifyReport`], except repeats of an `unavailable` failure
//!   (no desktop service): that is reported once, then again only after a delivery has succeeded.
//! - Reports go to the engine's channel; the notifier never touches UI state.
//! - When the last handle is dropped or [`NotifierHandle::close`] is called, the workers deliver what
//!   is queued and stop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::sink::Sink;
use crate::core::config::notify::NotificationKind;
use crate::core::config::notify::NotifyConfig;
use crate::core::model::{Channel, Notification, NotifyReport};

/// Starts one worker task per enabled channel. Must be called inside a tokio runtime.
pub fn spawn(config: NotifyConfig, events_tx: UnboundedSender<NotifyReport>) -> NotifierHandle {
    let timeout = config.timeout.0;
    let retries = config.effective_retries();
    let capacity = config.effective_queue();
    let mut lanes = Vec::new();
    let mut workers = Vec::new();
    for sink in Sink::from_config(&config) {
        let channel = sink.channel();
        let events = match channel {
            Channel::Desktop => Some(config.desktop.events.clone()),
            Channel::Email => config.email.as_ref().map(|e| e.events.clone()),
            Channel::Webhook => config.webhook.as_ref().map(|w| w.events.clone()),
        }
        .unwrap_or_default();
        let queue = Arc::new(Queue::new(capacity));
        workers.push(tokio::spawn(run_lane(
            sink,
            Arc::clone(&queue),
            timeout,
            retries,
            events_tx.clone(),
        )));
        lanes.push(Lane {
            channel,
            events,
            queue,
        });
    }
    NotifierHandle {
        inner: Arc::new(Inner {
            lanes,
            tx: events_tx,
            workers: Mutex::new(workers),
        }),
    }
}

/// Cheap to clone; all clones feed the same workers.
#[derive(Clone)]
pub struct NotifierHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NotifierHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierHandle")
            .field("channels", &self.channels())
            .finish()
    }
}

struct Inner {
    lanes: Vec<Lane>,
    tx: UnboundedSender<NotifyReport>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct Lane {
    channel: Channel,
    events: Vec<NotificationKind>,
    queue: Arc<Queue>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.queue.close();
        }
    }
}

impl NotifierHandle {
    /// Queues `n` on every channel subscribed to its kind (test notifications go to all channels).
    pub fn send(&self, n: Notification) {
        for lane in &self.inner.lanes {
            if n.kind != NotificationKind::Test && !lane.events.contains(&n.kind) {
                continue;
            }
            match lane.queue.push(n.clone()) {
                Pushed::Queued => {}
                Pushed::DroppedOldest(old) => {
                    let _ = self.inner.tx.send(NotifyReport {
                        channel: lane.channel,
                        kind: old.kind,
                        result: Err(format!(
                            "dropped \"{}\": {} notifications were already waiting",
                            old.title, lane.queue.capacity
                        )),
                        unavailable: false,
                    });
                }
                Pushed::Closed => {
                    let _ = self.inner.tx.send(NotifyReport {
                        channel: lane.channel,
                        kind: n.kind,
                        result: Err("the notifier has been closed".into()),
                        unavailable: false,
                    });
                }
            }
        }
    }

    /// The enabled channels, in delivery order.
    pub fn channels(&self) -> Vec<Channel> {
        self.inner.lanes.iter().map(|l| l.channel).collect()
    }

    /// Stops taking notifications, delivers what is queued and waits for the workers. Bounded: each
    /// queued notification takes at most its channel's timeout × attempts plus back-off.
    pub async fn close(self) {
        for lane in &self.inner.lanes {
            lane.queue.close();
        }
        let workers = std::mem::take(&mut *lock(&self.inner.workers));
        for w in workers {
            let _ = w.await;
        }
    }
}

async fn run_lane(
    sink: Sink,
    queue: Arc<Queue>,
    timeout: Duration,
    retries: u32,
    tx: UnboundedSender<NotifyReport>,
) {
    let channel = sink.channel();
    let mut unavailable_reported = false;
    while let Some(n) = queue.pop().await {
        let result = sink.deliver(&n, timeout, retries).await;
        let (result, unavailable) = match result {
            Ok(()) => {
                unavailable_reported = false;
                (Ok(()), false)
            }
            Err(e) if e.unavailable && unavailable_reported => continue,
            Err(e) => {
                unavailable_reported |= e.unavailable;
                tracing::info!(%channel, kind = %n.kind, error = %e.message, "notification not sent");
                (Err(e.message), e.unavailable)
            }
        };
        if tx
            .send(NotifyReport {
                channel,
                kind: n.kind,
                result,
                unavailable,
            })
            .is_err()
        {
            // Nobody reads the reports any more: the engine is gone, so is the point of notifying.
            return;
        }
    }
}

enum Pushed {
    Queued,
    DroppedOldest(Notification),
    Closed,
}

/// A bounded FIFO with one consumer. `pop` waits for an item and returns `None` once the queue is
/// closed and drained.
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
    capacity: usize,
}

struct QueueState {
    items: VecDeque<Notification>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recovering from poison keeps notifications flowing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            ready: Notify::new(),
            capacity,
        }
    }

    fn push(&self, n: Notification) -> Pushed {
        let mut state = lock(&self.state);
        if state.closed {
            return Pushed::Closed;
        }
        let dropped = if state.items.len() >= self.capacity {
            state.items.pop_front()
        } else {
            None
        };
        state.items.push_back(n);
        drop(state);
        self.ready.notify_one();
        match dropped {
            Some(old) => Pushed::DroppedOldest(old),
            None => Pushed::Queued,
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_one();
    }

    async fn pop(&self) -> Option<Notification> {
        loop {
            {
                let mut state = lock(&self.state);
                if let Some(n) = state.items.pop_front() {
                    return Some(n);
                }
                if state.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the check above and
            // this await is not lost.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_drops_the_oldest_and_close_drains() {
        let q = Queue::new(2);
        let n = |t: &str| Notification::monitor_gave_up("p", None, t);
        assert!(matches!(q.push(n("1")), Pushed::Queued));
        assert!(matches!(q.push(n("2")), Pushed::Queued));
        match q.push(n("3")) {
            Pushed::DroppedOldest(old) => assert!(old.body.ends_with(": 1")),
            _ => panic!("expected a drop"),
        }
        q.close();
        assert!(matches!(q.push(n("4")), Pushed::Closed));
        assert!(q.pop().await.is_some_and(|x| x.body.ends_with(": 2")));
        assert!(q.pop().await.is_some_and(|x| x.body.ends_with(": 3")));
        assert!(q.pop().await.is_none());
    }

    #[tokio::test]
    async fn a_notifier_without_channels_accepts_and_closes() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut config = NotifyConfig::default();
        config.desktop.enabled = false;
        let handle = spawn(config, tx);
        assert!(handle.channels().is_empty());
        handle.send(Notification::test("p"));
        handle.close().await;
        assert!(rx.try_recv().is_err());
    }
}
