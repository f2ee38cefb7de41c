//! The dashboard end to end: the real binary in a real terminal (tmux), on the real Docker engine,
//! against a real git repository made with git2. Screens are read with `capture-pane` and polled
//! against a deadline; nothing waits a fixed time for something to happen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{Fixture, bin};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

/// The last non-empty line of the screen is the shell's prompt: the dashboard is gone.
fn prompt_is_back(screen: &str) -> bool {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim() == "e2e$")
}

/// Private directories for one dashboard: data (history, runs), state (log file), config.
struct Dirs {
    state: tempfile::TempDir,
    config: tempfile::TempDir,
}

fn command_line(f: &Fixture, dirs: &Dirs, extra: &str) -> String {
    format!(
        "env MLOPS_TUI_DATA_DIR={} MLOPS_TUI_STATE_DIR={} MLOPS_TUI_CONFIG_DIR={} {} {extra}{}",
        f.data.path().display(),
        dirs.state.path().display(),
        dirs.config.path().display(),
        bin().display(),
        f.dir().display()
    )
}

fn dirs() -> Dirs {
    Dirs {
        state: tempfile::tempdir().expect("tempdir"),
        config: tempfile::tempdir().expect("tempdir"),
    }
}

/// `sample-projects/<name>` with `apply = "ask"`, committed to a fresh repository.
fn sample_in_ask_mode(name: &str) -> Fixture {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-projects")
        .join(name);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).expect("sample project") {
        let entry = entry.expect("entry");
        let file = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().expect("type").is_file() || file.starts_with('.') {
            continue;
        }
        let mut text = std::fs::read_to_string(entry.path()).expect("read sample file");
        if file == "mlops.toml" {
            assert!(text.contains("apply = "), "the sample sets an apply mode");
            text = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("apply = ") {
                        "apply = \"ask\"".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        files.push((file, text));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Fixture::with_files(&refs)
}

#[test]
fn dashboard_reaches_the_target_with_approvals_and_quits_cleanly() {
    let f = sample_in_ask_mode("digits-mlp-numpy");
    let d = dirs();
    let t = Tmux::start("target");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&command_line(&f, &d, ""));

    // The graph, the plot and the status bar come up; ask mode waits for the operator.
    let screen = t.wait_for("the first proposal", Duration::from_secs(900), |s| {
        s.contains("waits for you")
    });
    assert!(screen.contains("Pipeline · run 1"), "{screen}");
    assert!(screen.contains("✓ Train"), "{screen}");
    assert!(
        screen.contains("? Tweak"),
        "the tweak stage waits, it does not spin:\n{screen}"
    );
    assert!(screen.contains("mode: ask"), "{screen}");
    assert!(screen.contains("docker: connected"), "{screen}");
    assert!(
        screen.contains("best #1"),
        "the plot marks the best iteration:\n{screen}"
    );
    assert!(screen.contains("iteration 2 proposed"), "{screen}");

    // Approve every proposal with `a` until the target is reached.
    let mut approvals = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    let done = loop {
        let screen = t.capture();
        if screen.contains("target reached") {
            break screen;
        }
        if screen.contains("waits for you") {
            t.send(&["a"]);
            approvals += 1;
            t.wait_for("the approval to take", Duration::from_secs(60), |s| {
                !s.contains("waits for you") || s.contains("target reached")
            });
            continue;
        }
        assert!(
            !screen.contains("budget spent") && !screen.contains("failed:"),
            "the run should reach its target:\n{screen}"
        );
        assert!(
            Instant::now() < deadline,
            "no target after 15 minutes:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("{done}");
    assert!(
        approvals >= 1,
        "at least one proposal was approved with `a`"
    );
    assert!(done.contains("Pipeline · run 1 · "), "{done}");
    assert!(
        done.contains("· target reached"),
        "the graph says so:\n{done}"
    );
    assert!(
        done.contains("run 1: target reached at iteration"),
        "the banner says so:\n{done}"
    );
    let iterations = approvals + 1;
    assert!(
        done.contains(&format!("iteration {iterations} of ")),
        "the loop shows the iteration:\n{done}"
    );
    assert!(
        done.contains(&format!("best #{iterations} ")),
        "the plot shows the iterations with the best marked:\n{done}"
    );
    assert!(
        done.contains("succeeded"),
        "the runs table shows the run:\n{done}"
    );

    // The history agrees with the screen, once its writer thread (which never holds up the
    // screen) has caught up.
    let store = f.store();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let run = loop {
        let run = store.run(RunId(1)).expect("history").expect("run 1");
        if run.status != RunStatus::Running || std::time::Instant::now() >= deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        store.iterations(RunId(1)).expect("iterations").len(),
        iterations
    );

    // `q` leaves: no question (nothing trains), the alternate screen is gone, the prompt is back.
    t.send(&["q"]);
    let after = t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        prompt_is_back,
    );
    assert_eq!(
        t.display("#{alternate_on}"),
        "0",
        "left the alternate screen"
    );
    assert!(
        !after.contains("Pipeline"),
        "nothing of the dashboard is left:\n{after}"
    );
    // The terminal is back in cooked mode: a typed command echoes and runs.
    t.run("echo still-$((40+2))");
    t.wait_for("the shell to answer", Duration::from_secs(5), |s| {
        s.contains("still-42")
    });
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process.
fn proc_stats(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    (rss, ticks)
}

const FLOOD: &str = r#"import sys, time
# About 50,000 lines a second for DURATION seconds, in bursts every 100 ms, then the metric.
DURATION = 25
pad = "x" * 60
n = 0
t0 = time.time()
while time.time() - t0 < DURATION:
    start = time.time()
    sys.stdout.write("".join(f"flood line {n + i} {pad}\n" for i in range(5000)))
    sys.stdout.flush()
    n += 5000
    rest = 0.1 - (time.time() - start)
    if rest > 0:
        time.sleep(rest)
print(f"printed {n} lines", flush=True)
print("final accuracy=0.99", flush=True)
"#;

const FLOOD_TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.5

[budget]
max_iterations = 1
metric_timeout = "5m"

[tweak]
strategy = "grow"
apply = "ask"

[tweak.space]
epochs = { start = 1, max = 2, step = 1 }
"#;

/// A container printing ~50,000 lines/s: key presses still reach the screen quickly, memory stays at
/// the scrollback cap, the run still ends with its final metric, and once it is over the idle
/// dashboard uses next to no CPU. A benchmark (timings depend on the machine): it prints its figures.
#[test]
#[ignore = "benchmark: cargo test --release --test tui_e2e -- --ignored --nocapture log_flood"]
fn log_flood_keeps_the_dashboard_responsive() {
    let f = Fixture::with_files(&[("mlops.toml", FLOOD_TOML), ("train.py", FLOOD)]);
    let d = dirs();
    let t = Tmux::start("flood");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&command_line(&f, &d, ""));
    t.wait_for("the flood", Duration::from_secs(600), |s| {
        s.contains("flood line") && s.contains("older lines dropped")
    });
    let pid = t.child_pid().expect("the dashboard's pid");

    // Key to frame: `w` toggles wrapping, which the logs title shows.
    let mut latencies = Vec::new();
    let mut rss_peak = 0;
    for i in 0..12 {
        let want_wrap = i % 2 == 0;
        let start = Instant::now();
        t.send(&["w"]);
        loop {
            let title_has_wrap = t
                .capture()
                .lines()
                .find(|l| l.contains("Logs · iteration"))
                .is_some_and(|l| l.contains("· wrap"));
            if title_has_wrap == want_wrap {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "a key press took over 5 s to show"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(start.elapsed());
        rss_peak = rss_peak.max(proc_stats(pid).0);
        std::thread::sleep(Duration::from_millis(300));
    }
    latencies.sort();
    // Docker rotates the log files under such a flood; the engine reads the tail again after the exit,
    // so the final metric line is never lost.
    let screen = t.wait_for("the end of the run", Duration::from_secs(300), |s| {
        s.contains("run 1: target reached")
    });
    let dropped: u64 = screen
        .lines()
        .find_map(|l| {
            let i = l.find(" older lines dropped")?;
            l[..i].rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0);
    let (rss_end, _) = proc_stats(pid);

    // Idle: nothing changes, so nothing is drawn and almost no CPU is used.
    let (_, before) = proc_stats(pid);
    let idle = Duration::from_secs(20);
    std::thread::sleep(idle);
    let (_, after) = proc_stats(pid);
    let tick = 100.0; // USER_HZ on Linux
    let idle_cpu = (after - before) as f64 / tick / idle.as_secs_f64() * 100.0;

    println!(
        "key press to frame, through tmux: median {:?}, worst {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    println!("lines dropped from the scrollback: {dropped}");
    println!(
        "resident memory: peak while flooding {} MiB, after {} MiB",
        rss_peak / 1024,
        rss_end / 1024
    );
    println!("idle CPU over {idle:?}: {idle_cpu:.2}% of one core");
    assert!(
        latencies[latencies.len() / 2] < Duration::from_millis(100),
        "median key-to-frame {:?}",
        latencies[latencies.len() / 2]
    );
    assert!(
        dropped > 0,
        "the flood overflowed the scrollback:\n{screen}"
    );
    assert!(idle_cpu < 1.0, "idle dashboard used {idle_cpu:.2}% CPU");
    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        prompt_is_back,
    );
}

/// Docker is not reachable: the dashboard still opens and says so, and `q` quits.
#[test]
fn dashboard_opens_without_docker() {
    let f = sample_in_ask_mode("digits-mlp-numpy");
    let d = dirs();
    let t = Tmux::start("nodocker");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&format!(
        "DOCKER_HOST=unix:///nonexistent/docker.sock {}",
        command_line(&f, &d, "")
    ));
    let screen = t.wait_for("the unavailable state", Duration::from_secs(20), |s| {
        s.contains("docker: unavailable, retrying")
    });
    assert!(screen.contains("engine waits for Docker"), "{screen}");
    assert!(
        screen.contains("mode: ask"),
        "read from mlops.toml before any run:\n{screen}"
    );
    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        prompt_is_back,
    );
}

const SLOW: &str = r#"import time
print("slow-train-started", flush=True)
time.sleep(900)
print("final accuracy=0.99", flush=True)
"#;

const SLOW_TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.5

[budget]
max_iterations = 1
metric_timeout = "20m"

[tweak]
strategy = "grow"
apply = "ask"

[tweak.space]
epochs = { start = 1, max = 2, step = 1 }
"#;

/// Sends `signal` (a `kill` name) to the dashboard in the pane, then checks that the shell got a
/// usable terminal back: the prompt, the normal screen with what was there before the dashboard,
/// cooked mode, and `expected` as the exit status.
fn signal_restores_the_terminal(t: &Tmux, signal: &str, expected: i32) {
    let pid = t.child_pid().expect("the dashboard's pid");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let after = t.wait_for(
        &format!("the shell prompt after SIG{signal}"),
        Duration::from_secs(10),
        prompt_is_back,
    );
    assert_eq!(
        t.display("#{alternate_on}"),
        "0",
        "left the alternate screen"
    );
    assert!(
        after.contains("before-dashboard"),
        "the screen from before the dashboard is back:\n{after}"
    );
    assert!(!after.contains("Pipeline"), "{after}");
    t.run("echo status=$?");
    t.wait_for("the exit status", Duration::from_secs(5), |s| {
        s.contains(&format!("status={expected}"))
    });
    assert_eq!(t.display("#{cursor_flag}"), "1", "the cursor shows");
}

/// SIGTERM while a container trains: the dashboard leaves like `q` (no question), the terminal is
/// usable, and the container goes on training for the next start to re-attach.
#[test]
fn sigterm_restores_the_terminal_and_leaves_the_container_training() {
    let f = Fixture::with_files(&[("mlops.toml", SLOW_TOML), ("train.py", SLOW)]);
    let d = dirs();
    let t = Tmux::start("sigterm");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run("echo before-dashboard");
    t.run(&command_line(&f, &d, ""));
    t.wait_for(
        "the container's first line",
        Duration::from_secs(600),
        |s| s.contains("Pipeline") && s.contains("slow-train-started"),
    );
    signal_restores_the_terminal(&t, "TERM", 143);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let running = rt.block_on(f.containers(true));
    for id in rt.block_on(f.containers(false)) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).status();
    }
    assert_eq!(running.len(), 1, "the training container goes on");
}

/// SIGHUP (the terminal went away): the same clean exit, here before Docker ever answered.
#[test]
fn sighup_restores_the_terminal() {
    let f = sample_in_ask_mode("digits-mlp-numpy");
    let d = dirs();
    let t = Tmux::start("sighup");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run("echo before-dashboard");
    t.run(&format!(
        "DOCKER_HOST=unix:///nonexistent/docker.sock {}",
        command_line(&f, &d, "")
    ));
    t.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("docker: unavailable, retrying")
    });
    signal_restores_the_terminal(&t, "HUP", 129);
}

