//! The search space view: one small multiple per dimension of `[tweak.space]`, each plotting the
//! values tried along that dimension (x) against the metric they reached (y), so that where the good
//! values lie shows at a glance. The best point is a block, pruned iterations a cross at the value
//! they had when stopped, the target a line; the best quarter of the completed points is underlined
//! on the x axis, and the value being tried now is marked under it.
//!
//! Points are placed cell by cell on a grid drawn directly into the buffer (no chart widget): tick
//! labels must sit exactly under the values they name, which the chart's evenly spread labels do not.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::core::config::Direction;
use crate::core::text;

use super::super::keymap::Action;
use super::super::layout::{space_frame, space_grid, space_panels};
use super::super::search_space::{Panel, Point, Scale, SearchPlot, search_plot, ticks};
use super::super::state::{Mode, UiState};
use super::{framed, styled};

/// The glyphs of one drawing: Unicode or ASCII.
struct Glyphs {
    point: &'static str,
    pruned: &'static str,
    best: &'static str,
    target: &'static str,
    axis_v: &'static str,
    axis_h: &'static str,
    corner: &'static str,
    top: &'static str,
    now: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    point: "•",
    pruned: "×",
    best: "█",
    target: "─",
    axis_v: "│",
    axis_h: "─",
    corner: "└",
    top: "━",
    now: "▲",
};

const ASCII: Glyphs = Glyphs {
    point: "*",
    pruned: "x",
    best: "#",
    target: "-",
    axis_v: "|",
    axis_h: "-",
    corner: "+",
    top: "=",
    now: "^",
};

fn glyphs(s: &UiState) -> &'static Glyphs {
    if s.ascii { &ASCII } else { &UNICODE }
}

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let frame = space_frame(area);
    let scroll = match s.mode {
        Mode::Space { scroll } => scroll,
        _ => 0,
    };
    let plot = s.pipeline.run.as_ref().and_then(search_plot);
    let panels_area = space_panels(frame);
    let grid = space_grid(panels_area, plot.as_ref().map_or(0, |p| p.panels.len()));
    let scroll = scroll.min(grid.rows.saturating_sub(grid.visible));
    let block = framed(s, true)
        .title(title(s, plot.as_ref()))
        .title_bottom(Line::from(Span::styled(
            bottom_hint(s, scroll, grid.rows, grid.visible),
            s.theme.dim(),
        )));
    f.render_widget(Clear, frame);
    f.render_widget(block, frame);
    let legend_area = Rect::new(
        panels_area.x,
        panels_area.y.saturating_sub(1),
        panels_area.width,
        1,
    );
    let Some(plot) = plot else {
        f.render_widget(
            Paragraph::new(styled("no run yet", s.theme.dim())),
            legend_area,
        );
        return;
    };
    if plot.panels.is_empty() {
        f.render_widget(
            Paragraph::new(styled(
                "this run's mlops.toml has no [tweak.space]: nothing is searched",
                s.theme.dim(),
            )),
            legend_area,
        );
        return;
    }
    f.render_widget(
        Paragraph::new(legend(s, &plot, legend_area.width)),
        legend_area,
    );
    let width = panels_area.width / u16::try_from(grid.cols).unwrap_or(1).max(1);
    for (i, panel) in plot.panels.iter().enumerate().skip(scroll * grid.cols) {
        let row = i / grid.cols - scroll;
        if row >= grid.visible {
            break;
        }
        let col = (i % grid.cols) as u16;
        let last_col = i % grid.cols == grid.cols - 1 || i + 1 == plot.panels.len();
        let w = if last_col {
            panels_area.width - col * width
        } else {
            width
        };
        let a = Rect::new(
            panels_area.x + col * width,
            panels_area.y + row as u16 * grid.panel_h,
            w,
            grid.panel_h,
        );
        draw_panel(s, &plot, panel, a, f);
    }
}

