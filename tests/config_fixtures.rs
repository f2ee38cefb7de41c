//! Config fixtures: every file under `tests/fixtures/config/valid/` loads; every file under
//! `invalid/` fails with the error its first line announces (`# expect: <text>`), naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mlops_tui::core::config::Config;
use mlops_tui::support::config_file;

fn fixtures(kind: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn valid_files_load() {
    for f in fixtures("valid") {
        config_file::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn invalid_files_fail_with_file_line_and_value() {
    for f in fixtures("invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .expect("first line says what to expect");
        let err = config_file::load(&f)
            .expect_err(&format!("{} must not load", f.display()))
            .to_string();
        assert!(err.starts_with(&f.display().to_string()), "{err}");
        assert!(
            err.contains(expect),
            "{}:\n  got: {err}\n  expected to contain: {expect}",
            f.display()
        );
    }
}

#[test]
fn the_init_templates_are_valid() {
    // `mlops-tui init` writes these; each kind's template must load.
    for dir in ["digits-cnn-torch", "digits-knn-sklearn", "digits-mlp-numpy"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-projects")
            .join(dir);
        let verdict =
            mlops_tui::core::detect::detect(&mlops_tui::support::source_tree::read(&p).unwrap())
                .unwrap();
        let text = mlops_tui::core::config::template::for_verdict(&verdict);
        Config::parse(&text, Path::new("mlops.toml")).unwrap_or_else(|e| panic!("{dir}: {e}"));
    }
}
