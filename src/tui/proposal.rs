//! How a pending proposal is listed: one row per parameter, in name order. Shared by the tweak panel,
//! which draws the rows, and the reducer, which opens the selected row for editing.

use crate::core::tweak::Proposal;

/// One parameter of a proposal as the tweak panel lists it (all parameters, in name order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRow {
    pub name: String,
    /// The current value (`unset` when new).
    pub from: String,
    pub to: String,
    pub changed: bool,
}

pub fn proposal_rows(p: &Proposal) -> Vec<ProposalRow> {
    p.params
        .iter()
        .map(|(name, to)| {
            let change = p.changes.iter().find(|c| c.name == *name);
            ProposalRow {
                name: name.clone(),
                from: show(change.map_or(to, |c| &c.from)),
                to: show(to),
                changed: change.is_some(),
            }
        })
        .collect()
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "unset".into(),
        other => other.to_string(),
    }
}
