//! Source bindings of `[tweak.space]` dimensions and the `{name}` templates of `train.command`.
//!
//! A dimension written with `source = "..."` tweaks a literal in the training code instead of (or
//! besides) a value in `params.json`; see [`crate::core::knobs`] for how the place is found and
//! patched. Everything here is checked while deserializing, so a bad binding is an error at its own
//! line of `mlops.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::space::{RawDimension, RawRepeat};
use super::{Dimension, Params};

/// Where in the training code a dimension's value lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceBinding {
    /// Repository-relative path with `/` separators; never absolute, never with `..`.
    pub file: String,
    /// The 1-based, inclusive lines given after the file (`train.py:64`, `train.py:47-48`): the
    /// only lines searched. `None` searches the whole file.
    pub lines: Option<(usize, usize)>,
    pub target: BindTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BindTarget {
    /// The one literal on the lines; `arg` chooses among several by keyword or assigned name.
    Literal { arg: Option<String> },
    /// The keyword argument `arg=` of calls named `call` (matched on the dotted suffix).
    Keyword { call: String, arg: String },
    /// The 0-based positional argument `index` of calls named `call`.
    Positional { call: String, index: usize },
    /// The value of a plain assignment `name = literal`, at any indentation.
    Assign { name: String },
    /// The block of lines appears N times (the dimension's value); N is never below `min`.
    Repeat { min: u32 },
}

impl SourceBinding {
    /// The `source` value as written: `train.py`, `train.py:64` or `train.py:47-48`.
    pub fn source(&self) -> String {
        match self.lines {
            None => self.file.clone(),
            Some((a, b)) if a == b => format!("{}:{a}", self.file),
            Some((a, b)) => format!("{}:{a}-{b}", self.file),
        }
    }

    /// How the binding's place reads in messages, e.g. ``a `svm.SVC(… gamma=…)` call``.
    pub fn describe(&self) -> String {
        match &self.target {
            BindTarget::Literal { arg: None } => "a literal".into(),
            BindTarget::Literal { arg: Some(a) } => format!("a literal `{a}=…`"),
            BindTarget::Keyword { call, arg } => format!("`{call}(… {arg}=…)` call"),
            BindTarget::Positional { call, index } => {
                format!("`{call}(…)` call with a literal positional argument {index}")
            }
            BindTarget::Assign { name } => format!("`{name} = …` assignment"),
            BindTarget::Repeat { .. } => "block".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Dimension {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match SpaceEntry::deserialize(d)? {
            SpaceEntry(dimension, None) => Ok(dimension),
            SpaceEntry(_, Some(_)) => Err(D::Error::custom(
                "a source binding belongs in [tweak.space]",
            )),
        }
    }
}

/// One dimension and its binding, as deserialized from a `[tweak.space]` entry.
pub(super) struct SpaceEntry(pub Dimension, pub Option<SourceBinding>);

impl<'de> Deserialize<'de> for SpaceEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut raw = RawDimension::deserialize(d)?;
        let binding = binding(&mut raw).map_err(D::Error::custom)?;
        let dimension = super::space::dimension(raw).map_err(D::Error::custom)?;
        Ok(SpaceEntry(dimension, binding))
    }
}

/// `[tweak]` as written; split into [`super::Tweak`]'s dimensions and bindings.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTweak {
    strategy: super::StrategyName,
    apply: super::ApplyMode,
    seed: u64,
    space: BTreeMap<String, SpaceEntry>,
    pruning: super::Pruning,
}

impl From<RawTweak> for super::Tweak {
    fn from(raw: RawTweak) -> Self {
        let mut tweak = super::Tweak {
            strategy: raw.strategy,
            apply: raw.apply,
            seed: raw.seed,
            pruning: raw.pruning,
            ..Default::default()
        };
        for (name, SpaceEntry(dimension, binding)) in raw.space {
            if let Some(b) = binding {
                tweak.bindings.insert(name.clone(), b);
            }
            tweak.space.insert(name, dimension);
        }
        tweak
    }
}

