//! The data of the search view: where every finished iteration of the current run sits on each
//! dimension of `[tweak.space]`, and what it scored. Pure: computed from the state alone, so the view
//! only draws it and tests can check it without a terminal.
//!
//! Each dimension gets a [`Scale`] that maps its values to one horizontal coordinate: the value itself
//! for linear ranges, its base-10 logarithm for log ranges (geometric `factor` ranges, `log = true`),
//! and the position in the list for ordered lists and unordered choices. Invariant: every point of a
//! panel has an `x` within the panel's [`Panel::bounds`].

use serde_json::Value;

use crate::core::config::{Config, Dimension, Direction};
use crate::core::ids::IterationNo;
use crate::core::model::IterStatus;
use crate::engine::state::{IterState, RunState};

/// How a dimension's values are laid out from left to right.
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// `x` is the value; `lo..=hi` holds the dimension's range and every tried value.
    Linear { lo: f64, hi: f64 },
    /// `x` is `log10(value)`; `lo..=hi` (values, not logarithms) are positive.
    Log { lo: f64, hi: f64 },
    /// `x` is the index in this list: the dimension's values in their written order, then tried
    /// values the list lacks (an operator's edit), in order of first use.
    Positions(Vec<Value>),
}

impl Scale {
    /// The coordinate of `v`, or `None` when `v` has no place on this scale (a string on a numeric
    /// scale, a non-positive value on a log scale).
    pub fn x(&self, v: &Value) -> Option<f64> {
        match self {
            Scale::Linear { .. } => v.as_f64().filter(|x| x.is_finite()),
            Scale::Log { .. } => v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .map(f64::log10),
            Scale::Positions(list) => list.iter().position(|w| same(w, v)).map(|i| i as f64),
        }
    }

    /// The horizontal extent to draw: the range, or half a slot either side of the first and last
    /// position so that each position sits in the middle of its own slot.
    pub fn bounds(&self) -> (f64, f64) {
        let (lo, hi) = match self {
            Scale::Linear { lo, hi } => (*lo, *hi),
            Scale::Log { lo, hi } => (lo.log10(), hi.log10()),
            Scale::Positions(list) => return (-0.5, list.len().max(1) as f64 - 0.5),
        };
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, hi + 1.0)
        }
    }

    /// A word for the panel title: how to read the axis.
    pub fn kind(&self) -> &'static str {
        match self {
            Scale::Linear { .. } => "linear",
            Scale::Log { .. } => "log",
            Scale::Positions(_) => "list",
        }
    }

    /// Whether neighbours on the axis are neighbours in value: false only for unordered choices,
    /// which the view marks slot by slot instead of as one stretch.
    pub fn ordered(&self) -> bool {
        !matches!(self, Scale::Positions(_))
    }
}

/// Equal as parameter values: numbers by value (`5` equals `5.0`), anything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// One finished iteration as seen along one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    /// The final metric value; for a pruned iteration, the last value it reported.
    pub y: f64,
    pub iteration: IterationNo,
    pub pruned: bool,
    pub best: bool,
}

/// One dimension's small multiple.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub name: String,
    pub scale: Scale,
    pub points: Vec<Point>,
    /// The `x` of the best quarter of the completed points (empty below four completed points, where
    /// a "good region" would be one or two points and mean nothing).
    pub top: Vec<f64>,
    /// The best iteration's value of this dimension, as written.
    pub best_value: Option<Value>,
    /// Where the iteration in progress (or the proposal waiting for the operator) sits.
    pub now: Option<f64>,
    /// The values a stepped numeric range can take, to label the axis with (empty otherwise).
    pub marks: Vec<f64>,
}

/// Everything the search view shows, for the current run.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlot {
    pub metric: String,
    pub target: f64,
    pub direction: Direction,
    pub panels: Vec<Panel>,
    /// The best iteration and its value.
    pub best: Option<(IterationNo, f64)>,
    pub completed: usize,
    pub pruned: usize,
    /// Finished iterations with no value to place: failed ones, and ones stopped by the operator.
    pub failed: usize,
    pub stopped: usize,
}