/// ` Search space · run 3 · accuracy · 4 completed, 1 pruned, 1 failed `: failed iterations and
/// those the operator stopped have no value to place and are only counted.
fn title(s: &UiState, plot: Option<&SearchPlot>) -> Line<'static> {
    let mut spans = vec![Span::styled(" Search space ", s.theme.title(true))];
    let (Some(r), Some(p)) = (s.pipeline.run.as_ref(), plot) else {
        return Line::from(spans);
    };
    let mut counts = format!("{} completed", p.completed);
    if p.pruned > 0 {
        counts.push_str(&format!(", {} pruned", p.pruned));
    }
    if p.failed > 0 {
        counts.push_str(&format!(", {} failed", p.failed));
    }
    if p.stopped > 0 {
        counts.push_str(&format!(", {} stopped", p.stopped));
    }
    spans.push(Span::styled(
        format!("· run {} · {} · {counts} ", r.id, p.metric),
        s.theme.text(),
    ));
    Line::from(spans)
}

fn bottom_hint(s: &UiState, scroll: usize, rows: usize, visible: usize) -> String {
    let k = &s.keymap;
    let close = format!("esc or {} closes", k.key_of(Action::SearchSpace));
    if rows <= visible {
        return format!(" {close} ");
    }
    let (up, down) = if s.ascii { ("^", "v") } else { ("↑", "↓") };
    let below = rows - visible - scroll;
    format!(
        " rows {}-{} of {rows}: {up} {scroll} above · {down} {below} below · {}/{} scroll · {close} ",
        scroll + 1,
        scroll + visible,
        k.key_of(Action::Up),
        k.key_of(Action::Down),
    )
}

/// What the marks on screen mean, in the colours they are drawn in (a mark absent from every panel
/// is not explained); the long forms give way to short ones when the line is narrow.
fn legend(s: &UiState, p: &SearchPlot, width: u16) -> Line<'static> {
    let g = glyphs(s);
    let better = match p.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    let now = p.panels.iter().any(|x| x.now.is_some());
    let top = p.panels.iter().any(|x| !x.top.is_empty());
    // (long form, short form, style); an empty long form is left out.
    let items: [(String, String, Style); 7] = [
        (
            format!("{} completed", g.point),
            format!("{} completed", g.point),
            s.theme.color(s.theme.colors.value),
        ),
        (
            when(
                p.pruned > 0,
                format!("  {} pruned (value when stopped)", g.pruned),
            ),
            format!("  {} pruned", g.pruned),
            s.theme.pruned(),
        ),
        (
            p.best.map_or(String::new(), |(n, v)| {
                format!("  {} best #{n} {}", g.best, text::value(v))
            }),
            String::new(),
            best_style(s),
        ),
        (
            format!("  {} target {}", g.target, p.target),
            String::new(),
            s.theme.color(s.theme.colors.target),
        ),
        (
            when(top, format!("  {} best quarter", g.top)),
            String::new(),
            best_style(s),
        ),
        (
            when(now, format!("  {} now", g.now)),
            String::new(),
            s.theme.status(crate::engine::StageStatus::Running),
        ),
        (format!("  · {better}"), String::new(), s.theme.dim()),
    ];
    let long: usize = items.iter().map(|(t, _, _)| t.chars().count()).sum();
    let narrow = long > usize::from(width);
    let spans = items
        .into_iter()
        .enumerate()
        .filter(|(_, (t, _, _))| !t.is_empty())
        // When narrow the last item ("higher is better") goes and long forms shorten.
        .filter(|(i, _)| !narrow || *i < 6)
        .map(|(_, (t, short, st))| {
            let t = if narrow && !short.is_empty() {
                short
            } else {
                t
            };
            Span::styled(t, st)
        })
        .collect::<Vec<_>>();
    Line::from(spans)
}

/// `text` when `shown`, else nothing.
fn when(shown: bool, text: String) -> String {
    if shown { text } else { String::new() }
}

fn best_style(s: &UiState) -> Style {
    s.theme
        .color(s.theme.colors.best)
        .add_modifier(Modifier::BOLD)
}

/// A panel's frame title: the dimension, how its axis reads, and its best value.
fn panel_title(s: &UiState, panel: &Panel) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            format!(" {} ", panel.name),
            s.theme.text().add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("· {} ", panel.scale.kind()), s.theme.dim()),
    ];
    if let Some(v) = &panel.best_value {
        spans.push(Span::styled(
            format!("· best {} ", text::param_value(v)),
            best_style(s),
        ));
    }
    Line::from(spans)
}

