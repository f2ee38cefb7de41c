//! The search space's dimensions: how `[tweak.space]` entries are read and checked, and what the
//! strategies ask of a dimension (its start, its grid of values, its bounds, whether it holds a value).
//!
//! Four kinds, two of them kept for files written before the others existed:
//! - `{ start = 8, max = 64, factor = 2 }` / `{ start = 1, max = 5, step = 1 }`: a legacy range from
//!   `start` up to `max`;
//! - `{ values = [25, 9, 3] }`: an ordered list;
//! - `{ min = 1e-4, max = 1e-1, log = true }`, `{ min = 8, max = 256, step = 8 }`: a number between
//!   `min` and `max`, on a log scale or a step grid, integral when written with whole numbers;
//! - `{ choices = ["adam", "sgd"] }`: unordered categories.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Finite dimensions with more values than this are searched like continuous ones (sampled, then
/// snapped to their grid), so that no strategy ever lists millions of points.
pub const MAX_GRID: usize = 100_000;

/// One tweakable parameter. Invariant (checked on load): bounds are finite and ordered, the start lies
/// within them, a range can move (`step > 0` or `factor > 1`), a log scale starts above 0, lists are
/// not empty and choices hold no duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Dimension {
    /// Numbers from `start` towards `max`, adding `step` or multiplying by `factor`.
    Range {
        start: f64,
        max: f64,
        step: Option<f64>,
        factor: Option<f64>,
        /// Whether values are whole numbers (all of start, max and step written without a fraction).
        integer: bool,
    },
    /// An explicit, ordered list of values tried in turn (e.g. `k = { values = [25, 9, 3, 1] }`).
    Values(Vec<Value>),
    /// A number in `[min, max]`, on a log scale (`log`) or a grid of `step` from `min`; whole numbers
    /// when min, max and step are written as such. `start: None` means: the literal's value in the
    /// code when the dimension is bound to the source, else [`Dimension::default_start`].
    Number {
        min: f64,
        max: f64,
        log: bool,
        step: Option<f64>,
        integer: bool,
        start: Option<f64>,
    },
    /// Unordered categories; the first is the start.
    Choices(Vec<Value>),
}

/// How a numeric dimension spreads its values: strategies sample in `[lo, hi]` on this scale and
/// snap the result with [`Dimension::snap`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    /// Values spread evenly on a log scale (log dimensions and `factor` ranges).
    pub log: bool,
}

