//! A notebook in the dashboard: each cell's output streams into the log while the notebook runs,
//! and a knob in one of its cells is proposed as the diff of that cell's code (`nb.ipynb In[3]:6`
//! with − and +), not of JSON. The real binary in tmux, on the real Docker engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::tmux::Tmux;
use common::{Fixture, bin};

const NB: &str = "plot_digits_classification.ipynb";

/// The dashboard on `f`'s project in a new tmux session; the directories live as long as the session.
fn dashboard(f: &Fixture, tag: &str) -> (Tmux, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let t = Tmux::start(tag);
    t.wait_for("the shell prompt", Duration::from_secs(10), |s| {
        s.contains("e2e$")
    });
    let line = format!(
        "env MLOPS_TUI_DATA_DIR={} MLOPS_TUI_STATE_DIR={} MLOPS_TUI_CONFIG_DIR={} {} {}",
        f.data.path().display(),
        dirs[0].path().display(),
        dirs[1].path().display(),
        bin().display(),
        f.dir().display()
    );
    t.run(&line);
    (t, dirs)
}

fn quit(t: &Tmux) {
    t.send(&["q"]);
    t.wait_for("the dashboard to quit", Duration::from_secs(20), |s| {
        if s.contains("Quit mlops-tui?") {
            t.send(&["y"]);
        }
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim() == "e2e$")
    });
}

#[test]
fn a_cells_output_streams_while_the_notebook_still_runs() {
    let cells = [
        "print('cell one says hello', flush=True)",
        "import time\nprint('epoch 1/2 accuracy=0.41', flush=True)\ntime.sleep(12)",
        "print('epoch 2/2 accuracy=0.99')",
    ];
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| serde_json::json!({"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": c}))
        .collect();
    let nb =
        serde_json::json!({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5});
    let toml = "[train]\ncommand = [\"python3\", \"slow.ipynb\"]\nimage = \"sklearn\"\n[metric]\nname = \"accuracy\"\n\
                target = 0.95\n[budget]\nmax_iterations = 1\n";
    let f = Fixture::with_files(&[("mlops.toml", toml), ("slow.ipynb", &nb.to_string())]);
    let (t, _dirs) = dashboard(&f, "nbstream");
    // The second cell sleeps 12 s after printing: its line on screen meanwhile means it streamed.
    let screen = t.wait_for("the cells' output", Duration::from_secs(300), |s| {
        s.contains("cell one says hello") && s.contains("epoch 1/2 accuracy=0.41")
    });
    println!("{screen}");
    assert!(
        !screen.contains("epoch 2/2"),
        "the third cell has not run yet:\n{screen}"
    );
    let iteration = f
        .store()
        .iterations(mlops_tui::core::ids::RunId(1))
        .unwrap();
    assert!(
        iteration.first().is_some_and(|i| i.finished_at.is_none()),
        "the notebook is still running: {iteration:?}"
    );
    // Then the last cell runs and its value reaches the target.
    t.wait_for("the run to succeed", Duration::from_secs(120), |s| {
        s.contains("epoch 2/2 accuracy=0.99") && s.contains("succeeded")
    });
    quit(&t);
}

#[test]
fn a_knob_in_a_cell_is_proposed_as_the_diff_of_the_cells_code() {
    let toml = format!(
        r#"[train]
command = ["python3", "{NB}"]

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 3

[tweak]
strategy = "grow"
apply = "ask"

[tweak.space]
gamma = {{ source = "{NB}", call = "svm.SVC", arg = "gamma", values = [0.1, 0.01, 0.001] }}
"#
    );
    let f = Fixture::with_files(&[("mlops.toml", &toml)]);
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/byos/svc-ipynb"),
        f.dir(),
    );
    common::commit_all(f.dir(), "the digits notebook");
    let (t, _dirs) = dashboard(&f, "nbdiff");
    t.wait_for("the first proposal", Duration::from_secs(600), |s| {
        s.contains("waits for you")
    });
    // The banner and the Tweak pane are drawn in the same frame, but the terminal may be captured
    // between the rows of one frame's update: wait for the pane's diff too.
    let screen = t.wait_for("the proposal's diff", Duration::from_secs(30), |s| {
        s.contains("+ clf = svm.SVC(")
    });
    println!("{screen}");
    assert!(screen.contains(&format!("{NB} In[3]:6")), "{screen}");
    assert!(screen.contains("− clf = svm.SVC(gamma=0.1)"), "{screen}");
    assert!(screen.contains("+ clf = svm.SVC(gamma=0.01)"), "{screen}");
    assert!(
        !screen.contains("\"source\""),
        "no JSON in the diff:\n{screen}"
    );
    quit(&t);
}
