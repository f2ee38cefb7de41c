//! `[train] keep` on disk: copies the kept files from an earlier iteration's workspace into a new
//! one, and lists what a script wrote into its workspace (for the message of a script that ended
//! well without reporting anything).
//!
//! The earlier workspace was written by untrusted code: nothing in it is followed. A symbolic link
//! (as the kept path or one of its directories) is never copied nor read through, only named as
//! refused, so a script cannot make us copy a host file into the next container.

use std::path::{Path, PathBuf};

use crate::core::config::keep::matches;
use crate::engine::msg::{KeepPlan, Kept};
use crate::support::fsutil::Owner;

use super::workspace::{WORKSPACE_DIR, hand_over};

/// Copies the files `plan` names from iteration `plan.from`'s workspace (under `run_dir`) into the
/// fresh workspace `dest`, over what the commit has there, and hands them to `owner`.
pub fn carry(plan: &KeepPlan, run_dir: &Path, dest: &Path, owner: Owner) -> Kept {
    let src = run_dir
        .join(format!("iter-{}", plan.from))
        .join(WORKSPACE_DIR);
    let mut kept = Kept::default();
    let mut found = Vec::new();
    walk(&src, "", &plan.entries, &mut found, &mut kept.refused);
    for entry in &plan.entries {
        if !found.iter().any(|rel: &String| matches(entry, rel)) {
            kept.missing.push(entry.clone());
        }
    }
    for rel in found {
        match copy_one(&src.join(&rel), dest, &rel, owner) {
            Ok(size) => kept.files.push((rel, size)),
            Err(why) => kept.refused.push(format!("{rel}: {why}")),
        }
    }
    kept
}

/// Collects the regular files under `dir` (workspace-relative prefix `rel`) that an entry keeps,
/// descending only into directories that may hold such files. Links are refused, never followed.
fn walk(
    dir: &Path,
    rel: &str,
    entries: &[String],
    found: &mut Vec<String>,
    refused: &mut Vec<String>,
) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = read.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = match rel.is_empty() {
            true => name.clone(),
            false => format!("{rel}/{name}"),
        };
        let Ok(meta) = std::fs::symlink_metadata(dir.join(&name)) else {
            continue;
        };
        let kept = entries.iter().any(|e| matches(e, &path));
        if meta.file_type().is_symlink() {
            if kept || may_hold(entries, &path) {
                refused.push(format!("{path}: a symbolic link is not followed"));
            }
        } else if meta.is_dir() {
            if kept || may_hold(entries, &path) {
                walk(&dir.join(&name), &path, entries, found, refused);
            }
        } else if meta.is_file() && kept {
            found.push(path);
        }
    }
}

/// Whether an entry names something below directory `dir`.
fn may_hold(entries: &[String], dir: &str) -> bool {
    entries
        .iter()
        .any(|e| e.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
}

/// Why one kept file was not copied (named in the event log beside its path).
#[derive(Debug, thiserror::Error)]
enum CopyError {
    #[error("the commit has a symbolic link on the way; not written through")]
    LinkOnTheWay,
    #[error("{} is a file in the commit", .0.display())]
    FileOnTheWay(PathBuf),
    #[error("the commit has a link or a directory there; not replaced")]
    Occupied,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Copies `from` to `dest/rel`, creating its directories; refuses to write through a link the
/// commit has on the way. Answers the size.
fn copy_one(from: &Path, dest: &Path, rel: &str, owner: Owner) -> Result<u64, CopyError> {
    let mut at = dest.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(CopyError::LinkOnTheWay),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(CopyError::FileOnTheWay(at)),
            Err(_) => {
                std::fs::create_dir(&at)?;
                hand_over(&at, owner)?;
            }
        }
    }
    let to = dest.join(rel);
    if std::fs::symlink_metadata(&to).is_ok_and(|m| m.file_type().is_symlink() || m.is_dir()) {
        return Err(CopyError::Occupied);
    }
    let size = std::fs::copy(from, &to)?;
    hand_over(&to, owner)?;
    Ok(size)
}

