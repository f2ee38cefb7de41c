//! Drawing. Every view is `fn draw(&UiState, Rect, &mut Frame)`: it reads the state and draws, and
//! never changes anything. One file per pane; each ends with TestBackend snapshot tests.

mod banner;
mod detail;
mod graph;
mod help;
mod lanes;
mod logs;
mod overlay;
mod plot;
mod runs;
mod space;
mod status;
mod tweak;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
pub(crate) mod fixtures_swarm;
#[cfg(test)]
pub(crate) use logs::draw as draw_logs;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

use crate::engine::StageStatus;

use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::state::{Mode, Pane, UiState};

/// The whole screen.
pub fn draw(s: &UiState, f: &mut Frame) {
    let area = f.area();
    if layout::too_small(area) {
        too_small(s, area, f);
        return;
    }
    let a = layout::areas(s, area);
    graph::draw(s, a.graph, f);
    if let Some(b) = a.banner {
        banner::draw(s, b, f);
    }
    logs::draw(s, a.logs, f);
    plot::draw(s, a.plot, f);
    tweak::draw(s, a.tweak, f);
    runs::draw(s, a.runs, f);
    status::draw(s, a.status, f);
    match &s.mode {
        Mode::Help { .. } => help::draw(s, area, f),
        Mode::Confirm(_) => overlay::draw_confirm(s, area, f),
        Mode::Detail => detail::draw(s, area, f),
        Mode::Space { .. } => space::draw(s, area, f),
        _ => {}
    }
}

fn too_small(s: &UiState, area: Rect, f: &mut Frame) {
    let text = format!(
        "terminal too small: {}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
        area.width, area.height
    );
    let y = area.y + area.height / 2;
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text)
            .style(s.theme.warn())
            .alignment(Alignment::Center),
        Rect::new(area.x, y, area.width, 1.min(area.height)),
    );
}

/// Borders made of `+ - |` for terminals and fonts without box drawing.
pub const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// The focused pane's ASCII border: `=` edges, so focus shows without colour.
pub const ASCII_FOCUS_BORDER: border::Set = border::Set {
    horizontal_top: "=",
    horizontal_bottom: "=",
    ..ASCII_BORDER
};

/// A pane's frame: the focused one is thick (or `=` in ASCII) and coloured, its title bold.
pub fn pane_block<'a>(s: &UiState, pane: Pane, extra: Vec<Span<'a>>) -> Block<'a> {
    let focused = s.focus == pane
        && matches!(
            s.mode,
            Mode::Normal | Mode::Search { .. } | Mode::Edit { .. }
        );
    let mut title = vec![Span::styled(
        format!(" {} ", pane.title()),
        s.theme.title(focused),
    )];
    if !extra.is_empty() {
        title.push(Span::styled("· ", s.theme.dim()));
        title.extend(extra);
        title.push(Span::raw(" "));
    }
    framed(s, focused).title(Line::from(title))
}

/// A bordered block in the theme's style, with nothing in its title.
pub fn framed<'a>(s: &UiState, focused: bool) -> Block<'a> {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(s.theme.border(focused));
    match (s.ascii, focused) {
        (true, true) => block.border_set(ASCII_FOCUS_BORDER),
        (true, false) => block.border_set(ASCII_BORDER),
        (false, true) => block.border_type(BorderType::Thick),
        (false, false) => block.border_type(BorderType::Rounded),
    }
}

const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const ASCII_SPINNER: &[&str] = &["|", "/", "-", "\\"];

/// The spinner frame for `now`: it turns ten times a second.
pub fn spinner(s: &UiState) -> &'static str {
    let frames = if s.ascii { ASCII_SPINNER } else { SPINNER };
    frames[(s.now_ms.max(0) / 100) as usize % frames.len()]
}

/// The glyph of a stage status. `waiting_for_operator` is a running stage that only waits for a key
/// press (a proposal to approve): it does not spin.
pub fn status_glyph(s: &UiState, st: StageStatus, waiting_for_operator: bool) -> &'static str {
    match (st, s.ascii) {
        (StageStatus::Running, _) if waiting_for_operator => "?",
        (StageStatus::Running, _) => spinner(s),
        (StageStatus::Waiting, false) => "○",
        (StageStatus::Waiting, true) => ".",
        (StageStatus::Passed, false) => "✓",
        (StageStatus::Passed, true) => "+",
        (StageStatus::Failed, false) => "✗",
        (StageStatus::Failed, true) => "x",
        (StageStatus::Skipped, false) => "–",
        (StageStatus::Skipped, true) => "-",
    }
}

pub fn status_word(st: StageStatus) -> &'static str {
    match st {
        StageStatus::Waiting => "waiting",
        StageStatus::Running => "running",
        StageStatus::Passed => "passed",
        StageStatus::Failed => "failed",
        StageStatus::Skipped => "skipped",
    }
}

