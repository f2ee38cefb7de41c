//! The pipeline graph: Pull → Detect → Build image → Train → Evaluate → Tweak → Notify, the Monitor
//! beside it, each stage with its status glyph, colour and elapsed time, the iteration on the
//! Train/Evaluate/Tweak loop, and the selected stage's details under it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use crate::core::model::RunStatus;
use crate::core::text;
use crate::engine::{Stage, StageStatus};

use super::super::layout::BOXED_GRAPH_WIDTH;
use super::super::state::{Pane, UiState};
use super::super::trials;
use super::lanes;
use super::{ASCII_BORDER, ASCII_FOCUS_BORDER, fit_words, pane_block, status_glyph, status_word};

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let block = pane_block(s, Pane::Graph, title(s));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let used = if area.width >= BOXED_GRAPH_WIDTH {
        boxed(s, inner, f)
    } else {
        compact(s, inner, f)
    };
    // Trials side by side take the rows the layout added for them; the details keep the last two.
    let lane_h = if trials::multi(&s.pipeline) {
        inner.height.saturating_sub(used + 2)
    } else {
        0
    };
    lanes::draw(
        s,
        Rect::new(inner.x, inner.y + used, inner.width, lane_h),
        f,
    );
    let used = used + lane_h;
    let rest = Rect::new(
        inner.x,
        inner.y + used,
        inner.width,
        inner.height.saturating_sub(used),
    );
    details(s, rest, f);
}

fn title(s: &UiState) -> Vec<Span<'static>> {
    let p = &s.pipeline;
    match &p.run {
        None if p.starting => vec![Span::styled("starting a run", s.theme.dim())],
        None => vec![Span::styled("no run yet", s.theme.dim())],
        Some(r) => {
            let state = match r.status {
                RunStatus::Running => Span::styled("running", s.theme.status(StageStatus::Running)),
                RunStatus::Succeeded => Span::styled("target reached", s.theme.good()),
                other => Span::styled(other.as_str().replace('_', " "), s.theme.bad()),
            };
            vec![
                Span::styled(
                    format!("run {} · {} · ", r.id, r.commit.short()),
                    s.theme.text(),
                ),
                state,
            ]
        }
    }
}

/// Whether the stage is only waiting for the operator's key (it should not spin).
fn waits_for_operator(s: &UiState, stage: Stage) -> bool {
    stage == Stage::Tweak && s.pipeline.run.as_ref().is_some_and(|r| r.pending.is_some())
}

fn elapsed(s: &UiState, stage: Stage) -> Option<String> {
    let st = s.pipeline.stage(stage);
    match st.status {
        StageStatus::Waiting | StageStatus::Skipped => None,
        _ => text::elapsed(st.started_ms, st.finished_ms, s.now_ms),
    }
}

fn selected(s: &UiState, stage: Stage) -> bool {
    s.focus == Pane::Graph && Stage::ALL[s.stage_sel.min(Stage::ALL.len() - 1)] == stage
}

/// "iteration 2 of 5" for the loop, when a run has iterations.
fn loop_text(s: &UiState) -> Option<String> {
    let r = s.pipeline.run.as_ref()?;
    let no = r.current()?.no;
    let max = r.config.as_ref().map(|c| c.budget.max_iterations);
    let running = trials::running_nos(&s.pipeline);
    let what = if running.len() > 1 {
        let nos: Vec<String> = running.iter().map(|n| format!("#{n}")).collect();
        format!("iterations {}", nos.join(" "))
    } else {
        format!("iteration {no}")
    };
    Some(match max {
        Some(m) => format!("{what} of {m}"),
        None => what,
    })
}

