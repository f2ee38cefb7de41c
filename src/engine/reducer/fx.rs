//! The reducer's output while it handles one message: effects, plus the helpers that keep the state's
//! stages and event log consistent with the events they emit.

use crate::core::ids::{IterationNo, RunId};
use crate::engine::event::{EventLine, Level};
use crate::engine::msg::Effect;
use crate::engine::state::{EVENT_CAP, PipelineState, Stage, StageStatus};

/// Effects of one message, in the order the runtime must carry them out, and the message's time.
pub(super) struct Fx {
    pub(super) out: Vec<Effect>,
    pub(super) now: i64,
}

impl Fx {
    pub(super) fn new(now: i64) -> Self {
        Fx {
            out: Vec::new(),
            now,
        }
    }

    pub(super) fn push(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    /// An event about the run (or the engine, when `run` is `None`) kept in the state's log, shown,
    /// printed and stored.
    pub(super) fn event(
        &mut self,
        state: &mut PipelineState,
        run: Option<RunId>,
        tag: &str,
        level: Level,
        text: String,
    ) {
        let line = self.line(tag, level, text);
        self.record(state, run, None, line);
    }

    /// An event about iteration `no` of `run`, tagged `{topic}:{no}` (`train:2`, `monitor:2`).
    pub(super) fn iteration_event(
        &mut self,
        state: &mut PipelineState,
        (run, no): (RunId, IterationNo),
        topic: &str,
        level: Level,
        text: String,
    ) {
        let line = self.line(&format!("{topic}:{no}"), level, text);
        self.record(state, Some(run), Some(no), line);
    }

    /// Keeps `line` in the state's log and asks for it to be shown, printed and stored.
    fn record(
        &mut self,
        state: &mut PipelineState,
        run: Option<RunId>,
        no: Option<IterationNo>,
        line: EventLine,
    ) {
        push_event(state, line.clone());
        self.out.push(Effect::Event {
            run,
            no,
            line,
            persist: true,
        });
    }

    /// An event shown and printed but not stored (image build chatter, mode toggles).
    pub(super) fn transient(&mut self, state: &mut PipelineState, tag: &str, text: String) {
        let line = self.line(tag, Level::Info, text);
        push_event(state, line.clone());
        let run = state.run.as_ref().map(|r| r.id);
        self.out.push(Effect::Event {
            run,
            no: None,
            line,
            persist: false,
        });
    }

    /// Moves `stage` to `status`, stamping its start and end times. An empty `detail` keeps the old
    /// one, except when the stage starts running.
    pub(super) fn stage(
        &mut self,
        state: &mut PipelineState,
        stage: Stage,
        status: StageStatus,
        detail: &str,
    ) {
        let now = self.now;
        let s = state.stage_mut(stage);
        if status == StageStatus::Running && s.status != StageStatus::Running {
            s.started_ms = Some(now);
            s.finished_ms = None;
        }
        if matches!(
            status,
            StageStatus::Passed | StageStatus::Failed | StageStatus::Skipped
        ) {
            s.finished_ms = Some(now);
        }
        s.status = status;
        if !detail.is_empty() || status == StageStatus::Running {
            s.detail = detail.to_string();
        }
    }

    /// The Train stage shows iteration `no` running.
    pub(super) fn training(&mut self, state: &mut PipelineState, no: IterationNo) {
        self.stage(
            state,
            Stage::Train,
            StageStatus::Running,
            &format!("iteration {no}"),
        );
    }

    fn line(&self, tag: &str, level: Level, text: String) -> EventLine {
        EventLine {
            at_ms: self.now,
            tag: tag.to_string(),
            text,
            level,
        }
    }
}

/// Appends to the state's event log, dropping the oldest line beyond [`EVENT_CAP`].
fn push_event(state: &mut PipelineState, line: EventLine) {
    if state.events.len() == EVENT_CAP {
        state.events.pop_front();
    }
    state.events.push_back(line);
}
