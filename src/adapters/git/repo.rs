//! Job 1's git side, through git2 only: find the project's repository, read a branch's head commit, and
//! export a commit's tree so that training sees exactly what was committed.
//!
//! A project may be a sub-directory of its repository (the sample projects are): the export then holds
//! only that sub-tree. A directory outside any repository runs from its working files, marked as such.
//!
//! `git2::Repository` is not `Sync`; every function here opens its own handle and is meant to be called
//! from `spawn_blocking` or a dedicated thread.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};

use crate::core::model::{CommitInfo, WORKING_TREE};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{path}: {message}")]
    Git { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a project lives: its repository (if any) and its path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Absolute path of the project directory.
    pub dir: PathBuf,
    /// The repository's work directory, when the project is inside one.
    pub repo_root: Option<PathBuf>,
    /// The project's path relative to `repo_root` (empty at the root).
    pub prefix: PathBuf,
}

impl Project {
    pub fn locate(dir: &Path) -> Result<Project, RepoError> {
        let dir = dir.canonicalize().map_err(|source| RepoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(RepoError::Git {
                path: dir,
                message: "not a directory".into(),
            });
        }
        match Repository::discover(&dir) {
            Ok(repo) => {
                let root = repo
                    .workdir()
                    .ok_or_else(|| RepoError::Git {
                        path: dir.clone(),
                        message: "bare repositories cannot be trained from directly".into(),
                    })?
                    .canonicalize()
                    .map_err(|source| RepoError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                let prefix = dir
                    .strip_prefix(&root)
                    .unwrap_or(Path::new(""))
                    .to_path_buf();
                Ok(Project {
                    dir,
                    repo_root: Some(root),
                    prefix,
                })
            }
            Err(_) => Ok(Project {
                dir,
                repo_root: None,
                prefix: PathBuf::new(),
            }),
        }
    }

    /// The head commit of `branch` (or of the checked-out branch). Outside git: a working-tree marker.
    pub fn head(&self, branch: Option<&str>) -> Result<CommitInfo, RepoError> {
        let Some(root) = &self.repo_root else {
            return Ok(CommitInfo {
                id: WORKING_TREE.into(),
                summary: "files on disk (not a git repository)".into(),
                author: String::new(),
                branch: String::new(),
                time: 0,
            });
        };
        let git = |e: git2::Error| RepoError::Git {
            path: root.clone(),
            message: e.message().to_string(),
        };
        let repo = Repository::open(root).map_err(git)?;
        let (branch_name, commit) = match branch {
            Some(b) => {
                let br =
                    repo.find_branch(b, git2::BranchType::Local)
                        .map_err(|e| RepoError::Git {
                            path: root.clone(),
                            message: format!("branch \"{b}\": {}", e.message()),
                        })?;
                (b.to_string(), br.get().peel_to_commit().map_err(git)?)
            }
            None => {
                let head = repo.head().map_err(|e| RepoError::Git {
                    path: root.clone(),
                    message: format!("no commit to train yet ({})", e.message()),
                })?;
                let name = head.shorthand().unwrap_or("HEAD").to_string();
                (name, head.peel_to_commit().map_err(git)?)
            }
        };
        Ok(CommitInfo {
            id: commit.id().to_string(),
            summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
            author: commit.author().name().unwrap_or("").to_string(),
            branch: branch_name,
            time: commit.time().seconds(),
        })
    }

    /// Writes the project's files as of `commit` into `dest` (created; must not exist or be empty).
    pub fn export(&self, commit: &CommitInfo, dest: &Path) -> Result<(), RepoError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RepoError::Io { path, source }
        };
        std::fs::create_dir_all(dest).map_err(io(dest))?;
        let Some(root) = &self.repo_root else {
            return copy_dir(&self.dir, dest);
        };
        let git = |e: git2::Error| RepoError::Git {
            path: root.clone(),
            message: e.message().to_string(),
        };
        let repo = Repository::open(root).map_err(git)?;
        let oid = git2::Oid::from_str(&commit.id).map_err(git)?;
        let tree = repo.find_commit(oid).map_err(git)?.tree().map_err(git)?;
        let tree = if self.prefix.as_os_str().is_empty() {
            tree
        } else {
            let entry = tree.get_path(&self.prefix).map_err(|_| RepoError::Git {
                path: root.clone(),
                message: format!(
                    "{} does not exist in commit {}",
                    self.prefix.display(),
                    commit.short()
                ),
            })?;
            repo.find_tree(entry.id()).map_err(|_| RepoError::Git {
                path: root.clone(),
                message: format!(
                    "{} is not a directory in commit {}",
                    self.prefix.display(),
                    commit.short()
                ),
            })?
        };
        let mut failure: Option<RepoError> = None;
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            let Ok(name) = entry.name() else {
                return TreeWalkResult::Skip;
            };
            let path = dest.join(dir).join(name);
            let result = match entry.kind() {
                Some(ObjectType::Tree) => std::fs::create_dir_all(&path).map_err(io(&path)),
                Some(ObjectType::Blob) => write_blob(&repo, root, entry, &path),
                // Submodules (commits) are not part of the tree's content.
                _ => Ok(()),
            };
            match result {
                Ok(()) => TreeWalkResult::Ok,
                Err(e) => {
                    failure = Some(e);
                    TreeWalkResult::Abort
                }
            }
        })
        .map_err(|e| failure.take().unwrap_or_else(|| git(e)))?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(())
    }
}

