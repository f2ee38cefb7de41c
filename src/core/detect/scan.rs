//! Per-file analysis: resolve names through the file's imports, then report calls of
//! model-defining symbols and the signals of a hand-written numpy network.
//!
//! Resolution is flow-insensitive: every import anywhere in the file (including inside functions
//! and `try:` blocks) binds for the whole file, which is what training scripts mean in practice.

use std::collections::{HashMap, HashSet};

use super::lexer::{self, Statement, Tok, Token};
use super::rules::{self, NumpyRole, Rule};

/// A call of a symbol that [`rules::classify`] knows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Hit {
    pub line: usize,
    pub symbol: String,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Signal {
    MatrixProduct,
    Activation,
    Update,
}

impl Signal {
    pub fn meaning(self) -> &'static str {
        match self {
            Signal::MatrixProduct => "matrix product",
            Signal::Activation => "activation function",
            Signal::Update => "gradient-descent weight update",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NumpySignal {
    pub signal: Signal,
    pub line: usize,
    pub symbol: String,
}

#[derive(Debug, Default)]
pub(super) struct Findings {
    pub hits: Vec<Hit>,
    /// Only collected in files that import numpy: `@` or a function named `relu` means little in a
    /// torch file.
    pub numpy: Vec<NumpySignal>,
}

pub(super) fn scan(src: &str) -> Findings {
    let statements = lexer::statements(src);
    let scope = Scope::build(&statements);
    let numpy_file = scope.imports_numpy();
    let mut findings = Findings::default();
    for stmt in statements.iter().filter(|s| !is_import(s)) {
        scan_statement(stmt, &scope, numpy_file, &mut findings);
    }
    if !numpy_file {
        findings.numpy.clear();
    }
    findings
}

/// Name bindings of one file.
#[derive(Debug, Default)]
struct Scope {
    /// Local name → fully qualified module path (`nn` → `torch.nn`, `Dense` → `keras.layers.Dense`).
    aliases: HashMap<String, String>,
    /// Modules imported with `from m import *`, tried in order for otherwise unbound names.
    stars: Vec<String>,
    /// Names the file defines itself (functions, classes, assignments, relative imports); they
    /// shadow star imports.
    locals: HashSet<String>,
}

fn is_import(stmt: &Statement) -> bool {
    matches!(stmt[0].name(), Some("import" | "from"))
}

/// Reads `a.b.c` starting at `*i`, leaving `*i` after it.
fn dotted(tokens: &[Token], i: &mut usize) -> Vec<String> {
    let mut parts = Vec::new();
    while let Some(name) = tokens.get(*i).and_then(Token::name) {
        parts.push(name.to_owned());
        *i += 1;
        if tokens.get(*i).is_some_and(|t| t.is_op(".")) {
            *i += 1;
        } else {
            break;
        }
    }
    parts
}

/// Reads an optional `as name` at `*i`.
fn alias(tokens: &[Token], i: &mut usize) -> Option<String> {
    if tokens.get(*i).and_then(Token::name) != Some("as") {
        return None;
    }
    let name = tokens.get(*i + 1).and_then(Token::name)?.to_owned();
    *i += 2;
    Some(name)
}

impl Scope {
    fn build(statements: &[Statement]) -> Self {
        let mut scope = Scope::default();
        for stmt in statements {
            match stmt[0].name() {
                Some("import") => scope.import(stmt),
                Some("from") => scope.import_from(stmt),
                _ => scope.definition(stmt),
            }
        }
        scope
    }

    fn imports_numpy(&self) -> bool {
        let is_numpy = |m: &str| m == "numpy" || m.starts_with("numpy.");
        self.aliases.values().any(|m| is_numpy(m)) || self.stars.iter().any(|m| is_numpy(m))
    }

    /// `import a.b.c` binds `a`; `import a.b as x` binds `x` to `a.b`.
    fn import(&mut self, stmt: &Statement) {
        let mut i = 1;
        loop {
            let path = dotted(stmt, &mut i);
            let Some(head) = path.first() else { return };
            match alias(stmt, &mut i) {
                Some(name) => self.bind(name, path.join(".")),
                None => self.bind(head.clone(), head.clone()),
            }
            if !stmt.get(i).is_some_and(|t| t.is_op(",")) {
                return;
            }
            i += 1;
        }
    }

    fn import_from(&mut self, stmt: &Statement) {
        let mut i = 1;
        let mut relative = false;
        while stmt.get(i).is_some_and(|t| t.is_op(".") || t.is_op("...")) {
            relative = true;
            i += 1;
        }
        let module = dotted(stmt, &mut i).join(".");
        if stmt.get(i).and_then(Token::name) != Some("import") {
            return;
        }
        i += 1;
        while let Some(token) = stmt.get(i) {
            if token.is_op("*") {
                if !relative {
                    self.stars.push(module.clone());
                }
                i += 1;
            } else if let Some(name) = token.name() {
                let name = name.to_owned();
                i += 1;
                let local = alias(stmt, &mut i).unwrap_or_else(|| name.clone());
                if relative || module.is_empty() {
                    self.locals.insert(local);
                } else {
                    self.bind(local, format!("{module}.{name}"));
                }
            } else {
                // `(`, `)`, `,`.
                i += 1;
            }
        }
    }

    fn bind(&mut self, name: String, path: String) {
        self.locals.remove(&name);
        self.aliases.insert(name, path);
    }

    /// Records `def`/`class` names, and assignments; `NAME = a.b.c` (a bare dotted path) is an
    /// alias such as `layers = tf.keras.layers`.
    fn definition(&mut self, stmt: &Statement) {
        let start = usize::from(stmt[0].name() == Some("async"));
        if matches!(stmt.get(start).and_then(Token::name), Some("def" | "class")) {
            if let Some(name) = stmt.get(start + 1).and_then(Token::name) {
                self.locals.insert(name.to_owned());
            }
            return;
        }
        let (Some(target), true) = (stmt[0].name(), stmt.get(1).is_some_and(|t| t.is_op("=")))
        else {
            return;
        };
        let mut i = 2;
        let chain = dotted(stmt, &mut i);
        let resolved = if i == stmt.len() && !chain.is_empty() {
            self.resolve(&chain)
        } else {
            None
        };
        match resolved {
            Some(path) => self.bind(target.to_owned(), path),
            None if !self.aliases.contains_key(target) => {
                self.locals.insert(target.to_owned());
            }
            None => {}
        }
    }

    /// Fully qualified path of a dotted reference, if its head comes from an import.
    fn resolve(&self, chain: &[String]) -> Option<String> {
        let (head, rest) = chain.split_first()?;
        let with_rest = |base: &str| {
            let mut path = base.to_owned();
            for part in rest {
                path.push('.');
                path.push_str(part);
            }
            path
        };
        if let Some(base) = self.aliases.get(head) {
            return Some(with_rest(base));
        }
        if self.locals.contains(head) {
            return None;
        }
        // A star import binds only names the module really has; only names the rules know can be
        // checked, and only those matter.
        self.stars.iter().find_map(|module| {
            let path = with_rest(&format!("{module}.{head}"));
            let known = rules::classify(&path).is_some() || rules::numpy_role(&path).is_some();
            known.then_some(path)
        })
    }
}

fn scan_statement(stmt: &Statement, scope: &Scope, numpy_file: bool, out: &mut Findings) {
    let mut numpy = Vec::new();
    let mut signal = |signal, line, symbol: &str| {
        numpy.push(NumpySignal {
            signal,
            line,
            symbol: symbol.to_owned(),
        });
    };
    if let Some((line, name)) = defined_activation(stmt) {
        signal(Signal::Activation, line, name);
    }
    if numpy_file && let Some((line, target)) = gradient_update(stmt) {
        signal(Signal::Update, line, &target);
    }
    let mut i = 0;
    while let Some(token) = stmt.get(i) {
        // A leading `@` is a decorator; anywhere else it is the matrix-product operator.
        if i > 0 && (token.is_op("@") || token.is_op("@=")) {
            signal(Signal::MatrixProduct, token.line, "@");
        }
        let after_dot = i > 0 && stmt[i - 1].is_op(".");
        let defined = i > 0 && matches!(stmt[i - 1].name(), Some("def" | "class"));
        if token.name().is_none() || after_dot || defined {
            i += 1;
            continue;
        }
        let chain = dotted(stmt, &mut i);
        let called = stmt.get(i).is_some_and(|t| t.is_op("("));
        if !called {
            continue;
        }
        match scope.resolve(&chain) {
            Some(symbol) => {
                if let Some(rule) = rules::classify(&symbol) {
                    out.hits.push(Hit {
                        line: token.line,
                        symbol,
                        rule,
                    });
                } else if let Some(role) = rules::numpy_role(&symbol) {
                    let signal_kind = match role {
                        NumpyRole::MatrixProduct => Signal::MatrixProduct,
                        NumpyRole::Activation => Signal::Activation,
                    };
                    signal(signal_kind, token.line, &symbol);
                }
            }
            // `x.dot(w)` on an array.
            None if chain.len() > 1 && chain.last().is_some_and(|n| n == "dot") => {
                signal(Signal::MatrixProduct, token.line, "ndarray.dot");
            }
            None => {}
        }
    }
    out.numpy.extend(numpy);
}

/// `def sigmoid(x):` or `relu = lambda x: …`.
fn defined_activation(stmt: &Statement) -> Option<(usize, &str)> {
    let start = usize::from(stmt[0].name() == Some("async"));
    let name = if stmt.get(start).and_then(Token::name) == Some("def") {
        stmt.get(start + 1)?
    } else if stmt.get(1).is_some_and(|t| t.is_op("="))
        && stmt.get(2).and_then(Token::name) == Some("lambda")
    {
        &stmt[0]
    } else {
        return None;
    };
    let text = name.name()?;
    rules::is_activation_name(text).then_some((name.line, text))
}

/// `w -= lr * grad`, `w += -lr * grad` or `w = w - lr * grad`, where the subtracted term is a
/// product or a gradient-named variable (`dW`, `d_w`, `grad_w`, `delta`). Returns the target.
fn gradient_update(stmt: &Statement) -> Option<(usize, String)> {
    let first_name = stmt[0].name()?;
    if matches!(
        first_name,
        "def" | "class" | "return" | "if" | "for" | "while"
    ) {
        return None;
    }
    let (target, rhs) = if let Some(k) = stmt.iter().position(|t| t.is_op("-=")) {
        (&stmt[..k], &stmt[k + 1..])
    } else if let Some(k) = stmt.iter().position(|t| t.is_op("+=")) {
        let rhs = &stmt[k + 1..];
        if !rhs.first().is_some_and(|t| t.is_op("-")) {
            return None;
        }
        (&stmt[..k], &rhs[1..])
    } else {
        let k = stmt.iter().position(|t| t.is_op("="))?;
        let (target, rhs) = (&stmt[..k], &stmt[k + 1..]);
        let same_target =
            rhs.len() > target.len() && rhs.iter().zip(target).all(|(a, b)| a.tok == b.tok);
        if !same_target {
            return None;
        }
        let rest = &rhs[target.len()..];
        if !rest.first().is_some_and(|t| t.is_op("-")) {
            return None;
        }
        (target, &rest[1..])
    };
    let gradient_like = rhs.iter().any(|t| match &t.tok {
        Tok::Op(op) => *op == "*",
        Tok::Name(name) => is_gradient_name(name),
        _ => false,
    });
    if target.is_empty() || !gradient_like {
        return None;
    }
    let symbol: String = target
        .iter()
        .take_while(|t| t.name().is_some() || t.is_op("."))
        .map(|t| t.name().unwrap_or("."))
        .collect();
    (!symbol.is_empty()).then(|| (stmt[0].line, symbol))
}

fn is_gradient_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let mut chars = name.chars();
    let d_prefixed = chars.next() == Some('d')
        && chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_uppercase());
    d_prefixed || lower.contains("grad") || lower.contains("delta")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(src: &str) -> Vec<(usize, String)> {
        scan(src)
            .hits
            .into_iter()
            .map(|h| (h.line, h.symbol))
            .collect()
    }

