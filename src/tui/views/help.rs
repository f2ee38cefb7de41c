//! The `?` overlay: every binding of the key table (as configured) and the `:` commands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::super::command::COMMANDS;
use super::super::keymap::Action;
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
    let rows = popup.height.saturating_sub(2);
    let total = lines.len() as u16;
    let max_scroll = total.saturating_sub(rows);
    let scroll = scroll.min(max_scroll);
    let block = match scroll_hint(s, scroll, max_scroll) {
        Some(hint) => block.title_bottom(Line::from(Span::styled(hint, s.theme.dim())).centered()),
        None => block,
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(block).scroll((scroll, 0)),
        popup,
    );
}

/// Says that the help goes on beyond the frame and how to get there; `None` when it all shows.
fn scroll_hint(s: &UiState, scroll: u16, max_scroll: u16) -> Option<String> {
    if max_scroll == 0 {
        return None;
    }
    let k = &s.keymap;
    let (up, down) = if s.ascii { ("^", "v") } else { ("↑", "↓") };
    let below = max_scroll - scroll;
    let text = match (scroll, below) {
        (0, n) => format!(
            " {down} {n} more lines below (Commands): {} / {} scrolls ",
            k.key_of(Action::Down),
            k.key_of(Action::PageDown)
        ),
        (n, 0) => format!(
            " {up} {n} lines above: {} scrolls back ",
            k.key_of(Action::Up)
        ),
        (above, below) => format!(" {up} {above} above · {down} {below} below "),
    };
    Some(text)
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

    /// At 160×48 the list does not fit: the frame says so and how to scroll, and scrolling down
    /// (however far) reaches the Commands section.
    #[test]
    fn help_at_160_by_48_says_it_scrolls_to_the_commands() {
        let mut s = training_state();
        s.mode = Mode::Help { scroll: 0 };
        let (text, _) = render_view(&s, 160, 48, draw);
        assert!(!text.contains(":q  :q!"), "{text}");
        assert!(
            text.contains("more lines below (Commands): j / pgdn scrolls"),
            "{text}"
        );
        s.mode = Mode::Help { scroll: 500 };
        let (text, _) = render_view(&s, 160, 48, draw);
        insta::assert_snapshot!(text);
        assert!(text.contains(":q  :q!"), "{text}");
        assert!(text.contains("lines above: k scrolls back"), "{text}");
    }
}
