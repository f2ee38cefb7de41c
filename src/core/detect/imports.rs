//! The third-party modules a project imports, and whether an image provides them.
//!
//! Every `import a.b` / `from a.b import c` anywhere in a file counts (inside functions, `if` and
//! `try:` blocks too), by its top-level name `a`, with the line it is on. Relative imports, the Python
//! 3.11 standard library and the project's own modules and packages are not third-party. An import
//! inside a `try:` block whose `except` catches `ImportError` (or everything) is optional: the script
//! has a fallback, so a missing module there is not an error.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::lexer::{self, Statement, Token};
use super::packages::package_name;
use super::stdlib::STDLIB;

/// One import of a third-party module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Relative to the project directory.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The top-level module name (`sklearn` for `from sklearn.svm import SVC`).
    pub module: String,
    /// Inside a `try:` whose `except` catches `ImportError`: the script runs without it.
    pub optional: bool,
    /// In a notebook: the code cell (1-based, as `In[n]`) and the line within it that `line` is.
    pub cell: Option<(usize, usize)>,
}

impl Import {
    /// Where, for people: `train.py:4`, or `nb.ipynb In[2]:2` in a notebook.
    pub fn at(&self) -> String {
        match self.cell {
            Some((cell, line)) => format!("{} In[{cell}]:{line}", self.file.display()),
            None => format!("{}:{}", self.file.display(), self.line),
        }
    }
}

/// True for a top-level module of the Python 3.11 standard library.
pub fn is_stdlib(module: &str) -> bool {
    STDLIB.binary_search(&module).is_ok()
}

/// The third-party imports of `files` ((relative path, contents) pairs), in file and line order; the
/// first import of a module per file.
pub fn third_party(files: &[(PathBuf, String)]) -> Vec<Import> {
    let local = local_modules(files.iter().map(|(p, _)| p.as_path()));
    let mut out = Vec::new();
    for (file, src) in files {
        let mut seen = BTreeSet::new();
        for found in scan(src) {
            if is_stdlib(&found.module) || local.contains(&found.module) {
                continue;
            }
            if seen.insert(found.module.clone()) {
                let notebook = crate::core::notebook::is_notebook(&file.to_string_lossy());
                out.push(Import {
                    file: file.clone(),
                    line: found.line,
                    module: found.module,
                    optional: found.optional,
                    cell: notebook
                        .then(|| crate::core::notebook::cell_line(src, found.line))
                        .flatten(),
                });
            } else if !found.optional {
                // A later unguarded import makes the module required after all.
                if let Some(i) = out
                    .iter_mut()
                    .find(|i| i.file == *file && i.module == found.module)
                {
                    i.optional = false;
                }
            }
        }
    }
    out
}

/// Names the project's own files and directories give to `import`: each Python file's stem and every
/// directory on the way to one (a package, or a directory on `sys.path`).
fn local_modules<'a>(paths: impl Iterator<Item = &'a Path>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for path in paths {
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            names.insert(stem.to_owned());
        }
        for dir in path.parent().into_iter().flat_map(Path::components) {
            if let Some(name) = dir.as_os_str().to_str() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The modules the chosen image lacks, as one error line per import: `file:line: imports `m`, which
/// image `p` does not provide: ...`. Optional imports never count.
pub fn missing<'a>(
    imports: &'a [Import],
    image: &str,
    provides: impl Fn(&str) -> bool,
) -> Vec<Missing<'a>> {
    imports
        .iter()
        .filter(|i| !i.optional && !provides(&i.module))
        .map(|import| Missing {
            import,
            image: image.to_owned(),
        })
        .collect()
}

/// A required import that the image does not provide; displays as the error line with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing<'a> {
    pub import: &'a Import,
    pub image: String,
}

impl fmt::Display for Missing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.import;
        let package = package_name(&i.module);
        let list = if package == i.module {
            "list it in requirements.txt".to_owned()
        } else {
            format!("list `{package}` in requirements.txt")
        };
        write!(
            f,
            "{}: imports `{}`, which image `{}` does not provide: {list} (mlops-tui builds a derived image with it) or set train.image",
            i.at(),
            i.module,
            self.image,
        )
    }
}

/// An import as written, before filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    line: usize,
    module: String,
    optional: bool,
}

/// An open `try:` block: its indentation, the imports of its body (indices into the found list), and
/// whether its body is still going on (no `except`/`else`/`finally` of it seen yet).
struct TryBlock {
    indent: usize,
    imports: Vec<usize>,
    in_body: bool,
}