    #[test]
    fn resolves_import_forms() {
        let src = "\
import torch.nn as nn
from torch import nn as tnn
import torch
from keras.layers import Conv2D as C, Dense
from tensorflow import keras
import tensorflow as tf
layers = tf.keras.layers
nn.Conv2d(1, 2, 3)
tnn.Linear(2, 3)
torch.nn.functional.conv2d(x, w)
C(32, (3, 3))
Dense(10)
keras.layers.Dense(1)
layers.Conv2D(8, 3)
";
        assert_eq!(
            symbols(src),
            vec![
                (8, "torch.nn.Conv2d".to_owned()),
                (9, "torch.nn.Linear".to_owned()),
                (10, "torch.nn.functional.conv2d".to_owned()),
                (11, "keras.layers.Conv2D".to_owned()),
                (12, "keras.layers.Dense".to_owned()),
                (13, "tensorflow.keras.layers.Dense".to_owned()),
                (14, "tensorflow.keras.layers.Conv2D".to_owned()),
            ]
        );
    }

    #[test]
    fn parenthesised_and_star_imports() {
        let src = "from keras.layers import (\n    Dense,\n    Flatten,\n)\nfrom keras.layers import *\nConv2D(1)\nDense(2)\n";
        assert_eq!(
            symbols(src),
            vec![
                (6, "keras.layers.Conv2D".to_owned()),
                (7, "keras.layers.Dense".to_owned())
            ]
        );
    }

