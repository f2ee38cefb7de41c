//! Preparation: the commit was exported and detected, the image is built; or a stage failed.

use std::path::PathBuf;

use crate::core::build_progress::Change;
use crate::core::config::Config;
use crate::core::ids::RunId;
use crate::core::knobs::Knobs;
use crate::core::model::{ImageSpec, RunStatus};
use crate::engine::event::Level;
use crate::engine::msg::Effect;
use crate::engine::state::{PipelineState, Stage, StageStatus};

use super::fx::Fx;
use super::lookup::{is_current, run_mut};
use super::next::{fill, start_iteration};
use super::run::finish;
use super::text::first_line;

/// What preparing a run's commit found.
pub(super) struct Preparation {
    pub config: Config,
    pub knobs: Knobs,
    /// The commit's export.
    pub workspace: PathBuf,
    /// What to ask the backend for.
    pub image: ImageSpec,
    /// Why that image, for people.
    pub image_reason: String,
}

/// The commit is exported and its model detected: the image is next. An operator's target overrides
/// the file's.
pub(super) fn prepared(state: &mut PipelineState, fx: &mut Fx, run: RunId, found: Preparation) {
    let Preparation {
        mut config,
        knobs,
        workspace,
        image,
        image_reason,
    } = found;
    let target_override = state.target_override;
    let Some(r) = run_mut(state, run) else {
        return;
    };
    if let Some(t) = target_override {
        config.metric.target = t;
    }
    let (parallel, resources) = (config.budget.parallel, config.resources.clone());
    r.config = Some(config);
    r.knobs = knobs;
    r.workspace = Some(workspace);
    r.image_reason = Some(image_reason.clone());
    super::capacity::cap_slots(state, fx, run, parallel, &resources);
    fx.stage(state, Stage::Pull, StageStatus::Passed, "");
    let label = image.label();
    fx.stage(state, Stage::Detect, StageStatus::Passed, &label);
    fx.event(state, Some(run), "detect", Level::Info, image_reason);
    fx.stage(state, Stage::Image, StageStatus::Running, &label);
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
    let tag = stage.tag();
    fx.event(state, Some(run), tag, Level::Error, error.clone());
    finish(
        state,
        fx,
        RunStatus::Failed,
        format!("{} failed: {error}", stage.label()),
    );
}

/// Output of the image build (one line, or several when the builder sent them in one chunk), shown
/// but not stored. The stage's detail shows how far the build has got (step k of n, apt's packages,
/// the estimate); the event log gets one line per step, and the lines before the first step (what is
/// being built and how), not every line of the build.
pub(super) fn image_progress(state: &mut PipelineState, fx: &mut Fx, run: RunId, text: String) {
    if !is_current(state, run) {
        return;
    }
    let elapsed = build_elapsed_ms(state, fx.now);
    let Some(r) = run_mut(state, run) else {
        return;
    };
    let mut announce = Vec::new();
    let mut plain = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let started = r.build.step.is_some() || !r.build.phase.is_empty();
        match r.build.observe(line) {
            Change::Step => announce.push(r.build.step_line()),
            Change::None if !started => {
                announce.push(line.to_string());
                plain = Some(first_line(line));
            }
            _ => {}
        }
    }
    let detail = r.build.detail(elapsed);
    state.stage_mut(Stage::Image).detail = match plain {
        Some(line) if detail.is_empty() => line,
        _ if detail.is_empty() => state.stage(Stage::Image).detail.clone(),
        _ => detail,
    };
    for line in announce {
        fx.transient(state, "image", line);
    }
}

/// How long the image stage has been running.
fn build_elapsed_ms(state: &PipelineState, now: i64) -> u64 {
    let started = state.stage(Stage::Image).started_ms.unwrap_or(now);
    u64::try_from(now - started).unwrap_or(0)
}

/// The image is being built and its previous build took `last_build_ms`: the detail estimates.
pub(super) fn image_estimate(state: &mut PipelineState, run: RunId, last_build_ms: u64) {
    if !is_current(state, run) {
        return;
    }
    if let Some(r) = run_mut(state, run) {
        r.build.last_build_ms = Some(last_build_ms);
    }
}

/// The image is there: the first iteration starts with the configuration's starting point, or warm
/// from the best point of an earlier run of the branch.
pub(super) fn image_ready(state: &mut PipelineState, fx: &mut Fx, run: RunId, image: String) {
    let Some(r) = run_mut(state, run) else {
        return;
    };
    r.image = Some(image.clone());
    let Some(config) = r.config.clone() else {
        return;
    };
    let start = config.starting_params_with(&r.knobs.current());
    let (params, reason) = super::warm::first_point(r, &config, start);
    fx.stage(state, Stage::Image, StageStatus::Passed, &image);
    let text = format!("{image} ready");
    fx.event(state, Some(run), "image", Level::Info, text);
    if let Some(why) = &reason {
        fx.event(state, Some(run), "tweak", Level::Info, why.clone());
    }
    start_iteration(state, fx, params, reason);
    fill(state, fx);
}
