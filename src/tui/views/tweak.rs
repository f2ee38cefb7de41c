//! The tweak panel: the proposed parameters of the next iteration as a before → after diff with the
//! strategy's reason, the value being edited, and the apply mode. Without a proposal it shows what
//! the current iteration runs with and why.

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
    let lines = match run.and_then(|r| r.pending.as_ref().map(|p| (r, p))) {
        Some((r, p)) => {
            let mut lines = vec![Line::from(vec![
                Span::styled(
                    format!("iteration {} proposed", r.iterations.len() + 1),
                    s.theme.text().add_modifier(Modifier::BOLD),
                ),
                Span::styled(" · waiting for you", s.theme.warn()),
            ])];
            let rows = proposal_rows(p);
            let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
            let arrow = if s.ascii { "->" } else { "→" };
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
                lines.push(Line::from(spans));
            }
            lines.push(Line::from(vec![
                Span::styled("why: ", s.theme.dim()),
                Span::styled(p.reason.clone(), s.theme.text()),
            ]));
            lines.extend(source_diff(s, &r.pending_edits()));
            lines.push(hints(s));
            lines
        }
        None => idle_lines(s),
    };
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn hints(s: &UiState) -> Line<'static> {
    let k = &s.keymap;
    let auto = match s.apply_mode() {
        ApplyMode::Ask => "off",
        ApplyMode::Auto => "on",
    };
    Line::from(Span::styled(
        format!(
            "{} approve · {} reject · {} edit · {} auto-apply: {auto}",
            k.key_of(Action::Approve),
            k.key_of(Action::Reject),
            k.key_of(Action::Edit),
            k.key_of(Action::ToggleAuto),
        ),
        s.theme.dim(),
    ))
}

fn idle_lines(s: &UiState) -> Vec<Line<'static>> {
    let Some(r) = s.pipeline.run.as_ref() else {
        return vec![Line::from(Span::styled("no proposal yet", s.theme.dim()))];
    };
    let mut lines = vec![Line::from(Span::styled(
        "no proposal waiting",
        s.theme.dim(),
    ))];
    if let Some(it) = r.current() {
        lines.push(Line::from(vec![
            Span::styled(format!("iteration {} runs with ", it.no), s.theme.dim()),
            Span::styled(text::params(&it.params), s.theme.text()),
        ]));
        if let Some(why) = &it.proposal_reason {
            lines.push(Line::from(vec![
                Span::styled("why: ", s.theme.dim()),
                Span::styled(why.clone(), s.theme.text()),
            ]));
        }
        lines.extend(source_diff(s, &it.edits));
    }
    lines.push(hints(s));
    lines
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

    #[test]
    fn tweak_no_proposal() {
        let s = training_state();
        let (text, _) = render_view(&s, 64, 8, draw);
        insta::assert_snapshot!(text);
    }
}
