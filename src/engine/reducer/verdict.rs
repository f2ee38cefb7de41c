//! What an iteration's exit means. Pure: decided from the iteration as the state has it, its
//! configuration, how the container ended and the time, so every rule is testable on its own.

use std::time::Duration;

use crate::core::config::{Config, Direction, Metric, Monitor};
use crate::core::metrics::MetricParser;
use crate::core::model::ExitStatus;
use crate::core::triage::{self, Diagnosis, Ending};
use crate::engine::state::IterState;

use super::text::{describe_death, signal_name};
use crate::core::text;

/// Log lines quoted in a failed iteration's reason.
const REASON_TAIL: usize = 5;
/// Bytes of one log line quoted in a reason.
const REASON_LINE: usize = 500;

/// The judgement of one exit.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// A death from outside (OOM kill, a signal, an engine restart) within the revival budget.
    Revive(Revival),
    /// The iteration failed for `reason`. `gave_up` is set when it died from outside once too
    /// often: the monitor's own account, reported apart.
    Failed {
        reason: String,
        gave_up: Option<String>,
    },
    /// A failure no tweak can fix (triage said so): the iteration failed for `reason` and the run
    /// ends at once for `end`, with no revival, no proposal and no retry.
    Stop { reason: String, end: String },
    /// The script ended well and its last reported value is this one.
    Scored(f64),
}

/// A revival to carry out.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Revival {
    /// Which revival of the iteration this is, from 1.
    pub(super) number: u32,
    /// The position in the back-off sequence it uses (restarted after a healthy stretch).
    pub(super) step: u32,
    pub(super) delay: Duration,
    /// How the container died, for people (`out of memory, limit 64m`, `exit 137, SIGKILL`).
    pub(super) death: String,
}

/// Judges iteration `it`'s exit at `now`. `cause` is set when the worker stopped the container itself
/// (deadline, operator); such a stop is never revived.
pub(super) fn judge_exit(
    it: &IterState,
    config: &Config,
    status: Option<ExitStatus>,
    cause: Option<&str>,
    now: i64,
) -> Verdict {
    if let Some(why) = &it.over_disk {
        return Verdict::Stop {
            reason: why.clone(),
            end: format!(
                "iteration {} stopped: {why} (no tweak can fix this, so the run stopped)",
                it.no
            ),
        };
    }
    let diagnosis = diagnose(it, status, cause);
    if let Some(stop) = diagnosis.as_ref().and_then(|d| stop(it, d)) {
        return stop;
    }
    if let Some(stop) = not_a_number(it, config, status, cause) {
        return stop;
    }
    let monitor = &config.monitor;
    let mut gave_up = None;
    if monitor.revive && died_outside(status, cause, monitor) {
        let death = describe_death(status, config);
        match next_revival(it, monitor, now) {
            Some((number, step)) => {
                return Verdict::Revive(Revival {
                    number,
                    step,
                    delay: monitor.backoff(step),
                    death,
                });
            }
            None => {
                gave_up = Some(format!(
                    "gave up after {} revivals (monitor.max_revivals); last death: {death}",
                    it.revivals
                ));
            }
        }
    }
    let reason = match &gave_up {
        Some(g) => Some(format!("{g}; last lines:\n  {}", log_tail(it))),
        None => failure(it, config, status, cause, diagnosis.as_ref()),
    };
    match reason {
        Some(reason) => Verdict::Failed { reason, gave_up },
        None => Verdict::Scored(it.final_value.unwrap_or(f64::NAN)),
    }
}

/// An attempt whose host was lost (a swarm node went down) is a death outside the script: revived
/// from its last checkpoint while the monitor may revive, else `None` (the loss then fails the
/// iteration as any death past the revival budget).
pub(super) fn judge_loss(it: &IterState, config: &Config, why: &str, now: i64) -> Option<Revival> {
    let monitor = &config.monitor;
    if !monitor.revive {
        return None;
    }
    let (number, step) = next_revival(it, monitor, now)?;
    Some(Revival {
        number,
        step,
        delay: monitor.backoff(step),
        death: why.to_string(),
    })
}

