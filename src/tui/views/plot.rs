//! The metric plot: the final value of each iteration with the target as a line and the best
//! iteration marked; under it the per-epoch curve of the running (or latest) iteration.
//!
//! Braille markers by default; with `ascii` the points are `*`, the target `-` and the best `#`, for
//! terminals and fonts without Braille. An iteration stopped early by pruning is a cross (`×`, `x`)
//! in its own colour at the last value it reported, apart from the line of completed iterations: its
//! value is partial, and it is not a failure.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use crate::core::model::IterStatus;
use crate::engine::state::{IterState, RunState};

use super::super::state::{Pane, UiState};
use super::super::trials;
use super::lanes;
use super::{pane_block, styled};
use crate::core::text;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let metric = s
        .pipeline
        .run
        .as_ref()
        .and_then(|r| r.config.as_ref())
        .map(|c| (c.metric.name.clone(), c.metric.target));
    let title = match &metric {
        Some((name, target)) => title(s, name, *target, area.width),
        None => Vec::new(),
    };
    let block = pane_block(s, Pane::Plot, title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = s.pipeline.run.as_ref() else {
        f.render_widget(Paragraph::new(styled("no run yet", s.theme.dim())), inner);
        return;
    };
    let target = metric.as_ref().map(|m| m.1);
    let parts = if inner.height >= 14 {
        Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
            .split(inner)
            .to_vec()
    } else {
        vec![inner]
    };
    draw_finals(s, r, target, parts[0], f);
    let Some(area) = parts.get(1) else { return };
    if trials::multi(&s.pipeline) {
        draw_trials(s, r, target, *area, f);
        return;
    }
    let Some(it) = r.current() else { return };
    draw_epochs(s, it, target, *area, f);
}

/// The per-epoch points of `it` as `(epoch, value)`, finite values only.
fn epoch_points(it: &IterState) -> Vec<(f64, f64)> {
    it.points
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.is_finite())
        .map(|(i, (e, v))| (f64::from(e.unwrap_or(i as u32 + 1)), *v))
        .collect()
}

/// Trials side by side: every iteration's per-epoch curve on one chart, each running one in its
/// own colour (legend `#3 e1`), the finished ones dimmed behind them.
fn draw_trials(s: &UiState, r: &RunState, target: Option<f64>, area: Rect, f: &mut Frame) {
    let order = trials::running_nos(&s.pipeline);
    let curves: Vec<(&IterState, Vec<(f64, f64)>)> = r
        .iterations
        .iter()
        .map(|it| (it, epoch_points(it)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if curves.is_empty() {
        let nos: Vec<String> = order.iter().map(|n| format!("#{n}")).collect();
        f.render_widget(
            Paragraph::new(styled(
                format!("{}: waiting for the first epoch", nos.join(" ")),
                s.theme.dim(),
            )),
            area,
        );
        return;
    }
    let epochs = curves
        .iter()
        .map(|(it, c)| {
            let last = c.iter().map(|p| p.0).fold(1.0, f64::max);
            it.epochs.map_or(last, |e| f64::from(e).max(last))
        })
        .fold(2.0, f64::max);
    let ex = (1.0, epochs);
    let epoch_target: Vec<(f64, f64)> = target
        .map(|t| vec![(ex.0, t), (ex.1, t)])
        .unwrap_or_default();
    let (point, line) = markers(s);
    let mut sets = Vec::new();
    // Finished curves first, so that the running ones are drawn over them.
    for (_, c) in curves.iter().filter(|(it, _)| !order.contains(&it.no)) {
        sets.push(series(line, GraphType::Line, s.theme.dim(), c));
    }
    if target.is_some() {
        sets.push(series(
            if s.ascii { Marker::Custom('-') } else { line },
            GraphType::Line,
            s.theme.color(s.theme.colors.target),
            &epoch_target,
        ));
    }
    let mut legend = Vec::new();
    for (it, c) in curves.iter().filter(|(it, _)| order.contains(&it.no)) {
        let style = lanes::trial_style(s, it.no);
        sets.push(series(line, GraphType::Line, style, c));
        sets.push(series(point, GraphType::Scatter, style, c));
        legend.push(Span::styled(
            format!(
                "{}{} #{} {}",
                if legend.is_empty() { "" } else { "  " },
                glyph(point),
                it.no,
                trials::engine_of(it)
            ),
            style,
        ));
    }
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .chain(target)
        .collect();
    with_legend(s, area, f, legend, chart(s, sets, ex, &ys, "epoch"));
}

/// One series of points, joined (`GraphType::Line`) or not.
fn series<'a>(
    marker: Marker,
    kind: GraphType,
    style: Style,
    data: &'a [(f64, f64)],
) -> Dataset<'a> {
    Dataset::default()
        .marker(marker)
        .graph_type(kind)
        .style(style)
        .data(data)
}

