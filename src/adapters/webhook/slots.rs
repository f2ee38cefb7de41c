//! The webhook's connection slots: at most `max` connections are served at once (each costs a file
//! descriptor the engine needs for its own files, containers and database), and a flood of
//! connections that send nothing, or nothing signed, cannot keep a signed push out.
//!
//! A new connection always gets a slot. When all are taken, one is closed to make room, chosen so
//! that a signed request in progress survives anything but a flood of other signed requests:
//! 1. among the connections not busy with a signed request (idle, still sending their headers, or
//!    answered): one from the peer address that holds the most slots, the oldest of them;
//! 2. only when every slot is busy with a signed request: the one busy the longest (a forged
//!    signature trickling its body).
//!
//! So a valid push is at worst closed after `max - 1` newer connections arrived while it was being
//! read, which on loopback is far longer than reading and verifying a push takes; and a flood from
//! one address closes its own connections before anyone else's.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// One connection being served.
pub(super) struct Conn {
    peer: IpAddr,
    /// A request carrying `X-Hub-Signature-256` is being read or answered.
    busy: AtomicBool,
    /// When it became busy (a counter shared with the ids: larger is later).
    busy_since: AtomicU64,
    /// Notified when the connection must close to make room.
    evicted: Notify,
}

impl Conn {
    /// A signed request started (`true`) or was answered (`false`).
    pub(super) fn set_busy(&self, busy: bool, slots: &Slots) {
        if busy {
            self.busy_since.store(slots.tick(), Ordering::Relaxed);
        }
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Resolves when the connection was chosen to make room.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

/// The live connections, by id (ids grow with time, so the smallest is the oldest).
pub(super) struct Slots {
    max: usize,
    live: Mutex<BTreeMap<u64, Arc<Conn>>>,
    clock: AtomicU64,
}

/// A slot held by one connection: released when dropped, however the connection ends.
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    pub(super) conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

impl Slots {
    pub(super) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max: max.max(1),
            live: Mutex::new(BTreeMap::new()),
            clock: AtomicU64::new(0),
        })
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `peer`, closing another one when all are taken (see the
    /// module's comment for which).
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Slot {
        let id = self.tick();
        let conn = Arc::new(Conn {
            peer,
            busy: AtomicBool::new(false),
            busy_since: AtomicU64::new(0),
            evicted: Notify::new(),
        });
        let mut live = self.lock();
        while live.len() >= self.max {
            let Some(victim) = victim(&live) else { break };
            if let Some(old) = live.remove(&victim) {
                tracing::debug!(peer = %old.peer, "webhook: connection closed to make room");
                old.evicted.notify_one();
            }
        }
        live.insert(id, Arc::clone(&conn));
        drop(live);
        Slot {
            slots: Arc::clone(self),
            id,
            conn,
        }
    }
}

/// The connection to close to make room: see the module's comment.
fn victim(live: &BTreeMap<u64, Arc<Conn>>) -> Option<u64> {
    let mut per_peer: HashMap<IpAddr, usize> = HashMap::new();
    for c in live.values().filter(|c| !c.busy.load(Ordering::Relaxed)) {
        *per_peer.entry(c.peer).or_default() += 1;
    }
    let idle = live
        .iter()
        .filter(|(_, c)| !c.busy.load(Ordering::Relaxed))
        .max_by_key(|(id, c)| (per_peer[&c.peer], std::cmp::Reverse(**id)))
        .map(|(id, _)| *id);
    idle.or_else(|| {
        live.iter()
            .min_by_key(|(_, c)| c.busy_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn ids(slots: &Slots) -> Vec<u64> {
        slots.lock().keys().copied().collect()
    }

    #[test]
    fn a_full_table_closes_the_oldest_idle_connection_of_the_busiest_peer() {
        let slots = Slots::new(3);
        let a = slots.admit(ip(1)); // id 0
        let b = slots.admit(ip(2)); // id 1
        let c = slots.admit(ip(2)); // id 2
        let d = slots.admit(ip(3)); // full: ip 2 holds two, its oldest (b) goes
        assert_eq!(ids(&slots), [a.id, c.id, d.id]);
        // A connection busy with a signed request is passed over, even when it is the oldest.
        a.conn.set_busy(true, &slots);
        let e = slots.admit(ip(1));
        assert_eq!(ids(&slots), [a.id, d.id, e.id], "c was the oldest idle");
        // All busy: the one busy the longest goes.
        d.conn.set_busy(true, &slots);
        e.conn.set_busy(true, &slots);
        let f = slots.admit(ip(4));
        assert_eq!(ids(&slots), [d.id, e.id, f.id]);
        drop(f);
        assert_eq!(ids(&slots), [d.id, e.id], "a dropped slot is released");
        drop((b, c));
    }
}
