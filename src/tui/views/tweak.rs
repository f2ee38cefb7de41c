//! The tweak panel: the proposed parameters of the next iteration as a before → after diff with the
//! strategy's reason, the value being edited, and the apply mode. Without a proposal it shows what
//! the current iteration runs with and why.
//!
//! The reason is wrapped, never cut: when the pane is too low for everything, the key hints go
//! first (the banner and the status bar repeat them), then the source diff, then the parameters the
//! proposal leaves unchanged.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::core::config::ApplyMode;
use crate::core::knobs::SourceEdit;
use crate::core::text;

use super::super::keymap::Action;
use super::super::proposal::proposal_rows;
use super::super::state::{Mode, Pane, UiState};
use super::pane_block;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let mode = s.apply_mode();
    let mode_span = match mode {
        ApplyMode::Ask => Span::styled("ask", s.theme.warn()),
        ApplyMode::Auto => Span::styled("auto-apply", s.theme.good()),
    };
    let block = pane_block(s, Pane::Tweak, vec![mode_span]);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let run = s.pipeline.run.as_ref();
    let parts = match run.and_then(|r| r.pending.as_ref().map(|p| (r, p))) {
        Some((r, p)) => {
            // "waiting for you" only where it fits on the line: the banner says it too.
            let proposed = format!("iteration {} proposed", r.iterations.len() + 1);
            let waiting = " · waiting for you";
            let mut head = vec![Span::styled(
                proposed.clone(),
                s.theme.text().add_modifier(Modifier::BOLD),
            )];
            if proposed.chars().count() + waiting.chars().count() <= usize::from(inner.width) {
                head.push(Span::styled(waiting, s.theme.warn()));
            }
            let lines = vec![vec![Line::from(head)]];
            let rows = proposal_rows(p);
            let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
            let arrow = if s.ascii { "->" } else { "→" };
            let mut params = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let sel = i == s.tweak_sel.min(rows.len().saturating_sub(1))
                    && (s.focus == Pane::Tweak || matches!(s.mode, Mode::Edit { .. }));
                let marker = if sel { "▶ " } else { "  " };
                let name_style = if sel {
                    s.theme.selection()
                } else {
                    s.theme.text()
                };
                let mut spans = vec![
                    Span::styled(marker, s.theme.text()),
                    Span::styled(format!("{:<name_w$}", row.name), name_style),
                    Span::raw("  "),
                ];
                match (&s.mode, sel) {
                    (Mode::Edit { input, .. }, true) => {
                        spans.push(Span::styled(
                            format!("{} {arrow} ", row.from),
                            s.theme.dim(),
                        ));
                        spans.push(Span::styled(format!("{input}▏"), s.theme.selection()));
                    }
                    _ if row.changed => {
                        spans.push(Span::styled(row.from.clone(), s.theme.dim()));
                        spans.push(Span::styled(format!(" {arrow} "), s.theme.warn()));
                        spans.push(Span::styled(
                            row.to.clone(),
                            s.theme.good().add_modifier(Modifier::BOLD),
                        ));
                    }
                    _ => spans.push(Span::styled(row.to.clone(), s.theme.dim())),
                }
                params.push((Line::from(spans), row.changed || sel));
            }
            Parts {
                head: lines,
                params,
                why: Some(why(s, &p.reason)),
                diff: source_diff(s, &r.pending_edits()),
                hints: hints(s),
            }
        }
        None => idle_parts(s),
    };
    let lines = parts.fit(inner.width, inner.height);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The panel's lines by what may give way when the pane is low.
