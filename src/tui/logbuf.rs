//! Container output as the dashboard keeps it: a bounded scrollback per iteration.
//!
//! Lines are cleaned (terminal escapes and control characters removed, `\r` progress updates reduced
//! to what a terminal would show), classified and stamped once, on arrival; drawing only picks the
//! visible window. Lines are addressed by a sequence number that keeps counting as old lines are
//! dropped, so a scrolled-back view stays on the same line while new output pushes old output out.
//!
//! Retention: at most `cap` lines and [`MAX_BYTES`] of text; the oldest go first and are counted in
//! [`LogBuffer::dropped`]. A single line keeps at most [`MAX_LINE`] bytes.

use std::collections::VecDeque;

use crate::core::text;

/// Longest line kept, in bytes; the cut is marked.
pub const MAX_LINE: usize = 16 * 1024;
/// Text kept per iteration, whatever the line count.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Fixed cost counted per line besides its text, so that a flood of empty lines is bounded too.
const LINE_OVERHEAD: usize = 48;

/// How a line is tinted, decided once on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineClass {
    Out,
    Err,
    Warn,
    /// Reports the metric (`epoch 3/5 accuracy=0.81`, `final accuracy=…`).
    Metric,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the dashboard received the line (Unix ms).
    pub at_ms: i64,
    pub text: String,
    pub class: LineClass,
    /// Every character is one column wide (ASCII), so widths are byte counts.
    pub narrow: bool,
}

#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<Entry>,
    dropped: u64,
    cap: usize,
    bytes: usize,
}

impl LogBuffer {
    pub fn new(cap: usize) -> LogBuffer {
        LogBuffer {
            lines: VecDeque::new(),
            dropped: 0,
            cap: cap.max(1),
            bytes: 0,
        }
    }

