//! Reading and writing files that a repository or a container named, without ever leaving the tree
//! they belong to.
//!
//! Repository content arrives by `git push` and a container writes its own workspace: both are
//! untrusted. A path they name (a knob's file, `metric.file`, `requirements.txt`, a model left next
//! to the script) is joined to a directory the host owns, and mlops-tui runs as root on many hosts;
//! following a symbolic link there would read `/etc/shadow` into the event log, the workspace or a
//! commit. So every component of such a path is looked at with `lstat`, a link anywhere is refused,
//! and the file opened is checked to be the one looked at (a link swapped in between is refused too).
//!
//! Invariant: a function here never opens, reads or writes anything outside `root`.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Why a path inside a tree cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InsideError {
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// The relative path of the link (the file itself, or a directory on the way to it).
    #[error("{} is a symbolic link, which is never followed", .0.display())]
    Link(PathBuf),
    #[error("{} leaves its directory (absolute, or with `..`)", .0.display())]
    Outside(PathBuf),
    #[error("{} is not a regular file", .0.display())]
    NotFile(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Follows `rel` from `root` one component at a time with `lstat`, refusing a link anywhere (the
/// last component included) and a non-directory before the end; answers the full path and the last
/// component's facts (`None` for an empty `rel`, which names `root` itself).
fn walk(root: &Path, rel: &Path) -> Result<(PathBuf, Option<std::fs::Metadata>), InsideError> {
    let mut shown = PathBuf::new();
    let mut full = root.to_path_buf();
    let mut last: Option<std::fs::Metadata> = None;
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                shown.push(name);
                full.push(name);
            }
            Component::CurDir => continue,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(InsideError::Outside(rel.to_path_buf()));
            }
        }
        if last.as_ref().is_some_and(|m| !m.is_dir()) {
            return Err(InsideError::NotFile(shown));
        }
        let meta = std::fs::symlink_metadata(&full).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                InsideError::Missing(shown.clone())
            } else {
                InsideError::Io {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
        if meta.file_type().is_symlink() {
            return Err(InsideError::Link(shown));
        }
        last = Some(meta);
    }
    Ok((full, last))
}

/// The full path and facts of the regular file `rel` under `root`, reached through real
/// directories only.
fn regular(root: &Path, rel: &Path) -> Result<(PathBuf, std::fs::Metadata), InsideError> {
    match walk(root, rel)? {
        (full, Some(meta)) if meta.is_file() => Ok((full, meta)),
        _ => Err(InsideError::NotFile(rel.to_path_buf())),
    }
}

/// True when `rel` under `root` is a regular file reached without a link (see [`open_inside`]).
pub fn is_regular_inside(root: &Path, rel: &Path) -> bool {
    regular(root, rel).is_ok()
}

/// Opens the regular file `rel` under `root`, refusing links on the way and a file that is not the
/// one checked (a link swapped in after the check).
pub fn open_inside(root: &Path, rel: &Path) -> Result<File, InsideError> {
    let (full, before) = regular(root, rel)?;
    let io = |source| InsideError::Io {
        path: rel.to_path_buf(),
        source,
    };
    let file = File::open(&full).map_err(io)?;
    let now = file.metadata().map_err(io)?;
    if (now.dev(), now.ino()) != (before.dev(), before.ino()) || !now.is_file() {
        return Err(InsideError::Link(rel.to_path_buf()));
    }
    Ok(file)
}

/// Reads at most `max` bytes of the regular file `rel` under `root` (see [`open_inside`]).
pub fn read_inside(root: &Path, rel: &Path, max: u64) -> Result<Vec<u8>, InsideError> {
    let file = open_inside(root, rel)?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|source| InsideError::Io {
            path: rel.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// Replaces the file `rel` under `root` with `bytes`: every directory on the way must be a real one,
/// and the file itself is written through a new temporary file renamed over it, so a link planted
/// at `rel` is replaced, never written through.
pub fn replace_inside(root: &Path, rel: &Path, bytes: &[u8]) -> Result<(), InsideError> {
    let dir = rel.parent().unwrap_or(Path::new(""));
    match walk(root, dir)? {
        (_, None) => {}
        (_, Some(meta)) if meta.is_dir() => {}
        _ => return Err(InsideError::NotFile(dir.to_path_buf())),
    }
    if rel.file_name().is_none() {
        return Err(InsideError::Outside(rel.to_path_buf()));
    }
    crate::support::fsutil::write_atomic(&root.join(rel), bytes).map_err(|source| InsideError::Io {
        path: rel.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "SECRET-MARKER").unwrap();
        std::fs::create_dir(root.path().join("src")).unwrap();
        std::fs::write(root.path().join("src/train.py"), "x = 1\n").unwrap();
        (root, outside)
    }

    #[test]
    fn a_regular_file_is_read() {
        let (root, _) = tree();
        let bytes = read_inside(root.path(), Path::new("./src/train.py"), 1024).unwrap();
        assert_eq!(bytes, b"x = 1\n");
        let cut = read_inside(root.path(), Path::new("src/train.py"), 3).unwrap();
        assert_eq!(cut, b"x =");
    }

    #[test]
    fn links_anywhere_on_the_way_are_refused() {
        let (root, outside) = tree();
        symlink(outside.path().join("secret"), root.path().join("shadow.py")).unwrap();
        symlink(outside.path(), root.path().join("src/etc")).unwrap();
        symlink("train.py", root.path().join("src/inner.py")).unwrap();
        for (rel, link) in [
            ("shadow.py", "shadow.py"),
            ("src/etc/secret", "src/etc"),
            ("src/inner.py", "src/inner.py"),
        ] {
            match read_inside(root.path(), Path::new(rel), 1024) {
                Err(InsideError::Link(p)) => assert_eq!(p, Path::new(link)),
                other => panic!("{rel}: {other:?}"),
            }
        }
    }

    #[test]
    fn paths_that_leave_the_tree_or_are_not_files_are_refused() {
        let (root, _) = tree();
        for rel in ["../x", "/etc/passwd", "src/../../x"] {
            assert!(
                matches!(
                    read_inside(root.path(), Path::new(rel), 10),
                    Err(InsideError::Outside(_))
                ),
                "{rel}"
            );
        }
        assert!(matches!(
            read_inside(root.path(), Path::new("src"), 10),
            Err(InsideError::NotFile(_))
        ));
        assert!(matches!(
            read_inside(root.path(), Path::new("src/train.py/x"), 10),
            Err(InsideError::NotFile(_))
        ));
        assert!(matches!(
            read_inside(root.path(), Path::new("nope.py"), 10),
            Err(InsideError::Missing(_))
        ));
    }

    #[test]
    fn replacing_a_planted_link_never_writes_through_it() {
        let (root, outside) = tree();
        symlink(
            outside.path().join("secret"),
            root.path().join("params.json"),
        )
        .unwrap();
        replace_inside(root.path(), Path::new("params.json"), b"{}").unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "SECRET-MARKER"
        );
        let meta = std::fs::symlink_metadata(root.path().join("params.json")).unwrap();
        assert!(meta.is_file());
        symlink(outside.path(), root.path().join("dir")).unwrap();
        assert!(matches!(
            replace_inside(root.path(), Path::new("dir/secret"), b"x"),
            Err(InsideError::Link(_))
        ));
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "SECRET-MARKER"
        );
    }
}
