//! Checkpoints home while a task runs. A node may die with its disk; what a trial resumes from must
//! have left the node before. The task's wrapper prints `/mlops/checkpoints` as an archive on its
//! stderr each time the directory changes (polled every second), one self-describing line at a
//! time: `@@mlops-tui-ckpt <attempt>.<seq> <base64>`, then `@@mlops-tui-ckpt <attempt>.<seq> end`.
//! Each line is one short write, so the script's own lines may fall between them but never inside
//! one. The follower of the service's log assembles them here, and keeps the newest complete
//! archive in memory for [`copy_out`](crate::adapters::backend::ContainerBackend::copy_out).
//!
//! Fencing: an archive counts only for the service it came from, and only when it carries that
//! service's attempt number; a newer sequence number replaces an older one, never the reverse. A
//! task of an earlier attempt that lives on, on a node that came back, is another service: nothing
//! it prints reaches the newer attempt's checkpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;

use crate::core::model::LogLine;

/// The directory copied home while the task runs.
pub(super) const CHECKPOINTS: &str = "/mlops/checkpoints";
/// The first word of every line of a running task's checkpoint archive.
pub(super) const CKPT: &str = "@@mlops-tui-ckpt";

/// The shell function of the task's wrapper that prints the checkpoints when they changed. `last`
/// and `n` are the wrapper's own variables (the fingerprint printed last, the sequence number).
pub(super) fn emitter() -> String {
    format!(
        r#"ckpt() {{
  [ -d /mlops/checkpoints ] || return 0
  s=$(find /mlops/checkpoints -printf '%p %s %T@\n' 2>/dev/null | sort | cksum)
  [ "$s" = "$last" ] && return 0
  last=$s; n=$((n+1)); k="${{MLOPS_ATTEMPT:-0}}.$n"
  tar -C / -cf - mlops/checkpoints 2>/dev/null | base64 -w 76 | while IFS= read -r l; do printf '%s %s %s\n' "{CKPT}" "$k" "$l" >&2; done
  printf '%s %s end\n' "{CKPT}" "$k" >&2
}}"#
    )
}

/// Whether `line` is part of a running task's checkpoint archive, not the script's.
pub(super) fn is_archive_line(line: &LogLine) -> bool {
    line.text.starts_with(CKPT)
}

/// The newest complete checkpoint archive of one service.
#[derive(Debug, Clone)]
pub(super) struct Captured {
    pub attempt: u32,
    pub seq: u64,
    pub tar: Arc<Vec<u8>>,
}

/// Archives captured from the followed services, and the attempt each service was started as.
#[derive(Debug, Clone, Default)]
pub(super) struct Captures {
    inner: Arc<Mutex<Store>>,
}

#[derive(Debug, Default)]
struct Store {
    newest: HashMap<String, Captured>,
    attempts: HashMap<String, u32>,
}

impl Captures {
    /// Service `id` runs attempt `attempt`: only its archives count for it.
    pub(super) fn started(&self, id: &str, attempt: u32) {
        if let Ok(mut s) = self.inner.lock() {
            s.attempts.insert(id.to_string(), attempt);
        }
    }

    /// The newest archive of service `id`.
    pub(super) fn newest(&self, id: &str) -> Option<Captured> {
        self.inner.lock().ok()?.newest.get(id).cloned()
    }

    /// Forgets service `id` (removed).
    pub(super) fn forget(&self, id: &str) {
        if let Ok(mut s) = self.inner.lock() {
            s.newest.remove(id);
            s.attempts.remove(id);
        }
    }

    /// Keeps `c` as service `id`'s newest archive unless it is fenced off: another attempt's, or
    /// not newer than the one kept. True when kept.
    fn offer(&self, id: &str, c: Captured) -> bool {
        let Ok(mut s) = self.inner.lock() else {
            return false;
        };
        if s.attempts.get(id).is_some_and(|a| *a != c.attempt) {
            return false;
        }
        if s.newest.get(id).is_some_and(|old| old.seq >= c.seq) {
            return false;
        }
        s.newest.insert(id.to_string(), c);
        true
    }
}

