//! What `init` learns from the files a script opens: state it keeps between runs (a file it both
//! reads and writes, as `pickle.load(open("mymodel.h5", "rb"))` … `pickle.dump(m, open("mymodel.h5",
//! "wb"))` or `load_model(X)` … `model.save(X)`), proposed as `[train] keep`, and the file it writes
//! its result into (`open("accuracy.txt", "w").write(...)`), proposed as `metric.file`.
//!
//! Pure, on the lexer's tokens: only string literals passed straight to a call count (a path built
//! at run time is not guessed), and comments and strings never look like calls.

use crate::core::detect::lexer::{Statement, Tok, Token, statements};

use crate::core::config::template::{FileUse, StateFile};

use super::literal::string;

/// How a call uses a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
    Both,
}

/// One literal path handed to a call: `knn.py:31 pickle.load(open("mymodel.h5", "rb"))`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Access {
    path: String,
    how: Use,
    /// `knn.py:31`
    at: String,
    /// The call as people know it: `open(…, "rb")`, `load_model`, `model.save`.
    call: String,
}

/// Calls that read the file named by their first string argument.
const READERS: &[&str] = &[
    "load",
    "load_model",
    "load_weights",
    "read_pickle",
    "load_state_dict",
];
/// Calls that write the file named by one of their string arguments.
const WRITERS: &[&str] = &["dump", "save", "save_model", "save_weights", "to_pickle"];
/// Name parts that make a written text file the script's result.
const RESULT_WORDS: &[&str] = &["acc", "score", "metric", "result"];

/// The state files and the result file of `files` (repository-relative path, text).
pub fn file_use(files: &[(String, &str)]) -> FileUse {
    let mut all = Vec::new();
    for (file, src) in files {
        for st in statements(src) {
            accesses(file, src, &st, &mut all);
        }
    }
    let mut out = FileUse::default();
    for a in &all {
        let reads = |b: &&Access| b.path == a.path && b.how != Use::Write;
        let writes = |b: &&Access| b.path == a.path && b.how != Use::Read;
        if out.state.iter().any(|s| s.path == a.path) {
            continue;
        }
        if let (Some(r), Some(w)) = (all.iter().find(reads), all.iter().find(writes)) {
            out.state.push(StateFile {
                path: a.path.clone(),
                read: format!("{} {}", r.at, r.call),
                written: format!("{} {}", w.at, w.call),
            });
        }
    }
    out.metric_file = all
        .iter()
        .filter(|a| a.how == Use::Write && a.call.starts_with("open("))
        .filter(|a| !out.state.iter().any(|s| s.path == a.path))
        .find(|a| is_result_file(&a.path))
        .map(|a| (a.path.clone(), format!("{} {}", a.at, a.call)));
    out
}

fn is_result_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let text_like =
        [".txt", ".json", ".csv"].iter().any(|e| name.ends_with(e)) || !name.contains('.');
    text_like && RESULT_WORDS.iter().any(|w| name.contains(w))
}

/// One open call while scanning a statement: its dotted name and its direct arguments so far.
struct Frame {
    name: Option<String>,
    args: Vec<Vec<usize>>,
}

/// Records every call of `st` that hands a literal path to a reader, a writer or `open`.
fn accesses(file: &str, src: &str, st: &Statement, out: &mut Vec<Access>) {
    let mut stack: Vec<Frame> = Vec::new();
    for (i, t) in st.iter().enumerate() {
        if t.is_op("(") || t.is_op("[") || t.is_op("{") {
            let name = t.is_op("(").then(|| callee(st, i)).flatten();
            if let Some(f) = stack.last_mut() {
                push_arg(f, i);
            }
            stack.push(Frame {
                name,
                args: vec![Vec::new()],
            });
        } else if t.is_op(")") || t.is_op("]") || t.is_op("}") {
            if let Some(f) = stack.pop()
                && let Some(a) = judge(&f, st, src)
            {
                out.push(Access {
                    at: format!("{file}:{}", t.line),
                    ..a
                });
            }
        } else if let Some(f) = stack.last_mut() {
            if t.is_op(",") {
                f.args.push(Vec::new());
            } else {
                push_arg(f, i);
            }
        }
    }
}

fn push_arg(f: &mut Frame, i: usize) {
    if let Some(a) = f.args.last_mut() {
        a.push(i);
    }
}

/// The dotted name called by the `(` at `open`: `pickle.load`, `model.save`; `None` for a bracket
/// that calls nothing (a tuple, a subscript's result).
fn callee(st: &[Token], open: usize) -> Option<String> {
    let mut parts = Vec::new();
    let mut i = open.checked_sub(1)?;
    loop {
        parts.push(st.get(i)?.name()?.to_owned());
        if i >= 2 && st[i - 1].is_op(".") {
            i -= 2;
        } else {
            break;
        }
    }
    parts.reverse();
    Some(parts.join("."))
}

