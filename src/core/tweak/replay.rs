//! Tabular replay of a strategy, the way published HPO benchmarks measure search (Eggensperger et
//! al. 2015, "Efficient benchmarking of hyperparameter optimizers via surrogates"; Klein and Hutter
//! 2019, "Tabular benchmarks for joint architecture and hyperparameter optimization"): every point
//! of a discrete space was trained once and saved as a table; a trial is a look-up, its cost the
//! recorded training seconds. `benches/search.rs` reads the tables and prints the figures.
//!
//! Protocol (shared with the Optuna script of the benchmark): trial 1 is the start row
//! `splitmix64(seed) % rows`; a run succeeds at the first trial whose value reaches the target (a
//! pruned trial never does); the budget is [`BUDGET`] trials. Values are higher-is-better.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::rng::splitmix64;
use super::{Search, Strategy, Tried, same_value};
use crate::core::config::{Dimension, Direction, Metric, Params};

/// Trials per run.
pub const BUDGET: usize = 60;

/// One configuration's recorded training.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub params: Params,
    pub value: f64,
    pub seconds: f64,
    /// The metric after each epoch; the last equals `value`.
    pub curve: Vec<f64>,
}

/// A landscape: the space and one row per point of it.
#[derive(Debug, Clone)]
pub struct Table {
    pub space: BTreeMap<String, Dimension>,
    pub rows: Vec<Row>,
    /// Row by the grid position of each dimension (dimensions in name order).
    index: HashMap<Vec<usize>, usize>,
    grids: Vec<Vec<Value>>,
}

/// How one decides whether to stop an iteration early from its curve so far and the curves of the
/// run's finished iterations; `Some(value)` = stopped at the curve's last epoch with that value.
pub type Pruner<'a> = &'a dyn Fn(&[&[f64]], &[f64]) -> Option<f64>;

impl Table {
    /// Reads a table: header `<dims…>,value,seconds,curve`, one row per configuration, numbers
    /// matched to the dimensions' grids by value. Errors name the line.
    pub fn from_csv(space: BTreeMap<String, Dimension>, text: &str) -> Result<Table, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or("empty table")?;
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        let grids: Vec<Vec<Value>> = space
            .iter()
            .map(|(n, d)| d.grid().ok_or(format!("dimension `{n}` is not finite")))
            .collect::<Result<_, _>>()?;
        let dim_columns: Vec<usize> = space
            .keys()
            .map(|n| {
                columns
                    .iter()
                    .position(|c| c == n)
                    .ok_or(format!("line 1: no column `{n}`"))
            })
            .collect::<Result<_, _>>()?;
        let col = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .ok_or(format!("line 1: no column `{name}`"))
        };
        let (value_col, seconds_col, curve_col) = (col("value")?, col("seconds")?, col("curve")?);
        let mut table = Table {
            space,
            rows: Vec::new(),
            index: HashMap::new(),
            grids,
        };
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let at = |c: usize| cells.get(c).copied().unwrap_or("");
            let number = |c: usize| {
                at(c)
                    .parse::<f64>()
                    .map_err(|_| format!("line {}: `{}` is not a number", i + 1, at(c)))
            };
            let mut position = Vec::new();
            let mut params = Params::new();
            for ((name, grid), c) in table.space.keys().zip(&table.grids).zip(&dim_columns) {
                let p = grid.iter().position(|v| cell_is(at(*c), v)).ok_or(format!(
                    "line {}: `{}` is not a value of `{name}`",
                    i + 1,
                    at(*c)
                ))?;
                position.push(p);
                params.insert(name.clone(), grid[p].clone());
            }
            let curve: Vec<f64> = at(curve_col)
                .split(';')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("line {}: a bad curve", i + 1))?;
            let row = Row {
                params,
                value: number(value_col)?,
                seconds: number(seconds_col)?,
                curve,
            };
            table.index.insert(position, table.rows.len());
            table.rows.push(row);
        }
        if table.rows.is_empty() {
            return Err("no rows".into());
        }
        Ok(table)
    }

    /// The row of the point `params` (its values on the space's dimensions).
    pub fn row_of(&self, params: &Params) -> Option<&Row> {
        let position: Vec<usize> = self
            .space
            .keys()
            .zip(&self.grids)
            .map(|(n, grid)| {
                let v = params.get(n)?;
                grid.iter().position(|g| same_value(g, v))
            })
            .collect::<Option<_>>()?;
        self.index.get(&position).map(|&i| &self.rows[i])
    }

    /// The fraction of rows whose value reaches `target`.
    pub fn share_reaching(&self, target: f64) -> f64 {
        self.rows.iter().filter(|r| r.value >= target).count() as f64 / self.rows.len() as f64
    }
}

