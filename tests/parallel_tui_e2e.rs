//! Trials side by side in the dashboard, end to end: the real binary in tmux on the real Docker
//! engine, `[budget] parallel = 3`. The graph's lane shows the three running trials and the engine's
//! free slots, `c` switches the logs pane to another trial (whose lines alone it shows), the plot
//! names every running trial, and when the first reaches the target the others end as stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::{Fixture, bin};

/// Iteration 1 reaches the target after a dozen slow epochs, long enough to look at the screen; the
/// others report a low value every second until they are stopped. Every line names its iteration,
/// so the logs pane can be checked for lines of another trial.
const TRAIN: &str = r#"
import os, time

it = os.environ["MLOPS_ITERATION"]
winner = it == "1"
epochs = 12 if winner else 120
for epoch in range(1, epochs + 1):
    time.sleep(2 if winner else 1)
    value = 0.95 if winner and epoch == epochs else 0.5
    print(f"epoch {epoch}/{epochs} accuracy={value} trial={it}", flush=True)
"#;

/// The text of the logs pane: what lies between the thick borders on the left of the screen.
fn logs_pane(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.strip_prefix('┃'))
        .filter_map(|l| l.split('┃').next())
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn three_trials_side_by_side_in_the_dashboard() {
    let f = Fixture::with_files(&[
        ("mlops.toml", &common::race_toml(3, 3, "")),
        ("train.py", TRAIN),
    ]);
    let state = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let t = Tmux::start("parallel");
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    t.run(&format!(
        "env MLOPS_TUI_DATA_DIR={} MLOPS_TUI_STATE_DIR={} MLOPS_TUI_CONFIG_DIR={} {} {}",
        f.data.path().display(),
        state.path().display(),
        config.path().display(),
        bin().display(),
        f.dir().display()
    ));

    // The loop names the three trials; the lane shows the engine full and each trial on it.
    let screen = t.wait_for("three running trials", Duration::from_secs(600), |s| {
        s.contains("iterations #1 #2 #3 of 3") && s.contains("local ● 0/3 free")
    });
    println!("{screen}");
    for no in 1..=3 {
        assert!(screen.contains(&format!("#{no} ")), "{screen}");
    }

    // The pane follows the newest trial until `c` moves it to the first, pinned.
    t.wait_for("the newest trial's logs", Duration::from_secs(60), |s| {
        s.contains("Logs · #3 on local (3 of 3)") && s.contains("trial=3")
    });
    t.send(&["c"]);
    let screen = t.wait_for("the first trial's logs", Duration::from_secs(30), |s| {
        s.contains("Logs · #1 on local (1 of 3) (pinned)")
            && logs_pane(s).iter().any(|l| l.contains("trial=1"))
    });
    let pane = logs_pane(&screen);
    assert!(
        pane.iter()
            .filter(|l| l.contains("trial="))
            .all(|l| l.contains("trial=1")),
        "only the shown trial's lines:\n{screen}"
    );

    // The plot draws every running trial, named in its legend.
    let screen = t.wait_for("the trials' legend", Duration::from_secs(60), |s| {
        s.contains("• #1 local  • #2 local  • #3 local")
    });
    println!("{screen}");

    // The first reaches the target; the others end stopped, not failed.
    let done = t.wait_for("the target", Duration::from_secs(120), |s| {
        s.contains("target reached")
    });
    println!("{done}");
    assert!(!done.contains("failed:"), "{done}");
    assert!(
        !done.contains("iterations #"),
        "no trial runs any more:\n{done}"
    );

    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_end() == "e2e$")
        },
    );
    let left = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(f.leftover_containers());
    assert!(left.is_empty(), "containers left behind: {left:?}");
}
