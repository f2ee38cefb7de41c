//! Each iteration's tree as a real commit: the run's commit with the iteration's [`Patch`] applied,
//! kept under `refs/mlops/run-N/iter-K` in the project's repository (the bare mirror when watching
//! a remote), so that ordinary git shows what was trained (`git diff <run commit>
//! refs/mlops/run-3/iter-2`) and the best iteration can become a branch ([`Project::branch_at`]).
//!
//! Only objects and refs under `refs/mlops/` (and the branch `branch_at` is asked for) are written:
//! never the index, `HEAD` or another branch. Blocking, like the rest of the git adapter.

use std::path::Path;

use git2::{Oid, Repository};

use super::repo::{Project, RepoError};
use crate::core::knobs::Patch;

/// The ref that holds iteration `iteration` of run `run`.
pub fn iteration_ref(run: i64, iteration: u32) -> String {
    format!("refs/mlops/run-{run}/iter-{iteration}")
}

/// Who the iteration commits are by: the tool, not the operator.
const AUTHOR: (&str, &str) = ("mlops-tui", "mlops-tui@localhost");

impl Project {
    fn open_repo(&self) -> Result<(Repository, &Path), RepoError> {
        let root = self.repo_root.as_deref().ok_or_else(|| RepoError::Git {
            path: self.dir.clone(),
            message: "not a git repository: iterations cannot be kept as commits".into(),
        })?;
        let repo = Repository::open(root).map_err(|e| git_err(root, &e))?;
        Ok((repo, root))
    }

    /// Writes `patch` on top of commit `base` as a new commit whose only parent is `base`, with
    /// `message`, and points `refname` at it (replacing what it pointed at). An empty patch points
    /// `refname` at `base` itself. Patch paths are relative to the project's directory (the tree
    /// the run exports); the project's place in the repository is prepended. Answers the commit id.
    pub fn commit_patch(
        &self,
        base: &str,
        patch: &Patch,
        refname: &str,
        message: &str,
    ) -> Result<String, RepoError> {
        let (repo, root) = self.open_repo()?;
        let git = |e: git2::Error| git_err(root, &e);
        let base_commit = repo
            .find_commit(Oid::from_str(base).map_err(git)?)
            .map_err(git)?;
        let oid = if patch.is_empty() {
            base_commit.id()
        } else {
            let base_tree = base_commit.tree().map_err(git)?;
            let mut update = git2::build::TreeUpdateBuilder::new();
            for (file, text) in &patch.files {
                let path = self.prefix.join(file);
                refuse_links(&base_tree, &path, root)?;
                let blob = repo.blob(text.as_bytes()).map_err(git)?;
                let mode = match base_tree.get_path(&path) {
                    Ok(e) if e.filemode() == 0o100755 => git2::FileMode::BlobExecutable,
                    _ => git2::FileMode::Blob,
                };
                update.upsert(path.to_string_lossy().as_ref(), blob, mode);
            }
            let tree_id = update.create_updated(&repo, &base_tree).map_err(git)?;
            let tree = repo.find_tree(tree_id).map_err(git)?;
            let sig = git2::Signature::now(AUTHOR.0, AUTHOR.1).map_err(git)?;
            repo.commit(None, &sig, &sig, message, &tree, &[&base_commit])
                .map_err(git)?
        };
        repo.reference(refname, oid, true, message).map_err(git)?;
        Ok(oid.to_string())
    }

    /// The commit `refname` points at, when it exists.
    pub fn ref_target(&self, refname: &str) -> Result<Option<String>, RepoError> {
        let (repo, _) = self.open_repo()?;
        Ok(repo.refname_to_id(refname).ok().map(|o| o.to_string()))
    }

    /// The highest `N` of the `refs/mlops/run-N/...` refs in the repository, if any: numbers a new
    /// run must not take, whatever the history says (the history may have been started anew).
    pub fn highest_run_ref(&self) -> Result<Option<i64>, RepoError> {
        let (repo, root) = self.open_repo()?;
        let mut refs = repo
            .references_glob("refs/mlops/run-*")
            .map_err(|e| git_err(root, &e))?;
        Ok(refs
            .names()
            .filter_map(Result::ok)
            .filter_map(|name| {
                let rest = name.strip_prefix("refs/mlops/run-")?;
                rest.split('/').next()?.parse::<i64>().ok()
            })
            .max())
    }

    /// Whether commit `id` is in the repository (a ref can outlive its object: a prune, a copied
    /// `.git/refs`, a repository replaced by another clone).
    pub fn has_commit(&self, id: &str) -> Result<bool, RepoError> {
        let (repo, _) = self.open_repo()?;
        Ok(Oid::from_str(id).is_ok_and(|oid| repo.find_commit(oid).is_ok()))
    }

    /// The repository that holds the iteration refs, for messages.
    pub fn repo_path(&self) -> Option<&Path> {
        self.repo_root.as_deref()
    }

    /// Writes the project's files as of commit `id` into `dest` (see [`Project::export`]).
    pub fn export_id(&self, id: &str, dest: &Path) -> Result<(), RepoError> {
        let commit = crate::core::model::CommitInfo {
            id: id.to_string(),
            summary: String::new(),
            author: String::new(),
            branch: String::new(),
            time: 0,
        };
        self.export(&commit, dest)
    }