fn cell_is(cell: &str, v: &Value) -> bool {
    match (cell.parse::<f64>(), v.as_f64()) {
        (Ok(c), Some(x)) => (c - x).abs() <= 1e-9 * c.abs().max(x.abs()).max(1e-300),
        _ => v.as_str() == Some(cell) || v.as_bool().is_some_and(|b| b.to_string() == cell),
    }
}

/// What one run found: per target, the trial that first reached it and the seconds spent until
/// then; and the totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub hits: Vec<Option<(usize, f64)>>,
    pub trials: usize,
    pub seconds: f64,
    pub pruned: usize,
}

/// Replays `strategy` on `table` from the seed's start row until every target is reached, the
/// budget is spent or the strategy is exhausted. `pruner` (if any) may stop a trial after any
/// epoch: it then costs only the epochs run and reports its partial value.
pub fn replay(
    table: &Table,
    strategy: &mut dyn Strategy,
    seed: u64,
    targets: &[f64],
    pruner: Option<Pruner<'_>>,
) -> Result<Outcome, String> {
    let metric = Metric {
        name: "value".into(),
        direction: Direction::Maximize,
        target: targets.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        pattern: None,
        range: None,
        file: None,
    };
    let start = &table.rows[(splitmix64(seed) % table.rows.len() as u64) as usize];
    let mut out = Outcome {
        hits: vec![None; targets.len()],
        trials: 0,
        seconds: 0.0,
        pruned: 0,
    };
    let mut history: Vec<Tried> = Vec::new();
    let mut curves: Vec<Vec<f64>> = Vec::new();
    let mut current = start.params.clone();
    loop {
        let row = table
            .row_of(&current)
            .ok_or_else(|| format!("no row for {current:?}"))?;
        let (value, epochs, pruned) = run(row, &curves, pruner);
        out.trials += 1;
        out.seconds += row.seconds * epochs as f64 / row.curve.len().max(1) as f64;
        out.pruned += usize::from(pruned);
        for (hit, target) in out.hits.iter_mut().zip(targets) {
            if hit.is_none() && !pruned && value >= *target {
                *hit = Some((out.trials, out.seconds));
            }
        }
        curves.push(row.curve[..epochs.min(row.curve.len())].to_vec());
        let mut t = Tried::new(current.clone(), Some(value), None);
        t.pruned = pruned;
        t.seconds = Some(row.seconds);
        history.push(t);
        if out.trials >= BUDGET || out.hits.iter().all(Option::is_some) {
            return Ok(out);
        }
        let search = Search {
            space: &table.space,
            metric: &metric,
            current: &current,
            history: &history,
            pending: &[],
            seed,
        };
        match strategy.propose(&search, 1).into_iter().next() {
            Some(p) => current = p.params,
            None => return Ok(out),
        }
    }
}

/// One trial: its value, the epochs it ran and whether it was pruned.
fn run(row: &Row, finished: &[Vec<f64>], pruner: Option<Pruner<'_>>) -> (f64, usize, bool) {
    let n = row.curve.len();
    if let Some(prune) = pruner {
        let others: Vec<&[f64]> = finished.iter().map(Vec::as_slice).collect();
        for e in 1..n {
            if let Some(v) = prune(&others, &row.curve[..e]) {
                return (v, e, true);
            }
        }
    }
    (row.value, n.max(1), false)
}