/// The triage of a container that exited by itself (not stopped by the worker), from the lines the
/// state kept and whether the metric was reported.
fn diagnose(it: &IterState, status: Option<ExitStatus>, cause: Option<&str>) -> Option<Diagnosis> {
    // A worker's cause is its own words (a deadline, a stop), except an engine's set-up fault,
    // which no retry or tweak fixes.
    if let Some(cause) = cause {
        return triage::start_failure(cause);
    }
    let s = status?;
    let ending = Ending {
        code: s.code,
        oom_killed: s.oom_killed,
        metric_reported: it.final_value.is_some(),
    };
    let lines: Vec<&str> = it.log_tail.iter().map(String::as_str).collect();
    Some(triage::triage(ending, &lines))
}

/// The verdict for a permanent failure: its error line and what to do, for the iteration (with the
/// last lines) and for the run's end.
fn stop(it: &IterState, d: &Diagnosis) -> Option<Verdict> {
    if !d.is_permanent() {
        return None;
    }
    let hint = d.hint()?;
    let error = d
        .error
        .clone()
        .unwrap_or_else(|| "the script failed".into());
    let tail = match d.class {
        triage::Class::EngineSetup => String::new(),
        _ => format!("; last lines:\n  {}", log_tail(it)),
    };
    Some(Verdict::Stop {
        reason: format!("{error} — {hint}{tail}"),
        end: format!(
            "{error} — {hint} (iteration {} failed; no tweak can fix this, so the run stopped)",
            it.no
        ),
    })
}

/// A script that ended well having reported its metric only as something that is not a number
/// (`accuracy=0,95`): every run of it would do the same, so the run stops with what to print.
fn not_a_number(
    it: &IterState,
    config: &Config,
    status: Option<ExitStatus>,
    cause: Option<&str>,
) -> Option<Verdict> {
    let clean = status.is_some_and(|s| s.code == 0 && !s.oom_killed);
    if !clean || cause.is_some() || it.final_value.is_some() {
        return None;
    }
    let metric = &config.metric;
    let mut parser = MetricParser::new(&metric.name, metric.pattern.as_deref()).ok()?;
    for line in &it.log_tail {
        parser.feed(line);
    }
    let hint = parser.malformed()?.to_string();
    Some(Verdict::Stop {
        reason: format!("{hint}; last lines:\n  {}", log_tail(it)),
        end: format!(
            "{hint} (iteration {} failed; no tweak can fix this, so the run stopped)",
            it.no
        ),
    })
}

/// The container died from outside the script's control: killed for memory, or an exit code the
/// configuration lists as the engine's doing. Never when the worker stopped it.
fn died_outside(status: Option<ExitStatus>, cause: Option<&str>, monitor: &Monitor) -> bool {
    cause.is_none()
        && status.is_some_and(|s| {
            s.oom_killed || (s.code != 0 && monitor.revive_exit_codes.contains(&s.code))
        })
}

/// The number of the next revival and its back-off step, or `None` when the budget is spent. A
/// container that lived `healthy_after` since its last start begins the back-off again.
fn next_revival(it: &IterState, monitor: &Monitor, now: i64) -> Option<(u32, u32)> {
    if it.revivals >= monitor.max_revivals {
        return None;
    }
    let healthy_ms = monitor.healthy_after.0.as_millis() as i64;
    let healthy = it.life_started_ms.is_some_and(|t| now - t >= healthy_ms);
    let step = if healthy { 0 } else { it.backoff_step };
    Some((it.revivals + 1, step + 1))
}

