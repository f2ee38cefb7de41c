//! One trainer per project and history: a second mlops-tui on the same project and data directory
//! refuses at once, naming the first (pid, start, command) and its lock; once the first is killed,
//! the lock is taken over without anyone deleting a file. Real binaries; the Docker engine is made
//! unreachable (a socket that does not exist) so that the holder only waits, holding its lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, commit_all, tmux::Tmux};

const NO_DOCKER: &str = "unix:///nonexistent/mlops-tui-test/docker.sock";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("mlops.toml"),
        "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("train.py"), "print('accuracy=1')\n").unwrap();
    commit_all(dir.path(), "project");
    dir
}

fn watcher(project: &Path, data: &Path) -> Child {
    Command::new(bin())
        .args(["run", "--headless"])
        .arg(project)
        .env("MLOPS_TUI_DATA_DIR", data)
        .env("MLOPS_TUI_STATE_DIR", data)
        .env("DOCKER_HOST", NO_DOCKER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until a lock file under `data/locks` names process `pid`; answers the file.
fn lock_of(data: &Path, pid: u32) -> std::path::PathBuf {
    let start = Instant::now();
    loop {
        let found = std::fs::read_dir(data.join("locks"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                std::fs::read_to_string(p)
                    .is_ok_and(|t| t.lines().next() == Some(&format!("pid {pid}")))
            });
        if let Some(p) = found {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no lock file names pid {pid}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_second_instance_on_the_project_refuses_naming_the_first_and_takes_over_when_it_dies() {
    let project = project();
    let data = tempfile::tempdir().unwrap();
    let mut first = watcher(project.path(), data.path());
    let lock = lock_of(data.path(), first.id());

    let second = Command::new(bin())
        .args(["run", "--headless", "--once"])
        .arg(project.path())
        .env("MLOPS_TUI_DATA_DIR", data.path())
        .env("MLOPS_TUI_STATE_DIR", data.path())
        .env("DOCKER_HOST", NO_DOCKER)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: another mlops-tui (pid {} on ", first.id()))
            && stderr.contains(&format!(
                "`mlops-tui run --headless {}`",
                project.path().display()
            ))
            && stderr.contains(&format!("(lock {})", lock.display()))
            && stderr.contains("stop it or wait for it to end"),
        "{stderr}"
    );
    // Refused before anything was recorded.
    assert!(
        !data.path().join("history.sqlite3").exists() || {
            let s = mlops_tui::adapters::store::Store::open(&data.path().join("history.sqlite3"))
                .unwrap();
            s.runs(10).unwrap().is_empty()
        }
    );

    // The holder dies without a word: its lock goes with it.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut third = watcher(project.path(), data.path());
    assert_eq!(lock_of(data.path(), third.id()), lock);
    third.kill().unwrap();
    third.wait().unwrap();
}

#[test]
fn the_dashboard_refused_by_the_lock_says_so_on_a_sane_terminal() {
    let project = project();
    let data = tempfile::tempdir().unwrap();
    let mut first = watcher(project.path(), data.path());
    lock_of(data.path(), first.id());

    let term = Tmux::start("lock");
    term.run(&format!(
        "MLOPS_TUI_DATA_DIR={} MLOPS_TUI_STATE_DIR={} DOCKER_HOST={NO_DOCKER} {} run {}; echo exit=$?",
        data.path().display(),
        data.path().display(),
        bin().display(),
        project.path().display()
    ));
    let screen = term.wait_for("the refusal", Duration::from_secs(20), |s| {
        s.contains("exit=1")
    });
    assert!(
        screen.contains(&format!("error: another mlops-tui (pid {}", first.id())),
        "{screen}"
    );
    // The terminal is not left raw: a typed line still echoes and runs.
    term.run("echo still-cooked");
    term.wait_for("a cooked terminal", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.trim() == "still-cooked")
    });
    first.kill().unwrap();
    first.wait().unwrap();
}
