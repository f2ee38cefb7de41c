//! The one place pipeline state changes: `update(&mut state, msg, now) -> effects`.
//!
//! Pure: no I/O, no clocks (the caller passes `now_ms`), no async. Every decision of the loop (what an
//! exit means, whether the target is met, what to try next, when to stop) is made here, so it can be
//! tested by feeding messages.
//!
//! `update` only dispatches; each message has one handler, grouped by where the message comes from:
//! [`run`] (triggers and the run's life), [`prepare`], [`iteration`] (containers, judged by the pure
//! rules of [`verdict`]), [`monitor`] (Docker and the notifier), [`operator`], [`adopt`]. What the loop
//! does after an iteration is [`next`]; [`fx`] collects effects and events. A handler that needs
//! another message's work calls that handler directly.

mod adopt;
mod capacity;
mod engines;
mod fx;
mod gpu;
mod identical;
mod iteration;
mod keep;
mod lookup;
mod monitor;
mod next;
mod nodes;
mod operator;
mod prepare;
mod run;
mod text;
mod track;
mod verdict;
mod warm;

use crate::engine::msg::{Effect, Level, Msg};
use crate::engine::state::PipelineState;

pub use text::config;

/// Applies `msg` to `state` at `now` (ms) and returns the work to do, in order.
pub fn update(state: &mut PipelineState, msg: Msg, now: i64) -> Vec<Effect> {
    let mut effects = fx::Fx::new(now);
    let fx = &mut effects;
    match msg {
        Msg::RunRequested { commit, trigger } => run::request_run(state, fx, commit, trigger),
        Msg::HeadRead(head) => run::head_read(state, fx, head),
        Msg::TriggerFailed { error } => run::trigger_failed(fx, error),
        Msg::Notice { tag, text, level } => run::notice(state, fx, &tag, text, level),
        Msg::RunCreated { run, commit } => run::run_created(state, fx, run, commit),
        Msg::Prepared {
            run,
            config,
            workspace,
            image_reason,
            image,
            knobs,
            warnings,
        } => {
            let found = prepare::Preparation {
                config: *config,
                knobs: *knobs,
                workspace,
                image,
                image_reason,
            };
            prepare::prepared(state, fx, run, found);
            for w in warnings {
                fx.event(state, Some(run), "knobs", Level::Warn, w);
            }
        }
        Msg::StageFailed { run, stage, error } => {
            prepare::stage_failed(state, fx, run, stage, error)
        }
        Msg::ImageProgress { run, line } => prepare::image_progress(state, fx, run, line),
        Msg::ImageEstimate { run, last_build_ms } => {
            prepare::image_estimate(state, run, last_build_ms)
        }
        Msg::ImageReady { run, image } => prepare::image_ready(state, fx, run, image),
        Msg::ContainerStarted {
            run,
            no,
            id,
            workdir,
        } => iteration::container_started(state, fx, (run, no), id, workdir),
        Msg::Logs { run, no, lines } => iteration::logs(state, (run, no), lines),
        Msg::Metric { run, no, obs } => iteration::metric(state, fx, (run, no), obs),
        Msg::Revived { run, no, id } => iteration::revived(state, fx, (run, no), id),
        Msg::Lost { run, no, why } => iteration::lost(state, fx, (run, no), why),
        Msg::Exited {
            run,
            no,
            status,
            cause,
        } => iteration::exited(state, fx, (run, no), status, cause),
        Msg::Committed { run, no, commit } => iteration::committed(state, fx, (run, no), commit),
        Msg::Kept {
            run,
            no,
            keep,
            kept,
        } => keep::kept(state, fx, (run, no), keep, kept),
        Msg::ExitReport { run, no, report } => iteration::exit_report(state, fx, (run, no), report),
        Msg::Adopt { run, attach } => adopt::adopt(state, fx, *run, attach),
        Msg::Health(health) => match health.engine {
            None => monitor::docker(state, fx, health.up, health.detail, health.retry_s),
            Some(name) => {
                engines::engine(state, fx, &name, health.up, health.detail);
                next::fill(state, fx);
            }
        },
        Msg::Nodes { engine, nodes } => nodes::listed(state, fx, &engine, nodes),
        Msg::ContainerEvent(ev) => monitor::container_event(state, fx, ev),
        Msg::NotifyReport(report) => monitor::notify_report(state, fx, report),
        Msg::Tracking { down, text } => track::tracking(state, fx, down, text),
        Msg::Carried { run, observations } => warm::carried(state, run, observations),
        Msg::EngineLimits { run, limits } => capacity::limits_read(state, run, limits),
        Msg::GpusFound { run, engines } => gpu::found(state, fx, run, engines),
        Msg::GpuUsage { run, no, samples } => gpu::usage(state, run, no, samples),
        Msg::HistoryLost { error } => next::history_lost(state, fx, error),
        Msg::Operator(op) => operator::command(state, fx, op),
    }
    effects.out
}

#[cfg(test)]
mod gpu_tests;
#[cfg(test)]
mod nodes_tests;
#[cfg(test)]
mod parallel_tests;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod triage_tests;
