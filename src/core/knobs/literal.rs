//! Python literals as knob values: reading one from the lexer's tokens (a number with an optional
//! unary minus, a single-line string, `True`/`False`) and writing a new value in the same style.

use serde_json::Value;

use crate::core::detect::lexer::{Tok, Token};

/// How a literal is written, so a new value keeps its style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LitKind {
    Int,
    Float,
    /// `quote` is `'` or `"`; `triple` for `'''`/`"""` strings that fit on one line.
    Str {
        quote: char,
        triple: bool,
    },
    Bool,
}

/// A literal found in a source file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Lit {
    /// Byte span in the source, the unary minus included. Never spans a newline.
    pub start: usize,
    pub end: usize,
    /// 1-based.
    pub line: usize,
    pub kind: LitKind,
    /// The value as JSON: an integer, a float, a string or a boolean.
    pub value: Value,
    /// As written, e.g. `-1e-3` or `'rbf'`.
    pub text: String,
}

/// The literal that starts at `toks[i]` and ends right before `toks[end]` (or at the end), if the
/// tokens in between are exactly one literal.
pub(super) fn literal_in(src: &str, toks: &[Token], i: usize, end: usize) -> Option<Lit> {
    match literal_at(src, toks, i) {
        Some((lit, next)) if next == end => Some(lit),
        _ => None,
    }
}

/// A literal starting at `toks[i]` and the index of the token after it.
pub(super) fn literal_at(src: &str, toks: &[Token], i: usize) -> Option<(Lit, usize)> {
    let first = toks.get(i)?;
    let (negative, tok) = if first.is_op("-") {
        (true, toks.get(i + 1)?)
    } else {
        (false, first)
    };
    let (kind, value) = match &tok.tok {
        Tok::Number => number(tok.text(src), negative)?,
        Tok::Str if !negative => string(tok.text(src))?,
        Tok::Name(n) if !negative && (n == "True" || n == "False") => {
            (LitKind::Bool, Value::Bool(n == "True"))
        }
        _ => return None,
    };
    let text = src.get(first.start..tok.end)?;
    if text.contains('\n') {
        return None;
    }
    let lit = Lit {
        start: first.start,
        end: tok.end,
        line: first.line,
        kind,
        value,
        text: text.to_owned(),
    };
    Some((lit, if negative { i + 2 } else { i + 1 }))
}

/// An integer (decimal, hex, octal, binary, with `_`) or a float; complex numbers are not values.
fn number(text: &str, negative: bool) -> Option<(LitKind, Value)> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let lower = digits.to_ascii_lowercase();
    let radix = match lower.get(..2) {
        Some("0x") => Some(16),
        Some("0o") => Some(8),
        Some("0b") => Some(2),
        _ => None,
    };
    let sign = if negative { -1 } else { 1 };
    if let Some(radix) = radix {
        let v = i64::from_str_radix(&lower[2..], radix).ok()?;
        return Some((LitKind::Int, Value::from(sign * v)));
    }
    if lower.ends_with('j') {
        return None;
    }
    if lower.contains(['.', 'e']) {
        let v: f64 = lower.parse().ok()?;
        let v = serde_json::Number::from_f64(if negative { -v } else { v })?;
        return Some((LitKind::Float, Value::Number(v)));
    }
    let v: i64 = lower.parse().ok()?;
    Some((LitKind::Int, Value::from(sign * v)))
}

/// A string literal without a bytes, f- or t-prefix, on one line.
pub(super) fn string(text: &str) -> Option<(LitKind, Value)> {
    let body_at = text.find(['\'', '"'])?;
    let prefix = text[..body_at].to_ascii_lowercase();
    if prefix.contains(['b', 'f', 't']) {
        return None;
    }
    let quote = text[body_at..].chars().next()?;
    let q3: String = std::iter::repeat_n(quote, 3).collect();
    let triple = text[body_at..].starts_with(&q3) && text.len() >= body_at + 6;
    let width = if triple { 3 } else { 1 };
    let body = text.get(body_at + width..text.len().checked_sub(width)?)?;
    if text.len() < body_at + 2 * width || !text.ends_with(quote) {
        return None;
    }
    let value = if prefix.contains('r') {
        body.to_owned()
    } else {
        unescape(body)
    };
    Some((LitKind::Str { quote, triple }, Value::String(value)))
}

