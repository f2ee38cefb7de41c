//! `[train] keep`: which earlier iteration a new one's workspace takes the kept files from.
//!
//! Pure. `previous` is the iteration that ended last (any ending: a script that trains on its first
//! run and only scores on its second fails the first, and the second must still find its model);
//! `best` is the best-scoring one, and the previous one until an iteration has scored. Only ended
//! iterations count, so a trial still training beside this one never hands over half-written files.

use crate::core::config::{Config, KeepFrom};
use crate::core::ids::IterationNo;
use crate::core::ids::RunId;
use crate::core::text;
use crate::engine::msg::{KeepPlan, Kept, Level};
use crate::engine::state::{IterState, PipelineState, RunState};

use super::fx::Fx;

/// The files iteration `no` of `r` starts with beside its commit, or `None` when nothing is kept
/// or no other iteration has ended yet.
pub(super) fn plan(r: &RunState, config: &Config, no: IterationNo) -> Option<KeepPlan> {
    if config.train.keep.is_empty() {
        return None;
    }
    let ended = |i: &&IterState| i.no != no && i.status.is_final();
    let previous = r
        .iterations
        .iter()
        .filter(ended)
        .max_by_key(|i| (i.finished_ms.unwrap_or(i64::MIN), i.no));
    let best = r.best_iteration().filter(ended);
    let (from, why) = match (config.train.keep_from, best) {
        (KeepFrom::Best, Some(b)) => {
            let value = b.final_value.map(text::value).unwrap_or_default();
            let why = format!(
                "the best iteration, {} ({} {value})",
                b.no, config.metric.name
            );
            (b, why)
        }
        (KeepFrom::Best, None) => {
            let p = previous?;
            (
                p,
                format!("the previous iteration, {} (none has scored yet)", p.no),
            )
        }
        (KeepFrom::Previous, _) => {
            let p = previous?;
            (p, format!("the previous iteration, {}", p.no))
        }
    };
    Some(KeepPlan {
        from: from.no,
        entries: config.train.keep.clone(),
        why,
    })
}

/// The worker copied the kept files into iteration `no`'s workspace: the event says what came from
/// where, and what was missing or refused.
pub(super) fn kept(
    state: &mut PipelineState,
    fx: &mut Fx,
    key: (RunId, IterationNo),
    keep: KeepPlan,
    kept: Kept,
) {
    let mut text = match kept.files.is_empty() {
        true => format!("nothing to carry from {} ([train] keep)", keep.why),
        false => format!(
            "carried {} from {} ([train] keep)",
            crate::core::config::keep::files_sized(&kept.files),
            keep.why
        ),
    };
    if !kept.missing.is_empty() {
        text.push_str(&format!(
            "; not in its workspace: {}",
            kept.missing.join(", ")
        ));
    }
    if !kept.refused.is_empty() {
        text.push_str(&format!("; refused: {}", kept.refused.join("; ")));
    }
    let level = match kept.refused.is_empty() {
        true => Level::Info,
        false => Level::Warn,
    };
    fx.iteration_event(state, key, "keep", level, text);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::core::model::IterStatus;
    use crate::engine::state::IterState;

    fn config(keep_from: &str) -> Config {
        let toml = format!(
            "[train]\ncommand = [\"python3\", \"knn.py\"]\nkeep = [\"mymodel.h5\"]\nkeep_from = \"{keep_from}\"\n\
             [metric]\nname = \"accuracy\"\ntarget = 0.99\n"
        );
        Config::parse(&toml, Path::new("mlops.toml")).unwrap()
    }

    fn run(iterations: &[(u32, IterStatus, Option<i64>, Option<f64>)]) -> RunState {
        let commit = crate::core::model::CommitInfo {
            id: "c".into(),
            summary: String::new(),
            author: String::new(),
            branch: "main".into(),
            time: 0,
        };
        let mut r = RunState::new(crate::core::ids::RunId(1), commit);
        for &(no, status, finished, value) in iterations {
            let mut it = IterState::new(IterationNo(no), Default::default(), None);
            it.status = status;
            it.finished_ms = finished;
            it.final_value = value;
            r.iterations.push(it);
        }
        r
    }

    #[test]
    fn previous_is_the_iteration_that_ended_last_even_a_failed_one() {
        let mut r = run(&[
            (1, IterStatus::BelowTarget, Some(10), Some(0.8)),
            (2, IterStatus::Failed, Some(30), None),
            (3, IterStatus::Running, None, None),
            (4, IterStatus::Pending, None, None),
        ]);
        r.best = Some(IterationNo(1));
        let p = plan(&r, &config("previous"), IterationNo(4)).unwrap();
        assert_eq!(p.from, IterationNo(2));
        assert_eq!(p.entries, ["mymodel.h5"]);
        assert_eq!(p.why, "the previous iteration, 2");
        let b = plan(&r, &config("best"), IterationNo(4)).unwrap();
        assert_eq!(b.from, IterationNo(1));
        assert_eq!(b.why, "the best iteration, 1 (accuracy 0.8000)");
    }

    #[test]
    fn best_falls_back_to_the_previous_one_and_nothing_comes_before_the_first_end() {
        let r = run(&[
            (1, IterStatus::Failed, Some(5), None),
            (2, IterStatus::Pending, None, None),
        ]);
        let b = plan(&r, &config("best"), IterationNo(2)).unwrap();
        assert_eq!(
            (b.from, b.why.as_str()),
            (
                IterationNo(1),
                "the previous iteration, 1 (none has scored yet)"
            )
        );
        let first = run(&[(1, IterStatus::Pending, None, None)]);
        assert_eq!(plan(&first, &config("previous"), IterationNo(1)), None);
        let mut none = config("previous");
        none.train.keep.clear();
        assert_eq!(plan(&r, &none, IterationNo(2)), None);
    }
}
