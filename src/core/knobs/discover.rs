//! What `init` finds by itself: the training entry script and candidate knobs (keyword literals of
//! known estimator and layer calls, first arguments of layers, loop counts around `model.add`,
//! argparse defaults), each as a ready `[tweak.space]` entry with a range around its current value.
//!
//! Every suggested binding is checked to match exactly its own place before it is offered, so an
//! uncommented suggestion always resolves.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::core::config::template::{Discovery, KnobLine};
use crate::core::config::{BindTarget, SourceBinding};
use crate::core::detect::Verdict;
use crate::core::detect::lexer::{Statement, Tok, Token, statements};

use super::find::{self, Found};
use super::literal::{Lit, LitKind, literal_in};

/// How a knob's values spread around its current value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Powers of ten around the value (C, gamma, learning rates).
    Log,
    /// Doubling (units, filters, batch sizes).
    Double,
    /// Small integer steps (neighbours, depth, epochs).
    Count,
    /// Loop counts: one more at a time.
    Loop,
    /// A rate in [0, 0.9] by tenths (dropout).
    Fraction,
    /// One of a few known strings, the current one first.
    Choice(&'static [&'static str]),
}

/// Keyword arguments of estimator and layer calls worth tuning.
const KEYWORDS: &[(&str, Shape)] = &[
    ("n_neighbors", Shape::Count),
    ("C", Shape::Log),
    ("gamma", Shape::Log),
    ("alpha", Shape::Log),
    ("learning_rate", Shape::Log),
    ("lr", Shape::Log),
    ("max_depth", Shape::Count),
    ("min_samples_split", Shape::Count),
    ("min_samples_leaf", Shape::Count),
    ("degree", Shape::Count),
    ("epochs", Shape::Count),
    ("kernel_size", Shape::Count),
    ("n_estimators", Shape::Double),
    ("max_iter", Shape::Double),
    ("filters", Shape::Double),
    ("units", Shape::Double),
    ("batch_size", Shape::Double),
    ("hidden_layer_sizes", Shape::Double),
    ("dropout", Shape::Fraction),
    ("rate", Shape::Fraction),
    (
        "kernel",
        Shape::Choice(&["rbf", "linear", "poly", "sigmoid"]),
    ),
    ("weights", Shape::Choice(&["uniform", "distance"])),
    ("criterion", Shape::Choice(&["gini", "entropy", "log_loss"])),
    ("optimizer", Shape::Choice(&["adam", "sgd", "rmsprop"])),
];

/// Layers whose first positional argument is their size: (call, knob name, shape).
const POSITIONAL: &[(&str, &str, Shape)] = &[
    ("Conv2D", "filters", Shape::Double),
    ("Convolution2D", "filters", Shape::Double),
    ("Conv1D", "filters", Shape::Double),
    ("Dense", "units", Shape::Double),
    ("Dropout", "dropout", Shape::Fraction),
];

/// A candidate knob of one file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Suggested {
    pub name: String,
    pub file: String,
    pub line: usize,
    /// The `[tweak.space]` value, e.g. `{ source = "train.py", call = "svm.SVC", arg = "gamma", values = [...] }`.
    pub entry: String,
    /// What was found, e.g. `svm.SVC(gamma=0.001)`.
    pub note: String,
}

/// A knob before its binding is chosen.
struct Candidate {
    name: String,
    lit: Lit,
    shape: Shape,
    note: String,
    /// Ways to bind it, most robust first; the first that matches only this literal is used.
    bindings: Vec<(BindTarget, bool)>,
}

/// The entry script and the knobs of a project, for `init`'s template.
pub fn discover(verdict: &Verdict, files: &[(PathBuf, String)]) -> Discovery {
    let files: Vec<(String, &str)> = files
        .iter()
        .map(|(p, s)| (slash_path(p), s.as_str()))
        .collect();
    let (entry, considered) = entry_script(verdict, &files);
    let mut knobs = suggestions(&files);
    // The entry script's knobs first: those are what the command runs.
    knobs.sort_by_key(|s| Some(&s.file) != entry.as_ref());
    Discovery {
        entry,
        considered,
        reads_params: files.iter().any(|(_, s)| find::reads_params(s)),
        files: super::files::file_use(&files),
        knobs: knobs
            .into_iter()
            .map(|s| KnobLine {
                note: format!("{} {}", location(&files, &s.file, s.line), s.note),
                name: s.name,
                value: s.entry,
            })
            .collect(),
    }
}

