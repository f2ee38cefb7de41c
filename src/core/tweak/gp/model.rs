//! A Gaussian-process regression model on the unit cube (Rasmussen and Williams, "Gaussian Processes
//! for Machine Learning", 2006, ch. 2 and 5): Matérn-5/2 kernel with one length scale per dimension
//! (ARD), a noise term per observation, and hyper-parameters chosen by maximising the log marginal
//! likelihood with the signal variance profiled out. Small on purpose: n is at most a few hundred,
//! so a hand-written Cholesky factorisation is all the linear algebra needed.

/// Length scales tried per dimension by the coordinate search (unit-cube units).
const LENGTHS: [f64; 8] = [0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0, 4.0];

/// Noise-to-signal variance ratios tried (observations of this run, weight 1).
const NOISES: [f64; 6] = [1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.2];

/// Sweeps of the coordinate search per start.
const SWEEPS: usize = 2;

/// Log-normal prior on each length scale: centre (unit-cube units) and width (e-folds). Two
/// e-folds let a dimension that does not matter drift to a long scale (and one that matters most
/// to a short one) on the evidence of a dozen points, where one e-fold held every scale near the
/// centre.
const PRIOR_CENTRE: f64 = 0.5;
const PRIOR_WIDTH: f64 = 2.0;

/// Jitter added to the diagonal so that a kernel matrix of near-duplicate points still factorises.
const JITTER: f64 = 1e-9;

/// One observation: coordinates, value (higher is better), and its weight (noise is divided by it).
#[derive(Debug, Clone)]
pub(crate) struct Obs {
    pub x: Vec<f64>,
    pub y: f64,
    pub weight: f64,
}

/// Kernel hyper-parameters: a length scale per group of coordinates, and the noise ratio.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyper {
    pub lengths: Vec<f64>,
    pub noise: f64,
}

/// A fitted model: predicts mean and standard deviation of the (standardised) value anywhere.
#[derive(Debug, Clone)]
pub(crate) struct Gp {
    xs: Vec<Vec<f64>>,
    groups: Vec<usize>,
    hyper: Hyper,
    /// Lower Cholesky factor of the kernel matrix (noise included).
    chol: Vec<Vec<f64>>,
    /// K⁻¹ (y - mean).
    alpha: Vec<f64>,
    /// Mean and standard deviation of the observed values: the model works on standardised values
    /// and predicts in the original units.
    mean: f64,
    scale: f64,
    /// Profiled signal variance σ² = (y - mean)ᵀ K⁻¹ (y - mean) / n.
    signal: f64,
}

fn matern52(r: f64) -> f64 {
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

fn kernel(a: &[f64], b: &[f64], groups: &[usize], lengths: &[f64]) -> f64 {
    let r2: f64 = a
        .iter()
        .zip(b)
        .zip(groups)
        .map(|((x, y), g)| {
            let d = (x - y) / lengths[*g];
            d * d
        })
        .sum();
    matern52(r2.sqrt())
}

/// Lower Cholesky factor of the symmetric positive-definite `a`; `None` when it is not.
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves L z = b (forward substitution).
fn solve_lower(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; b.len()];
    for i in 0..b.len() {
        let s: f64 = (0..i).map(|k| l[i][k] * z[k]).sum();
        z[i] = (b[i] - s) / l[i][i];
    }
    z
}

/// Solves Lᵀ x = z (back substitution).
fn solve_upper(l: &[Vec<f64>], z: &[f64]) -> Vec<f64> {
    let n = z.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k][i] * x[k]).sum();
        x[i] = (z[i] - s) / l[i][i];
    }
    x
}

/// Precomputed squared coordinate differences per group, so each likelihood evaluation of the
/// hyper-parameter search only rescales them.
struct Distances {
    /// `d2[i][j][g]`: sum over the coordinates of group g of (x_i - x_j)².
    d2: Vec<Vec<Vec<f64>>>,
}

impl Distances {
    fn new(xs: &[Vec<f64>], groups: &[usize], n_groups: usize) -> Distances {
        let n = xs.len();
        let mut d2 = vec![vec![vec![0.0; n_groups]; n]; n];
        for i in 0..n {
            for j in 0..i {
                for (c, g) in groups.iter().enumerate() {
                    let d = xs[i][c] - xs[j][c];
                    d2[i][j][*g] += d * d;
                }
                d2[j][i] = d2[i][j].clone();
            }
        }
        Distances { d2 }
    }

