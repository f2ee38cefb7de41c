//! A run opened from the runs table: its iterations, and for the selected one its parameters, why it
//! was tried, how it ended, its per-epoch curve and the last lines of its output (from the store).

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};

use crate::adapters::store::{IterationRow, MetricPoint};
use crate::core::model::IterStatus;

use super::super::state::{RunDetail, UiState};
use super::{framed, styled};
use crate::core::text;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let Some(d) = &s.history.detail else { return };
    let popup = Rect::new(
        area.x + 2,
        area.y + 1,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let r = &d.run;
    let title = Line::from(vec![
        Span::styled(format!(" Run {} ", r.id), s.theme.title(true)),
        Span::styled(
            format!(
                "· {} \"{}\" on {} · {} ",
                r.commit_id.chars().take(8).collect::<String>(),
                r.commit_summary,
                r.branch,
                r.status.as_str().replace('_', " ")
            ),
            s.theme.text(),
        ),
    ]);
    let block = framed(s, true)
        .title(title)
        .title_bottom(Line::from(Span::styled(
            " j/k select · enter shows its logs when still in memory · esc closes ",
            s.theme.dim(),
        )));
    let inner = block.inner(popup);
    f.render_widget(Clear, popup);
    f.render_widget(block, popup);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .spacing(2)
        .split(inner);

    draw_iterations(s, d, cols[0], f);
    let Some((it, points)) = d.iterations.get(d.selected) else {
        return;
    };
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(info_height(it)),
            Constraint::Percentage(40),
            Constraint::Min(3),
        ])
        .split(cols[1]);
    draw_info(s, it, right[0], f);
    draw_curve(s, points, right[1], f);
    draw_tail(s, it, right[2], f);
}

/// The run's reason, then its iterations as a table with the selected one highlighted.
fn draw_iterations(s: &UiState, d: &RunDetail, area: Rect, f: &mut Frame) {
    let r = &d.run;
    let mut lines_top = Vec::new();
    if let Some(reason) = &r.reason {
        lines_top.push(styled(reason.clone(), s.theme.text()));
    }
    let rows: Vec<Row> = d
        .iterations
        .iter()
        .map(|(it, _)| {
            let style = match it.status {
                IterStatus::Succeeded => s.theme.good(),
                IterStatus::Failed => s.theme.bad(),
                IterStatus::BelowTarget | IterStatus::Stopped => s.theme.warn(),
                IterStatus::Pruned => s.theme.pruned(),
                _ => s.theme.status(crate::engine::StageStatus::Running),
            };
            let took = text::elapsed(it.started_at, it.finished_at, s.now_ms).unwrap_or_default();
            Row::new(vec![
                Cell::from(it.no.to_string()),
                Cell::from(Span::styled(it.status.as_str().replace('_', " "), style)),
                Cell::from(
                    it.final_value
                        .map(text::value)
                        .unwrap_or_else(|| "—".into()),
                ),
                Cell::from(took),
                Cell::from(text::params(&it.params)),
            ])
        })
        .collect();
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(2 * lines_top.len() as u16),
            Constraint::Min(1),
        ])
        .split(area);
    f.render_widget(Paragraph::new(lines_top).wrap(Wrap { trim: true }), left[0]);
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(13),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["#", "status", "value", "took", "params"]).style(s.theme.dim()))
    .row_highlight_style(s.theme.selection())
    .highlight_symbol("▶ ");
    let mut ts = TableState::default().with_selected(Some(d.selected));
    f.render_stateful_widget(table, left[1], &mut ts);
}

/// The selected iteration: its parameters, why it was tried, how it ended, its image.
fn draw_info(s: &UiState, it: &IterationRow, area: Rect, f: &mut Frame) {
    let mut info = vec![Line::from(vec![
        Span::styled(
            format!("iteration {} ", it.no),
            s.theme.text().add_modifier(Modifier::BOLD),
        ),
        Span::styled(text::params(&it.params), s.theme.text()),
    ])];
    if let Some(why) = &it.proposal_reason {
        info.push(Line::from(vec![
            Span::styled("why: ", s.theme.dim()),
            Span::styled(why.clone(), s.theme.text()),
        ]));
    }
    if let Some(reason) = &it.reason {
        // A pruned iteration was stopped on purpose: its reason is not drawn as an error.
        let style = if it.status == IterStatus::Pruned {
            s.theme.pruned()
        } else {
            s.theme.bad()
        };
        info.push(Line::from(vec![
            Span::styled("ended: ", s.theme.dim()),
            Span::styled(reason.clone(), style),
        ]));
    }
    if let Some(img) = &it.image {
        info.push(styled(format!("image {img}"), s.theme.dim()));
    }
    if let Some(c) = &it.commit_id {
        let short: String = c.chars().take(8).collect();
        info.push(styled(format!("commit {short}"), s.theme.dim()));
    }
    if let Some(m) = &it.model {
        info.push(styled(format!("model {m}"), s.theme.dim()));
    }
    info.extend(super::tweak::source_diff(s, &it.edits));
    f.render_widget(Paragraph::new(info).wrap(Wrap { trim: true }), area);
}