/// `file:line`, or `nb.ipynb In[3]:6` in a notebook.
fn location(files: &[(String, &str)], file: &str, line: usize) -> String {
    let code = files
        .iter()
        .find(|(f, _)| f == file)
        .map_or("", |(_, s)| *s);
    crate::core::notebook::location(file, code, line)
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The script that looks like the training entry: the most model evidence, then a
/// `if __name__ == "__main__"` guard, then a `.fit(` call. Also returns the other scripts that
/// looked like one, so the user can see the choice.
fn entry_script(verdict: &Verdict, files: &[(String, &str)]) -> (Option<String>, Vec<String>) {
    let evidence = |file: &str| {
        verdict
            .evidence
            .iter()
            .filter(|e| slash_path(&e.file) == file)
            .count()
    };
    let mut scored: Vec<(usize, bool, bool, &String)> = files
        .iter()
        .map(|(file, src)| {
            let stmts = statements(src);
            (
                evidence(file),
                main_guard(src, &stmts),
                calls_fit(&stmts),
                file,
            )
        })
        .filter(|(e, guard, fit, _)| *e > 0 || *guard || *fit)
        .collect();
    // Stable: among equals the first file in walk order wins.
    scored.sort_by_key(|&(e, guard, fit, _)| std::cmp::Reverse((e, guard, fit)));
    let mut names = scored.into_iter().map(|(.., f)| f.clone());
    let entry = names.next();
    (entry, names.collect())
}

fn main_guard(src: &str, stmts: &[Statement]) -> bool {
    stmts.iter().any(|s| {
        s.len() >= 4
            && s[0].name() == Some("if")
            && s[1].name() == Some("__name__")
            && s[2].is_op("==")
            && s[3].tok == Tok::Str
            && s[3].text(src).contains("__main__")
    })
}

fn calls_fit(stmts: &[Statement]) -> bool {
    stmts.iter().any(|s| method_call(s, "fit"))
}

/// Whether the statement calls a method named `name` (`.name(`).
fn method_call(toks: &[Token], name: &str) -> bool {
    toks.windows(3)
        .any(|w| w[0].is_op(".") && w[1].name() == Some(name) && w[2].is_op("("))
}

/// Every file's candidate knobs with a binding that matches only them, uniquely named.
pub(super) fn suggestions(files: &[(String, &str)]) -> Vec<Suggested> {
    let mut out: Vec<Suggested> = Vec::new();
    for (file, src) in files {
        let stmts = statements(src);
        let mut candidates = call_candidates(src, &stmts);
        candidates.extend(loop_candidates(src, &stmts));
        candidates.sort_by_key(|c| c.lit.start);
        candidates.dedup_by_key(|c| c.lit.start);
        for c in candidates {
            let Some(binding) = choose_binding(file, src, &c) else {
                continue;
            };
            let Some(space) = space(c.shape, &c.lit) else {
                continue;
            };
            let name = unique_name(&out, &c.name);
            out.push(Suggested {
                entry: entry_text(&binding, &space),
                name,
                file: file.clone(),
                line: c.lit.line,
                note: c.note,
            });
        }
    }
    out
}

fn unique_name(taken: &[Suggested], base: &str) -> String {
    let free = |n: &str| !taken.iter().any(|s| s.name == n);
    if free(base) {
        return base.to_owned();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| free(n))
        .unwrap_or_else(|| base.to_owned())
}

/// Keyword literals of known names, first arguments of layers and argparse defaults.
fn call_candidates(src: &str, stmts: &[Statement]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for s in stmts {
        for (open, t) in s.iter().enumerate() {
            if !t.is_op("(") {
                continue;
            }
            let Some(callee) = find::callee(s, open) else {
                continue;
            };
            let call = callee.join(".");
            let args = find::arguments(s, open);
            out.extend(keyword_candidates(src, s, &call, &args));
            out.extend(positional_candidate(src, s, &call, &args));
            out.extend(argparse_candidate(src, s, &call, &args));
        }
    }
    out
}

fn keyword_candidates(
    src: &str,
    s: &Statement,
    call: &str,
    args: &[(usize, usize)],
) -> Vec<Candidate> {
    if is_output_layer(src, s, args) {
        return Vec::new();
    }
    args.iter()
        .filter(|&&(a, b)| b > a + 2 && s[a + 1].is_op("="))
        .filter_map(|&(a, b)| {
            let arg = s[a].name()?;
            let shape = KEYWORDS.iter().find(|(k, _)| *k == arg)?.1;
            let lit = literal_in(src, s, a + 2, b)?;
            Some(Candidate {
                name: arg.to_owned(),
                note: format!("{call}({arg}={})", lit.text),
                bindings: vec![
                    (
                        BindTarget::Keyword {
                            call: call.to_owned(),
                            arg: arg.to_owned(),
                        },
                        false,
                    ),
                    (
                        BindTarget::Literal {
                            arg: Some(arg.to_owned()),
                        },
                        true,
                    ),
                ],
                lit,
                shape,
            })
        })
        .collect()
}

fn positional_candidate(
    src: &str,
    s: &Statement,
    call: &str,
    args: &[(usize, usize)],
) -> Option<Candidate> {
    let last = call.rsplit('.').next()?;
    let &(_, name, shape) = POSITIONAL.iter().find(|(c, ..)| *c == last)?;
    let &(a, b) = args.first()?;
    if (b > a + 1 && s[a + 1].is_op("=")) || is_output_layer(src, s, args) {
        return None;
    }
    let Some(lit) = literal_in(src, s, a, b) else {
        // `Convolution2D(filt, …)`: the size comes from `filt = 32`.
        let variable = s[a].name().filter(|_| b == a + 1)?;
        let what = format!("the size of `{call}({variable}, …)`");
        return assigned(src, variable, name, shape, what);
    };
    let target = BindTarget::Positional {
        call: call.to_owned(),
        index: 0,
    };
    Some(Candidate {
        name: name.to_owned(),
        note: format!("{call}({}, …)", lit.text),
        bindings: vec![(target.clone(), false), (target, true)],
        lit,
        shape,
    })
}

/// `parser.add_argument("--lr", type=float, default=0.01)`: the default is the knob, named after
/// the flag; the script keeps reading its flag.
fn argparse_candidate(
    src: &str,
    s: &Statement,
    call: &str,
    args: &[(usize, usize)],
) -> Option<Candidate> {
    if !call.ends_with("add_argument") {
        return None;
    }
    let &(a, b) = args.first()?;
    if b != a + 1 || s[a].tok != Tok::Str {
        return None;
    }
    let flag = s[a].text(src).trim_matches(['"', '\'']).to_owned();
    let name = flag.trim_start_matches('-').replace('-', "_");
    if !flag.starts_with("--") || !crate::core::config::is_identifier(&name) {
        return None;
    }
    let &(d, e) = args
        .iter()
        .find(|&&(d, e)| e > d + 2 && s[d].name() == Some("default") && s[d + 1].is_op("="))?;
    let lit = literal_in(src, s, d + 2, e)?;
    let known = KEYWORDS.iter().find(|(k, _)| *k == name).map(|(_, s)| *s);
    let shape = match (known, &lit.kind) {
        (Some(shape), _) => shape,
        (None, LitKind::Int) => Shape::Count,
        (None, LitKind::Float) => Shape::Log,
        _ => return None,
    };
    Some(Candidate {
        note: format!(
            "argparse default of {flag} (or pass it as a flag: add \"{flag}\", \"{{{name}}}\" to `command` instead of `source`)"
        ),
        name,
        bindings: vec![(
            BindTarget::Literal {
                arg: Some("default".into()),
            },
            true,
        )],
        lit,
        shape,
    })
}

/// `for i in range(n):` loops whose body calls `.add(`: the count is a knob (its literal, or the
/// `n = N` assignment it names).
fn loop_candidates(src: &str, stmts: &[Statement]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        if s[0].name() != Some("for") || !loop_adds(src, stmts, i) {
            continue;
        }
        let Some(open) =
            (1..s.len()).find(|&k| s[k - 1].name() == Some("range") && s[k].is_op("("))
        else {
            continue;
        };
        let [(a, b)] = find::arguments(s, open)[..] else {
            continue;
        };
        out.extend(loop_count(src, s, a, b));
    }
    out
}