    #[allow(
        clippy::needless_range_loop,
        reason = "a symmetric matrix is filled by index pairs"
    )]
    fn matrix(&self, h: &Hyper, weights: &[f64]) -> Vec<Vec<f64>> {
        let n = self.d2.len();
        let mut k = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in 0..i {
                let r2: f64 = self.d2[i][j]
                    .iter()
                    .zip(&h.lengths)
                    .map(|(d, l)| d / (l * l))
                    .sum();
                let v = matern52(r2.sqrt());
                k[i][j] = v;
                k[j][i] = v;
            }
            k[i][i] = 1.0 + h.noise / weights[i].max(1e-6) + JITTER;
        }
        k
    }
}

/// Log marginal likelihood with the signal variance profiled out, plus a weak log-normal prior on
/// the length scales ([`PRIOR_CENTRE`], [`PRIOR_WIDTH`]) that keeps a handful of points from picking
/// an absurd scale. `None` when the matrix does not factorise.
fn objective(dist: &Distances, h: &Hyper, y: &[f64], weights: &[f64]) -> Option<f64> {
    let n = y.len() as f64;
    let k = dist.matrix(h, weights);
    let l = cholesky(&k)?;
    let z = solve_lower(&l, y);
    let quad: f64 = z.iter().map(|v| v * v).sum::<f64>().max(1e-12);
    let half_logdet: f64 = (0..l.len()).map(|i| l[i][i].ln()).sum();
    let prior: f64 = h
        .lengths
        .iter()
        .map(|len| -0.5 * ((len / PRIOR_CENTRE).ln() / PRIOR_WIDTH).powi(2))
        .sum();
    Some(-0.5 * n * (quad / n).ln() - half_logdet + prior)
}

/// The hyper-parameters maximising [`objective`] by coordinate search over [`LENGTHS`] and
/// [`NOISES`], from two starts (smooth and rough).
fn fit_hyper(dist: &Distances, n_groups: usize, y: &[f64], weights: &[f64]) -> Hyper {
    let mut best = Hyper {
        lengths: vec![0.5; n_groups],
        noise: 1e-3,
    };
    let mut best_score = objective(dist, &best, y, weights).unwrap_or(f64::NEG_INFINITY);
    for start in [0.5, 0.12] {
        let mut h = Hyper {
            lengths: vec![start; n_groups],
            noise: 1e-3,
        };
        let mut score = objective(dist, &h, y, weights).unwrap_or(f64::NEG_INFINITY);
        for _ in 0..SWEEPS {
            for g in 0..=n_groups {
                (h, score) = best_along(dist, (h, score), g, y, weights);
            }
        }
        if score > best_score {
            best_score = score;
            best = h;
        }
    }
    best
}

/// The best of `h` and its variants along coordinate `g` (a group's length scale, or the noise
/// when `g` is the number of groups).
fn best_along(
    dist: &Distances,
    (mut h, mut score): (Hyper, f64),
    g: usize,
    y: &[f64],
    weights: &[f64],
) -> (Hyper, f64) {
    let noise = g == h.lengths.len();
    let options: &[f64] = if noise { &NOISES } else { &LENGTHS };
    for &v in options {
        let mut trial = h.clone();
        match trial.lengths.get_mut(g) {
            Some(len) => *len = v,
            None => trial.noise = v,
        }
        if let Some(s) = objective(dist, &trial, y, weights)
            && s > score
        {
            score = s;
            h = trial;
        }
    }
    (h, score)
}

