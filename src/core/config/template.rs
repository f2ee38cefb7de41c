//! The commented `mlops.toml` that `mlops-tui init` writes, shaped by what the detector found.

use crate::core::detect::{ModelKind, Verdict};

/// A complete, valid file; the search space suits the detected kind of model.
pub fn for_verdict(verdict: &Verdict) -> String {
    let image = match verdict.profile() {
        Some(_) => format!(
            "image = \"auto\"            # detected: {}",
            verdict.summary()
        ),
        None => format!(
            "# {}\n# No built-in image has this framework: build one and name it here.\nimage = \"my-image:latest\"",
            verdict.summary()
        ),
    };
    let space = match verdict.kind {
        ModelKind::Cnn => {
            "conv_layers = { start = 1, max = 4, step = 1 }     # more convolution layers\n\
             filters = { start = 8, max = 64, factor = 2 }      # more filters per layer\n\
             epochs = { start = 3, max = 12, step = 3 }"
        }
        ModelKind::Ann => {
            "hidden_units = { start = 16, max = 256, factor = 2 }  # wider hidden layers\n\
             epochs = { start = 5, max = 40, step = 5 }"
        }
        ModelKind::Classic => {
            "k = { values = [15, 9, 5, 3, 1] }   # e.g. neighbours; list values in the order to try"
        }
    };
    format!(
        r#"# mlops.toml: how mlops-tui trains this project (like a Jenkinsfile, but for the training loop).
# Every key is documented in mlops-tui's README.

[train]
command = ["python3", "train.py"]   # run in /workspace (the iteration's writable copy of this commit)
{image}

[metric]
name = "accuracy"        # printed by the script as `accuracy=0.91`, `accuracy: 0.91` or JSON
direction = "maximize"   # or "minimize" (e.g. for a loss)
target = 0.95

[budget]
max_iterations = 5       # iterations per run, the first included
iteration_timeout = "30m"
metric_timeout = "5m"    # no metric line for this long: the iteration fails
max_failures = 2

[resources]
memory = "2g"
cpus = 1.0
pids = 256

[tweak]
strategy = "grow"        # advance every dimension one step per iteration, never repeating a point
apply = "ask"            # "ask": approve each proposal in the dashboard; "auto": apply at once

[tweak.space]
# The script receives these as /mlops/params.json and in $MLOPS_PARAMS.
{space}

[params]                 # fixed parameters, passed unchanged to every iteration
"#
    )
}
