use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;
use crate::core::config::template;
use crate::core::detect;

const SVC: &str = include_str!("../../../tests/fixtures/wild/svc_digits_notebook.py");
const KNN: &str = include_str!("../../../tests/fixtures/wild/knn_pandas.py");
const SEEDS: &str = include_str!("../../../tests/fixtures/wild/model_code3.py");
const ARGPARSE: &str = include_str!("../../../tests/fixtures/wild/argparse_mlp.py");

fn config_with(command: &str, space: &str) -> Result<Config, String> {
    let text = format!(
        "[train]\ncommand = {command}\n\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\n[tweak.space]\n{space}\n"
    );
    Config::parse(&text, Path::new("mlops.toml")).map_err(|e| e.to_string())
}

fn config(space: &str) -> Config {
    config_with(r#"["python3", "train.py"]"#, space).unwrap()
}

fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

fn resolve(space: &str, files: &[(&str, &str)]) -> Result<Knobs, String> {
    Knobs::resolve(&config(space), sources(files)).map_err(|e| e.0)
}

fn params(pairs: &[(&str, serde_json::Value)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn edit(file: &str, line: usize, old: &str, new: &str) -> SourceEdit {
    SourceEdit {
        file: file.into(),
        line,
        old: old.into(),
        new: new.into(),
    }
}

/// Applying the edits' replaced lines to the original gives the patched text (for files whose
/// edits only modify lines).
fn line_diff(old: &str, new: &str) -> Vec<(usize, String, String)> {
    old.lines()
        .zip(new.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_owned(), b.to_owned()))
        .collect()
}

#[test]
fn files_lists_each_bound_file_once() {
    let c = config(
        r#"gamma = { source = "svc.py", call = "svm.SVC", arg = "gamma", values = [0.001, 0.01] }
C = { source = "svc.py:33", values = [1, 10] }
k = { source = "lib/knn.py", assign = "k", values = [1, 3] }
plain = { values = [1, 2] }"#,
    );
    assert_eq!(Knobs::files(&c), vec!["lib/knn.py", "svc.py"]);
    assert_eq!(c.tweak.bindings.len(), 3);
    assert!(!c.tweak.bindings.contains_key("plain"));
}

#[test]
fn keyword_of_a_call_in_a_notebook_export() {
    let knobs = resolve(
        r#"gamma = { source = "svc.py", call = "svm.SVC", arg = "gamma", values = [0.001, 0.01, 0.0001] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap();
    assert!(!knobs.is_empty());
    assert_eq!(knobs.current(), params(&[("gamma", json!(0.001))]));
    let patch = knobs.patch(&params(&[("gamma", json!(0.01))])).unwrap();
    assert_eq!(
        patch.edits,
        vec![edit(
            "svc.py",
            33,
            "clf = svm.SVC(gamma=0.001)",
            "clf = svm.SVC(gamma=0.01)"
        )]
    );
    let new = &patch.files["svc.py"];
    assert_eq!(
        line_diff(SVC, new),
        vec![(
            33,
            "clf = svm.SVC(gamma=0.001)".into(),
            "clf = svm.SVC(gamma=0.01)".into()
        )]
    );
    // The comment on line 7 names the same call and stays as written.
    assert!(new.contains("# We tried svm.SVC(gamma=0.1) first"));
    let tiny = knobs.patch(&params(&[("gamma", json!(0.00001))])).unwrap();
    assert_eq!(tiny.edits[0].new, "clf = svm.SVC(gamma=1e-5)");
}

#[test]
fn call_names_match_on_their_dotted_suffix() {
    for call in ["SVC", "svm.SVC", "sklearn.svm.SVC"] {
        let space = format!(
            r#"gamma = {{ source = "svc.py", call = "{call}", arg = "gamma", values = [0.01] }}"#
        );
        let knobs = resolve(&space, &[("svc.py", SVC)]).unwrap();
        assert_eq!(knobs.current()["gamma"], json!(0.001), "{call}");
    }
    let e = resolve(
        r#"gamma = { source = "svc.py", call = "linear_model.SVC", arg = "gamma", values = [0.01] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(
        e.starts_with("svc.py: no `linear_model.SVC(… gamma=…)` call"),
        "{e}"
    );
}

#[test]
fn nothing_matched_names_the_file_and_the_fix() {
    let e = resolve(
        r#"C = { source = "svc.py", call = "svm.SVC", arg = "C", values = [1.0, 10.0] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(
        e.starts_with("svc.py: no `svm.SVC(… C=…)` call with a literal for `C`"),
        "{e}"
    );
    assert!(e.contains("source = \"svc.py:LINE\""), "{e}");
    let e = resolve(
        r#"C = { source = "svc.py:20", values = [1.0] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(e.starts_with("svc.py:20: no literal on this line"), "{e}");
    let e = resolve(
        r#"C = { source = "svc.py:900", values = [1.0] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(e.starts_with("svc.py:900: past the end of the file"), "{e}");
    let e = resolve(
        r#"C = { source = "train.py", assign = "C", values = [1.0] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(e.starts_with("train.py: no such file in the commit"), "{e}");
}

#[test]
fn several_matches_list_every_place() {
    let src = "from sklearn.neighbors import KNeighborsClassifier\n\nfast = KNeighborsClassifier(n_neighbors=1)\nslow = KNeighborsClassifier(\n    n_neighbors=15,\n)\n";
    let e = resolve(
        r#"k = { source = "knn.py", call = "KNeighborsClassifier", arg = "n_neighbors", values = [3] }"#,
        &[("knn.py", src)],
    )
    .unwrap_err();
    assert!(
        e.contains("matches 2 places: knn.py:3 (`1`), knn.py:5 (`15`)"),
        "{e}"
    );
    assert!(e.contains("source = \"knn.py:3\""), "{e}");
    // With the line, the binding is one place again.
    let knobs = resolve(
        r#"k = { source = "knn.py:5", call = "KNeighborsClassifier", arg = "n_neighbors", values = [3] }"#,
        &[("knn.py", src)],
    )
    .unwrap();
    assert_eq!(knobs.current()["k"], json!(15));
}

#[test]
fn a_line_with_several_literals_needs_arg() {
    let e = resolve(
        r#"act = { source = "model_code3.py:19", values = ["tanh"] }"#,
        &[("model_code3.py", SEEDS)],
    )
    .unwrap_err();
    assert!(
        e.starts_with("model_code3.py:19: 3 literals on this line for `act` (`3`, `3`, `'relu'`)"),
        "{e}"
    );
    let knobs = resolve(
        r#"act = { source = "model_code3.py:19", arg = "activation", values = ["relu", "tanh"] }"#,
        &[("model_code3.py", SEEDS)],
    )
    .unwrap();
    let patch = knobs.patch(&params(&[("act", json!("tanh"))])).unwrap();
    assert_eq!(
        patch.edits,
        vec![edit(
            "model_code3.py",
            19,
            "    model.add(Convolution2D(filt, (3, 3), activation='relu'))",
            "    model.add(Convolution2D(filt, (3, 3), activation='tanh'))"
        )]
    );
}

#[test]
fn positional_arguments_and_expressions() {
    let src =
        "model.add(layers.Conv2D(32, (3, 3), activation=\"relu\"))\nmodel.add(layers.Dense(64))\n";
    let knobs = resolve(
        r#"filters = { source = "cnn.py", call = "Conv2D", index = 0, start = 32, max = 128, factor = 2 }
units = { source = "cnn.py", call = "layers.Dense", index = 0, values = [64, 128] }"#,
        &[("cnn.py", src)],
    )
    .unwrap();
    assert_eq!(
        knobs.current(),
        params(&[("filters", json!(32)), ("units", json!(64))])
    );
    let patch = knobs
        .patch(&params(&[("filters", json!(64)), ("units", json!(128))]))
        .unwrap();
    assert_eq!(
        patch.files["cnn.py"],
        "model.add(layers.Conv2D(64, (3, 3), activation=\"relu\"))\nmodel.add(layers.Dense(128))\n"
    );
    assert_eq!(patch.edits.len(), 2);
    // The seeds pass a variable: not a literal, and the error says what to bind instead.
    let e = resolve(
        r#"filters = { source = "model_code3.py", call = "Convolution2D", index = 0, values = [64] }"#,
        &[("model_code3.py", SEEDS)],
    )
    .unwrap_err();
    assert!(
        e.starts_with("model_code3.py:16: `filters` is bound to `filt`, which is not a literal"),
        "{e}"
    );
}

#[test]
fn assignments_at_any_indentation_but_not_attributes() {
    let src = "class Net:\n    def __init__(self):\n        self.epochs = 3\n\ndef main():\n    epochs = 5\n    train(epochs)\n";
    let knobs = resolve(
        r#"epochs = { source = "train.py", assign = "epochs", start = 5, max = 20, step = 5 }"#,
        &[("train.py", src)],
    )
    .unwrap();
    assert_eq!(knobs.current()["epochs"], json!(5));
    let patch = knobs.patch(&params(&[("epochs", json!(10))])).unwrap();
    assert_eq!(
        patch.edits,
        vec![edit("train.py", 6, "    epochs = 5", "    epochs = 10")]
    );
    assert!(
        config_with(
            r#"["python3", "train.py"]"#,
            r#"e = { source = "train.py", assign = "self.epochs", values = [1] }"#
        )
        .unwrap_err()
        .contains("only plain names are bound")
    );
}

#[test]
fn literals_in_comments_and_strings_are_ignored() {
    let src = "# clf = svm.SVC(gamma=0.1)\ndoc = \"svm.SVC(gamma=0.5)\"\n'''\nclf = svm.SVC(gamma=0.7)\n'''\nclf = svm.SVC(gamma=0.001)  # svm.SVC(gamma=0.2)\n";
    let knobs = resolve(
        r#"gamma = { source = "t.py", call = "svm.SVC", arg = "gamma", values = [0.01] }"#,
        &[("t.py", src)],
    )
    .unwrap();
    let patch = knobs.patch(&params(&[("gamma", json!(0.01))])).unwrap();
    assert_eq!(
        patch.edits,
        vec![edit(
            "t.py",
            6,
            "clf = svm.SVC(gamma=0.001)  # svm.SVC(gamma=0.2)",
            "clf = svm.SVC(gamma=0.01)  # svm.SVC(gamma=0.2)"
        )]
    );
}

#[test]
fn signed_numbers_are_one_literal() {
    let src = "alpha = -1e-3\nshift = x - 1\n";
    let knobs = resolve(
        r#"alpha = { source = "t.py", assign = "alpha", values = [-0.001, 0.01, -0.00001] }
shift = { source = "t.py:2", values = [1, 2] }"#,
        &[("t.py", src)],
    )
    .unwrap();
    assert_eq!(
        knobs.current(),
        params(&[("alpha", json!(-0.001)), ("shift", json!(1))])
    );
    let p = knobs
        .patch(&params(&[("alpha", json!(0.01)), ("shift", json!(2))]))
        .unwrap();
    assert_eq!(p.files["t.py"], "alpha = 0.01\nshift = x - 2\n");
    let p = knobs.patch(&params(&[("alpha", json!(-0.00001))])).unwrap();
    assert_eq!(p.files["t.py"], "alpha = -1e-5\nshift = x - 1\n");
}

#[test]
fn strings_keep_their_quotes() {
    let src = "a = SVC(kernel='rbf')\nb = SVC(kernel=\"rbf\", C=1)\n";
    let knobs = resolve(
        r#"ka = { source = "t.py:1", arg = "kernel", values = ["rbf", "linear"] }
kb = { source = "t.py:2", arg = "kernel", values = ["rbf", "poly"] }
C = { source = "t.py", call = "SVC", arg = "C", values = [1, 0.5, 10.0] }"#,
        &[("t.py", src)],
    )
    .unwrap();
    let p = knobs
        .patch(&params(&[
            ("ka", json!("linear")),
            ("kb", json!("it's")),
            ("C", json!(10.0)),
        ]))
        .unwrap();
    assert_eq!(
        p.files["t.py"],
        "a = SVC(kernel='linear')\nb = SVC(kernel=\"it's\", C=10)\n"
    );
    let p = knobs.patch(&params(&[("C", json!(0.5))])).unwrap();
    assert_eq!(p.edits[0].new, "b = SVC(kernel=\"rbf\", C=0.5)");
}

#[test]
fn values_that_do_not_fit_the_literal_are_errors() {
    let e = resolve(
        r#"k = { source = "knn.py", call = "KNeighborsClassifier", arg = "n_neighbors", values = [1, "three"] }"#,
        &[("knn.py", KNN)],
    )
    .unwrap_err();
    assert_eq!(
        e,
        "knn.py:14: `k` = \"three\" does not fit the literal `1`, which holds a number; give `k` values of that type in mlops.toml"
    );
    let knobs = resolve(
        r#"w = { source = "knn.py", call = "KNeighborsClassifier", arg = "weights", values = ["uniform", "distance"] }"#,
        &[("knn.py", KNN)],
    )
    .unwrap();
    let e = knobs.patch(&params(&[("w", json!(3))])).unwrap_err().0;
    assert!(e.contains("which holds a string"), "{e}");
}

#[test]
fn untouched_dimensions_make_no_edit() {
    let knobs = resolve(
        r#"gamma = { source = "svc.py", call = "svm.SVC", arg = "gamma", values = [1e-3, 0.01] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap();
    let start = config(
        r#"gamma = { source = "svc.py", call = "svm.SVC", arg = "gamma", values = [1e-3, 0.01] }"#,
    )
    .starting_params();
    assert!(knobs.patch(&start).unwrap().is_empty());
    assert!(knobs.patch(&Params::new()).unwrap().is_empty());
    assert!(Knobs::default().is_empty());
}

const BLOCK: &str = "model = Sequential()\nmodel.add(Conv2D(32, (3, 3), activation='relu', input_shape=(8, 8, 1)))\nif deep:\n    model.add(Conv2D(32, (3, 3), activation='relu', padding='same'))\n    model.add(MaxPooling2D((2, 2)))\nmodel.add(Flatten())\n";

#[test]
fn a_repeated_block_keeps_its_indentation() {
    let knobs = resolve(
        r#"blocks = { source = "cnn.py:4-5", repeat = { start = 1, max = 3 } }"#,
        &[("cnn.py", BLOCK)],
    )
    .unwrap();
    assert_eq!(knobs.current()["blocks"], json!(1));
    let p = knobs.patch(&params(&[("blocks", json!(3))])).unwrap();
    let lines: Vec<&str> = p.files["cnn.py"].lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[3..9]
            .iter()
            .filter(|l| l.starts_with("    model.add("))
            .count(),
        6
    );
    assert_eq!(lines[5], lines[3]);
    assert_eq!(lines[9], "model.add(Flatten())");
    assert_eq!(p.edits.len(), 4);
    assert!(p.edits.iter().all(|e| e.line == 5 && e.old.is_empty()));
    assert!(
        knobs
            .patch(&params(&[("blocks", json!(1))]))
            .unwrap()
            .is_empty()
    );
    // The strategies see an integer range of step 1.
    let c = config(r#"blocks = { source = "cnn.py:4-5", repeat = { start = 1, max = 3 } }"#);
    assert_eq!(
        c.tweak.space["blocks"],
        Dimension::Range {
            start: 1.0,
            max: 3.0,
            step: Some(1.0),
            factor: None,
            integer: true
        }
    );
}

#[test]
fn a_literal_knob_inside_a_repeated_block_changes_in_every_copy() {
    let knobs = resolve(
        r#"blocks = { source = "cnn.py:4-5", repeat = { start = 1, max = 3 } }
filters = { source = "cnn.py:4", arg = "padding", values = ["same", "valid"] }
first = { source = "cnn.py:2", call = "Conv2D", index = 0, values = [32, 64] }"#,
        &[("cnn.py", BLOCK)],
    )
    .unwrap();
    let p = knobs
        .patch(&params(&[
            ("blocks", json!(2)),
            ("filters", json!("valid")),
            ("first", json!(64)),
        ]))
        .unwrap();
    let text = &p.files["cnn.py"];
    assert_eq!(text.matches("padding='valid'").count(), 2);
    assert!(!text.contains("padding='same'"));
    assert!(text.contains("model.add(Conv2D(64, (3, 3), activation='relu', input_shape"));
    let lines: Vec<usize> = p.edits.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4, 5, 5]);
    assert_eq!(p.edits[3].new, "    model.add(MaxPooling2D((2, 2)))");
}

#[test]
fn a_block_may_vanish_only_when_min_allows() {
    let space = r#"blocks = { source = "cnn.py:4-5", repeat = { start = 1, max = 3, min = 0 } }"#;
    let knobs = resolve(space, &[("cnn.py", BLOCK)]).unwrap();
    let p = knobs.patch(&params(&[("blocks", json!(0))])).unwrap();
    assert_eq!(p.files["cnn.py"].lines().count(), 4);
    assert_eq!(p.edits.len(), 2);
    assert!(
        p.edits
            .iter()
            .all(|e| e.new.is_empty() && !e.old.is_empty())
    );
    let strict = resolve(
        r#"blocks = { source = "cnn.py:4-5", repeat = { start = 1, max = 3 } }"#,
        &[("cnn.py", BLOCK)],
    )
    .unwrap();
    let e = strict
        .patch(&params(&[("blocks", json!(0))]))
        .unwrap_err()
        .0;
    assert!(e.starts_with("cnn.py:4: `blocks` = 0"), "{e}");
}

#[test]
fn a_block_must_hold_whole_statements() {
    let src = "model.add(Dense(\n    64,\n    activation='relu'))\nmodel.add(Dense(10))\n";
    let e = resolve(
        r#"b = { source = "m.py:2-4", repeat = { start = 1, max = 2 } }"#,
        &[("m.py", src)],
    )
    .unwrap_err();
    assert!(
        e.starts_with("m.py:2-4: the block cuts the statement at m.py:1-3 in two"),
        "{e}"
    );
}

#[test]
fn the_seeds_loop_count_is_an_assignment() {
    let knobs = resolve(
        r#"parameter = { source = "model_code3.py", assign = "parameter", start = 1, max = 4, step = 1 }
units = { source = "model_code3.py:22", arg = "units", start = 128, max = 512, factor = 2 }"#,
        &[("model_code3.py", SEEDS)],
    )
    .unwrap();
    let p = knobs
        .patch(&params(&[("parameter", json!(3)), ("units", json!(256))]))
        .unwrap();
    assert_eq!(
        p.edits,
        vec![
            edit("model_code3.py", 12, "parameter = 1", "parameter = 3"),
            edit(
                "model_code3.py",
                22,
                "model.add(Dense(units=128, activation='relu'))",
                "model.add(Dense(units=256, activation='relu'))"
            ),
        ]
    );
}

#[test]
fn two_knobs_on_one_literal_are_an_error() {
    let e = resolve(
        r#"a = { source = "svc.py", call = "svm.SVC", arg = "gamma", values = [0.01] }
b = { source = "svc.py:33", values = [0.01] }"#,
        &[("svc.py", SVC)],
    )
    .unwrap_err();
    assert!(
        e.contains("`a` and `b` bind overlapping places in svc.py"),
        "{e}"
    );
}

#[test]
fn binding_errors_name_the_line_of_mlops_toml() {
    let cases = [
        (
            r#"g = { source = "svc.py", call = "svm.SVC", values = [1] }"#,
            "`call` needs `arg = \"name\"`",
        ),
        (
            r#"g = { source = "svc.py", values = [1] }"#,
            "a `source` without a line needs",
        ),
        (
            r#"g = { call = "svm.SVC", arg = "gamma", values = [1] }"#,
            "add `source = \"train.py\"`",
        ),
        (
            r#"g = { source = "svc.py", repeat = { start = 1, max = 2 } }"#,
            "`repeat` needs the block's lines",
        ),
        (
            r#"g = { source = "svc.py:3-5", values = [1] }"#,
            "a line range (`svc.py:3-5`) is only for `repeat`",
        ),
        (
            r#"g = { source = "svc.py:3", repeat = { start = 0, max = 2 } }"#,
            "`repeat` needs 0 <= min <= start <= max",
        ),
        (
            r#"g = { source = "/abs/svc.py:3", values = [1] }"#,
            "must be a path inside the repository",
        ),
        (
            r#"g = { source = "svc.py", call = "f", arg = "a", index = 0, values = [1] }"#,
            "not both",
        ),
    ];
    for (space, message) in cases {
        let e = config_with(r#"["python3", "train.py"]"#, space).unwrap_err();
        assert!(e.starts_with("mlops.toml:9:5:"), "{space}: {e}");
        assert!(e.contains(message), "{space}: {e}");
    }
}

#[test]
fn command_templates_render_parameters_as_text() {
    let c = config_with(
        r#"["python3", "train.py", "--lr", "{lr}", "--opt={opt}", "{{lr}}", '{"a": 1}']"#,
        "lr = { values = [0.01, 0.1] }\nopt = { values = [\"adam\"] }",
    )
    .unwrap();
    let argv = c.render_command(&params(&[("lr", json!(0.1)), ("opt", json!("adam"))]));
    assert_eq!(
        argv,
        vec![
            "python3",
            "train.py",
            "--lr",
            "0.1",
            "--opt=adam",
            "{lr}",
            "{\"a\": 1}"
        ]
    );
    let e = config_with(
        r#"["python3", "train.py", "--lr", "{learning_rate}"]"#,
        "lr = { values = [0.01] }",
    )
    .unwrap_err();
    assert!(
        e.starts_with("mlops.toml:2:1: `{learning_rate}` in `train.command` is not a parameter"),
        "{e}"
    );
    // Fixed parameters count too.
    let text = "[train]\ncommand = [\"python3\", \"t.py\", \"--seed\", \"{seed}\"]\n[metric]\nname = \"loss\"\ntarget = 0.1\n[params]\nseed = 7\n";
    let c = Config::parse(text, Path::new("mlops.toml")).unwrap();
    assert_eq!(c.render_command(&c.starting_params())[3], "7");
}

#[test]
fn unread_dimensions_are_named_with_a_binding_to_try() {
    let c = config_with(r#"["python3", "knn.py"]"#, "k = { values = [15, 9, 3] }").unwrap();
    let files = sources(&[("knn.py", KNN), ("notes.txt", "params.json")]);
    let warnings = unread_dimensions(&c, &files);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("`k` is tweaked but nothing reads it: knn.py reads no params.json/$MLOPS_PARAMS and no source binding or {k} in the command names it; bind it, e.g. `k = { source = \"knn.py\", call = \"KNeighborsClassifier\", arg = \"n_neighbors\""),
        "{w}"
    );
    // A comment does not read the parameters; a string does.
    let commented = format!("# reads params.json some day\n{KNN}");
    assert_eq!(
        unread_dimensions(&c, &sources(&[("knn.py", &commented)])).len(),
        1
    );
    let reading = format!("import json, os\nP = json.loads(os.environ['MLOPS_PARAMS'])\n{KNN}");
    assert!(unread_dimensions(&c, &sources(&[("knn.py", &reading)])).is_empty());
    let opened = format!("P = json.load(open('/mlops/params.json'))\n{KNN}");
    assert!(unread_dimensions(&c, &sources(&[("knn.py", &opened)])).is_empty());
    // A template or a binding reads it.
    let templated = config_with(
        r#"["python3", "knn.py", "-k", "{k}"]"#,
        "k = { values = [15] }",
    )
    .unwrap();
    assert!(unread_dimensions(&templated, &files).is_empty());
    let bound = config_with(
        r#"["python3", "knn.py"]"#,
        r#"k = { source = "knn.py", call = "KNeighborsClassifier", arg = "n_neighbors", values = [1, 3] }
other = { values = [1] }"#,
    )
    .unwrap();
    let w = unread_dimensions(&bound, &files);
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("`other` is tweaked"), "{w:?}");
    // A dimension named like a knob of the code is shown that knob.
    let weights = config_with(
        r#"["python3", "knn.py"]"#,
        "weights = { values = [\"distance\"] }",
    )
    .unwrap();
    let w = unread_dimensions(&weights, &files);
    assert!(
        w[0].contains("e.g. `weights = { source = \"knn.py\", call = \"KNeighborsClassifier\", arg = \"weights\", values = [\"uniform\", \"distance\"] }` (knn.py:14)"),
        "{w:?}"
    );
}

fn project(files: &[(&str, &str)]) -> (detect::Verdict, Vec<(PathBuf, String)>) {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), s.to_string()))
        .collect();
    (
        detect::detect_sources(Path::new("proj"), &files).unwrap(),
        files,
    )
}

/// `text` with every suggested knob (`# name = { … }`) uncommented.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| {
            if template::is_suggestion(l) {
                &l[2..]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the template for `files`, checks it parses as written and with every knob uncommented,
/// and that every uncommented knob resolves against the files.
fn init(files: &[(&str, &str)]) -> (String, Config, Discovery) {
    let (verdict, sources_list) = project(files);
    let discovery = discover(&verdict, &sources_list);
    let text = template::for_project(&verdict, &discovery, template::Environment::default());
    Config::parse(&text, Path::new("mlops.toml")).unwrap();
    let all = uncommented(&text);
    let c = Config::parse(&all, Path::new("mlops.toml")).unwrap_or_else(|e| panic!("{e}\n{all}"));
    Knobs::resolve(&c, sources(files)).unwrap_or_else(|e| panic!("{e}\n{all}"));
    (text, c, discovery)
}

use crate::core::config::template::Discovery;

#[test]
fn init_names_the_real_script_and_its_knobs() {
    let helper = "def load():\n    return None\n";
    let (text, c, d) = init(&[("model_code3.py", SEEDS), ("utils.py", helper)]);
    assert!(
        text.contains("command = [\"python3\", \"model_code3.py\"]"),
        "{text}"
    );
    assert_eq!(d.entry.as_deref(), Some("model_code3.py"));
    assert!(!d.reads_params);
    let names: Vec<&str> = c.tweak.space.keys().map(String::as_str).collect();
    // `Dense(units=10, activation='softmax')` is the output layer: its size is the class count.
    assert!(!names.contains(&"units_2"), "{text}");
    assert!(
        text.contains("# filters = { source = \"model_code3.py\", assign = \"filt\", start = 32, max = 256, factor = 2 }"),
        "{text}"
    );
    for name in [
        "parameter",
        "filters",
        "units",
        "epochs",
        "batch_size",
        "optimizer",
    ] {
        assert!(
            names.contains(&name),
            "{name} missing from {names:?}\n{text}"
        );
    }
    assert!(
        text.contains("# parameter = { source = \"model_code3.py\", assign = \"parameter\", start = 1, max = 4, step = 1 }"),
        "{text}"
    );
    assert!(
        text.contains("# model_code3.py:12 parameter = 1, the count of"),
        "{text}"
    );
    // Nothing reads params.json: the generic space is not written.
    assert!(!text.contains("conv_layers"), "{text}");
    // Every knob starts at the commit's value, so the first iteration trains the code as written.
    let knobs = Knobs::resolve(&c, sources(&[("model_code3.py", SEEDS)])).unwrap();
    assert!(knobs.patch(&c.starting_params()).unwrap().is_empty());
}

#[test]
fn init_on_a_notebook_export_and_a_pandas_script() {
    let (text, c, _) = init(&[("svc_digits_notebook.py", SVC)]);
    assert!(text.contains("command = [\"python3\", \"svc_digits_notebook.py\"]"));
    assert!(
        text.contains("# gamma = { source = \"svc_digits_notebook.py\", call = \"svm.SVC\", arg = \"gamma\", values = [0.001, 0.01, 0.0001, 0.1, 1e-5] }"),
        "{text}"
    );
    assert_eq!(c.tweak.space.len(), 1, "{text}");
    let (text, c, _) = init(&[("knn_pandas.py", KNN)]);
    assert!(
        text.contains("n_neighbors = { source = \"knn_pandas.py\", call = \"KNeighborsClassifier\", arg = \"n_neighbors\", start = 1, max = 5, step = 1 }"),
        "{text}"
    );
    assert_eq!(
        c.tweak.space["weights"],
        Dimension::Values(vec![json!("uniform"), json!("distance")])
    );
}

#[test]
fn init_binds_argparse_defaults_and_says_which_scripts_it_considered() {
    let other = "from sklearn.svm import SVC\n\nif __name__ == \"__main__\":\n    SVC(C=1.0).fit([[0]], [0])\n";
    let (text, c, d) = init(&[("argparse_mlp.py", ARGPARSE), ("quick.py", other)]);
    assert_eq!(d.entry.as_deref(), Some("argparse_mlp.py"), "{text}");
    assert_eq!(d.considered, vec!["quick.py"]);
    assert!(text.contains("also considered: quick.py"), "{text}");
    assert!(
        text.contains("# lr = { source = \"argparse_mlp.py:14\", arg = \"default\", values = [0.01, 0.1, 0.001, 1.0, 0.0001] }"),
        "{text}"
    );
    assert!(
        text.contains("add \"--lr\", \"{lr}\" to `command`"),
        "{text}"
    );
    assert!(c.tweak.space.contains_key("epochs") && c.tweak.space.contains_key("hidden"));
    assert!(c.tweak.space.contains_key("C"), "{text}");
}

#[test]
fn init_keeps_the_plain_space_for_code_that_reads_params() {
    let src = "import json, os\nfrom sklearn.neighbors import KNeighborsClassifier\nP = json.loads(os.environ['MLOPS_PARAMS'])\nclf = KNeighborsClassifier(n_neighbors=P.get('k', 5))\nclf.fit(X, y)\n";
    let (text, _, d) = init(&[("train.py", src)]);
    assert!(d.reads_params);
    assert!(
        text.contains("\nk = { values = [15, 9, 5, 3, 1] }"),
        "{text}"
    );
}
