//! The dashboard's failure banner shows the error line a failed iteration printed, and the fix: the
//! real binary in tmux, on the real Docker engine, against a real git repository.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{Fixture, bin};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

const TOML: &str = r#"[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 4
max_failures = 3

[tweak]
strategy = "grow"
apply = "ask"

[tweak.space]
epochs = { start = 1, max = 4, step = 1 }
"#;

/// A notebook export that imports a module the image lacks.
const SCRIPT: &str = "#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\nimport importlib\nimport numpy as np\nsns = importlib.import_module('seaborn')\n\n\n# In[2]:\n\n\nprint('accuracy=0.95')\n";

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

#[test]
fn the_banner_shows_the_error_line_and_the_fix() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", SCRIPT)]);
    let (t, _dirs) = dashboard(&f, "banner");
    // Named at run time, so only the container finds it missing (a plain `import seaborn` is
    // refused before any container starts).
    let error = "ModuleNotFoundError: No module named 'seaborn'";
    let screen = t.wait_for("the failure banner", Duration::from_secs(900), |s| {
        s.lines()
            .any(|l| l.contains("run 1: ") && l.contains(error))
    });
    println!("{screen}");
    let banner = screen
        .lines()
        .find(|l| l.contains("run 1: ") && l.contains(error))
        .unwrap();
    assert!(
        banner.contains("— the image has no Python module `seaborn`"),
        "the fix follows the error on the banner:\n{screen}"
    );
    assert!(
        !screen.contains("waits for you"),
        "no approval is asked:\n{screen}"
    );
    // The history agrees once the writer has caught up: one iteration, the run failed.
    let store = f.store();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.run(RunId(1)).unwrap().unwrap().status != RunStatus::Failed {
        assert!(Instant::now() < deadline, "the history never says failed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(store.iterations(RunId(1)).unwrap().len(), 1);
    t.send(&["q"]);
}

/// Fails inside numpy for `epochs = 1` (a parameter value), reports 0.95 otherwise.
const VALUE_ERROR: &str = "import json\nimport numpy as np\n\nepochs = json.load(open('/mlops/params.json'))['epochs']\ngrid = np.linspace(0.0, 1.0, num=epochs - 2)\nprint('accuracy=0.95')\n";

#[test]
fn a_failure_that_may_depend_on_the_parameters_shows_its_error_line_while_the_loop_goes_on() {
    let f = Fixture::with_files(&[("mlops.toml", TOML), ("train.py", VALUE_ERROR)]);
    let (t, _dirs) = dashboard(&f, "value");
    let error = "iteration 1 failed: exited with code 1: ValueError: Number of samples, -1, must be \
                 non-negative. (at train.py:5)";
    // Ask mode: the loop proposes the next point and waits; the failure stays on the banner.
    let screen = t.wait_for("the failure banner", Duration::from_secs(900), |s| {
        s.contains(error)
    });
    println!("{screen}");
    t.wait_for("the proposal", Duration::from_secs(60), |s| {
        s.contains("iteration 2 proposed")
    });
    t.send(&["q"]);
}
