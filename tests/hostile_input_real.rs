//! What a pushed repository controls — its `mlops.toml`, its commit messages, what its script prints —
//! cannot take over the operator's terminal, burn the CPU before an error, start more trials than the
//! engine holds, or be misread as a result. Real engine, real git, the real binary where the
//! behaviour is the command line's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, bin, commit_all};
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::model::{IterStatus, RunStatus};

/// `[train]` on the numpy image and `[metric]` accuracy ≥ 0.9, then `rest`.
fn toml(rest: &str) -> String {
    format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n\n\
         [metric]\nname = \"accuracy\"\ntarget = 0.9\n\n{rest}"
    )
}

/// Runs the binary with `args` on the fixture's project, stdout and stderr pipes, killed (and the
/// test failed) past `limit`.
fn run_binary(f: &Fixture, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env("MLOPS_TUI_DATA_DIR", f.data.path())
        .env("MLOPS_TUI_STATE_DIR", f.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`mlops-tui {}` still running after {limit:?}; stderr:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The bytes a terminal acts on: C0 controls but the line feed, DEL, and the C1 controls as UTF-8.
fn terminal_controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .map(|c| format!("{:#x}", c as u32))
        .collect()
}

/// A script that prints a window title (OSC 0), a clipboard write (OSC 52), a screen clear, a
/// cursor-position request (the terminal would type its answer into the shell), NUL, BEL and a C1
/// CSI, and a commit message holding a title sequence: `run --headless --once` into a pipe (as
/// `| tee` would) writes none of it raw, shows all of it escaped, and keeps accents and CJK.
#[test]
fn headless_output_into_a_pipe_carries_no_terminal_control() {
    let script = "import sys\n\
                  hostile = '\\x1b]0;owned\\x07\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x1b[6n\\x00nul\\u009b2J\\x07 café 精度\\n'\n\
                  sys.stdout.buffer.write(hostile.encode())\n\
                  sys.stdout.flush()\n\
                  print('epoch 1/1 accuracy=0.95', flush=True)\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("[budget]\nmax_iterations = 1\n")),
        ("train.py", script),
    ]);
    std::fs::write(f.dir().join("notes.txt"), "x\n").unwrap();
    commit_all(f.dir(), "tune \u{1b}]0;pwned\u{7}the model");
    let dir = f.dir().display().to_string();
    let out = run_binary(
        &f,
        &["run", "--headless", "--once", &dir],
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        terminal_controls(&out.stdout),
        Vec::<String>::new(),
        "{stdout:?}"
    );
    assert_eq!(
        terminal_controls(&out.stderr),
        Vec::<String>::new(),
        "{stderr:?}"
    );
    assert!(
        stdout.contains(
            "[train:1] \\e]0;owned\\a\\e]52;c;ZXZpbA==\\a\\e[2J\\e[6n\\0nul\\u{9b}2J\\a café 精度\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"tune \\e]0;pwned\\athe model\""),
        "the commit summary is escaped too: {stdout}"
    );
}

/// A `[tweak.space]` of 10,000 dimensions is refused by its count, located, at once: the binary
/// exits within seconds (it used to spend minutes of CPU before the parameter-size error).
#[test]
fn ten_thousand_dimensions_are_refused_at_once_with_the_location() {
    let mut text = toml("[tweak.space]\n");
    for i in 0..10_000 {
        text.push_str(&format!("p{i:05} = {{ values = [1, 2, 3] }}\n"));
    }
    let f = Fixture::with_files(&[("mlops.toml", &text), ("train.py", "import numpy\n")]);
    let dir = f.dir().display().to_string();
    let started = Instant::now();
    let out = run_binary(
        &f,
        &["run", "--headless", "--once", &dir],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "{}/mlops.toml:9:8: [tweak.space] has 10000 dimensions; at most 100 can be searched",
        f.dir().canonicalize().unwrap().display()
    );
    assert!(stderr.contains(&expected), "{stderr}\nexpected: {expected}");
    println!("refused in {:?}", started.elapsed());
}

/// `parallel = 1000000` is refused where it is written, before any container.
#[test]
fn an_absurd_parallel_is_refused_with_the_location() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml("[budget]\nparallel = 1000000\n")),
        ("train.py", "import numpy\n"),
    ]);
    let dir = f.dir().display().to_string();
    let out = run_binary(
        &f,
        &["run", "--headless", "--once", &dir],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "/mlops.toml:10:1: `budget.parallel` is 1000000; at most 256 trials can run at once"
        ),
        "{stderr}"
    );
}

