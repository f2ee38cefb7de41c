//! Search benchmark: every strategy replayed on the tabular landscapes of `benches/landscapes/`
//! (`<name>.csv`: one row per configuration, trained once; `<name>.toml`: its `[tweak.space]` and
//! `targets`), beside Optuna's samplers when `benches/results/optuna.csv` holds their runs.
//!
//! `cargo bench --bench search` (100 seeds; `-- --quick` for 20, `-- --seeds N` for N; `-- --only
//! gp+median,gp` for some strategies; `-- --warmup N --min-trials M` to try other pruning settings). Protocol in
//! `src/core/tweak/replay.rs`. Prints, per landscape, target and strategy: median and p90 trials
//! to the target (60 when not reached), success rate within 60 trials, median training seconds to
//! the target (with pruning: the seconds actually spent); then the default strategy against the
//! better Optuna sampler on each landscape's hardest target. Asserts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_tui::core::config::{Direction, PruneRule, Pruning, Tweak};
use mlops_tui::core::prune;
use mlops_tui::core::tweak::replay::{self, BUDGET, Outcome, Table, quantile};
use mlops_tui::core::tweak::{Gp, Grow, Random, Strategy};

struct Landscape {
    name: String,
    table: Table,
    targets: Vec<f64>,
}

/// One row of the printed table.
struct Stats {
    median: f64,
    p90: f64,
    success: f64,
    seconds: f64,
}

fn stats(runs: &[Run]) -> Stats {
    let trials: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let seconds: Vec<f64> = runs.iter().map(|r| r.1).collect();
    Stats {
        median: quantile(&trials, 0.5),
        p90: quantile(&trials, 0.9),
        success: runs.iter().filter(|r| r.2).count() as f64 / runs.len().max(1) as f64,
        seconds: quantile(&seconds, 0.5),
    }
}

fn load(dir: &Path) -> Result<Vec<Landscape>, String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|csv| {
            let spec = csv.with_extension("toml");
            let text =
                std::fs::read_to_string(&spec).map_err(|e| format!("{}: {e}", spec.display()))?;
            let doc: toml::Table =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", spec.display()))?;
            let targets: Vec<f64> = doc
                .get("targets")
                .and_then(|t| t.clone().try_into().ok())
                .ok_or_else(|| format!("{}: no `targets = [...]`", spec.display()))?;
            let tweak: Tweak = doc
                .get("tweak")
                .cloned()
                .ok_or_else(|| format!("{}: no [tweak.space]", spec.display()))?
                .try_into()
                .map_err(|e| format!("{}: {e}", spec.display()))?;
            let rows =
                std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
            let table = Table::from_csv(tweak.space, &rows)
                .map_err(|e| format!("{}: {e}", csv.display()))?;
            let name = csv
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Landscape {
                name,
                table,
                targets,
            })
        })
        .collect()
}

/// A compared strategy: its label, how to make it, its pruning rule.
type Contender = (&'static str, fn() -> Box<dyn Strategy>, PruneRule);

/// One run's figures for one target: trials, seconds, success.
type Run = (f64, f64, bool);

/// The strategies compared.
fn contenders() -> Vec<Contender> {
    vec![
        ("gp+median", || Box::new(Gp), PruneRule::Median),
        ("gp", || Box::new(Gp), PruneRule::Off),
        ("random", || Box::new(Random), PruneRule::Off),
        ("grow", || Box::new(Grow), PruneRule::Off),
    ]
}

/// Default strategy of `[tweak]` with its default pruning: the row held against Optuna.
const DEFAULT: &str = "gp+median";

/// (trials, seconds, success) per target for each seed.
fn run_all(
    l: &Landscape,
    pruning: &Pruning,
    make: fn() -> Box<dyn Strategy>,
    rule: PruneRule,
    seeds: u64,
) -> Vec<Vec<Run>> {
    let pruning = Pruning {
        rule,
        ..pruning.clone()
    };
    let pruner = move |others: &[&[f64]], current: &[f64]| {
        prune::check(&pruning, Direction::Maximize, others, current).map(|p| p.value)
    };
    let mut per_target = vec![Vec::new(); l.targets.len()];
    for seed in 0..seeds {
        let mut strategy = make();
        let pruner: Option<replay::Pruner<'_>> = (rule != PruneRule::Off).then_some(&pruner);
        let o: Outcome = match replay::replay(&l.table, strategy.as_mut(), seed, &l.targets, pruner)
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{}: {e}", l.name);
                continue;
            }
        };
        for (i, hit) in o.hits.iter().enumerate() {
            per_target[i].push(match hit {
                Some((n, s)) => (*n as f64, *s, true),
                None => (BUDGET as f64, o.seconds, false),
            });
        }
    }
    per_target
}