/// Takes the binding keys out of `raw`. A `repeat` binding also turns `raw` into the integer range
/// it stands for (step 1), so the strategies see an ordinary dimension.
fn binding(raw: &mut RawDimension) -> Result<Option<SourceBinding>, String> {
    let Some(source) = raw.source.take() else {
        return match (&raw.call, &raw.arg, &raw.index, &raw.assign, &raw.repeat) {
            (None, None, None, None, None) => Ok(None),
            _ => Err(
                "`call`, `arg`, `index`, `assign` and `repeat` bind a dimension to the code: add `source = \"train.py\"` (the file they are in)"
                    .into(),
            ),
        };
    };
    let (file, lines) = parse_source(&source)?;
    let target = target(raw, lines.is_some())?;
    if let (BindTarget::Repeat { .. }, None) = (&target, lines) {
        return Err(format!(
            "`repeat` needs the block's lines in `source`, e.g. `source = \"{file}:47-48\"`"
        ));
    }
    if let (false, Some((a, b))) = (matches!(target, BindTarget::Repeat { .. }), lines)
        && a != b
    {
        return Err(format!(
            "a line range (`{source}`) is only for `repeat`; name the one line of the literal, e.g. `\"{file}:{a}\"`"
        ));
    }
    Ok(Some(SourceBinding {
        file,
        lines,
        target,
    }))
}

/// `train.py`, `train.py:64` or `train.py:47-48`.
fn parse_source(source: &str) -> Result<(String, Option<(usize, usize)>), String> {
    let (file, lines) = match source.rsplit_once(':') {
        Some((file, spec)) if spec.chars().all(|c| c.is_ascii_digit() || c == '-') => {
            (file, Some(parse_lines(source, spec)?))
        }
        _ => (source, None),
    };
    let file = file.trim();
    if file.is_empty() {
        return Err(format!(
            "`source = \"{source}\"` names no file; write it like \"train.py:64\""
        ));
    }
    if file.starts_with('/') || file.contains('\\') || file.split('/').any(|part| part == "..") {
        return Err(format!(
            "`source = \"{source}\"` must be a path inside the repository, relative to its root with `/` (e.g. \"src/train.py\")"
        ));
    }
    Ok((file.trim_start_matches("./").to_owned(), lines))
}

fn parse_lines(source: &str, spec: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!(
            "`source = \"{source}\"`: after the file comes a line (`:64`) or a block of lines (`:47-48`), counted from 1"
        )
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, spec));
    let a: usize = a.parse().map_err(|_| bad())?;
    let b: usize = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

fn target(raw: &mut RawDimension, has_lines: bool) -> Result<BindTarget, String> {
    if let Some(repeat) = raw.repeat.take() {
        return repeat_target(raw, repeat);
    }
    let name = |v: Option<String>, key: &str| -> Result<Option<String>, String> {
        match v.map(|s| s.trim().to_owned()) {
            Some(s) if s.is_empty() => Err(format!("`{key}` must not be empty")),
            other => Ok(other),
        }
    };
    let call = name(raw.call.take(), "call")?;
    let arg = name(raw.arg.take(), "arg")?;
    let assign = name(raw.assign.take(), "assign")?;
    let index = raw.index.take();
    match (call, arg, index, assign) {
        (None, arg, None, None) if has_lines => Ok(BindTarget::Literal { arg }),
        (None, _, None, None) => Err(
            "a `source` without a line needs `call` + `arg`/`index` or `assign` to find the literal, or a line: `source = \"train.py:64\"`"
                .into(),
        ),
        (Some(call), Some(arg), None, None) => Ok(BindTarget::Keyword { call, arg }),
        (Some(call), None, Some(index), None) => {
            let index = usize::try_from(index)
                .map_err(|_| format!("`index` counts positional arguments from 0, found {index}"))?;
            Ok(BindTarget::Positional { call, index })
        }
        (Some(_), None, None, None) => Err(
            "`call` needs `arg = \"name\"` (a keyword argument) or `index = N` (a positional argument, from 0)"
                .into(),
        ),
        (Some(_), Some(_), Some(_), None) => {
            Err("give `arg` (a keyword argument) or `index` (a positional one), not both".into())
        }
        (None, _, Some(_), None) => Err("`index` needs `call = \"...\"`, the call it is an argument of".into()),
        (None, None, None, Some(name)) if is_identifier(&name) => Ok(BindTarget::Assign { name }),
        (None, None, None, Some(name)) => Err(format!(
            "`assign = \"{name}\"`: only plain names are bound (`epochs = 5`), not attributes or items"
        )),
        (_, _, _, Some(_)) => Err("`assign` stands alone: drop `call`, `arg` and `index`".into()),
    }
}

