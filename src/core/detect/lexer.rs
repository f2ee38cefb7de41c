//! A Python tokenizer just precise enough for import and call analysis.
//!
//! It knows where comments, strings (all prefixes, triple-quoted docstrings, escapes) and logical
//! lines (bracket nesting, backslash continuations, `;`) begin and end, so that a `Conv2D` inside a
//! comment or a string never looks like code. Every token carries its byte span, so a caller that needs
//! a literal's text (a number, a string with its prefix and quotes) slices the source with
//! [`Token::text`]; a sign is never part of a number (`-1e-3` is the operator `-` then `1e-3`).
//! Invalid input never fails: an unterminated string ends at its line.

/// One token. Only ASCII bytes delimit tokens, so every slice taken from the source is on a UTF-8
/// character boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Name(String),
    Op(&'static str),
    Number,
    Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// 1-based line where the token starts.
    pub line: usize,
    /// Byte offset of the token's first byte in the source (a string's prefix included).
    pub start: usize,
    /// Byte offset just past the token (a string's closing quote included).
    pub end: usize,
}

impl Token {
    pub fn name(&self) -> Option<&str> {
        match &self.tok {
            Tok::Name(name) => Some(name),
            _ => None,
        }
    }

    pub fn is_op(&self, op: &str) -> bool {
        matches!(self.tok, Tok::Op(o) if o == op)
    }