struct Parts {
    /// Heading lines, each as alternatives from the longest: the first that fits is shown.
    head: Vec<Vec<Line<'static>>>,
    /// Parameter rows; `true` for the ones that must stay (changed or selected).
    params: Vec<(Line<'static>, bool)>,
    why: Option<Line<'static>>,
    diff: Vec<Line<'static>>,
    /// The key hints, longest first: the first that fits on its row is shown.
    hints: Vec<Line<'static>>,
}

impl Parts {
    /// The lines to draw in `width`×`height`: everything when it fits; else without the hints, then
    /// without the diff, then without the unchanged parameters, then with the heading lines that fit
    /// (in a shorter form where one fits). The reason and the changed parameters are never dropped.
    fn fit(self, width: u16, height: u16) -> Vec<Line<'static>> {
        let w = usize::from(width);
        let h = usize::from(height);
        let rows =
            |lines: &[&Line<'_>]| -> usize { lines.iter().map(|l| wrapped_rows(l, w)).sum() };
        let all_params: Vec<&Line<'_>> = self.params.iter().map(|(l, _)| l).collect();
        let base: Vec<&Line<'_>> = self
            .head
            .iter()
            .filter_map(|alts| alts.first())
            .chain(self.why.as_ref())
            .collect();
        let base_rows = rows(&base);
        let diff_rows = rows(&self.diff.iter().collect::<Vec<_>>());
        let hint = self
            .hints
            .iter()
            .find(|l| wrapped_rows(l, w) == 1)
            .or(self.hints.last());
        let hint_rows = hint.map_or(0, |l| wrapped_rows(l, w));
        let params_rows = rows(&all_params);
        let (params_all, diff, hints) = if base_rows + params_rows + diff_rows + hint_rows <= h {
            (true, true, true)
        } else if base_rows + params_rows + diff_rows <= h {
            (true, true, false)
        } else if base_rows + params_rows <= h {
            (true, false, false)
        } else {
            (false, false, false)
        };
        let hint = hint.cloned();
        let kept_params = self
            .params
            .iter()
            .filter(|(_, keep)| params_all || *keep)
            .map(|(l, _)| wrapped_rows(l, w))
            .sum::<usize>();
        let why_rows = self.why.as_ref().map_or(0, |l| wrapped_rows(l, w));
        // Heading lines, the last (the most specific) first, each in the longest form that fits
        // in what the rest leaves; shown in their order.
        let mut room = h.saturating_sub(kept_params + why_rows);
        let mut chosen: Vec<Line<'static>> = Vec::new();
        for alts in self.head.into_iter().rev() {
            let fits = alts.into_iter().find(|l| wrapped_rows(l, w) <= room);
            if let Some(line) = fits {
                room -= wrapped_rows(&line, w);
                chosen.push(line);
            }
        }
        chosen.reverse();
        let mut out = chosen;
        out.extend(
            self.params
                .into_iter()
                .filter(|(_, keep)| params_all || *keep)
                .map(|(l, _)| l),
        );
        out.extend(self.why);
        if diff {
            out.extend(self.diff);
        }
        if let Some(l) = hint.filter(|_| hints) {
            out.push(l.clone());
        }
        out
    }
}

/// Rows `line` takes when wrapped at word boundaries in `width` columns (long words are broken).
fn wrapped_rows(line: &Line<'_>, width: usize) -> usize {
    if width == 0 {
        return 1;
    }
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let mut rows = 1;
    let mut col = 0;
    for word in text.split(' ') {
        let mut w = word.chars().count();
        if col > 0 && col + 1 + w <= width {
            col += 1 + w;
            continue;
        }
        if col > 0 {
            rows += 1;
        }
        while w > width {
            rows += 1;
            w -= width;
        }
        col = w;
    }
    rows
}

fn why(s: &UiState, reason: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled("why: ", s.theme.dim()),
        Span::styled(reason.to_string(), s.theme.text()),
    ])
}

/// The key hints, whole and then without the auto-apply toggle.
fn hints(s: &UiState) -> Vec<Line<'static>> {
    let k = &s.keymap;
    let auto = match s.apply_mode() {
        ApplyMode::Ask => "off",
        ApplyMode::Auto => "on",
    };
    let answer = format!(
        "{} approve · {} reject · {} edit",
        k.key_of(Action::Approve),
        k.key_of(Action::Reject),
        k.key_of(Action::Edit),
    );
    let full = format!(
        "{answer} · {} auto-apply: {auto}",
        k.key_of(Action::ToggleAuto)
    );
    [full, answer]
        .into_iter()
        .map(|t| Line::from(Span::styled(t, s.theme.dim())))
        .collect()
}

fn idle_parts(s: &UiState) -> Parts {
    let mut parts = Parts {
        head: Vec::new(),
        params: Vec::new(),
        why: None,
        diff: Vec::new(),
        hints: hints(s),
    };
    let Some(r) = s.pipeline.run.as_ref() else {
        parts.head = vec![vec![Line::from(Span::styled(
            "no proposal yet",
            s.theme.dim(),
        ))]];
        return parts;
    };
    parts.head = vec![vec![Line::from(Span::styled(
        "no proposal waiting",
        s.theme.dim(),
    ))]];
    if let Some(it) = r.current() {
        parts.head.push(vec![
            Line::from(vec![
                Span::styled(format!("iteration {} runs with ", it.no), s.theme.dim()),
                Span::styled(text::params(&it.params), s.theme.text()),
            ]),
            Line::from(vec![
                Span::styled(format!("iteration {}: ", it.no), s.theme.dim()),
                Span::styled(text::params_spaced(&it.params), s.theme.text()),
            ]),
        ]);
        parts.why = it.proposal_reason.as_deref().map(|r| why(s, r));
        parts.diff = source_diff(s, &it.edits);
    }
    parts
}