/// The absolute imports of one file. Blocks are told apart by the indentation of each statement's
/// first line: a `try:` body is what follows it more deeply indented, and its clauses are the
/// `except` lines at its own indentation.
fn scan(src: &str) -> Vec<Found> {
    let lines: Vec<&str> = src.lines().collect();
    let indent_of = |line: usize| {
        lines
            .get(line.saturating_sub(1))
            .map_or(0, |l| l.len() - l.trim_start_matches([' ', '\t']).len())
    };
    let mut found: Vec<Found> = Vec::new();
    let mut tries: Vec<TryBlock> = Vec::new();
    for stmt in lexer::statements(src) {
        let indent = indent_of(stmt[0].line);
        let (head, rest) = split_compound(&stmt);
        match head {
            Some(clause @ ("except" | "else" | "finally")) => {
                let catches = clause == "except" && catches_import_error(&stmt);
                close_body(&mut tries, indent, catches, &mut found);
                continue;
            }
            // Any other statement at or left of a `try:` ends it.
            _ => tries.retain(|t| t.indent < indent),
        }
        let start = found.len();
        import_statement(rest, &mut found);
        let added = start..found.len();
        for t in tries.iter_mut().filter(|t| t.in_body && t.indent < indent) {
            t.imports.extend(added.clone());
        }
        if head == Some("try") {
            tries.push(TryBlock {
                indent,
                imports: added.collect(),
                in_body: true,
            });
        }
    }
    found
}

/// An `except`/`else`/`finally` clause at `indent`: deeper blocks are over, and the body of the
/// `try:` at this indentation ends; when the clause catches import errors, that body's imports are
/// optional.
fn close_body(tries: &mut Vec<TryBlock>, indent: usize, catches: bool, found: &mut [Found]) {
    tries.retain(|t| t.indent <= indent);
    let Some(t) = tries.last_mut().filter(|t| t.indent == indent) else {
        return;
    };
    t.in_body = false;
    if catches {
        for &i in &t.imports {
            found[i].optional = true;
        }
    }
}

/// A compound statement's keyword and the simple statement after its colon on the same line
/// (`try: import x`), or no keyword and the whole statement.
fn split_compound(stmt: &Statement) -> (Option<&str>, &[Token]) {
    let head = stmt[0].name();
    if matches!(
        head,
        Some(
            "try"
                | "except"
                | "if"
                | "elif"
                | "else"
                | "for"
                | "while"
                | "with"
                | "def"
                | "finally"
        )
    ) {
        let body = stmt
            .iter()
            .position(|t| t.is_op(":"))
            .map_or(&stmt[stmt.len()..], |colon| &stmt[colon + 1..]);
        let keyword = matches!(head, Some("try" | "except" | "else" | "finally"))
            .then_some(head)
            .flatten();
        return (keyword, body);
    }
    (None, stmt)
}

/// `except:`, `except Exception`, `except BaseException` or any clause naming `ImportError` or
/// `ModuleNotFoundError`.
fn catches_import_error(stmt: &Statement) -> bool {
    let names: Vec<&str> = stmt
        .iter()
        .skip(1)
        .take_while(|t| !t.is_op(":"))
        .filter_map(Token::name)
        .collect();
    names.is_empty()
        || names.iter().any(|n| {
            matches!(
                *n,
                "ImportError" | "ModuleNotFoundError" | "Exception" | "BaseException"
            )
        })
}

/// Appends the modules of `import a.b as x, c` or `from a.b import c`; relative imports add nothing.
fn import_statement(tokens: &[Token], found: &mut Vec<Found>) {
    let Some(first) = tokens.first() else {
        return;
    };
    let mut push = |token: &Token| {
        if let Some(name) = token.name() {
            found.push(Found {
                line: token.line,
                module: name.to_owned(),
                optional: false,
            });
        }
    };
    match first.name() {
        Some("import") => {
            // Each comma-separated item's first name, skipping `as` aliases and dotted tails.
            let mut expect_module = true;
            for token in tokens.iter().skip(1) {
                if token.is_op(",") {
                    expect_module = true;
                } else if expect_module {
                    if token.is_op("(") {
                        continue;
                    }
                    expect_module = false;
                    push(token);
                }
            }
        }
        Some("from") => {
            if let Some(module) = tokens.get(1).filter(|t| t.name().is_some()) {
                push(module);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