/// Writes one blob of an exported tree: a symlink stays a symlink, and only the executable bit of the
/// mode is kept (0755 or 0644).
fn write_blob(
    repo: &Repository,
    root: &Path,
    entry: &git2::TreeEntry<'_>,
    path: &Path,
) -> Result<(), RepoError> {
    let io = |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let blob = repo.find_blob(entry.id()).map_err(|e| RepoError::Git {
        path: root.to_path_buf(),
        message: e.message().to_string(),
    })?;
    if entry.filemode() == 0o120000 {
        let target = String::from_utf8_lossy(blob.content()).into_owned();
        return std::os::unix::fs::symlink(target, path).map_err(io);
    }
    std::fs::write(path, blob.content()).map_err(io)?;
    let mode = if entry.filemode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RepoError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        RepoError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Copies a plain directory, skipping hidden entries and Python caches.
fn copy_dir(src: &Path, dest: &Path) -> Result<(), RepoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RepoError::Io { path, source }
    };
    for entry in std::fs::read_dir(src).map_err(io(src))? {
        let entry = entry.map_err(io(src))?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s.starts_with('.') || name_s == "__pycache__" {
            continue;
        }
        let from = entry.path();
        let to = dest.join(&name);
        let ft = entry.file_type().map_err(io(&from))?;
        if ft.is_dir() {
            std::fs::create_dir_all(&to).map_err(io(&to))?;
            set_mode(&to, 0o755)?;
            copy_dir(&from, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io(&to))?;
            set_mode(&to, 0o644)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_file(repo: &Repository, path: &str, content: &str, msg: &str) -> git2::Oid {
        let root = repo.workdir().unwrap();
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(path)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Ada", "ada@example.com").unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .map(|h| h.peel_to_commit().unwrap())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &refs)
            .unwrap()
    }

    #[test]
    fn exports_the_committed_subtree_only() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_file(&repo, "proj/train.py", "print('v1')\n", "first");
        commit_file(&repo, "other/x.py", "x\n", "second");
        std::fs::write(tmp.path().join("proj/train.py"), "print('uncommitted')\n").unwrap();
        let project = Project::locate(&tmp.path().join("proj")).unwrap();
        assert_eq!(project.prefix, PathBuf::from("proj"));
        let head = project.head(None).unwrap();
        assert_eq!(head.summary, "second");
        assert_eq!(head.author, "Ada");
        let out = tmp.path().join("out");
        project.export(&head, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("train.py")).unwrap(),
            "print('v1')\n"
        );
        assert!(!out.join("x.py").exists());
    }

    #[test]
    fn plain_directory_is_working_tree() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("train.py"), "x").unwrap();
        let project = Project::locate(tmp.path()).unwrap();
        let head = project.head(None).unwrap();
        assert!(head.is_working_tree());
        let out = tempfile::tempdir().unwrap();
        project.export(&head, &out.path().join("w")).unwrap();
        assert!(out.path().join("w/train.py").exists());
    }

    #[test]
    fn unknown_branch_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_file(&repo, "a.py", "a", "one");
        let project = Project::locate(tmp.path()).unwrap();
        let e = project.head(Some("nope")).unwrap_err().to_string();
        assert!(e.contains("branch \"nope\""), "{e}");
    }
}
