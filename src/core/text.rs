//! Words for people: parameters, metric values and durations. The dashboard, the headless output, the
//! engine's event texts and `history` all format through here, so the same thing reads the same
//! everywhere. Pure: callers pass the times.
//!
//! Where one presentation does not fit every place, the alternatives are named variants below
//! (`value_short`, `value_significant`, `params_spaced`, `duration_whole`), never separate copies.

use serde_json::Value;

use crate::core::config::Params;

/// One parameter value: strings bare (`adam`, not `"adam"`), a missing value as `unset`, numbers and
/// booleans as JSON writes them.
pub fn param_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "unset".into(),
        other => other.to_string(),
    }
}

/// Parameters as `a=1, b=0.05, c=adam`, in name order; empty for no parameters.
pub fn params(p: &Params) -> String {
    params_joined(p, ", ")
}

/// Parameters as `a=1 b=0.05 c=adam`: the form for table cells, where commas only add width.
pub fn params_spaced(p: &Params) -> String {
    params_joined(p, " ")
}

fn params_joined(p: &Params, separator: &str) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={}", param_value(v)))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A metric value with exactly four decimals (`0.9600`), so that values in a column or a stream of
/// event lines line up. NaN and infinities are spelled `NaN`, `inf`, `-inf`; a value that rounds to
/// zero has no minus sign; one too large or too small for decimals reads in exponent form (see
/// [`exponent_form`]).
pub fn value(v: f64) -> String {
    if let Some(s) = non_finite(v).or_else(|| exponent_form(v, DECIMALS_TINY)) {
        return s;
    }
    unsigned_zero(format!("{v:.4}"))
}

/// A metric value with at most four decimals and no trailing zeros (`0.96`, `0.8312`, `12`): the form
/// for tables read one row at a time. Huge and tiny values as in [`value`].
pub fn value_short(v: f64) -> String {
    if let Some(s) = non_finite(v).or_else(|| exponent_form(v, DECIMALS_TINY)) {
        return s;
    }
    let fixed = format!("{v:.4}");
    unsigned_zero(
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    )
}

/// A metric value with four significant digits (`0.8312`, `1235`, `0.0001235`): the form for
/// sentences about a value whose scale is unknown, such as a loss close to zero.
pub fn value_significant(v: f64) -> String {
    if let Some(s) = non_finite(v).or_else(|| exponent_form(v, SIGNIFICANT_TINY)) {
        return s;
    }
    let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    unsigned_zero(rounded.to_string())
}

/// From this magnitude on, a number is written with an exponent: in plain decimals `1e308` is 309
/// digits, and even `12345678901.5` is hard to read.
const HUGE: f64 = 1e9;
/// Below this magnitude a value would show as `0.0000` with four decimals: its exponent form says
/// what it is (a loss of `2e-7` is not zero).
const DECIMALS_TINY: f64 = 0.000_05;
/// Below this magnitude, four significant digits in plain decimals start with six zeros.
const SIGNIFICANT_TINY: f64 = 1e-6;

/// `1e308`, `-1.235e12`, `2e-7`: four significant digits and an exponent, for a finite non-zero
/// value of magnitude at least [`HUGE`] or below `tiny`; `None` for every other value.
fn exponent_form(v: f64, tiny: f64) -> Option<String> {
    let magnitude = v.abs();
    if v == 0.0 || (magnitude < HUGE && magnitude >= tiny) {
        return None;
    }
    let s = format!("{v:.3e}");
    let (mantissa, exponent) = s.split_once('e')?;
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    Some(format!("{mantissa}e{exponent}"))
}

/// `NaN`, `inf` or `-inf` for values that are not numbers people can read; `None` for finite ones.
fn non_finite(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        None
    }
}

/// Drops the sign of a formatted zero (`-0`, `-0.0000`): a tiny negative that rounds away is not
/// negative to the reader.
fn unsigned_zero(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// A duration that may still be growing: tenths of a second below ten seconds, so that a live
/// counter visibly moves (`0.4s`, `9.9s`), then `42s`, `3m04s`, `1h02m`. Negative spans (clock
/// skew) read as zero.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        minutes_and_up(ms)
    }
}

/// A finished duration in whole units: `850ms` below a second, then `4s`, `42s`, `3m05s`, `1h02m`.
/// A negative span (clock skew) is `-`, since no value would be true.
pub fn duration_whole(ms: i64) -> String {
    if ms < 0 {
        "-".into()
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        minutes_and_up(ms)
    }
}

/// Whole seconds below a minute, then minutes and seconds, then hours and minutes. `ms` is not negative.
fn minutes_and_up(ms: i64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

/// The elapsed time of something that started at `start` and finished at `end`, or is still going at
/// `now`; `None` when it has not started.
pub fn elapsed(start: Option<i64>, end: Option<i64>, now: i64) -> Option<String> {
    start.map(|s| duration(end.unwrap_or(now) - s))
}

/// How long ago `at` was: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(now: i64, at: i64) -> String {
    let s = (now - at).max(0) / 1000;
    if s < 60 {
        format!("{s}s ago")
    } else if s < 3600 {
        format!("{}m ago", s / 60)
    } else if s < 86_400 {
        format!("{}h ago", s / 3600)
    } else {
        format!("{}d ago", s / 86_400)
    }
}

