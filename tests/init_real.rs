//! `mlops-tui init` on projects written the way they are found: the command names the real entry
//! script (not always `train.py`), and the knobs found in the code are written commented out, each
//! resolving to exactly its own place when uncommented.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mlops_tui::core::config::Config;
use mlops_tui::core::config::template::is_suggestion;
use mlops_tui::core::knobs::Knobs;

fn wild(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wild")
            .join(name),
    )
    .unwrap()
}

/// Runs `init` on a directory holding `files`; returns the written `mlops.toml` and stdout.
fn init(files: &[(&str, String)]) -> (String, String, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new(common::bin())
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("mlops.toml")).unwrap();
    let sources = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    (text, stdout, sources)
}

/// The file with every suggested knob uncommented parses, and every knob resolves.
fn all_uncommented(text: &str, sources: BTreeMap<String, String>) -> Config {
    let all: String = text
        .lines()
        .map(|l| if is_suggestion(l) { &l[2..] } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let c = Config::parse(&all, Path::new("mlops.toml")).unwrap_or_else(|e| panic!("{e}\n{all}"));
    Knobs::resolve(&c, sources).unwrap_or_else(|e| panic!("{e}\n{all}"));
    c
}

#[test]
fn init_runs_the_script_that_is_not_train_py() {
    let helper = "import numpy as np\n\n\ndef normalize(x):\n    return x / 255.0\n".to_string();
    let (text, stdout, sources) = init(&[
        ("model_code3.py", wild("model_code3.py")),
        ("helpers.py", helper),
    ]);
    assert!(
        stdout.contains("command: python3 model_code3.py"),
        "{stdout}"
    );
    assert!(
        text.contains("command = [\"python3\", \"model_code3.py\"]"),
        "{text}"
    );
    assert!(!text.contains("\"train.py\""), "{text}");
    assert!(
        text.contains(
            "# parameter = { source = \"model_code3.py\", assign = \"parameter\", start = 1, max = 4, step = 1 }"
        ),
        "{text}"
    );
    let c = all_uncommented(&text, sources);
    for name in ["parameter", "filters", "units", "epochs", "batch_size"] {
        assert!(c.tweak.bindings.contains_key(name), "{name}\n{text}");
    }
    // As written (every knob commented out) nothing is tweaked that the script cannot read.
    let as_written = Config::parse(&text, Path::new("mlops.toml")).unwrap();
    assert!(as_written.tweak.space.is_empty(), "{text}");
}

#[test]
fn init_on_a_notebook_export_suggests_the_svc_gamma() {
    let (text, _, sources) = init(&[(
        "plot_digits_classification.py",
        wild("svc_digits_notebook.py"),
    )]);
    assert!(
        text.contains("command = [\"python3\", \"plot_digits_classification.py\"]"),
        "{text}"
    );
    assert!(
        text.contains("# plot_digits_classification.py:33 svm.SVC(gamma=0.001)"),
        "{text}"
    );
    let c = all_uncommented(&text, sources);
    assert_eq!(c.tweak.space.len(), 1, "{text}");
}
