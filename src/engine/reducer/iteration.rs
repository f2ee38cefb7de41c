//! An iteration's life in the loop: start it, judge its exit (revive, fail, evaluate), then stop
//! or propose the next point.

use super::*;

pub(super) fn start_iteration(
    state: &mut PipelineState,
    fx: &mut Fx,
    params: Params,
    proposal_reason: Option<String>,
) {
    if state.paused {
        state.deferred = Some((params, proposal_reason));
        fx.transient(
            state,
            "loop",
            "paused: the next iteration waits for resume (p)".into(),
        );
        return;
    }
    let Some(r) = state.run.as_mut() else { return };
    let (Some(config), Some(image), Some(workspace)) =
        (r.config.clone(), r.image.clone(), r.workspace.clone())
    else {
        return;
    };
    let no = r
        .iterations
        .last()
        .map(|i| i.no.next())
        .unwrap_or(IterationNo(1));
    r.iterations
        .push(IterState::new(no, params.clone(), proposal_reason.clone()));
    let run = r.id;
    fx.stage(
        state,
        Stage::Train,
        StageStatus::Running,
        &format!("iteration {no}"),
    );
    for s in [Stage::Evaluate, Stage::Tweak] {
        if state.stage(s).status == StageStatus::Running {
            fx.stage(state, s, StageStatus::Passed, "");
        }
    }
    fx.out.push(Effect::SaveIteration { run, no });
    fx.out.push(Effect::StartIteration(Box::new(IterationPlan {
        run,
        no,
        params,
        image,
        workspace,
        config,
        proposal_reason,
    })));
}