/// The vertical extent: every value and the target, with a margin so no point sits on the frame.
fn y_bounds(plot: &SearchPlot, panel: &Panel) -> (f64, f64) {
    let ys = panel.points.iter().map(|p| p.y).chain([plot.target]);
    let lo = ys.clone().fold(f64::INFINITY, f64::min);
    let hi = ys.fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.08).max(0.005);
    (lo - pad, hi + pad)
}

/// Decimals that tell the y labels apart: two, more when the span is narrow.
fn y_decimals(lo: f64, hi: f64) -> usize {
    let span = (hi - lo).abs().max(1e-9);
    (1.0 - span.log10().floor()).clamp(2.0, 4.0) as usize
}

/// Where things go inside a panel: y labels, the axis column, the graph, the axis row, the x labels.
struct PanelGeometry {
    /// The graph's cells: `x..x+w`, `y..y+h`.
    graph: Rect,
    /// The column of the y axis and the row of the x axis.
    axis_x: u16,
    axis_y: u16,
    x: (f64, f64),
    y: (f64, f64),
}

impl PanelGeometry {
    fn col(&self, x: f64) -> u16 {
        let t = ((x - self.x.0) / (self.x.1 - self.x.0)).clamp(0.0, 1.0);
        self.graph.x + (t * f64::from(self.graph.width.saturating_sub(1))).round() as u16
    }

    fn row(&self, y: f64) -> u16 {
        let t = ((self.y.1 - y) / (self.y.1 - self.y.0)).clamp(0.0, 1.0);
        self.graph.y + (t * f64::from(self.graph.height.saturating_sub(1))).round() as u16
    }
}

fn draw_panel(s: &UiState, plot: &SearchPlot, panel: &Panel, area: Rect, f: &mut Frame) {
    let block = framed(s, false).title(panel_title(s, panel));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.width < 12 || inner.height < 4 {
        return;
    }
    let (lo, hi) = y_bounds(plot, panel);
    let dec = y_decimals(lo, hi);
    let labels = [hi, plot.target, lo].map(|v| format!("{v:.dec$}"));
    let label_w = labels.iter().map(|l| l.len()).max().unwrap_or(4) as u16;
    let graph = Rect::new(
        inner.x + label_w + 1,
        inner.y,
        inner.width.saturating_sub(label_w + 1).max(1),
        inner.height - 2,
    );
    let geo = PanelGeometry {
        graph,
        axis_x: inner.x + label_w,
        axis_y: inner.y + inner.height - 2,
        x: panel.scale.bounds(),
        y: (lo, hi),
    };
    let buf = f.buffer_mut();
    draw_axes(s, &geo, &labels, buf);
    draw_marks(s, panel, &geo, buf);
    draw_x_labels(s, panel, &geo, inner, buf);
}

fn put(buf: &mut Buffer, x: u16, y: u16, symbol: &str, style: Style) {
    if buf.area.contains((x, y).into()) {
        buf[(x, y)].set_symbol(symbol).set_style(style);
    }
}

fn put_text(buf: &mut Buffer, x: u16, y: u16, text: &str, style: Style) {
    for (i, c) in text.chars().enumerate() {
        put(buf, x + i as u16, y, c.encode_utf8(&mut [0; 4]), style);
    }
}

/// The axes, the y labels (top, target, bottom) and the target line.
fn draw_axes(s: &UiState, geo: &PanelGeometry, labels: &[String; 3], buf: &mut Buffer) {
    let g = glyphs(s);
    let dim = s.theme.dim();
    let target = s.theme.color(s.theme.colors.target);
    for y in geo.graph.y..geo.axis_y {
        put(buf, geo.axis_x, y, g.axis_v, dim);
    }
    put(buf, geo.axis_x, geo.axis_y, g.corner, dim);
    for x in geo.graph.x..geo.graph.right() {
        put(buf, x, geo.axis_y, g.axis_h, dim);
    }
    let t_row = geo.row(labelled_target(geo, labels));
    for x in geo.graph.x..geo.graph.right() {
        put(buf, x, t_row, g.target, target);
    }
    let right = |l: &str| geo.axis_x - l.len() as u16;
    let (top, bottom) = (geo.graph.y, geo.graph.bottom() - 1);
    if t_row != top {
        put_text(buf, right(&labels[0]), top, &labels[0], dim);
    }
    if t_row != bottom {
        put_text(buf, right(&labels[2]), bottom, &labels[2], dim);
    }
    put_text(buf, right(&labels[1]), t_row, &labels[1], target);
}

