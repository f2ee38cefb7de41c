//! The model-based strategy (the default): a Gaussian process fitted to every observation, proposing
//! the untried point of highest expected improvement (Bayesian optimisation as in Jones et al.
//! 1998, "Efficient global optimization of expensive black-box functions"; Snoek et al. 2012,
//! "Practical Bayesian optimization of machine learning algorithms").
//!
//! What it does with what it sees:
//! - the first points after the start are space-filling (the candidate farthest from everything
//!   tried), until [`STARTUP`] observations exist;
//! - a failed or rejected point counts as the worst value seen, so the model steers away from it;
//! - a pruned iteration counts at the partial value it reached (a pessimistic observation);
//! - a carried-over observation of weight w has its noise divided by w: it shapes the model without
//!   pinning it;
//! - pending points (and earlier points of the same batch) are told to the model at the mean value
//!   (the constant liar), so a batch spreads out instead of piling on one spot;
//! - when iterations report their training seconds, a second GP models log seconds and a point's
//!   expected improvement is divided by its predicted seconds to a power that falls from 1 to 0
//!   over [`COST_HORIZON`] observations: cheap points first while little is known;
//! - in a finite space every untried point is scored; otherwise random points plus local moves around
//!   the best ones are.

mod model;

use std::collections::HashSet;

use super::domain::Domain;
use super::point::{PointKey, Seen};
use super::random::untried;
use super::rng::Rng;
use super::{Proposal, Search, Strategy, one_by_one, proposal_to};
use crate::core::config::{Direction, Params};
use crate::core::text::{param_value, value_significant};
use model::{Obs, expected_improvement};

/// Observations with a value before the model proposes: the start and two space-filling points.
const STARTUP: usize = 3;

/// Observations after the start-up over which the weight of cost falls from 1 to 0: the first
/// model-based proposals prefer cheap points, later ones follow expected improvement alone.
const COST_HORIZON: f64 = 60.0;

/// Finite spaces up to this many points have every untried point scored.
const SCORE_ALL: usize = 6_000;

/// Random candidates scored in a larger space, and local moves around the best observations.
const RANDOM_CANDIDATES: usize = 1_000;
const LOCAL_CANDIDATES: usize = 400;

/// Random candidates compared when choosing a space-filling point.
const FILLING_CANDIDATES: usize = 200;

/// Expected improvement is measured beyond the best value plus this share of the values' spread.
const XI: f64 = 0.01;

/// Stateless: proposals are a function of the search, so a resumed run proposes the same point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gp;

impl Strategy for Gp {
    fn name(&self) -> &'static str {
        "gp"
    }

    fn propose(&mut self, search: &Search<'_>, k: usize) -> Vec<Proposal> {
        one_by_one(search, k, gp_one)
    }
}

/// What the model learns from: this run's and carried-over observations, higher is better.
struct Observed {
    obs: Vec<Obs>,
    /// The best value as the metric reads it, and its point.
    best: Option<(f64, Params)>,
    carried: usize,
    pruned: usize,
}

fn observations(search: &Search<'_>, domain: &Domain<'_>) -> Observed {
    let sign = match search.metric.direction {
        Direction::Maximize => 1.0,
        Direction::Minimize => -1.0,
    };
    let valid = |v: Option<f64>| v.filter(|v| search.metric.is_valid(*v));
    let worst = search
        .history
        .iter()
        .filter_map(|t| valid(t.value))
        .map(|v| sign * v)
        .min_by(f64::total_cmp);
    let mut out = Observed {
        obs: Vec::new(),
        best: None,
        carried: 0,
        pruned: 0,
    };
    for t in search.history {
        let y = match (valid(t.value), worst) {
            (Some(v), _) => sign * v,
            (None, Some(w)) => w,
            (None, None) => continue,
        };
        out.carried += usize::from(t.origin.is_some());
        out.pruned += usize::from(t.pruned);
        if let Some(v) = valid(t.value).filter(|_| !t.pruned)
            && out
                .best
                .as_ref()
                .is_none_or(|(b, _)| search.metric.better(v, *b))
        {
            out.best = Some((v, t.params.clone()));
        }
        out.obs.push(Obs {
            x: domain.coordinates(&t.params),
            y,
            weight: t.weight.clamp(1e-3, 1.0),
        });
    }
    out
}