/// One box per stage; returns the rows used.
fn boxed(s: &UiState, area: Rect, f: &mut Frame) -> u16 {
    const ARROW: u16 = 2;
    const MONITOR_GAP: u16 = 3;
    let n = Stage::CHAIN.len() as u16 + 1;
    let box_w = (area
        .width
        .saturating_sub(ARROW * (Stage::CHAIN.len() as u16 - 1) + MONITOR_GAP))
        / n;
    let mut x = area.x;
    let mut centers = Vec::new();
    for (i, stage) in Stage::ALL.iter().enumerate() {
        if *stage == Stage::Monitor {
            let sep = if s.ascii { ":" } else { "┆" };
            f.render_widget(
                Paragraph::new(Line::from(Span::styled(format!(" {sep}"), s.theme.dim()))),
                Rect::new(x, area.y + 1, MONITOR_GAP, 1),
            );
            x += MONITOR_GAP;
        } else if i > 0 {
            let arrow = if s.ascii { "->" } else { "─▶" };
            f.render_widget(
                Paragraph::new(Span::styled(arrow, s.theme.dim())),
                Rect::new(x, area.y + 1, ARROW, 1),
            );
            x += ARROW;
        }
        let rect = Rect::new(x, area.y, box_w, 3.min(area.height));
        stage_box(s, *stage, rect, f);
        centers.push(x + box_w / 2);
        x += box_w;
    }
    if area.height >= 4 {
        if let Some(text) = loop_text(s) {
            let (from, to) = (centers[3], centers[5]);
            let width = usize::from(to - from + 1);
            let label = if s.ascii {
                format!(" loop: {text} ")
            } else {
                format!(" ↻ {text} ")
            };
            let (l, r, h) = if s.ascii {
                ("\\<", "/", "-")
            } else {
                ("╰◀", "╯", "─")
            };
            let fill = width.saturating_sub(label.chars().count() + 4);
            let line = format!("{l}{h}{label}{}{r}", h.repeat(fill));
            f.render_widget(
                Paragraph::new(Span::styled(
                    line,
                    s.theme.status(s.pipeline.stage(Stage::Train).status),
                )),
                Rect::new(from, area.y + 3, to - from + 1, 1),
            );
        }
        return 4;
    }
    3
}

fn stage_box(s: &UiState, stage: Stage, rect: Rect, f: &mut Frame) {
    let st = s.pipeline.stage(stage);
    let style = s.theme.status(st.status);
    let sel = selected(s, stage);
    let mut block = Block::default().borders(Borders::ALL).border_style(if sel {
        style.add_modifier(Modifier::BOLD)
    } else {
        style
    });
    block = match (s.ascii, sel) {
        (true, true) => block.border_set(ASCII_FOCUS_BORDER),
        (true, false) => block.border_set(ASCII_BORDER),
        (false, true) => block.border_type(BorderType::Double),
        (false, false) => block.border_type(BorderType::Rounded),
    };
    if let Some(e) = elapsed(s, stage) {
        block = block
            .title_bottom(Line::from(Span::styled(format!(" {e} "), s.theme.dim())).centered());
    }
    let glyph = status_glyph(s, st.status, waits_for_operator(s, stage));
    let label_style = if sel {
        s.theme.selection()
    } else {
        s.theme.text()
    };
    let line = Line::from(vec![
        Span::styled(glyph, style),
        Span::raw(" "),
        Span::styled(stage.label(), label_style),
    ])
    .centered();
    f.render_widget(Paragraph::new(line).block(block), rect);
}

fn short_label(stage: Stage) -> &'static str {
    match stage {
        Stage::Image => "Image",
        Stage::Evaluate => "Eval",
        other => other.label(),
    }
}

