//! Failures no tweak can fix end the run after one container, with the error line and the fix;
//! failures that may depend on the parameters let the loop go on; metrics printed the way scripts
//! written for people print them are read. Real engine, real git, the engine driven headless.
//!
//! Each test is its own fixture (repository, history, containers), so they run concurrently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::{IterStatus, RunStatus};

/// A numpy project's `mlops.toml`: a budget that would retry a failure twice and tweak `epochs`.
fn toml(command: &str, image: &str) -> String {
    format!(
        r#"[train]
command = {command}
image = "{image}"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 4
max_failures = 3

[tweak]
strategy = "grow"

[tweak.space]
epochs = {{ start = 1, max = 4, step = 1 }}
"#
    )
}

/// Runs a project whose `train.py` is `script` and checks that the run stopped after one container
/// with `error` and `hint` in the run's end reason, the history and the headless output.
async fn stops(command: &str, files: &[(&str, &str)], error: &str, hint: &str) {
    let toml = toml(command, "numpy");
    let mut all = vec![("mlops.toml", toml.as_str())];
    all.extend_from_slice(files);
    let f = Fixture::with_files(&all);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", outcome.reason);
    assert!(outcome.reason.contains(error), "{}", outcome.reason);
    assert!(outcome.reason.contains(hint), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("no tweak can fix this"),
        "{}",
        outcome.reason
    );
    // Headless prints the same: the iteration's failure and the run's end.
    assert!(out.contains(&format!("[done] error: {error}")), "{out}");
    assert!(out.contains(hint), "{out}");
    assert!(!out.contains("[tweak:"), "no tweak is proposed:\n{out}");
    assert!(!out.contains("[train:2]"), "one container only:\n{out}");
    assert!(!out.contains("reviving"), "no revival:\n{out}");
    let store = f.store();
    let its = store.iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1, "{its:?}");
    assert_eq!(its[0].status, IterStatus::Failed);
    assert!(
        its[0].reason.as_deref().unwrap().starts_with(error),
        "{its:?}"
    );
    let run = store.run(RunId(1)).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.reason.as_deref(), Some(outcome.reason.as_str()));
    assert!(f.leftover_containers().await.is_empty());
}

const TRAIN: &str = r#"["python3", "train.py"]"#;

#[tokio::test]
async fn a_missing_module_stops_the_run() {
    // A plain `import seaborn` is refused before any container (the image's modules are known);
    // a module named at run time, as plugin-style code does, is only found missing by the container.
    let script = "# In[1]:\n\nimport importlib\nimport numpy as np\nsns = importlib.import_module('seaborn')\n\n# In[2]:\n\nprint('accuracy=0.95')\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "ModuleNotFoundError: No module named 'seaborn'",
        "the image has no Python module `seaborn`: list it in requirements.txt",
    )
    .await;
}

#[tokio::test]
async fn a_command_naming_a_missing_script_stops_the_run() {
    stops(
        r#"["python3", "model.py"]"#,
        &[("model_code3.py", "print('accuracy=0.95')\n")],
        "python3: can't open file '/workspace/model.py': [Errno 2] No such file or directory",
        "[train] command names `model.py`, which is not in the commit: check [train] command in \
         mlops.toml",
    )
    .await;
}

#[tokio::test]
async fn a_missing_data_file_stops_the_run() {
    let script = "import numpy as np\n\ndata = np.genfromtxt(open('data.csv'), delimiter=',')\nprint('accuracy=0.95')\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "FileNotFoundError: [Errno 2] No such file or directory: 'data.csv' (at train.py:3)",
        "the script reads `data.csv`, which the container does not have",
    )
    .await;
}

#[tokio::test]
async fn a_syntax_error_stops_the_run() {
    let script = "import numpy as np\n\nacc = np.mean([0.9, 1.0]\nprint(f'accuracy={acc}')\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "SyntaxError: '(' was never closed (at train.py:3)",
        "fix the code at train.py:3",
    )
    .await;
}

#[tokio::test]
async fn writing_to_a_read_only_file_system_stops_the_run() {
    let script = "import os\nimport pickle\n\nprint('epoch 1 loss=0.3')\nos.makedirs('/models', exist_ok=True)\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "OSError: [Errno 30] Read-only file system: '/models'",
        "write under /mlops",
    )
    .await;
}

#[tokio::test]
async fn permission_denied_stops_the_run() {
    let script = "import numpy as np\n\nx = np.load('/root/.keras/datasets/mnist.npz')\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "PermissionError: [Errno 13] Permission denied: '/root/.keras/datasets/mnist.npz'",
        "permission denied: the container runs as an unprivileged user",
    )
    .await;
}

#[tokio::test]
async fn a_download_without_network_stops_the_run() {
    let script = "from urllib.request import urlretrieve\n\nurlretrieve('https://archive.ics.uci.edu/ml/machine-learning-databases/iris/iris.data', 'iris.data')\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "urllib.error.URLError: <urlopen error",
        "training containers have no network: put the data in the repository or mount it with \
         [data] (see README)",
    )
    .await;
}

