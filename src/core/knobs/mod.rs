//! Source knobs: search-space dimensions bound to a literal in the training code itself (a keyword
//! argument, a positional argument, an assignment) or to a block of lines repeated N times, so that a
//! script that reads no parameters can still be tweaked. An iteration's parameters become a [`Patch`]
//! of the commit's files; the engine commits it and trains the patched tree.
//!
//! Pure: the caller reads the files that [`Knobs::files`] names and hands their text in. Places are
//! found on the tokens of [`crate::core::detect::lexer`], so a literal in a comment or a string is
//! never one.

mod discover;
mod files;
mod find;
mod literal;
mod patch;
mod unread;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::core::config::{BindTarget, Config, Dimension, Params, SourceBinding};

pub use discover::discover;
pub use files::file_use;
pub use unread::unread_dimensions;

use find::Found;
use literal::Lit;

/// One changed source line, for people: the tweak panel and the history show these as a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEdit {
    /// Path relative to the repository root, with `/` separators.
    pub file: String,
    /// 1-based line in the original file (for inserted lines: the line they follow).
    pub line: usize,
    /// The line before the edit; empty for an inserted line.
    pub old: String,
    /// The line after the edit; empty for a removed line.
    pub new: String,
}

/// The files an iteration's parameters change. Invariant: `edits` describe exactly the difference
/// between the original files and `files`; both are empty when no knob moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// Complete new contents of each changed file, by repository-relative path.
    pub files: BTreeMap<String, String>,
    pub edits: Vec<SourceEdit>,
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Why a binding cannot be used. The message names the file and line (of `mlops.toml` or the source).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KnobError(pub String);

/// Where one dimension's value lives in the commit.
#[derive(Debug, Clone, PartialEq)]
enum Place {
    Literal {
        file: String,
        lit: Lit,
    },
    /// Lines `first..=last` (1-based) are written N times; N never below `min`.
    Repeat {
        file: String,
        first: usize,
        last: usize,
        min: u32,
    },
}

impl Place {
    fn file(&self) -> &str {
        match self {
            Place::Literal { file, .. } | Place::Repeat { file, .. } => file,
        }
    }
}

/// The bindings of a configuration, resolved against the commit's sources. Invariant: every place
/// lies in a file of `sources`, and no two places overlap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    sources: BTreeMap<String, String>,
    places: BTreeMap<String, Place>,
    /// The notebooks among the sources, as their JSON: `sources` holds their code text
    /// ([`crate::core::notebook::code_text`]), and a patch is written back into the JSON.
    notebooks: BTreeMap<String, String>,
}