/// The most iterations of `run` that were running at the same moment, from the history's times.
fn most_at_once(f: &Fixture, run: RunId) -> usize {
    let its = f.store().iterations(run).unwrap();
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for it in &its {
        edges.push((it.started_at.unwrap(), 1));
        edges.push((it.finished_at.unwrap(), -1));
    }
    edges.sort();
    let mut now = 0;
    let mut most = 0;
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// `parallel` at four times the engine's CPUs, each trial held to 1 CPU: the engine trains as many
/// at once as it has CPUs, and the output says so once, with the reason.
#[tokio::test]
async fn parallel_is_capped_by_the_engine_cpus_and_says_so() {
    let docker = DockerBackend::connect_default().unwrap();
    let info = docker.client().info().await.unwrap();
    let cpus = u32::try_from(info.ncpu.unwrap()).unwrap();
    let parallel = cpus * 4;
    let rest = format!(
        "[budget]\nmax_iterations = {parallel}\nmax_failures = 0\nparallel = {parallel}\n\n\
         [resources]\ncpus = 1.0\nmemory = \"256m\"\n\n\
         [tweak]\nstrategy = \"random\"\napply = \"auto\"\n\n\
         [tweak.space]\nk = {{ values = [{}] }}\n",
        (1..=parallel)
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let script = "import time\ntime.sleep(2)\nprint('epoch 1/1 accuracy=0.5', flush=True)\n";
    let f = Fixture::with_files(&[("mlops.toml", &toml(&rest)), ("train.py", script)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{}", outcome.reason);
    let said = format!(
        "[engines] parallel = {parallel} capped to {cpus}: engine local has {cpus} CPU{} and \
         [resources] cpus = 1\n",
        if cpus == 1 { "" } else { "s" }
    );
    assert_eq!(out.matches(&said).count(), 1, "said once: {out}");
    let its = f.store().iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), parallel as usize);
    let most = most_at_once(&f, RunId(1));
    assert!(most <= cpus as usize, "{most} ran at once on {cpus} CPUs");
    assert!(f.leftover_containers().await.is_empty());
}

/// `accuracy=0,95` is neither 0 nor 95: the event log says so with the fix while the script runs,
/// nothing is recorded as the metric, and since the script reported nothing else the run stops with
/// that reason instead of trying other parameters.
#[tokio::test]
async fn a_decimal_comma_is_refused_as_not_a_number_and_stops_the_run() {
    let script = "print('epoch 1/1 accuracy=0,95', flush=True)\n";
    let rest = "[budget]\nmax_iterations = 3\n\n[tweak]\nstrategy = \"grow\"\n\n\
                [tweak.space]\nepochs = { start = 1, max = 3, step = 1 }\n";
    let f = Fixture::with_files(&[("mlops.toml", &toml(rest)), ("train.py", script)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    let hint = "`accuracy` was reported as `0,95`, which is not a number (a decimal comma?): print \
                it with a decimal point and no separators, `accuracy=0.95`";
    assert!(
        out.contains(&format!("[evaluate:1] {hint}")),
        "said while running: {out}"
    );
    assert!(outcome.reason.starts_with(hint), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("no tweak can fix this"),
        "{}",
        outcome.reason
    );
    let store = f.store();
    assert_eq!(store.run(RunId(1)).unwrap().unwrap().best_iteration, None);
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "no other parameters are tried");
    assert_eq!(its[0].status, IterStatus::Failed);
    assert_eq!(its[0].final_value, None);
    assert!(
        store
            .metric_points(RunId(1), IterationNo(1))
            .unwrap()
            .is_empty()
    );
}

/// A loss of 1e308 reads `1e308` in `history`, not as 309 digits.
#[tokio::test]
async fn history_prints_a_huge_value_in_exponent_form() {
    let config = "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n\n\
                  [metric]\nname = \"loss\"\ndirection = \"minimize\"\ntarget = 0.1\n\n\
                  [budget]\nmax_iterations = 1\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", config),
        ("train.py", "print('epoch 1/1 loss=1e308', flush=True)\n"),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::BudgetSpent, "{out}");
    let shown = run_binary(&f, &["history", "1"], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    assert!(text.contains(" 1e308 "), "{text}");
    assert!(!text.contains("1000000000"), "{text}");
    let runs = run_binary(&f, &["history"], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&runs.stdout);
    assert!(text.contains(" 1e308 "), "{text}");
}
