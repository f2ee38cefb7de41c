//! The random strategy: uniform points of the space, seeded. The baseline every other strategy must
//! beat, and the fallback of the model-based one when its model cannot help.

use super::domain::Domain;
use super::point::Seen;
use super::rng::Rng;
use super::{Proposal, Search, Strategy, one_by_one, proposal_to};
use crate::core::config::Params;

/// Random draws before a finite space is listed to find the points still untried.
const DRAWS: usize = 64;

/// Draws in a space too large to list before it counts as exhausted (every draw was a tried point).
const MAX_DRAWS: usize = 10_000;

/// Stateless: the draws come from the seed and the length of the history, so a resumed run proposes
/// the same points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Random;

impl Strategy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn propose(&mut self, search: &Search<'_>, k: usize) -> Vec<Proposal> {
        one_by_one(search, k, random_one)
    }
}

fn random_one(search: &Search<'_>) -> Option<Proposal> {
    let domain = Domain::new(search.space);
    let seen = Seen::of(search);
    let mut rng = Rng::for_step(search.seed, search.history.len(), search.pending.len());
    let point = untried(&domain, &seen, search, &mut rng)?;
    let tried = seen.len();
    let reason = match domain.size() {
        Some(n) => format!(
            "random (seed {}): {tried} of {n} points tried or running",
            search.seed
        ),
        None => format!(
            "random (seed {}): {tried} points tried or running in a space too large to list",
            search.seed
        ),
    };
    proposal_to(search, &point, reason)
}

/// A uniformly random point not in `seen`. In a finite space, once random draws keep hitting tried
/// points, the untried ones are listed and one of them is drawn, so the space is enumerated to its
/// end; `None` when nothing is left.
pub(crate) fn untried(
    domain: &Domain<'_>,
    seen: &Seen,
    search: &Search<'_>,
    rng: &mut Rng,
) -> Option<Params> {
    let Some(size) = domain.size() else {
        return (0..MAX_DRAWS)
            .map(|_| domain.sample(rng))
            .find(|p| !seen.contains(search.space, p));
    };
    for _ in 0..DRAWS {
        let p = domain.point_at(rng.below(size));
        if !seen.contains(search.space, &p) {
            return Some(p);
        }
    }
    let left: Vec<usize> = (0..size)
        .filter(|&i| !seen.contains(search.space, &domain.point_at(i)))
        .collect();
    (!left.is_empty()).then(|| domain.point_at(left[rng.below(left.len())]))
}
