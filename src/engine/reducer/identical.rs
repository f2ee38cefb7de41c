//! Parameters that change nothing: two iterations with different parameters that printed exactly
//! the same output and the same metric suggest that the script never reads the dimensions that
//! differ. Said once per run, naming them, so that the operator binds them to the source instead of
//! watching the loop "tweak" a number nobody reads.

use crate::core::config::Params;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::IterStatus;
use crate::core::text;
use crate::engine::event::Level;
use crate::engine::state::{IterState, PipelineState};

use super::fx::Fx;

/// After iteration `no` scored: warns when an earlier scored iteration had the same value and the
/// same output with other parameters. At most once per run.
pub(super) fn check(state: &mut PipelineState, fx: &mut Fx, (run, no): (RunId, IterationNo)) {
    let Some(r) = state.run.as_ref().filter(|r| r.id == run) else {
        return;
    };
    if r.warned_identical {
        return;
    }
    let Some(it) = r.iteration(no) else { return };
    let Some(twin) = r
        .iterations
        .iter()
        .filter(|o| o.no < no)
        .find(|o| same_outcome(o, it))
    else {
        return;
    };
    let metric = r.metric_name();
    let Some(text) = warning(twin, it, &metric) else {
        return;
    };
    if let Some(r) = state.run.as_mut() {
        r.warned_identical = true;
    }
    fx.iteration_event(state, (run, no), "evaluate", Level::Warn, text);
}

/// Both scored, with bit-identical values and output digests.
fn same_outcome(a: &IterState, b: &IterState) -> bool {
    let scored =
        |i: &IterState| matches!(i.status, IterStatus::BelowTarget | IterStatus::Succeeded);
    scored(a)
        && scored(b)
        && a.output_hash.is_some()
        && a.output_hash == b.output_hash
        && a.final_value.map(f64::to_bits) == b.final_value.map(f64::to_bits)
}

/// "iterations 1 and 2 differ only in `k` (15→9) yet printed the same output and accuracy 0.93:
/// nothing seems to read `k` — bind it to the source (see README)"; `None` when the parameters are
/// the same.
pub(super) fn warning(a: &IterState, b: &IterState, metric: &str) -> Option<String> {
    let names = differing(&a.params, &b.params);
    if names.is_empty() {
        return None;
    }
    let value = |p: &Params, k: &str| {
        p.get(k)
            .map(text::param_value)
            .unwrap_or_else(|| "unset".into())
    };
    let list: Vec<String> = names
        .iter()
        .map(|k| format!("`{k}` ({}→{})", value(&a.params, k), value(&b.params, k)))
        .collect();
    let quoted: Vec<String> = names.iter().map(|k| format!("`{k}`")).collect();
    let shown = b.final_value.map(text::value_short).unwrap_or_default();
    Some(format!(
        "iterations {} and {} differ only in {} yet printed the same output and {metric} {shown}: \
         nothing seems to read {} — bind it to the source (see README)",
        a.no,
        b.no,
        list.join(" and "),
        quoted.join(" or ")
    ))
}

fn differing(a: &Params, b: &Params) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .fold(Vec::new(), |mut v, k| {
            if !v.contains(k) {
                v.push(k.clone());
            }
            v
        })
}