/// Median, 90th percentile (linear interpolation between ranks, as numpy computes it) of `xs`.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tweak::{Gp, Grow, Random};
    use serde_json::json;

    /// A synthetic 8 × 6 × 3 landscape with one ridge (like an SVC's C × gamma): the value peaks
    /// where `a + b` is near 9, the `kind` adds a little. Seconds grow with `a`.
    fn synthetic() -> Table {
        let space: BTreeMap<String, Dimension> = [
            (
                "a".to_string(),
                Dimension::Values((0..8).map(|i| json!(10f64.powi(i - 3))).collect()),
            ),
            (
                "b".to_string(),
                Dimension::Number {
                    min: 1.0,
                    max: 6.0,
                    log: false,
                    step: Some(1.0),
                    integer: true,
                    start: None,
                },
            ),
            (
                "kind".to_string(),
                Dimension::Choices(vec![json!("x"), json!("y"), json!("z")]),
            ),
        ]
        .into();
        let mut csv = String::from("kind,a,b,value,seconds,curve\n");
        for i in 0..8 {
            for b in 1..=6 {
                for (k, kind) in ["x", "y", "z"].iter().enumerate() {
                    let a = 10f64.powi(i - 3);
                    let v = 0.9 - 0.02 * ((i + b) as f64 - 9.0).abs() + 0.01 * k as f64;
                    let curve = format!("{};{};{v}", v - 0.2, v - 0.1);
                    csv.push_str(&format!("{kind},{a},{b},{v},{},{curve}\n", 1.0 + i as f64));
                }
            }
        }
        Table::from_csv(space, &csv).unwrap()
    }

    #[test]
    fn rows_are_found_by_value() {
        let t = synthetic();
        assert_eq!(t.rows.len(), 144);
        let p: Params = [
            ("a".to_string(), json!(0.01)),
            ("b".to_string(), json!(3)),
            ("kind".to_string(), json!("y")),
        ]
        .into();
        let row = t.row_of(&p).unwrap();
        assert!((row.value - (0.9 - 0.02 * 5.0 + 0.01)).abs() < 1e-12);
        assert!((t.share_reaching(0.92) - 5.0 / 144.0).abs() < 1e-12);
        let bad = "a,b,kind,value,seconds,curve\n7,1,x,0.5,1,0.5\n";
        let e = Table::from_csv(t.space.clone(), bad).unwrap_err();
        assert_eq!(e, "line 2: `7` is not a value of `a`");
    }

    #[test]
    fn every_strategy_replays_and_the_model_beats_random() {
        let t = synthetic();
        let targets = [0.9, 0.92];
        let mut trials = BTreeMap::new();
        for mut s in [
            Box::new(Gp) as Box<dyn Strategy>,
            Box::new(Random),
            Box::new(Grow),
        ] {
            let mut needed = Vec::new();
            for seed in 0..20 {
                let o = replay(&t, s.as_mut(), seed, &targets, None).unwrap();
                assert!(o.trials <= BUDGET);
                assert_eq!(o.pruned, 0);
                needed.push(o.hits[1].map_or(BUDGET as f64, |(n, _)| n as f64));
                if let (Some((a, sa)), Some((b, sb))) = (o.hits[0], o.hits[1]) {
                    assert!(a <= b && sa <= sb);
                }
            }
            trials.insert(s.name(), quantile(&needed, 0.5));
        }
        assert!(trials["gp"] < trials["random"], "{trials:?}");
    }

    #[test]
    fn a_pruned_trial_costs_its_epochs_and_never_reaches_the_target() {
        let t = synthetic();
        let always = |_: &[&[f64]], c: &[f64]| (c.len() == 1).then(|| c[0]);
        let o = replay(&t, &mut Random, 1, &[0.0], Some(&always)).unwrap();
        assert_eq!(o.hits, vec![None]);
        assert_eq!(o.trials, BUDGET);
        assert_eq!(o.pruned, BUDGET);
        assert!(o.seconds > 0.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert!((quantile(&[1.0, 2.0, 3.0, 4.0], 0.9) - 3.7).abs() < 1e-12);
    }
}
