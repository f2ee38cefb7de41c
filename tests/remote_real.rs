//! Watching a remote: a bare repository on disk is the remote, commits are pushed into it with git2
//! exactly as a developer's `git push` would, and the watcher must see each new head once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use git2::{Repository, Signature};
use mlops_tui::adapters::git::{RemoteError, RemoteWatcher, iteration_ref};

/// A developer's clone: commits `files` on `main` and pushes to the bare remote. Returns the id.
fn push(work: &Repository, files: &[(&str, &str)], message: &str) -> String {
    let root = work.workdir().unwrap().to_path_buf();
    let mut index = work.index().unwrap();
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = work.find_tree(index.write_tree().unwrap()).unwrap();
    let who = Signature::now("Ada Lovelace", "ada@example.org").unwrap();
    let parent = work
        .refname_to_id("refs/heads/main")
        .ok()
        .map(|id| work.find_commit(id).unwrap());
    let parents: Vec<_> = parent.iter().collect();
    let id = work
        .commit(
            Some("refs/heads/main"),
            &who,
            &who,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    work.find_remote("origin")
        .unwrap()
        .push(&["refs/heads/main:refs/heads/main"], None)
        .unwrap();
    id.to_string()
}

struct Setup {
    _dir: tempfile::TempDir,
    remote: std::path::PathBuf,
    cache: std::path::PathBuf,
    work: Repository,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    Repository::init_bare(&remote).unwrap();
    let work = Repository::init(dir.path().join("work")).unwrap();
    work.remote("origin", remote.to_str().unwrap()).unwrap();
    let cache = dir.path().join("cache");
    Setup {
        remote,
        cache,
        work,
        _dir: dir,
    }
}

#[test]
fn a_pushed_commit_is_reported_once_then_the_next_one() {
    let s = setup();
    let first = push(
        &s.work,
        &[("project/train.py", "print('v1')\n"), ("README", "hi\n")],
        "first model\n\nwith a body",
    );
    let mut watcher = RemoteWatcher::open(s.remote.to_str().unwrap(), "main", &s.cache).unwrap();
    assert_eq!(watcher.last_seen(), None);

    let seen = watcher
        .check()
        .unwrap()
        .expect("a fresh cache reports the head");
    assert_eq!(seen.id, first);
    assert_eq!(seen.summary, "first model");
    assert_eq!(seen.author, "Ada Lovelace");
    assert_eq!(seen.branch, "main");
    assert!(seen.time > 0);
    assert_eq!(watcher.check().unwrap(), None, "nothing changed");

    let second = push(
        &s.work,
        &[("project/train.py", "print('v2')\n")],
        "wider layer",
    );
    let seen = watcher.check().unwrap().expect("the new push");
    assert_eq!(
        (seen.id.as_str(), seen.summary.as_str()),
        (second.as_str(), "wider layer")
    );
    assert_eq!(watcher.check().unwrap(), None);

    // The last seen head is the mirror's, so it survives a restart.
    drop(watcher);
    let mut again = RemoteWatcher::open(s.remote.to_str().unwrap(), "main", &s.cache).unwrap();
    assert_eq!(again.last_seen().as_deref(), Some(second.as_str()));
    assert_eq!(again.check().unwrap(), None);

    // Both commits can be exported from the mirror, whole or one sub-directory.
    let out = tempfile::tempdir().unwrap();
    again
        .export(&first, Path::new("project"), &out.path().join("a"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("a/train.py")).unwrap(),
        "print('v1')\n"
    );
    assert!(!out.path().join("a/README").exists());
    again
        .export(&second, Path::new(""), &out.path().join("b"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("b/project/train.py")).unwrap(),
        "print('v2')\n"
    );
    assert!(out.path().join("b/README").exists());
}

/// Watching a remote, the iteration commits go into the mirror the engine exports from (the remote
/// itself is never written), under `refs/mlops/`, patched inside the watched sub-directory; a later
/// fetch keeps them.
#[test]
fn iteration_commits_live_in_the_mirror() {
    let s = setup();
    let first = push(
        &s.work,
        &[("project/train.py", "g = 1\n"), ("README", "hi\n")],
        "first",
    );
    let mut watcher = RemoteWatcher::open(s.remote.to_str().unwrap(), "main", &s.cache).unwrap();
    watcher.check().unwrap().expect("the head");
    let project = watcher.project(Path::new("project"));
    let patch = mlops_tui::core::knobs::Patch {
        files: std::collections::BTreeMap::from([("train.py".to_string(), "g = 2\n".to_string())]),
        edits: Vec::new(),
    };
    let refname = iteration_ref(1, 2);
    let id = project
        .commit_patch(
            &first,
            &patch,
            &refname,
            "mlops-tui run 1 iteration 2: g 1→2",
        )
        .unwrap();
    let mirror = Repository::open_bare(watcher.mirror_path()).unwrap();
    assert_eq!(mirror.refname_to_id(&refname).unwrap().to_string(), id);
    let tree = mirror
        .find_commit(git2::Oid::from_str(&id).unwrap())
        .unwrap()
        .tree()
        .unwrap();
    let blob = tree.get_path(Path::new("project/train.py")).unwrap().id();
    assert_eq!(mirror.find_blob(blob).unwrap().content(), b"g = 2\n");
    assert!(
        Repository::open_bare(&s.remote)
            .unwrap()
            .refname_to_id(&refname)
            .is_err()
    );
    push(&s.work, &[("project/train.py", "g = 3\n")], "second");
    watcher.check().unwrap().expect("the new push");
    assert_eq!(project.ref_target(&refname).unwrap(), Some(id.clone()));
    let out = tempfile::tempdir().unwrap();
    project.export_id(&id, &out.path().join("w")).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("w/train.py")).unwrap(),
        "g = 2\n"
    );
}

