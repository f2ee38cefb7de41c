//! Finding a binding's places in one file, on the lexer's tokens (comments and strings never match).

use crate::core::config::BindTarget;
use crate::core::detect::lexer::{Statement, Tok, Token, statements};

use super::literal::{Lit, literal_at, literal_in};

/// A place the binding's pattern matched.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Found {
    /// A literal: a usable place.
    Lit(Lit),
    /// The pattern matched but holds an expression, not a literal (e.g. `gamma=g`).
    Expr { line: usize, text: String },
}

impl Found {
    pub fn line(&self) -> usize {
        match self {
            Found::Lit(lit) => lit.line,
            Found::Expr { line, .. } => *line,
        }
    }
}

/// Every place in `src` that `target` names, restricted to `lines` (inclusive) when given.
pub(super) fn find(src: &str, target: &BindTarget, lines: Option<(usize, usize)>) -> Vec<Found> {
    let within = |line: usize| lines.is_none_or(|(a, b)| (a..=b).contains(&line));
    let stmts = statements(src);
    let found: Vec<Found> = match target {
        BindTarget::Literal { arg } => stmts
            .iter()
            .flat_map(|s| line_literals(src, s, arg.as_deref()))
            .collect(),
        BindTarget::Keyword { call, arg } => calls(&stmts, call)
            .into_iter()
            .filter_map(|(s, open)| keyword(src, s, open, arg))
            .collect(),
        BindTarget::Positional { call, index } => calls(&stmts, call)
            .into_iter()
            .filter_map(|(s, open)| positional(src, s, open, *index))
            .collect(),
        BindTarget::Assign { name } => stmts.iter().filter_map(|s| assign(src, s, name)).collect(),
        BindTarget::Repeat { .. } => Vec::new(),
    };
    found.into_iter().filter(|f| within(f.line())).collect()
}

/// Whether a `-` at `toks[i]` can be a sign: at the start, or after an operator that is not a
/// closing bracket (`a - 1` subtracts, `f(-1)` and `x = -1` negate).
fn unary_context(toks: &[Token], i: usize) -> bool {
    match i.checked_sub(1).and_then(|p| toks.get(p)) {
        None => true,
        Some(prev) => matches!(prev.tok, Tok::Op(op) if !matches!(op, ")" | "]" | "}")),
    }
}

/// Every literal of a statement (each once; a signed number counts as one), or only those written
/// as `arg=literal` / `arg = literal` when `arg` is given.
fn line_literals(src: &str, toks: &Statement, arg: Option<&str>) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let signed = toks[i].is_op("-") && unary_context(toks, i);
        let at = if toks[i].is_op("-") && !signed {
            None
        } else {
            literal_at(src, toks, i)
        };
        let Some((lit, next)) = at else {
            i += 1;
            continue;
        };
        let named =
            |name: &str| i >= 2 && toks[i - 1].is_op("=") && toks[i - 2].name() == Some(name);
        if arg.is_none_or(named) {
            out.push(Found::Lit(lit));
        }
        i = next;
    }
    out
}

/// The statements' calls whose dotted name matches `call`, as (statement, index of the `(`).
fn calls<'s>(stmts: &'s [Statement], call: &str) -> Vec<(&'s Statement, usize)> {
    let wanted: Vec<&str> = call.split('.').map(str::trim).collect();
    let mut out = Vec::new();
    for s in stmts {
        for (i, t) in s.iter().enumerate() {
            if t.is_op("(") && callee(s, i).is_some_and(|name| suffix_match(&name, &wanted)) {
                out.push((s, i));
            }
        }
    }
    out
}