/// Optuna's runs by (landscape, target index, sampler).
fn optuna(path: &Path, landscapes: &[Landscape]) -> BTreeMap<(String, usize, String), Stats> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let mut runs: BTreeMap<(String, usize, String), Vec<Run>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').map(str::trim).collect();
        let [name, target, sampler, _seed, trials, seconds, success] = c[..] else {
            continue;
        };
        let (Ok(target), Ok(trials), Ok(seconds)) = (
            target.parse::<f64>(),
            trials.parse::<f64>(),
            seconds.parse::<f64>(),
        ) else {
            continue;
        };
        let Some(l) = landscapes.iter().find(|l| l.name == name) else {
            continue;
        };
        let Some(i) = l
            .targets
            .iter()
            .position(|t| (t - target).abs() <= 1e-6 * t.abs().max(1.0))
        else {
            continue;
        };
        runs.entry((name.to_string(), i, sampler.to_string()))
            .or_default()
            .push((trials, seconds, success == "1"));
    }
    runs.into_iter().map(|(k, v)| (k, stats(&v))).collect()
}

fn row(label: &str, s: &Stats) {
    println!(
        "    {label:<12} {:>6.1} {:>6.1} {:>7.0}% {:>10.1}",
        s.median,
        s.p90,
        s.success * 100.0,
        s.seconds
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut seeds = 100u64;
    if args.iter().any(|a| a == "--quick") {
        seeds = 20;
    }
    if let Some(i) = args.iter().position(|a| a == "--seeds")
        && let Some(n) = args.get(i + 1).and_then(|n| n.parse().ok())
    {
        seeds = n;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = arg("--only");
    let mut pruning = Pruning::default();
    if let Some(w) = arg("--warmup").and_then(|v| v.parse().ok()) {
        pruning.warmup = w;
    }
    if let Some(m) = arg("--min-trials").and_then(|v| v.parse().ok()) {
        pruning.min_trials = m;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    let landscapes = match load(&root.join("landscapes")) {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            eprintln!(
                "no landscapes in benches/landscapes (build them with benches/landscapes/build.sh)"
            );
            return;
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let optuna = optuna(&root.join("results").join("optuna.csv"), &landscapes);
    println!(
        "search replay: {seeds} seeds, budget {BUDGET} trials, start row splitmix64(seed) % rows"
    );
    let mut ours: BTreeMap<(String, usize, &str), Stats> = BTreeMap::new();
    for l in &landscapes {
        let mut results = Vec::new();
        for (label, make, rule) in contenders().into_iter().filter(|c| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == c.0))
        }) {
            let t0 = Instant::now();
            let r = run_all(l, &pruning, make, rule, seeds);
            eprintln!("{} {label}: {:.1}s", l.name, t0.elapsed().as_secs_f64());
            results.push((label, r));
        }
        for (i, target) in l.targets.iter().enumerate() {
            println!(
                "\n{} ({} configurations), target {target} ({:.1}% reach it)",
                l.name,
                l.table.rows.len(),
                l.table.share_reaching(*target) * 100.0
            );
            println!(
                "    {:<12} {:>6} {:>6} {:>8} {:>10}",
                "strategy", "median", "p90", "success", "seconds"
            );
            for (label, r) in &results {
                let s = stats(&r[i]);
                row(label, &s);
                ours.insert((l.name.clone(), i, label), s);
            }
            for sampler in ["optuna-tpe", "optuna-gp"] {
                if let Some(s) = optuna.get(&(l.name.clone(), i, sampler.to_string())) {
                    row(sampler, s);
                }
            }
        }
    }
    summary(&landscapes, &ours, &optuna);
}

/// The goal on each landscape's hardest target: median trials at most the better Optuna sampler's,
/// success at least 98 %, median seconds at most 0.7 × Optuna TPE's.
fn summary(
    landscapes: &[Landscape],
    ours: &BTreeMap<(String, usize, &str), Stats>,
    optuna: &BTreeMap<(String, usize, String), Stats>,
) {
    println!("\nhardest targets, {DEFAULT} (the default) against Optuna:");
    for l in landscapes {
        let i = l.targets.len() - 1;
        let Some(d) = ours.get(&(l.name.clone(), i, DEFAULT)) else {
            continue;
        };
        let tpe = optuna.get(&(l.name.clone(), i, "optuna-tpe".to_string()));
        let gp = optuna.get(&(l.name.clone(), i, "optuna-gp".to_string()));
        let better = [tpe, gp]
            .into_iter()
            .flatten()
            .map(|s| s.median)
            .fold(f64::INFINITY, f64::min);
        let trials = if better.is_finite() {
            format!(
                "trials {:.1} vs {better:.1} ({:.2}×)",
                d.median,
                d.median / better
            )
        } else {
            format!("trials {:.1} (no Optuna figures)", d.median)
        };
        let seconds = match tpe {
            Some(t) => format!(
                "seconds {:.1} vs TPE {:.1} ({:.2}×)",
                d.seconds,
                t.seconds,
                d.seconds / t.seconds
            ),
            None => format!("seconds {:.1}", d.seconds),
        };
        println!(
            "  {:<12} {trials}; success {:.0}%; {seconds}",
            l.name,
            d.success * 100.0
        );
    }
}