fn repeat_target(raw: &mut RawDimension, repeat: RawRepeat) -> Result<BindTarget, String> {
    if raw.call.is_some() || raw.arg.is_some() || raw.index.is_some() || raw.assign.is_some() {
        return Err("`repeat` stands alone: drop `call`, `arg`, `index` and `assign`".into());
    }
    if raw.start.is_some()
        || raw.min.is_some()
        || raw.max.is_some()
        || raw.step.is_some()
        || raw.factor.is_some()
        || raw.log.is_some()
    {
        return Err("a `repeat` dimension takes its range from `repeat = { start, max }`".into());
    }
    if raw.values.is_some() || raw.choices.is_some() {
        return Err("a `repeat` dimension takes `repeat = { start, max }`, not `values`".into());
    }
    let min = repeat.min.unwrap_or(1);
    if min < 0 || repeat.start < min || repeat.max < repeat.start {
        return Err(format!(
            "`repeat` needs 0 <= min <= start <= max (min is 1 unless given), found min = {min}, start = {}, max = {}",
            repeat.start, repeat.max
        ));
    }
    let min = u32::try_from(min).map_err(|_| format!("`repeat.min` is too large: {min}"))?;
    raw.start = Some(toml::Value::Integer(repeat.start));
    raw.max = Some(toml::Value::Integer(repeat.max));
    raw.step = Some(toml::Value::Integer(1));
    Ok(BindTarget::Repeat { min })
}

/// A Python identifier in ASCII (the only kind a binding names).
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One piece of a command argument: text, or a `{name}` placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(String),
    Param(&'a str),
}

/// Splits a command argument into text and `{name}` placeholders. `{{` and `}}` stand for a brace;
/// a brace that does not enclose a plain name is text, so `'{"a": 1}'` stays as written.
fn pieces(arg: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            text.push(c);
            rest = &rest[2..];
            continue;
        }
        if c == '{'
            && let Some(close) = rest.find('}')
            && is_identifier(&rest[1..close])
        {
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Param(&rest[1..close]));
            rest = &rest[close + 1..];
            continue;
        }
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push(Piece::Text(text));
    out.retain(|p| *p != Piece::Text(String::new()));
    out
}

/// The names `{name}` in `command` refers to, in order of appearance.
pub(crate) fn template_names(command: &[String]) -> Vec<&str> {
    command
        .iter()
        .flat_map(|arg| pieces(arg))
        .filter_map(|p| match p {
            Piece::Param(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// A parameter's value as command-line text: strings bare, everything else as JSON.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl super::Config {
    /// `train.command` with each `{name}` replaced by `params[name]` as plain text (no quotes) and
    /// `{{`/`}}` by a brace. Load already checked that every name is a parameter; one missing from
    /// `params` anyway is left as written.
    pub fn render_command(&self, params: &Params) -> Vec<String> {
        self.train
            .command
            .iter()
            .map(|arg| {
                pieces(arg)
                    .into_iter()
                    .map(|p| match p {
                        Piece::Text(t) => t,
                        Piece::Param(name) => match params.get(name) {
                            Some(v) => plain(v),
                            None => format!("{{{name}}}"),
                        },
                    })
                    .collect()
            })
            .collect()
    }

    /// Every `{name}` of the command is a tweaked or fixed parameter.
    pub(super) fn check_templates(&self) -> Result<(), super::Violation> {
        let known = |n: &str| self.tweak.space.contains_key(n) || self.params.contains_key(n);
        match template_names(&self.train.command)
            .into_iter()
            .find(|n| !known(n))
        {
            Some(name) => Err(super::Violation::at(
                &["train", "command"],
                format!(
                    "`{{{name}}}` in `train.command` is not a parameter: add `{name}` to [tweak.space] or [params], or write `{{{{{name}}}}}` for a literal brace"
                ),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_escapes() {
        assert_eq!(
            pieces("--lr={lr}"),
            vec![Piece::Text("--lr=".into()), Piece::Param("lr")]
        );
        assert_eq!(pieces("{{lr}}"), vec![Piece::Text("{lr}".into())]);
        assert_eq!(pieces("{\"a\": 1}"), vec![Piece::Text("{\"a\": 1}".into())]);
        assert_eq!(pieces("{}"), vec![Piece::Text("{}".into())]);
    }

    #[test]
    fn sources_parse() {
        assert_eq!(parse_source("train.py").unwrap(), ("train.py".into(), None));
        assert_eq!(
            parse_source("./src/train.py:64").unwrap(),
            ("src/train.py".into(), Some((64, 64)))
        );
        assert_eq!(
            parse_source("train.py:47-48").unwrap(),
            ("train.py".into(), Some((47, 48)))
        );
        assert!(parse_source("train.py:0").is_err());
        assert!(parse_source("train.py:9-3").is_err());
        assert!(parse_source("/etc/train.py").is_err());
        assert!(parse_source("../x/train.py").is_err());
    }
}
