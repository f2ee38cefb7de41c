//! Deciding what kind of model a Python project trains, from its code.
//!
//! Classification reads imports and calls, never file names: `import torch.nn as nn` followed by
//! `nn.Conv2d(...)` is a torch CNN whatever the file is called. Every decision carries the evidence
//! (file, line, resolved symbol) that made it, so the user can check it and override it.
//!
//! Priority: any convolution makes a CNN; otherwise dense layers, recurrent layers, a scikit-learn
//! MLP or a hand-written numpy network make an ANN; otherwise a scikit-learn estimator makes a
//! classic model. Data helpers (`load_digits`, `train_test_split`) are never evidence.

mod imports;
pub(crate) mod lexer;
mod packages;
mod rules;
mod scan;
pub mod sources;
mod stdlib;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use imports::{Import, Missing, is_stdlib, missing, third_party};
pub use packages::{package_name, required, requirement_names};
pub use sources::{MAX_FILE_BYTES, MAX_FILES, SKIPPED_DIRS, SourceTree};

use rules::{Rule, STRENGTH_HEURISTIC};
use scan::Signal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Cnn,
    Ann,
    Classic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    Torch,
    Keras,
    Numpy,
    Sklearn,
}

impl ModelKind {
    /// Higher wins: a project with both convolutions and dense layers is a CNN.
    fn rank(self) -> u8 {
        match self {
            ModelKind::Cnn => 3,
            ModelKind::Ann => 2,
            ModelKind::Classic => 1,
        }
    }
}

impl Framework {
    /// Breaks ties between frameworks with equally strong and equally many pieces of evidence.
    fn preference(self) -> u8 {
        match self {
            Framework::Torch => 4,
            Framework::Keras => 3,
            Framework::Sklearn => 2,
            Framework::Numpy => 1,
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Cnn => "cnn",
            ModelKind::Ann => "ann",
            ModelKind::Classic => "classic",
        })
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framework::Torch => "torch",
            Framework::Keras => "keras",
            Framework::Numpy => "numpy",
            Framework::Sklearn => "sklearn",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Relative to the project directory.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// Fully qualified when resolvable through the file's imports (`torch.nn.Conv2d`); otherwise as
    /// written (`sigmoid`, `@`, `self.W1`).
    pub symbol: String,
    /// What the symbol says about the model, e.g. "convolution layer".
    pub meaning: String,
    /// In a notebook: the code cell (1-based, as `In[n]`) and the line within it that `line` is.
    pub cell: Option<(usize, usize)>,
}

