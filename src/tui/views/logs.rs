//! The logs pane: the selected iteration's container output.
//!
//! Only the visible window is laid out: the view walks back from the bottom line until the pane is
//! full, cutting (or wrapping) just those lines, so the cost of a frame does not grow with the
//! scrollback or with the length of one line.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::logbuf::{Entry, LineClass, LogBuffer, clock, match_ranges};
use super::super::state::{EngineStatus, Pane, SavedOutput, UiState};
use super::super::trials;
use super::{pane_block, styled};
use crate::core::ids::{IterationNo, RunId};

/// Width of the `HH:MM:SS.mmmZ ` stamp.
const STAMP_WIDTH: usize = 14;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let src = s.log_source();
    let buf = src.and_then(|k| s.logs.buffers.get(&k));
    let block = pane_block(s, Pane::Logs, title(s, area.width)).title_bottom(footer(s, buf));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let lines = match buf.filter(|b| !b.is_empty()) {
        Some(b) => window(s, b, usize::from(inner.width), usize::from(inner.height)),
        None => vec![styled(placeholder(s), s.theme.dim())],
    };
    f.render_widget(Paragraph::new(lines), inner);
}

/// The title's parts after ` Logs · `; with trials side by side, the short form of the trial
/// (`#3 (2/3)`) when the long one would not fit in `width`.
fn title(s: &UiState, width: u16) -> Vec<Span<'static>> {
    let long = title_with(s, false);
    // " Logs " and "· " before, " " after, two corners.
    let room = usize::from(width).saturating_sub(" Logs ".len() + 2 + 1 + 2);
    if long.iter().map(Span::width).sum::<usize>() <= room || !trials::multi(&s.pipeline) {
        return long;
    }
    title_with(s, true)
}

fn title_with(s: &UiState, short: bool) -> Vec<Span<'static>> {
    let mut t = Vec::new();
    if let Some((run, no)) = s.log_source() {
        t.push(Span::styled(source_text(s, run, no, short), s.theme.text()));
        if s.logs.pinned.is_some() {
            t.push(Span::styled(" (pinned)", s.theme.dim()));
        }
        t.push(Span::styled(" · ", s.theme.dim()));
    }
    if s.logs.follow {
        t.push(Span::styled("following", s.theme.good()));
    } else {
        t.push(Span::styled("paused (G follows)", s.theme.warn()));
    }
    for (on, name) in [(s.logs.wrap, "wrap"), (s.logs.timestamps, "timestamps")] {
        if on {
            t.push(Span::styled(format!(" · {name}"), s.theme.dim()));
        }
    }
    t
}

/// `iteration 2 of run 3`; with trials side by side `#3 on e1 (2 of 3)`: the trial, its engine and
/// its place among the running ones, which `c` cycles through.
fn source_text(s: &UiState, run: RunId, no: IterationNo, short: bool) -> String {
    let p = &s.pipeline;
    let it = p
        .run
        .as_ref()
        .filter(|r| r.id == run)
        .and_then(|r| r.iteration(no));
    match it {
        Some(it) if trials::multi(p) => {
            let nos = trials::running_nos(p);
            let on = trials::engine_of(it);
            match (nos.iter().position(|n| *n == no), short) {
                (Some(i), false) => format!("#{no} on {on} ({} of {})", i + 1, nos.len()),
                (Some(i), true) => format!("#{no} ({}/{})", i + 1, nos.len()),
                (None, false) => format!("#{no} on {on} (not running)"),
                (None, true) => format!("#{no} (ended)"),
            }
        }
        Some(it) if !short => match trials::gpu_text(it) {
            Some(g) => format!("iteration {no} of run {run} · {g}"),
            None => format!("iteration {no} of run {run}"),
        },
        _ => format!("iteration {no} of run {run}"),
    }
}

/// The bottom edge: dropped lines and the search, which must stay readable whatever the title holds.
fn footer(s: &UiState, buf: Option<&LogBuffer>) -> Line<'static> {
    let mut t = Vec::new();
    if let Some(b) = buf.filter(|b| b.dropped() > 0) {
        t.push(Span::styled(
            format!(" {} older lines dropped ", b.dropped()),
            s.theme.warn(),
        ));
    }
    if let (Some(q), Some(b)) = (&s.logs.search, buf) {
        let (count, rank) = match s.logs.current_match {
            Some(m) => b.match_count(q, m),
            None => (b.match_count(q, u64::MAX).0, 0),
        };
        t.push(Span::styled(
            format!(" /{q} {rank}/{count} "),
            s.theme.search_match(),
        ));
    }
    Line::from(t).right_aligned()
}