/// The files the script created or changed in its workspace (compared with the run's pristine
/// export), workspace-relative with their sizes, at most `limit` of them, newest first.
pub fn written(workspace: &Path, pristine: &Path, limit: usize) -> Vec<(String, u64)> {
    let mut found: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
    let mut todo: Vec<PathBuf> = vec![workspace.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            let Ok(rel) = path.strip_prefix(workspace) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() && differs(&path, &pristine.join(rel), meta.len()) {
                let at = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((at, rel.to_string_lossy().into_owned(), meta.len()));
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found
        .into_iter()
        .take(limit)
        .map(|(_, p, n)| (p, n))
        .collect()
}

/// True when `path` is new or its bytes differ from `before`'s; sizes first, so large unchanged
/// data files of a different size are never read.
fn differs(path: &Path, before: &Path, len: u64) -> bool {
    match std::fs::symlink_metadata(before) {
        Ok(m) if m.is_file() && m.len() == len => {
            std::fs::read(path).ok() != std::fs::read(before).ok()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::IterationNo;

    fn plan(entries: &[&str]) -> KeepPlan {
        KeepPlan {
            from: IterationNo(1),
            entries: entries.iter().map(|e| e.to_string()).collect(),
            why: "the previous iteration, 1".into(),
        }
    }

    #[test]
    fn kept_files_replace_the_commits_and_links_are_refused() {
        let run = tempfile::tempdir().unwrap();
        let src = run.path().join("iter-1/workspace");
        std::fs::create_dir_all(src.join("ckpt")).unwrap();
        std::fs::write(src.join("mymodel.h5"), b"new model").unwrap();
        std::fs::write(src.join("ckpt/e1.pt"), b"e1").unwrap();
        std::fs::write(src.join("ckpt/log.txt"), b"no").unwrap();
        std::fs::write(src.join("other.pkl"), b"not kept").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("stolen.h5")).unwrap();
        let dest = run.path().join("iter-2/workspace");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("mymodel.h5"), b"old pickle").unwrap();
        let owner = Owner::for_container(run.path()).unwrap();
        let kept = carry(
            &plan(&["mymodel.h5", "ckpt/*.pt", "*.h5", "absent.bin"]),
            run.path(),
            &dest,
            owner,
        );
        assert_eq!(
            kept.files,
            [("ckpt/e1.pt".to_string(), 2), ("mymodel.h5".to_string(), 9)]
        );
        assert_eq!(kept.missing, ["absent.bin"]);
        assert_eq!(kept.refused, ["stolen.h5: a symbolic link is not followed"]);
        assert_eq!(
            std::fs::read(dest.join("mymodel.h5")).unwrap(),
            b"new model"
        );
        assert_eq!(std::fs::read(dest.join("ckpt/e1.pt")).unwrap(), b"e1");
        assert!(!dest.join("other.pkl").exists() && !dest.join("stolen.h5").exists());
    }

    #[test]
    fn written_lists_new_and_changed_files_only() {
        let ws = tempfile::tempdir().unwrap();
        let pristine = tempfile::tempdir().unwrap();
        for d in [ws.path(), pristine.path()] {
            std::fs::write(d.join("knn.py"), b"code").unwrap();
            std::fs::write(d.join("mymodel.h5"), b"old").unwrap();
        }
        assert!(written(ws.path(), pristine.path(), 5).is_empty());
        std::fs::write(ws.path().join("mymodel.h5"), b"new").unwrap();
        std::fs::create_dir(ws.path().join("out")).unwrap();
        std::fs::write(ws.path().join("out/plot.png"), b"png!").unwrap();
        let mut w = written(ws.path(), pristine.path(), 5);
        w.sort();
        assert_eq!(
            w,
            [
                ("mymodel.h5".to_string(), 3),
                ("out/plot.png".to_string(), 4)
            ]
        );
        assert_eq!(written(ws.path(), pristine.path(), 1).len(), 1);
    }
}