#[test]
fn a_file_url_works_like_a_path() {
    let s = setup();
    let id = push(&s.work, &[("train.py", "print(1)\n")], "one");
    let url = format!("file://{}", s.remote.display());
    let mut watcher = RemoteWatcher::open(&url, "main", &s.cache).unwrap();
    assert_eq!(watcher.check().unwrap().map(|c| c.id), Some(id));
    assert_eq!(watcher.check().unwrap(), None);
    assert_ne!(
        watcher.mirror_path(),
        RemoteWatcher::open(s.remote.to_str().unwrap(), "main", &s.cache)
            .unwrap()
            .mirror_path(),
        "one mirror per URL"
    );
}

#[test]
fn an_unreachable_remote_is_an_error_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let check = |url: &str| {
        let err = RemoteWatcher::open(url, "main", &cache)
            .unwrap()
            .check()
            .unwrap_err();
        assert!(matches!(err, RemoteError::Remote { .. }), "{err:?}");
        err.to_string()
    };

    let missing = dir.path().join("no-such-repo.git");
    let missing = missing.to_str().unwrap();
    assert_eq!(
        check(missing),
        format!("remote {missing}: cannot connect: there is no directory {missing}")
    );
    let url = format!("file://{missing}");
    assert_eq!(
        check(&url),
        format!("remote {url}: cannot connect: there is no directory {missing}")
    );

    let not_a_repo = dir.path().to_str().unwrap();
    let text = check(not_a_repo);
    assert!(
        text.starts_with(&format!("remote {not_a_repo}: cannot connect: ")),
        "{text}"
    );

    // Nothing listens on port 1: a network remote that cannot be reached.
    let closed = "git://127.0.0.1:1/ml-code.git";
    let text = check(closed);
    assert!(
        text.starts_with(&format!("remote {closed}: cannot connect: ")),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
}

#[test]
fn a_missing_branch_is_an_error_naming_it() {
    let s = setup();
    push(&s.work, &[("train.py", "print(1)\n")], "one");
    let url = s.remote.to_str().unwrap();
    let mut watcher = RemoteWatcher::open(url, "release", &s.cache).unwrap();
    assert_eq!(
        watcher.check().unwrap_err().to_string(),
        format!("remote {url}: no branch \"release\"")
    );
}

#[test]
fn an_unsupported_scheme_says_what_works() {
    let dir = tempfile::tempdir().unwrap();
    let url = "gopher://example.org/repo.git";
    let mut watcher = RemoteWatcher::open(url, "main", dir.path()).unwrap();
    assert_eq!(
        watcher.check().unwrap_err().to_string(),
        format!(
            "remote {url}: cannot connect: unsupported URL scheme `gopher` \
             (use a path, file://, https://, http://, ssh:// or git://)"
        )
    );
}