/// The target as its label reads (the line must sit on the row of the value the label names).
fn labelled_target(geo: &PanelGeometry, labels: &[String; 3]) -> f64 {
    labels[1].parse().unwrap_or(geo.y.0)
}

/// The best quarter on the x axis, the value tried now under it, then the points: pruned first,
/// completed over them, the best over everything.
fn draw_marks(s: &UiState, panel: &Panel, geo: &PanelGeometry, buf: &mut Buffer) {
    let g = glyphs(s);
    let best = best_style(s);
    let slot = slot_half_width(panel, geo);
    if panel.scale.ordered() {
        let cols: Vec<u16> = panel.top.iter().map(|x| geo.col(*x)).collect();
        if let (Some(a), Some(b)) = (cols.iter().min(), cols.iter().max()) {
            // A region of one value still gets three cells, to be seen.
            let (a, b) = if a == b {
                (a.saturating_sub(1), b + 1)
            } else {
                (*a, *b)
            };
            for x in a.max(geo.graph.x)..=b.min(geo.graph.right() - 1) {
                put(buf, x, geo.axis_y, g.top, best);
            }
        }
    } else {
        for x in &panel.top {
            let c = geo.col(*x);
            for x in c.saturating_sub(slot)..=c + slot {
                if x >= geo.graph.x && x < geo.graph.right() {
                    put(buf, x, geo.axis_y, g.top, best);
                }
            }
        }
    }
    if let Some(x) = panel.now {
        let running = s.theme.status(crate::engine::StageStatus::Running);
        put(buf, geo.col(x), geo.axis_y, g.now, running);
    }
    let value = s.theme.color(s.theme.colors.value);
    let layers: [Layer; 3] = [
        (g.pruned, s.theme.pruned(), |p| p.pruned && !p.best),
        (g.point, value, |p| !p.pruned && !p.best),
        (g.best, best, |p| p.best),
    ];
    for (symbol, style, keep) in layers {
        for p in panel.points.iter().filter(|p| keep(p)) {
            put(buf, geo.col(p.x), geo.row(p.y), symbol, style);
        }
    }
}