    /// The token as written in `src` (the text it was lexed from).
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

/// A simple statement: one logical line, or one `;`-separated part of it. Never empty.
pub(crate) type Statement = Vec<Token>;

const OPS3: [&str; 5] = ["**=", "//=", ">>=", "<<=", "..."];
const OPS2: [&str; 19] = [
    "->", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", "==", "!=", "<=", ">=", ":=", "**",
    "//", "<<", ">>",
];
const OPS1: [&str; 24] = [
    "(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "@", "=", "+", "-", "*", "/", "%", "&", "|",
    "^", "~", "<", ">", "!",
];

/// Prefixes that turn a following quote into a string literal (compared case-insensitively).
const STRING_PREFIXES: [&str; 11] = ["r", "u", "b", "f", "t", "br", "rb", "fr", "rf", "tr", "rt"];

pub(crate) fn statements(src: &str) -> Vec<Statement> {
    Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        line: 1,
        depth: 0,
        current: Vec::new(),
        out: Vec::new(),
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    /// Bracket nesting; inside brackets newlines do not end the logical line.
    depth: usize,
    current: Statement,
    out: Vec<Statement>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

impl Lexer<'_> {
    fn run(mut self) -> Vec<Statement> {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if self.depth == 0 {
                        self.flush();
                    }
                }
                b' ' | b'\t' | b'\r' | 0x0c => self.pos += 1,
                b'\\' => {
                    // A continuation joins lines; a stray backslash is skipped.
                    self.pos += 1;
                    if self.peek(0) == Some(b'\r') {
                        self.pos += 1;
                    }
                    if self.peek(0) == Some(b'\n') {
                        self.pos += 1;
                        self.line += 1;
                    }
                }
                b'#' => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                b'"' | b'\'' => self.string(),
                b'0'..=b'9' => self.number(),
                b'.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => self.number(),
                _ if is_ident_start(b) => self.name(),
                _ => self.op(),
            }
        }
        self.flush();
        self.out
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Pushes a token that started at byte `start` on `line` and ends at the current position.
    fn push(&mut self, tok: Tok, line: usize, start: usize) {
        let end = self.pos;
        self.current.push(Token {
            tok,
            line,
            start,
            end,
        });
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.out.push(std::mem::take(&mut self.current));
        }
        self.depth = 0;
    }

    fn name(&mut self) {
        let start = self.pos;
        while self.peek(0).is_some_and(is_ident_continue) {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        let quoted = matches!(self.peek(0), Some(b'"' | b'\''));
        if quoted && STRING_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) {
            self.string_from(start);
        } else {
            self.push(Tok::Name(word.to_owned()), self.line, start);
        }
    }

    fn number(&mut self) {
        let line = self.line;
        let start = self.pos;
        let hex = matches!(self.bytes.get(start..start + 2), Some(b"0x" | b"0X"));
        while let Some(c) = self.peek(0) {
            let exponent_sign =
                !hex && matches!(c, b'+' | b'-') && matches!(self.bytes[self.pos - 1], b'e' | b'E');
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.push(Tok::Number, line, start);
    }

    /// `pos` is on the opening quote. Escapes are skipped in every kind of string: even in a raw
    /// string a backslash keeps the next quote from closing it.
    fn string(&mut self) {
        self.string_from(self.pos);
    }

    /// As [`Self::string`], for a string whose prefix began at byte `start`.
    fn string_from(&mut self, start: usize) {
        let line = self.line;
        let quote = self.bytes[self.pos];
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => {
                    if self.peek(1) == Some(b'\n') {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                b'\n' if !triple => break,
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                _ if c == quote => {
                    if !triple {
                        self.pos += 1;
                        break;
                    }
                    if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                        self.pos += 3;
                        break;
                    }
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.bytes.len());
        self.push(Tok::Str, line, start);
    }

    fn op(&mut self) {
        let rest = &self.bytes[self.pos..];
        let op = OPS3
            .iter()
            .chain(OPS2.iter())
            .chain(OPS1.iter())
            .find(|op| rest.starts_with(op.as_bytes()))
            .copied();
        let start = self.pos;
        let Some(op) = op else {
            // `$`, `?`, a backtick: not Python; skip the byte.
            self.pos += 1;
            return;
        };
        self.pos += op.len();
        match op {
            "(" | "[" | "{" => self.depth += 1,
            ")" | "]" | "}" => self.depth = self.depth.saturating_sub(1),
            ";" if self.depth == 0 => {
                self.flush();
                return;
            }
            _ => {}
        }
        self.push(Tok::Op(op), self.line, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<Vec<String>> {
        statements(src)
            .iter()
            .map(|s| {
                s.iter()
                    .filter_map(|t| t.name().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn comments_and_strings_are_not_names() {
        let src = "x = 1  # Conv2D here\ns = 'Conv2D' + \"nn.Conv2d\" + r'\\'Conv2D' + f\"{a}\"\n";
        assert_eq!(names(src), vec![vec!["x"], vec!["s"]]);
    }

    #[test]
    fn docstrings_span_lines() {
        let src =
            "def f():\n    \"\"\"Uses Conv2D.\n\n    nn.Conv2d(1)\n    \"\"\"\n    return g(1)\n";
        let stmts = statements(src);
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[2][0].line, 6);
        assert_eq!(names(src)[2], vec!["return", "g"]);
    }

    #[test]
    fn brackets_and_continuations_join_lines() {
        let src = "a = f(1,\n      2)\nb = 1 + \\\n    2; c = 3\nd";
        let stmts = statements(src);
        assert_eq!(stmts.len(), 4);
        assert_eq!(stmts[1][0].line, 3);
        assert_eq!(stmts[2][0].name(), Some("c"));
        assert_eq!(stmts[3][0].line, 5);
    }

    #[test]
    fn operators_and_numbers() {
        let stmts = statements("w -= lr * x @ y.T ** 2 + 1e-3 - 0x1E+5");
        let ops: Vec<&Tok> = stmts[0].iter().map(|t| &t.tok).collect();
        assert_eq!(ops[1], &Tok::Op("-="));
        assert!(stmts[0].iter().any(|t| t.is_op("@")));
        assert!(stmts[0].iter().any(|t| t.is_op("**")));
        assert_eq!(stmts[0].iter().filter(|t| t.tok == Tok::Number).count(), 4);
    }

    #[test]
    fn tokens_carry_their_text() {
        let src = "f(gamma=-1e-3, kernel=r'rbf', n=0x1F)  # gamma=2\ns = \"\"\"a\nb\"\"\"\n";
        let stmts = statements(src);
        let texts: Vec<&str> = stmts[0].iter().map(|t| t.text(src)).collect();
        assert_eq!(
            texts,
            vec![
                "f", "(", "gamma", "=", "-", "1e-3", ",", "kernel", "=", "r'rbf'", ",", "n", "=",
                "0x1F", ")"
            ]
        );
        assert_eq!(stmts[1][2].text(src), "\"\"\"a\nb\"\"\"");
        assert_eq!(stmts[1][2].line, 2);
    }

    #[test]
    fn unterminated_string_ends_at_line_end() {
        let stmts = statements("s = 'abc\nimport torch\n");
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1][1].name(), Some("torch"));
    }
}