/// What a terminal would show for `raw`: escape sequences and control characters removed, tabs
/// expanded, only the last `\r`-separated segment kept (progress bars), and at most `max` bytes (the
/// rest is replaced by a note of how much was cut). Training output passes through this before it
/// reaches the dashboard, so a script cannot retitle the terminal, write the clipboard (OSC 52), clear
/// it or switch screens.
pub fn visible(raw: &str, max: usize) -> String {
    sanitize(raw, max, Controls::Drop)
}

/// `raw` made safe to write to any stdout, a terminal or a pipe that may end in one (`| tee`,
/// `tail -f` of a log): as [`visible`], except that what a terminal would act on is shown rather
/// than removed, so a log still says what the script tried. ESC is written `\e`, BEL `\a`, NUL
/// `\0`, other controls `\xNN` (C0 and DEL) or `\u{NN}` (C1), e.g. `\e]52;c;ZXZpbA==\a` for a
/// clipboard write; colour sequences (`ESC [ … m`) are dropped, since they only style text. Printable
/// text (accents, CJK, emoji) is kept as it is, tabs are expanded to spaces.
///
/// Invariant: the result holds no character for which `char::is_control` is true.
pub fn escaped(raw: &str) -> String {
    sanitize(raw, usize::MAX, Controls::Show)
}

/// Every line of `text` through [`escaped`], the line breaks kept: for multi-line texts (a table, an
/// error quoting a file's line) that reach stdout or stderr.
pub fn escaped_lines(text: &str) -> String {
    text.split('\n').map(escaped).collect::<Vec<_>>().join("\n")
}

/// What [`sanitize`] does with escape sequences and control characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Controls {
    /// Removed, as a terminal shows nothing for them.
    Drop,
    /// Written as visible escapes (`\e`, `\a`, `\x01`), colour sequences dropped.
    Show,
}

/// The one sanitiser behind [`visible`] and [`escaped`].
fn sanitize(raw: &str, max: usize, controls: Controls) -> String {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let raw = match raw.rfind('\r') {
        Some(i) => &raw[i + 1..],
        None => raw,
    };
    let needs_work = raw.len() > max || raw.chars().any(char::is_control);
    if !needs_work {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len().min(max.saturating_add(32)));
    let mut chars = raw.chars().peekable();
    let mut col = 0usize;
    while let Some(c) = chars.next() {
        if out.len() >= max {
            let rest = raw.len().saturating_sub(out.len());
            out.push_str(&format!(" … [{rest} more bytes cut]"));
            break;
        }
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\u{1b}' if controls == Controls::Drop => skip_escape(&mut chars),
            '\u{1b}' if skip_colour(&mut chars) => {}
            c if c.is_control() => {
                if controls == Controls::Show {
                    let shown = control_name(c);
                    col += shown.chars().count();
                    out.push_str(&shown);
                }
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// Skips a colour sequence (`ESC [ 1;31 m`) right after ESC and says so; anything else is left
/// unread.
fn skip_colour(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let mut ahead = chars.clone();
    if ahead.next() != Some('[') {
        return false;
    }
    for c in ahead.by_ref() {
        match c {
            '0'..='9' | ';' | ':' => {}
            'm' => {
                *chars = ahead;
                return true;
            }
            _ => return false,
        }
    }
    false
}

/// A control character as people can read it: `\e`, `\a`, `\0`, `\x0b`, `\x7f`, `\u{9b}`.
fn control_name(c: char) -> String {
    match c {
        '\u{1b}' => "\\e".into(),
        '\u{7}' => "\\a".into(),
        '\0' => "\\0".into(),
        '\u{8}' => "\\b".into(),
        '\r' => "\\r".into(),
        '\n' => "\\n".into(),
        c if (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:x}}}", c as u32),
    }
}

/// Skips one escape sequence after ESC: CSI (`ESC [ … final`), OSC (`ESC ] … BEL|ESC \\`) or a
/// two-character escape.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        _ => {}
    }
}

/// One source edit on a line: `train.py:64  − clf = svm.SVC(gamma=0.001)  + clf = svm.SVC(gamma=0.01)`
/// (an inserted line has no `−` part, a removed one no `+` part). Leading indentation is dropped.
pub fn source_edit(e: &crate::core::knobs::SourceEdit) -> String {
    let mut out = format!("{}:{}", e.file, e.line);
    if !e.old.is_empty() {
        out.push_str(&format!("  − {}", e.old.trim()));
    }
    if !e.new.is_empty() {
        out.push_str(&format!("  + {}", e.new.trim()));
    }
    out
}

