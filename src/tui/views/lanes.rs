//! The Train stage's lanes while trials run side by side: one line per engine with its state, its
//! free slots and each trial on it (`#3 epoch 4 0.912 (1m12s) ↪ from e1`), or, when the graph has
//! one row for them, all engines on one line. A cluster engine's lanes are its nodes: each with its
//! role, state, what our trials reserve there (`cpu 1.5/2 mem 0.5/3.8 GiB`) and its trials. Each
//! trial's number is drawn in its plot colour, so a lane and its curve are matched at a glance.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::core::ids::IterationNo;
use crate::engine::state::IterState;

use super::super::state::UiState;
use super::super::trials::{self, Health, Lane};

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    if area.height == 0 {
        return;
    }
    let lanes = trials::lanes(&s.pipeline, s.docker_up());
    if usize::from(area.height) >= lanes.len() {
        let name_w = lanes
            .iter()
            .map(|l| l.name.chars().count())
            .max()
            .unwrap_or(0);
        let state_w = lanes
            .iter()
            .map(|l| trials::lane_state(l, s.now_ms).chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<Line<'static>> = lanes
            .iter()
            .map(|l| lane_line(s, l, (name_w, state_w), usize::from(area.width)))
            .collect();
        f.render_widget(Paragraph::new(lines), area);
    } else {
        let line = one_line(s, &lanes, usize::from(area.width));
        f.render_widget(Paragraph::new(line), Rect { height: 1, ..area });
    }
}

/// `●` up, `✕` down, `○` not asked yet (`*`, `x`, `.` in ASCII), in the theme's colour.
pub fn health_glyph(s: &UiState, h: Health) -> (&'static str, Style) {
    match (h, s.ascii) {
        (Health::Up, false) => ("●", s.theme.good()),
        (Health::Up, true) => ("*", s.theme.good()),
        (Health::Down { .. }, false) => ("✕", s.theme.bad()),
        (Health::Down { .. }, true) => ("x", s.theme.bad()),
        (Health::Unknown, false) => ("○", s.theme.dim()),
        (Health::Unknown, true) => (".", s.theme.dim()),
    }
}

/// The trial's colour, by its number: a trial keeps its colour while others start and end (the
/// theme's four cycle; with up to four trials at once, consecutive numbers never share one).
pub fn trial_style(s: &UiState, no: IterationNo) -> Style {
    s.theme.trial((no.0 as usize).saturating_sub(1))
}

/// ` e1     ● 0/2 free   #3 epoch 4 0.912 (1m12s) ↪ from e2 · #4 …`
fn lane_line(
    s: &UiState,
    l: &Lane<'_>,
    (name_w, state_w): (usize, usize),
    width: usize,
) -> Line<'static> {
    let (glyph, style) = health_glyph(s, l.health);
    let head = vec![
        Span::styled(
            format!(" {:<name_w$} ", l.name),
            s.theme.text().add_modifier(Modifier::BOLD),
        ),
        Span::styled(glyph, style),
        Span::styled(
            format!(" {:<state_w$}  ", trials::lane_state(l, s.now_ms)),
            if matches!(l.health, Health::Down { .. }) {
                s.theme.bad()
            } else {
                s.theme.dim()
            },
        ),
    ];
    let spans_w = |g: &[Vec<Span<'static>>]| -> usize {
        g.iter().flatten().map(Span::width).sum::<usize>() + 3 * g.len()
    };
    let head_w: usize = head.iter().map(Span::width).sum();
    let mut groups: Vec<Vec<Span<'static>>> =
        l.trials.iter().map(|it| trial_spans(s, it, true)).collect();
    // Too long for the line: every trial in its short form rather than some of them left out.
    if head_w + spans_w(&groups) > width {
        groups = l
            .trials
            .iter()
            .map(|it| trial_spans(s, it, false))
            .collect();
    }
    if groups.is_empty() && l.health == Health::Up {
        let mut spans = head;
        spans.push(Span::styled("idle", s.theme.dim()));
        return Line::from(spans);
    }
    let sep = Span::styled(" · ", s.theme.dim());
    Line::from(fit_groups(head, groups, &sep, width))
}