/// The dotted name called by the `(` at `toks[open]` (`sklearn.svm.SVC`), or `None` when the
/// bracket follows no name or opens a `def`/`class` header.
pub(super) fn callee(toks: &[Token], open: usize) -> Option<Vec<String>> {
    let mut k = open.checked_sub(1)?;
    let mut parts = vec![toks[k].name()?.to_owned()];
    while k >= 2 && toks[k - 1].is_op(".") {
        match toks[k - 2].name() {
            Some(n) => parts.insert(0, n.to_owned()),
            None => break,
        }
        k -= 2;
    }
    let header = k
        .checked_sub(1)
        .and_then(|p| toks[p].name())
        .is_some_and(|n| n == "def" || n == "class");
    (!header).then_some(parts)
}

/// `SVC` matches `svm.SVC` and `sklearn.svm.SVC`, and `svm.SVC` matches a bare `SVC` (imported
/// by name): the shorter name is a dotted suffix of the longer one.
fn suffix_match(written: &[String], wanted: &[&str]) -> bool {
    let n = written.len().min(wanted.len());
    written[written.len() - n..]
        .iter()
        .zip(&wanted[wanted.len() - n..])
        .all(|(a, b)| a == b)
}

/// The top-level arguments of the call opened at `toks[open]`, as token index ranges.
pub(super) fn arguments(toks: &[Token], open: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    for (i, t) in toks.iter().enumerate().skip(open + 1) {
        match &t.tok {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") if depth > 0 => depth -= 1,
            Tok::Op(")") | Tok::Op(",") if depth == 0 => {
                if i > start {
                    out.push((start, i));
                }
                if t.is_op(")") {
                    return out;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

fn expr(src: &str, toks: &[Token], start: usize, end: usize) -> Found {
    match literal_in(src, toks, start, end) {
        Some(lit) => Found::Lit(lit),
        None => Found::Expr {
            line: toks[start].line,
            text: src
                .get(toks[start].start..toks[end - 1].end)
                .unwrap_or("")
                .to_owned(),
        },
    }
}

fn keyword(src: &str, toks: &Statement, open: usize, arg: &str) -> Option<Found> {
    arguments(toks, open).into_iter().find_map(|(a, b)| {
        let is_kw = b > a + 2 && toks[a].name() == Some(arg) && toks[a + 1].is_op("=");
        is_kw.then(|| expr(src, toks, a + 2, b))
    })
}

fn positional(src: &str, toks: &Statement, open: usize, index: usize) -> Option<Found> {
    let (a, b) = *arguments(toks, open).get(index)?;
    let keyword = b > a + 1 && toks[a].name().is_some() && toks[a + 1].is_op("=");
    let starred = toks[a].is_op("*") || toks[a].is_op("**");
    (!keyword && !starred).then(|| expr(src, toks, a, b))
}

/// `name = value` as a whole statement, at any indentation.
fn assign(src: &str, toks: &Statement, name: &str) -> Option<Found> {
    let is = toks.len() > 2 && toks[0].name() == Some(name) && toks[1].is_op("=");
    is.then(|| expr(src, toks, 2, toks.len()))
}

/// The (first, last) lines of every statement, for checking that a block holds whole statements.
pub(super) fn statement_lines(src: &str) -> Vec<(usize, usize)> {
    statements(src)
        .iter()
        .filter_map(|s| {
            let first = s.first()?;
            let last = s.last()?;
            let end_line = first.line + src.get(first.start..last.end)?.matches('\n').count();
            Some((first.line, end_line))
        })
        .collect()
}

/// Words whose presence in a string (or, for the variable, as a name) means the code may read the
/// parameters mlops-tui writes.
const PARAM_MARKERS: [&str; 2] = ["MLOPS_PARAMS", "params.json"];

/// Whether the code mentions the parameters file or variable outside comments.
pub(super) fn reads_params(src: &str) -> bool {
    statements(src).iter().flatten().any(|t| match &t.tok {
        Tok::Str => PARAM_MARKERS.iter().any(|m| t.text(src).contains(m)),
        Tok::Name(n) => n == PARAM_MARKERS[0],
        _ => false,
    })
}