/// Decides what an exit means for the iteration, then what the loop does next.
pub(super) fn on_exit(
    state: &mut PipelineState,
    fx: &mut Fx,
    run: RunId,
    no: IterationNo,
    status: Option<ExitStatus>,
    cause: Option<String>,
) {
    let Some(r) = run_mut(state, run) else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    if matches!(
        it.status,
        IterStatus::Succeeded | IterStatus::BelowTarget | IterStatus::Failed | IterStatus::Stopped
    ) {
        return; // already decided (a duplicate exit report)
    }
    // Job 6: a death from outside (OOM kill, a signal, an engine restart) is revived within limits.
    let monitor = &config.monitor;
    let infra = cause.is_none()
        && status.is_some_and(|s| {
            s.oom_killed || (s.code != 0 && monitor.revive_exit_codes.contains(&s.code))
        });
    let mut gave_up: Option<String> = None;
    if infra && monitor.revive {
        let death = describe_death(status, &config);
        let healthy_ms = monitor.healthy_after.0.as_millis() as i64;
        if it.life_started_ms.is_some_and(|t| fx.now - t >= healthy_ms) {
            it.backoff_step = 0;
        }
        if it.revivals < monitor.max_revivals {
            it.revivals += 1;
            it.backoff_step += 1;
            let delay = monitor.backoff(it.backoff_step);
            let revivals = it.revivals;
            let at = it
                .last_epoch()
                .map(|e| format!(" after epoch {e}"))
                .unwrap_or_default();
            let text = format!(
                "container died ({death}){at}; reviving in {} (revival {} of {})",
                crate::core::units::HumanDuration(delay),
                it.revivals,
                monitor.max_revivals
            );
            fx.stage(
                state,
                Stage::Monitor,
                StageStatus::Running,
                &format!("reviving iteration {no}"),
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("monitor:{no}"),
                Level::Warn,
                text,
            );
            fx.out.push(Effect::Revive { run, no, delay });
            let change = format!(
                "revival {} of {}, after {}",
                revivals,
                monitor.max_revivals,
                crate::core::units::HumanDuration(delay)
            );
            notify(state, fx, |p, r, _| {
                Notification::container_revived(p, r, no.0, &death, &change)
            });
            fx.out.push(Effect::SaveIteration { run, no });
            return;
        }
        gave_up = Some(format!(
            "gave up after {} revivals (monitor.max_revivals); last death: {death}",
            it.revivals
        ));
    }
    fx.out.push(Effect::Release { run, no });
    it.finished_ms = Some(fx.now);
    let metric = &config.metric;
    let tail = || {
        let n = it.log_tail.len();
        let lines: Vec<&str> = it
            .log_tail
            .iter()
            .skip(n.saturating_sub(REASON_TAIL))
            .map(String::as_str)
            .collect();
        if lines.is_empty() {
            "(no output)".to_string()
        } else {
            lines.join("\n  ")
        }
    };
    let failure: Option<String> = if let Some(reason) = gave_up.clone() {
        Some(format!("{reason}; last lines:\n  {}", tail()))
    } else if let Some(cause) = cause {
        Some(cause)
    } else {
        match status {
            None => Some("the container vanished before it reported an exit status".into()),
            Some(s) if s.oom_killed => Some(format!(
                "killed: out of memory (limit {}); last lines:\n  {}",
                config.resources.memory,
                tail()
            )),
            Some(s) if s.code != 0 => Some(format!(
                "exited with code {}{}; last lines:\n  {}",
                s.code,
                signal_name(s.code),
                tail()
            )),
            Some(_) => match it.final_value {
                None => Some(format!(
                    "finished without reporting `{}`; last lines:\n  {}",
                    metric.name,
                    tail()
                )),
                Some(v) if !v.is_finite() => Some(format!(
                    "`{}` was {v}: a diverged model is never kept",
                    metric.name
                )),
                Some(_) => None,
            },
        }
    };
    let tag = format!("evaluate:{no}");
    if let Some(reason) = gave_up {
        fx.stage(
            state,
            Stage::Monitor,
            StageStatus::Failed,
            &format!("gave up on iteration {no}"),
        );
        fx.event(
            state,
            Some(run),
            Some(no),
            &format!("monitor:{no}"),
            Level::Error,
            reason.clone(),
        );
        notify(state, fx, |p, r, _| {
            Notification::monitor_gave_up(p, r, &format!("iteration {no}: {reason}"))
        });
    }
    let Some(r) = run_mut(state, run) else { return };
    let Some(it) = r.iteration_mut(no) else {
        return;
    };
    match failure {
        Some(reason) => {
            it.status = IterStatus::Failed;
            it.reason = Some(reason.clone());
            r.failures += 1;
            let first = first_line(&reason);
            notify(state, fx, |p, r, c| {
                Notification::iteration_failed(p, r, no.0, c, &first)
            });
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Failed,
                &format!("iteration {no} failed"),
            );
            fx.stage(state, Stage::Evaluate, StageStatus::Skipped, "");
            fx.event(
                state,
                Some(run),
                Some(no),
                &format!("train:{no}"),
                Level::Error,
                format!("failed: {reason}"),
            );
            fx.out.push(Effect::SaveIteration { run, no });
        }
        None => {
            let value = it.final_value.unwrap_or(f64::NAN);
            let met = metric.meets_target(value);
            it.status = if met {
                IterStatus::Succeeded
            } else {
                IterStatus::BelowTarget
            };
            let better = r
                .best
                .and_then(|b| r.iteration(b))
                .and_then(|b| b.final_value)
                .is_none_or(|b| metric.better(value, b));
            if better {
                r.best = Some(no);
                fx.out.push(Effect::SaveBest { run, no });
            }
            fx.stage(
                state,
                Stage::Train,
                StageStatus::Passed,
                &format!("iteration {no}"),
            );
            let cmp = if met { ">=" } else { "<" };
            let cmp = match (met, metric.direction) {
                (true, crate::core::config::Direction::Minimize) => "<=",
                (false, crate::core::config::Direction::Minimize) => ">",
                _ => cmp,
            };
            let text = format!(
                "{} {} {cmp} target {}",
                metric.name,
                crate::core::text::value(value),
                metric.target
            );
            fx.stage(
                state,
                Stage::Evaluate,
                if met {
                    StageStatus::Passed
                } else {
                    StageStatus::Running
                },
                &text,
            );
            fx.event(
                state,
                Some(run),
                Some(no),
                &tag,
                if met { Level::Good } else { Level::Warn },
                text,
            );
            fx.out.push(Effect::SaveIteration { run, no });
            if met {
                fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
                fx.stage(state, Stage::Tweak, StageStatus::Skipped, "");
                let path = model_path(state);
                finish(
                    state,
                    fx,
                    RunStatus::Succeeded,
                    format!(
                        "target reached at iteration {no}: {} {} (best model: {path})",
                        metric.name,
                        crate::core::text::value(value)
                    ),
                );
                return;
            }
        }
    }
    continue_loop(state, fx, &config);
}