/// `#3 epoch 4 0.912 (1m12s) ↪ from e1`, or without the time and the words when `long` is false:
/// `#3 0.912 ↪e1` (`#3 …` before its first value).
fn trial_spans(s: &UiState, it: &IterState, long: bool) -> Vec<Span<'static>> {
    let text = trials::trial_text(it, s.now_ms);
    let number = format!("#{}", it.no);
    let rest = if long {
        text[number.len()..].to_string()
    } else {
        let none = if s.ascii { " ..." } else { " …" };
        it.final_value.map_or_else(
            || none.to_string(),
            |v| format!(" {}", crate::core::text::value_short(v)),
        )
    };
    let mut spans = vec![
        Span::styled(number, trial_style(s, it.no)),
        Span::styled(rest, s.theme.text()),
    ];
    if let Some(g) = trials::gpu_text(it).filter(|_| long) {
        spans.push(Span::styled(format!(" {g}"), s.theme.dim()));
    }
    let moved = if long {
        trials::moved_text(it, s.ascii).map(|m| format!(" {m}"))
    } else {
        let arrow = if s.ascii { "<-" } else { "↪" };
        trials::moved_from(it).map(|from| format!(" {arrow}{from}"))
    };
    if let Some(m) = moved {
        spans.push(Span::styled(m, s.theme.warn()));
    }
    spans
}

