//! The environment a project's code imports, on the real Docker engine: a module the chosen image lacks
//! stops the run before any container; `requirements.txt` builds a derived image once and reuses it;
//! a project's own Dockerfile builds `FROM` a built-in profile; Keras code gets the keras image and
//! trains a small CNN on the digits data set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use mlops_tui::adapters::docker::DockerBackend;
use mlops_tui::adapters::images::{self, spec};
use mlops_tui::core::ids::RunId;
use mlops_tui::core::model::RunStatus;

const TOML_SKLEARN: &str = r#"[train]
command = ["python3", "report.py"]
image = "sklearn"

[metric]
name = "accuracy"
target = 0.5

[budget]
max_iterations = 1

[resources]
memory = "1g"

[notify.desktop]
enabled = false
"#;

/// A script as found in the wild: a classifier, then a table printed with a package from the registry.
const REPORT: &str = r#"#!/usr/bin/env python
# coding: utf-8

# In[1]:


import numpy as np
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier
from tabulate import tabulate


# In[2]:


digits = load_digits()
X, y = digits.data, digits.target
clf = KNeighborsClassifier(n_neighbors=3).fit(X[:1200], y[:1200])
acc = clf.score(X[1200:], y[1200:])
print(tabulate([["knn", 3, acc]], headers=["model", "k", "accuracy"]))
print(f"accuracy: {acc:.4f}")
"#;

async fn remove_image(tag: &str) {
    let docker = DockerBackend::connect_default().unwrap();
    let _ = docker
        .client()
        .remove_image(
            tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[tokio::test]
async fn a_module_the_image_lacks_stops_the_run_before_any_container() {
    let f = Fixture::with_files(&[("mlops.toml", TOML_SKLEARN), ("report.py", REPORT)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(outcome.status, RunStatus::Failed, "{out}");
    assert!(
        outcome.reason.contains(
            "report.py:10: imports `tabulate`, which image `sklearn` does not provide: list it in requirements.txt (mlops-tui builds a derived image with it) or set train.image"
        ),
        "{}",
        outcome.reason
    );
    assert!(
        f.store().iterations(RunId(1)).unwrap().is_empty(),
        "no iteration may start"
    );
    assert!(f.leftover_containers().await.is_empty());
}

#[tokio::test]
async fn requirements_txt_builds_a_derived_image_once() {
    let requirements = "tabulate==0.9.0\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", TOML_SKLEARN),
        ("report.py", REPORT),
        ("requirements.txt", requirements),
    ]);
    let sklearn = images::profile("sklearn").unwrap();
    let tag = spec::requirements_tag(sklearn, requirements);
    // A previous run of this test must not make the first build a reuse.
    remove_image(&tag).await;

    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains("with requirements.txt installed on top"),
        "{out}"
    );
    assert!(out.contains(&format!("building image {tag}")), "{out}");
    let its = f.store().iterations(RunId(1)).unwrap();
    assert_eq!(its[0].image.as_deref(), Some(tag.as_str()));

    // The second run reuses the image: nothing is built.
    common::commit_all(f.dir(), "again");
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(!out.contains("building image"), "rebuilt:\n{out}");
    let its = f.store().iterations(RunId(2)).unwrap();
    assert_eq!(its[0].image.as_deref(), Some(tag.as_str()));
}

#[tokio::test]
async fn a_project_dockerfile_builds_from_a_profile() {
    let dockerfile =
        "FROM mlops-tui/sklearn\nRUN echo 'built by the project Dockerfile' > /opt/marker\n";
    let toml = TOML_SKLEARN.replace(
        "image = \"sklearn\"",
        "image = { dockerfile = \"Dockerfile\" }  # our own",
    );
    let script =
        "import numpy\nprint(open('/opt/marker').read().strip())\nprint('accuracy: 0.75')\n";
    let f = Fixture::with_files(&[
        ("mlops.toml", &toml),
        ("report.py", script),
        ("Dockerfile", dockerfile),
    ]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains("image built from the project's Dockerfile"),
        "{out}"
    );
    assert!(out.contains("built by the project Dockerfile"), "{out}");
    let its = f.store().iterations(RunId(1)).unwrap();
    let image = its[0].image.clone().unwrap();
    assert!(image.starts_with("mlops-tui/project:"), "{image}");

    // Same tree, same tag: the second run builds nothing.
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(!out.contains("building image"), "rebuilt:\n{out}");
}

