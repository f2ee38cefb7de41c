//! Words for people: notifications and event texts. Values, parameters and durations inside them are
//! formatted by `crate::core::text`, like everywhere else.

use crate::core::config::{ApplyMode, Config, Params};
use crate::core::model::{BudgetSpent, ExitStatus, Notification, RunStatus, TargetReached};
use crate::core::tweak;
use crate::engine::msg::Effect;
use crate::engine::state::PipelineState;

use super::fx::Fx;

/// Job 5: what to tell people when a run ends. Preparation failures end a run before any training and
/// are not a notification kind: they are in the event log and the history.
pub(super) fn final_notification(state: &PipelineState, status: RunStatus) -> Option<Notification> {
    let r = state.run.as_ref()?;
    let config = r.config.as_ref()?;
    let project = state.project.display().to_string();
    let best = r.best_iteration();
    let model = best.and_then(crate::engine::state::RunState::model_of);
    match status {
        RunStatus::Succeeded => {
            let b = best?;
            Some(Notification::target_reached(
                &project,
                Some(r.id.0),
                TargetReached {
                    metric: &config.metric.name,
                    value: b.final_value.unwrap_or(f64::NAN),
                    target: config.metric.target,
                    iteration: b.no.0,
                    params: &b.params,
                    commit: &r.commit.id,
                    model: model.as_deref(),
                },
            ))
        }
        RunStatus::BudgetSpent => Some(Notification::budget_spent(
            &project,
            Some(r.id.0),
            BudgetSpent {
                metric: &config.metric.name,
                best: best.and_then(|b| b.final_value),
                target: config.metric.target,
                iterations: r.iterations.len() as u32,
                params: best.map(|b| &b.params),
                commit: &r.commit.id,
                model: model.as_deref(),
            },
        )),
        _ => None,
    }
}

pub(super) fn notify(
    state: &PipelineState,
    fx: &mut Fx,
    make: impl FnOnce(&str, Option<i64>, &str) -> Notification,
) {
    let Some(r) = state.run.as_ref() else { return };
    let project = state.project.display().to_string();
    fx.out.push(Effect::Notify(Box::new(make(
        &project,
        Some(r.id.0),
        &r.commit.id,
    ))));
}

pub(super) fn model_path(state: &PipelineState) -> String {
    state
        .run
        .as_ref()
        .and_then(|r| r.best_iteration())
        .and_then(crate::engine::state::RunState::model_of)
        .map(|m| m.display().to_string())
        .unwrap_or_else(|| "none saved".into())
}

pub(super) fn mode_name(mode: ApplyMode) -> &'static str {
    match mode {
        ApplyMode::Ask => "ask",
        ApplyMode::Auto => "auto",
    }
}

/// "out of memory (limit 64m)" or "exit 137 (SIGKILL)".
pub(super) fn describe_death(status: Option<ExitStatus>, config: &Config) -> String {
    match status {
        Some(s) if s.oom_killed => format!("out of memory, limit {}", config.resources.memory),
        Some(s) => match signal_name(s.code).trim().trim_matches(['(', ')']) {
            "" => format!("exit {}", s.code),
            sig => format!("exit {}, {sig}", s.code),
        },
        None => "no exit status".into(),
    }
}

/// `128 + n` exit codes are deaths by signal n; say which, since "137" alone tells most people nothing.
pub(super) fn signal_name(code: i64) -> &'static str {
    match code {
        137 => " (SIGKILL)",
        143 => " (SIGTERM)",
        139 => " (SIGSEGV)",
        134 => " (SIGABRT)",
        130 => " (SIGINT)",
        _ => "",
    }
}

/// The parameters that differ between two sets, in name order.
pub(super) fn diff(from: &Params, to: &Params) -> Vec<tweak::Change> {
    to.iter()
        .filter(|(k, v)| from.get(*k) != Some(*v))
        .map(|(k, v)| tweak::Change {
            name: k.clone(),
            from: from.get(k).cloned().unwrap_or(serde_json::Value::Null),
            to: v.clone(),
        })
        .collect()
}

pub(super) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// A failure reason's own words: its first line, without the `; last lines:` that introduces the
/// quoted output below it (the error line, when there is one, is in the first line).
pub(super) fn headline(reason: &str) -> String {
    let first = reason.lines().next().unwrap_or("");
    first
        .strip_suffix("; last lines:")
        .unwrap_or(first)
        .to_string()
}

/// Config access for callers that only have the state.
pub fn config(state: &PipelineState) -> Option<&Config> {
    state.run.as_ref().and_then(|r| r.config.as_ref())
}
