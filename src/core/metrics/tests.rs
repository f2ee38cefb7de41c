use super::*;

fn parser(name: &str) -> MetricParser {
    MetricParser::new(name, None).unwrap()
}

fn obs(epoch: Option<u32>, epochs: Option<u32>, value: f64) -> Option<Observation> {
    Some(Observation {
        epoch,
        epochs,
        value,
    })
}

#[test]
fn equals_pairs_anywhere_in_the_line() {
    let mut p = parser("accuracy");
    assert_eq!(
        p.feed("epoch 3/5 accuracy=0.8123 loss=0.52"),
        obs(Some(3), Some(5), 0.8123)
    );
    assert_eq!(p.feed("epoch=4 accuracy=0.81"), obs(Some(4), Some(5), 0.81));
    assert_eq!(
        p.feed("loss=0.3, accuracy = 0.9"),
        obs(Some(4), Some(5), 0.9)
    );
    assert_eq!(p.feed("loss=0.3"), None);
}

#[test]
fn metric_name_must_be_the_whole_key() {
    let mut p = parser("accuracy");
    assert_eq!(p.feed("val_accuracy=0.95 accuracy_top5=0.99"), None);
    assert_eq!(p.feed("train/accuracy=0.5 top.accuracy=0.4"), None);
    assert_eq!(
        p.feed("val_accuracy=0.95 accuracy=0.7"),
        obs(None, None, 0.7)
    );
    assert_eq!(p.feed("accuracy=0.9x"), None);
    assert_eq!(p.feed("accuracy: infinite"), None);
    assert_eq!(p.feed("accuracy improved"), None);
}

/// `accuracy=0,95` is neither 0 nor 95: no observation, and the parser says once what to print.
#[test]
fn a_decimal_comma_is_not_a_number() {
    let mut p = parser("accuracy");
    assert_eq!(p.feed("epoch 1/2 accuracy=0,95 loss=0,12"), None);
    assert_eq!(p.feed("accuracy: 0,91"), None);
    assert_eq!(p.feed("- accuracy: 1,234.5"), None);
    assert_eq!(
        p.malformed(),
        Some(
            "`accuracy` was reported as `0,95`, which is not a number (a decimal comma?): print \
                 it with a decimal point and no separators, `accuracy=0.95` (in Python, \
                 f\"{value:.4f}\" ignores the locale); this report was not recorded"
        )
    );
    assert!(p.take_malformed().is_some());
    assert_eq!(p.take_malformed(), None, "handed out once");
    // A comma that separates fields is not a decimal comma.
    assert_eq!(
        p.feed("{'accuracy': 0.95, 'loss': 0.1}"),
        obs(Some(1), Some(2), 0.95)
    );
    assert_eq!(p.feed("accuracy=1,loss=2"), obs(Some(1), Some(2), 1.0));
    assert_eq!(p.bare_last_line(), None);
    let mut bare = parser("accuracy");
    bare.feed("0,95");
    assert_eq!(bare.bare_last_line(), None, "a bare `0,95` is not 0");
    let mut custom = MetricParser::new("acc", Some(r"acc (?P<value>[0-9.,]+)")).unwrap();
    assert_eq!(custom.feed("acc 0,95"), None);
    assert!(custom.malformed().unwrap().contains("`acc=0.95`"));
}

#[test]
fn metric_name_is_matched_literally() {
    let mut p = parser("acc.top1");
    assert_eq!(p.feed("accXtop1=0.5"), None);
    assert_eq!(p.feed("acc.top1=0.5"), obs(None, None, 0.5));
}

#[test]
fn keras_progress_lines_use_epoch_context() {
    let mut p = parser("accuracy");
    assert_eq!(p.feed("Epoch 3/5"), None);
    let line = "1875/1875 [==============================] - 3s 2ms/step - loss: 0.2990 - accuracy: 0.9130 - val_loss: 0.14 - val_accuracy: 0.95";
    assert_eq!(p.feed(line), obs(Some(3), Some(5), 0.913));
    assert_eq!(p.feed("Epoch 4/5"), None);
    assert_eq!(
        p.feed("1875/1875 - 3s - loss: 0.2 - accuracy: 0.93"),
        obs(Some(4), Some(5), 0.93)
    );

    let mut val = parser("val_accuracy");
    assert_eq!(val.feed(line), obs(None, None, 0.95));
}