/// Why the iteration failed, or `None` when it reported a finite value.
fn failure(
    it: &IterState,
    config: &Config,
    status: Option<ExitStatus>,
    cause: Option<&str>,
    diagnosis: Option<&Diagnosis>,
) -> Option<String> {
    if let Some(cause) = cause {
        return Some(cause.to_string());
    }
    let metric = &config.metric.name;
    match status {
        None => Some("the container vanished before it reported an exit status".into()),
        Some(s) if s.oom_killed => Some(format!(
            "killed: out of memory (limit {}); last lines:\n  {}",
            config.resources.memory,
            log_tail(it)
        )),
        Some(s) if s.code != 0 => {
            // The error line goes first: it is what people read of a failure (banner, notification).
            let error = diagnosis
                .and_then(|d| d.error.as_deref())
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            Some(format!(
                "exited with code {}{}{error}; last lines:\n  {}",
                s.code,
                signal_name(s.code),
                log_tail(it)
            ))
        }
        Some(_) => match it.final_value {
            None => Some(silent(it, config)),
            Some(v) if !v.is_finite() => Some(format!(
                "`{metric}` was {v}: a diverged model is never kept"
            )),
            Some(v) => out_of_range(&config.metric, v),
        },
    }
}

/// Why a script that exited 0 without reporting the metric failed: what it printed, or that it
/// printed nothing, and what it wrote into its workspace (with the fix when that looks like a
/// model it means to load on its next run).
fn silent(it: &IterState, config: &Config) -> String {
    let metric = &config.metric.name;
    let wrote = crate::core::config::keep::wrote_note(&config.train.keep, &it.written);
    let printed = it
        .log_tail
        .iter()
        .any(|l| !text::visible(l, REASON_LINE).trim().is_empty());
    match printed {
        true => format!(
            "finished without reporting `{metric}`; {wrote}; last lines:\n  {}",
            log_tail(it)
        ),
        false => format!("exited 0 without printing anything or reporting `{metric}`; {wrote}"),
    }
}

/// Why a finite final value is invalid, or `None` when the metric can take it: a value outside the
/// metric's range is a broken report, never a result.
fn out_of_range(metric: &Metric, value: f64) -> Option<String> {
    let range = metric.valid_range().filter(|r| !r.contains(value))?;
    Some(format!(
        "`{}` was {value:?}, outside its range {range}: an invalid value is never kept; set [metric] \
         range if the scale differs",
        metric.name
    ))
}

/// The last lines the iteration printed that show something, as a terminal shows them (escape
/// sequences removed, the last `\r` segment of a progress bar, at most [`REASON_LINE`] bytes),
/// indented for a reason's continuation lines. Blank lines are skipped: a script that ends with
/// `print()` would otherwise leave "last lines:" showing nothing.
fn log_tail(it: &IterState) -> String {
    let mut lines: Vec<String> = it
        .log_tail
        .iter()
        .rev()
        .map(|l| text::visible(l, REASON_LINE))
        .filter(|l| !l.trim().is_empty())
        .take(REASON_TAIL)
        .collect();
    lines.reverse();
    if lines.is_empty() {
        "(no output)".to_string()
    } else {
        lines.join("\n  ")
    }
}