/// What the pane says before there are lines: never "no logs" while a container may still print.
fn placeholder(s: &UiState) -> String {
    let Some((run, no)) = s.log_source() else {
        return match s.engine {
            EngineStatus::WaitingForDocker => "waiting for Docker before the first run…".into(),
            _ => "no iteration yet: logs appear when training starts".into(),
        };
    };
    match s.logs.saved.get(&(run, no)) {
        Some(SavedOutput::Reading) => return "reading the saved output…".into(),
        Some(SavedOutput::Read) => return "the container printed nothing".into(),
        Some(SavedOutput::Failed(e)) => return format!("cannot read the saved output: {e}"),
        None => {}
    }
    let it = s
        .pipeline
        .run
        .as_ref()
        .filter(|r| r.id == run)
        .and_then(|r| r.iteration(no));
    match it.map(|i| i.status) {
        Some(st) if st.is_final() => "the container printed nothing".into(),
        Some(_) => "waiting for logs…".into(),
        None => "the output of this iteration is no longer in memory (see the runs table)".into(),
    }
}

fn class_style(s: &UiState, c: LineClass) -> Style {
    match c {
        LineClass::Out => s.theme.text(),
        LineClass::Err => s.theme.color(s.theme.colors.stderr),
        LineClass::Warn => s.theme.warn(),
        LineClass::Metric => s.theme.color(s.theme.colors.metric),
    }
}

/// The rows that fill a `width`×`height` pane, bottom line last.
fn window(s: &UiState, buf: &LogBuffer, width: usize, height: usize) -> Vec<Line<'static>> {
    let Some(last) = buf.last_seq() else {
        return Vec::new();
    };
    let bottom = if s.logs.follow {
        last
    } else {
        buf.clamp(s.logs.bottom)
    };
    let stamp = s.logs.timestamps && width > STAMP_WIDTH + 10;
    let text_w = if stamp { width - STAMP_WIDTH } else { width };
    let query = s.logs.search.as_deref();
    let mut rows: Vec<Line<'static>> = Vec::with_capacity(height);
    let mut seq = bottom;
    while let Some(e) = buf.get(seq) {
        let matches = query.map(|q| match_ranges(&e.text, q)).unwrap_or_default();
        let current = s.logs.current_match == Some(seq);
        let pieces: Vec<(usize, usize)> = if s.logs.wrap {
            wrap_ranges(e, text_w)
        } else {
            vec![cut(e, s.logs.hscroll, text_w)]
        };
        // Pieces are pushed last-first because the window is built from the bottom up.
        for (i, (a, b)) in pieces.iter().enumerate().rev() {
            let mut spans = Vec::new();
            if stamp {
                let text = if i == 0 {
                    format!("{} ", clock(e.at_ms))
                } else {
                    " ".repeat(STAMP_WIDTH)
                };
                spans.push(Span::styled(text, s.theme.dim()));
            }
            spans.extend(segment(s, e, *a, *b, &matches, current));
            rows.push(Line::from(spans));
            if rows.len() >= height {
                break;
            }
        }
        if rows.len() >= height || seq == buf.first_seq() {
            break;
        }
        seq -= 1;
    }
    rows.reverse();
    rows
}

/// The spans of `e.text[a..b]`, with search matches highlighted (the current one in bold).
fn segment(
    s: &UiState,
    e: &Entry,
    a: usize,
    b: usize,
    matches: &[(usize, usize)],
    current: bool,
) -> Vec<Span<'static>> {
    let base = class_style(s, e.class);
    let hl = if current {
        s.theme.search_match().add_modifier(Modifier::BOLD)
    } else {
        s.theme.search_match()
    };
    let mut out = Vec::new();
    let mut at = a;
    for &(ma, mb) in matches {
        let (ma, mb) = (ma.max(a), mb.min(b));
        if ma >= mb {
            continue;
        }
        if ma > at {
            out.push(Span::styled(e.text[at..ma].to_string(), base));
        }
        out.push(Span::styled(e.text[ma..mb].to_string(), hl));
        at = mb;
    }
    if at < b {
        out.push(Span::styled(e.text[at..b].to_string(), base));
    }
    out
}

fn char_width(c: char) -> usize {
    let mut b = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut b)).width()
}

/// Byte range of the columns `from..from + width` of the line.
fn cut(e: &Entry, from: usize, width: usize) -> (usize, usize) {
    if e.narrow {
        let a = from.min(e.text.len());
        return (a, (a + width).min(e.text.len()));
    }
    let mut col = 0;
    let mut start = None;
    let mut end = e.text.len();
    for (i, c) in e.text.char_indices() {
        if start.is_none() && col >= from {
            start = Some(i);
        }
        let w = char_width(c);
        if start.is_some() && col + w > from + width {
            end = i;
            break;
        }
        col += w;
    }
    let start = start.unwrap_or(e.text.len());
    (start, end.max(start))
}