impl Gp {
    /// Fits the model to `obs`, then conditions it on `lies` (points being evaluated, given the
    /// value `lie`: the constant liar of Ginsbourger et al. 2010) with the same hyper-parameters.
    /// `None` with fewer than two observations or a matrix that does not factorise.
    pub(crate) fn fit(
        obs: &[Obs],
        lies: &[Vec<f64>],
        groups: &[usize],
        n_groups: usize,
    ) -> Option<Gp> {
        if obs.len() < 2 {
            return None;
        }
        let mean = obs.iter().map(|o| o.y).sum::<f64>() / obs.len() as f64;
        let var = obs.iter().map(|o| (o.y - mean).powi(2)).sum::<f64>() / obs.len() as f64;
        let sd = var.sqrt().max(1e-9);
        let y: Vec<f64> = obs.iter().map(|o| (o.y - mean) / sd).collect();
        let xs: Vec<Vec<f64>> = obs.iter().map(|o| o.x.clone()).collect();
        let weights: Vec<f64> = obs.iter().map(|o| o.weight).collect();
        let dist = Distances::new(&xs, groups, n_groups);
        let hyper = fit_hyper(&dist, n_groups, &y, &weights);
        let lie = y.iter().sum::<f64>() / y.len() as f64;
        let mut xs = xs;
        let mut y = y;
        let mut weights = weights;
        for x in lies {
            xs.push(x.clone());
            y.push(lie);
            weights.push(1.0);
        }
        let dist = Distances::new(&xs, groups, n_groups);
        let l = cholesky(&dist.matrix(&hyper, &weights))?;
        let alpha = solve_upper(&l, &solve_lower(&l, &y));
        let z = solve_lower(&l, &y);
        let signal = (z.iter().map(|v| v * v).sum::<f64>() / y.len() as f64).max(1e-6);
        Some(Gp {
            xs,
            groups: groups.to_vec(),
            hyper,
            chol: l,
            alpha,
            mean,
            scale: sd,
            signal,
        })
    }

    pub(crate) fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// Mean and standard deviation of the value at `x`, in the observations' units.
    pub(crate) fn predict(&self, x: &[f64]) -> (f64, f64) {
        let ks: Vec<f64> = self
            .xs
            .iter()
            .map(|xi| kernel(x, xi, &self.groups, &self.hyper.lengths))
            .collect();
        let mu = ks.iter().zip(&self.alpha).map(|(a, b)| a * b).sum::<f64>();
        let v = solve_lower(&self.chol, &ks);
        let var = (1.0 - v.iter().map(|a| a * a).sum::<f64>()).max(1e-12) * self.signal;
        (self.mean + self.scale * mu, self.scale * var.sqrt())
    }
}

/// Expected improvement over `best` of a normal N(mu, sd²) (Jones et al. 1998), minus a margin `xi`
/// that keeps the search from polishing the best point forever.
pub(crate) fn expected_improvement(mu: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let d = mu - best - xi;
    if sd <= 1e-12 {
        return d.max(0.0);
    }
    let z = d / sd;
    d * normal_cdf(z) + sd * normal_pdf(z)
}

/// Φ⁻¹(p) for p in (0, 1) (Acklam's rational approximation, relative error below 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ(z) through erfc (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7 everywhere).
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = vec![
            vec![4.0, 2.0, 0.6],
            vec![2.0, 5.0, 1.0],
            vec![0.6, 1.0, 3.0],
        ];
        let l = cholesky(&a).unwrap();
        let b = [1.0, 2.0, 3.0];
        let x = solve_upper(&l, &solve_lower(&l, &b));
        for i in 0..3 {
            let ax: f64 = (0..3).map(|j| a[i][j] * x[j]).sum();
            assert!((ax - b[i]).abs() < 1e-12, "{ax} vs {}", b[i]);
        }
        assert!(cholesky(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        for (z, want) in [(0.0, 0.5), (1.0, 0.841_344_746), (-1.96, 0.024_997_895)] {
            assert!((normal_cdf(z) - want).abs() < 1e-6, "{z}");
        }
        assert!(expected_improvement(0.0, 1.0, 0.0, 0.0) > 0.39);
        for p in [0.001, 0.1, 0.5, 0.8, 0.999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-6, "{p}");
        }
        assert_eq!(expected_improvement(1.0, 0.0, 0.5, 0.0), 0.5);
    }

    #[test]
    fn the_model_interpolates_a_smooth_function_and_finds_its_length_scale() {
        let f = |x: f64| (6.0 * x).sin();
        let obs: Vec<Obs> = (0..12)
            .map(|i| {
                let x = i as f64 / 11.0;
                Obs {
                    x: vec![x, 0.3],
                    y: f(x),
                    weight: 1.0,
                }
            })
            .collect();
        let gp = Gp::fit(&obs, &[], &[0, 1], 2).unwrap();
        let (mu, s) = gp.predict(&[0.5, 0.3]);
        assert!((mu - f(0.5)).abs() < 0.05, "{mu}");
        assert!(s < 0.2, "{s}");
        let (_, far) = gp.predict(&[0.5, 1.0]);
        assert!(far.is_finite());
    }
}