fn gp_one(search: &Search<'_>) -> Option<Proposal> {
    let domain = Domain::new(search.space);
    let seen = Seen::of(search);
    let mut rng = Rng::for_step(search.seed, search.history.len(), search.pending.len());
    let mut observed = observations(search, &domain);
    if observed.obs.len() < STARTUP {
        return space_filling(search, &domain, &seen, &mut rng, &observed);
    }
    let candidates = candidates(search, &domain, &seen, &mut rng, &observed);
    if candidates.is_empty() {
        return None;
    }
    let lies: Vec<Vec<f64>> = search
        .pending
        .iter()
        .map(|p| domain.coordinates(p))
        .collect();
    let groups = domain.groups();
    let n_groups = search.space.len();
    let scores = warp(&mut observed.obs);
    let Some(gp) = model::Gp::fit(&observed.obs, &lies, &groups, n_groups) else {
        return space_filling(search, &domain, &seen, &mut rng, &observed);
    };
    let best = observed
        .obs
        .iter()
        .map(|o| o.y)
        .fold(f64::NEG_INFINITY, f64::max);
    let spread = spread(&observed.obs);
    let cost = CostModel::fit(search, &domain, &groups, n_groups, observed.obs.len());
    let mut chosen: Option<(f64, f64, f64, &Params)> = None;
    for c in &candidates {
        let x = domain.coordinates(c);
        let (mu, sd) = gp.predict(&x);
        let ei = expected_improvement(mu, sd, best, XI * spread);
        let score = ei.max(1e-300).ln() - cost.as_ref().map_or(0.0, |m| m.penalty(&x));
        if chosen.is_none_or(|(e, ..)| score > e) {
            chosen = Some((score, mu, sd, c));
        }
    }
    let (_, mu, sd, point) = chosen?;
    let expected = unwarp(&scores, mu);
    let reason = model_reason(search, &domain, &gp, &observed, candidates.len(), expected);
    let _ = sd;
    proposal_to(search, point, reason)
}

/// Log training seconds modelled by a second GP, so expected improvement can be weighed against
/// cost: a candidate scores ln EI − α · ln(predicted seconds), "EI per second" of Snoek et al. 2012
/// with α annealed towards 0 as observations accumulate (Lee et al. 2020, "Cost-aware Bayesian
/// optimization"): cheap points first, pure EI once the cheap region is known.
struct CostModel {
    gp: model::Gp,
    alpha: f64,
}

impl CostModel {
    fn fit(
        search: &Search<'_>,
        domain: &Domain<'_>,
        groups: &[usize],
        n_groups: usize,
        n_obs: usize,
    ) -> Option<CostModel> {
        let done = n_obs.saturating_sub(STARTUP) as f64;
        let alpha = (1.0 - done / COST_HORIZON).max(0.0);
        if alpha <= 0.0 {
            return None;
        }
        let obs: Vec<Obs> = search
            .history
            .iter()
            // A pruned iteration's seconds say little about a full run of its point.
            .filter(|t| !t.pruned)
            .filter_map(|t| {
                let s = t.seconds.filter(|s| s.is_finite() && *s > 0.0)?;
                Some(Obs {
                    x: domain.coordinates(&t.params),
                    y: s.ln(),
                    weight: t.weight.clamp(1e-3, 1.0),
                })
            })
            .collect();
        let gp = model::Gp::fit(&obs, &[], groups, n_groups)?;
        Some(CostModel { gp, alpha })
    }

    /// α · ln(predicted seconds at x).
    fn penalty(&self, x: &[f64]) -> f64 {
        self.alpha * self.gp.predict(x).0
    }
}

/// Replaces each value by the normal score of its rank (ties share their mean rank), so that a few
/// very bad points (a diverged learning rate, a collapsed SVC) do not flatten the model's picture of
/// the good region: only the order of the values matters. Returns (score, value) pairs in order.
fn warp(obs: &mut [Obs]) -> Vec<(f64, f64)> {
    let n = obs.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| obs[a].y.total_cmp(&obs[b].y));
    let mut pairs = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && obs[order[j + 1]].y == obs[order[i]].y {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0;
        let score = model::normal_quantile((rank + 0.5) / n as f64);
        let value = obs[order[i]].y;
        for &k in &order[i..=j] {
            obs[k].y = score;
        }
        pairs.push((score, value));
        i = j + 1;
    }
    pairs
}

/// The value a normal score stands for, interpolated between the observed ones (clamped).
fn unwarp(pairs: &[(f64, f64)], score: f64) -> f64 {
    let Some(&(s0, v0)) = pairs.first() else {
        return f64::NAN;
    };
    if score <= s0 {
        return v0;
    }
    for w in pairs.windows(2) {
        let ((sa, va), (sb, vb)) = (w[0], w[1]);
        if score <= sb {
            return va + (vb - va) * (score - sa) / (sb - sa).max(1e-12);
        }
    }
    pairs[pairs.len() - 1].1
}

fn spread(obs: &[Obs]) -> f64 {
    let lo = obs.iter().map(|o| o.y).fold(f64::INFINITY, f64::min);
    let hi = obs.iter().map(|o| o.y).fold(f64::NEG_INFINITY, f64::max);
    if hi > lo { hi - lo } else { 1.0 }
}