#[test]
fn keras_carriage_returns_keep_the_last_segment() {
    let mut p = parser("accuracy");
    let line = " 100/1875 [>....] - ETA: 5s - loss: 0.9 - accuracy: 0.50\r1875/1875 [=====] - 3s 2ms/step - loss: 0.29 - accuracy: 0.91\r";
    assert_eq!(p.feed(line), obs(None, None, 0.91));
    assert_eq!(p.feed("accuracy: 0.40\r 200/1875 [=>...] - ETA: 4s"), None);
}

#[test]
fn ansi_sequences_are_stripped() {
    let mut p = parser("accuracy");
    let line = "\x1b[1m1875/1875\x1b[0m \x1b[32m━━━━\x1b[0m \x1b[1m3s\x1b[0m 2ms/step - accuracy: \x1b[1m0.9130\x1b[0m - loss: 0.29\x1b[K";
    assert_eq!(p.feed(line), obs(None, None, 0.913));
    assert_eq!(p.feed("\x1b]0;title\x07accuracy=0.5"), obs(None, None, 0.5));
}

#[test]
fn json_lines() {
    let mut p = parser("accuracy");
    assert_eq!(
        p.feed(r#"{"epoch": 3, "accuracy": 0.81}"#),
        obs(Some(3), None, 0.81)
    );
    assert_eq!(
        p.feed(r#"{"epoch": 4, "epochs": 10, "loss": 0.2, "accuracy": 1}"#),
        obs(Some(4), Some(10), 1.0)
    );
    assert_eq!(p.feed(r#"{"epoch": 5, "val_accuracy": 0.9}"#), None);
    assert_eq!(p.feed(r#"{"epoch": 6, "accuracy": null}"#), None);
    assert_eq!(
        p.feed(r#"  {"metrics": {"accuracy": "81%"}}  "#),
        obs(Some(6), Some(10), 0.81)
    );
    // A string value is not scanned for `key=value` text.
    assert_eq!(p.feed(r#"{"msg": "accuracy=0.5"}"#), None);
}

#[test]
fn json_non_finite_values_as_strings_and_python_literals() {
    let mut p = parser("accuracy");
    let nan = p.feed(r#"{"epoch": 2, "accuracy": "NaN"}"#).unwrap();
    assert!(nan.value.is_nan());
    assert_eq!(nan.epoch, Some(2));
    let inf = p.feed(r#"{"accuracy": "Infinity"}"#).unwrap();
    assert_eq!(inf.value, f64::INFINITY);
    // `json.dumps(float("nan"))` writes a bare NaN, which serde_json rejects.
    let bare = p.feed(r#"{"epoch": 7, "accuracy": NaN}"#).unwrap();
    assert!(bare.value.is_nan());
    assert_eq!(bare.epoch, Some(7));
    let neg = p.feed(r#"{"accuracy": -Infinity}"#).unwrap();
    assert_eq!(neg.value, f64::NEG_INFINITY);
}

#[test]
fn python_dict_reprs() {
    let mut p = parser("accuracy");
    assert_eq!(
        p.feed("{'epoch': 2, 'accuracy': 0.75, 'val_accuracy': 0.7}"),
        obs(Some(2), None, 0.75)
    );
}

#[test]
fn epoch_forms() {
    let cases: [(&str, Option<u32>, Option<u32>); 9] = [
        ("epoch 3/5 accuracy=1", Some(3), Some(5)),
        ("Epoch 3/5 accuracy=1", Some(3), Some(5)),
        ("epoch=3 accuracy=1", Some(3), None),
        ("\"epoch\": 3, \"accuracy\": 1", Some(3), None),
        ("epoch: 3 accuracy=1", Some(3), None),
        ("epoch: 3/12 accuracy=1", Some(3), Some(12)),
        ("Epoch [3/5], Step [100/600], accuracy: 1", Some(3), Some(5)),
        ("epoch 3 of 5: accuracy=1", Some(3), Some(5)),
        ("epochs=10 num_epoch=4 accuracy=1", None, None),
    ];
    for (line, epoch, epochs) in cases {
        let mut p = parser("accuracy");
        assert_eq!(p.feed(line), obs(epoch, epochs, 1.0), "{line}");
    }
}

#[test]
fn epoch_without_total_keeps_the_known_total() {
    let mut p = parser("accuracy");
    p.feed("Epoch 1/20");
    assert_eq!(p.feed("epoch=2 accuracy=0.5"), obs(Some(2), Some(20), 0.5));
}

#[test]
fn value_forms() {
    let cases: [(&str, f64); 9] = [
        ("accuracy=1", 1.0),
        ("accuracy=0.8123", 0.8123),
        ("accuracy=.5", 0.5),
        ("accuracy=1e-3", 0.001),
        ("accuracy=2.5E+2", 250.0),
        ("accuracy=-0.25", -0.25),
        ("accuracy=81.2%", 0.812),
        ("accuracy: 95 %", 0.95),
        ("accuracy=+3", 3.0),
    ];
    for (line, want) in cases {
        let mut p = parser("accuracy");
        let got = p.feed(line).map(|o| o.value);
        let ok = got.is_some_and(|v| (v - want).abs() < 1e-12);
        assert!(ok, "{line}: got {got:?}, want {want}");
    }
}

#[test]
fn non_finite_values_are_returned() {
    let mut p = parser("loss");
    for line in ["loss=nan", "loss: NaN", "loss=NAN", "loss=-nan"] {
        let value = p.feed(line).map(|o| o.value);
        assert!(value.is_some_and(f64::is_nan), "{line}: {value:?}");
    }
    let cases = [
        ("loss=inf", f64::INFINITY),
        ("loss=-inf", f64::NEG_INFINITY),
        ("loss: Infinity", f64::INFINITY),
        ("loss=-Infinity - accuracy: 0.1", f64::NEG_INFINITY),
    ];
    for (line, want) in cases {
        assert_eq!(p.feed(line).map(|o| o.value), Some(want), "{line}");
    }
}

#[test]
fn final_line_is_an_observation() {
    let mut p = parser("accuracy");
    assert_eq!(p.feed("final accuracy=0.96"), obs(None, None, 0.96));
    p.feed("Epoch 5/5");
    assert_eq!(p.feed("final accuracy=0.97"), obs(Some(5), Some(5), 0.97));
}

#[test]
fn long_lines_are_cut_at_64_kib() {
    let mut p = parser("accuracy");
    let start = std::time::Instant::now();
    let long = format!("accuracy=0.5 {}", "x=1 ".repeat(25_000));
    assert!(long.len() > 100_000);
    assert_eq!(p.feed(&long), obs(None, None, 0.5));
    let beyond = format!("{} accuracy=0.9", "=".repeat(100_000));
    assert_eq!(p.feed(&beyond), None);
    let multibyte = format!("{}accuracy=0.9", "é".repeat(50_000));
    assert_eq!(p.feed(&multibyte), None);
    let colons = ": ".repeat(60_000);
    assert_eq!(p.feed(&colons), None);
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn custom_pattern_replaces_built_in_formats() {
    let mut p = MetricParser::new("accuracy", Some(r"val_acc (?P<value>[0-9.]+)")).unwrap();
    assert_eq!(p.feed("accuracy=0.5"), None);
    assert_eq!(p.feed("Epoch 2/4"), None);
    assert_eq!(p.feed("val_acc 0.875 (best)"), obs(Some(2), Some(4), 0.875));
    assert_eq!(p.feed("val_acc ."), None);
}

#[test]
fn custom_pattern_with_epoch_group() {
    let pattern = r"^it (?P<epoch>\d+)/(?P<epochs>\d+) score (?P<value>\S+)";
    let mut p = MetricParser::new("score", Some(pattern)).unwrap();
    assert_eq!(p.feed("it 7/9 score 42%"), obs(Some(7), Some(9), 0.42));
    let nan = p.feed("it 8/9 score nan").unwrap();
    assert!(nan.value.is_nan());
    assert_eq!(nan.epoch, Some(8));
}

/// `print(classification_report(y_test, predicted))` on the digits data set, exactly as
/// scikit-learn prints it.
const REPORT: &str = "              precision    recall  f1-score   support

           0       1.00      0.99      0.99        88
           1       0.99      0.97      0.98        91
           2       0.99      0.99      0.99        86
           3       0.98      0.87      0.92        91
           4       0.99      0.96      0.97        92
           5       0.95      0.97      0.96        91
           6       0.99      0.99      0.99        91
           7       0.96      0.99      0.97        89
           8       0.94      1.00      0.97        88
           9       0.93      0.98      0.95        92

    accuracy                           0.97       899
   macro avg       0.97      0.97      0.97       899
weighted avg       0.97      0.97      0.97       899
";

#[test]
fn classification_report_accuracy_row() {
    let mut p = parser("accuracy");
    let found: Vec<(usize, Observation)> = REPORT
        .lines()
        .enumerate()
        .filter_map(|(i, l)| p.feed(l).map(|o| (i, o)))
        .collect();
    assert_eq!(found, vec![(13, obs(None, None, 0.97).unwrap())]);
    assert_eq!(p.bare_last_line(), None, "the report counts as a report");
    // With more digits, and the accuracy row alone.
    let mut p = parser("accuracy");
    assert_eq!(
        p.feed("    accuracy                         0.9733       899"),
        obs(None, None, 0.9733)
    );
    // Rows that are not the accuracy row, and other metrics.
    for line in [
        "   macro avg       0.97      0.97      0.97       899",
        "weighted avg       0.97      0.97      0.97       899",
        "    accuracy       0.97      0.97      0.97       899",
        "    accuracy                           0.97",
        "    accuracy                           0.97       899 samples",
        "val accuracy 0.97 899",
    ] {
        assert_eq!(parser("accuracy").feed(line), None, "{line}");
    }
    let mut f1 = parser("f1-score");
    assert!(REPORT.lines().all(|l| f1.feed(l).is_none()));
    let mut custom = MetricParser::new("accuracy", Some(r"acc (?P<value>\S+)")).unwrap();
    assert!(REPORT.lines().all(|l| custom.feed(l).is_none()));
}

#[test]
fn a_bare_number_on_the_last_line_when_nothing_reported() {
    let mut p = parser("accuracy");
    for line in [
        "Loading digits",
        "fitting SVC(gamma=0.001)",
        "0.9733",
        "",
        "  ",
    ] {
        assert_eq!(p.feed(line), None, "{line}");
    }
    assert_eq!(p.bare_last_line(), Some(0.9733));
    p.feed("done");
    assert_eq!(p.bare_last_line(), None, "only the last line counts");
    let mut pct = parser("accuracy");
    pct.feed("\x1b[1m97.3 %\x1b[0m");
    assert_eq!(pct.bare_last_line(), Some(0.973));

    let mut reported = parser("accuracy");
    reported.feed("accuracy=0.5");
    reported.feed("0.97");
    assert_eq!(reported.bare_last_line(), None, "a metric line was printed");
    let mut custom = MetricParser::new("accuracy", Some(r"acc (?P<value>\S+)")).unwrap();
    custom.feed("0.97");
    assert_eq!(custom.bare_last_line(), None, "a pattern says what counts");
    let mut words = parser("accuracy");
    words.feed("0.97 on the test set");
    assert_eq!(words.bare_last_line(), None);
    assert_eq!(bare_number("1e-3"), Some(0.001));
    assert_eq!(bare_number("[0.97]"), None);
}

#[test]
fn custom_pattern_errors() {
    assert!(MetricParser::new("accuracy", Some("(unclosed")).is_err());
    let err = MetricParser::new("accuracy", Some(r"acc (\d+)")).unwrap_err();
    assert!(err.to_string().contains("value"), "{err}");
}