/// After an iteration that did not reach the target: give up on the failure or iteration budget, or
/// propose the next point.
pub(super) fn continue_loop(state: &mut PipelineState, fx: &mut Fx, config: &Config) {
    let Some(r) = state.run.as_ref() else { return };
    if r.failures > config.budget.max_failures {
        let reason = format!(
            "{} iterations failed (max_failures = {})",
            r.failures, config.budget.max_failures
        );
        finish(state, fx, RunStatus::Failed, reason);
        return;
    }
    if r.iterations.len() as u32 >= config.budget.max_iterations {
        let reason = format!(
            "budget spent: {} of {} iterations without reaching the target",
            r.iterations.len(),
            config.budget.max_iterations
        );
        finish(state, fx, RunStatus::BudgetSpent, reason);
        return;
    }
    propose_next(state, fx);
}

pub(super) fn propose_next(state: &mut PipelineState, fx: &mut Fx) {
    let Some(r) = state.run.as_mut() else { return };
    let Some(config) = r.config.clone() else {
        return;
    };
    let Some(last) = r.iterations.last() else {
        return;
    };
    let mut tried: Vec<Tried> = r
        .iterations
        .iter()
        .map(|i| Tried {
            params: i.params.clone(),
            value: if i.status == IterStatus::Failed {
                None
            } else {
                i.final_value
            },
        })
        .collect();
    let rejected: Vec<Tried> = r
        .rejected
        .iter()
        .map(|p| Tried {
            params: p.clone(),
            value: None,
        })
        .collect();
    let current = last.params.clone();
    let from = last.no;
    let run = r.id;
    // Rejected points go first so that the last entry is still the iteration the reason talks about.
    let mut history = rejected;
    history.append(&mut tried);
    let mut strategy = tweak::strategy_for(config.tweak.strategy);
    fx.stage(state, Stage::Evaluate, StageStatus::Passed, "");
    match strategy.propose(&config.tweak.space, &config.metric, &current, &history) {
        None => {
            fx.stage(
                state,
                Stage::Tweak,
                StageStatus::Failed,
                "search space exhausted",
            );
            let reason = "budget spent: the search space is exhausted (every dimension at its end)"
                .to_string();
            finish(state, fx, RunStatus::BudgetSpent, reason);
        }
        Some(p) => {
            let tag = format!("tweak:{from}→{}", from.next());
            if state.apply_mode() == ApplyMode::Ask && state.interactive {
                fx.stage(
                    state,
                    Stage::Tweak,
                    StageStatus::Running,
                    "awaiting approval",
                );
                let text = format!(
                    "proposed {} — {}; waiting for approval (a approve, x reject, e edit)",
                    p.summary(),
                    p.reason
                );
                if let Some(r) = state.run.as_mut() {
                    r.pending = Some(p);
                }
                fx.event(state, Some(run), None, &tag, Level::Info, text);
            } else {
                apply_proposal(state, fx, p, "");
            }
        }
    }
}

pub(super) fn apply_proposal(state: &mut PipelineState, fx: &mut Fx, p: Proposal, how: &str) {
    let Some(r) = state.run.as_ref() else { return };
    let from = r.iterations.last().map(|i| i.no).unwrap_or(IterationNo(0));
    let run = r.id;
    let tag = format!("tweak:{from}→{}", from.next());
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" ({how})")
    };
    fx.stage(state, Stage::Tweak, StageStatus::Passed, &p.summary());
    fx.event(
        state,
        Some(run),
        None,
        &tag,
        Level::Info,
        format!("{}{how} — {}", p.summary(), p.reason),
    );
    start_iteration(state, fx, p.params, Some(p.reason));
}

pub(super) fn finish(state: &mut PipelineState, fx: &mut Fx, status: RunStatus, reason: String) {
    let Some(r) = state.run.as_mut() else { return };
    r.status = status;
    r.reason = Some(reason.clone());
    r.pending = None;
    let run = r.id;
    state.finished_runs += 1;
    if let Some(n) = final_notification(state, status) {
        fx.stage(state, Stage::Notify, StageStatus::Running, "sending");
        fx.out.push(Effect::Notify(Box::new(n)));
    } else {
        fx.stage(state, Stage::Notify, StageStatus::Skipped, "");
    }
    let level = if status == RunStatus::Succeeded {
        Level::Good
    } else {
        Level::Error
    };
    fx.event(state, Some(run), None, "done", level, reason.clone());
    fx.out.push(Effect::FinishRun {
        run,
        status,
        reason,
    });
    if let Some((commit, trigger)) = state.queued.pop_front() {
        let mut more = update(state, Msg::RunRequested { commit, trigger }, fx.now);
        fx.out.append(&mut more);
    }
}
