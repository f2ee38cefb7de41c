//! Metric extraction from a training container's stdout, one line at a time.
//!
//! Training scripts report metrics in a few conventional shapes: `key=value` pairs, Keras progress
//! lines (`- accuracy: 0.91`), and JSON lines. The parser recognises all of them for one metric name
//! and keeps the epoch context (`Epoch 3/5` printed on its own line by Keras) across lines, so that an
//! observation can be attributed to the epoch that produced it.
//!
//! Non-finite values (`nan`, `inf`) are returned as such: a diverging run is information the caller
//! must see, never a line to skip.
//!
//! Two more shapes are understood by default because scripts written for people print them:
//! scikit-learn's `classification_report`, whose `accuracy` row carries the value then the support
//! (`    accuracy                           0.97       899`), and a bare number on the last line
//! (`print(score)`), taken only when no line of the whole run reported the metric
//! ([`MetricParser::bare_last_line`]).
//!
//! A report whose value is not a number as written is never read as one: `accuracy=0,95` (a decimal
//! comma, as some locales print) is neither 0 nor 95. The parser keeps the first such report, with a
//! sentence saying what to print instead ([`MetricParser::malformed`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

/// Only this many bytes of a line are examined, so a pathological line (a progress bar that never
/// prints a newline, a dumped tensor) costs bounded time.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A metric value as printed: decimal or exponent notation, an optional `%` (scaled by 1/100), or a
/// spelling of NaN or infinity. `infinity` precedes `inf` because the regex alternation is
/// leftmost-first.
const VALUE: &str =
    r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?:\s*%)?|(?i:nan|infinity|inf))";

/// `epoch 3/5`, `Epoch [3/5]`, `epoch=3`, `epoch: 3`, `"epoch": 3`, `epoch 3 of 5`; the leading
/// class keeps `num_epoch=3` or `max_epoch: 9` from counting, and `epochs=10` fails because a digit
/// must follow the word.
#[allow(
    clippy::expect_used,
    reason = "a literal pattern, compiled by every test"
)]
static EPOCH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[^\w])["']?epoch["']?\s*[:=]?\s*[\[(]?\s*(?P<epoch>[0-9]+)(?:\s*(?:/|of)\s*(?P<total>[0-9]+))?"#,
    )
    .expect("epoch regex is valid")
});

/// CSI sequences (colours, cursor moves, line erase), OSC sequences (terminal titles, hyperlinks) and
/// two-byte escapes.
#[allow(
    clippy::expect_used,
    reason = "a literal pattern, compiled by every test"
)]
static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
        .expect("ANSI regex is valid")
});

/// The `accuracy` row of scikit-learn's `classification_report`: the name, the value, the support
/// (an integer) and nothing else. Per-class rows and the `macro avg` / `weighted avg` rows carry
/// three values before the support, so they never match.
#[allow(
    clippy::expect_used,
    reason = "a literal pattern, compiled by every test"
)]
static REPORT_ACCURACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^\s*accuracy\s+(?P<value>{VALUE})\s+[0-9]+\s*$"))
        .expect("report regex is valid")
});

/// A line that is one number and nothing else (`0.9733`, `97.3 %`).
#[allow(
    clippy::expect_used,
    reason = "a literal pattern, compiled by every test"
)]
static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^\s*(?P<value>{VALUE})\s*$")).expect("bare number regex is valid")
});

/// The name of the metric scikit-learn's `classification_report` prints as a row of its own.
const REPORT_METRIC: &str = "accuracy";

/// JSON keys accepted as the total number of epochs beside `"epoch"`.
const TOTAL_EPOCH_KEYS: [&str; 3] = ["epochs", "total_epochs", "num_epochs"];

/// How deep into nested JSON objects the metric key is looked for (`{"metrics": {"accuracy": …}}`).
const JSON_DEPTH: usize = 2;

/// Parses one run's output: the epoch context belongs to a single log stream, so each container
/// gets its own parser.
#[derive(Debug, Clone)]
pub struct MetricParser {
    name: String,
    format: Format,
    epoch: Option<u32>,
    epochs: Option<u32>,
    /// Whether any line fed so far reported the metric.
    reported: bool,
    /// The last non-empty line fed, as a terminal shows it.
    last_line: String,
    /// The first report of the metric whose value is not a number as written, as a sentence for
    /// people, and whether [`MetricParser::take_malformed`] has handed it out yet.
    malformed: Option<(String, bool)>,
}

#[derive(Debug, Clone)]
enum Format {
    /// `pair` matches `name=value` and `name: value`, with the key optionally quoted; `report` is set
    /// when the metric is the one `classification_report` prints as a row.
    BuiltIn { pair: Regex, report: bool },
    /// A user regex with a `value` group and optional `epoch` / `epochs` groups.
    Custom(Regex),
}