/// The pane title's metric and target, shortened to fit the frame: the name goes first, then the
/// target; the target's value is never cut.
fn title(s: &UiState, name: &str, target: f64, width: u16) -> Vec<Span<'static>> {
    // " Metric " and "· " before, " " after, two corners and one dash of frame.
    let room = usize::from(width).saturating_sub(" Metric ".len() + 2 + 1 + 3);
    [
        format!("{name} · target {target}"),
        format!("target {target}"),
    ]
    .into_iter()
    .find(|t| t.chars().count() <= room)
    .map(|t| vec![Span::styled(t, s.theme.text())])
    .unwrap_or_default()
}

/// `(iteration, value)` of the finished iterations with a finite value that `keep` selects.
fn values(r: &RunState, keep: impl Fn(IterStatus) -> bool) -> Vec<(f64, f64)> {
    r.iterations
        .iter()
        .filter(|i| i.status.is_final() && keep(i.status))
        .filter_map(|i| {
            i.final_value
                .filter(|v| v.is_finite())
                .map(|v| (f64::from(i.no.0), v))
        })
        .collect()
}

/// The final value per finished iteration, with the target line and the best iteration marked.
fn draw_finals(s: &UiState, r: &RunState, target: Option<f64>, area: Rect, f: &mut Frame) {
    let finals = values(r, |st| {
        !matches!(st, IterStatus::Failed | IterStatus::Pruned)
    });
    let pruned = values(r, |st| st == IterStatus::Pruned);
    if finals.is_empty() && pruned.is_empty() {
        f.render_widget(
            Paragraph::new(styled(
                "per iteration: no finished iteration yet",
                s.theme.dim(),
            )),
            area,
        );
        return;
    }
    let max_iter = r
        .config
        .as_ref()
        .map_or(1, |c| c.budget.max_iterations)
        .max(r.iterations.len() as u32)
        .max(2);
    let best = r
        .best_iteration()
        .and_then(|b| b.final_value.filter(|v| v.is_finite()).map(|v| (b.no, v)));
    let best_pt: Vec<(f64, f64)> = best
        .map(|(n, v)| vec![(f64::from(n.0), v)])
        .unwrap_or_default();
    let x = (1.0, f64::from(max_iter));
    let target_line: Vec<(f64, f64)> = target.map(|t| vec![(x.0, t), (x.1, t)]).unwrap_or_default();
    let value_style = s.theme.color(s.theme.colors.value);
    let target_style = s.theme.color(s.theme.colors.target);
    let best_style = s
        .theme
        .color(s.theme.colors.best)
        .add_modifier(Modifier::BOLD);
    let (point, line) = markers(s);
    let mut sets = vec![
        series(line, GraphType::Line, value_style, &finals),
        series(point, GraphType::Scatter, value_style, &finals),
    ];
    let mut legend = vec![Span::styled(
        format!("{} per iteration", glyph(point)),
        value_style,
    )];
    let target_marker = if s.ascii { Marker::Custom('-') } else { line };
    if let Some(t) = target {
        sets.push(series(
            target_marker,
            GraphType::Line,
            target_style,
            &target_line,
        ));
        let dash = if s.ascii { "-" } else { "─" };
        legend.push(Span::styled(format!("  {dash} target {t}"), target_style));
    }
    if !pruned.is_empty() {
        let cross = if s.ascii {
            Marker::Custom('x')
        } else {
            Marker::Custom('×')
        };
        sets.push(series(cross, GraphType::Scatter, s.theme.pruned(), &pruned));
        legend.push(Span::styled(
            format!("  {} pruned", glyph(cross)),
            s.theme.pruned(),
        ));
    }
    if let Some((n, v)) = best {
        let mark = if s.ascii {
            Marker::Custom('#')
        } else {
            Marker::Block
        };
        sets.push(series(mark, GraphType::Scatter, best_style, &best_pt));
        legend.push(Span::styled(
            format!("  {} best #{n} {}", glyph(mark), text::value(v)),
            best_style,
        ));
    }
    let ys: Vec<f64> = finals
        .iter()
        .chain(&pruned)
        .map(|p| p.1)
        .chain(target)
        .collect();
    with_legend(s, area, f, legend, chart(s, sets, x, &ys, "iteration"));
}