    #[test]
    fn local_definitions_and_references_are_not_calls() {
        let src = "\
from keras.layers import *
from .layers import Conv2D
import torch.nn as nn
class Dense: pass
Dense(3)
Conv2D(3)
if isinstance(m, (nn.Conv2d, nn.Linear)): pass
def Conv1D(x): return x
";
        assert!(symbols(src).is_empty());
    }

    #[test]
    fn numpy_signals() {
        let src = "\
import numpy as np
@decorator
def sigmoid(x): return 1 / (1 + np.exp(-x))
relu = lambda x: np.maximum(0, x)
h = sigmoid(np.dot(X, W1))
o = h @ W2
self.W2 -= lr * h.T.dot(delta)
b = b - dB
b += -0.1 * g
i -= 1
";
        let signals: Vec<(Signal, usize, String)> = scan(src)
            .numpy
            .into_iter()
            .map(|s| (s.signal, s.line, s.symbol))
            .collect();
        assert_eq!(
            signals,
            vec![
                (Signal::Activation, 3, "sigmoid".to_owned()),
                (Signal::Activation, 4, "relu".to_owned()),
                (Signal::MatrixProduct, 5, "numpy.dot".to_owned()),
                (Signal::MatrixProduct, 6, "@".to_owned()),
                (Signal::Update, 7, "self.W2".to_owned()),
                (Signal::MatrixProduct, 7, "ndarray.dot".to_owned()),
                (Signal::Update, 8, "b".to_owned()),
                (Signal::Update, 9, "b".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_code_does_not_panic() {
        let sources = [
            "async",
            "async def",
            "def",
            "class",
            "from",
            "import",
            "from . import",
            "from a import",
            "import a as",
            "from a import (b as",
            "x =",
            "x = x",
            "w -=",
            "w += -",
            "@",
            "a @",
            "'''",
            "\"\"\"\n",
            "\\",
            "0x",
            "1e",
            "1e+",
            ")))",
            "(((",
            "b'\\",
            "r'",
            "f\"{",
            "a.",
            ".a",
            "a..b(",
            "été = 1",
            "x = \u{fffd}(",
        ];
        for src in sources {
            let _ = scan(src);
        }
    }

    #[test]
    fn numpy_signals_need_numpy() {
        let src = "def sigmoid(x): return x\nh = x @ w\nw -= lr * g\n";
        assert!(scan(src).numpy.is_empty());
    }
}