/// The search plot of `run`, or `None` before its configuration is known. A run with an empty
/// space gets a plot with no panels.
pub fn search_plot(run: &RunState) -> Option<SearchPlot> {
    let cfg = run.config.as_ref()?;
    let placed: Vec<&IterState> = run.iterations.iter().filter(|i| placed(i)).collect();
    let best = run
        .best_iteration()
        .filter(|b| b.status != IterStatus::Pruned)
        .and_then(|b| b.final_value.filter(|v| v.is_finite()).map(|v| (b.no, v)));
    let unplaced = |status: IterStatus| {
        run.iterations
            .iter()
            .filter(|i| i.status == status && !placed.iter().any(|p| p.no == i.no))
            .count()
    };
    let now = in_progress(run);
    let pruned = placed
        .iter()
        .filter(|i| i.status == IterStatus::Pruned)
        .count();
    let panels = cfg
        .tweak
        .space
        .iter()
        .map(|(name, dim)| {
            let now = now.and_then(|n| n.get(name));
            panel(name, dim, &placed, now, cfg, best.map(|b| b.0))
        })
        .collect();
    Some(SearchPlot {
        metric: cfg.metric.name.clone(),
        target: cfg.metric.target,
        direction: cfg.metric.direction,
        panels,
        best,
        completed: placed.len() - pruned,
        pruned,
        failed: unplaced(IterStatus::Failed),
        stopped: unplaced(IterStatus::Stopped),
    })
}

/// The parameters being tried now: the unfinished iteration's, else the pending proposal's.
fn in_progress(run: &RunState) -> Option<&crate::core::config::Params> {
    run.iterations
        .iter()
        .rev()
        .find(|i| !i.status.is_final())
        .map(|i| &i.params)
        .or_else(|| run.pending.as_ref().map(|p| &p.params))
}

/// Finished with a value to place: completed (on target or below it) or pruned.
fn placed(i: &IterState) -> bool {
    matches!(
        i.status,
        IterStatus::Succeeded | IterStatus::BelowTarget | IterStatus::Pruned
    ) && i.final_value.is_some_and(f64::is_finite)
}

fn panel(
    name: &str,
    dim: &Dimension,
    its: &[&IterState],
    now: Option<&Value>,
    cfg: &Config,
    best: Option<IterationNo>,
) -> Panel {
    let tried: Vec<&Value> = its
        .iter()
        .filter_map(|i| i.params.get(name))
        .chain(now)
        .collect();
    let scale = scale(dim, &tried);
    let points: Vec<Point> = its
        .iter()
        .filter_map(|i| {
            let x = scale.x(i.params.get(name)?)?;
            Some(Point {
                x,
                y: i.final_value?,
                iteration: i.no,
                pruned: i.status == IterStatus::Pruned,
                best: Some(i.no) == best,
            })
        })
        .collect();
    let best_value = its
        .iter()
        .find(|i| Some(i.no) == best)
        .and_then(|i| i.params.get(name).cloned());
    Panel {
        name: name.to_string(),
        top: top_quarter(&points, cfg.metric.direction),
        points,
        best_value,
        now: now.and_then(|v| scale.x(v)),
        marks: marks(dim),
        scale,
    }
}

/// The scale of a dimension, stretched to hold every tried value. Dimensions this function does not
/// know by shape are laid out from their tried values alone (see [`scale_of_values`]).
pub fn scale(dim: &Dimension, tried: &[&Value]) -> Scale {
    let declared = match dim {
        Dimension::Values(list) | Dimension::Choices(list) => Some(Scale::Positions(list.clone())),
        _ => dim.scale().map(|s| {
            if s.log && s.lo > 0.0 {
                Scale::Log { lo: s.lo, hi: s.hi }
            } else {
                Scale::Linear { lo: s.lo, hi: s.hi }
            }
        }),
    };
    match declared {
        Some(s) => stretch(s, tried),
        None => scale_of_values(tried),
    }
}

/// Most values a range may have for each to be a tick mark: beyond this the axis gets the default
/// ticks.
const MAX_MARKS: usize = 64;