    pub fn push(&mut self, at_ms: i64, stderr: bool, raw: &str) {
        let text = clean(raw);
        let class = classify(&text, stderr);
        let narrow = text.is_ascii();
        self.bytes += text.len() + LINE_OVERHEAD;
        self.lines.push_back(Entry {
            at_ms,
            text,
            class,
            narrow,
        });
        while self.lines.len() > self.cap || (self.bytes > MAX_BYTES && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.text.len() + LINE_OVERHEAD;
                self.dropped += 1;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Lines pushed out by the caps so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Sequence number of the oldest line kept.
    pub fn first_seq(&self) -> u64 {
        self.dropped
    }

    /// Sequence number of the newest line, if any.
    pub fn last_seq(&self) -> Option<u64> {
        (!self.lines.is_empty()).then(|| self.dropped + self.lines.len() as u64 - 1)
    }

    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let i = seq.checked_sub(self.dropped)?;
        self.lines.get(usize::try_from(i).ok()?)
    }

    /// Clamps `seq` into the kept range.
    pub fn clamp(&self, seq: u64) -> u64 {
        match self.last_seq() {
            None => self.dropped,
            Some(last) => seq.clamp(self.dropped, last),
        }
    }

    /// Bytes of text held (with the per-line overhead), for the memory bound.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The next line after (`forward`) or before `from` that contains `query`, wrapping around.
    pub fn find(&self, query: &str, from: u64, forward: bool) -> Option<u64> {
        let last = self.last_seq()?;
        let n = self.lines.len() as u64;
        let from = self.clamp(from);
        (1..=n)
            .map(|step| {
                let off = from - self.dropped;
                let i = if forward {
                    (off + step) % n
                } else {
                    (off + n - step % n) % n
                };
                self.dropped + i
            })
            .find(|&seq| {
                self.get(seq)
                    .is_some_and(|e| !match_ranges(&e.text, query).is_empty())
            })
            .filter(|s| *s <= last)
    }

    /// Number of lines holding `query` and the 1-based rank of `at` among them (0 if `at` holds none).
    pub fn match_count(&self, query: &str, at: u64) -> (usize, usize) {
        let mut count = 0;
        let mut rank = 0;
        for (i, e) in self.lines.iter().enumerate() {
            if !match_ranges(&e.text, query).is_empty() {
                count += 1;
                if self.dropped + i as u64 == at {
                    rank = count;
                }
            }
        }
        (count, rank)
    }

    /// Everything kept, one line each, for saving to a file.
    pub fn to_text(&self, timestamps: bool) -> String {
        let mut out = String::with_capacity(self.bytes);
        for e in &self.lines {
            if timestamps {
                out.push_str(&clock(e.at_ms));
                out.push(' ');
            }
            out.push_str(&e.text);
            out.push('\n');
        }
        out
    }
}

/// `HH:MM:SS.mmm` in UTC (the dashboard has no time zone database; the `Z` says so).
pub fn clock(at_ms: i64) -> String {
    let ms = at_ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Byte ranges of `query` in `text`. Smart case: a query without capitals ignores ASCII case.
pub fn match_ranges(text: &str, query: &str) -> Vec<(usize, usize)> {
    let q = query.as_bytes();
    if q.is_empty() || q.len() > text.len() {
        return Vec::new();
    }
    let fold = !query.chars().any(|c| c.is_uppercase());
    let t = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + q.len() <= t.len() {
        let window = &t[i..i + q.len()];
        let hit = if fold {
            window.eq_ignore_ascii_case(q)
        } else {
            window == q
        };
        if hit && text.is_char_boundary(i) && text.is_char_boundary(i + q.len()) {
            out.push((i, i + q.len()));
            i += q.len();
        } else {
            i += 1;
        }
    }
    out
}

/// What a terminal would show for `raw`, at most [`MAX_LINE`] bytes: see [`text::visible`].
pub fn clean(raw: &str) -> String {
    text::visible(raw, MAX_LINE)
}

fn classify(text: &str, stderr: bool) -> LineClass {
    let t = text.trim_start().as_bytes();
    let starts = |p: &str| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if starts("warning") || starts("warn:") {
        LineClass::Warn
    } else if stderr || starts("error") || starts("traceback") {
        LineClass::Err
    } else if (starts("epoch") || starts("final")) && text.contains('=') {
        LineClass::Metric
    } else {
        LineClass::Out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_lines_and_counts_the_dropped_ones() {
        let mut b = LogBuffer::new(3);
        for i in 0..5 {
            b.push(0, false, &format!("line {i}"));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped(), 2);
        assert_eq!(b.first_seq(), 2);
        assert_eq!(b.last_seq(), Some(4));
        assert_eq!(b.get(2).unwrap().text, "line 2");
        assert!(b.get(1).is_none());
        assert_eq!(b.clamp(0), 2);
    }

    #[test]
    fn byte_cap_holds_for_huge_lines() {
        let mut b = LogBuffer::new(1_000_000);
        let big = "x".repeat(200_000);
        for _ in 0..5000 {
            b.push(0, false, &big);
        }
        assert!(b.bytes() <= MAX_BYTES, "{}", b.bytes());
        assert!(
            b.get(b.last_seq().unwrap())
                .unwrap()
                .text
                .ends_with("more bytes cut]")
        );
    }

    #[test]
    fn cleaning_removes_escapes_and_keeps_the_last_carriage_return_segment() {
        assert_eq!(clean("\u{1b}[31mred\u{1b}[0m text"), "red text");
        assert_eq!(clean("\u{1b}]0;title\u{7}after"), "after");
        assert_eq!(clean("10%\r50%\r100%"), "100%");
        assert_eq!(clean("a\tb"), "a       b");
        assert_eq!(clean("bell\u{7}"), "bell");
    }

    #[test]
    fn classes() {
        assert_eq!(classify("epoch 1/5 accuracy=0.5", false), LineClass::Metric);
        assert_eq!(
            classify("Traceback (most recent call last):", false),
            LineClass::Err
        );
        assert_eq!(
            classify("warning: unknown parameter", true),
            LineClass::Warn
        );
        assert_eq!(classify("loading", true), LineClass::Err);
        assert_eq!(classify("loading", false), LineClass::Out);
    }

    #[test]
    fn smart_case_search_and_wrapping_find() {
        assert_eq!(
            match_ranges("Loss loss LOSS", "loss"),
            vec![(0, 4), (5, 9), (10, 14)]
        );
        assert_eq!(match_ranges("Loss loss LOSS", "Loss"), vec![(0, 4)]);
        assert_eq!(match_ranges("héllo", "llo"), vec![(3, 6)]);
        let mut b = LogBuffer::new(10);
        for t in ["a", "match 1", "b", "match 2", "c"] {
            b.push(0, false, t);
        }
        assert_eq!(b.find("match", 4, false), Some(3));
        assert_eq!(b.find("match", 3, false), Some(1));
        assert_eq!(b.find("match", 1, false), Some(3), "wraps around");
        assert_eq!(b.find("match", 1, true), Some(3));
        assert_eq!(b.find("nothing", 1, true), None);
        assert_eq!(b.match_count("match", 3), (2, 2));
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(3_723_004), "01:02:03.004Z");
    }
}
