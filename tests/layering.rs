//! The dependency rule, checked on the source itself.
//!
//! Layers, lowest first: `core` (pure), `support`, `adapters`, `engine`, then the front ends (`tui`,
//! `headless`, `history`, `cli`, `main.rs`, `lib.rs`). A module may import its own layer and the
//! layers below, never one above; `core` imports nothing of ours outside `core`. Between sibling
//! modules (two files or folders with the same parent) imports never form a cycle. A parent and its
//! own children may use each other (a `mod.rs` declares its children and they use its helpers).
//!
//! Every `use` tree, and every `crate::…`, `super::…` and `self::…` path written in code, is resolved
//! to the module it names: `super` relative to the module of the file (or inline `mod` block) it is
//! written in, re-exports (`pub use child::Item`) followed to the module that defines the item. Test
//! code (`#[cfg(test)]` items and the files of `#[cfg(test)] mod x;`) is left out: fixtures may reach
//! anywhere.
//!
//! The scan is lexical: comments and string and character literals are blanked first, so braces and
//! paths inside them do not count.

#![allow(clippy::unwrap_used, clippy::excessive_nesting)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root: `["tui", "update", "keys"]`; the root is empty.
type ModPath = Vec<String>;

/// Longest function body allowed, in lines from the `fn` line to its closing brace.
const MAX_FN_LINES: usize = 120;

/// One source file, ready to scan.
struct File {
    /// Relative to the package, for messages.
    rel: PathBuf,
    module: ModPath,
    /// Comments, literals and test code blanked; newlines kept so offsets map to the same lines.
    code: String,
    /// Inline `mod name { … }` blocks: their byte range (of the braces) and module path.
    inline: Vec<(usize, usize, ModPath)>,
}

/// An import of one module by another, with where it is written.
#[derive(Debug, Clone)]
struct Import {
    from: ModPath,
    to: ModPath,
    at: String,
}

#[test]
fn imports_never_go_up_a_layer() {
    let files = load();
    let mut bad = Vec::new();
    for i in imports(&files) {
        let (from, to) = (layer(&i.from), layer(&i.to));
        if to.0 > from.0 {
            bad.push(format!(
                "{} ({}) imports {} ({}), a higher layer",
                i.at,
                from.1,
                show(&i.to),
                to.1
            ));
        }
    }
    assert!(bad.is_empty(), "imports up a layer:\n{}", bad.join("\n"));
}

#[test]
fn core_imports_nothing_outside_core() {
    let files = load();
    let bad: Vec<String> = imports(&files)
        .into_iter()
        .filter(|i| i.from.first().is_some_and(|s| s == "core"))
        .filter(|i| i.to.first().is_none_or(|s| s != "core"))
        .map(|i| format!("{} imports {}", i.at, show(&i.to)))
        .collect();
    assert!(bad.is_empty(), "core imports:\n{}", bad.join("\n"));
}

/// Paths that reach the outside world: the file system, processes, the network, and the crates
/// that talk to Docker, git, SQLite, mail, HTTP and the desktop. Core holds none of them.
const IO_PATHS: [&str; 13] = [
    "std::fs",
    "tokio::fs",
    "std::process",
    "tokio::process",
    "std::net",
    "tokio::net",
    "reqwest",
    "lettre",
    "hyper",
    "bollard",
    "git2",
    "rusqlite",
    "notify_rust",
];

#[test]
fn core_does_no_io() {
    let files = load();
    let mut bad = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.module.first().is_some_and(|s| s == "core"))
    {
        for (at, path) in io_paths(&f.code) {
            bad.push(format!("{}:{} `{path}`", f.rel.display(), f.line_of(at)));
        }
    }
    assert!(bad.is_empty(), "I/O in core:\n{}", bad.join("\n"));
}

