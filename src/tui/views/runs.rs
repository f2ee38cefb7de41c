//! The runs table: this run and earlier ones from the history store, newest first. The row of the run
//! in progress shows the engine's live numbers rather than the last ones written to the store.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use crate::core::model::RunStatus;
use crate::core::text;

use super::super::state::{Pane, UiState};
use super::{pane_block, styled};

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let mut extra = Vec::new();
    if s.history.loading.is_some() {
        extra.push(Span::styled("opening…", s.theme.dim()));
    }
    let block = pane_block(s, Pane::Runs, extra);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if let Some(e) = &s.history.error {
        f.render_widget(
            Paragraph::new(styled(format!("history: {e}"), s.theme.bad())),
            inner,
        );
        return;
    }
    if s.history.runs.is_empty() {
        let text = if s.history.loaded {
            "no runs in the history yet"
        } else {
            "reading the history…"
        };
        f.render_widget(Paragraph::new(styled(text, s.theme.dim())), inner);
        return;
    }
    let live = s.pipeline.run.as_ref();
    let rows: Vec<Row> = s
        .history
        .runs
        .iter()
        .map(|r| {
            let (status, iterations, best, finished) = match live.filter(|l| l.id == r.row.id) {
                Some(l) => (
                    l.status,
                    l.iterations.len(),
                    l.best_iteration().and_then(|b| b.final_value),
                    r.row.finished_at,
                ),
                None => (r.row.status, r.iterations, r.best_value, r.row.finished_at),
            };
            let status_style = status_style(s, status);
            let duration = text::duration(finished.unwrap_or(s.now_ms) - r.row.started_at);
            Row::new(vec![
                Cell::from(r.row.id.to_string()),
                Cell::from(r.row.commit_id.chars().take(8).collect::<String>()),
                Cell::from(r.row.commit_summary.clone()),
                Cell::from(Span::styled(
                    status.as_str().replace('_', " "),
                    status_style,
                )),
                Cell::from(best.map(text::value).unwrap_or_else(|| "—".into())),
                Cell::from(iterations.to_string()),
                Cell::from(duration),
                Cell::from(text::ago(s.now_ms, r.row.started_at)),
            ])
        })
        .collect();
    let header = Row::new([
        "run", "commit", "message", "status", "best", "iters", "took", "started",
    ])
    .style(s.theme.dim());
    let focused = s.focus == Pane::Runs;
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(9),
            Constraint::Min(16),
            Constraint::Length(13),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(7),
            Constraint::Length(9),
        ],
    )
    .header(header)
    .row_highlight_style(if focused {
        s.theme.selection()
    } else {
        Style::new()
    })
    .highlight_symbol(if focused { "▶ " } else { "  " });
    let mut state = TableState::default().with_selected(Some(s.history.selected));
    f.render_stateful_widget(table, inner, &mut state);
}

fn status_style(s: &UiState, status: RunStatus) -> Style {
    match status {
        RunStatus::Running => s.theme.status(crate::engine::StageStatus::Running),
        RunStatus::Succeeded => s.theme.good(),
        RunStatus::BudgetSpent | RunStatus::Interrupted | RunStatus::Cancelled => s.theme.warn(),
        RunStatus::Failed => s.theme.bad(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn runs_table_with_live_row() {
        let mut s = training_state();
        s.focus = Pane::Runs;
        s.history.selected = 1;
        let (text, buf) = render_view(&s, 110, 7, draw);
        insta::assert_snapshot!(text);
        let failed = find_text(&buf, "failed").unwrap();
        assert_eq!(buf[failed].fg, Color::Red);
        let sel = find_text(&buf, "budget spent").unwrap();
        assert_eq!(buf[sel].bg, Color::Cyan, "the selected row is highlighted");
    }

    #[test]
    fn runs_table_empty() {
        let mut s = base_state();
        s.history.loaded = true;
        let (text, _) = render_view(&s, 80, 4, draw);
        insta::assert_snapshot!(text);
    }
}