impl Scale {
    /// `x` as a position in [0, 1] (0 at `lo`); 0 for a degenerate interval.
    pub fn unit(&self, x: f64) -> f64 {
        let (a, b, x) = if self.log {
            (self.lo.ln(), self.hi.ln(), x.max(self.lo).ln())
        } else {
            (self.lo, self.hi, x)
        };
        if b > a {
            ((x - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The number at position `u` in [0, 1].
    pub fn at(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        if self.log {
            (self.lo.ln() + u * (self.hi.ln() - self.lo.ln())).exp()
        } else {
            self.lo + u * (self.hi - self.lo)
        }
    }
}

/// A `[tweak.space]` entry as written: the dimension keys plus the optional binding keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDimension {
    pub(super) start: Option<toml::Value>,
    pub(super) min: Option<toml::Value>,
    pub(super) max: Option<toml::Value>,
    pub(super) step: Option<toml::Value>,
    pub(super) factor: Option<f64>,
    pub(super) log: Option<bool>,
    pub(super) values: Option<Vec<toml::Value>>,
    pub(super) choices: Option<Vec<toml::Value>>,
    pub(super) source: Option<String>,
    pub(super) call: Option<String>,
    pub(super) arg: Option<String>,
    pub(super) index: Option<i64>,
    pub(super) assign: Option<String>,
    pub(super) repeat: Option<RawRepeat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepeat {
    pub(super) start: i64,
    pub(super) max: i64,
    pub(super) min: Option<i64>,
}

fn as_number(v: &toml::Value, what: &str) -> Result<(f64, bool), String> {
    match v {
        toml::Value::Integer(i) => Ok((*i as f64, true)),
        toml::Value::Float(f) if f.is_finite() => Ok((*f, false)),
        toml::Value::Float(f) => Err(format!("`{what}` must be a finite number, found {f}")),
        other => Err(format!("`{what}` must be a number, found {other}")),
    }
}

fn as_json(values: Vec<toml::Value>) -> Result<Vec<Value>, String> {
    values
        .into_iter()
        .map(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
        .collect()
}

/// The dimension a `[tweak.space]` entry describes (its binding keys already taken out).
pub(super) fn dimension(raw: RawDimension) -> Result<Dimension, String> {
    if raw.choices.is_some() {
        return choices(raw);
    }
    if raw.values.is_some() {
        return values(raw);
    }
    if raw.min.is_some() {
        return number_dimension(raw);
    }
    if raw.log.is_some() {
        return Err(
            "`log` needs `min` and `max`, e.g. `lr = { min = 1e-4, max = 1e-1, log = true }`"
                .into(),
        );
    }
    range(raw)
}

fn values(raw: RawDimension) -> Result<Dimension, String> {
    if raw.start.is_some()
        || raw.min.is_some()
        || raw.max.is_some()
        || raw.step.is_some()
        || raw.factor.is_some()
        || raw.log.is_some()
    {
        return Err(
            "a dimension has either `values = [...]` or `start`/`max`/`step`|`factor`, not both"
                .into(),
        );
    }
    let values = raw.values.unwrap_or_default();
    if values.is_empty() {
        return Err("`values` must not be empty".into());
    }
    Ok(Dimension::Values(as_json(values)?))
}

fn choices(raw: RawDimension) -> Result<Dimension, String> {
    if raw.values.is_some() {
        return Err("give `choices` (unordered) or `values` (an ordered list), not both".into());
    }
    if raw.start.is_some()
        || raw.min.is_some()
        || raw.max.is_some()
        || raw.step.is_some()
        || raw.factor.is_some()
        || raw.log.is_some()
    {
        return Err(
            "`choices = [...]` stands alone (the first choice is the start): drop `start`, `min`, `max`, `step`, `factor` and `log`"
                .into(),
        );
    }
    let choices = as_json(raw.choices.unwrap_or_default())?;
    if choices.is_empty() {
        return Err("`choices` must not be empty".into());
    }
    for (i, c) in choices.iter().enumerate() {
        if choices[..i].iter().any(|d| same_value(c, d)) {
            return Err(format!("`choices` lists {c} twice"));
        }
    }
    Ok(Dimension::Choices(choices))
}

fn number_dimension(raw: RawDimension) -> Result<Dimension, String> {
    if raw.factor.is_some() {
        return Err(
            "`factor` belongs to `start`/`max` ranges; with `min` and `max` write `log = true` for a geometric scale"
                .into(),
        );
    }
    let (min, min_int) = as_number(raw.min.as_ref().unwrap_or(&toml::Value::Integer(0)), "min")?;
    let (max, max_int) = match &raw.max {
        Some(m) => as_number(m, "max")?,
        None => {
            return Err("a `min` needs a `max`, e.g. `{ min = 8, max = 256, step = 8 }`".into());
        }
    };
    let log = raw.log.unwrap_or(false);
    let step = match &raw.step {
        Some(s) => Some(as_number(s, "step")?),
        None => None,
    };
    if min >= max {
        return Err(format!("`min` ({min}) must be below `max` ({max})"));
    }
    if log && min <= 0.0 {
        return Err(format!(
            "a log scale needs `min` above 0, found {min}; e.g. `min = 1e-5`"
        ));
    }
    if let Some((s, _)) = step {
        if log {
            return Err(
                "give `step` (an even grid) or `log = true` (a geometric scale), not both".into(),
            );
        }
        if s <= 0.0 || s > max - min {
            return Err(format!(
                "`step` must be above 0 and at most `max` - `min` ({}), found {s}",
                max - min
            ));
        }
    }
    let integer = min_int && max_int && step.is_none_or(|(_, i)| i);
    let start = match &raw.start {
        Some(s) => Some(as_number(s, "start")?.0),
        None => None,
    };
    let dim = Dimension::Number {
        min,
        max,
        log,
        step: step.map(|(s, _)| s),
        integer,
        start,
    };
    if let Some(s) = start
        && !dim.contains(&number(s, false))
    {
        return Err(format!(
            "`start` ({s}) is not a value of the dimension: it must lie in [{min}, {max}]{}",
            match (integer, step) {
                (_, Some((st, _))) => format!(" on the grid `min` + k × {st}"),
                (true, None) => " and be a whole number".into(),
                (false, None) => String::new(),
            }
        ));
    }
    Ok(dim)
}

/// A legacy range: `start`, `max` and `step` or `factor`.
fn range(raw: RawDimension) -> Result<Dimension, String> {
    let start = raw.start.as_ref().ok_or(
        "a dimension needs `min`/`max`, `start`/`max` with `step` or `factor`, `values = [...]` or `choices = [...]`",
    )?;
    let max = raw.max.as_ref().ok_or("a range dimension needs `max`")?;
    let (start, si) = as_number(start, "start")?;
    let (max, mi) = as_number(max, "max")?;
    let (step, sti) = match &raw.step {
        Some(s) => {
            let (v, i) = as_number(s, "step")?;
            (Some(v), i)
        }
        None => (None, true),
    };
    match (step, raw.factor) {
        (Some(_), Some(_)) => return Err("give `step` or `factor`, not both".into()),
        (None, None) => return Err("a range dimension needs `step` or `factor`".into()),
        (Some(s), None) if s.is_nan() || s <= 0.0 => {
            return Err(format!("`step` must be > 0, found {s}"));
        }
        (None, Some(f)) if f.is_nan() || f <= 1.0 => {
            return Err(format!("`factor` must be > 1, found {f}"));
        }
        _ => {}
    }
    if start > max {
        return Err(format!("`start` ({start}) is above `max` ({max})"));
    }
    if raw.factor.is_some() && start <= 0.0 {
        return Err("`factor` needs a `start` above 0".into());
    }
    Ok(Dimension::Range {
        start,
        max,
        step,
        factor: raw.factor,
        integer: si && mi && sti,
    })
}

impl Dimension {
    /// The value of the first iteration when nothing else says where to start.
    pub fn start(&self) -> Value {
        match self {
            Dimension::Range { start, integer, .. } => number(*start, *integer),
            Dimension::Values(v) | Dimension::Choices(v) => v[0].clone(),
            // The user's own start is kept as written; only a stepped or whole number snaps.
            Dimension::Number {
                start: Some(s),
                step: None,
                integer: false,
                ..
            } => number(tidy(*s), false),
            Dimension::Number { start: Some(s), .. } => self.snap(*s),
            Dimension::Number { start: None, .. } => self.default_start(),
        }
    }

    /// Where a number dimension with no `start` (and no literal to take it from) begins: `min` on a
    /// linear scale (the cheapest model first, as a person would), the geometric mean on a log scale
    /// (the middle of the orders of magnitude).
    pub fn default_start(&self) -> Value {
        match self {
            Dimension::Number {
                min,
                max,
                log: true,
                ..
            } => self.snap((min * max).sqrt()),
            Dimension::Number { min, .. } => self.snap(*min),
            other => other.start(),
        }
    }

    /// Whether the dimension was written without a start of its own (a number without `start`, or
    /// choices): a source-bound one then starts from the literal's value in the code.
    pub fn takes_start_from_source(&self) -> bool {
        matches!(
            self,
            Dimension::Number { start: None, .. } | Dimension::Choices(_)
        )
    }

    /// Whether the dimension is a set of categories with no order.
    pub fn is_categorical(&self) -> bool {
        matches!(self, Dimension::Choices(_))
    }

    /// The interval and scale of a numeric dimension; `None` for lists and choices.
    pub fn scale(&self) -> Option<Scale> {
        match self {
            Dimension::Range {
                start, max, factor, ..
            } => Some(Scale {
                lo: *start,
                hi: *max,
                log: factor.is_some(),
            }),
            Dimension::Number { min, max, log, .. } => Some(Scale {
                lo: *min,
                hi: *max,
                log: *log,
            }),
            Dimension::Values(_) | Dimension::Choices(_) => None,
        }
    }

    /// Every value of a finite dimension, in order (ranges with a step or factor, lists, choices,
    /// integral or stepped numbers); `None` for a continuous one or one with more than [`MAX_GRID`]
    /// values.
    pub fn grid(&self) -> Option<Vec<Value>> {
        match self {
            Dimension::Values(v) | Dimension::Choices(v) => Some(v.clone()),
            Dimension::Range { start, integer, .. } => {
                let mut out = vec![number(*start, *integer)];
                let mut v = *start;
                while let Some(next) = self.range_next(v) {
                    if out.len() >= MAX_GRID {
                        return None;
                    }
                    out.push(number(next, *integer));
                    v = next;
                }
                Some(out)
            }
            Dimension::Number {
                min,
                max,
                step,
                integer,
                ..
            } => {
                let unit = match (step, integer) {
                    (Some(s), _) => *s,
                    (None, true) => 1.0,
                    (None, false) => return None,
                };
                let count = ((max - min) / unit + 1e-9).floor() as usize + 1;
                if count > MAX_GRID {
                    return None;
                }
                Some(
                    (0..count)
                        .map(|i| number(tidy(min + i as f64 * unit), *integer))
                        .collect(),
                )
            }
        }
    }

    /// The legacy range's value one step after `v` (added `step` or multiplied `factor`, rounded
    /// for integers, clamped to `max`); `None` at `max` or for other dimensions.
    pub fn range_next(&self, v: f64) -> Option<f64> {
        let Dimension::Range {
            max,
            step,
            factor,
            integer,
            ..
        } = self
        else {
            return None;
        };
        if v >= *max {
            return None;
        }
        let mut next = match (step, factor) {
            (Some(s), _) => v + s,
            (None, Some(f)) => v * f,
            (None, None) => return None,
        };
        if *integer {
            next = next.round();
            if next <= v {
                // A small factor on a small integer (2 × 1.2) would otherwise never move.
                next = v.floor() + 1.0;
            }
        } else {
            next = tidy(next);
        }
        next = next.min(*max);
        (next > v).then_some(next)
    }

    /// Whether `v` is a value of the dimension: a listed value or choice; a number within the
    /// bounds, whole for integral dimensions and on the grid of a stepped number. (A legacy range
    /// accepts any number between `start` and `max`, as an operator's edit may set.)
    pub fn contains(&self, v: &Value) -> bool {
        match self {
            Dimension::Values(list) | Dimension::Choices(list) => {
                list.iter().any(|x| same_value(x, v))
            }
            Dimension::Range {
                start,
                max,
                integer,
                ..
            } => v
                .as_f64()
                .is_some_and(|x| x >= *start && x <= *max && (!integer || x.fract() == 0.0)),
            Dimension::Number {
                min,
                max,
                step,
                integer,
                ..
            } => v.as_f64().is_some_and(|x| {
                let tol = 1e-9 * (max - min).abs().max(1e-300);
                let on_step = step.is_none_or(|s| {
                    let k = (x - min) / s;
                    (k - k.round()).abs() * s <= tol
                });
                x >= min - tol && x <= max + tol && (!integer || x.fract() == 0.0) && on_step
            }),
        }
    }

    /// The dimension's value nearest to the number `x`: clamped into the bounds, then rounded to a
    /// whole number, the step grid or (legacy ranges) the nearest value the range reaches. Lists
    /// and choices take the element at position `x` (clamped).
    pub fn snap(&self, x: f64) -> Value {
        match self {
            Dimension::Values(list) | Dimension::Choices(list) => {
                let i = (x.round().max(0.0) as usize).min(list.len() - 1);
                list[i].clone()
            }
            Dimension::Number {
                min,
                max,
                step,
                integer,
                log,
                ..
            } => {
                let mut y = x.clamp(*min, *max);
                if let Some(s) = step {
                    let k = ((y - min) / s).round();
                    y = tidy(min + k * s);
                    if y > *max + 1e-9 * (max - min) {
                        y = tidy(min + (k - 1.0) * s);
                    }
                }
                if *integer {
                    y = y.round();
                } else if step.is_none() {
                    y = readable(y, *min, *max, *log);
                } else {
                    y = tidy(y);
                }
                number(y, *integer)
            }
            Dimension::Range { start, integer, .. } => {
                let target = x;
                let mut best = *start;
                let mut v = *start;
                let mut rounds = 0;
                while let Some(next) = self.range_next(v) {
                    if (next - target).abs() < (best - target).abs() {
                        best = next;
                    }
                    if next > target || rounds > MAX_GRID {
                        break;
                    }
                    v = next;
                    rounds += 1;
                }
                number(best, *integer)
            }
        }
    }

    /// The values whose JSON is longest: every listed value, or a number's two ends (numbers in
    /// between are no longer, give or take a digit).
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Dimension::Values(v) | Dimension::Choices(v) => v.clone(),
            Dimension::Range {
                start,
                max,
                integer,
                ..
            } => vec![number(*start, *integer), number(*max, *integer)],
            Dimension::Number {
                min, max, integer, ..
            } => vec![number(*min, *integer), number(*max, *integer)],
        }
    }
}

/// A JSON number, whole when the dimension is integral.
pub fn number(v: f64, integer: bool) -> Value {
    if integer {
        Value::from(v.round() as i64)
    } else {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// A continuous value as a person would write it: three significant digits on a log scale
/// (`0.00522`, not `0.005216636201`), steps of a thousandth of the range (to a power of ten) on a
/// linear one, kept within `[min, max]`. Still about a thousand distinct values per decade or range,
/// so a search never runs out of points for the rounding.
fn readable(y: f64, min: f64, max: f64, log: bool) -> f64 {
    let r = if log {
        format!("{y:.2e}").parse().unwrap_or(y)
    } else {
        let q = 10f64.powf(((max - min) / 1000.0).log10().floor());
        tidy((y / q).round() * q)
    };
    tidy(r.clamp(min, max))
}

/// Rounds to 10 significant digits, so that `0.1 + 0.2` is proposed as `0.3`, not
/// `0.30000000000000004`, while keeping every digit a person would write in a config.
pub fn tidy(x: f64) -> f64 {
    format!("{x:.9e}").parse().unwrap_or(x)
}

/// JSON equality, except that numbers compare by value (`16` equals `16.0`), so that a point edited
/// by hand or written by another version still counts as tried.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