fn loop_count(src: &str, s: &Statement, a: usize, b: usize) -> Option<Candidate> {
    if let Some(lit) = literal_in(src, s, a, b) {
        return Some(Candidate {
            name: "layers".into(),
            note: format!("for … in range({}): model.add(…)", lit.text),
            bindings: vec![(BindTarget::Literal { arg: None }, true)],
            lit,
            shape: Shape::Loop,
        });
    }
    let name = s[a].name().filter(|_| b == a + 1)?;
    let what = format!("the count of `for … in range({name}): model.add(…)`");
    assigned(src, name, name, Shape::Loop, what)
}

/// The knob `name` for the one assignment `variable = literal` of the file, if there is one.
fn assigned(
    src: &str,
    variable: &str,
    name: &str,
    shape: Shape,
    what: String,
) -> Option<Candidate> {
    let target = BindTarget::Assign {
        name: variable.to_owned(),
    };
    let found = find::find(src, &target, None);
    let [Found::Lit(lit)] = &found[..] else {
        return None;
    };
    Some(Candidate {
        name: name.to_owned(),
        note: format!("{variable} = {}, {what}", lit.text),
        bindings: vec![(target, false)],
        lit: lit.clone(),
        shape,
    })
}

/// A layer with a `softmax`/`sigmoid` activation is the output layer: its size is the number of
/// classes, never a knob.
fn is_output_layer(src: &str, s: &Statement, args: &[(usize, usize)]) -> bool {
    args.iter().any(|&(a, b)| {
        b == a + 3
            && s[a].name() == Some("activation")
            && s[a + 1].is_op("=")
            && ["softmax", "sigmoid"]
                .iter()
                .any(|f| s[a + 2].text(src).trim_matches(['"', '\'']) == *f)
    })
}

