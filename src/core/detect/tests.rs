use std::path::{Path, PathBuf};

use super::*;

fn sources(files: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .map(|(path, src)| (PathBuf::from(path), (*src).to_owned()))
        .collect()
}

fn verdict(files: &[(&str, &str)]) -> Verdict {
    detect_sources(Path::new("sample"), &sources(files)).unwrap()
}

fn single(src: &str) -> Verdict {
    verdict(&[("train.py", src)])
}

fn decided(v: &Verdict) -> (ModelKind, Framework) {
    (v.kind, v.framework)
}

fn first(v: &Verdict) -> (&str, usize, &str) {
    let e = &v.evidence[0];
    (e.file.to_str().unwrap(), e.line, e.symbol.as_str())
}

const TORCH_CNN: &str = "\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9216, 10)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv1(x)), 1))
";

#[test]
fn torch_cnn() {
    let v = single(TORCH_CNN);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Torch));
    assert_eq!(first(&v), ("train.py", 10, "torch.nn.Conv2d"));
    assert_eq!(v.evidence[0].meaning, "convolution layer");
    // The dense layer is listed, after the convolution that decided.
    assert_eq!(v.evidence[1].symbol, "torch.nn.Linear");
    assert_eq!(
        v.summary(),
        "cnn (torch) — train.py:10 uses torch.nn.Conv2d → image torch"
    );
    assert_eq!(v.profile(), "torch");
}

#[test]
fn torch_mlp_is_ann() {
    let src = "\
from torch import nn
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
";
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Torch));
    assert_eq!(first(&v), ("train.py", 2, "torch.nn.Linear"));
    assert_eq!(v.evidence.len(), 1, "one entry per symbol per file");
}

#[test]
fn keras_seeds_style_cnn() {
    let src = "\
# Part 1 - Building the CNN
from keras.models import Sequential
from keras.layers import Convolution2D, MaxPooling2D, Flatten, Dense

classifier = Sequential()
classifier.add(Convolution2D(32, 3, 3, input_shape=(64, 64, 3), activation='relu'))
classifier.add(MaxPooling2D(pool_size=(2, 2)))
classifier.add(Flatten())
classifier.add(Dense(units=128, activation='relu'))
classifier.add(Dense(units=1, activation='sigmoid'))
";
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Keras));
    assert_eq!(first(&v), ("train.py", 6, "keras.layers.Convolution2D"));
    assert_eq!(v.profile(), "keras");
    assert_eq!(
        v.summary(),
        "cnn (keras) — train.py:6 uses keras.layers.Convolution2D → image keras"
    );
}

#[test]
fn keras_conv2d_with_tuple_kernel() {
    let src = "from keras.layers import Conv2D, Dense\nm.add(Conv2D(32, (3,3)))\n";
    assert_eq!(decided(&single(src)), (ModelKind::Cnn, Framework::Keras));
}

#[test]
fn keras_dense_only_is_ann() {
    let src = "\
from keras.models import Sequential
from keras.layers import Dense, Dropout
model = Sequential()
model.add(Dense(units=64, activation='relu', input_dim=8))
model.add(Dropout(0.2))
model.add(Dense(units=1, activation='sigmoid'))
";
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Keras));
    assert_eq!(first(&v), ("train.py", 4, "keras.layers.Dense"));
}

#[test]
fn tf_keras_forms() {
    let dense =
        "import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Dense(10)])\n";
    let v = single(dense);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Keras));
    assert_eq!(first(&v).2, "tensorflow.keras.layers.Dense");

    let conv = "from tensorflow.keras.layers import Conv2D\nx = Conv2D(16, 3)(inputs)\n";
    let v = single(conv);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Keras));
    assert_eq!(first(&v).2, "tensorflow.keras.layers.Conv2D");

    let full = "import tensorflow\nl = tensorflow.keras.layers.Conv2D(16, 3)\n";
    assert_eq!(first(&single(full)).2, "tensorflow.keras.layers.Conv2D");

    let module = "from tensorflow.keras import layers, models\nm = models.Sequential([layers.Conv2D(8, 3)])\n";
    assert_eq!(decided(&single(module)), (ModelKind::Cnn, Framework::Keras));
}

const NUMPY_MLP: &str = "\
import numpy as np

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def sigmoid_derivative(x):
    return x * (1 - x)

W1 = np.random.rand(2, 4)
W2 = np.random.rand(4, 1)
for epoch in range(10000):
    hidden = sigmoid(np.dot(X, W1))
    output = sigmoid(hidden @ W2)
    d_output = (y - output) * sigmoid_derivative(output)
    d_hidden = d_output.dot(W2.T) * sigmoid_derivative(hidden)
    W2 += hidden.T.dot(d_output) * lr
    W1 -= lr * X.T.dot(d_hidden)
";

#[test]
fn numpy_mlp() {
    let v = single(NUMPY_MLP);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Numpy));
    assert_eq!(first(&v), ("train.py", 12, "numpy.dot"));
    assert_eq!(v.profile(), "numpy");
    let meanings: Vec<&str> = v.evidence.iter().map(|e| e.meaning.as_str()).collect();
    assert!(meanings.contains(&"activation function"));
    assert!(meanings.contains(&"gradient-descent weight update"));
    assert!(v.evidence.iter().any(|e| e.symbol == "W1" && e.line == 17));
}