impl Evidence {
    /// Where, for people: `train.py:98`, or `digits.ipynb In[3]:6` in a notebook.
    pub fn at(&self) -> String {
        match self.cell {
            Some((cell, line)) => format!("{} In[{cell}]:{line}", self.file.display()),
            None => format!("{}:{}", self.file.display(), self.line),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: ModelKind,
    pub framework: Framework,
    /// Strongest first: the evidence that decided `kind` and `framework`, then the rest by model
    /// kind priority. Never empty for a verdict returned by [`detect`]. One entry per symbol per
    /// file (its first use).
    pub evidence: Vec<Evidence>,
    /// Every Python file read, relative to the project directory.
    pub scanned: Vec<PathBuf>,
}

impl Verdict {
    /// Built-in image profile for this verdict: every framework has one, named as the framework
    /// (`tensorflow.keras` code gets `keras`: Keras 3 runs the same layers on another backend).
    pub fn profile(&self) -> &'static str {
        match self.framework {
            Framework::Torch => "torch",
            Framework::Numpy => "numpy",
            Framework::Sklearn => "sklearn",
            Framework::Keras => "keras",
        }
    }

    /// One line like: `cnn (torch) — train.py:14 uses torch.nn.Conv2d → image torch`.
    pub fn summary(&self) -> String {
        let image = format!("image {}", self.profile());
        match self.evidence.first() {
            Some(e) => format!(
                "{} ({}) — {} uses {} → {image}",
                self.kind,
                self.framework,
                e.at(),
                e.symbol
            ),
            None => format!("{} ({}) → {image}", self.kind, self.framework),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Python files exist but none shows a model; the message lists them so the user can tell
    /// whether the training code was scanned at all.
    #[error("{}", no_model_message(.dir, .scanned))]
    NoModel { dir: PathBuf, scanned: Vec<PathBuf> },
    #[error(
        "no Python files in {} (hidden directories, venv, __pycache__, site-packages and node_modules are skipped)",
        dir_label(.dir)
    )]
    NoPython { dir: PathBuf },
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Lists at most this many scanned files in an error; the count still covers all of them.
const LISTED_FILES: usize = 10;

fn dir_label(dir: &Path) -> String {
    let text = dir.display().to_string();
    if text.is_empty() {
        "./".to_owned()
    } else if text.ends_with('/') {
        text
    } else {
        format!("{text}/")
    }
}

fn no_model_message(dir: &Path, scanned: &[PathBuf]) -> String {
    let mut names: Vec<String> = scanned
        .iter()
        .take(LISTED_FILES)
        .map(|p| p.display().to_string())
        .collect();
    if scanned.len() > LISTED_FILES {
        names.push(format!("and {} more", scanned.len() - LISTED_FILES));
    }
    let plural = if scanned.len() == 1 { "" } else { "s" };
    format!(
        "no model found in {}: scanned {} ({} Python file{plural}); looked for torch.nn / keras layers / numpy networks / scikit-learn estimators",
        dir_label(dir),
        names.join(", "),
        scanned.len(),
    )
}

/// Classifies the Python files of a project, as read by `support::source_tree` (hidden directories
/// and [`SKIPPED_DIRS`] excluded, at most [`MAX_FILES`] files of at most [`MAX_FILE_BYTES`] each),
/// with [`detect_sources`].
pub fn detect(tree: &SourceTree) -> Result<Verdict, DetectError> {
    detect_sources(tree.root(), &tree.sources())
}

/// The third-party imports of the files [`detect`] reads: see [`third_party`].
pub fn imports(tree: &SourceTree) -> Vec<Import> {
    third_party(&tree.sources())
}

/// One piece of evidence with what it counts for.
struct Candidate {
    evidence: Evidence,
    kind: ModelKind,
    framework: Framework,
    strength: u8,
}

/// Pure core used by `detect` and by unit tests: (relative path, contents) pairs.
pub fn detect_sources(dir: &Path, files: &[(PathBuf, String)]) -> Result<Verdict, DetectError> {
    if files.is_empty() {
        return Err(DetectError::NoPython {
            dir: dir.to_path_buf(),
        });
    }
    let mut candidates = Vec::new();
    let mut numpy_signals = Vec::new();
    let mut seen = HashSet::new();
    for (file, src) in files {
        let findings = scan::scan(src);
        for hit in findings.hits {
            if seen.insert((file.clone(), hit.symbol.clone())) {
                candidates.push(candidate(file, hit.line, hit.symbol, hit.rule));
            }
        }
        numpy_signals.extend(findings.numpy.into_iter().map(|s| (file, s)));
    }
    candidates.extend(numpy_network(numpy_signals));
    let scanned: Vec<PathBuf> = files.iter().map(|(path, _)| path.clone()).collect();
    let Some((kind, framework)) = decide(&candidates) else {
        return Err(DetectError::NoModel {
            dir: dir.to_path_buf(),
            scanned,
        });
    };
    // Stable sort: within equal keys, candidates keep file and line order.
    candidates.sort_by_key(|c| {
        let decisive = c.kind == kind && c.framework == framework;
        (
            std::cmp::Reverse(decisive),
            std::cmp::Reverse(c.kind.rank()),
            std::cmp::Reverse(c.strength),
        )
    });
    Ok(Verdict {
        kind,
        framework,
        evidence: candidates
            .into_iter()
            .map(|c| in_cell(c.evidence, files))
            .collect(),
        scanned,
    })
}

/// `e` with its notebook cell filled in when its file is a notebook (read as its code text).
fn in_cell(mut e: Evidence, files: &[(PathBuf, String)]) -> Evidence {
    if crate::core::notebook::is_notebook(&e.file.to_string_lossy())
        && let Some((_, code)) = files.iter().find(|(f, _)| *f == e.file)
    {
        e.cell = crate::core::notebook::cell_line(code, e.line);
    }
    e
}

fn candidate(file: &Path, line: usize, symbol: String, rule: Rule) -> Candidate {
    Candidate {
        evidence: Evidence {
            file: file.to_path_buf(),
            line,
            symbol,
            meaning: rule.meaning.to_owned(),
            cell: None,
        },
        kind: rule.kind,
        framework: rule.framework,
        strength: rule.strength,
    }
}

/// A numpy network needs all three signals (matrix products, an activation function, gradient
/// updates); any one alone is ordinary numpy code. The evidence lists matrix products first, as
/// the most specific signal, then activations, then updates.
fn numpy_network(signals: Vec<(&PathBuf, scan::NumpySignal)>) -> Vec<Candidate> {
    let has = |wanted: Signal| signals.iter().any(|(_, s)| s.signal == wanted);
    if !(has(Signal::MatrixProduct) && has(Signal::Activation) && has(Signal::Update)) {
        return Vec::new();
    }
    let mut signals = signals;
    signals.sort_by_key(|(_, s)| s.signal);
    let mut seen = HashSet::new();
    signals
        .into_iter()
        .filter(|(file, s)| seen.insert(((*file).clone(), s.symbol.clone())))
        .map(|(file, s)| Candidate {
            evidence: Evidence {
                file: file.clone(),
                line: s.line,
                meaning: s.signal.meaning().to_owned(),
                symbol: s.symbol,
                cell: None,
            },
            kind: ModelKind::Ann,
            framework: Framework::Numpy,
            strength: STRENGTH_HEURISTIC,
        })
        .collect()
}

/// The highest-priority model kind, and among its evidence the framework with the strongest, then
/// most numerous, evidence.
fn decide(candidates: &[Candidate]) -> Option<(ModelKind, Framework)> {
    let kind = candidates.iter().map(|c| c.kind).max_by_key(|k| k.rank())?;
    let of_kind = || candidates.iter().filter(move |c| c.kind == kind);
    let framework = of_kind().map(|c| c.framework).max_by_key(|&fw| {
        let strength = of_kind()
            .filter(|c| c.framework == fw)
            .map(|c| c.strength)
            .max();
        let count = of_kind().filter(|c| c.framework == fw).count();
        (strength, count, fw.preference())
    })?;
    Some((kind, framework))
}