/// The per-epoch curve of the running iteration, or of the latest one.
fn draw_epochs(s: &UiState, it: &IterState, target: Option<f64>, area: Rect, f: &mut Frame) {
    let curve: Vec<(f64, f64)> = it
        .points
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.is_finite())
        .map(|(i, (e, v))| (f64::from(e.unwrap_or(i as u32 + 1)), *v))
        .collect();
    if curve.is_empty() {
        f.render_widget(
            Paragraph::new(styled(
                format!("iteration {}: waiting for the first epoch", it.no),
                s.theme.dim(),
            )),
            area,
        );
        return;
    }
    let epochs = it
        .epochs
        .map(f64::from)
        .unwrap_or(1.0)
        .max(curve.iter().map(|p| p.0).fold(1.0, f64::max))
        .max(2.0);
    let ex = (1.0, epochs);
    let epoch_target: Vec<(f64, f64)> = target
        .map(|t| vec![(ex.0, t), (ex.1, t)])
        .unwrap_or_default();
    let (point, line) = markers(s);
    let epoch_style = s.theme.color(s.theme.colors.epoch);
    let mut sets = vec![
        series(line, GraphType::Line, epoch_style, &curve),
        series(point, GraphType::Scatter, epoch_style, &curve),
    ];
    if target.is_some() {
        sets.push(series(
            if s.ascii { Marker::Custom('-') } else { line },
            GraphType::Line,
            s.theme.color(s.theme.colors.target),
            &epoch_target,
        ));
    }
    let last = curve.last().map(|p| p.1).unwrap_or(f64::NAN);
    let legend = vec![Span::styled(
        format!(
            "{} iteration {} per epoch, now {}",
            glyph(point),
            it.no,
            text::value(last)
        ),
        epoch_style,
    )];
    let ys: Vec<f64> = curve.iter().map(|p| p.1).chain(target).collect();
    with_legend(s, area, f, legend, chart(s, sets, ex, &ys, "epoch"));
}

/// A one-line legend over the chart: the chart's own legend box does not fit small panes.
fn with_legend(_s: &UiState, area: Rect, f: &mut Frame, legend: Vec<Span<'_>>, chart: Chart<'_>) {
    if area.height < 3 {
        f.render_widget(chart, area);
        return;
    }
    f.render_widget(
        Paragraph::new(Line::from(fit_legend(legend, usize::from(area.width)))),
        Rect::new(area.x, area.y, area.width, 1),
    );
    f.render_widget(
        chart,
        Rect::new(area.x, area.y + 1, area.width, area.height - 1),
    );
}

