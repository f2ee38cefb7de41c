//! `run --headless --once` against an engine that accepts the connection and never answers (a
//! listener that holds the socket open, as a wedged dockerd or a stray service on the port does):
//! the real binary gives up after 30 s with a non-zero status, naming the engine, its address and
//! the fix, and records no run. Before, it waited on the client's own minutes-long timeout and then
//! retried forever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Fixture, bin};

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9
"#;

/// Accepts every connection on `listener` and keeps it open without a byte of answer, until the
/// test process ends.
fn hold_connections<S: Send + 'static>(accept: impl Fn() -> std::io::Result<S> + Send + 'static) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok(stream) = accept() {
            held.push(stream);
        }
    });
}

/// The binary's one-shot run on `f`, with `env` and `args` added; its output and how long it took.
fn run_once(f: &Fixture, env: &[(&str, String)], args: &[String]) -> (Output, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--headless", "--once"])
        .args(args)
        .arg(f.dir())
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

fn check(what: &str, (out, took): (Output, Duration), want: &str, f: &Fixture) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(60),
        "{what}: gave up after {took:?}"
    );
    assert!(stderr.contains(want), "{what}: {stderr}\nexpected: {want}");
    let runs = mlops_tui::adapters::store::Store::open(&f.data.path().join("history.sqlite3"))
        .and_then(|s| s.runs(10))
        .unwrap_or_default();
    assert!(runs.is_empty(), "{what}: no run may be recorded: {runs:?}");
}

#[test]
fn once_gives_up_on_an_engine_that_never_answers_and_says_which_and_how_to_fix_it() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    hold_connections(move || tcp.accept());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    hold_connections(move || unix.accept());

    let by_env = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", "print(1)\n")]);
    let by_flag = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", "print(1)\n")]);
    let env_run = {
        let f = &by_env;
        let host = format!("tcp://127.0.0.1:{port}");
        std::thread::scope(|s| {
            let a = s.spawn(|| run_once(f, &[("DOCKER_HOST", host.clone())], &[]));
            let flag = format!("e=unix://{}", sock.display());
            let b = run_once(&by_flag, &[], &["--engine".into(), flag]);
            (a.join().unwrap(), b)
        })
    };
    let (from_env, from_flag) = env_run;
    check(
        "DOCKER_HOST",
        from_env,
        &format!(
            "engine local (tcp://127.0.0.1:{port}) did not answer in 30s: check that dockerd runs \
             there and listens on that address, or fix DOCKER_HOST"
        ),
        &by_env,
    );
    check(
        "--engine",
        from_flag,
        &format!(
            "engine e (unix://{}) did not answer in 30s: check that dockerd runs there and listens \
             on that address, or fix its address (--engine NAME=URL, or [[engines]] in mlops.toml)",
            sock.display()
        ),
        &by_flag,
    );
}