/// The access a closed call makes, if it passes a literal path to `open`, a reader or a writer.
fn judge(f: &Frame, st: &[Token], src: &str) -> Option<Access> {
    let name = f.name.as_deref()?;
    let last = name.rsplit('.').next().unwrap_or(name);
    let lit = |arg: &Vec<usize>| -> Option<String> {
        let [one] = arg.as_slice() else { return None };
        let t = &st[*one];
        (t.tok == Tok::Str)
            .then(|| string(t.text(src)))
            .flatten()
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    };
    let keyword = |key: &str| {
        f.args.iter().find_map(|a| match a.as_slice() {
            [k, eq, v] if st[*k].name() == Some(key) && st[*eq].is_op("=") => lit(&vec![*v]),
            _ => None,
        })
    };
    let path_like =
        |p: &String| !p.is_empty() && !p.contains(char::is_whitespace) && p.contains('.');
    if last == "open" && name == "open" {
        let path = f.args.first().and_then(lit).filter(path_like)?;
        let mode = f
            .args
            .get(1)
            .and_then(lit)
            .or_else(|| keyword("mode"))
            .unwrap_or_else(|| "r".into());
        let how = match (mode.contains('+'), mode.contains(['w', 'a', 'x'])) {
            (true, _) if mode.contains('r') => Use::Both,
            (_, true) => Use::Write,
            _ => Use::Read,
        };
        let call = format!("open(\"{path}\", \"{mode}\")");
        return Some(Access {
            path,
            how,
            at: String::new(),
            call,
        });
    }
    let how = match (READERS.contains(&last), WRITERS.contains(&last)) {
        (true, _) => Use::Read,
        (_, true) => Use::Write,
        _ => return None,
    };
    let path = f.args.iter().find_map(lit).filter(path_like)?;
    Some(Access {
        call: format!("{name}(\"{path}\")"),
        path,
        how,
        at: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script in the seeds' style: it scores only when the model of its previous run loads.
    const SEEDS_KNN: &str = r#"import pickle
import pandas as pd
data = pd.read_csv("patients.csv")
try:
    model = pickle.load(open("mymodel.h5", "rb"))
    model.fit(X, y)
    f = open("accuracy.txt", "w+")
    f.write(str(model.score(X, y)))
    f.close()
    pickle.dump(model, open("mymodel.h5", "wb"))
except:
    model = KNeighborsClassifier(n_neighbors=1)
    model.fit(X, y)
    pickle.dump(model, open("mymodel.h5", "wb"))
# pickle.load(open("commented.pkl"))
"#;

    #[test]
    fn a_file_read_and_written_is_state_and_the_result_file_is_found() {
        let u = file_use(&[("knn.py".into(), SEEDS_KNN)]);
        assert_eq!(
            u.state,
            [StateFile {
                path: "mymodel.h5".into(),
                read: "knn.py:5 open(\"mymodel.h5\", \"rb\")".into(),
                written: "knn.py:10 open(\"mymodel.h5\", \"wb\")".into(),
            }]
        );
        assert_eq!(
            u.metric_file,
            Some((
                "accuracy.txt".into(),
                "knn.py:7 open(\"accuracy.txt\", \"w+\")".into()
            ))
        );
    }

    #[test]
    fn keras_load_and_save_is_state_and_a_file_only_written_is_not() {
        let src = "from keras.models import load_model\nimport os\nif os.path.exists('ckpt.h5'):\n    \
                   model = load_model('ckpt.h5')\nmodel.fit(x, y)\nmodel.save('ckpt.h5')\n\
                   model.save(filepath='final.keras')\nopen('log.txt', 'w').write('done')\n";
        let u = file_use(&[("cnn.py".into(), src)]);
        assert_eq!(u.state.len(), 1, "{u:?}");
        assert_eq!(u.state[0].path, "ckpt.h5");
        assert_eq!(u.state[0].read, "cnn.py:4 load_model(\"ckpt.h5\")");
        assert_eq!(u.state[0].written, "cnn.py:6 model.save(\"ckpt.h5\")");
        assert_eq!(u.metric_file, None);
        let plain = file_use(&[(
            "knn.py".into(),
            "open('accuracy.txt', 'w').write(str(acc))\n",
        )]);
        assert_eq!(
            plain.metric_file.map(|m| m.0).as_deref(),
            Some("accuracy.txt")
        );
    }
}
