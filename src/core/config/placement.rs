//! `constraints` of a swarm's `[[engines]]` entry: Swarm's placement constraints, which every trial
//! service of that engine carries (`Placement.constraints`), so Swarm places trials only on the nodes
//! they name.
//!
//! ```toml
//! [[engines]]
//! name = "cluster"
//! kind = "swarm"
//! host = "tcp://manager:2376"
//! registry = "registry.lan:5000"
//! constraints = ["node.labels.disk==ssd", "node.role!=manager"]
//! ```
//!
//! Each is read here for its shape, as Swarm's own parser reads it (swarmkit's
//! `manager/constraint`): `<key> == <value>` or `<key> != <value>`, the key one Swarm matches, the
//! value of the characters Swarm accepts. A key Swarm does not know is accepted by Swarm and matches
//! no node, which leaves every trial waiting for ever: refused here instead. Whether a node satisfies
//! them is Swarm's business: a trial no node satisfies waits, and its task says why.

use super::{Config, Violation};

/// The keys Swarm matches exactly.
const KEYS: [&str; 5] = [
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
];

/// The key families Swarm matches by the label after the prefix.
const LABEL_PREFIXES: [&str; 2] = ["node.labels.", "engine.labels."];

/// What is wrong with one constraint, with the fix; `None` when Swarm reads it.
pub fn constraint_problem(constraint: &str) -> Option<String> {
    let example = "e.g. \"node.labels.disk==ssd\" or \"node.role!=manager\"";
    let Some((key, value)) = split(constraint) else {
        return Some(format!(
            "constraint {constraint:?} has no `==` or `!=`: write `<key>==<value>` or `<key>!=<value>`, {example}"
        ));
    };
    let (key, value) = (key.trim(), value.trim());
    if let Some(why) = key_problem(key) {
        return Some(format!("constraint {constraint:?}: {why}"));
    }
    if value.is_empty() || !value.chars().all(value_char) {
        return Some(format!(
            "constraint {constraint:?}: the value {value:?} is empty or holds a character Swarm refuses (it takes letters, digits, spaces and `:-_.*()?+[]\\^$|/`)"
        ));
    }
    if key.eq_ignore_ascii_case("node.role")
        && !["manager", "worker"].contains(&value.to_ascii_lowercase().as_str())
    {
        return Some(format!(
            "constraint {constraint:?}: node.role is \"manager\" or \"worker\", never {value:?}"
        ));
    }
    None
}

/// The key and the value around the first `==` or `!=`. Swarm splits on the first operator too.
fn split(constraint: &str) -> Option<(&str, &str)> {
    let at = ["==", "!="]
        .iter()
        .filter_map(|op| constraint.find(op))
        .min()?;
    Some((&constraint[..at], &constraint[at + 2..]))
}

/// Why `key` is not one Swarm matches.
fn key_problem(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    if KEYS.contains(&lower.as_str()) {
        return None;
    }
    for prefix in LABEL_PREFIXES {
        if let Some(label) = lower.strip_prefix(prefix) {
            let fine = !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            return match fine {
                true => None,
                false => Some(format!(
                    "the label in {key:?} is empty or holds a character other than letters, digits, `-`, `_` and `.`"
                )),
            };
        }
    }
    Some(format!(
        "the key {key:?} is not one Swarm matches: use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label> or engine.labels.<label>"
    ))
}

/// A character Swarm's constraint parser takes in a value.
fn value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_whitespace() || ":-_.*()?+[]\\^$|/".contains(c)
}

impl Config {
    /// Every constraint of every swarm engine has Swarm's shape; an error points at the constraint
    /// itself and quotes it.
    pub(super) fn check_constraints(&self) -> Result<(), Violation> {
        for (i, e) in self.engines.iter().enumerate() {
            for (j, c) in e.swarm_constraints().iter().enumerate() {
                if let Some(why) = constraint_problem(c) {
                    return Err(Violation::at(
                        &["engines", &i.to_string(), "constraints", &j.to_string()],
                        format!("engine {}: {why}", e.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use super::*;

    fn parse(engine: &str) -> Result<Config, String> {
        let text = format!(
            "[train]\ncommand = [\"python\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\
             [[engines]]\nname = \"c\"\nhost = \"local\"\n{engine}"
        );
        Config::parse(&text, Path::new("mlops.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn swarm_constraints_are_read_in_order() {
        let cfg = parse(
            "kind = \"swarm\"\nregistry = \"r:5000\"\nconstraints = [\"node.labels.disk==ssd\", \"node.role != manager\", \"engine.labels.zone==eu-1\", \"node.hostname==gpu-3\"]\n",
        )
        .unwrap();
        assert_eq!(
            cfg.engines[0].swarm_constraints(),
            [
                "node.labels.disk==ssd",
                "node.role != manager",
                "engine.labels.zone==eu-1",
                "node.hostname==gpu-3"
            ]
        );
        let none = parse("kind = \"swarm\"\nregistry = \"r:5000\"\n").unwrap();
        assert!(none.engines[0].swarm_constraints().is_empty());
        let text = toml::to_string(&cfg).unwrap();
        let again = Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(again.engines, cfg.engines);
    }

    #[test]
    fn a_bad_constraint_is_located_at_itself_and_quoted() {
        let cases = [
            ("node.labels.disk=ssd", "has no `==` or `!=`"),
            (
                "node.name==a",
                "the key \"node.name\" is not one Swarm matches",
            ),
            (
                "node.labels.==ssd",
                "the label in \"node.labels.\" is empty",
            ),
            ("node.labels.disk==", "the value \"\" is empty"),
            ("node.labels.disk==a,b", "holds a character Swarm refuses"),
            (
                "node.role==leader",
                "node.role is \"manager\" or \"worker\"",
            ),
        ];
        for (bad, expect) in cases {
            let engine = format!(
                "kind = \"swarm\"\nregistry = \"r:5000\"\nconstraints = [\n  \"node.role==worker\",\n  \"{bad}\",\n]\n"
            );
            let err = parse(&engine).expect_err(bad);
            assert!(err.starts_with("mlops.toml:13:"), "{bad}: {err}");
            assert!(
                err.contains(&format!("engine c: constraint {bad:?}")),
                "{err}"
            );
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }

    #[test]
    fn a_docker_engine_takes_no_constraints() {
        let err = parse("constraints = [\"node.role==worker\"]\n").unwrap_err();
        assert!(err.starts_with("mlops.toml:6:"), "{err}");
        assert!(
            err.contains("`constraints` apply to kind = \"swarm\" only"),
            "{err}"
        );
        assert!(err.contains("remove them"), "{err}");
    }
}