/// The terminal itself goes away (the tmux session is killed, as when an ssh connection or a terminal
/// window closes): the dashboard gets SIGHUP with nowhere left to draw, and must still end promptly
/// rather than linger, unkillable by SIGTERM, with its input thread spinning on the dead terminal.
#[test]
fn a_closed_terminal_ends_the_dashboard() {
    let toml = "[train]\ncommand = [\"python3\", \"train.py\"]\nimage = \"numpy\"\n\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", toml),
        ("train.py", "print('accuracy=0.95')\n"),
    ]);
    let d = dirs();
    let t = Tmux::start("closed");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&format!("exec {}", command_line(&f, &d, "")));
    // At rest, connected to the engine, the run finished: nothing keeps it busy.
    t.wait_for("the finished run", Duration::from_secs(300), |s| {
        s.contains("target reached") && s.contains("docker: connected")
    });
    let pid = t.display("#{pane_pid}");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let status = Command::new("tmux")
        .args(["kill-session", "-t", &t.name])
        .status()
        .expect("tmux kill-session");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("zombie")
    {
        assert!(
            Instant::now() < deadline,
            "the dashboard (pid {pid}) still runs 10 s after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const BELOW: &str = r#"print("quick-train line one", flush=True)
print("quick-train line two", flush=True)
print("final accuracy=0.3", flush=True)
"#;

/// A restart adopts the run left waiting for approval: the logs pane shows the finished iteration's
/// output from the history instead of saying the container printed nothing.
#[test]
fn after_a_restart_the_logs_pane_shows_the_saved_output() {
    let toml = SLOW_TOML
        .replace("metric_timeout = \"20m\"", "metric_timeout = \"5m\"")
        .replace("max_iterations = 1", "max_iterations = 2");
    let f = Fixture::with_files(&[("mlops.toml", &toml), ("train.py", BELOW)]);
    let d = dirs();
    let t = Tmux::start("restart");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&command_line(&f, &d, ""));
    let first = t.wait_for("the proposal", Duration::from_secs(600), |s| {
        s.contains("waits for you")
    });
    assert!(first.contains("quick-train line two"), "{first}");
    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        prompt_is_back,
    );
    t.run("clear");
    t.run(&command_line(&f, &d, ""));
    let again = t.wait_for("the adopted run", Duration::from_secs(60), |s| {
        s.contains("Logs · iteration 1 of run 1") && s.contains("waits for you")
    });
    let again = if again.contains("quick-train line two") {
        again
    } else {
        t.wait_for("the saved output", Duration::from_secs(10), |s| {
            s.contains("quick-train line two")
        })
    };
    assert!(again.contains("quick-train line one"), "{again}");
    assert!(!again.contains("printed nothing"), "{again}");
    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        prompt_is_back,
    );
}

