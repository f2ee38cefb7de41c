//! The `?` overlay: every binding of the key table (as configured) and the `:` commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::super::command::COMMANDS;
use super::super::state::{Mode, UiState};
use super::{centered, framed};

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let scroll = match s.mode {
        Mode::Help { scroll } => scroll,
        _ => 0,
    };
    let lines = lines(s);
    let popup = centered(
        area,
        92,
        area.height.saturating_sub(4).min(lines.len() as u16 + 2),
    );
    let block = framed(s, true).title(Line::from(vec![
        Span::styled(" Keys ", s.theme.title(true)),
        Span::styled(
            "· from the key table; override in [keys] of config.toml · esc closes ",
            s.theme.dim(),
        ),
    ]));
    let max_scroll = (lines.len() as u16).saturating_sub(popup.height.saturating_sub(2));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max_scroll), 0)),
        popup,
    );
}

fn lines(s: &UiState) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut group = "";
    for (b, keys) in s.keymap.rows() {
        if b.group != group {
            if !group.is_empty() {
                out.push(Line::from(""));
            }
            group = b.group;
            out.push(Line::from(Span::styled(
                group.to_string(),
                s.theme
                    .text()
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )));
        }
        let keys = keys
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        out.push(Line::from(vec![
            Span::styled(
                format!("  {keys:<16}"),
                s.theme
                    .color(s.theme.colors.focus)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("{:<16}", b.name), s.theme.dim()),
            Span::styled(b.help.to_string(), s.theme.text()),
        ]));
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(
        "Commands",
        s.theme
            .text()
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    )));
    for (c, h) in COMMANDS {
        out.push(Line::from(vec![
            Span::styled(
                format!("  {c:<32}"),
                s.theme
                    .color(s.theme.colors.focus)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(h.to_string(), s.theme.text()),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;
    use crate::tui::keymap::BINDINGS;

    #[test]
    fn help_lists_every_binding() {
        let mut s = training_state();
        s.mode = Mode::Help { scroll: 0 };
        let (text, _) = render_view(&s, 100, 70, draw);
        insta::assert_snapshot!(text);
        for b in BINDINGS {
            assert!(text.contains(b.name), "{} missing", b.name);
            assert!(text.contains(b.help), "{} missing", b.help);
        }
    }
}