impl Knobs {
    /// The repository-relative files the configuration's bindings name, to be read from the tree.
    pub fn files(config: &Config) -> Vec<String> {
        let mut files: Vec<String> = config
            .tweak
            .bindings
            .values()
            .map(|b| b.file.clone())
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Finds every binding's place in `sources` (the text of [`Knobs::files`]). A binding that
    /// matches nothing, or more than one place, is an error; so is a dimension value that the
    /// literal's type cannot hold, so that a run fails before its first container.
    pub fn resolve(
        config: &Config,
        mut sources: BTreeMap<String, String>,
    ) -> Result<Knobs, KnobError> {
        let mut notebooks = BTreeMap::new();
        for (file, text) in sources.iter_mut() {
            if crate::core::notebook::is_notebook(file) {
                let code = crate::core::notebook::code_text(text)
                    .map_err(|e| KnobError(format!("{file}: {e}")))?;
                notebooks.insert(file.clone(), std::mem::replace(text, code));
            }
        }
        let mut places = BTreeMap::new();
        for (name, binding) in &config.tweak.bindings {
            let src = sources.get(&binding.file).ok_or_else(|| {
                KnobError(format!(
                    "{}: no such file in the commit, named by `{name} = {{ source = \"{}\", … }}` in mlops.toml; fix `source` (a path relative to the repository root)",
                    binding.file,
                    binding.source()
                ))
            })?;
            let place = place(name, binding, src)?;
            if let (Place::Literal { lit, .. }, Some(dim)) = (&place, config.tweak.space.get(name))
            {
                check_values(name, &binding.file, lit, dim)?;
            }
            places.insert(name.clone(), place);
        }
        check_overlaps(&places)?;
        Ok(Knobs {
            sources,
            places,
            notebooks,
        })
    }

    /// True when no dimension is bound to the source.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The values the bound places hold in the commit, by dimension name (a repeated block: 1).
    pub fn current(&self) -> Params {
        self.places
            .iter()
            .map(|(name, place)| {
                let value = match place {
                    Place::Literal { lit, .. } => lit.value.clone(),
                    Place::Repeat { .. } => serde_json::Value::from(1),
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// The files changed so that each bound place holds `params`' value for its dimension. A
    /// dimension missing from `params`, or at its current value, changes nothing.
    pub fn patch(&self, params: &Params) -> Result<Patch, KnobError> {
        let patch = patch::patch(&self.sources, &self.places, params)?;
        patch::into_notebooks(patch, &self.sources, &self.notebooks)
    }
}

/// The one place `binding` names in `src`.
fn place(name: &str, binding: &SourceBinding, src: &str) -> Result<Place, KnobError> {
    let file = binding.file.clone();
    if let BindTarget::Repeat { min } = binding.target {
        let (first, last) = binding.lines.unwrap_or((1, 1));
        check_block(&file, src, first, last)?;
        return Ok(Place::Repeat {
            file,
            first,
            last,
            min,
        });
    }
    if let Some((line, _)) = binding.lines {
        let count = src.lines().count();
        if line > count {
            return Err(KnobError(format!(
                "{file}:{line}: past the end of the file ({count} lines), named by `{name}`'s `source = \"{}\"` in mlops.toml; point it at the line of the value",
                binding.source()
            )));
        }
    }
    let found = find::find(src, &binding.target, binding.lines);
    let lits: Vec<&Lit> = found
        .iter()
        .filter_map(|f| match f {
            Found::Lit(l) => Some(l),
            Found::Expr { .. } => None,
        })
        .collect();
    match lits[..] {
        [lit] => Ok(Place::Literal {
            file,
            lit: lit.clone(),
        }),
        [] => Err(KnobError(nothing_found(name, binding, &found))),
        _ => Err(KnobError(several_found(name, binding, &lits))),
    }
}

fn nothing_found(name: &str, binding: &SourceBinding, found: &[Found]) -> String {
    let file = &binding.file;
    if let Some(Found::Expr { line, text }) = found.first() {
        return format!(
            "{file}:{line}: `{name}` is bound to `{text}`, which is not a literal; bind the literal it comes from instead (e.g. its assignment: `assign = \"…\"`)"
        );
    }
    match (&binding.target, binding.lines) {
        (BindTarget::Literal { arg: None }, Some((line, _))) => format!(
            "{file}:{line}: no literal on this line for `{name}`; point `source` at the line that holds the value"
        ),
        (BindTarget::Literal { arg: Some(arg) }, Some((line, _))) => format!(
            "{file}:{line}: no literal `{arg}=…` on this line for `{name}`; fix `arg` or point `source` at the line that holds the value"
        ),
        (_, Some((line, _))) => format!(
            "{file}:{line}: no {} on this line for `{name}`; fix the line in `source` or drop it to search the whole file",
            binding.describe()
        ),
        (_, None) => format!(
            "{file}: no {} with a literal for `{name}`; fix `{}` in mlops.toml, or bind the literal by its line: `source = \"{file}:LINE\"`",
            binding.describe(),
            match binding.target {
                BindTarget::Assign { .. } => "assign",
                _ => "call`/`arg",
            }
        ),
    }
}

fn several_found(name: &str, binding: &SourceBinding, lits: &[&Lit]) -> String {
    let file = &binding.file;
    if let (BindTarget::Literal { .. }, Some((line, _))) = (&binding.target, binding.lines) {
        let list: Vec<String> = lits.iter().map(|l| format!("`{}`", l.text)).collect();
        return format!(
            "{file}:{line}: {} literals on this line for `{name}` ({}); choose one with `arg = \"…\"` (its keyword or assigned name) or bind it by `call`",
            lits.len(),
            list.join(", ")
        );
    }
    let list: Vec<String> = lits
        .iter()
        .map(|l| format!("{file}:{} (`{}`)", l.line, l.text))
        .collect();
    format!(
        "`{name}` ({}) matches {} places: {}; pick one by adding its line to `source`, e.g. `source = \"{file}:{}\"`",
        binding.describe(),
        lits.len(),
        list.join(", "),
        lits[0].line
    )
}

/// A repeated block must exist and hold whole statements: cutting a bracketed call in two would
/// repeat half of it.
fn check_block(file: &str, src: &str, first: usize, last: usize) -> Result<(), KnobError> {
    let count = src.lines().count();
    if last > count {
        return Err(KnobError(format!(
            "{file}:{first}-{last}: past the end of the file ({count} lines); point `source` at the block's lines"
        )));
    }
    let cut = find::statement_lines(src)
        .into_iter()
        .find(|&(a, b)| (a < first && b >= first) || (a <= last && b > last));
    match cut {
        Some((a, b)) => Err(KnobError(format!(
            "{file}:{first}-{last}: the block cuts the statement at {file}:{a}-{b} in two; make the block start and end with whole statements"
        ))),
        None => Ok(()),
    }
}

/// Every value the dimension can take fits the literal, checked at the start of the run.
fn check_values(name: &str, file: &str, lit: &Lit, dim: &Dimension) -> Result<(), KnobError> {
    let values = dim.extremes();
    for v in &values {
        literal::render(&lit.kind, v).map_err(|holds| misfit(name, file, lit, v, holds))?;
    }
    Ok(())
}

fn misfit(name: &str, file: &str, lit: &Lit, value: &serde_json::Value, holds: &str) -> KnobError {
    KnobError(format!(
        "{file}:{}: `{name}` = {value} does not fit the literal `{}`, which holds {holds}; give `{name}` values of that type in mlops.toml",
        lit.line, lit.text
    ))
}

/// Two dimensions on one literal, or two repeated blocks that overlap, cannot both be applied.
fn check_overlaps(places: &BTreeMap<String, Place>) -> Result<(), KnobError> {
    let all: Vec<(&String, &Place)> = places.iter().collect();
    for (i, (a, pa)) in all.iter().enumerate() {
        for (b, pb) in &all[i + 1..] {
            if pa.file() != pb.file() {
                continue;
            }
            let clash = match (pa, pb) {
                (Place::Literal { lit: x, .. }, Place::Literal { lit: y, .. }) => {
                    x.start == y.start
                }
                (
                    Place::Repeat { first, last, .. },
                    Place::Repeat {
                        first: f2,
                        last: l2,
                        ..
                    },
                ) => first <= l2 && f2 <= last,
                _ => false,
            };
            if clash {
                return Err(KnobError(format!(
                    "`{a}` and `{b}` bind overlapping places in {}; bind each place once",
                    pa.file()
                )));
            }
        }
    }
    Ok(())
}
