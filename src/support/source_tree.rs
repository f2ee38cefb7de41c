//! Reading a project's Python files from disk for detection ([`crate::core::detect`]), by the rules
//! of [`crate::core::detect::sources`]: hidden directories and
//! [`SKIPPED_DIRS`](crate::core::detect::SKIPPED_DIRS) excluded, at most
//! [`MAX_FILES`] files of at most their [`size_cap`] each.
//!
//! Symlinked directories are not followed (no cycles, no escaping the checkout); a symlinked file is
//! read only when its target lies inside the project.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use crate::core::detect::DetectError;
use crate::core::detect::sources::{MAX_FILES, SourceTree, is_source_name, size_cap, skipped_dir};

/// The Python files under `dir`, read. Only an unreadable `dir` itself or an unreadable file that
/// passed the rules is an error; an unreadable subdirectory is logged and skipped.
pub fn read(dir: &Path) -> Result<SourceTree, DetectError> {
    let mut files = Vec::new();
    for rel in python_files(dir)? {
        let path = dir.join(&rel);
        let bytes = fs::read(&path).map_err(|source| DetectError::Io { path, source })?;
        files.push((rel, bytes));
    }
    Ok(SourceTree::new(dir.to_path_buf(), files))
}

/// Python files under `dir`, relative to it, sorted by path. When there are more than
/// [`MAX_FILES`], shallower files are kept first (breadth-first walk), since the entry point of a
/// training project is near its root.
fn python_files(dir: &Path) -> Result<Vec<PathBuf>, DetectError> {
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

/// A source file by its name ([`is_source_name`]), regular and no larger than its [`size_cap`]. A
/// symlink is followed only to a file inside `dir` (a link committed to the repository must not make
/// us read a host file); a dangling link, a link out of the tree or a non-file is skipped.
fn is_scannable(dir: &Path, path: &Path, name: &str) -> bool {
    if !is_source_name(name) {
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
    if meta.len() > size_cap(name) {
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

#[cfg(test)]
mod tests;
