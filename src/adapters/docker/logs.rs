//! A container's output as whole lines: followed, followed from a moment on, or its last lines, with
//! or without the engine's timestamps.

use std::collections::VecDeque;

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::{FutureExt, Stream, StreamExt};

use super::DockerBackend;
use crate::adapters::backend::{BackendError, BoxFuture, LogStream, StampedLine, StampedLogStream};
use crate::core::ids::ContainerId;
use crate::core::model::LogLine;

/// Longest log line kept whole; the rest of a longer line is cut and the cut is marked, so a script that
/// prints a megabyte without a newline cannot stall parsing or drawing.
pub const MAX_LINE: usize = 16 * 1024;

impl DockerBackend {
    /// Every line the container writes, from its start, until it ends.
    pub(super) fn follow_logs(&self, id: &ContainerId) -> LogStream {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(split_lines(raw, id.clone()))
    }

    /// The lines from `since` (nanoseconds since the epoch; whole seconds are what the engine takes)
    /// on, each with its stamp, until the container ends.
    pub(super) fn follow_logs_since(
        &self,
        id: &ContainerId,
        since: Option<i128>,
    ) -> StampedLogStream {
        let secs = since.map_or(0, |ns| ns.div_euclid(1_000_000_000));
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(secs).unwrap_or(0))
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(split_stamped(raw, id.clone(), true))
    }

    /// The last `n` lines written so far.
    pub(super) async fn last_lines(
        &self,
        id: &ContainerId,
        n: usize,
    ) -> Result<Vec<LogLine>, BackendError> {
        let options = LogsOptionsBuilder::default()
            .follow(false)
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        split_lines(raw, id.clone())
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// The last `n` lines written so far, each with its stamp.
    pub(super) fn last_lines_stamped<'a>(
        &'a self,
        id: &'a ContainerId,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<StampedLine>, BackendError>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail(&n.to_string())
            .build();
        let raw = self.docker.logs(&id.0, Some(options));
        Box::pin(
            split_stamped(raw, id.clone(), true)
                .collect::<Vec<_>>()
                .map(|v| v.into_iter().collect()),
        )
    }
}

/// Turns Docker's frames (which split and join lines arbitrarily) into whole lines per stream.
pub(super) fn split_lines(
    raw: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
    + Send
    + 'static,
    id: ContainerId,
) -> impl Stream<Item = Result<LogLine, BackendError>> + Send {
    split_stamped(raw, id, false).map(|r| r.map(|s| s.line))
}

/// Whole lines per stream, as [`split_lines`]; with `stamped`, every frame starts with the engine's
/// RFC 3339 timestamp (one frame per log entry), which is taken off and given to the line it ends.
fn split_stamped(
    raw: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
    + Send
    + 'static,
    id: ContainerId,
    stamped: bool,
) -> impl Stream<Item = Result<StampedLine, BackendError>> + Send {
    let st = Splitter {
        raw: Box::pin(raw),
        out: Vec::new(),
        err: Vec::new(),
        at: [0, 0],
        ready: VecDeque::new(),
        done: false,
        stamped,
        id,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.raw.next().await {
                Some(Ok(frame)) => st.frame(frame),
                Some(Err(e)) => {
                    st.done = true;
                    st.ready.push_back(Err(BackendError::Container {
                        id: st.id.to_string(),
                        message: format!("log stream: {e}"),
                    }));
                }
                None => st.finish(),
            }
        }
    })
}

/// The state of [`split_stamped`]: the unfinished line of each stream and the lines ready to go.
struct Splitter<S> {
    raw: S,
    out: Vec<u8>,
    err: Vec<u8>,
    /// The last stamp seen on stdout and on stderr.
    at: [i128; 2],
    ready: VecDeque<Result<StampedLine, BackendError>>,
    done: bool,
    stamped: bool,
    id: ContainerId,
}

impl<S> Splitter<S> {
    fn frame(&mut self, frame: bollard::container::LogOutput) {
        use bollard::container::LogOutput;
        let (stderr, mut bytes) = match frame {
            LogOutput::StdErr { message } => (true, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
            LogOutput::StdIn { .. } => return,
        };
        if self.stamped
            && let Some((at, rest)) = strip_stamp(&bytes)
        {
            self.at[usize::from(stderr)] = at;
            bytes = bytes.slice(bytes.len() - rest..);
        }
        let at = self.at[usize::from(stderr)];
        let buf = if stderr { &mut self.err } else { &mut self.out };
        buf.extend_from_slice(&bytes);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = make_line(stderr, &line[..line.len() - 1]);
            self.ready.push_back(Ok(StampedLine { at, line }));
        }
        // Cut a newline-less flood so memory stays bounded.
        if buf.len() > MAX_LINE * 4 {
            let line = make_line(stderr, &std::mem::take(buf));
            self.ready.push_back(Ok(StampedLine { at, line }));
        }
    }

    /// The stream ended: what is left of each stream's last line is a line too.
    fn finish(&mut self) {
        self.done = true;
        for stderr in [false, true] {
            let buf = std::mem::take(if stderr { &mut self.err } else { &mut self.out });
            if !buf.is_empty() {
                let at = self.at[usize::from(stderr)];
                let line = make_line(stderr, &buf);
                self.ready.push_back(Ok(StampedLine { at, line }));
            }
        }
    }
}

/// Splits `2026-01-02T03:04:05.123456789Z rest` into the stamp (nanoseconds since the epoch) and the
/// length of the rest; `None` when the frame does not start with a timestamp.
fn strip_stamp(bytes: &[u8]) -> Option<(i128, usize)> {
    let space = bytes.iter().take(64).position(|b| *b == b' ')?;
    let text = std::str::from_utf8(&bytes[..space]).ok()?;
    Some((parse_rfc3339(text)?, bytes.len() - space - 1))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to nanoseconds since the Unix epoch.
fn parse_rfc3339(text: &str) -> Option<i128> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    // 1970-01-01 is Julian day 2 440 588.
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let rest = text.get(19..)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let nanos: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let offset = match zone {
        "Z" | "" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let h: i64 = z.get(1..3)?.parse().ok()?;
            let m: i64 = z.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(i128::from(secs - offset) * 1_000_000_000 + i128::from(nanos))
}

fn make_line(stderr: bool, bytes: &[u8]) -> LogLine {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > MAX_LINE {
        let total = text.len();
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!(" …[line cut: {total} bytes]"));
    }
    LogLine { stderr, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_are_nanoseconds_since_the_epoch() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.000000002Z"),
            Some(1_000_000_002)
        );
        assert_eq!(
            parse_rfc3339("2026-11-29T02:30:50.5Z"),
            parse_rfc3339("2026-11-29T03:30:50.500000000+01:00")
        );
        assert_eq!(
            strip_stamp(b"1970-01-01T00:00:00Z hello"),
            Some((0, "hello".len()))
        );
        assert_eq!(strip_stamp(b"hello world"), None);
    }
}
