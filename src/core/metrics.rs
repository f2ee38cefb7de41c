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
mod tests;