/// The chain on one line for narrow terminals; returns the rows used.
fn compact(s: &UiState, area: Rect, f: &mut Frame) -> u16 {
    let arrow = if s.ascii { ">" } else { "›" };
    let mut spans = Vec::new();
    for (i, stage) in Stage::ALL.iter().enumerate() {
        if *stage == Stage::Monitor {
            spans.push(Span::styled(
                if s.ascii { " : " } else { " ┆ " },
                s.theme.dim(),
            ));
        } else if i > 0 {
            spans.push(Span::styled(format!(" {arrow} "), s.theme.dim()));
        }
        let st = s.pipeline.stage(*stage);
        let style = s.theme.status(st.status);
        spans.push(Span::styled(
            status_glyph(s, st.status, waits_for_operator(s, *stage)),
            style,
        ));
        spans.push(Span::raw(" "));
        let label_style = if selected(s, *stage) {
            s.theme.selection()
        } else {
            s.theme.text()
        };
        spans.push(Span::styled(short_label(*stage), label_style));
        if st.status == StageStatus::Running {
            if let Some(e) = elapsed(s, *stage) {
                spans.push(Span::styled(format!(" {e}"), s.theme.dim()));
            }
        }
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)),
        Rect::new(area.x, area.y, area.width, 1),
    );
    if area.height >= 2 {
        if let Some(text) = loop_text(s) {
            let line = Line::from(vec![
                Span::styled(
                    format!("{} {text}", if s.ascii { "loop:" } else { "↻" }),
                    s.theme.status(s.pipeline.stage(Stage::Train).status),
                ),
                Span::styled(" on Train › Eval › Tweak", s.theme.dim()),
            ]);
            f.render_widget(
                Paragraph::new(line),
                Rect::new(area.x, area.y + 1, area.width, 1),
            );
        }
        return 2;
    }
    1
}

