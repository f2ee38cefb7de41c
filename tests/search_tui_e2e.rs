//! The search space view end to end: the real binary in tmux, on the real Docker engine (numpy
//! image), against a git repository made with git2. A quick script over two dimensions runs four
//! iterations; the view is opened with its key and read back with `capture-pane`, at 160×48 and at
//! 80×24.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::{Fixture, bin};

/// Accuracy peaks at hidden_units = 32 and lr = 0.05 and falls off on both sides of each, so the
/// best point sits inside each panel, not at an end. Three epochs, a fraction of a second each.
const TRAIN: &str = r#"import json, math, os, time

root = os.environ.get("MLOPS_DIR", "/mlops")
path = os.path.join(root, "params.json")
if os.path.isfile(path):
    with open(path) as f:
        p = json.load(f)
else:
    p = json.loads(os.environ.get("MLOPS_PARAMS") or "{}")
h = float(p.get("hidden_units", 8))
lr = float(p.get("lr", 0.01))
peak = 0.97 - 0.05 * math.log2(h / 32) ** 2 - 40 * (lr - 0.05) ** 2
for e in range(1, 4):
    print(f"epoch {e}/3 accuracy={peak - 0.1 * (3 - e):.4f}", flush=True)
    time.sleep(0.2)
print(f"final accuracy={peak:.4f}", flush=True)
"#;

/// Four iterations walk (8, 0.01), (16, 0.02), (32, 0.05), (64, 0.1); the target is out of reach,
/// so the run spends its budget and iteration 3 (0.97) stays the best. Pruning is off: iteration 4
/// lags the others' curves and would be stopped, and this view is about completed points.
const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.99

[budget]
max_iterations = 4
iteration_timeout = "5m"
metric_timeout = "2m"

[tweak]
strategy = "grow"
apply = "auto"

[tweak.pruning]
rule = "off"

[tweak.space]
hidden_units = { start = 8, max = 64, factor = 2 }
lr = { values = [0.01, 0.02, 0.05, 0.1] }
"#;

fn resize(t: &Tmux, w: u16, h: u16) {
    let status = Command::new("tmux")
        .args(["resize-window", "-t", &t.name])
        .args(["-x", &w.to_string(), "-y", &h.to_string()])
        .status()
        .expect("tmux resize-window");
    assert!(status.success());
}

/// What every size of the view must show: both dimensions by name, the best point and its value,
/// the values on each axis, the target.
fn assert_search_view(screen: &str) {
    assert!(screen.contains("Search space · run 1"), "{screen}");
    assert!(screen.contains(" hidden_units · log "), "{screen}");
    assert!(screen.contains(" lr · list "), "{screen}");
    assert!(
        screen.contains("· best 32 ") && screen.contains("· best 0.05 "),
        "each panel names the best value:\n{screen}"
    );
    assert!(screen.contains("█ best #3 0.9700"), "{screen}");
    assert!(
        screen.matches('█').count() >= 3,
        "the best point is marked in both panels (and the legend):\n{screen}"
    );
    let axis = screen
        .lines()
        .find(|l| l.contains("0.01") && l.contains("0.02"))
        .unwrap_or_else(|| panic!("the x labels' row:\n{screen}"));
    let labels: Vec<&str> = axis
        .split(|c: char| c.is_whitespace() || "│┃|".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(
        labels,
        ["8", "16", "32", "64", "0.01", "0.02", "0.05", "0.1"],
        "hidden_units' and lr's values under their axes:\n{axis}"
    );
    assert!(screen.contains("target 0.99"), "{screen}");
    // The best point sits right over its value on the axis: hidden_units = 32 in the first panel.
    let best_col = screen
        .lines()
        .skip(2)
        .find_map(|l| l.chars().position(|c| c == '█'))
        .unwrap_or_else(|| panic!("a best point in a panel:\n{screen}"));
    let chars: Vec<char> = axis.chars().collect();
    let label_col = chars
        .windows(2)
        .position(|w| w == ['3', '2'])
        .expect("32 on the axis");
    assert!(
        best_col.abs_diff(label_col) <= 1,
        "█ at column {best_col}, 32 at {label_col}:\n{screen}"
    );
    // Nothing was pruned and nothing trains any more: the legend does not explain absent marks.
    assert!(
        !screen.contains("× pruned") && !screen.contains("▲ now"),
        "{screen}"
    );
}

#[test]
fn the_search_view_plots_each_dimension_against_the_metric() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", TRAIN)]);
    let state = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let t = Tmux::start("space");
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
    let done = t.wait_for("the budget to be spent", Duration::from_secs(900), |s| {
        s.contains("budget spent")
    });
    assert!(done.contains("best #3 0.9700"), "{done}");
    assert!(
        done.contains("v space"),
        "the footer names the key:\n{done}"
    );

    t.send(&["v"]);
    let wide = t.wait_for("the search view", Duration::from_secs(10), |s| {
        s.contains("Search space")
    });
    println!("160×48:\n{wide}");
    assert_search_view(&wide);

    resize(&t, 80, 24);
    let narrow = t.wait_for("the view redrawn at 80×24", Duration::from_secs(10), |s| {
        s.lines().count() <= 24 && s.contains("Search space") && s.contains(" lr · list ")
    });
    println!("80×24:\n{narrow}");
    assert_search_view(&narrow);
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");

    // `esc` goes back to the dashboard; `q` quits (nothing trains).
    t.send(&["Escape"]);
    t.wait_for("the dashboard again", Duration::from_secs(10), |s| {
        !s.contains("Search space") && s.contains("Pipeline")
    });
    t.send(&["q"]);
    t.wait_for(
        "the shell prompt after quitting",
        Duration::from_secs(10),
        |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim() == "e2e$")
        },
    );
}