#[test]
fn numpy_without_activation_is_not_a_network() {
    // Linear regression by gradient descent: products and updates, no activation.
    let src = "import numpy as np\nfor _ in range(100):\n    w -= lr * X.T @ (X @ w - y)\n";
    assert!(matches!(
        detect_sources(Path::new("sample"), &sources(&[("lr.py", src)])),
        Err(DetectError::NoModel { .. })
    ));
}

#[test]
fn sklearn_knn_and_svc_are_classic() {
    let knn = "\
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier
clf = KNeighborsClassifier(n_neighbors=3)
";
    let v = single(knn);
    assert_eq!(decided(&v), (ModelKind::Classic, Framework::Sklearn));
    assert_eq!(
        first(&v),
        ("train.py", 3, "sklearn.neighbors.KNeighborsClassifier")
    );
    assert_eq!(v.profile(), "sklearn");

    let svc = "from sklearn import svm\nclf = svm.SVC(kernel='rbf', C=1.0)\n";
    let v = single(svc);
    assert_eq!(decided(&v), (ModelKind::Classic, Framework::Sklearn));
    assert_eq!(first(&v).2, "sklearn.svm.SVC");
    assert_eq!(
        v.summary(),
        "classic (sklearn) — train.py:2 uses sklearn.svm.SVC → image sklearn"
    );
}

#[test]
fn sklearn_mlp_is_ann() {
    let src = "from sklearn.neural_network import MLPClassifier\nclf = MLPClassifier(hidden_layer_sizes=(64,))\n";
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Sklearn));
    assert_eq!(first(&v).2, "sklearn.neural_network.MLPClassifier");
}

#[test]
fn conv_in_comments_and_strings_is_not_cnn() {
    let src = r#"
"""Docstring: we tried nn.Conv2d(1, 32, 3) and Conv2D(32, (3, 3)) before."""
import torch.nn as nn
from keras.layers import Conv2D
# self.conv = nn.Conv2d(1, 32, 3)
label = "nn.Conv2d(1, 32, 3)"
other = 'Conv2D(32, (3,3))'
notes = f"Conv2D({n})"
model = nn.Linear(4, 2)  # nn.Conv2d(1, 2, 3)
"#;
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Torch));
    assert_eq!(v.evidence.len(), 1);
}

#[test]
fn aliased_imports() {
    let src = "\
import torch.nn as neural
from torch import nn as N
import sklearn.ensemble as ens
a = N.Linear(2, 2)
b = ens.RandomForestClassifier()
c = neural.Conv1d(1, 1, 3)
";
    let v = single(src);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Torch));
    assert_eq!(first(&v), ("train.py", 6, "torch.nn.Conv1d"));
    let symbols: Vec<&str> = v.evidence.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        [
            "torch.nn.Conv1d",
            "torch.nn.Linear",
            "sklearn.ensemble.RandomForestClassifier"
        ]
    );
}

#[test]
fn sklearn_data_helpers_do_not_outweigh_a_torch_cnn() {
    let data = "\
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
parts = train_test_split(X, y)
";
    let v = verdict(&[("data.py", data), ("model.py", TORCH_CNN)]);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Torch));
    assert!(v.evidence.iter().all(|e| e.file == Path::new("model.py")));
    assert_eq!(
        v.scanned,
        [PathBuf::from("data.py"), PathBuf::from("model.py")]
    );
}

#[test]
fn cnn_beats_other_frameworks_dense_layers() {
    let keras = "from keras.layers import Dense\nDense(1)\nDense(2)\n";
    let v = verdict(&[("a.py", keras), ("b.py", TORCH_CNN)]);
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Torch));
}

#[test]
fn no_model_names_the_scanned_files() {
    let files = sources(&[("train.py", "import os\nprint('hi')\n"), ("util.py", "")]);
    let err = detect_sources(Path::new("sample"), &files).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no model found in sample/: scanned train.py, util.py (2 Python files); \
         looked for torch.nn / keras layers / numpy networks / scikit-learn estimators"
    );
    let one = sources(&[("main.py", "x = 1\n")]);
    let err = detect_sources(Path::new("repo/"), &one).unwrap_err();
    assert!(
        err.to_string()
            .contains("in repo/: scanned main.py (1 Python file);")
    );
}

#[test]
fn no_model_lists_at_most_ten_files() {
    let files: Vec<(PathBuf, String)> = (0..12)
        .map(|i| (PathBuf::from(format!("f{i:02}.py")), String::new()))
        .collect();
    let err = detect_sources(Path::new("p"), &files).unwrap_err();
    assert!(
        err.to_string()
            .contains("f09.py, and 2 more (12 Python files)"),
        "{err}"
    );
}

#[test]
fn no_python_files() {
    let err = detect_sources(Path::new("sample"), &[]).unwrap_err();
    assert!(matches!(err, DetectError::NoPython { .. }));
    assert!(err.to_string().starts_with("no Python files in sample/"));
}

#[test]
fn display_names() {
    assert_eq!(ModelKind::Cnn.to_string(), "cnn");
    assert_eq!(ModelKind::Ann.to_string(), "ann");
    assert_eq!(ModelKind::Classic.to_string(), "classic");
    assert_eq!(Framework::Torch.to_string(), "torch");
    assert_eq!(Framework::Keras.to_string(), "keras");
    assert_eq!(Framework::Numpy.to_string(), "numpy");
    assert_eq!(Framework::Sklearn.to_string(), "sklearn");
}
