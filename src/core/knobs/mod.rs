//! Source knobs: search-space dimensions bound to a literal in the training code itself (a keyword
//! argument, a positional argument, an assignment) or to a block of lines repeated N times, so that a
//! script that reads no parameters can still be tweaked. An iteration's parameters become a [`Patch`]
//! of the commit's files; the engine commits it and trains the patched tree.
//!
//! Pure: the caller reads the files that [`Knobs::files`] names and hands their text in.

use std::collections::BTreeMap;

use crate::core::config::{Config, Params};

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

/// The bindings of a configuration, resolved against the commit's sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    sources: BTreeMap<String, String>,
}

impl Knobs {
    /// The repository-relative files the configuration's bindings name, to be read from the tree.
    pub fn files(_config: &Config) -> Vec<String> {
        Vec::new()
    }

    /// Finds every binding's place in `sources` (the text of [`Knobs::files`]). A binding that
    /// matches nothing, or more than one place, is an error.
    pub fn resolve(
        _config: &Config,
        sources: BTreeMap<String, String>,
    ) -> Result<Knobs, KnobError> {
        Ok(Knobs { sources })
    }

    /// True when no dimension is bound to the source.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// The values the bound places hold in the commit, by dimension name.
    pub fn current(&self) -> Params {
        Params::new()
    }

    /// The files changed so that each bound place holds `params`' value for its dimension.
    pub fn patch(&self, _params: &Params) -> Result<Patch, KnobError> {
        Ok(Patch::default())
    }
}