/// The untried points the model scores: all of a small finite space, else random points and local
/// moves around the five best observations.
fn candidates(
    search: &Search<'_>,
    domain: &Domain<'_>,
    seen: &Seen,
    rng: &mut Rng,
    observed: &Observed,
) -> Vec<Params> {
    if let Some(size) = domain.size().filter(|&n| n <= SCORE_ALL) {
        return (0..size)
            .map(|i| domain.point_at(i))
            .filter(|p| !seen.contains(search.space, p))
            .collect();
    }
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    let mut add = |p: Params, out: &mut Vec<Params>| {
        if !seen.contains(search.space, &p) && keys.insert(PointKey::of(search.space, &p)) {
            out.push(p);
        }
    };
    for _ in 0..RANDOM_CANDIDATES {
        add(domain.sample(rng), &mut out);
    }
    let mut ranked: Vec<(f64, &Params)> = observed
        .obs
        .iter()
        // Every history entry is an observation once any value is known.
        .zip(search.history)
        .map(|(o, t)| (o.y, &t.params))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let tops: Vec<&Params> = ranked.iter().take(5).map(|(_, p)| *p).collect();
    if !tops.is_empty() {
        for i in 0..LOCAL_CANDIDATES {
            let width = if i % 2 == 0 { 0.05 } else { 0.15 };
            let p = domain.perturb(tops[i % tops.len()], rng, width);
            add(p, &mut out);
        }
    }
    if out.is_empty()
        && let Some(p) = untried(domain, seen, search, rng)
    {
        out.push(p);
    }
    out
}

/// The untried candidate farthest (in the unit cube) from every point tried or pending.
fn space_filling(
    search: &Search<'_>,
    domain: &Domain<'_>,
    seen: &Seen,
    rng: &mut Rng,
    observed: &Observed,
) -> Option<Proposal> {
    let mut taken: Vec<Vec<f64>> = search
        .history
        .iter()
        .map(|t| domain.coordinates(&t.params))
        .collect();
    taken.extend(search.pending.iter().map(|p| domain.coordinates(p)));
    taken.push(domain.coordinates(search.current));
    let mut pool = Seen::of(search);
    let mut best: Option<(f64, Params)> = None;
    for _ in 0..FILLING_CANDIDATES {
        let Some(p) = untried(domain, &pool, search, rng) else {
            break;
        };
        pool.insert(search.space, &p);
        let x = domain.coordinates(&p);
        let d = taken
            .iter()
            .map(|t| t.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
            .fold(f64::INFINITY, f64::min);
        if best.as_ref().is_none_or(|(bd, _)| d > *bd) {
            best = Some((d, p));
        }
    }
    let (_, point) = best.or_else(|| untried(domain, seen, search, rng).map(|p| (0.0, p)))?;
    let n = observed.obs.len();
    let points = if n == 1 {
        "observation"
    } else {
        "observations"
    };
    let reason = format!(
        "GP: {n} {points}, too few for a model: exploring far from the {} points tried",
        taken.len()
    );
    proposal_to(search, &point, reason)
}

/// `GP: 14 observations (best accuracy 0.962), expected 0.975 ± 0.012 here; lr, units matter most`.
fn model_reason(
    search: &Search<'_>,
    domain: &Domain<'_>,
    gp: &model::Gp,
    observed: &Observed,
    scored: usize,
    expected: f64,
) -> String {
    let sign = match search.metric.direction {
        Direction::Maximize => 1.0,
        Direction::Minimize => -1.0,
    };
    let name = &search.metric.name;
    let n = observed.obs.len();
    let mut seen = format!("GP: {n} observations");
    let mut extras = Vec::new();
    if observed.carried > 0 {
        extras.push(format!("{} from earlier commits", observed.carried));
    }
    if observed.pruned > 0 {
        extras.push(format!("{} pruned", observed.pruned));
    }
    if !search.pending.is_empty() {
        extras.push(format!("{} running", search.pending.len()));
    }
    if !extras.is_empty() {
        seen.push_str(&format!(" ({})", extras.join(", ")));
    }
    if let Some((b, _)) = &observed.best {
        seen.push_str(&format!(", best {name} {}", value_significant(*b)));
    }
    let expected = format!(
        "expected ≈{} here (best of {scored} untried points)",
        value_significant(sign * expected)
    );
    format!("{seen}; {expected}; {}", sensitive(domain, gp, observed))
}

/// The dimensions with the shortest length scales (the metric changes fastest along them), with
/// the best point's value on each: where the good region is.
fn sensitive(domain: &Domain<'_>, gp: &model::Gp, observed: &Observed) -> String {
    let names = domain.names();
    let mut order: Vec<(f64, &str)> = gp
        .hyper()
        .lengths
        .iter()
        .zip(&names)
        .filter(|(l, _)| **l <= 1.0)
        .map(|(l, n)| (*l, *n))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let described: Vec<String> = order
        .iter()
        .take(2)
        .map(
            |(_, n)| match observed.best.as_ref().and_then(|(_, p)| p.get(*n)) {
                Some(v) => format!("{n}≈{}", param_value(v)),
                None => (*n).to_string(),
            },
        )
        .collect();
    if described.is_empty() {
        "no dimension stands out yet".into()
    } else {
        format!("good region {}", described.join(", "))
    }
}