/// Puts the archive lines of one service's log back together.
pub(super) struct Assembler {
    id: String,
    store: Captures,
    /// The archive being read: its attempt and sequence number, and its text so far.
    current: Option<(u32, u64)>,
    text: String,
}

impl Assembler {
    pub(super) fn new(id: &str, store: Captures) -> Assembler {
        Assembler {
            id: id.to_string(),
            store,
            current: None,
            text: String::new(),
        }
    }

    /// Takes `line` when it is part of a checkpoint archive (true: it is not the script's).
    pub(super) fn take(&mut self, line: &LogLine) -> bool {
        if !is_archive_line(line) {
            return false;
        }
        let rest = &line.text[CKPT.len()..];
        let mut parts = rest.trim_start().splitn(2, ' ');
        let (Some(key), Some(payload)) = (parts.next(), parts.next()) else {
            return true;
        };
        let Some(key) = parse_key(key) else {
            return true;
        };
        if self.current != Some(key) {
            self.current = Some(key);
            self.text.clear();
        }
        let payload = payload.trim();
        if payload != "end" {
            self.text.push_str(payload);
            return true;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(self.text.as_bytes());
        self.text.clear();
        self.current = None;
        match decoded {
            Ok(tar) => {
                let (attempt, seq) = key;
                let c = Captured {
                    attempt,
                    seq,
                    tar: Arc::new(tar),
                };
                if !self.store.offer(&self.id, c) {
                    tracing::warn!(
                        "service {}: checkpoint archive {attempt}.{seq} fenced off",
                        self.id
                    );
                }
            }
            Err(e) => tracing::warn!("service {}: damaged checkpoint archive: {e}", self.id),
        }
        true
    }
}

/// `<attempt>.<seq>`.
fn parse_key(key: &str) -> Option<(u32, u64)> {
    let (a, s) = key.split_once('.')?;
    Some((a.parse().ok()?, s.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn err(text: &str) -> LogLine {
        LogLine {
            stderr: true,
            text: text.into(),
        }
    }

    fn printed(key: &str, body: &[u8]) -> Vec<LogLine> {
        let text = base64::engine::general_purpose::STANDARD.encode(body);
        let mut lines: Vec<LogLine> = text
            .as_bytes()
            .chunks(76)
            .map(|c| err(&format!("{CKPT} {key} {}", std::str::from_utf8(c).unwrap())))
            .collect();
        lines.push(err(&format!("{CKPT} {key} end")));
        lines
    }

    #[test]
    fn archives_assemble_around_the_scripts_own_lines_and_only_newer_ones_replace() {
        let store = Captures::default();
        store.started("svc", 2);
        let mut a = Assembler::new("svc", store.clone());
        let mut lines = printed("2.1", &[7u8; 200]);
        // The script prints between two lines of the archive: it stays the script's.
        lines.insert(2, err("Traceback? no, a warning"));
        let taken: Vec<bool> = lines.iter().map(|l| a.take(l)).collect();
        assert_eq!(taken.iter().filter(|t| !**t).count(), 1);
        assert_eq!(*store.newest("svc").unwrap().tar, vec![7u8; 200]);
        for l in printed("2.3", b"three") {
            a.take(&l);
        }
        for l in printed("2.2", b"two, late") {
            a.take(&l);
        }
        let newest = store.newest("svc").unwrap();
        assert_eq!((newest.seq, newest.tar.as_slice()), (3, &b"three"[..]));
    }

    #[test]
    fn another_attempts_archive_is_fenced_off_and_a_torn_one_is_dropped() {
        let store = Captures::default();
        store.started("svc", 2);
        let mut a = Assembler::new("svc", store.clone());
        for l in printed("1.9", b"old attempt") {
            assert!(a.take(&l));
        }
        assert!(store.newest("svc").is_none());
        let mut torn = printed("2.1", &[1u8; 300]);
        torn.remove(1);
        torn.insert(1, err(&format!("{CKPT} 2.1 !!!not base64!!!")));
        for l in torn {
            a.take(&l);
        }
        assert!(store.newest("svc").is_none());
        assert!(!a.take(&err("epoch 3/5 accuracy=0.9")));
    }
}
