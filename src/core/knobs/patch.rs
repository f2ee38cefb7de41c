//! Turning parameters into new file texts and the per-line edits that describe them.
//!
//! Literals are replaced first (a literal never spans a newline, so lines keep their numbers), then
//! repeated blocks are copied or removed line by line; a literal knob inside a block therefore
//! changes in every copy.

use std::collections::BTreeMap;

use serde_json::Value;

use super::literal::{Lit, render, same};
use super::{KnobError, Params, Patch, Place, SourceEdit, misfit};

/// Most copies of a block: far past any useful network, short of a file too big to commit.
const MAX_REPEAT: u64 = 1000;

#[derive(Default)]
struct FileChanges<'p> {
    /// Each literal with its new text.
    literals: Vec<(&'p Lit, String)>,
    /// Blocks (first, last line) and how many times each is written.
    repeats: Vec<(usize, usize, usize)>,
}

pub(super) fn patch(
    sources: &BTreeMap<String, String>,
    places: &BTreeMap<String, Place>,
    params: &Params,
) -> Result<Patch, KnobError> {
    let mut by_file: BTreeMap<&str, FileChanges> = BTreeMap::new();
    for (name, place) in places {
        let Some(value) = params.get(name) else {
            continue;
        };
        match place {
            Place::Literal { file, lit } => {
                if same(&lit.value, value) {
                    continue;
                }
                let text = render(&lit.kind, value)
                    .map_err(|holds| misfit(name, file, lit, value, holds))?;
                by_file
                    .entry(file.as_str())
                    .or_default()
                    .literals
                    .push((lit, text));
            }
            Place::Repeat {
                file,
                first,
                last,
                min,
            } => {
                let n = repeat_count(name, file, *first, value, *min)?;
                if n != 1 {
                    by_file
                        .entry(file)
                        .or_default()
                        .repeats
                        .push((*first, *last, n));
                }
            }
        }
    }
    let mut out = Patch::default();
    for (file, changes) in by_file {
        let src = sources.get(file).map(String::as_str).unwrap_or("");
        let (text, edits) = apply(file, src, changes);
        out.files.insert(file.to_owned(), text);
        out.edits.extend(edits);
    }
    Ok(out)
}

/// `patch` with each notebook's edited code text written back into its JSON, and its edits named
/// by cell: `digits.ipynb In[3]` line 2 (the line within the cell) instead of a line of the text.
pub(super) fn into_notebooks(
    mut patch: Patch,
    sources: &BTreeMap<String, String>,
    notebooks: &BTreeMap<String, String>,
) -> Result<Patch, KnobError> {
    use crate::core::notebook::{cell_line, patch_cells};
    for (file, json) in notebooks {
        let Some(text) = patch.files.get_mut(file) else {
            continue;
        };
        *text = patch_cells(json, text).map_err(|e| KnobError(format!("{file}: {e}")))?;
        let original = sources.get(file).map(String::as_str).unwrap_or("");
        for e in patch.edits.iter_mut().filter(|e| &e.file == file) {
            if let Some((cell, line)) = cell_line(original, e.line) {
                e.file = format!("{file} In[{cell}]");
                e.line = line;
            }
        }
    }
    Ok(patch)
}

fn repeat_count(
    name: &str,
    file: &str,
    first: usize,
    value: &Value,
    min: u32,
) -> Result<usize, KnobError> {
    let n = value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && *v >= f64::from(min) && *v <= MAX_REPEAT as f64);
    n.map(|v| v as usize).ok_or_else(|| {
        KnobError(format!(
            "{file}:{first}: `{name}` = {value}: a repeated block is written a whole number of times, from {min} to {MAX_REPEAT}"
        ))
    })
}

fn display(line: &str) -> String {
    line.trim_end_matches(['\n', '\r']).to_owned()
}

/// The new text of one file and its edits, in line order.
fn apply(file: &str, src: &str, changes: FileChanges) -> (String, Vec<SourceEdit>) {
    let mut literals = changes.literals;
    literals.sort_by_key(|(lit, _)| std::cmp::Reverse(lit.start));
    let mut replaced = src.to_owned();
    for (lit, text) in &literals {
        replaced.replace_range(lit.start..lit.end, text);
    }
    let changed: Vec<usize> = literals.iter().map(|(lit, _)| lit.line).collect();
    let old_lines: Vec<&str> = src.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = replaced.split_inclusive('\n').collect();
    let edit = |line: usize, old: &str, new: &str| SourceEdit {
        file: file.to_owned(),
        line,
        old: display(old),
        new: display(new),
    };
    let mut text = String::with_capacity(replaced.len());
    let mut edits = Vec::new();
    for (i, (old, new)) in old_lines.iter().zip(&new_lines).enumerate() {
        let line = i + 1;
        let block = |&&(a, b, _): &&(usize, usize, usize)| (a..=b).contains(&line);
        if changes.repeats.iter().filter(block).any(|r| r.2 == 0) {
            edits.push(edit(line, old, ""));
            continue;
        }
        text.push_str(new);
        if changed.contains(&line) {
            edits.push(edit(line, old, new));
        }
        for &(first, _, n) in changes.repeats.iter().filter(|r| r.1 == line) {
            let block = &new_lines[first - 1..line];
            for copy in std::iter::repeat_n(block, n.saturating_sub(1)).flatten() {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(copy);
                edits.push(edit(line, "", copy));
            }
        }
    }
    (text, edits)
}