/// Whether the body of the `for` statement `stmts[i]` calls `.add(`: on the same line after the
/// colon, or in the following statements indented deeper than the `for`.
fn loop_adds(src: &str, stmts: &[Statement], i: usize) -> bool {
    if method_call(&stmts[i], "add") {
        return true;
    }
    let column = |t: &Token| t.start - src[..t.start].rfind('\n').map_or(0, |n| n + 1);
    let indent = column(&stmts[i][0]);
    stmts[i + 1..]
        .iter()
        .take_while(|s| column(&s[0]) > indent)
        .any(|s| method_call(s, "add"))
}

/// The first binding of `c` that matches its literal and nothing else.
fn choose_binding(file: &str, src: &str, c: &Candidate) -> Option<SourceBinding> {
    c.bindings.iter().find_map(|(target, on_line)| {
        let lines = on_line.then_some((c.lit.line, c.lit.line));
        match &find::find(src, target, lines)[..] {
            [Found::Lit(lit)] if lit.start == c.lit.start => Some(SourceBinding {
                file: file.to_owned(),
                lines,
                target: target.clone(),
            }),
            _ => None,
        }
    })
}

/// The inline table of a suggestion: its binding keys, then its values.
fn entry_text(b: &SourceBinding, space: &str) -> String {
    let mut keys = vec![format!("source = {}", quote(&b.source()))];
    match &b.target {
        BindTarget::Literal { arg: Some(arg) } => keys.push(format!("arg = {}", quote(arg))),
        BindTarget::Keyword { call, arg } => {
            keys.push(format!("call = {}", quote(call)));
            keys.push(format!("arg = {}", quote(arg)));
        }
        BindTarget::Positional { call, index } => {
            keys.push(format!("call = {}", quote(call)));
            keys.push(format!("index = {index}"));
        }
        BindTarget::Assign { name } => keys.push(format!("assign = {}", quote(name))),
        BindTarget::Literal { arg: None } | BindTarget::Repeat { .. } => {}
    }
    keys.push(space.to_owned());
    format!("{{ {} }}", keys.join(", "))
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// `values = [...]` or `start = …, max = …, step|factor = …` around the literal's value.
fn space(shape: Shape, lit: &Lit) -> Option<String> {
    let v = lit.value.as_f64();
    match (shape, &lit.value) {
        (Shape::Choice(options), Value::String(current)) => {
            let mut values = vec![current.as_str()];
            values.extend(options.iter().filter(|o| **o != current.as_str()).copied());
            let quoted: Vec<String> = values.iter().map(|s| quote(s)).collect();
            Some(format!("values = [{}]", quoted.join(", ")))
        }
        (Shape::Choice(_), _) | (_, Value::String(_) | Value::Bool(_)) => None,
        (Shape::Log, _) => log_values(v?),
        (Shape::Fraction, _) => fraction_values(v?),
        (Shape::Double | Shape::Count | Shape::Loop, _) => int_range(
            shape,
            lit.value.as_i64().filter(|_| lit.kind == LitKind::Int)?,
        ),
    }
}

fn log_values(v: f64) -> Option<String> {
    if !(v > 0.0 && v.is_finite()) {
        return None;
    }
    let values: Vec<String> = [1.0, 10.0, 0.1, 100.0, 0.01]
        .iter()
        .map(|m| format!("{:?}", clean(v * m)))
        .collect();
    Some(format!("values = [{}]", values.join(", ")))
}

/// Drops the noise of a product of floats (0.001 × 10 = 0.010000000000000002).
fn clean(v: f64) -> f64 {
    format!("{v:.9e}").parse().unwrap_or(v)
}

fn fraction_values(v: f64) -> Option<String> {
    if !(0.0..1.0).contains(&v) {
        return None;
    }
    let mut values: Vec<f64> = Vec::new();
    for d in [0.0, 0.1, 0.2, -0.1] {
        let x = ((v + d) * 100.0).round() / 100.0;
        if (0.0..=0.9).contains(&x) && !values.contains(&x) {
            values.push(x);
        }
    }
    let text: Vec<String> = values.iter().map(|x| format!("{x:?}")).collect();
    Some(format!("values = [{}]", text.join(", ")))
}

fn int_range(shape: Shape, v: i64) -> Option<String> {
    match shape {
        Shape::Double if v >= 1 => Some(format!("start = {v}, max = {}, factor = 2", v * 8)),
        Shape::Loop if v >= 0 => Some(format!("start = {v}, max = {}, step = 1", v + 3)),
        Shape::Count if v >= 0 => {
            let step = (v / 2).max(1);
            Some(format!(
                "start = {v}, max = {}, step = {step}",
                v + 4 * step
            ))
        }
        _ => None,
    }
}
