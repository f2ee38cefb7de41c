//! Preparation: the commit was exported and detected, the image is built; or a stage failed.

use std::path::PathBuf;

use crate::adapters::store::RunStatus;
use crate::core::config::Config;
use crate::core::ids::RunId;
use crate::engine::event::Level;
use crate::engine::msg::Effect;
use crate::engine::state::{PipelineState, Stage, StageStatus};

use super::fx::Fx;
use super::lookup::{is_current, run_mut};
use super::next::start_iteration;
use super::run::finish;
use super::text::{first_line, stage_tag};

/// The commit is exported and its model detected: the image is next. An operator's target overrides
/// the file's. `image` is what to ask the backend for; `image_reason` explains the choice.
pub(super) fn prepared(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    mut config: Config,
    workspace: PathBuf,
    (image, image_reason): (String, String),
) {
    let target_override = state.target_override;
    let Some(r) = run_mut(state, run) else {
        return;
    };
    if let Some(t) = target_override {
        config.metric.target = t;
    }
    r.config = Some(config);
    r.workspace = Some(workspace);
    r.image_reason = Some(image_reason.clone());
    fx.stage(state, Stage::Pull, StageStatus::Passed, "");
    fx.stage(state, Stage::Detect, StageStatus::Passed, &image);
    fx.event(state, Some(run), "detect", Level::Info, image_reason);
    fx.stage(state, Stage::Image, StageStatus::Running, &image);
    fx.push(Effect::PrepareImage { run, image });
}

/// A preparation stage failed: the stages before it passed, and the run ends.
pub(super) fn stage_failed(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    stage: Stage,
    error: String,
) {
    if !is_current(state, run) {
        return;
    }
    for s in Stage::ALL.iter().take_while(|s| **s != stage) {
        if state.stage(*s).status == StageStatus::Running {
            fx.stage(state, *s, StageStatus::Passed, "");
        }
    }
    fx.stage(state, stage, StageStatus::Failed, &first_line(&error));
    let tag = stage_tag(stage);
    fx.event(state, Some(run), tag, Level::Error, error.clone());
    finish(
        state,
        fx,
        RunStatus::Failed,
        format!("{} failed: {error}", stage.label()),
    );
}

/// A line of the image build, shown but not stored.
pub(super) fn image_progress(state: &mut PipelineState, fx: &mut Fx, run: RunId, line: String) {
    if is_current(state, run) {
        state.stage_mut(Stage::Image).detail = first_line(&line);
        fx.transient(state, "image", line);
    }
}

/// The image is there: the first iteration starts with the configuration's starting point.
pub(super) fn image_ready(state: &mut PipelineState, fx: &mut Fx, run: RunId, image: String) {
    let Some(r) = run_mut(state, run) else {
        return;
    };
    r.image = Some(image.clone());
    let Some(config) = r.config.clone() else {
        return;
    };
    fx.stage(state, Stage::Image, StageStatus::Passed, &image);
    let text = format!("{image} ready");
    fx.event(state, Some(run), "image", Level::Info, text);
    start_iteration(state, fx, config.starting_params(), None);
}
