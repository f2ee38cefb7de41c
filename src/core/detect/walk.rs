//! Finding the project's own Python files.
//!
//! The walk is deterministic (entries sorted by name, breadth-first) so that the file cap always keeps
//! the same files and the scanned list reads the same on every run. Symlinked directories are not
//! followed (no cycles, no escaping the checkout); symlinked files are read when their target lies inside the project.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use super::DetectError;

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

fn skipped_dir(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

/// Python files under `dir`, relative to it, sorted by path. When there are more than
/// [`MAX_FILES`], shallower files are kept first (breadth-first walk), since the entry point of a training project is near its root. Only an unreadable `dir` itself is an error; an
/// unreadable subdirectory is logged and skipped.
pub(super) fn python_files(dir: &Path) -> Result<Vec<PathBuf>, DetectError> {
    let mut found = Vec::new();
    // Breadth-first: directories still to visit, relative to `dir`.
    let mut pending = VecDeque::from([PathBuf::new()]);
    while let Some(rel) = pending.pop_front() {
        let entries = match read_sorted(&dir.join(&rel)) {
            Ok(entries) => entries,
            Err(source) if rel.as_os_str().is_empty() => {
                return Err(DetectError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
            Err(error) => {
                tracing::warn!(dir = %dir.join(&rel).display(), %error, "skipping unreadable directory");
                continue;
            }
        };
        for (name, file_type) in entries {
            let path = rel.join(&name);
            if file_type.is_dir() {
                if !skipped_dir(&name) {
                    pending.push_back(path);
                }
                continue;
            }
            if !is_scannable(dir, &path, &name) {
                continue;
            }
            if found.len() == MAX_FILES {
                tracing::warn!(dir = %dir.display(), max = MAX_FILES, "too many Python files; scanning only the first");
                found.sort();
                return Ok(found);
            }
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// A `.py` file or a notebook (`.ipynb`, read as its code cells: [`crate::core::notebook`]), regular
/// and no larger than [`MAX_FILE_BYTES`]. A symlink is followed only to a file inside `dir` (a link
/// committed to the repository must not make us read a host file); a dangling link, a link out of
/// the tree or a non-file is skipped.
fn is_scannable(dir: &Path, path: &Path, name: &str) -> bool {
    if !name.ends_with(".py") && !crate::core::notebook::is_notebook(name) {
        return false;
    }
    let full = dir.join(path);
    let Ok(own) = fs::symlink_metadata(&full) else {
        return false;
    };
    if own.file_type().is_symlink() {
        let inside = match (full.canonicalize(), dir.canonicalize()) {
            (Ok(target), Ok(root)) => target.starts_with(root),
            _ => false,
        };
        if !inside {
            tracing::info!(file = %path.display(), "skipping a symbolic link that leaves the project");
            return false;
        }
    }
    let Ok(meta) = fs::metadata(&full) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    // A notebook carries its outputs (plots as base64) beside its code.
    let cap = match name.ends_with(".py") {
        true => MAX_FILE_BYTES,
        false => 16 * MAX_FILE_BYTES,
    };
    if meta.len() > cap {
        tracing::info!(file = %path.display(), bytes = meta.len(), "skipping large Python file");
        return false;
    }
    true
}

/// Entries whose names are valid UTF-8, sorted; the file type is that of the entry itself, so a
/// symlink to a directory is not a directory here.
fn read_sorted(dir: &Path) -> std::io::Result<Vec<(String, fs::FileType)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        entries.push((name, entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}