/// Rows for the iteration's information: room for its commit, model and source diff.
fn info_height(it: &IterationRow) -> u16 {
    let extra = usize::from(it.commit_id.is_some()) + usize::from(it.model.is_some());
    let diff: usize = it
        .edits
        .iter()
        .map(|e| 1 + usize::from(!e.old.is_empty()) + usize::from(!e.new.is_empty()))
        .sum();
    u16::try_from((6 + extra + diff).min(16)).unwrap_or(16)
}

/// The selected iteration's per-epoch curve.
fn draw_curve(s: &UiState, points: &[MetricPoint], area: Rect, f: &mut Frame) {
    let curve: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value.is_finite())
        .map(|(i, p)| (f64::from(p.epoch.unwrap_or(i as u32 + 1)), p.value))
        .collect();
    if curve.is_empty() {
        f.render_widget(
            Paragraph::new(styled("no metric points", s.theme.dim())),
            area,
        );
    } else {
        let lo = curve.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = curve.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.1).max(0.01);
        let xmax = curve.iter().map(|p| p.0).fold(2.0, f64::max);
        let chart = Chart::new(vec![
            Dataset::default()
                .marker(if s.ascii {
                    Marker::Custom('*')
                } else {
                    Marker::Braille
                })
                .graph_type(GraphType::Line)
                .style(s.theme.color(s.theme.colors.epoch))
                .data(&curve),
        ])
        .x_axis(
            Axis::default()
                .bounds([1.0, xmax])
                .labels([Span::raw("1"), Span::raw(format!("{xmax:.0}"))])
                .style(s.theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([lo - pad, hi + pad])
                .labels([
                    Span::raw(format!("{:.2}", lo - pad)),
                    Span::raw(format!("{:.2}", hi + pad)),
                ])
                .style(s.theme.dim()),
        );
        f.render_widget(chart, area);
    }
}

/// The last lines of the selected iteration's output that fit, from the store.
fn draw_tail(s: &UiState, it: &IterationRow, area: Rect, f: &mut Frame) {
    let tail = it.log_tail.as_deref().unwrap_or("");
    let h = usize::from(area.height.saturating_sub(1));
    let all: Vec<&str> = tail.lines().collect();
    let mut lines = vec![styled("last lines of its output:", s.theme.dim())];
    lines.extend(
        all[all.len().saturating_sub(h)..]
            .iter()
            .map(|l| styled(super::super::logbuf::clean(l), s.theme.text())),
    );
    if all.is_empty() {
        lines.push(styled("(none kept)", s.theme.dim()));
    }
    f.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::tui::state::Mode;

    #[test]
    fn detail_of_a_past_run() {
        let mut s = training_state();
        s.history.detail = Some(detail());
        s.mode = Mode::Detail;
        let (text, _) = render_view(&s, 140, 30, draw);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_pruned_iteration_has_its_own_status_colour_and_its_reason_is_no_error() {
        use ratatui::style::Color;
        let mut s = training_state();
        let mut d = detail();
        let row = &mut d.iterations[1].0;
        row.status = IterStatus::Pruned;
        row.reason = Some("pruned at epoch 3: 0.71 < median 0.84 at epoch 3".into());
        s.history.detail = Some(d);
        s.mode = Mode::Detail;
        let (text, buf) = render_view(&s, 140, 30, draw);
        let status = find_text(&buf, "pruned ").unwrap();
        assert_eq!(buf[status].fg, Color::LightBlue, "{text}");
        let reason = find_text(&buf, "pruned at epoch 3: 0.71 < median 0.84").unwrap();
        assert_eq!(buf[reason].fg, Color::LightBlue, "{text}");
        assert!(!text.contains("failed"), "{text}");
    }

    #[test]
    fn an_iteration_shows_its_commit_model_and_source_diff_in_colour() {
        use crate::core::knobs::SourceEdit;
        use ratatui::style::Color;
        let mut s = training_state();
        let mut d = detail();
        let row = &mut d.iterations[1].0;
        row.commit_id = Some("1a2b3c4d5e6f".repeat(3));
        row.model = Some("/runs/2/iter-2/workspace/mymodel.pkl".into());
        row.edits = vec![SourceEdit {
            file: "train.py".into(),
            line: 64,
            old: "    clf = svm.SVC(gamma=0.001)".into(),
            new: "    clf = svm.SVC(gamma=0.01)".into(),
        }];
        s.history.detail = Some(d);
        s.mode = Mode::Detail;
        let (text, buf) = render_view(&s, 140, 34, draw);
        for shown in [
            "commit 1a2b3c4d",
            "model /runs/2/iter-2/workspace/mymodel.pkl",
            "train.py:64",
            "− clf = svm.SVC(gamma=0.001)",
            "+ clf = svm.SVC(gamma=0.01)",
        ] {
            assert!(text.contains(shown), "{shown} in\n{text}");
        }
        let old = find_text(&buf, "− clf").unwrap();
        assert_eq!(buf[old].fg, Color::Red);
        let new = find_text(&buf, "+ clf").unwrap();
        assert_eq!(buf[new].fg, Color::Green);
    }
}