/// The values of a range with a `step` or a `factor`, from `start` to `max`; empty for other shapes
/// and for ranges with more than [`MAX_MARKS`] values.
fn marks(dim: &Dimension) -> Vec<f64> {
    if matches!(dim, Dimension::Values(_) | Dimension::Choices(_)) {
        return Vec::new();
    }
    let grid = dim.grid().unwrap_or_default();
    let numbers: Vec<f64> = grid.iter().filter_map(Value::as_f64).collect();
    if numbers.len() != grid.len() || numbers.len() > MAX_MARKS {
        return Vec::new();
    }
    numbers
}

/// A scale from tried values alone: positions when any is not a number; log when all are positive
/// and span two decades or more; linear otherwise.
pub fn scale_of_values(tried: &[&Value]) -> Scale {
    let numbers: Vec<f64> = tried.iter().filter_map(|v| v.as_f64()).collect();
    if numbers.len() < tried.len() || numbers.is_empty() {
        return stretch(Scale::Positions(Vec::new()), tried);
    }
    let lo = numbers.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo > 0.0 && hi / lo >= 100.0 {
        Scale::Log { lo, hi }
    } else {
        Scale::Linear { lo, hi }
    }
}

/// `scale` widened so that every tried value has a place.
fn stretch(scale: Scale, tried: &[&Value]) -> Scale {
    let numbers = || {
        tried
            .iter()
            .filter_map(|v| v.as_f64())
            .filter(|x| x.is_finite())
    };
    match scale {
        Scale::Linear { lo, hi } => Scale::Linear {
            lo: numbers().fold(lo, f64::min),
            hi: numbers().fold(hi, f64::max),
        },
        Scale::Log { lo, hi } => Scale::Log {
            lo: numbers().filter(|x| *x > 0.0).fold(lo, f64::min),
            hi: numbers().fold(hi, f64::max),
        },
        Scale::Positions(mut list) => {
            for v in tried {
                if !list.iter().any(|w| same(w, v)) {
                    list.push((*v).clone());
                }
            }
            Scale::Positions(list)
        }
    }
}

/// The `x` of the best quarter (rounded up) of the completed points, best first; pruned points never
/// count, their values being partial.
fn top_quarter(points: &[Point], direction: Direction) -> Vec<f64> {
    let mut done: Vec<&Point> = points.iter().filter(|p| !p.pruned).collect();
    if done.len() < 4 {
        return Vec::new();
    }
    done.sort_by(|a, b| match direction {
        Direction::Maximize => b.y.total_cmp(&a.y),
        Direction::Minimize => a.y.total_cmp(&b.y),
    });
    done.iter()
        .take(done.len().div_ceil(4))
        .map(|p| p.x)
        .collect()
}