/// Every engine on one line: `local ● 0/1 #5 0.884 │ e1 ● 0/2 #3 0.912 ↪e2 #4 0.70 │ e2 ✕ down 12s`.
fn one_line(s: &UiState, lanes: &[Lane<'_>], width: usize) -> Line<'static> {
    let groups: Vec<Vec<Span<'static>>> = lanes
        .iter()
        .map(|l| {
            let (glyph, style) = health_glyph(s, l.health);
            let state = match (l.node, l.health) {
                (Some(n), _) => format!(" {}", trials::node_short(n)),
                (None, Health::Up) => format!(" {}/{}", l.free, l.slots),
                _ => format!(" {}", trials::lane_state(l, s.now_ms)),
            };
            let mut g = vec![
                Span::styled(
                    format!("{} ", l.name),
                    s.theme.text().add_modifier(Modifier::BOLD),
                ),
                Span::styled(glyph, style),
                Span::styled(state.trim_end().to_string(), s.theme.dim()),
            ];
            for it in &l.trials {
                g.push(Span::raw(" "));
                g.extend(trial_spans(s, it, false));
            }
            g
        })
        .collect();
    let sep = Span::styled(if s.ascii { " | " } else { " │ " }, s.theme.dim());
    Line::from(fit_groups(vec![Span::raw(" ")], groups, &sep, width))
}

/// `head` and then as many whole `groups` as fit in `width`, separated by `sep`; the groups left
/// out are counted (`+2 more`), so nothing is cut in the middle of a number.
fn fit_groups(
    head: Vec<Span<'static>>,
    groups: Vec<Vec<Span<'static>>>,
    sep: &Span<'static>,
    width: usize,
) -> Vec<Span<'static>> {
    let w = |spans: &[Span<'_>]| spans.iter().map(Span::width).sum::<usize>();
    let total = groups.len();
    let mut out = head;
    for (i, g) in groups.into_iter().enumerate() {
        let more = format!(" +{} more", total - i);
        let sep_w = if i == 0 { 0 } else { sep.width() };
        let left = total - i - 1;
        let reserve = if left > 0 { more.chars().count() } else { 0 };
        if w(&out) + sep_w + w(&g) + reserve > width {
            out.push(Span::styled(more, sep.style));
            return out;
        }
        if i > 0 {
            out.push(sep.clone());
        }
        out.extend(g);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::super::graph;

    /// Three engines, three trials, one moved, one engine down: a lane each on a tall screen.
    #[test]
    fn graph_lanes_per_engine() {
        let s = parallel_state();
        let (text, buf) = render_view(&s, 160, 11, graph::draw);
        insta::assert_snapshot!(text);
        for part in [
            "local ● 0/1 free",
            "#3 epoch 2 0.884 (21s)",
            "e1    ● 0/2 free",
            "#4 epoch 4 0.912 (1m12s) ↪ from e2 · #5 epoch 1 0.701 (8.0s)",
            "e2    ✕ down 12s",
            "iterations #3 #4 #5 of 12",
        ] {
            assert!(text.contains(part), "{part} in\n{text}");
        }
        assert_eq!(buf[find(&buf, "✕").unwrap()].fg, Color::Red);
        // Each trial's number in its plot colour.
        assert_eq!(
            buf[find_text(&buf, "#3 epoch").unwrap()].fg,
            Color::LightCyan
        );
        assert_eq!(
            buf[find_text(&buf, "#4 epoch").unwrap()].fg,
            Color::Rgb(0xff, 0x87, 0x00)
        );
        assert_eq!(buf[find_text(&buf, "#5 epoch").unwrap()].fg, Color::Yellow);
    }

    /// A low graph gets one line for every engine; nothing is cut in the middle of a number.
    #[test]
    fn graph_lanes_on_one_line_when_low() {
        let s = parallel_state();
        let (text, _) = render_view(&s, 100, 7, graph::draw);
        insta::assert_snapshot!(text);
        assert!(
            text.contains("local ● 0/1 #3 0.884 │ e1 ● 0/2 #4 0.912 ↪e2 #5 0.701 │ e2 ✕ down 12s"),
            "{text}"
        );
        let (narrow, _) = render_view(&s, 56, 7, graph::draw);
        assert!(narrow.contains("local ● 0/1 #3 0.884 +2 more"), "{narrow}");
    }

    #[test]
    fn graph_lanes_in_ascii() {
        let mut s = parallel_state();
        s.ascii = true;
        let (text, _) = render_view(&s, 160, 11, graph::draw);
        assert!(text.contains("e2    x down 12s"), "{text}");
        assert!(text.contains("<- from e2"), "{text}");
    }

    /// A swarm's lanes are its nodes: the leader idle, a worker with its trial and what it
    /// reserves, a node down in the failure colour with the trial it had; the trial that waits for
    /// a node is `unplaced`.
    #[test]
    fn graph_lanes_per_swarm_node() {
        let s = super::super::fixtures_swarm::swarm_state();
        let (text, buf) = render_view(&s, 160, 12, graph::draw);
        insta::assert_snapshot!(text);
        for part in [
            "10.78.0.11 ● leader cpu 0/2 mem 0/4 GiB",
            "idle",
            "10.78.0.12 ● cpu 1.5/2 mem 1.3/4 GiB",
            "#3 epoch 2 0.884 (21s)",
            "10.78.0.13 ✕ down cpu 1.5/2 mem 1.3/4 GiB",
            "#4 epoch 4 0.912 (1m12s)",
            "unplaced",
            "#5 waiting for epoch 1",
        ] {
            assert!(text.contains(part), "{part} in\n{text}");
        }
        assert_eq!(buf[find(&buf, "✕").unwrap()].fg, Color::Red);
        assert_eq!(buf[find_text(&buf, "down cpu").unwrap()].fg, Color::Red);
        assert_eq!(buf[find(&buf, "●").unwrap()].fg, Color::Green);
        assert_eq!(
            buf[find_text(&buf, "#3 epoch").unwrap()].fg,
            Color::LightCyan
        );
    }

    /// A low graph: every node on one line, the CPUs our trials reserve on each.
    #[test]
    fn graph_swarm_nodes_on_one_line_when_low() {
        let s = super::super::fixtures_swarm::swarm_state();
        let (text, _) = render_view(&s, 130, 7, graph::draw);
        insta::assert_snapshot!(text);
        assert!(
            text.contains("10.78.0.11 ● cpu 0/2 │ 10.78.0.12 ● cpu 1.5/2 #3 0.884 │ 10.78.0.13 ✕ down #4 0.912"),
            "{text}"
        );
    }

    /// Beside another engine, a node's lane names its engine.
    #[test]
    fn swarm_node_lanes_beside_another_engine_name_the_swarm() {
        let s = super::super::fixtures_swarm::swarm_pool_state();
        let (text, _) = render_view(&s, 160, 13, graph::draw);
        assert!(text.contains("local         ● 1/1 free"), "{text}");
        assert!(text.contains("s1/10.78.0.12 ● cpu 1.5/2"), "{text}");
    }
}
