//! Questions asked before something that cannot be undone: quitting while a container trains, and
//! stopping the training container.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::super::state::{Confirm, Mode, UiState};
use super::{centered, framed};

/// The question and what happens on "yes", for the confirm overlay.
pub fn question(s: &UiState, c: Confirm) -> (String, String) {
    let it = s
        .training_iteration()
        .map(|n| format!("iteration {n}"))
        .unwrap_or_else(|| "an iteration".into());
    match c {
        Confirm::Quit => (
            "Quit mlops-tui?".into(),
            format!(
                "{it} keeps training in its container; the next start of mlops-tui picks it up again."
            ),
        ),
        Confirm::Stop => (
            format!("Stop {it}?"),
            "Its container is stopped and the iteration counts as failed; the loop goes on.".into(),
        ),
    }
}

pub fn draw_confirm(s: &UiState, area: Rect, f: &mut Frame) {
    let Mode::Confirm(c) = s.mode else { return };
    let (q, what) = question(s, c);
    let popup = centered(area, 64, 7);
    let block = framed(s, true).title(Line::from(Span::styled(" Confirm ", s.theme.title(true))));
    let lines = vec![
        Line::from(Span::styled(q, s.theme.text().add_modifier(Modifier::BOLD))),
        Line::from(Span::styled(what, s.theme.warn())),
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", s.theme.selection()),
            Span::styled(" yes    ", s.theme.text()),
            Span::styled(" n ", s.theme.selection()),
            Span::styled(" no (esc)", s.theme.text()),
        ]),
    ];
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn confirm_quit_while_training() {
        let mut s = training_state();
        s.mode = Mode::Confirm(Confirm::Quit);
        let (text, _) = render_view(&s, 80, 11, draw_confirm);
        insta::assert_snapshot!(text);
        assert!(text.contains("keeps training"));
    }

    #[test]
    fn confirm_stop() {
        let mut s = training_state();
        s.mode = Mode::Confirm(Confirm::Stop);
        let (text, _) = render_view(&s, 80, 11, draw_confirm);
        insta::assert_snapshot!(text);
    }
}