/// One reported value of the metric. `epoch`/`epochs` come from the line itself or, failing that,
/// from the most recent line that named an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub epoch: Option<u32>,
    pub epochs: Option<u32>,
    pub value: f64,
}

impl MetricParser {
    /// `name` is the metric (e.g. "accuracy"); `pattern` an optional regex with a named group `value`
    /// (and optionally `epoch`), which replaces the built-in formats when given.
    ///
    /// Epoch context is still tracked from the built-in epoch forms when a pattern is given, since it
    /// does not depend on how the metric is printed; an `epoch` group in the pattern overrides it.
    pub fn new(name: &str, pattern: Option<&str>) -> Result<Self, regex::Error> {
        let format = match pattern {
            Some(pattern) => {
                let re = Regex::new(pattern)?;
                if !re.capture_names().flatten().any(|n| n == "value") {
                    return Err(regex::Error::Syntax(format!(
                        "metric pattern `{pattern}` has no named group `value`; write it as (?P<value>…)"
                    )));
                }
                Format::Custom(re)
            }
            None => {
                // The key must be the whole key: not preceded by an identifier character or a
                // namespace separator (`val_accuracy`, `train/accuracy`), and followed by the
                // separator (`accuracy_top5` fails there).
                let pair = Regex::new(&format!(
                    r#"(?:^|[^\w./-])["']?{}["']?\s*[:=]\s*["']?(?P<value>{VALUE})"#,
                    regex::escape(name)
                ))?;
                Format::BuiltIn {
                    pair,
                    report: name == REPORT_METRIC,
                }
            }
        };
        Ok(Self {
            name: name.to_owned(),
            format,
            epoch: None,
            epochs: None,
            reported: false,
            last_line: String::new(),
            malformed: None,
        })
    }

    /// The first report fed whose value is not a number as written (`accuracy=0,95`), as a sentence
    /// that says what to print instead; that report gave no observation.
    pub fn malformed(&self) -> Option<&str> {
        self.malformed.as_ref().map(|(hint, _)| hint.as_str())
    }

    /// [`MetricParser::malformed`] the first time it is asked after such a report, then `None`: a
    /// caller that says so once per stream.
    pub fn take_malformed(&mut self) -> Option<String> {
        match &mut self.malformed {
            Some((hint, taken @ false)) => {
                *taken = true;
                Some(hint.clone())
            }
            _ => None,
        }
    }

    fn note_malformed(&mut self, written: &str) {
        if self.malformed.is_none() {
            self.malformed = Some((not_a_number(&self.name, written), false));
        }
    }

    /// The value of the last non-empty line fed when that line is a bare number and no line fed
    /// reported the metric: the fallback for scripts that end with `print(score)`. Only with the
    /// built-in formats: a pattern of the user's says exactly what counts. The caller checks the
    /// value against the metric's range.
    pub fn bare_last_line(&self) -> Option<f64> {
        if self.reported || matches!(self.format, Format::Custom(_)) {
            return None;
        }
        bare_number(&self.last_line)
    }

    /// Feeds one log line; returns the metric value if this line reports it. Keeps epoch context across lines.
    pub fn feed(&mut self, line: &str) -> Option<Observation> {
        let text = visible_text(line);
        if !text.trim().is_empty() {
            self.last_line.clear();
            self.last_line.push_str(&text);
        }
        let json = match self.format {
            Format::BuiltIn { .. } => json_object(&text),
            Format::Custom(_) => None,
        };
        match &json {
            Some(object) => self.note_json_epoch(object),
            None => self.note_epoch(&text),
        }
        let value = match (&self.format, &json) {
            (_, Some(object)) => json_metric(object, &self.name, JSON_DEPTH),
            (Format::BuiltIn { pair, report }, None) => match find_pair(pair, &text) {
                Pair::Value(v) => Some(v),
                Pair::NotANumber(written) => {
                    self.note_malformed(&written);
                    None
                }
                Pair::None => report.then(|| report_accuracy(&text)).flatten(),
            },
            (Format::Custom(re), None) => {
                let caps = re.captures(&text)?;
                let written = caps.name("value").map(|m| m.as_str().to_string());
                let value = written.as_deref().and_then(parse_value);
                if let (None, Some(w)) = (value, written.as_deref()) {
                    self.note_malformed(w);
                }
                if let Some(epoch) = group_u32(&caps, "epoch") {
                    let total = group_u32(&caps, "epochs");
                    self.set_epoch(epoch, total);
                }
                value
            }
        }?;
        self.reported = true;
        Some(Observation {
            epoch: self.epoch,
            epochs: self.epochs,
            value,
        })
    }

    /// A line that names an epoch without a total keeps the previous total: scripts print the total
    /// once (or on some lines only) while it does not change during a run.
    fn set_epoch(&mut self, epoch: u32, total: Option<u32>) {
        self.epoch = Some(epoch);
        if total.is_some() {
            self.epochs = total;
        }
    }