/// A source knob's proposal is shown as the diff of the user's own code, file:line with − and +,
/// and approving it trains that diff: the next proposal shows the next edit of the same line.
#[test]
fn a_source_knob_proposal_shows_the_diff_of_the_users_code() {
    let script = "plot_digits_classification.py";
    let toml = format!(
        r#"[train]
command = ["python3", "{script}"]

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 3

[tweak]
strategy = "grow"
apply = "ask"

[tweak.space]
gamma = {{ source = "{script}", call = "svm.SVC", arg = "gamma", values = [0.1, 0.01, 0.001] }}
"#
    );
    let f = Fixture::with_files(&[("mlops.toml", &toml)]);
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/byos/svc-notebook"),
        f.dir(),
    );
    common::commit_all(f.dir(), "a notebook export");
    let d = dirs();
    let t = Tmux::start("knobdiff");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&command_line(&f, &d, ""));
    let screen = t.wait_for("the first proposal", Duration::from_secs(600), |s| {
        s.contains("waits for you")
    });
    let line = std::fs::read_to_string(f.dir().join(script))
        .unwrap()
        .lines()
        .position(|l| l.contains("svm.SVC("))
        .unwrap()
        + 1;
    assert!(screen.contains(&format!("{script}:{line}")), "{screen}");
    assert!(screen.contains("− clf = svm.SVC(gamma=0.1)"), "{screen}");
    assert!(screen.contains("+ clf = svm.SVC(gamma=0.01)"), "{screen}");
    t.send(&["a"]);
    let screen = t.wait_for("the second proposal", Duration::from_secs(600), |s| {
        s.contains("iteration 3 proposed") && s.contains("waits for you")
    });
    assert!(screen.contains("+ clf = svm.SVC(gamma=0.001)"), "{screen}");
    t.send(&["q"]);
    t.wait_for("the dashboard to quit", Duration::from_secs(20), |s| {
        if s.contains("Quit?") || s.contains("quit?") {
            t.send(&["y"]);
        }
        prompt_is_back(s)
    });
}