/// A line of `text` in `style`, for paragraphs.
/// `text` in at most `width` columns, cut after a whole word (a space or a comma) and marked with
/// `…`, so that a number is left out whole rather than shown cut (`lr=0.` for `lr=0.05`). A text
/// with no such boundary in reach is left out.
pub fn fit_words(text: &str, width: usize, ascii: bool) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mark = if ascii { "..." } else { "…" };
    let room = width.saturating_sub(mark.chars().count());
    let head: String = text.chars().take(room + 1).collect();
    let cut = head
        .char_indices()
        .filter(|(_, c)| *c == ' ' || *c == ',')
        .map(|(i, _)| i)
        .rfind(|i| *i <= room);
    match cut {
        Some(i) => format!("{}{mark}", head[..i].trim_end_matches([' ', ','])),
        None => String::new(),
    }
}

pub fn styled(text: impl Into<String>, style: Style) -> Line<'static> {
    Line::from(Span::styled(text.into(), style))
}

/// A rectangle of `w`×`h` centred in `area` (clipped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::fixtures::*;
    use super::*;

    #[test]
    fn whole_screen_while_training() {
        let s = training_state();
        insta::assert_snapshot!(render(&s, 160, 48, draw));
    }

    #[test]
    fn whole_screen_narrow_terminal() {
        let s = training_state();
        insta::assert_snapshot!(render(&s, 100, 30, draw));
    }

    /// 80×24, the smallest common terminal: what does not fit is abbreviated or left out, and no
    /// number is cut (`0.05` never shows as `0.0`).
    #[test]
    fn whole_screen_80_by_24_cuts_no_number() {
        let cut_number = |out: &str| {
            let chars: Vec<char> = out.chars().collect();
            chars.windows(3).any(|w| {
                let border = matches!(w[2], '│' | '┃' | '╮' | '┓' | '─' | '━');
                border && (w[1] == '.' && w[0].is_ascii_digit() || w[1] == '=')
            })
        };
        let training = render(&training_state(), 80, 24, draw);
        let awaiting = render(&awaiting_state(), 80, 24, draw);
        let parallel = render(&parallel_state(), 80, 24, draw);
        for out in [&training, &awaiting, &parallel] {
            assert!(!cut_number(out), "{out}");
            assert!(!out.contains("lr=0.│"), "{out}");
        }
        assert!(training.contains("target 0.95"), "{training}");
        insta::assert_snapshot!(training);
    }

    /// A run with a pruned iteration: nothing says it failed; from 100×30 the plot's legend names
    /// its cross; at 80×24 the tweak pane still shows the reason of the iteration in progress whole.
    #[test]
    fn whole_screen_with_a_pruned_iteration() {
        let s = searched_state();
        let small = render(&s, 80, 24, draw);
        insta::assert_snapshot!(small);
        let shown: String = small.split_whitespace().collect::<Vec<_>>().join(" ");
        for part in [
            "why: TPE: 6 observations,",
            "hidden_units≈32,",
            "expected 0.962",
        ] {
            assert!(shown.contains(part), "{part} in\n{small}");
        }
        let big = render(&s, 100, 30, draw);
        assert!(big.contains("× pruned"), "{big}");
        for out in [&small, &big] {
            assert!(!out.contains("iteration 3 failed"), "{out}");
        }
    }

    #[test]
    fn fit_words_never_cuts_a_word() {
        let t = "started with epochs=8, hidden_units=16, lr=0.05";
        assert_eq!(fit_words(t, 100, false), t);
        assert_eq!(
            fit_words(t, 45, false),
            "started with epochs=8, hidden_units=16…"
        );
        assert_eq!(
            fit_words(t, 45, true),
            "started with epochs=8, hidden_units=16..."
        );
        assert_eq!(fit_words(t, 10, false), "started…");
        assert_eq!(fit_words("0.0512345", 4, false), "");
    }

    #[test]
    fn too_small_says_the_size_and_the_need() {
        let s = training_state();
        let out = render(&s, 60, 20, draw);
        assert!(
            out.contains("terminal too small: 60×20, need 80×24"),
            "{out}"
        );
    }

    #[test]
    fn whole_screen_target_reached_ascii() {
        let mut s = finished_state();
        s.ascii = true;
        insta::assert_snapshot!(render(&s, 160, 48, draw));
    }

    /// Trials side by side on three engines, at the size an operator leaves open and at 80×24.
    #[test]
    fn whole_screen_with_trials_side_by_side() {
        let s = parallel_state();
        let big = render(&s, 160, 48, draw);
        insta::assert_snapshot!("whole_screen_parallel_160x48", big);
        let small = render(&s, 80, 24, draw);
        insta::assert_snapshot!("whole_screen_parallel_80x24", small);
        for out in [&big, &small] {
            assert!(out.contains("#5 on e1 (3 of 3)"), "{out}");
            assert!(out.contains("e2 ✕ down 12s"), "{out}");
        }
        assert!(big.contains("↪ from e2"), "{big}");
        assert!(small.contains("↪e2"), "{small}");
    }
}