    fn note_epoch(&mut self, text: &str) {
        if let Some(caps) = EPOCH.captures(text)
            && let Some(epoch) = group_u32(&caps, "epoch")
        {
            self.set_epoch(epoch, group_u32(&caps, "total"));
        }
    }

    fn note_json_epoch(&mut self, object: &Map<String, Value>) {
        if let Some(epoch) = object.get("epoch").and_then(json_u32) {
            let total = TOTAL_EPOCH_KEYS
                .iter()
                .find_map(|k| object.get(*k).and_then(json_u32));
            self.set_epoch(epoch, total);
        }
    }
}

/// What a terminal would show of the line: the first [`MAX_LINE_BYTES`], the last non-blank `\r`
/// segment (progress bars redraw themselves with `\r`), without ANSI escape sequences.
fn visible_text(line: &str) -> Cow<'_, str> {
    let mut end = line.len().min(MAX_LINE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let line = &line[..end];
    let segment = line
        .rsplit('\r')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    ANSI.replace_all(segment, "")
}

/// What [`find_pair`] found on a line.
enum Pair {
    Value(f64),
    /// The metric was reported with this, which is not a number as written (`0,95`).
    NotANumber(String),
    None,
}

/// Returns the first occurrence whose value is a whole token: `accuracy=0.9x` or `accuracy: infinite`
/// are not values. A value followed by a comma and a digit (`accuracy=0,95`, `loss=1,234.5`) is a
/// decimal comma or a thousands separator: not a number as written, and never read as its first
/// part.
fn find_pair(pair: &Regex, text: &str) -> Pair {
    for caps in pair.captures_iter(text) {
        let Some(m) = caps.name("value") else {
            continue;
        };
        let rest = &text[m.end()..];
        let next = rest.chars().next();
        if next == Some(',') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            let tail = rest
                .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.'))
                .unwrap_or(rest.len());
            return Pair::NotANumber(format!("{}{}", m.as_str(), &rest[..tail]));
        }
        if next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(v) = parse_value(m.as_str()) {
            return Pair::Value(v);
        }
    }
    Pair::None
}

/// The sentence for a report of `name` written as `written`, which is not a number.
fn not_a_number(name: &str, written: &str) -> String {
    let fix = if written.contains(',') {
        let digits: String = if written.contains('.') {
            written.replace(',', "")
        } else {
            written.replace(',', ".")
        };
        format!(
            " (a decimal comma?): print it with a decimal point and no separators, `{name}={digits}` \
             (in Python, f\"{{value:.4f}}\" ignores the locale)"
        )
    } else {
        ": print a plain number, e.g. `{name}=0.95`".replace("{name}", name)
    };
    format!(
        "`{name}` was reported as `{written}`, which is not a number{fix}; this report was not recorded"
    )
}

/// The value of a `classification_report`'s `accuracy` row.
fn report_accuracy(text: &str) -> Option<f64> {
    let caps = REPORT_ACCURACY.captures(text)?;
    parse_value(caps.name("value")?.as_str())
}

/// The value of a line that holds one number and nothing else (`0.9733`, `97.3%`, `nan`).
pub fn bare_number(line: &str) -> Option<f64> {
    let caps = BARE.captures(line)?;
    parse_value(caps.name("value")?.as_str())
}

fn json_object(text: &str) -> Option<Map<String, Value>> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return None;
    }
    match serde_json::from_str(trimmed) {
        Ok(Value::Object(map)) => Some(map),
        // Python's `json.dumps` writes bare `NaN`/`Infinity`, which is not JSON: such lines fall
        // back to the key/value scanner, which reads `"accuracy": NaN`.
        _ => None,
    }
}

fn json_metric(object: &Map<String, Value>, name: &str, depth: usize) -> Option<f64> {
    if let Some(value) = object.get(name) {
        return match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_value(s),
            _ => None,
        };
    }
    if depth == 0 {
        return None;
    }
    object.values().find_map(|v| match v {
        Value::Object(inner) => json_metric(inner, name, depth - 1),
        _ => None,
    })
}

fn json_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn group_u32(caps: &Captures<'_>, name: &str) -> Option<u32> {
    caps.name(name).and_then(|m| m.as_str().trim().parse().ok())
}

/// Parses one printed value: a trailing `%` divides by 100; `nan`/`inf`/`infinity` in any case and
/// with an optional sign become the corresponding non-finite `f64`.
fn parse_value(text: &str) -> Option<f64> {
    let text = text.trim().trim_matches(|c| c == '"' || c == '\'');
    let (number, percent) = match text.strip_suffix('%') {
        Some(number) => (number.trim_end(), true),
        None => (text, false),
    };
    // Rust's float parser accepts `nan`, `inf` and `infinity` case-insensitively with a sign.
    let value: f64 = number.parse().ok()?;
    Some(if percent { value / 100.0 } else { value })
}

#[cfg(test)]
mod tests {
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
}
