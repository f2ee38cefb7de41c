//! The identity of a point of the search space, so that "never propose a point twice" is a set
//! look-up instead of a scan of the history.

use std::collections::{BTreeMap, HashSet};

use super::Search;
use crate::core::config::{Dimension, Params};

/// A point's values on the space's dimensions, in dimension order, numbers by value (`16` and `16.0`
/// are one point, as [`super::same_value`] says). Parameters outside the space play no part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointKey(Vec<String>);

impl PointKey {
    pub fn of(space: &BTreeMap<String, Dimension>, params: &Params) -> PointKey {
        PointKey(
            space
                .keys()
                .map(|name| match params.get(name) {
                    None => "unset".to_string(),
                    Some(v) => match v.as_f64() {
                        // `-0.0 == 0.0`: one key for both.
                        Some(0.0) => "n0".to_string(),
                        Some(x) => format!("n{x:?}"),
                        None => v.to_string(),
                    },
                })
                .collect(),
        )
    }
}

/// The points a strategy must not propose: the history's, the pending ones and the current one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen(HashSet<PointKey>);

impl Seen {
    pub(crate) fn of(search: &Search<'_>) -> Seen {
        let mut seen = HashSet::new();
        seen.insert(PointKey::of(search.space, search.current));
        for t in search.history {
            seen.insert(PointKey::of(search.space, &t.params));
        }
        for p in search.pending {
            seen.insert(PointKey::of(search.space, p));
        }
        Seen(seen)
    }

    pub(crate) fn contains(&self, space: &BTreeMap<String, Dimension>, point: &Params) -> bool {
        self.0.contains(&PointKey::of(space, point))
    }

    pub(crate) fn insert(&mut self, space: &BTreeMap<String, Dimension>, point: &Params) {
        self.0.insert(PointKey::of(space, point));
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
