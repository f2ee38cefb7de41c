//! The logs pane's state changes: scrolling (which pauses and resumes following), search matches,
//! switching iterations, saving.

use crate::core::ids::{IterationNo, RunId};

use super::super::layout::log_rows;
use super::super::logbuf::{LogBuffer, match_ranges};
use super::super::msg::{Effect, SavedLines};
use super::super::state::{SavedOutput, UiState};
use super::super::trials;
use super::shared::{error, note};

/// Moves the logs view by `delta` lines. Moving up stops following; reaching the end follows again.
pub(super) fn scroll_logs(s: &mut UiState, delta: i64) {
    let Some(src) = s.log_source() else { return };
    let Some(buf) = s.logs.buffers.get(&src) else {
        return;
    };
    let Some(last) = buf.last_seq() else { return };
    let first = buf.first_seq();
    let cur = if s.logs.follow {
        last
    } else {
        buf.clamp(s.logs.bottom)
    };
    // The bottom line never goes above the first screenful, so the view stays full.
    let floor = (first + log_rows(s) as u64 - 1).min(last);
    let new = (cur as i64)
        .saturating_add(delta)
        .clamp(floor as i64, last as i64) as u64;
    s.logs.bottom = new;
    s.logs.follow = new == last && delta > 0;
    if delta < 0 {
        s.logs.follow = false;
    }
}

/// Moves to the next (`Some(true)`), previous (`Some(false)`) or nearest (`None`) search match and
/// scrolls it into view.
pub(super) fn jump_to_match(s: &mut UiState, forward: Option<bool>) {
    let (Some(q), Some(src)) = (s.logs.search.clone(), s.log_source()) else {
        return;
    };
    let Some(buf) = s.logs.buffers.get(&src) else {
        note(s, "no logs to search yet");
        return;
    };
    let Some(last) = buf.last_seq() else {
        note(s, "no logs to search yet");
        return;
    };
    let bottom = if s.logs.follow {
        last
    } else {
        buf.clamp(s.logs.bottom)
    };
    let found = match forward {
        None => {
            let here = buf
                .get(bottom)
                .is_some_and(|e| !match_ranges(&e.text, &q).is_empty());
            if here {
                Some(bottom)
            } else {
                buf.find(&q, bottom, false)
            }
        }
        Some(fwd) => buf.find(&q, s.logs.current_match.unwrap_or(bottom), fwd),
    };
    let rows = log_rows(s) as u64;
    match found {
        None => {
            s.logs.current_match = None;
            error(s, format!("no match for \"{q}\""));
        }
        Some(m) => {
            s.logs.current_match = Some(m);
            s.logs.follow = false;
            let top = bottom.saturating_sub(rows.saturating_sub(1));
            if m < top || m > bottom {
                s.logs.bottom = (m + rows / 2).min(last);
            } else {
                s.logs.bottom = bottom;
            }
        }
    }
}

pub(super) fn step_iteration(s: &mut UiState, next: bool) {
    let Some(cur) = s.log_source() else {
        note(s, "no iteration yet");
        return;
    };
    let mut all: Vec<_> = s.logs.buffers.keys().copied().collect();
    if let Some(r) = &s.pipeline.run {
        all.extend(r.iterations.iter().map(|i| (r.id, i.no)));
    }
    all.sort();
    all.dedup();
    let i = all.iter().position(|k| *k == cur).unwrap_or(0);
    let j = if next {
        (i + 1).min(all.len() - 1)
    } else {
        i.saturating_sub(1)
    };
    show(s, all[j]);
}

/// Shows the next (`forward`) or previous running iteration's logs, wrapping around; from an
/// iteration that does not run, the first (or last) running one.
pub(super) fn cycle_trial(s: &mut UiState, forward: bool) {
    let (Some(r), Some(cur)) = (s.pipeline.run.as_ref(), s.log_source()) else {
        note(s, "no iteration runs");
        return;
    };
    let run = r.id;
    let nos = trials::running_nos(&s.pipeline);
    if nos.is_empty() {
        note(s, "no iteration runs");
        return;
    }
    let n = nos.len();
    let j = match nos.iter().position(|no| (run, *no) == cur) {
        Some(i) if forward => (i + 1) % n,
        Some(i) => (i + n - 1) % n,
        None if forward => 0,
        None => n - 1,
    };
    show(s, (run, nos[j]));
}

/// Points the pane at `target`, following its newest line; the newest iteration is followed
/// unpinned, so that the pane moves on when a newer one starts.
fn show(s: &mut UiState, target: (RunId, IterationNo)) {
    let newest = s
        .pipeline
        .run
        .as_ref()
        .and_then(|r| trials::newest(&s.pipeline).map(|no| (r.id, no)));
    s.logs.pinned = if Some(target) == newest {
        None
    } else {
        Some(target)
    };
    s.logs.follow = true;
    s.logs.current_match = None;
    s.logs.hscroll = 0;
}

pub(super) fn save_logs(s: &mut UiState, path: Option<std::path::PathBuf>) -> Vec<Effect> {
    let Some((run, no)) = s.log_source() else {
        note(s, "no logs to save yet");
        return Vec::new();
    };
    let Some(buf) = s.logs.buffers.get(&(run, no)) else {
        note(s, "no logs to save yet");
        return Vec::new();
    };
    let path = path.unwrap_or_else(|| {
        s.save_dir
            .join(format!("run-{run}-iteration-{no}-{}.log", s.now_ms))
    });
    vec![Effect::SaveLogs {
        path,
        text: buf.to_text(s.logs.timestamps),
    }]
}

/// Asks for the saved output of the iteration the pane shows when it is over and nothing of it is
/// in memory (a restart, or a run whose scrollback was dropped). Asked once per iteration.
pub(super) fn want_saved_output(s: &mut UiState) -> Option<Effect> {
    let key = s.log_source()?;
    let in_memory = s.logs.buffers.get(&key).is_some_and(|b| !b.is_empty());
    if in_memory || s.logs.saved.contains_key(&key) || !finished(s, key) {
        return None;
    }
    s.logs.saved.insert(key, SavedOutput::Reading);
    Some(Effect::LoadOutput(key.0, key.1))
}

/// Whether no container will print more for this iteration: it ended, or belongs to an older run.
fn finished(s: &UiState, (run, no): (RunId, IterationNo)) -> bool {
    match s.pipeline.run.as_ref() {
        Some(r) if r.id == run => r.iteration(no).is_some_and(|i| i.status.is_final()),
        _ => true,
    }
}

/// The saved output arrived: it fills the pane unless live lines got there first.
pub(super) fn on_saved_output(
    s: &mut UiState,
    key: (RunId, IterationNo),
    saved: Result<SavedLines, String>,
) {
    match saved {
        Ok(saved) => {
            s.logs.saved.insert(key, SavedOutput::Read);
            let cap = s.logs.cap;
            let buf = s
                .logs
                .buffers
                .entry(key)
                .or_insert_with(|| LogBuffer::new(cap));
            if buf.is_empty() {
                for line in &saved.lines {
                    buf.push(saved.at_ms, false, line);
                }
            }
        }
        Err(e) => {
            s.logs.saved.insert(key, SavedOutput::Failed(e));
        }
    }
}