/// The selected stage (or, without focus, the running one): its status, time, detail and latest event.
fn details(s: &UiState, area: Rect, f: &mut Frame) {
    if area.height == 0 {
        return;
    }
    let stage = if s.focus == Pane::Graph {
        Stage::ALL[s.stage_sel.min(Stage::ALL.len() - 1)]
    } else {
        // The running stage, else the one that changed last.
        let running = Stage::ALL
            .iter()
            .copied()
            .rfind(|st| s.pipeline.stage(*st).status == StageStatus::Running);
        running
            .or_else(|| {
                Stage::ALL
                    .iter()
                    .copied()
                    .filter(|st| s.pipeline.stage(*st).finished_ms.is_some())
                    .max_by_key(|st| s.pipeline.stage(*st).finished_ms)
            })
            .unwrap_or(Stage::Pull)
    };
    let st = s.pipeline.stage(stage);
    let mut first = vec![
        Span::styled(
            format!("{}: ", stage.label()),
            s.theme.text().add_modifier(Modifier::BOLD),
        ),
        Span::styled(status_word(st.status), s.theme.status(st.status)),
    ];
    if let Some(e) = elapsed(s, stage) {
        first.push(Span::styled(format!(" for {e}"), s.theme.dim()));
    }
    if !st.detail.is_empty() {
        let used: usize = first.iter().map(|sp| sp.content.chars().count()).sum();
        let room = usize::from(area.width).saturating_sub(used + 3);
        let detail = fit_words(&ascii_bar(&st.detail, s.ascii), room, s.ascii);
        if !detail.is_empty() {
            first.push(Span::styled(format!(" — {detail}"), s.theme.text()));
        }
    }
    let mut lines = vec![Line::from(first)];
    let latest = s
        .pipeline
        .events
        .iter()
        .rev()
        .find(|e| Stage::of_tag(&e.tag) == Some(stage));
    match latest {
        Some(e) => {
            let tag = format!("[{}] ", e.tag);
            let room = usize::from(area.width).saturating_sub(tag.chars().count());
            let text = fit_words(e.text.lines().next().unwrap_or(""), room, s.ascii);
            lines.push(Line::from(vec![
                Span::styled(tag, s.theme.dim()),
                Span::styled(text, s.theme.dim()),
            ]));
        }
        None if s.pipeline.run.is_none() => lines.push(Line::from(Span::styled(
            "waiting for the first run: the branch head starts one",
            s.theme.dim(),
        ))),
        None => {}
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// A progress bar in a detail (`████░░`) drawn with `#` and `-` on an ASCII terminal.
fn ascii_bar(detail: &str, ascii: bool) -> String {
    if ascii {
        detail.replace('█', "#").replace('░', "-")
    } else {
        detail.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn graph_while_training() {
        let s = training_state();
        let (text, buf) = render_view(&s, 160, 8, draw);
        insta::assert_snapshot!(text);
        // Glyph colours: passed green, running yellow (spinner), waiting grey.
        let pass = find(&buf, "✓").unwrap();
        assert_eq!(buf[pass].fg, Color::Green);
        let spin = find_text(&buf, "Train").unwrap();
        assert_eq!(buf[(spin.x - 2, spin.y)].fg, Color::Yellow);
        let wait = find(&buf, "○").unwrap();
        assert_eq!(buf[wait].fg, Color::DarkGray);
    }

    #[test]
    fn graph_failed_stage_is_red() {
        let s = image_failed_state();
        let (text, buf) = render_view(&s, 160, 8, draw);
        insta::assert_snapshot!(text);
        let x = find(&buf, "✗").unwrap();
        assert_eq!(buf[x].fg, Color::Red);
        assert!(buf[x].modifier.contains(Modifier::BOLD));
    }

    /// The image build in progress: step, apt's packages and the estimate in the detail line.
    fn building_state() -> UiState {
        let mut s = image_failed_state();
        let p = &mut s.pipeline;
        if let Some(r) = p.run.as_mut() {
            r.status = crate::core::model::RunStatus::Running;
            r.reason = None;
        }
        let image = p.stage_mut(Stage::Image);
        image.status = StageStatus::Running;
        image.finished_ms = None;
        image.detail =
            "step 3/5 · apt ████░░░░░░ 120/310 unpacked · about 4m left (last build took 7m50s)"
                .into();
        s
    }

    #[test]
    fn graph_image_build_shows_its_progress() {
        let s = building_state();
        let (text, _) = render_view(&s, 160, 8, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("step 3/5 · apt ████░░░░░░ 120/310 unpacked · about 4m left"));
    }

    #[test]
    fn graph_image_build_bar_in_ascii() {
        let mut s = building_state();
        s.ascii = true;
        let (text, _) = render_view(&s, 160, 8, draw);
        assert!(text.contains("apt ####------ 120/310"), "{text}");
    }

    #[test]
    fn graph_awaiting_approval_does_not_spin() {
        let s = awaiting_state();
        let (text, buf) = render_view(&s, 160, 8, draw);
        insta::assert_snapshot!(text);
        let q = find(&buf, "?").unwrap();
        assert_eq!(buf[q].fg, Color::Yellow);
    }

    #[test]
    fn graph_target_reached_compact() {
        let mut s = finished_state();
        s.focus = Pane::Graph;
        s.stage_sel = 4;
        let (text, buf) = render_view(&s, 100, 6, draw);
        insta::assert_snapshot!(text);
        // The selected stage keeps a visible mark without colour too (bold on the selection colours).
        let e = find_text(&buf, "Eval").unwrap();
        assert!(buf[e].modifier.contains(Modifier::BOLD));
        assert_eq!(buf[e].bg, Color::Cyan);
    }

    #[test]
    fn graph_colourblind_theme_uses_blue_and_orange() {
        let mut s = image_failed_state();
        s.theme = crate::tui::theme::Theme::load(
            "colorblind",
            std::path::Path::new("/nonexistent"),
            false,
        )
        .unwrap();
        let (_, buf) = render_view(&s, 160, 8, draw);
        assert_eq!(
            buf[find(&buf, "✗").unwrap()].fg,
            Color::Rgb(0xe6, 0x9f, 0x00)
        );
        assert_eq!(
            buf[find(&buf, "✓").unwrap()].fg,
            Color::Rgb(0x00, 0x72, 0xb2)
        );
    }

    #[test]
    fn graph_no_color_is_plain() {
        let mut s = training_state();
        s.theme = crate::tui::theme::Theme::default_dark(true);
        let (_, buf) = render_view(&s, 160, 8, draw);
        assert_eq!(buf[find(&buf, "✓").unwrap()].fg, Color::Reset);
    }
}
