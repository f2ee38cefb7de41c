//! Which of a project's files detection reads, and those files once read.
//!
//! The walk itself (listing directories, looking at links, reading files) is I/O and lives in
//! `support::source_tree`; it follows the rules here and hands back a [`SourceTree`]. The walk is
//! deterministic (entries sorted by name, breadth-first) so that the file cap always keeps the same
//! files and the scanned list reads the same on every run.

use std::path::{Path, PathBuf};

/// Directory names that hold third-party or generated code, never the project's model.
pub const SKIPPED_DIRS: [&str; 5] = [
    "venv",
    ".venv",
    "__pycache__",
    "site-packages",
    "node_modules",
];

/// Larger files are generated or vendored code; skipping them bounds the time spent per file.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Bounds the work on huge monorepos; the files past the cap are reported in the log.
pub const MAX_FILES: usize = 2000;

/// A directory the walk does not enter: a hidden one or one of [`SKIPPED_DIRS`].
pub fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

/// A `.py` file or a notebook (`.ipynb`, read as its code cells: [`crate::core::notebook`]).
pub fn is_source_name(name: &str) -> bool {
    name.ends_with(".py") || crate::core::notebook::is_notebook(name)
}

/// The largest file named `name` that is read: [`MAX_FILE_BYTES`], or sixteen times that for a
/// notebook, which carries its outputs (plots as base64) beside its code.
pub fn size_cap(name: &str) -> u64 {
    match name.ends_with(".py") {
        true => MAX_FILE_BYTES,
        false => 16 * MAX_FILE_BYTES,
    }
}

/// The Python files of a project as read: paths relative to its directory, sorted, each with its
/// bytes as they are on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTree {
    root: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl SourceTree {
    /// `root` only names the project in errors; `files` are sorted here.
    pub fn new(root: PathBuf, mut files: Vec<(PathBuf, Vec<u8>)>) -> SourceTree {
        files.sort_by(|a, b| a.0.cmp(&b.0));
        SourceTree { root, files }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The files as (relative path, contents) pairs, sorted by path. Invalid UTF-8 is replaced, not
    /// an error: it can only be in strings or comments of a file Python would run. A notebook is
    /// read as its code cells; one that does not parse holds no code we can read.
    pub fn sources(&self) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .map(|(rel, bytes)| {
                let text = String::from_utf8_lossy(bytes).into_owned();
                let text = match crate::core::notebook::is_notebook(&rel.to_string_lossy()) {
                    true => crate::core::notebook::code_text(&text).unwrap_or_default(),
                    false => text,
                };
                (rel.clone(), text)
            })
            .collect()
    }
}