/// Points drawn with one glyph and style: those `keep` selects.
type Layer = (&'static str, Style, fn(&Point) -> bool);

/// Half the columns one position of a list covers (0 on numeric scales).
fn slot_half_width(panel: &Panel, geo: &PanelGeometry) -> u16 {
    match &panel.scale {
        Scale::Positions(list) if !list.is_empty() => {
            (geo.graph.width / list.len() as u16).saturating_sub(1) / 2
        }
        _ => 0,
    }
}

/// Tick labels under the values they name: the ends always (when they fit), the others where they
/// do not touch a label already placed.
fn draw_x_labels(s: &UiState, panel: &Panel, geo: &PanelGeometry, inner: Rect, buf: &mut Buffer) {
    let all = ticks(panel);
    let y = geo.axis_y + 1;
    let mut order: Vec<usize> = Vec::new();
    if let Some(last) = all.len().checked_sub(1) {
        order.push(0);
        if last > 0 {
            order.push(last);
        }
        order.extend(1..last);
    }
    let mut placed: Vec<(u16, u16)> = Vec::new();
    for i in order {
        let (x, label) = &all[i];
        let w = label.chars().count() as u16;
        if w > inner.width {
            continue;
        }
        let centre = geo.col(*x);
        let start = centre
            .saturating_sub(w / 2)
            .clamp(inner.x, inner.right() - w);
        let end = start + w;
        if placed.iter().any(|(a, b)| start < b + 1 && *a < end + 1) {
            continue;
        }
        placed.push((start, end));
        put_text(buf, start, y, label, s.theme.text());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    fn open(mut s: UiState) -> UiState {
        s.mode = Mode::Space { scroll: 0 };
        s
    }

    #[test]
    fn search_space_at_80_by_24() {
        let s = open(searched_state());
        let (text, buf) = render_view(&s, 80, 24, draw);
        insta::assert_snapshot!(text);
        for shown in [
            "hidden_units",
            "lr",
            "epochs",
            "best #5 0.9633",
            "target 0.95",
        ] {
            assert!(text.contains(shown), "{shown} in\n{text}");
        }
        let best = find(&buf, "█").unwrap();
        assert_eq!(buf[best].fg, Color::Green);
        let pruned = find(&buf, "×").unwrap();
        assert_eq!(
            buf[pruned].fg,
            Color::LightBlue,
            "pruned has its own colour"
        );
    }

    #[test]
    fn search_space_at_160_by_48_ascii() {
        let mut s = open(searched_state());
        s.ascii = true;
        let (text, _) = render_view(&s, 160, 48, draw);
        insta::assert_snapshot!(text);
        assert!(!text.contains('█') && !text.contains('•'), "{text}");
        assert!(text.contains('#') && text.contains('x'), "{text}");
    }

    /// Stepped ranges name their own values under the axis; a list names every value in slot order.
    #[test]
    fn each_axis_names_the_values_of_its_dimension() {
        let s = open(searched_state());
        let (text, _) = render_view(&s, 120, 30, draw);
        let axis = text
            .lines()
            .find(|l| l.contains(" 64") && l.contains("0.05"))
            .unwrap();
        let labels: Vec<&str> = axis
            .split(|c: char| c.is_whitespace() || "│┃\"".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(
            labels,
            [
                "4", "8", "12", "16", "8", "16", "32", "64", "0.5", "0.1", "0.05", "0.01"
            ],
            "{text}"
        );
    }

    #[test]
    fn many_dimensions_scroll_by_rows_and_say_so() {
        let mut s = open(many_dimensions_state());
        s.size = (80, 24);
        let (text, _) = render_view(&s, 80, 24, draw);
        assert!(text.contains("rows 1-2 of 3"), "{text}");
        assert!(text.contains("↓ 1 below"), "{text}");
        assert!(!text.contains(" f_dim "), "the last row is below:\n{text}");
        s.mode = Mode::Space { scroll: 1 };
        let (text, _) = render_view(&s, 80, 24, draw);
        assert!(text.contains(" e_dim "), "{text}");
    }

    /// Any size from the minimum up, any scroll, with and without points: drawn, never a panic.
    #[test]
    fn every_size_and_scroll_draws_without_panicking() {
        let mut failed_only = training_state();
        if let Some(r) = failed_only.pipeline.run.as_mut() {
            for it in &mut r.iterations {
                it.status = crate::core::model::IterStatus::Failed;
            }
        }
        for state in [searched_state(), many_dimensions_state(), failed_only] {
            for (w, h) in [(80, 24), (81, 25), (99, 31), (120, 40), (250, 70)] {
                for scroll in [0, 1, 7] {
                    let mut s = open(state_clone(&state));
                    s.mode = Mode::Space { scroll };
                    s.size = (w, h);
                    let (text, _) = render_view(&s, w, h, draw);
                    assert!(text.contains("Search space"), "{w}×{h}:\n{text}");
                }
            }
        }
    }

    fn state_clone(s: &UiState) -> UiState {
        let mut c = base_state();
        c.pipeline = s.pipeline.clone();
        c
    }

    #[test]
    fn a_run_without_a_space_says_nothing_is_searched() {
        let mut s = open(training_state());
        if let Some(c) = s.pipeline.run.as_mut().and_then(|r| r.config.as_mut()) {
            c.tweak.space.clear();
        }
        let (text, _) = render_view(&s, 80, 24, draw);
        assert!(text.contains("no [tweak.space]"), "{text}");
        let s = open(base_state());
        let (text, _) = render_view(&s, 80, 24, draw);
        assert!(text.contains("no run yet"), "{text}");
    }
}