/// Python's common escapes; an unknown one stays as written, as Python keeps it.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '\'' | '"')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Whether `a` and `b` are the same value (numbers compared by value: `1` equals `1.0`).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// `value` written as a Python literal in the style of `kind`: integers stay integers where the
/// value is whole, floats in their shortest round-trip form, strings with the original quotes.
/// `Err` names what the literal holds when the value's type does not fit it.
pub(super) fn render(kind: &LitKind, value: &Value) -> Result<String, &'static str> {
    match (kind, value) {
        (LitKind::Int | LitKind::Float, Value::Number(n)) => render_number(kind, n),
        (LitKind::Str { quote, triple }, Value::String(s)) => Ok(quoted(s, *quote, *triple)),
        (LitKind::Bool, Value::Bool(b)) => Ok(if *b { "True" } else { "False" }.into()),
        (LitKind::Int | LitKind::Float, _) => Err("a number"),
        (LitKind::Str { .. }, _) => Err("a string"),
        (LitKind::Bool, _) => Err("True or False"),
    }
}

fn render_number(kind: &LitKind, n: &serde_json::Number) -> Result<String, &'static str> {
    if let Some(i) = n.as_i64() {
        return Ok(match kind {
            LitKind::Float => format!("{:?}", i as f64),
            _ => i.to_string(),
        });
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or("a finite number")?;
    let whole = f.fract() == 0.0 && f.abs() < 1e15;
    Ok(match kind {
        LitKind::Int if whole => format!("{}", f as i64),
        // Debug is Rust's shortest round-trip form with an exponent for tiny and huge values,
        // which Python reads back as the same float.
        _ => format!("{f:?}"),
    })
}

fn quoted(s: &str, quote: char, triple: bool) -> String {
    let mut body = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => body.push_str("\\\\"),
            '\n' => body.push_str("\\n"),
            '\r' => body.push_str("\\r"),
            '\t' => body.push_str("\\t"),
            c if c == quote => {
                body.push('\\');
                body.push(c);
            }
            c => body.push(c),
        }
    }
    let q: String = std::iter::repeat_n(quote, if triple { 3 } else { 1 }).collect();
    format!("{q}{body}{q}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::detect::lexer::statements;
    use serde_json::json;

    fn lit(src: &str) -> Lit {
        let stmts = statements(src);
        let toks = &stmts[0];
        literal_in(src, toks, 2, toks.len()).unwrap()
    }

    #[test]
    fn numbers_strings_and_bools_read_as_json() {
        assert_eq!(lit("x = -1e-3").value, json!(-0.001));
        assert_eq!(lit("x = -1e-3").text, "-1e-3");
        assert_eq!(lit("x = 1_000").value, json!(1000));
        assert_eq!(lit("x = 0x1F").value, json!(31));
        assert_eq!(lit("x = .5").kind, LitKind::Float);
        assert_eq!(lit("x = 'rbf'").value, json!("rbf"));
        assert_eq!(lit("x = \"it\\'s\"").value, json!("it's"));
        assert_eq!(lit("x = r'a\\d'").value, json!("a\\d"));
        assert_eq!(lit("x = True").value, json!(true));
        let stmts = statements("x = 1j");
        assert!(literal_in("x = 1j", &stmts[0], 2, 3).is_none());
        let stmts = statements("x = f'{a}'");
        assert!(literal_in("x = f'{a}'", &stmts[0], 2, 3).is_none());
    }

    #[test]
    fn values_render_in_the_literal_style() {
        assert_eq!(render(&LitKind::Int, &json!(7)).unwrap(), "7");
        assert_eq!(render(&LitKind::Int, &json!(8.0)).unwrap(), "8");
        assert_eq!(render(&LitKind::Int, &json!(0.5)).unwrap(), "0.5");
        assert_eq!(render(&LitKind::Float, &json!(1)).unwrap(), "1.0");
        assert_eq!(render(&LitKind::Float, &json!(0.0001)).unwrap(), "0.0001");
        assert_eq!(render(&LitKind::Float, &json!(1e-5)).unwrap(), "1e-5");
        assert_eq!(render(&LitKind::Float, &json!(-0.001)).unwrap(), "-0.001");
        let single = LitKind::Str {
            quote: '\'',
            triple: false,
        };
        assert_eq!(render(&single, &json!("it's")).unwrap(), "'it\\'s'");
        let double = LitKind::Str {
            quote: '"',
            triple: false,
        };
        assert_eq!(render(&double, &json!("linear")).unwrap(), "\"linear\"");
        assert_eq!(render(&LitKind::Bool, &json!(false)).unwrap(), "False");
        assert_eq!(render(&LitKind::Int, &json!("rbf")), Err("a number"));
        assert_eq!(render(&double, &json!(3)), Err("a string"));
        assert_eq!(render(&LitKind::Bool, &json!(1)), Err("True or False"));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same(&json!(1), &json!(1.0)));
        assert!(same(&json!(0.001), &json!(1e-3)));
        assert!(!same(&json!("1"), &json!(1)));
    }
}
