//! Tweaked dimensions that provably change nothing: no source binding, no `{name}` in the command,
//! and Python code that never reads the parameters file.

use std::collections::BTreeMap;

use crate::core::config::{Config, template_names};

use super::discover::Suggested;
use super::find::reads_params;

/// One warning per tweaked dimension that nothing reads, given the project's files (path → text;
/// only `.py` files are read). Empty when any Python file mentions `MLOPS_PARAMS` or `params.json`
/// in code or a string (comments do not count), or when there is no Python file to judge by.
pub fn unread_dimensions(config: &Config, sources: &BTreeMap<String, String>) -> Vec<String> {
    let python: Vec<(&String, &String)> =
        sources.iter().filter(|(p, _)| p.ends_with(".py")).collect();
    if python.is_empty() || python.iter().any(|(_, src)| reads_params(src)) {
        return Vec::new();
    }
    let templated = template_names(&config.train.command);
    let script = entry_script(config, sources);
    let found = suggestions(sources, script.as_deref());
    config
        .tweak
        .space
        .keys()
        .filter(|k| !config.tweak.bindings.contains_key(*k) && !templated.contains(&k.as_str()))
        .map(|k| {
            let who = script.as_deref().unwrap_or("the code");
            // The knob of the same name when the code has one, else the entry script's first.
            let example = found.iter().find(|s| s.name == *k).or(found.first());
            let example = match example {
                Some(s) => format!("`{k} = {}` ({}:{})", s.entry, s.file, s.line),
                None => format!(
                    "`{k} = {{ source = \"{}:LINE\", values = [...] }}` for the literal on LINE",
                    script.as_deref().unwrap_or("train.py")
                ),
            };
            format!(
                "`{k}` is tweaked but nothing reads it: {who} reads no params.json/$MLOPS_PARAMS and no source binding or {{{k}}} in the command names it; bind it, e.g. {example}"
            )
        })
        .collect()
}

/// The first `.py` argument of the command that is one of `sources`.
fn entry_script(config: &Config, sources: &BTreeMap<String, String>) -> Option<String> {
    config
        .train
        .command
        .iter()
        .map(|a| a.trim_start_matches("./"))
        .find(|a| a.ends_with(".py") && sources.contains_key(*a))
        .map(str::to_owned)
}

/// The bindings `init` would suggest for the project, the entry script's first.
fn suggestions(sources: &BTreeMap<String, String>, script: Option<&str>) -> Vec<Suggested> {
    let files: Vec<(String, &str)> = sources
        .iter()
        .filter(|(p, _)| p.ends_with(".py"))
        .map(|(p, s)| (p.clone(), s.as_str()))
        .collect();
    let mut found = super::discover::suggestions(&files);
    found.sort_by_key(|s| Some(s.file.as_str()) != script);
    found
}