/// Source edits as a diff: `file:line`, then `− old` in the theme's bad colour and `+ new` in its
/// good colour, indentation dropped.
pub(super) fn source_diff(s: &UiState, edits: &[SourceEdit]) -> Vec<Line<'static>> {
    let (minus, plus) = if s.ascii {
        ("- ", "+ ")
    } else {
        ("− ", "+ ")
    };
    let mut lines = Vec::new();
    for e in edits {
        lines.push(Line::from(Span::styled(
            format!("{}:{}", e.file, e.line),
            s.theme.dim(),
        )));
        if !e.old.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("  {minus}{}", e.old.trim()),
                s.theme.bad(),
            )));
        }
        if !e.new.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("  {plus}{}", e.new.trim()),
                s.theme.good(),
            )));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn tweak_proposal_diff() {
        let mut s = awaiting_state();
        s.focus = Pane::Tweak;
        let (text, buf) = render_view(&s, 64, 10, draw);
        insta::assert_snapshot!(text);
        let to = find_text(&buf, "32").unwrap();
        assert_eq!(buf[to].fg, Color::Green);
    }

    #[test]
    fn tweak_editing_a_value() {
        let mut s = awaiting_state();
        s.mode = Mode::Edit {
            name: "epochs".into(),
            input: "16".into(),
        };
        s.tweak_sel = 0;
        let (text, _) = render_view(&s, 64, 10, draw);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_running_iterations_source_edits_show_as_a_coloured_diff() {
        let mut s = training_state();
        let it = s
            .pipeline
            .run
            .as_mut()
            .and_then(|r| r.iterations.last_mut())
            .unwrap();
        it.edits = vec![SourceEdit {
            file: "knn.py".into(),
            line: 12,
            old: "model = KNeighborsClassifier(n_neighbors=1)".into(),
            new: "model = KNeighborsClassifier(n_neighbors=3)".into(),
        }];
        let (text, buf) = render_view(&s, 72, 12, draw);
        assert!(text.contains("knn.py:12"), "{text}");
        let old = find_text(&buf, "− model = KNeighborsClassifier(n_neighbors=1)").unwrap();
        assert_eq!(buf[old].fg, Color::Red);
        let new = find_text(&buf, "+ model = KNeighborsClassifier(n_neighbors=3)").unwrap();
        assert_eq!(buf[new].fg, Color::Green);
    }

    /// A long reason in an 80×24 terminal's tweak pane (30×6 inside): wrapped whole; the hints and
    /// the unchanged parameters make room for it.
    #[test]
    fn a_long_reason_is_wrapped_whole_in_a_low_pane() {
        let reason = "TPE: 14 observations, good region lr≈3e-3, units ≥ 128; expected 0.975";
        let mut s = awaiting_state();
        if let Some(p) = s.pipeline.run.as_mut().and_then(|r| r.pending.as_mut()) {
            p.reason = reason.into();
        }
        let (text, _) = render_view(&s, 32, 8, draw);
        insta::assert_snapshot!(text);
        let shown: String = text
            .lines()
            .map(|l| {
                l.trim_matches(|c| c == '"' || c == '│' || c == '╰' || c == '╭')
                    .trim()
            })
            .collect::<Vec<_>>()
            .join(" ");
        assert!(shown.contains("why: TPE: 14 observations,"), "{text}");
        assert!(
            shown.contains("expected 0.975"),
            "the end of the reason shows:\n{text}"
        );
        assert!(!text.contains("approve"), "the hints gave way:\n{text}");
        assert!(text.contains("hidden_units"), "changed rows stay:\n{text}");
        assert!(
            !text.contains("  lr "),
            "an unchanged row gave way:\n{text}"
        );
    }

    #[test]
    fn wrapped_rows_counts_like_word_wrapping() {
        let l = |t: &str| Line::from(t.to_string());
        assert_eq!(wrapped_rows(&l("abc def"), 7), 1);
        assert_eq!(wrapped_rows(&l("abc def"), 6), 2);
        assert_eq!(wrapped_rows(&l("abcdefghij"), 4), 3);
        assert_eq!(wrapped_rows(&l(""), 4), 1);
    }

    #[test]
    fn tweak_no_proposal() {
        let s = training_state();
        let (text, _) = render_view(&s, 64, 8, draw);
        insta::assert_snapshot!(text);
    }
}
