//! The UI reducer: `update(&mut UiState, UiMsg) -> Vec<Effect>`.
//!
//! The only code that changes [`UiState`]. No I/O, no clock, no async: workers' results and the time
//! arrive as messages, and everything the dashboard wants done outside (tell the engine, read the
//! store, write a file) leaves as an [`Effect`]. Key handling lives in [`keys`].

mod actions;
mod keys;
mod logs;
mod shared;

use std::collections::BTreeSet;

use crate::core::ids::RunId;
use crate::engine::PipelineState;

use super::logbuf::LogBuffer;
use super::msg::{Effect, UiMsg};
use super::state::{EngineStatus, Mode, Notice, RunDetail, RunSummary, UiState};

/// Runs whose logs stay in memory: the current one and the one before.
const RUNS_KEPT: usize = 2;

/// How long a notice stays in the status bar (it goes at the first frame after that).
pub const NOTICE_MS: i64 = 8_000;

pub fn update(s: &mut UiState, msg: UiMsg) -> Vec<Effect> {
    let before = s.notice.clone();
    let mut fx = apply(s, msg);
    fx.extend(logs::want_saved_output(s));
    if s.notice.is_some() && s.notice != before {
        s.notice_at = s.now_ms;
    }
    fx
}

fn apply(s: &mut UiState, msg: UiMsg) -> Vec<Effect> {
    match msg {
        UiMsg::Key(k) => keys::on_key(s, k),
        UiMsg::Resize(w, h) => {
            s.size = (w, h);
            Vec::new()
        }
        UiMsg::Tick(now) => {
            on_tick(s, now);
            Vec::new()
        }
        UiMsg::Pipeline(p) => on_pipeline(s, *p),
        UiMsg::Logs {
            run,
            no,
            lines,
            at_ms,
        } => {
            let cap = s.logs.cap;
            let buf = s
                .logs
                .buffers
                .entry((run, no))
                .or_insert_with(|| LogBuffer::new(cap));
            for l in &lines {
                buf.push(at_ms, l.stderr, &l.text);
            }
            prune_buffers(s);
            Vec::new()
        }
        UiMsg::Docker(d) => {
            s.docker = d;
            Vec::new()
        }
        UiMsg::Engine(e) => on_engine(s, e),
        UiMsg::History(h) => {
            on_history(s, h);
            Vec::new()
        }
        UiMsg::Detail(d) => {
            on_detail(s, d);
            Vec::new()
        }
        UiMsg::Theme(Ok(t)) => {
            notice(s, format!("theme {}", t.name), false);
            s.theme = t;
            Vec::new()
        }
        UiMsg::Theme(Err(e)) | UiMsg::Saved(Err(e)) => {
            notice(s, e, true);
            Vec::new()
        }
        UiMsg::Saved(Ok(path)) => {
            notice(s, format!("logs saved to {}", path.display()), false);
            Vec::new()
        }
        UiMsg::TaskFailed { task, error } => {
            s.errors.push(format!("{task} failed: {error}"));
            Vec::new()
        }
        UiMsg::SavedOutput { run, no, saved } => {
            logs::on_saved_output(s, (run, no), saved);
            prune_buffers(s);
            Vec::new()
        }
        UiMsg::Signal(sig) => {
            // No question, even with a container training: nobody may be there to answer. The
            // containers go on and the next start re-attaches them.
            s.mode = Mode::Normal;
            s.exit_code = sig.exit_code();
            shared::quit_now(s)
        }
    }
}

fn notice(s: &mut UiState, text: String, error: bool) {
    s.notice = Some(Notice { text, error });
}

/// The clock moved: a notice older than [`NOTICE_MS`] goes.
fn on_tick(s: &mut UiState, now: i64) {
    s.now_ms = now;
    if s.notice.is_some() && now - s.notice_at > NOTICE_MS {
        s.notice = None;
    }
}

/// The engine started or stopped; once it runs, the history is worth loading.
fn on_engine(s: &mut UiState, e: EngineStatus) -> Vec<Effect> {
    if let EngineStatus::Stopped { reason } = &e {
        s.errors.push(format!("the engine stopped: {reason}"));
    }
    let started = e == EngineStatus::Running && s.engine != EngineStatus::Running;
    s.engine = e;
    if started {
        vec![Effect::LoadHistory]
    } else {
        Vec::new()
    }
}

/// The run list arrived (the selection stays within it) or could not be read.
fn on_history(s: &mut UiState, h: Result<Vec<RunSummary>, String>) {
    match h {
        Ok(runs) => {
            s.history.loaded = true;
            s.history.error = None;
            s.history.runs = runs;
            s.history.selected = s
                .history
                .selected
                .min(s.history.runs.len().saturating_sub(1));
        }
        Err(e) => s.history.error = Some(e),
    }
}

/// A run's detail arrived; it opens only if it is still the one asked for.
fn on_detail(s: &mut UiState, d: Result<RunDetail, String>) {
    match d {
        Ok(d) => {
            if s.history.loading == Some(d.run.id) {
                s.history.loading = None;
                s.history.detail = Some(d);
                if s.mode == Mode::Normal {
                    s.mode = Mode::Detail;
                }
            }
        }
        Err(e) => {
            s.history.loading = None;
            notice(s, e, true);
        }
    }
}

/// Takes the engine's newest state and asks for a history refresh when runs or iterations changed.
fn on_pipeline(s: &mut UiState, p: PipelineState) -> Vec<Effect> {
    let old_run = s.pipeline.run.as_ref();
    let new_run = p.run.as_ref();
    let same_run = old_run.map(|r| r.id) == new_run.map(|r| r.id);
    let history_stale = !same_run
        || old_run.map(|r| (r.status, r.iterations.len(), r.best))
            != new_run.map(|r| (r.status, r.iterations.len(), r.best))
        || p.finished_runs != s.history.seen_finished
        || !s.history.loaded;
    if !same_run {
        s.dismissed_failures = 0;
    }
    let had_pending = old_run.is_some_and(|r| r.pending.is_some());
    if let (false, Some(pending)) = (had_pending, new_run.and_then(|r| r.pending.as_ref())) {
        // Select the first changed value, the one the operator most likely wants to edit.
        let first_changed = pending
            .changes
            .first()
            .and_then(|c| pending.params.keys().position(|k| *k == c.name));
        s.tweak_sel = first_changed.unwrap_or(0);
    }
    s.history.seen_finished = p.finished_runs;
    s.pipeline = p;
    prune_buffers(s);
    if history_stale {
        vec![Effect::LoadHistory]
    } else {
        Vec::new()
    }
}

/// Drops the scrollback of runs older than the last [`RUNS_KEPT`] (and never the pinned one).
fn prune_buffers(s: &mut UiState) {
    let runs: BTreeSet<RunId> = s.logs.buffers.keys().map(|(r, _)| *r).collect();
    if runs.len() <= RUNS_KEPT {
        return;
    }
    let keep: BTreeSet<RunId> = runs.iter().rev().take(RUNS_KEPT).copied().collect();
    let pinned = s.logs.pinned.map(|(r, _)| r);
    s.logs
        .buffers
        .retain(|(r, _), _| keep.contains(r) || Some(*r) == pinned);
    // The output of a run whose scrollback was dropped may be read again.
    s.logs
        .saved
        .retain(|(r, _), _| !runs.contains(r) || keep.contains(r) || Some(*r) == pinned);
}

#[cfg(test)]
mod tests;