/// The legend's items that fit in `width` whole (a value is never cut): the later items (the best,
/// then pruned, then the target, which the title also names) are kept first; those kept stay in
/// their order.
fn fit_legend(legend: Vec<Span<'_>>, width: usize) -> Vec<Span<'_>> {
    let mut room = width;
    let mut keep = vec![false; legend.len()];
    for (i, span) in legend.iter().enumerate().rev() {
        let w = span.width();
        if w <= room {
            room -= w;
            keep[i] = true;
        }
    }
    let mut kept: Vec<Span<'_>> = legend
        .into_iter()
        .zip(keep)
        .filter_map(|(span, k)| k.then_some(span))
        .collect();
    // The first item shown starts at the edge, not after the separator of one left out.
    if let Some(first) = kept.first_mut() {
        let trimmed = first.content.trim_start().to_string();
        first.content = trimmed.into();
    }
    kept
}

/// The marker of points and the marker of lines.
fn markers(s: &UiState) -> (Marker, Marker) {
    if s.ascii {
        (Marker::Custom('*'), Marker::Custom('.'))
    } else {
        (Marker::Dot, Marker::Braille)
    }
}

/// How a marker looks in the legend.
fn glyph(m: Marker) -> String {
    match m {
        Marker::Custom(c) => c.to_string(),
        Marker::Block => "█".into(),
        Marker::Dot => "•".into(),
        _ => "⣀".into(),
    }
}

/// A chart over `x` with y bounds that hold every value in `ys` plus a margin.
fn chart<'a>(
    s: &UiState,
    sets: Vec<Dataset<'a>>,
    x: (f64, f64),
    ys: &[f64],
    x_title: &'a str,
) -> Chart<'a> {
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.01);
    let (lo, hi) = (lo - pad, hi + pad);
    let label = |v: f64| Span::styled(format!("{v:.2}"), s.theme.dim());
    let xl = |v: f64| Span::styled(format!("{v:.0}"), s.theme.dim());
    Chart::new(sets)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .title(Line::from(Span::styled(x_title, s.theme.dim())))
                .bounds([x.0, x.1])
                .labels([xl(x.0), xl((x.0 + x.1) / 2.0), xl(x.1)])
                .style(s.theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([label(lo), label((lo + hi) / 2.0), label(hi)])
                .style(s.theme.dim()),
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn plot_while_training() {
        let s = training_state();
        let (text, _) = render_view(&s, 64, 20, draw);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn plot_target_reached_marks_best() {
        let s = finished_state();
        let (text, buf) = render_view(&s, 64, 20, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("best #3 0.9611"), "{text}");
        let best = find(&buf, "█").unwrap();
        assert_eq!(buf[best].fg, Color::Green);
    }

    #[test]
    fn plot_ascii_markers() {
        let mut s = finished_state();
        s.ascii = true;
        let (text, _) = render_view(&s, 64, 20, draw);
        insta::assert_snapshot!(text);
        assert!(
            !text.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
            "no Braille"
        );
    }

    #[test]
    fn a_pruned_iteration_is_a_cross_in_its_own_colour_not_a_failure() {
        let s = searched_state();
        let (text, buf) = render_view(&s, 64, 20, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("× pruned"), "{text}");
        let cross = find(&buf, "×").unwrap();
        assert_eq!(buf[cross].fg, Color::LightBlue);
        assert_ne!(buf[cross].fg, Color::Red, "never the failure colour");
    }

    /// In a narrow pane the legend keeps whole items, the best and the pruned cross first: no
    /// value is cut.
    #[test]
    fn a_narrow_legend_drops_whole_items_and_keeps_best_and_pruned() {
        let s = searched_state();
        let (text, _) = render_view(&s, 40, 12, draw);
        let legend = text.lines().nth(1).unwrap();
        assert!(legend.contains("× pruned"), "{legend}");
        assert!(legend.contains("█ best #5 0.9633"), "{legend}");
        assert!(!legend.contains("target 0."), "left out whole:\n{legend}");
        let (wide, _) = render_view(&s, 64, 12, draw);
        let legend = wide.lines().nth(1).unwrap();
        assert!(legend.contains("─ target 0.95"), "{legend}");
    }

    #[test]
    fn plot_before_any_run() {
        let s = base_state();
        let (text, _) = render_view(&s, 64, 8, draw);
        insta::assert_snapshot!(text);
    }

    /// Trials side by side: their curves together, one colour each, named `#3 local` in the legend;
    /// the finished ones dimmed behind them.
    #[test]
    fn plot_running_trials_together() {
        let s = parallel_state();
        let (text, buf) = render_view(&s, 64, 24, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains("• #3 local  • #4 e1  • #5 e1"), "{text}");
        assert_eq!(
            buf[find_text(&buf, "#3 local").unwrap()].fg,
            Color::LightCyan
        );
        assert_eq!(
            buf[find_text(&buf, "#4 e1").unwrap()].fg,
            Color::Rgb(0xff, 0x87, 0x00)
        );
        assert_eq!(buf[find_text(&buf, "#5 e1").unwrap()].fg, Color::Yellow);
        let dimmed = (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .any(|p| {
                buf[p].fg == Color::DarkGray
                    && ('\u{2801}'..='\u{28ff}')
                        .contains(&buf[p].symbol().chars().next().unwrap_or(' '))
            });
        assert!(dimmed, "finished curves are drawn dimmed");
    }
}