/// A tick label: at most three significant digits, scientific outside 0.001..100000 (`3e-4`, `0.05`,
/// `128`, `2.5e6`), no trailing zeros.
pub fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() { "NaN".into() } else { "0".into() };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
            None => s,
        };
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A value of a dimension as a label: numbers through [`tick`], strings bare.
pub fn label(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .unwrap_or_else(|| n.as_f64().map(tick).unwrap_or_default()),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Tick marks for a panel: `(x, label)` in left-to-right order. The range's own values when it has
/// few; else for linear scales both ends and the middle, for log scales the powers of ten inside the
/// range with both ends; for positions every value. The view thins them to what fits.
pub fn ticks(panel: &Panel) -> Vec<(f64, String)> {
    let scale = &panel.scale;
    let marked: Vec<(f64, String)> = panel
        .marks
        .iter()
        .filter_map(|m| Some((scale.x(&serde_json::json!(m))?, tick(*m))))
        .collect();
    if !marked.is_empty() && !matches!(scale, Scale::Positions(_)) {
        return marked;
    }
    scale_ticks(scale)
}

/// The default ticks of a scale (see [`ticks`]).
pub fn scale_ticks(scale: &Scale) -> Vec<(f64, String)> {
    match scale {
        Scale::Linear { lo, hi } if hi > lo => {
            let mid = (lo + hi) / 2.0;
            vec![(*lo, tick(*lo)), (mid, tick(mid)), (*hi, tick(*hi))]
        }
        Scale::Linear { lo, .. } => vec![(*lo, tick(*lo))],
        Scale::Log { lo, hi } => {
            let (a, b) = (lo.log10(), hi.log10());
            let mut out = vec![(a, tick(*lo))];
            let mut e = a.floor() + 1.0;
            while e < b - 1e-9 {
                // Skip a power too close to an end to have a label of its own.
                if e - a > 0.15 * (b - a) && b - e > 0.15 * (b - a) {
                    out.push((e, tick(10f64.powf(e))));
                }
                e += 1.0;
            }
            if b > a {
                out.push((b, tick(*hi)));
            }
            out
        }
        Scale::Positions(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, label(v)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn range(start: f64, max: f64, factor: Option<f64>) -> Dimension {
        Dimension::Range {
            start,
            max,
            step: factor.is_none().then_some(1.0),
            factor,
            integer: true,
        }
    }

    #[test]
    fn the_plot_of_a_run_places_completed_and_pruned_points_and_counts_the_rest() {
        let s = crate::tui::views::fixtures::searched_state();
        let p = search_plot(s.pipeline.run.as_ref().unwrap()).unwrap();
        assert_eq!((p.completed, p.pruned, p.failed, p.stopped), (5, 1, 1, 0));
        assert_eq!(p.best, Some((IterationNo(5), 0.9633)));
        let names: Vec<&str> = p.panels.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["epochs", "hidden_units", "lr"]);
        let h = &p.panels[1];
        assert_eq!(h.scale, Scale::Log { lo: 8.0, hi: 64.0 });
        assert_eq!(h.points.len(), 6, "five completed and one pruned");
        let pruned: Vec<&Point> = h.points.iter().filter(|x| x.pruned).collect();
        assert_eq!(pruned.len(), 1);
        assert!((pruned[0].x - 64f64.log10()).abs() < 1e-12);
        assert_eq!(pruned[0].y, 0.62, "the last value it reported");
        assert_eq!(h.points.iter().filter(|x| x.best).count(), 1);
        assert_eq!(h.best_value, Some(json!(32)));
        assert_eq!(
            h.top,
            vec![32f64.log10(); 2],
            "iterations 5 and 4 both used 32"
        );
        assert!(
            (h.now.unwrap() - 16f64.log10()).abs() < 1e-12,
            "iteration 8 trains 16"
        );
        let lr = &p.panels[2];
        assert_eq!(lr.scale.x(&json!(0.05)), Some(2.0));
        assert_eq!(lr.best_value, Some(json!(0.1)));
    }

    #[test]
    fn a_factor_range_is_logarithmic_and_a_step_range_linear() {
        let v = [json!(8), json!(128)];
        let tried: Vec<&Value> = v.iter().collect();
        let s = scale(&range(8.0, 64.0, Some(2.0)), &tried);
        assert_eq!(s, Scale::Log { lo: 8.0, hi: 128.0 }, "stretched to 128");
        assert!((s.x(&json!(100)).unwrap() - 2.0).abs() < 1e-12);
        let s = scale(&range(4.0, 16.0, None), &tried);
        assert_eq!(s, Scale::Linear { lo: 4.0, hi: 128.0 });
    }

    #[test]
    fn lists_are_positions_in_written_order_with_strays_appended() {
        let dim = Dimension::Values(vec![json!(0.5), json!(0.05), json!(0.005)]);
        let v = [json!(0.05), json!("adam"), json!(0.005)];
        let tried: Vec<&Value> = v.iter().collect();
        let s = scale(&dim, &tried);
        assert_eq!(s.x(&json!(0.5)), Some(0.0));
        assert_eq!(s.x(&json!(0.005)), Some(2.0));
        assert_eq!(s.x(&json!("adam")), Some(3.0));
        assert_eq!(s.bounds(), (-0.5, 3.5));
        assert_eq!(s.x(&json!("sgd")), None);
        assert!(!s.ordered());
    }

    #[test]
    fn numbers_match_across_integer_and_float_spellings() {
        let s = Scale::Positions(vec![json!(5), json!(15)]);
        assert_eq!(s.x(&json!(15.0)), Some(1.0));
    }

    #[test]
    fn an_unknown_shape_falls_back_to_the_tried_values() {
        let v = [json!(1e-4), json!(3e-2)];
        let tried: Vec<&Value> = v.iter().collect();
        assert_eq!(scale_of_values(&tried), Scale::Log { lo: 1e-4, hi: 3e-2 });
        let v = [json!(2), json!(9)];
        let tried: Vec<&Value> = v.iter().collect();
        assert_eq!(scale_of_values(&tried), Scale::Linear { lo: 2.0, hi: 9.0 });
        let v = [json!("sgd"), json!("adam"), json!("sgd")];
        let tried: Vec<&Value> = v.iter().collect();
        assert_eq!(
            scale_of_values(&tried),
            Scale::Positions(vec![json!("sgd"), json!("adam")])
        );
    }

    #[test]
    fn ticks_read_like_numbers_people_write() {
        assert_eq!(tick(0.0003), "3e-4");
        assert_eq!(tick(0.00025), "2.5e-4");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(0.1234), "0.123");
        assert_eq!(tick(128.0), "128");
        assert_eq!(tick(36.0), "36");
        assert_eq!(tick(2_500_000.0), "2.5e6");
        let log = scale_ticks(&Scale::Log { lo: 1e-4, hi: 0.1 });
        let labels: Vec<&str> = log.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1e-4", "0.001", "0.01", "0.1"]);
        let lin = scale_ticks(&Scale::Linear { lo: 4.0, hi: 16.0 });
        assert_eq!(lin[1], (10.0, "10".to_string()));
    }

    #[test]
    fn number_and_choice_dimensions_get_their_own_axes() {
        let log = Dimension::Number {
            min: 1e-4,
            max: 0.1,
            log: true,
            step: None,
            integer: false,
            start: None,
        };
        assert_eq!(scale(&log, &[]), Scale::Log { lo: 1e-4, hi: 0.1 });
        assert!(marks(&log).is_empty(), "continuous");
        let stepped = Dimension::Number {
            min: 8.0,
            max: 32.0,
            log: false,
            step: Some(8.0),
            integer: true,
            start: None,
        };
        assert_eq!(scale(&stepped, &[]), Scale::Linear { lo: 8.0, hi: 32.0 });
        assert_eq!(marks(&stepped), [8.0, 16.0, 24.0, 32.0]);
        let choices = Dimension::Choices(vec![json!("adam"), json!("sgd")]);
        assert_eq!(
            scale(&choices, &[]),
            Scale::Positions(vec![json!("adam"), json!("sgd")])
        );
    }

    #[test]
    fn stepped_ranges_mark_their_own_values() {
        assert_eq!(marks(&range(8.0, 64.0, Some(2.0))), [8.0, 16.0, 32.0, 64.0]);
        assert_eq!(marks(&range(4.0, 7.0, None)), [4.0, 5.0, 6.0, 7.0]);
        assert!(marks(&range(1.0, 1000.0, None)).is_empty(), "too many");
        assert!(marks(&Dimension::Values(vec![serde_json::json!(1)])).is_empty());
    }

    #[test]
    fn the_top_quarter_follows_the_direction_and_ignores_pruned_points() {
        let p = |x: f64, y: f64, pruned: bool| Point {
            x,
            y,
            iteration: IterationNo(1),
            pruned,
            best: false,
        };
        let pts = [
            p(1.0, 0.5, false),
            p(2.0, 0.9, false),
            p(3.0, 0.7, false),
            p(4.0, 0.99, true),
            p(5.0, 0.8, false),
            p(6.0, 0.6, false),
        ];
        assert_eq!(top_quarter(&pts, Direction::Maximize), vec![2.0, 5.0]);
        assert_eq!(top_quarter(&pts, Direction::Minimize), vec![1.0, 6.0]);
        assert!(top_quarter(&pts[..4], Direction::Maximize).is_empty());
    }
}