/// An error with its causes, `a: b: c`, each cause left out when the text before already holds it.
/// A library's top message often says little ("error sending request", "client error (Connect)");
/// the cause deep in the chain ("Connection refused (os error 111)") says what to fix.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Params {
        [
            ("filters".to_string(), json!(16)),
            ("lr".to_string(), json!(0.05)),
            ("optimizer".to_string(), json!("adam")),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn durations() {
        assert_eq!(duration(400), "0.4s");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(3_720_000), "1h02m");
        assert_eq!(ago(100_000, 40_000), "1m ago");
        assert_eq!(value(f64::NAN), "NaN");
    }

    #[test]
    fn durations_live_and_whole() {
        assert_eq!(duration(-5), "0.0s");
        assert_eq!(duration(9_949), "9.9s");
        assert_eq!(duration(10_000), "10s");
        assert_eq!(duration_whole(-5), "-");
        assert_eq!(duration_whole(850), "850ms");
        assert_eq!(duration_whole(4_900), "4s");
        assert_eq!(duration_whole(185_000), "3m05s");
        assert_eq!(duration_whole(3_720_000), "1h02m");
        assert_eq!(elapsed(None, None, 5), None);
        assert_eq!(elapsed(Some(1_000), None, 1_400).as_deref(), Some("0.4s"));
        assert_eq!(ago(0, 90_000_000), "0s ago");
        assert_eq!(ago(2 * 86_400_000, 0), "2d ago");
    }

    #[test]
    fn values() {
        assert_eq!(value(0.96), "0.9600");
        assert_eq!(value(-0.000001), "-1e-6");
        assert_eq!(value(0.00004), "4e-5");
        assert_eq!(value(0.00005), "0.0001");
        assert_eq!(value(-0.5), "-0.5000");
        assert_eq!(value(f64::INFINITY), "inf");
        assert_eq!(value(f64::NEG_INFINITY), "-inf");
        assert_eq!(value_short(0.95), "0.95");
        assert_eq!(value_short(12.0), "12");
        assert_eq!(value_short(-0.00001), "-1e-5");
        assert_eq!(value_short(-0.00006), "-0.0001");
        assert_eq!(value_short(f64::NAN), "NaN");
        assert_eq!(value_significant(0.83124), "0.8312");
        assert_eq!(value_significant(1234.6), "1235");
        assert_eq!(value_significant(0.000123456), "0.0001235");
        assert_eq!(value_significant(-0.0), "0");
        assert_eq!(value_significant(f64::NEG_INFINITY), "-inf");
    }

    /// Numbers too large or too small for decimals read in exponent form, never as a wall of digits
    /// or as a zero that is not one.
    #[test]
    fn huge_and_tiny_values_read_with_an_exponent() {
        for f in [value, value_short, value_significant] {
            assert_eq!(f(1e308), "1e308");
            assert_eq!(f(-1.7976931348623157e308), "-1.798e308");
            assert_eq!(f(12_345_678_901.5), "1.235e10");
            assert_eq!(f(5e-324), "4.941e-324");
        }
        assert_eq!(value(0.0), "0.0000");
        assert_eq!(value_short(0.0), "0");
        assert_eq!(value(999_999_999.0), "999999999.0000");
        assert_eq!(value_short(123_456_789.25), "123456789.25");
        assert_eq!(value_significant(2.5e-7), "2.5e-7");
        assert_eq!(value_significant(0.0000012346), "0.000001235");
    }

    /// What hostile output tries on a terminal, shown rather than acted on: a window title (OSC 0),
    /// a clipboard write (OSC 52), a screen clear, a cursor report request (which makes the terminal
    /// type a reply into the shell), NUL, BEL, a C1 CSI. Colours go; text and tabs stay readable.
    #[test]
    fn escaped_shows_what_a_terminal_would_act_on() {
        let hostile = "\u{1b}]0;owned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}[6n\0x\u{9b}31m \u{1b}[1;31mred\u{1b}[0m";
        let out = escaped(hostile);
        assert_eq!(
            out,
            "\\e]0;owned\\a\\e]52;c;ZXZpbA==\\a\\e[2J\\e[6n\\0x\\u{9b}31m red"
        );
        assert!(!out.chars().any(char::is_control), "{out:?}");
        assert_eq!(escaped("café 精度 ✓ a\tb"), "café 精度 ✓ a     b");
        assert_eq!(escaped("plain accuracy=0.5"), "plain accuracy=0.5");
        assert_eq!(escaped("10%\r50%\r100%\r"), "100%");
        assert_eq!(escaped("\u{7f}\u{1}"), "\\x7f\\x01");
        // The dashboard's form removes the same sequences.
        assert_eq!(visible(hostile, usize::MAX), "x31m red");
    }

    #[test]
    fn parameters() {
        assert_eq!(params(&sample()), "filters=16, lr=0.05, optimizer=adam");
        assert_eq!(
            params_spaced(&sample()),
            "filters=16 lr=0.05 optimizer=adam"
        );
        assert_eq!(params(&Params::new()), "");
        assert_eq!(param_value(&Value::Null), "unset");
        assert_eq!(param_value(&json!(true)), "true");
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn error_chain_names_each_cause_once() {
        let refused = Layer("Connection refused (os error 111)", None);
        let connect = Layer(
            "connection error: Connection refused (os error 111)",
            Some(Box::new(refused)),
        );
        let top = Layer("error sending request", Some(Box::new(connect)));
        assert_eq!(
            error_chain(&top),
            "error sending request: connection error: Connection refused (os error 111)"
        );
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }
}