/// Every path in `code` that names one of [`IO_PATHS`] or something inside it, in a `use` tree
/// (`use std::{fs, io}`) or written in code (`std::fs::read`, `::reqwest::Url`), with its offset.
fn io_paths(code: &str) -> Vec<(usize, String)> {
    let roots: BTreeSet<&str> = IO_PATHS
        .iter()
        .map(|p| p.split("::").next().unwrap())
        .collect();
    let forbidden = |segs: &[String]| {
        IO_PATHS.iter().any(|p| {
            let want: Vec<&str> = p.split("::").collect();
            segs.len() >= want.len() && segs.iter().zip(&want).all(|(s, w)| s == w)
        })
    };
    let mut found = Vec::new();
    for at in words(code, "use") {
        for p in use_paths(code, at + 3) {
            if forbidden(&p) {
                found.push((at, p.join("::")));
            }
        }
    }
    let b = code.as_bytes();
    for root in roots {
        for (at, _) in code.match_indices(root) {
            let starts = at == 0 || !is_ident(b[at - 1] as char) && b[at - 1] != b':' || {
                // `::std::fs`: a leading `::`, not a segment after another one.
                at >= 2 && &code[at - 2..at] == "::" && {
                    let before = code[..at - 2].trim_end();
                    !before.ends_with(|c: char| is_ident(c) || c == '>')
                }
            };
            let ends = b.get(at + root.len()).is_none_or(|&c| !is_ident(c as char));
            if !(starts && ends) || words(&code[..at], "use").any(|u| in_use_tree(code, u, at)) {
                continue;
            }
            let segs = inline_path(code, at);
            if segs.len() >= 2 && forbidden(&segs) {
                found.push((at, segs.join("::")));
            }
        }
    }
    found.sort();
    found
}

/// True when `at` lies inside the `use` tree that starts at `use_at`.
fn in_use_tree(code: &str, use_at: usize, at: usize) -> bool {
    let end = code[use_at..].find(';').map_or(code.len(), |e| use_at + e);
    use_at < at && at < end
}

/// The I/O check finds paths in `use` trees and in code, and nothing in a name that only looks like
/// a crate.
#[test]
fn the_io_check_finds_what_it_must() {
    let code = strip(
        "use std::{fs, io::Read};\nuse tokio::{net::TcpStream, sync::mpsc};\nfn f() {\n    \
         let t = ::std::process::Command::new(\"x\");\n    let u = reqwest::Url::parse(s);\n    \
         let hyper = self.hyper;\n    let n = my::std::fs::x;\n    // std::fs::read\n    \
         let s = \"lettre::Message\";\n    let io = std::io::stdin();\n}\n",
    );
    let found: Vec<String> = io_paths(&code).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        found,
        [
            "std::fs",
            "tokio::net::TcpStream",
            "std::process::Command::new",
            "reqwest::Url::parse"
        ]
    );
}

/// The pure reducer and the state and messages it matches on speak the domain's words
/// (`core::model`), never an adapter's: no SQLite, git2, container engine or notifier type can reach a
/// reducer signature, since every import is resolved (through re-exports) to the module defining it.
#[test]
fn the_reducer_imports_nothing_from_the_adapters() {
    let files = load();
    let pure = [m("engine::reducer"), m("engine::state"), m("engine::msg")];
    let bad: Vec<String> = imports(&files)
        .into_iter()
        .filter(|i| pure.iter().any(|p| i.from.starts_with(p)))
        .filter(|i| i.to.first().is_some_and(|s| s == "adapters"))
        .map(|i| format!("{} imports {}", i.at, show(&i.to)))
        .collect();
    assert!(
        files.iter().any(|f| f.module == m("engine::reducer")),
        "src/engine/reducer was not found"
    );
    assert!(
        bad.is_empty(),
        "the reducer reaches the adapters:\n{}",
        bad.join("\n")
    );
}

