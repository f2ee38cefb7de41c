//! The search space as the sampling strategies see it: its points by index (finite spaces), random
//! points, local moves, and every point as coordinates in the unit cube for a model.
//!
//! Coordinates: a numeric dimension is its position between its bounds on its own scale (log for
//! `log = true` and `factor` ranges), an ordered list is the element's position, and choices are
//! one-hot (one coordinate per choice, so no choice is "between" two others).

use std::collections::BTreeMap;

use serde_json::Value;

use super::rng::Rng;
use super::same_value;
use crate::core::config::{Dimension, Params};

/// Largest finite space whose points are listed one by one (random enumeration, model candidates).
pub(crate) const MAX_POINTS: usize = 200_000;

pub(crate) struct Domain<'a> {
    dims: Vec<Dim<'a>>,
}

struct Dim<'a> {
    name: &'a str,
    dim: &'a Dimension,
    /// Every value, for a finite dimension.
    grid: Option<Vec<Value>>,
}

impl<'a> Domain<'a> {
    pub(crate) fn new(space: &'a BTreeMap<String, Dimension>) -> Domain<'a> {
        Domain {
            dims: space
                .iter()
                .map(|(name, dim)| Dim {
                    name,
                    dim,
                    grid: dim.grid(),
                })
                .collect(),
        }
    }

    /// The number of points when every dimension is finite and the product is at most
    /// [`MAX_POINTS`]; `None` otherwise.
    pub(crate) fn size(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |acc, d| {
            let n = d.grid.as_ref()?.len();
            acc.checked_mul(n).filter(|&t| t <= MAX_POINTS)
        })
    }

    /// The point number `index` (< [`Domain::size`]), dimensions in name order, the last varying
    /// fastest.
    pub(crate) fn point_at(&self, mut index: usize) -> Params {
        let mut out = Params::new();
        for d in self.dims.iter().rev() {
            let grid = d.grid.as_deref().unwrap_or_default();
            let n = grid.len().max(1);
            if let Some(v) = grid.get(index % n) {
                out.insert(d.name.to_string(), v.clone());
            }
            index /= n;
        }
        out
    }

    /// A uniformly random point (uniform on each dimension's own scale).
    pub(crate) fn sample(&self, rng: &mut Rng) -> Params {
        self.dims
            .iter()
            .map(|d| (d.name.to_string(), d.sample(rng)))
            .collect()
    }

    /// `point` with one to three dimensions moved a little: numbers by a normal step of `width`
    /// (in unit coordinates), ordered lists by one or two places, choices to another choice.
    pub(crate) fn perturb(&self, point: &Params, rng: &mut Rng, width: f64) -> Params {
        let mut out = point.clone();
        let moves = 1 + rng.below(self.dims.len().min(3));
        for _ in 0..moves {
            let d = &self.dims[rng.below(self.dims.len())];
            let old = point.get(d.name).cloned().unwrap_or_else(|| d.dim.start());
            out.insert(d.name.to_string(), d.nudge(&old, rng, width));
        }
        out
    }

    /// The number of coordinates of a point.
    pub(crate) fn width(&self) -> usize {
        self.dims.iter().map(Dim::coordinates).sum()
    }

    /// For each coordinate, the dimension (index in name order) it belongs to: a model gives the
    /// coordinates of one dimension one length scale.
    pub(crate) fn groups(&self) -> Vec<usize> {
        self.dims
            .iter()
            .enumerate()
            .flat_map(|(i, d)| std::iter::repeat_n(i, d.coordinates()))
            .collect()
    }

    pub(crate) fn names(&self) -> Vec<&'a str> {
        self.dims.iter().map(|d| d.name).collect()
    }

    /// `point` in the unit cube; a dimension missing from it counts at its start.
    pub(crate) fn coordinates(&self, point: &Params) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width());
        for d in &self.dims {
            let start = d.dim.start();
            let v = point.get(d.name).unwrap_or(&start);
            d.push_coordinates(v, &mut out);
        }
        out
    }
}

impl Dim<'_> {
    fn coordinates(&self) -> usize {
        match self.dim {
            Dimension::Choices(c) => c.len(),
            _ => 1,
        }
    }

    fn position(&self, v: &Value) -> Option<usize> {
        self.grid.as_ref()?.iter().position(|x| same_value(x, v))
    }

    fn push_coordinates(&self, v: &Value, out: &mut Vec<f64>) {
        match self.dim {
            Dimension::Choices(c) => {
                let at = c.iter().position(|x| same_value(x, v));
                out.extend((0..c.len()).map(|i| if Some(i) == at { 1.0 } else { 0.0 }));
            }
            Dimension::Values(list) => {
                let i = self.position(v).unwrap_or(0) as f64;
                out.push(if list.len() > 1 {
                    i / (list.len() - 1) as f64
                } else {
                    0.0
                });
            }
            Dimension::Range { .. } | Dimension::Number { .. } => {
                let scale = self.dim.scale();
                let x = v.as_f64().unwrap_or(f64::NAN);
                out.push(match scale {
                    Some(s) if x.is_finite() => s.unit(x),
                    _ => 0.0,
                });
            }
        }
    }

    fn sample(&self, rng: &mut Rng) -> Value {
        match (&self.grid, self.dim.scale()) {
            (Some(g), _) => g[rng.below(g.len())].clone(),
            (None, Some(s)) => self.dim.snap(s.at(rng.unit())),
            (None, None) => self.dim.start(),
        }
    }

    fn nudge(&self, old: &Value, rng: &mut Rng, width: f64) -> Value {
        if let Dimension::Choices(c) = self.dim {
            return c[rng.below(c.len())].clone();
        }
        if let (Some(g), Dimension::Values(_)) = (&self.grid, self.dim) {
            let i = self.position(old).unwrap_or(0) as i64;
            let delta = 1 + rng.below(2) as i64;
            let j = if rng.below(2) == 0 {
                i - delta
            } else {
                i + delta
            };
            return g[j.clamp(0, g.len() as i64 - 1) as usize].clone();
        }
        let Some(s) = self.dim.scale() else {
            return old.clone();
        };
        let u = s.unit(old.as_f64().unwrap_or(s.lo)) + width * rng.normal();
        let moved = s.at(u.clamp(0.0, 1.0));
        match &self.grid {
            // A finite numeric dimension: the grid value nearest on the dimension's scale.
            Some(g) => nearest(g, moved, &s).unwrap_or_else(|| old.clone()),
            None => self.dim.snap(moved),
        }
    }
}

fn nearest(grid: &[Value], x: f64, s: &crate::core::config::Scale) -> Option<Value> {
    let ux = s.unit(x);
    grid.iter()
        .filter_map(|v| v.as_f64().map(|f| ((s.unit(f) - ux).abs(), v)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.clone())
}
