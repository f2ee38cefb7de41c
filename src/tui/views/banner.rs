//! The pinned line under the graph: failures that must not be missed, the run's outcome, a proposal
//! waiting for the operator. What it says is decided by [`layout::banner`].

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::layout::{self, BannerKind};
use super::super::state::UiState;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let Some((kind, text)) = layout::banner(s) else {
        return;
    };
    let (glyph, style) = match (kind, s.ascii) {
        (BannerKind::Failure, false) => ("✗", s.theme.banner(true)),
        (BannerKind::Failure, true) => ("x", s.theme.banner(true)),
        (BannerKind::Success, false) => ("✓", s.theme.banner(false)),
        (BannerKind::Success, true) => ("+", s.theme.banner(false)),
        (BannerKind::Attention, _) => ("?", s.theme.warn()),
    };
    let line = Line::from(vec![
        Span::styled(format!(" {glyph} "), style),
        Span::styled(text, style),
    ]);
    f.render_widget(Paragraph::new(line).style(style), area);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn banner_failure_is_pinned_on_red() {
        let s = image_failed_state();
        let (text, buf) = render_view(&s, 120, 1, draw);
        insta::assert_snapshot!(text);
        assert_eq!(buf[(1, 0)].bg, Color::Red);
    }

    #[test]
    fn banner_target_reached() {
        let s = finished_state();
        let (text, buf) = render_view(&s, 120, 1, draw);
        insta::assert_snapshot!(text);
        assert_eq!(buf[(1, 0)].bg, Color::Green);
    }

    #[test]
    fn banner_proposal_waiting() {
        let s = awaiting_state();
        let (text, _) = render_view(&s, 120, 1, draw);
        insta::assert_snapshot!(text);
    }
}