#[test]
fn sibling_modules_never_import_each_other_in_a_cycle() {
    let files = load();
    let cycles = sibling_cycles(&imports(&files));
    assert!(
        cycles.is_empty(),
        "import cycles between sibling modules:\n{}",
        cycles.join("\n\n")
    );
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let files = load();
    let mut long = Vec::new();
    for f in &files {
        for (name, line, len) in functions(&f.code) {
            if len > MAX_FN_LINES {
                long.push(format!(
                    "{}:{line}: fn {name} is {len} lines",
                    f.rel.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The checker checks: a cycle is found and named, `super` resolves from a `mod.rs` and from a
/// leaf file, and literals and comments are not code.
#[test]
fn the_scanner_finds_what_it_must() {
    let edges = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| Import {
                from: a.split("::").map(String::from).collect(),
                to: b.split("::").map(String::from).collect(),
                at: format!("{a} -> {b}"),
            })
            .collect::<Vec<_>>()
    };
    let cycles = sibling_cycles(&edges(&[
        ("tui::update::actions", "tui::update::keys::quit"),
        ("tui::update::keys", "tui::update::logs"),
        ("tui::update::logs", "tui::update::actions"),
        ("tui::views", "tui"),
        ("tui", "tui::views"),
    ]));
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].starts_with(
            "tui::update::actions -> tui::update::keys -> tui::update::logs -> tui::update::actions"
        ),
        "{}",
        cycles[0]
    );

    let src = "// use crate::tui::x;\nlet s = \"crate::cli::y {\";\nlet c = '{';\nfn f<'a>() {}\n";
    let code = strip(src);
    assert!(!code.contains("crate::"), "{code}");
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(code.lines().count(), src.lines().count());

    let known: BTreeSet<ModPath> = [vec![], m("a"), m("a::b"), m("a::c")].into_iter().collect();
    let re = BTreeMap::new();
    assert_eq!(
        resolve(&m("a::b"), &segs("super::c::X"), &known, &re),
        Some(m("a::c"))
    );
    assert_eq!(
        resolve(&m("a"), &segs("super::a::c"), &known, &re),
        Some(m("a::c"))
    );
    assert_eq!(
        resolve(&m("a"), &segs("c::Y"), &known, &re),
        Some(m("a::c"))
    );
    assert_eq!(resolve(&m("a::b"), &segs("std::fmt"), &known, &re), None);
}

fn m(p: &str) -> ModPath {
    p.split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn segs(p: &str) -> Vec<String> {
    p.split("::").map(String::from).collect()
}

fn show(p: &[String]) -> String {
    if p.is_empty() {
        "crate".into()
    } else {
        p.join("::")
    }
}

/// The layer of a module: its rank (higher may import lower) and name.
fn layer(p: &[String]) -> (u8, &'static str) {
    match p.first().map(String::as_str) {
        Some("core") => (0, "core"),
        Some("support") => (1, "support"),
        Some("adapters") => (2, "adapters"),
        Some("engine") => (3, "engine"),
        None | Some("tui" | "headless" | "history" | "cli" | "main") => (4, "front end"),
        Some(other) => panic!("src/{other} belongs to no layer: add it to tests/layering.rs"),
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Every non-test source file under `src/`, with its module path.
fn load() -> Vec<File> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    walk(&root.join("src"), &mut paths);
    paths.sort();
    let mut files = Vec::new();
    let mut test_modules: BTreeSet<ModPath> = BTreeSet::new();
    for p in paths {
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let module = module_of(&rel);
        let text = std::fs::read_to_string(&p).unwrap();
        let (code, tests) = without_tests(&strip(&text));
        for t in tests {
            let mut child = module.clone();
            child.push(t);
            test_modules.insert(child);
        }
        let inline = inline_modules(&code, &module);
        files.push(File {
            rel,
            module,
            code,
            inline,
        });
    }
    assert!(files.len() > 20, "src/ was not found");
    files.retain(|f| !test_modules.iter().any(|t| f.module.starts_with(t)));
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root; `src/main.rs` is `main`.
fn module_of(rel: &Path) -> ModPath {
    let inner = rel.strip_prefix("src").unwrap();
    let mut parts: Vec<String> = inner
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap();
    match file.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        _ => parts.push(file.trim_end_matches(".rs").to_string()),
    }
    parts
}

// ---------------------------------------------------------------------------------------------
// Lexing

/// `text` with comments and the contents of string, byte-string, raw-string and character literals
/// replaced by spaces. Newlines are kept, so line numbers do not move; lifetimes stay.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && let Some(end) = raw_string_end(&c, i) {
            while i < end {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\''
            && let Some(end) = char_literal_end(&c, i)
        {
            while i < end {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// The end (exclusive) of a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&ch| ch == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// The end (exclusive) of a character literal starting at the quote `i`; `None` for a lifetime.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let close = c.get(i + 3..)?.iter().position(|&ch| ch == '\'')?;
        return Some(i + 3 + close + 1);
    }
    (c.get(i + 2) == Some(&'\'')).then_some(i + 3)
}

/// The index of the brace that closes the one at `open`.
fn matching_brace(code: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

/// `code` with every `#[cfg(test)]` item blanked, and the names of `#[cfg(test)] mod name;` files.
fn without_tests(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut bytes = code.as_bytes().to_vec();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(pos) = find_from(&bytes, ATTR.as_bytes(), from) {
        let after = pos + ATTR.len();
        let item = String::from_utf8_lossy(&bytes[after..]).into_owned();
        let trimmed = item.trim_start();
        let words: Vec<&str> = trimmed
            .split(|ch: char| !is_ident(ch))
            .filter(|w| !w.is_empty())
            .take(4)
            .collect();
        let semi = bytes[after..].iter().position(|&b| b == b';');
        let brace = bytes[after..].iter().position(|&b| b == b'{');
        let is_mod_file = words.contains(&"mod")
            && semi.is_some_and(|s| brace.is_none_or(|b| s < b))
            && !trimmed.starts_with("use");
        let end = if is_mod_file {
            let name = words
                .iter()
                .skip_while(|w| **w != "mod")
                .nth(1)
                .unwrap()
                .to_string();
            test_files.push(name);
            after + semi.unwrap()
        } else if trimmed.starts_with("use") || brace.is_none_or(|b| semi.is_some_and(|s| s < b)) {
            after + semi.unwrap_or(0)
        } else {
            matching_brace(&bytes, after + brace.unwrap())
        };
        let last = end.min(bytes.len() - 1);
        for b in &mut bytes[pos..=last] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end + 1;
    }
    (String::from_utf8(bytes).unwrap(), test_files)
}

fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Word occurrences of `word` in `code` (not part of a longer identifier, not a path segment after
/// `::`), as byte offsets.
fn words<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let b = code.as_bytes();
    code.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before = i == 0 || !(is_ident(b[i - 1] as char) || b[i - 1] == b':');
        let after = b.get(i + word.len()).is_none_or(|&c| !is_ident(c as char));
        before && after
    })
}

/// Inline `mod name { … }` blocks of a file, with their module paths (nested blocks included).
fn inline_modules(code: &str, module: &ModPath) -> Vec<(usize, usize, ModPath)> {
    let b = code.as_bytes();
    let mut found: Vec<(usize, usize, String)> = Vec::new();
    for i in words(code, "mod") {
        let rest = &code[i + 3..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|&ch| is_ident(ch))
            .collect();
        let after_name = rest.trim_start()[name.len()..].trim_start();
        if !name.is_empty() && after_name.starts_with('{') {
            let open = code.len() - after_name.len();
            found.push((open, matching_brace(b, open), name));
        }
    }
    found
        .iter()
        .map(|(open, close, name)| {
            let mut path = module.clone();
            let mut parents: Vec<&(usize, usize, String)> = found
                .iter()
                .filter(|(o, c, _)| o < open && close < c)
                .collect();
            parents.sort();
            path.extend(parents.iter().map(|p| p.2.clone()));
            path.push(name.clone());
            (*open, *close, path)
        })
        .collect()
}

impl File {
    /// The module that code at byte `at` belongs to (the deepest inline block around it).
    fn module_at(&self, at: usize) -> ModPath {
        self.inline
            .iter()
            .filter(|(o, c, _)| *o < at && at < *c)
            .max_by_key(|(_, _, p)| p.len())
            .map_or_else(|| self.module.clone(), |(_, _, p)| p.clone())
    }

    fn line_of(&self, at: usize) -> usize {
        self.code[..at].matches('\n').count() + 1
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Every path of the `use` tree starting at `at` (just after `use`), with `self` items folded into
/// their parent and aliases dropped.
fn use_paths(code: &str, at: usize) -> Vec<Vec<String>> {
    let end = code[at..].find(';').map_or(code.len(), |e| at + e);
    let tokens = tokenize(&code[at..end]);
    let mut out = Vec::new();
    let mut i = 0;
    use_tree(&tokens, &mut i, Vec::new(), &mut out);
    out
}

fn tokenize(s: &str) -> Vec<String> {
    let mut t = Vec::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if is_ident(c[i]) {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            t.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            t.push("::".into());
            i += 2;
        } else if c[i].is_whitespace() {
            i += 1;
        } else {
            t.push(c[i].to_string());
            i += 1;
        }
    }
    t
}

/// Parses one use tree at `t[*i]` under `prefix`, pushing each full path to `out`.
fn use_tree(t: &[String], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *i < t.len() {
        let tok = t[*i].as_str();
        match tok {
            "{" => {
                *i += 1;
                while *i < t.len() && t[*i] != "}" {
                    use_tree(t, i, path.clone(), out);
                    if *i < t.len() && t[*i] == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "::" => *i += 1,
            "," | "}" => break,
            "as" => *i += 2,
            "*" => *i += 1,
            "self" if !path.is_empty() => *i += 1,
            _ => {
                path.push(tok.to_string());
                *i += 1;
            }
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The path written at `at` (`crate::a::b`, `super::super::x`, `self::y`), up to its first
/// non-identifier segment.
fn inline_path(code: &str, at: usize) -> Vec<String> {
    let mut segs = Vec::new();
    let tokens = tokenize(&code[at..code.len().min(at + 300)]);
    let mut expect_ident = true;
    for tok in tokens {
        match (expect_ident, tok.as_str()) {
            (true, s) if s.chars().all(is_ident) => {
                segs.push(tok);
                expect_ident = false;
            }
            (false, "::") => expect_ident = true,
            _ => break,
        }
    }
    segs
}

/// The module that `path`, written in module `from`, names: `None` for paths outside the crate.
/// Re-exports (`reexports[(module, item)]`) are followed to the module that defines the item.
fn resolve(
    from: &ModPath,
    path: &[String],
    known: &BTreeSet<ModPath>,
    reexports: &BTreeMap<(ModPath, String), ModPath>,
) -> Option<ModPath> {
    let first = path.first()?.as_str();
    let (mut cur, mut rest) = match first {
        "crate" | "mlops_tui" => (Vec::new(), &path[1..]),
        "self" => (from.clone(), &path[1..]),
        "super" => {
            let mut base = from.clone();
            let ups = path.iter().take_while(|s| *s == "super").count();
            for _ in 0..ups {
                base.pop()?;
            }
            (base, &path[ups..])
        }
        _ => {
            let mut child = from.clone();
            child.push(first.to_string());
            if !known.contains(&child) {
                return None;
            }
            (from.clone(), path)
        }
    };
    while let Some((seg, tail)) = rest.split_first() {
        let mut next = cur.clone();
        next.push(seg.clone());
        if known.contains(&next) {
            cur = next;
            rest = tail;
        } else if let Some(target) = reexports.get(&(cur.clone(), seg.clone())) {
            return Some(target.clone());
        } else {
            break;
        }
    }
    Some(cur)
}

/// Every import of one module by another that is not its own ancestor (a child may use what its
/// parent defines; the crate root only declares modules).
fn imports(files: &[File]) -> Vec<Import> {
    let mut known: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    known.extend(
        files
            .iter()
            .flat_map(|f| f.inline.iter().map(|i| i.2.clone())),
    );
    // (module, offset, path, is a `pub use`) for every path written.
    let mut written: Vec<(usize, usize, ModPath, Vec<String>, bool)> = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        for at in words(&f.code, "use") {
            let public = f.code[..at].trim_end().ends_with("pub")
                || f.code[..at].trim_end().ends_with(')')
                    && f.code[..at]
                        .trim_end()
                        .trim_end_matches(|c: char| c != '(')
                        .ends_with("pub(");
            let module = f.module_at(at);
            for p in use_paths(&f.code, at + 3) {
                written.push((fi, at, module.clone(), p, public));
            }
        }
        for root in ["crate", "super", "self", "mlops_tui"] {
            for at in words(&f.code, root) {
                if f.code[at..].starts_with(&format!("{root}::")) {
                    written.push((fi, at, f.module_at(at), inline_path(&f.code, at), false));
                }
            }
        }
    }
    // Re-exports point at re-exports: settle them by repeating until nothing changes.
    let mut reexports: BTreeMap<(ModPath, String), ModPath> = BTreeMap::new();
    for _ in 0..8 {
        let mut next = reexports.clone();
        for (_, _, module, path, public) in &written {
            if !*public {
                continue;
            }
            let Some(item) = path.last() else { continue };
            if let Some(target) = resolve(module, path, &known, &reexports) {
                if &target != module {
                    next.insert((module.clone(), item.clone()), target);
                }
            }
        }
        if next == reexports {
            break;
        }
        reexports = next;
    }
    let mut out = Vec::new();
    for (fi, at, module, path, _) in &written {
        let Some(to) = resolve(module, path, &known, &reexports) else {
            continue;
        };
        if !module.starts_with(&to) {
            let f = &files[*fi];
            out.push(Import {
                from: module.clone(),
                to,
                at: format!(
                    "{}:{} `{}`",
                    f.rel.display(),
                    f.line_of(*at),
                    path.join("::")
                ),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cycles

/// Cycles in the graph of sibling modules: an import from `a::x::…` to `a::y::…` is an edge `a::x →
/// a::y`. Each cycle is written as its path, then one import behind each of its edges.
fn sibling_cycles(imports: &[Import]) -> Vec<String> {
    let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for i in imports {
        let common = i.from.iter().zip(&i.to).take_while(|(a, b)| a == b).count();
        if common == i.from.len() || common == i.to.len() {
            continue; // a parent and its own descendant
        }
        let a = i.from[..=common].to_vec();
        let b = i.to[..=common].to_vec();
        edges
            .entry(a)
            .or_default()
            .entry(b)
            .or_insert_with(|| i.at.clone());
    }
    let mut cycles = Vec::new();
    let mut seen: BTreeSet<Vec<ModPath>> = BTreeSet::new();
    for start in edges.keys() {
        if let Some(path) = shortest_cycle(&edges, start) {
            let mut key = path[..path.len() - 1].to_vec();
            key.sort();
            if seen.insert(key) {
                let names: Vec<String> = path.iter().map(|p| show(p)).collect();
                let why: Vec<String> = path
                    .windows(2)
                    .map(|w| format!("  {}", edges[&w[0]][&w[1]]))
                    .collect();
                cycles.push(format!("{}\n{}", names.join(" -> "), why.join("\n")));
            }
        }
    }
    cycles
}

/// The shortest path from `start` back to itself, by breadth-first search: `[start, …, start]`.
fn shortest_cycle(
    edges: &BTreeMap<ModPath, BTreeMap<ModPath, String>>,
    start: &ModPath,
) -> Option<Vec<ModPath>> {
    let mut parent: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(n) = queue.pop_front() {
        for next in edges.get(&n).into_iter().flat_map(|e| e.keys()) {
            if next == start {
                let mut back = vec![start.clone()];
                let mut cur = n.clone();
                while &cur != start {
                    back.push(cur.clone());
                    cur = parent[&cur].clone();
                }
                back.push(start.clone());
                back.reverse();
                return Some(back);
            }
            if next != start && !parent.contains_key(next) {
                parent.insert(next.clone(), n.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Functions

/// Every `fn` with a body: its name, first line and length in lines (from the `fn` line to the
/// closing brace).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    for at in words(code, "fn") {
        let name: String = code[at + 2..]
            .trim_start()
            .chars()
            .take_while(|&ch| is_ident(ch))
            .collect();
        if name.is_empty() {
            continue; // a `fn(…)` pointer type
        }
        let Some(open) = b[at..].iter().position(|&c| c == b'{' || c == b';') else {
            continue;
        };
        if b[at + open] == b';' {
            continue; // a declaration without a body
        }
        let close = matching_brace(b, at + open);
        let first = code[..at].matches('\n').count() + 1;
        let last = code[..close].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}