#[tokio::test]
async fn an_error_after_the_metric_stops_the_run() {
    let script = "import json\n\nresults = {'accuracy': 0.95}\nprint(f\"accuracy={results['accuracy']}\")\nprint('val_accuracy', results['val_accuracy'])\n";
    stops(
        TRAIN,
        &[("train.py", script)],
        "KeyError: 'val_accuracy' (at train.py:5)",
        "the script reported its metric, then failed at train.py:5",
    )
    .await;
}

/// Fails with `failure` while `epochs` is 1, then reports 0.95.
fn fails_at_first(failure: &str) -> String {
    format!(
        "import json\nimport numpy as np\n\nepochs = json.load(open('/mlops/params.json'))['epochs']\nif epochs == 1:\n    {failure}\nprint(f'epoch {{epochs}} accuracy=0.95')\n"
    )
}

#[tokio::test]
async fn a_library_value_error_and_a_memory_error_let_the_loop_go_on() {
    let cases = [
        (
            "np.linspace(0.0, 1.0, num=epochs - 2)",
            "ValueError: Number of samples, -1, must be non-negative. (at train.py:6)",
        ),
        (
            "np.zeros((10**7, 10**7))",
            "MemoryError: Unable to allocate",
        ),
    ];
    let runs = cases.iter().map(|(failure, error)| async move {
        let script = fails_at_first(failure);
        let toml = toml(TRAIN, "numpy");
        let f = Fixture::with_files(&[("mlops.toml", &toml), ("train.py", &script)]);
        let (outcome, out) = f.run_once().await;
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{}\n{out}",
            outcome.reason
        );
        let its = f.store().iterations(RunId(1)).unwrap();
        assert_eq!(its.len(), 2, "{its:?}");
        assert_eq!(its[0].status, IterStatus::Failed);
        let reason = its[0].reason.clone().unwrap();
        assert!(reason.starts_with("exited with code 1: "), "{reason}");
        assert!(reason.contains(error), "{reason}");
        assert!(out.contains("[train:2] container"), "{out}");
    });
    futures_util::future::join_all(runs).await;
}

/// scikit-learn's digits example as people write it: no parameters file, no metric line of its own,
/// only the classification report.
const DIGITS_REPORT: &str = r#"#!/usr/bin/env python
# coding: utf-8

# In[1]:


from sklearn import datasets, metrics, svm
from sklearn.model_selection import train_test_split


# In[2]:


digits = datasets.load_digits()
n_samples = len(digits.images)
data = digits.images.reshape((n_samples, -1))

clf = svm.SVC(gamma=0.001)
X_train, X_test, y_train, y_test = train_test_split(
    data, digits.target, test_size=0.5, shuffle=False
)
clf.fit(X_train, y_train)
predicted = clf.predict(X_test)


# In[3]:


print(
    f"Classification report for classifier {clf}:\n"
    f"{metrics.classification_report(y_test, predicted)}\n"
)
"#;

#[tokio::test]
async fn a_classification_report_reaches_the_target_with_no_pattern() {
    let toml = toml(r#"["python3", "digits.py"]"#, "sklearn").replace("0.9\n", "0.95\n");
    let f = Fixture::with_files(&[("mlops.toml", &toml), ("digits.py", DIGITS_REPORT)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains("    accuracy                           0.97       899"),
        "{out}"
    );
    assert!(
        out.contains("[evaluate:1] accuracy 0.9700 >= target 0.95"),
        "{out}"
    );
    let its = f.store().iterations(RunId(1)).unwrap();
    assert_eq!(its.len(), 1);
    assert_eq!(its[0].final_value, Some(0.97));
}

#[tokio::test]
async fn a_bare_number_on_the_last_line_is_the_metric_and_said_so() {
    let script = "import numpy as np\n\nrng = np.random.default_rng(0)\nscore = 0.9733\nprint('trained on', 1797, 'samples')\nprint(score)\n";
    let f = Fixture::with_files(&[("mlops.toml", &toml(TRAIN, "numpy")), ("train.py", script)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains("accuracy 0.9733, read from the last line (a bare number)"),
        "{out}"
    );
    assert_eq!(
        f.store().iterations(RunId(1)).unwrap()[0].final_value,
        Some(0.9733)
    );

    // Out of the metric's range, the last line is not the metric.
    let script = "print('done')\nprint(1797)\n";
    let f = Fixture::with_files(&[("mlops.toml", &toml(TRAIN, "numpy")), ("train.py", script)]);
    let (outcome, out) = f.run_once().await;
    assert_ne!(outcome.status, RunStatus::Succeeded, "{out}");
    assert!(!out.contains("read from the last line"), "{out}");
    assert!(
        out.contains("finished without reporting `accuracy`"),
        "{out}"
    );
}
