use std::fs;
use std::path::{Path, PathBuf};

use super::read;
use crate::core::detect::{DetectError, Framework, ModelKind, Verdict};

fn detect(dir: &Path) -> Result<Verdict, DetectError> {
    crate::core::detect::detect(&read(dir)?)
}

fn decided(v: &Verdict) -> (ModelKind, Framework) {
    (v.kind, v.framework)
}

fn first(v: &Verdict) -> (&str, usize, &str) {
    let e = &v.evidence[0];
    (e.file.to_str().unwrap(), e.line, e.symbol.as_str())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detect")
        .join(name)
}

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

#[test]
fn detect_reads_a_directory_and_skips_environments() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "train.py", "from src.model import build\nbuild()\n");
    write(
        root,
        "src/model.py",
        "from sklearn.svm import SVC\ndef build():\n    return SVC()\n",
    );
    write(
        root,
        "README.md",
        "import torch.nn as nn\nnn.Conv2d(1, 2, 3)\n",
    );
    let torch = "import torch.nn as nn\nnn.Conv2d(1, 2, 3)\n";
    write(
        root,
        ".venv/lib/python3.11/site-packages/torch/nn/conv.py",
        torch,
    );
    write(root, "venv/lib/layers.py", torch);
    write(root, "node_modules/x/y.py", torch);
    write(root, "src/__pycache__/model.py", torch);
    write(root, ".git/hooks/hook.py", torch);
    let big = format!(
        "import torch.nn as nn\nnn.Conv2d(1, 2, 3)\n{}",
        "#".repeat(1 << 20)
    );
    write(root, "generated.py", &big);

    let v = detect(root).unwrap();
    assert_eq!(decided(&v), (ModelKind::Classic, Framework::Sklearn));
    assert_eq!(
        v.scanned,
        [PathBuf::from("src/model.py"), PathBuf::from("train.py")]
    );
    assert_eq!(first(&v), ("src/model.py", 3, "sklearn.svm.SVC"));
}

#[test]
fn detect_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "notes.txt", "nn.Conv2d");
    write(tmp.path(), ".venv/a.py", "import torch");
    assert!(matches!(
        detect(tmp.path()),
        Err(DetectError::NoPython { .. })
    ));

    let missing = tmp.path().join("missing");
    let err = detect(&missing).unwrap_err();
    assert!(matches!(&err, DetectError::Io { path, .. } if *path == missing));
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn detect_reads_non_utf8_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = b"# caf\xe9\nfrom torch import nn\nnet = nn.Conv2d(1, 2, 3)\n".to_vec();
    bytes.extend_from_slice(b"s = '\xff'\n");
    fs::write(tmp.path().join("train.py"), bytes).unwrap();
    assert_eq!(
        decided(&detect(tmp.path()).unwrap()),
        (ModelKind::Cnn, Framework::Torch)
    );
}

#[test]
fn fixture_keras_seeds_cnn() {
    let v = detect(&fixture("keras_seeds_cnn")).unwrap();
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Keras));
    assert_eq!(first(&v), ("model.py", 16, "keras.layers.Convolution2D"));
    assert_eq!(v.scanned.len(), 4);
    assert!(!v.evidence.iter().any(|e| e.file.starts_with("utils")));
}

#[test]
fn fixture_torch_digits_cnn() {
    let v = detect(&fixture("torch_digits_cnn")).unwrap();
    assert_eq!(decided(&v), (ModelKind::Cnn, Framework::Torch));
    assert_eq!(
        v.summary(),
        "cnn (torch) — models/cnn.py:9 uses torch.nn.Conv2d → image torch"
    );
    // The KNN baseline is evidence too, listed last.
    let last = v.evidence.last().unwrap();
    assert_eq!(last.symbol, "sklearn.neighbors.KNeighborsClassifier");
}

#[test]
fn fixture_numpy_mlp() {
    let v = detect(&fixture("numpy_mlp")).unwrap();
    assert_eq!(decided(&v), (ModelKind::Ann, Framework::Numpy));
    assert_eq!(
        v.summary(),
        "ann (numpy) — network.py:23 uses numpy.dot → image numpy"
    );
    assert!(v.evidence.iter().any(|e| e.symbol == "self.weights"));
    assert!(
        v.evidence
            .iter()
            .any(|e| e.symbol == "sigmoid" && e.line == 7)
    );
}

#[test]
fn fixture_sklearn_iris() {
    let v = detect(&fixture("sklearn_iris")).unwrap();
    assert_eq!(decided(&v), (ModelKind::Classic, Framework::Sklearn));
    assert_eq!(
        first(&v),
        ("train.py", 12, "sklearn.ensemble.RandomForestClassifier")
    );
    assert_eq!(v.evidence.len(), 1);
}

#[test]
fn a_linked_python_file_is_read_only_when_it_stays_inside_the_project() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.py", "import outsidemarker\n");
    write(root.path(), "train.py", "import numpy\n");
    std::os::unix::fs::symlink(
        outside.path().join("secret.py"),
        root.path().join("evil.py"),
    )
    .unwrap();
    std::os::unix::fs::symlink("train.py", root.path().join("alias.py")).unwrap();
    let files = read(root.path()).unwrap().sources();
    let names: Vec<_> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(names, ["alias.py", "train.py"]);
    assert!(files.iter().all(|(_, t)| !t.contains("outsidemarker")));
}