    /// Creates branch `name` at commit `id`. An existing branch is never moved: the error says so
    /// and how to choose another name.
    pub fn branch_at(&self, name: &str, id: &str) -> Result<(), RepoError> {
        let (repo, root) = self.open_repo()?;
        let git = |e: git2::Error| git_err(root, &e);
        if repo.find_branch(name, git2::BranchType::Local).is_ok() {
            return Err(RepoError::Git {
                path: root.to_path_buf(),
                message: format!(
                    "branch \"{name}\" already exists and is left as it is; pick another name \
                     with --branch NAME, or delete it first (git branch -D {name})"
                ),
            });
        }
        let commit = repo
            .find_commit(Oid::from_str(id).map_err(git)?)
            .map_err(git)?;
        repo.branch(name, &commit, false).map_err(git)?;
        Ok(())
    }
}

/// A patch never replaces a link (mode 120000) of the commit, nor writes below one: the knob's
/// text would have come from wherever the link points, and would be stored as a blob.
fn refuse_links(tree: &git2::Tree<'_>, path: &Path, root: &Path) -> Result<(), RepoError> {
    let mut prefix = std::path::PathBuf::new();
    for c in path.components() {
        prefix.push(c);
        if let Ok(e) = tree.get_path(&prefix)
            && e.filemode() == 0o120000
        {
            return Err(RepoError::Git {
                path: root.to_path_buf(),
                message: format!(
                    "{} is a symbolic link in the commit: a knob's file is never patched \
                     through a link; commit the file itself",
                    prefix.display()
                ),
            });
        }
    }
    Ok(())
}

fn git_err(root: &Path, e: &git2::Error) -> RepoError {
    RepoError::Git {
        path: root.to_path_buf(),
        message: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repository, String) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let mut index = repo.index().unwrap();
        for (path, text) in files {
            let full = tmp.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Ada", "ada@example.com").unwrap();
        let id = repo
            .commit(Some("HEAD"), &sig, &sig, "first", &tree, &[])
            .unwrap()
            .to_string();
        drop(tree);
        (tmp, repo, id)
    }

    fn patch(file: &str, text: &str) -> Patch {
        Patch {
            files: BTreeMap::from([(file.to_string(), text.to_string())]),
            edits: Vec::new(),
        }
    }

    #[test]
    fn a_patch_becomes_a_commit_on_its_ref_and_nothing_else_moves() {
        let (tmp, repo, base) = repo_with(&[("proj/train.py", "g = 1\n"), ("proj/m.toml", "x\n")]);
        let project = Project::locate(&tmp.path().join("proj")).unwrap();
        let head_before = repo.head().unwrap().target().unwrap();
        let refname = iteration_ref(3, 2);
        let id = project
            .commit_patch(
                &base,
                &patch("train.py", "g = 2\n"),
                &refname,
                "run 3 iteration 2: g 1→2",
            )
            .unwrap();
        let commit = repo.find_commit(Oid::from_str(&id).unwrap()).unwrap();
        assert_eq!(commit.parent_id(0).unwrap().to_string(), base);
        assert_eq!(commit.message().unwrap(), "run 3 iteration 2: g 1→2");
        let diff = repo
            .diff_tree_to_tree(
                Some(
                    &repo
                        .find_commit(Oid::from_str(&base).unwrap())
                        .unwrap()
                        .tree()
                        .unwrap(),
                ),
                Some(&commit.tree().unwrap()),
                None,
            )
            .unwrap();
        let changed: Vec<_> = diff
            .deltas()
            .map(|d| d.new_file().path().unwrap().display().to_string())
            .collect();
        assert_eq!(changed, ["proj/train.py"]);
        assert_eq!(project.ref_target(&refname).unwrap(), Some(id.clone()));
        assert_eq!(repo.head().unwrap().target().unwrap(), head_before);
        assert_eq!(repo.branches(None).unwrap().count(), 1);
        let out = tmp.path().join("out");
        project.export_id(&id, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("train.py")).unwrap(),
            "g = 2\n"
        );
    }

    #[test]
    fn an_empty_patch_points_the_ref_at_the_run_commit() {
        let (tmp, _repo, base) = repo_with(&[("train.py", "g = 1\n")]);
        let project = Project::locate(tmp.path()).unwrap();
        let id = project
            .commit_patch(&base, &Patch::default(), &iteration_ref(1, 1), "m")
            .unwrap();
        assert_eq!(id, base);
        assert_eq!(
            project.ref_target("refs/mlops/run-1/iter-1").unwrap(),
            Some(base)
        );
    }

    #[test]
    fn a_branch_is_made_once_and_never_moved() {
        let (tmp, _repo, base) = repo_with(&[("train.py", "g = 1\n")]);
        let project = Project::locate(tmp.path()).unwrap();
        project.branch_at("mlops/run-1-best", &base).unwrap();
        let e = project
            .branch_at("mlops/run-1-best", &base)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("already exists") && e.contains("--branch NAME"),
            "{e}"
        );
    }
}
