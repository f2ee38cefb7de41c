//! `[train] keep`: files a script leaves in its workspace that the next iteration's workspace starts
//! with, as a Jenkins workspace kept them from one build to the next.
//!
//! A script written for such a workspace loads what its previous run saved (`pickle.load(open(
//! "mymodel.h5"))`, `load_model("ckpt.h5")`) and only reports once it found it. Each iteration
//! still trains in its own copy of its commit; the kept files are copied over that copy from one
//! earlier iteration's workspace (`keep_from`), and the commit and the user's branch never change.
//!
//! Invariants checked here: every entry is a relative path inside the workspace (no `..`, no
//! leading `/`, not empty), a `*` or `?` only in its last component, and `metric.file` is never
//! kept (an iteration would otherwise report its predecessor's value).

use serde::{Deserialize, Serialize};

use super::{Config, Violation};

/// Which earlier iteration the kept files come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepFrom {
    /// The iteration that ended last, whatever its result: the Jenkins workspace's behaviour.
    #[default]
    Previous,
    /// The best-scoring iteration so far (the previous one until one has scored): each iteration
    /// continues from the best model with new parameters, as population-based training exploits.
    Best,
}

impl KeepFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            KeepFrom::Previous => "previous",
            KeepFrom::Best => "best",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == KeepFrom::Previous
    }
}

/// Checks `[train] keep` (see the module's invariants).
pub(super) fn check(config: &Config) -> Result<(), Violation> {
    for entry in &config.train.keep {
        if let Some(why) = problem(entry) {
            return Err(Violation::at(
                &["train", "keep"],
                format!("`train.keep` entry \"{entry}\" {why}"),
            ));
        }
        let edited = config
            .tweak
            .bindings
            .values()
            .find(|b| matches(entry, &b.file));
        if let Some(b) = edited {
            return Err(Violation::at(
                &["train", "keep"],
                format!(
                    "`train.keep` entry \"{entry}\" keeps {}, which a [tweak.space] knob edits: each \
                     iteration would train an earlier iteration's copy instead of its own edit; keep only \
                     files the script writes",
                    b.file
                ),
            ));
        }
        let metric_file = config.metric.file.as_deref();
        if metric_file.is_some_and(|f| matches(entry, f.trim_start_matches("./"))) {
            return Err(Violation::at(
                &["train", "keep"],
                format!(
                    "`train.keep` entry \"{entry}\" keeps metric.file: each iteration would start with the \
                     previous one's result and could report it without training; drop it from keep"
                ),
            ));
        }
    }
    Ok(())
}

