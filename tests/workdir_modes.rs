//! Iteration directories are private to the container's user, and the operator can remove a run's
//! directory with everything the container wrote in it: with mlops-tui running as root (the container
//! runs as `nobody`) and as a normal user (the container runs as that user). The real binary on the
//! real Docker engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{Fixture, bin};

/// Writes a nested directory and files into `model/` and `checkpoints/`, as a real trainer would.
const TRAIN: &str = r#"import os
os.makedirs("/mlops/model/deep/er", exist_ok=True)
with open("/mlops/model/deep/er/weights.bin", "w") as f:
    f.write("w")
with open("/mlops/checkpoints/state.json", "w") as f:
    f.write("{}")
print("epoch 1/1 accuracy=1.0", flush=True)
"#;

const TOML: &str = "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n[metric]\nname = \"accuracy\"\ntarget = 0.99\n[budget]\nmax_iterations = 1\n[resources]\nmemory = \"256m\"\n[notify.desktop]\nenabled = false\n";

/// A copy of the binary that any user can run: the checkout (and so `target/`) may sit in a
/// directory only its owner can enter, e.g. one made by `mktemp -d`.
fn shared_bin() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("mlops-tui");
    std::fs::copy(bin(), &path).unwrap();
    (dir, path)
}

/// `run --headless --once` on the fixture, as `user` (uid, gid) when given.
fn run_once(f: &Fixture, user: Option<(u32, u32)>) {
    let (_keep, binary) = shared_bin();
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--headless", "--once"])
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .env("HOME", f.data.path());
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
}

fn chown_all(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_all(&e.unwrap().path(), uid, gid);
        }
    }
}

/// The iteration directory and its two subdirectories: mode 0700, owned by `uid`.
fn assert_private(f: &Fixture, uid: u32) {
    let iter = f.data.path().join("runs/1/iter-1");
    assert!(iter.join("model/deep/er/weights.bin").exists());
    for dir in [iter.clone(), iter.join("model"), iter.join("checkpoints")] {
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o700,
            "{}",
            dir.display()
        );
        assert_eq!(meta.uid(), uid, "{}", dir.display());
    }
}

fn require_root() -> bool {
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if !root {
        eprintln!("skipped: needs root to act as root and as another user");
    }
    root
}

#[test]
fn as_root_the_container_is_nobody_and_the_run_dir_is_removable() {
    if !require_root() {
        return;
    }
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    run_once(&f, None);
    assert_private(&f, 65534);
    std::fs::remove_dir_all(f.data.path().join("runs/1")).unwrap();
}

#[test]
fn as_a_user_the_container_is_that_user_and_the_user_can_remove_the_run_dir() {
    if !require_root() {
        return;
    }
    const UID: u32 = 4242;
    // The Docker socket's group lets the user reach the engine.
    let docker_gid = std::fs::metadata("/var/run/docker.sock").unwrap().gid();
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    chown_all(f.dir(), UID, docker_gid);
    chown_all(f.data.path(), UID, docker_gid);
    run_once(&f, Some((UID, docker_gid)));
    assert_private(&f, UID);
    let run_dir = f.data.path().join("runs/1");
    let rm = Command::new("rm")
        .arg("-r")
        .arg(&run_dir)
        .uid(UID)
        .gid(docker_gid)
        .output()
        .unwrap();
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(!run_dir.exists());
}