/// Byte ranges of the rows the line takes when wrapped at `width` columns (at least one).
fn wrap_ranges(e: &Entry, width: usize) -> Vec<(usize, usize)> {
    let width = width.max(1);
    if e.text.is_empty() {
        return vec![(0, 0)];
    }
    if e.narrow {
        return (0..e.text.len())
            .step_by(width)
            .map(|a| (a, (a + width).min(e.text.len())))
            .collect();
    }
    let mut out = Vec::new();
    let (mut start, mut col) = (0, 0);
    for (i, c) in e.text.char_indices() {
        let w = char_width(c);
        if col + w > width && i > start {
            out.push((start, i));
            start = i;
            col = 0;
        }
        col += w;
    }
    out.push((start, e.text.len()));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;
    use crate::core::ids::{IterationNo, RunId};
    use crate::core::model::LogLine;
    use crate::tui::msg::{Effect, SavedLines, UiMsg};
    use crate::tui::update::update;

    fn flood(s: &mut UiState, n: usize) {
        let lines = (0..n)
            .map(|i| LogLine {
                stderr: false,
                text: format!("step {i} loss={:.3}", 1.0 / (i + 1) as f64),
            })
            .collect();
        let _ = update(
            s,
            UiMsg::Logs {
                run: RunId(3),
                no: IterationNo(2),
                lines,
                at_ms: NOW,
            },
        );
    }

    #[test]
    fn logs_following() {
        let s = training_state();
        let (text, buf) = render_view(&s, 90, 10, draw);
        insta::assert_snapshot!(text);
        let warn = find_text(&buf, "warning").unwrap();
        assert_eq!(buf[warn].fg, Color::Yellow, "warnings are tinted");
        let metric = find_text(&buf, "epoch 1/8").unwrap();
        assert_eq!(buf[metric].fg, Color::Cyan);
    }

    #[test]
    fn logs_waiting_before_the_first_line() {
        let mut s = training_state();
        s.logs.buffers.clear();
        let (text, _) = render_view(&s, 90, 5, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("waiting for logs"));
    }

    /// After a restart the finished iteration's lines are not in memory: the pane says it reads them,
    /// then shows the history's copy; a failed read says why.
    #[test]
    fn logs_of_a_finished_iteration_come_from_the_history() {
        let pipeline = finished_state().pipeline.clone();
        let mut s = base_state();
        let fx = update(&mut s, UiMsg::Pipeline(Box::new(pipeline)));
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::LoadOutput(RunId(3), IterationNo(3)))),
            "{fx:?}"
        );
        let (text, _) = render_view(&s, 90, 5, draw);
        assert!(text.contains("reading the saved output"), "{text}");
        let saved = SavedLines {
            lines: vec!["epoch 12/12 accuracy=0.9611".into(), "saved model".into()],
            at_ms: NOW,
        };
        let _ = update(
            &mut s,
            UiMsg::SavedOutput {
                run: RunId(3),
                no: IterationNo(3),
                saved: Ok(saved),
            },
        );
        let (text, _) = render_view(&s, 90, 5, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("epoch 12/12 accuracy=0.9611"), "{text}");
        assert!(!text.contains("printed nothing"), "{text}");

        let mut s = base_state();
        let _ = update(&mut s, UiMsg::Pipeline(Box::new(finished_state().pipeline)));
        let _ = update(
            &mut s,
            UiMsg::SavedOutput {
                run: RunId(3),
                no: IterationNo(3),
                saved: Err("database is locked".into()),
            },
        );
        let (text, _) = render_view(&s, 90, 5, draw);
        assert!(
            text.contains("cannot read the saved output: database is locked"),
            "{text}"
        );
    }

    #[test]
    fn logs_search_highlight_dropped_and_timestamps() {
        let mut s = training_state();
        s.logs.cap = 100;
        s.logs.buffers.clear();
        flood(&mut s, 250);
        s.logs.timestamps = true;
        s.logs.follow = false;
        s.logs.bottom = 200;
        s.logs.search = Some("loss=0.005".into());
        s.logs.current_match = Some(199);
        let (text, buf) = render_view(&s, 100, 8, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("150 older lines dropped"));
        let m = find_text(&buf, "loss=0.005").unwrap();
        assert_eq!(buf[m].bg, Color::Yellow);
    }

    #[test]
    fn logs_wrap_a_huge_line_draws_only_its_tail() {
        let mut s = training_state();
        let long: String = (0..100_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let _ = update(
            &mut s,
            UiMsg::Logs {
                run: RunId(3),
                no: IterationNo(2),
                lines: vec![LogLine {
                    stderr: false,
                    text: long,
                }],
                at_ms: NOW,
            },
        );
        s.logs.wrap = true;
        let t = std::time::Instant::now();
        let (text, _) = render_view(&s, 60, 6, draw);
        assert!(t.elapsed() < std::time::Duration::from_millis(200));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn cut_and_wrap_respect_wide_characters() {
        let e = Entry {
            at_ms: 0,
            text: "日本語テキスト".into(),
            class: LineClass::Out,
            narrow: false,
        };
        assert_eq!(cut(&e, 2, 4), (3, 9));
        assert_eq!(wrap_ranges(&e, 6), vec![(0, 9), (9, 18), (18, 21)]);
    }
}