/// What a script that reported nothing wrote into its workspace, for its failure's reason:
/// `it wrote mymodel.h5 (1.2 KB) in its workspace (kept for the next iteration by [train] keep)`.
/// Without `keep`, a written model file is taken for a script that only scores on its next run
/// (it loads what it saved), and the fix is named.
pub fn wrote_note(keep: &[String], written: &[(String, u64)]) -> String {
    if written.is_empty() {
        return "it wrote no file in its workspace".into();
    }
    let files = files_sized(written);
    let kept: Vec<&str> = written
        .iter()
        .map(|(f, _)| f.as_str())
        .filter(|f| keep.iter().any(|e| matches(e, f)))
        .collect();
    if !kept.is_empty() {
        return format!(
            "it wrote {files} in its workspace ({} kept for the next iteration by [train] keep)",
            kept.join(", ")
        );
    }
    let model = written.iter().map(|(f, _)| f.as_str()).find(|f| {
        f.rsplit_once('.')
            .is_some_and(|(_, ext)| MODEL_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
    });
    match model {
        Some(m) => format!(
            "it wrote {files} in its workspace. A script that loads what it saved and only scores on \
             its next run needs that file carried over: [train] keep = [\"{m}\"]"
        ),
        None => format!("it wrote {files} in its workspace"),
    }
}

/// `mymodel.h5 (1.2 KB), out/plot.png (35 B)`: files with their sizes, for event lines.
pub fn files_sized(files: &[(String, u64)]) -> String {
    let size = |b: u64| match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / (1u64 << 10) as f64),
        b => format!("{b} B"),
    };
    files
        .iter()
        .map(|(f, b)| format!("{f} ({})", size(*b)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Extensions of files that hold a trained model, for the frameworks people use.
pub const MODEL_EXTENSIONS: [&str; 12] = [
    "h5",
    "keras",
    "pkl",
    "pickle",
    "joblib",
    "sav",
    "pt",
    "pth",
    "onnx",
    "model",
    "ckpt",
    "safetensors",
];

/// Why `entry` cannot name files of the workspace, or `None`.
fn problem(entry: &str) -> Option<&'static str> {
    let parts: Vec<&str> = entry.trim_end_matches('/').split('/').collect();
    if entry.trim().is_empty() {
        Some("is empty: name a file the script writes next to itself, e.g. \"mymodel.h5\"")
    } else if entry.starts_with('/') {
        Some("must be relative to the script's directory (/workspace)")
    } else if parts.iter().any(|p| *p == ".." || p.is_empty()) {
        Some("must not contain `..` or an empty component")
    } else if parts[..parts.len() - 1]
        .iter()
        .any(|p| p.contains(['*', '?']))
    {
        Some("may have `*` or `?` only in its last component (e.g. \"checkpoints/*.h5\")")
    } else {
        None
    }
}

/// Whether workspace-relative `path` (with `/` separators) is what `entry` names: the same path, a
/// file under the directory `entry` names, or a match of its wildcards (`*` any run of characters
/// but `/`, `?` one character) in the last component.
pub fn matches(entry: &str, path: &str) -> bool {
    let entry = entry.trim_end_matches('/');
    if path == entry || path.strip_prefix(entry).is_some_and(|r| r.starts_with('/')) {
        return true;
    }
    let (Some((edir, ename)), Some((pdir, pname))) = (split_last(entry), split_last(path)) else {
        return false;
    };
    edir == pdir && wildcard(ename.as_bytes(), pname.as_bytes())
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split_last(p: &str) -> Option<(&str, &str)> {
    Some(p.rsplit_once('/').unwrap_or(("", p)))
}

fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pat[1..], s) || (!s.is_empty() && wildcard(pat, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pat[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&pat[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(train_extra: &str, metric_extra: &str) -> Result<Config, String> {
        let text = format!(
            "[train]\ncommand = [\"python3\", \"knn.py\"]\n{train_extra}\n[metric]\nname = \"accuracy\"\n\
             target = 0.9\n{metric_extra}\n"
        );
        Config::parse(&text, Path::new("mlops.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn keep_names_files_and_where_they_come_from() {
        let c = parse(
            "keep = [\"mymodel.h5\", \"ckpt/*.pt\"]\nkeep_from = \"best\"",
            "",
        )
        .unwrap();
        assert_eq!(c.train.keep, ["mymodel.h5", "ckpt/*.pt"]);
        assert_eq!(c.train.keep_from, KeepFrom::Best);
        let plain = parse("", "").unwrap();
        assert!(plain.train.keep.is_empty());
        assert_eq!(plain.train.keep_from, KeepFrom::Previous);
    }

    #[test]
    fn bad_entries_are_refused_at_their_line() {
        let e = parse("keep = [\"../x.h5\"]", "").unwrap_err();
        assert!(
            e.starts_with("mlops.toml:3:1: `train.keep` entry \"../x.h5\" must not contain `..`"),
            "{e}"
        );
        let e = parse("keep = [\"/tmp/x\"]", "").unwrap_err();
        assert!(e.contains("must be relative"), "{e}");
        let e = parse("keep = [\"*/x.h5\"]", "").unwrap_err();
        assert!(e.contains("only in its last component"), "{e}");
        let e = parse(
            "keep = [\"mymodel.h5\", \"accuracy.txt\"]",
            "file = \"accuracy.txt\"",
        )
        .unwrap_err();
        assert!(e.contains("keeps metric.file"), "{e}");
        let text = "[train]\ncommand = [\"python3\", \"knn.py\"]\nkeep = [\"*.py\"]\n[metric]\n\
                    name = \"accuracy\"\ntarget = 0.9\n[tweak.space]\n\
                    k = { source = \"knn.py\", assign = \"k\", values = [1, 3] }\n";
        let e = Config::parse(text, Path::new("mlops.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keeps knn.py, which a [tweak.space] knob edits"),
            "{e}"
        );
        let e = parse("keep_from = \"first\"", "").unwrap_err();
        assert!(e.contains("first"), "{e}");
    }

    #[test]
    fn what_a_silent_script_wrote_is_named_with_the_fix() {
        let w = [
            ("mymodel.h5".to_string(), 1536),
            ("plot.png".to_string(), 20),
        ];
        assert_eq!(
            wrote_note(&[], &w),
            "it wrote mymodel.h5 (1.5 KB), plot.png (20 B) in its workspace. A script that loads what \
             it saved and only scores on its next run needs that file carried over: [train] keep = \
             [\"mymodel.h5\"]"
        );
        assert_eq!(
            wrote_note(&["mymodel.h5".into()], &w),
            "it wrote mymodel.h5 (1.5 KB), plot.png (20 B) in its workspace (mymodel.h5 kept for the \
             next iteration by [train] keep)"
        );
        assert_eq!(wrote_note(&[], &[]), "it wrote no file in its workspace");
    }

    #[test]
    fn entries_match_paths_directories_and_wildcards() {
        assert!(matches("mymodel.h5", "mymodel.h5"));
        assert!(!matches("mymodel.h5", "out/mymodel.h5"));
        assert!(matches("ckpt", "ckpt/epoch-3.pt"));
        assert!(matches("ckpt/", "ckpt/epoch-3.pt"));
        assert!(matches("ckpt/*.pt", "ckpt/epoch-3.pt"));
        assert!(!matches("ckpt/*.pt", "ckpt/epoch-3.h5"));
        assert!(matches("model-?.pkl", "model-1.pkl"));
        assert!(!matches("*.pkl", "sub/model.pkl"));
    }
}