/// Whether `value` meets the target, and the sentence that says so (`accuracy 0.9100 >= target 0.9`).
pub(super) fn evaluate(metric: &Metric, value: f64) -> (bool, String) {
    let met = metric.meets_target(value);
    let cmp = match (met, metric.direction) {
        (true, Direction::Minimize) => "<=",
        (false, Direction::Minimize) => ">",
        (true, _) => ">=",
        (false, _) => "<",
    };
    let text = format!(
        "{} {} {cmp} target {}",
        metric.name,
        text::value(value),
        metric.target
    );
    (met, text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::core::config::Params;
    use crate::core::ids::IterationNo;

    const TOML: &str = r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.9
[monitor]
max_revivals = 2
"#;

    fn config() -> Config {
        Config::parse(TOML, Path::new("mlops.toml")).unwrap()
    }

    fn iteration() -> IterState {
        let mut it = IterState::new(IterationNo(1), Params::new(), None);
        it.log_tail.extend((1..=7).map(|i| format!("line {i}")));
        it
    }

    fn exit(code: i64, oom_killed: bool) -> Option<ExitStatus> {
        Some(ExitStatus { code, oom_killed })
    }

    #[test]
    fn a_clean_exit_with_a_value_is_scored() {
        let mut it = iteration();
        it.final_value = Some(0.5);
        assert_eq!(
            judge_exit(&it, &config(), exit(0, false), None, 0),
            Verdict::Scored(0.5)
        );
    }

    #[test]
    fn an_oom_kill_is_revived_then_given_up() {
        let config = config();
        let mut it = iteration();
        let Verdict::Revive(first) = judge_exit(&it, &config, exit(137, true), None, 0) else {
            panic!("expected a revival");
        };
        assert_eq!((first.number, first.step), (1, 1));
        assert!(first.death.starts_with("out of memory"), "{}", first.death);
        it.revivals = 2;
        match judge_exit(&it, &config, exit(137, true), None, 0) {
            Verdict::Failed {
                reason,
                gave_up: Some(g),
            } => {
                assert!(g.starts_with("gave up after 2 revivals"), "{g}");
                assert!(reason.ends_with("line 3\n  line 4\n  line 5\n  line 6\n  line 7"));
            }
            v => panic!("expected giving up, got {v:?}"),
        }
    }

    /// A script that only ever printed `accuracy=0,95` stops the run with what to print; one that
    /// also printed a number is scored on that number.
    #[test]
    fn a_metric_only_ever_printed_with_a_decimal_comma_stops_the_run() {
        let mut it = iteration();
        it.log_tail.push_back("epoch 1/1 accuracy=0,95".into());
        match judge_exit(&it, &config(), exit(0, false), None, 0) {
            Verdict::Stop { reason, end } => {
                assert!(
                    reason.starts_with(
                        "`accuracy` was reported as `0,95`, which is not a number (a decimal comma?)"
                    ),
                    "{reason}"
                );
                assert!(end.contains("`accuracy=0.95`"), "{end}");
                assert!(
                    end.ends_with("no tweak can fix this, so the run stopped)"),
                    "{end}"
                );
            }
            v => panic!("expected a stop, got {v:?}"),
        }
        it.final_value = Some(0.9);
        assert_eq!(
            judge_exit(&it, &config(), exit(0, false), None, 0),
            Verdict::Scored(0.9)
        );
    }

    #[test]
    fn a_healthy_stretch_restarts_the_backoff() {
        let config = config();
        let mut it = iteration();
        it.revivals = 1;
        it.backoff_step = 1;
        it.life_started_ms = Some(0);
        let early = judge_exit(&it, &config, exit(137, true), None, 1);
        assert!(matches!(early, Verdict::Revive(Revival { step: 2, .. })));
        let late = judge_exit(&it, &config, exit(137, true), None, i64::MAX / 2);
        assert!(matches!(late, Verdict::Revive(Revival { step: 1, .. })));
    }

    #[test]
    fn a_stop_by_the_worker_is_a_failure_with_its_cause() {
        let v = judge_exit(
            &iteration(),
            &config(),
            exit(137, false),
            Some("deadline"),
            0,
        );
        assert_eq!(
            v,
            Verdict::Failed {
                reason: "deadline".into(),
                gave_up: None
            }
        );
    }

    #[test]
    fn failures_explain_themselves() {
        let config = config();
        let mut it = iteration();
        let reason = |v: Verdict| match v {
            Verdict::Failed { reason, .. } => reason,
            v => panic!("expected a failure, got {v:?}"),
        };
        let vanished = reason(judge_exit(&it, &config, None, None, 0));
        assert!(vanished.contains("vanished"), "{vanished}");
        let crashed = reason(judge_exit(&it, &config, exit(1, false), None, 0));
        assert!(crashed.starts_with("exited with code 1;"), "{crashed}");
        let silent = reason(judge_exit(&it, &config, exit(0, false), None, 0));
        assert!(silent.starts_with("finished without reporting `accuracy`; it wrote no file"));
        let mut quiet = iteration();
        quiet.log_tail.clear();
        quiet.written = vec![("mymodel.h5".into(), 2048)];
        let quiet = reason(judge_exit(&quiet, &config, exit(0, false), None, 0));
        assert_eq!(
            quiet,
            "exited 0 without printing anything or reporting `accuracy`; it wrote mymodel.h5 (2.0 KB) \
             in its workspace. A script that loads what it saved and only scores on its next run needs \
             that file carried over: [train] keep = [\"mymodel.h5\"]"
        );
        it.final_value = Some(f64::NAN);
        let diverged = reason(judge_exit(&it, &config, exit(0, false), None, 0));
        assert_eq!(
            diverged,
            "`accuracy` was NaN: a diverged model is never kept"
        );
    }

    #[test]
    fn a_permanent_failure_stops_before_any_revival() {
        let config = config();
        let mut it = iteration();
        it.log_tail.extend(
            [
                "Traceback (most recent call last):",
                "  File \"/workspace/train.py\", line 3, in <module>",
                "    import seaborn",
                "ModuleNotFoundError: No module named 'seaborn'",
                "",
            ]
            .map(String::from),
        );
        // 143 is a revival exit code: the triage comes first.
        let Verdict::Stop { reason, end } = judge_exit(&it, &config, exit(143, false), None, 0)
        else {
            panic!("expected a stop");
        };
        let error = "ModuleNotFoundError: No module named 'seaborn' (at train.py:3)";
        assert!(
            reason.starts_with(&format!("{error} — the image has no")),
            "{reason}"
        );
        assert!(
            reason.ends_with(
                "; last lines:\n  line 7\n  Traceback (most recent call last):\n    File \
                 \"/workspace/train.py\", line 3, in <module>\n      import seaborn\n  \
                 ModuleNotFoundError: No module named 'seaborn'"
            ),
            "the blank last line is not quoted: {reason}"
        );
        assert!(end.starts_with(error), "{end}");
        assert!(end.ends_with("(iteration 1 failed; no tweak can fix this, so the run stopped)"));
        // A stop by the worker is never triaged.
        let stopped = judge_exit(&it, &config, exit(1, false), Some("deadline"), 0);
        assert!(matches!(stopped, Verdict::Failed { .. }), "{stopped:?}");
        // Killed for memory: revived, whatever was printed.
        let oom = judge_exit(&it, &config, exit(137, true), None, 0);
        assert!(matches!(oom, Verdict::Revive(_)), "{oom:?}");
    }

    #[test]
    fn a_value_outside_the_range_fails_like_nan() {
        let config = config();
        let mut it = iteration();
        for v in [2.0, -0.5] {
            it.final_value = Some(v);
            let verdict = judge_exit(&it, &config, exit(0, false), None, 0);
            let Verdict::Failed { reason, .. } = verdict else {
                panic!("{v} must fail, got {verdict:?}");
            };
            assert_eq!(
                reason,
                format!(
                    "`accuracy` was {v:?}, outside its range [0, 1]: an invalid value is never \
                     kept; set [metric] range if the scale differs"
                )
            );
        }
        it.final_value = Some(1.0);
        let edge = judge_exit(&it, &config, exit(0, false), None, 0);
        assert_eq!(edge, Verdict::Scored(1.0));
    }

    #[test]
    fn a_percentage_target_widens_the_range() {
        let text = TOML.replace("target = 0.9", "target = 90");
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        let mut it = iteration();
        it.final_value = Some(95.0);
        let verdict = judge_exit(&it, &config, exit(0, false), None, 0);
        assert_eq!(verdict, Verdict::Scored(95.0));
    }

    #[test]
    fn an_explicit_range_is_the_one_judged() {
        let text = TOML.replace("target = 0.9", "target = 0.9\nrange = [-1, 1]");
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        let mut it = iteration();
        it.final_value = Some(-0.5);
        let verdict = judge_exit(&it, &config, exit(0, false), None, 0);
        assert_eq!(verdict, Verdict::Scored(-0.5));
        it.final_value = Some(1.5);
        let verdict = judge_exit(&it, &config, exit(0, false), None, 0);
        assert!(matches!(verdict, Verdict::Failed { .. }), "{verdict:?}");
    }

    #[test]
    fn evaluation_reads_the_direction() {
        let metric = config().metric;
        assert_eq!(
            evaluate(&metric, 0.95),
            (true, "accuracy 0.9500 >= target 0.9".into())
        );
        assert_eq!(
            evaluate(&metric, 0.5),
            (false, "accuracy 0.5000 < target 0.9".into())
        );
    }
}