const KERAS_TOML: &str = r#"[train]
command = ["python3", "cnn_digits.py"]
image = "auto"

[metric]
name = "accuracy"
target = 0.9

[budget]
max_iterations = 3
iteration_timeout = "10m"
metric_timeout = "10m"

[resources]
memory = "2g"
cpus = 1.0

[tweak]
strategy = "grow"
apply = "auto"

[tweak.space]
epochs = { start = 1, max = 13, step = 6 }

[notify.desktop]
enabled = false
"#;

/// A Keras CNN in the style of the seeds: Keras 1 layer names, `model.fit`, `model.save(...h5)`.
const KERAS_CNN: &str = r#"#!/usr/bin/env python
# coding: utf-8

# In[1]:


import json
import os

from keras.models import Sequential
from keras.layers import Convolution2D, MaxPooling2D, Flatten, Dense
from keras.utils import to_categorical
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


# In[2]:


params = json.loads(os.environ.get("MLOPS_PARAMS", "{}"))
digits = load_digits()
X = digits.images.reshape(-1, 8, 8, 1) / 16.0
y = to_categorical(digits.target, 10)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)


# In[3]:


model = Sequential()
model.add(Convolution2D(16, (3, 3), activation='relu', input_shape=(8, 8, 1)))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Flatten())
model.add(Dense(units=64, activation='relu'))
model.add(Dense(units=10, activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
model.fit(X_train, y_train, epochs=int(params.get("epochs", 1)), batch_size=32, verbose=0)
loss, acc = model.evaluate(X_test, y_test, verbose=0)
os.makedirs("/mlops/model", exist_ok=True)
model.save("/mlops/model/mymodel.h5")
print("accuracy:", acc)
"#;

#[tokio::test]
async fn keras_cnn_trains_on_digits_in_the_keras_image() {
    let f = Fixture::with_files(&[("mlops.toml", KERAS_TOML), ("cnn_digits.py", KERAS_CNN)]);
    let (outcome, out) = f.run_once().await;
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{}\n{out}",
        outcome.reason
    );
    assert!(
        out.contains(
            "cnn (keras) — cnn_digits.py:31 uses keras.layers.Convolution2D → image keras"
        ),
        "{out}"
    );
    let its = f.store().iterations(RunId(1)).unwrap();
    let keras = images::profile("keras").unwrap();
    assert_eq!(its[0].image.as_deref(), Some(keras.tag().as_str()));
    let last = its.last().unwrap();
    assert!(last.final_value.unwrap() >= 0.9, "{:?}", last.final_value);
    assert!(
        its.len() >= 2,
        "the first iteration (one epoch) stays below the target"
    );
    let model = std::path::Path::new(last.workdir.as_deref().unwrap()).join("model/mymodel.h5");
    assert!(
        std::fs::metadata(&model).unwrap().len() > 10_000,
        "{}",
        model.display()
    );
}

/// `mlops-tui init` on projects that bring a Dockerfile or a requirements.txt: the written file says
/// how each is used, and loads.
#[test]
fn init_notices_a_dockerfile_and_requirements() {
    let init = |files: &[(&str, &str)]| {
        let f = Fixture::with_files(files);
        let out = std::process::Command::new(common::bin())
            .arg("init")
            .arg(f.dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(f.dir().join("mlops.toml")).unwrap()
    };
    let text = init(&[
        ("cnn_digits.py", KERAS_CNN),
        ("Dockerfile", "FROM mlops-tui/keras\n"),
    ]);
    assert!(
        text.contains("image = { dockerfile = \"Dockerfile\" }"),
        "{text}"
    );
    assert!(
        text.contains("it may start `FROM mlops-tui/keras`"),
        "{text}"
    );
    let text = init(&[("report.py", REPORT), ("requirements.txt", "tabulate\n")]);
    assert!(text.contains("image = \"auto\""), "{text}");
    assert!(
        text.contains("requirements.txt is installed with pip on top of image sklearn"),
        "{text}"
    );
}
