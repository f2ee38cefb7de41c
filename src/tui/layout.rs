//! Where each pane goes, and what the pinned banner says. Pure functions of the state and the screen
//! size, shared by the views (to draw) and the reducer (to size pages).

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::core::model::{IterStatus, RunStatus};
use crate::core::text;
use crate::engine::{Stage, StageStatus};

use super::state::UiState;
use super::trials;

/// Below this the dashboard shows only a "terminal too small" line.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Width from which the graph draws each stage as a box; narrower terminals get one line.
pub const BOXED_GRAPH_WIDTH: u16 = 137;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub graph: Rect,
    pub banner: Option<Rect>,
    pub logs: Rect,
    pub plot: Rect,
    pub tweak: Rect,
    pub runs: Rect,
    pub status: Rect,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

pub fn areas(state: &UiState, area: Rect) -> Areas {
    let graph_h = if area.width >= BOXED_GRAPH_WIDTH {
        8
    } else {
        6
    } + lane_rows(state, area);
    let banner_h = u16::from(banner(state).is_some());
    let runs_h = if area.height >= 40 { 9 } else { 6 };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(graph_h),
            Constraint::Length(banner_h),
            Constraint::Min(6),
            Constraint::Length(runs_h),
            Constraint::Length(1),
        ])
        .split(area);
    let middle = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
        .split(rows[2]);
    let tweak_h = if middle[1].height >= 24 { 11 } else { 8 };
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(4), Constraint::Length(tweak_h)])
        .split(middle[1]);
    Areas {
        graph: rows[0],
        banner: (banner_h > 0).then_some(rows[1]),
        logs: middle[0],
        plot: right[0],
        tweak: right[1],
        runs: rows[3],
        status: rows[4],
    }
}

/// From this height the graph gives each engine a lane of its own; lower, one line lists them all.
pub const LANES_HEIGHT: u16 = 40;
/// Most lanes drawn; more engines than this are listed on one line.
pub const MAX_LANES: u16 = 6;

/// Rows the graph adds for trials side by side: none with one iteration at a time on one engine,
/// one lane per engine on a tall screen, else one line for all of them.
pub fn lane_rows(state: &UiState, area: Rect) -> u16 {
    if !trials::multi(&state.pipeline) {
        return 0;
    }
    let n = trials::lanes(&state.pipeline, None).len() as u16;
    if area.height >= LANES_HEIGHT && n <= MAX_LANES {
        n
    } else {
        1
    }
}

/// The narrowest and the lowest a dimension's panel in the search view gets: room for a y label, a
/// few slots of values and their labels, and eight rows of points.
pub const PANEL_MIN_W: u16 = 36;
pub const PANEL_MIN_H: u16 = 10;

/// How the search view places its panels: `cols` side by side, `rows` in all, `visible` of them at a
/// time, each `panel_h` high. Invariant: `1 <= visible <= rows` when there is a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub cols: usize,
    pub rows: usize,
    pub visible: usize,
    pub panel_h: u16,
}

/// The search view's frame: the whole screen but the status bar.
pub fn space_frame(area: Rect) -> Rect {
    Rect::new(area.x, area.y, area.width, area.height.saturating_sub(1))
}

/// The part of the search view's frame the panels share: inside the border, under the legend.
pub fn space_panels(frame: Rect) -> Rect {
    let inner = Rect::new(
        frame.x + 1,
        frame.y + 1,
        frame.width.saturating_sub(2),
        frame.height.saturating_sub(2),
    );
    Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    )
}

/// `n` panels in `area`: as many columns as fit (no more than panels), then as many rows as fit;
/// rows that do not fit are scrolled to.
pub fn space_grid(area: Rect, n: usize) -> Grid {
    let cols = usize::from(area.width / PANEL_MIN_W).clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let visible = usize::from(area.height / PANEL_MIN_H).clamp(1, rows.max(1));
    Grid {
        cols,
        rows,
        visible,
        panel_h: area.height / u16::try_from(visible).unwrap_or(1).max(1),
    }
}

/// The last first row the search view can scroll to at the current terminal size.
pub fn space_max_scroll(state: &UiState) -> usize {
    let n = state
        .pipeline
        .run
        .as_ref()
        .and_then(|r| r.config.as_ref())
        .map_or(0, |c| c.tweak.space.len());
    let (w, h) = state.size;
    let g = space_grid(space_panels(space_frame(Rect::new(0, 0, w, h))), n);
    g.rows.saturating_sub(g.visible)
}

/// Rows of log text the logs pane shows (inside its border).
pub fn log_rows(state: &UiState) -> usize {
    let (w, h) = state.size;
    let a = areas(state, Rect::new(0, 0, w, h));
    usize::from(a.logs.height.saturating_sub(2)).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerKind {
    Failure,
    Success,
    Attention,
}

/// The one line pinned under the graph, most urgent first: a dead background task, a failed
/// preparation stage, a failed iteration (until the next run or `esc`), how the run ended, a proposal
/// waiting for the operator, the pause, and last a failed side stage (Notify, Monitor).
pub fn banner(state: &UiState) -> Option<(BannerKind, String)> {
    if let Some(e) = state.errors.last() {
        let more = if state.errors.len() > 1 {
            format!(" (+{} more)", state.errors.len() - 1)
        } else {
            String::new()
        };
        return Some((BannerKind::Failure, format!("{e}{more} — esc dismisses")));
    }
    let p = &state.pipeline;
    let failed_stage = |stages: &[Stage]| {
        stages.iter().find_map(|s| {
            let st = p.stage(*s);
            (st.status == StageStatus::Failed).then(|| {
                (
                    BannerKind::Failure,
                    format!("{} failed: {}", s.label(), st.detail),
                )
            })
        })
    };
    // A preparation stage that failed ended the run and says best why.
    if let Some(b) = failed_stage(&[Stage::Pull, Stage::Detect, Stage::Image]) {
        return Some(b);
    }
    let run = p.run.as_ref();
    if let Some(r) = run {
        let failed: Vec<_> = r
            .iterations
            .iter()
            .filter(|i| i.status == IterStatus::Failed)
            .collect();
        if r.status == RunStatus::Running && failed.len() > state.dismissed_failures {
            if let Some(last) = failed.last() {
                let reason = one_line(last.reason.as_deref().unwrap_or("failed"), state.ascii);
                return Some((
                    BannerKind::Failure,
                    format!(
                        "iteration {} failed: {reason} ({} failed so far)",
                        last.no,
                        failed.len()
                    ),
                ));
            }
        }
        if r.status.is_final() {
            let reason = r.reason.clone().unwrap_or_else(|| r.status.to_string());
            let reason = one_line(&reason, state.ascii);
            let kind = if r.status == RunStatus::Succeeded {
                BannerKind::Success
            } else {
                BannerKind::Failure
            };
            return Some((kind, format!("run {}: {reason}", r.id)));
        }
        if r.pending.is_some() {
            let k = &state.keymap;
            use super::keymap::Action;
            return Some((
                BannerKind::Attention,
                format!(
                    "proposal for iteration {} waits for you: {} approve · {} reject · {} edit · {} auto-apply",
                    r.iterations.len() + 1,
                    k.key_of(Action::Approve),
                    k.key_of(Action::Reject),
                    k.key_of(Action::Edit),
                    k.key_of(Action::ToggleAuto)
                ),
            ));
        }
    }
    if p.paused {
        return Some((
            BannerKind::Attention,
            "paused: no new iteration starts until resumed (p)".into(),
        ));
    }
    // Side stages (a notification not sent, the monitor) matter less than the run itself.
    failed_stage(&[Stage::Notify, Stage::Monitor])
}

/// Bytes of one line of a reason the banner considers: more never fits on a row.
const BANNER_LINE: usize = 1000;

/// A reason on the banner's one row. A reason that goes on below its first line (`…; last lines:`
/// then the output) keeps its last line that shows something, the one that most often says what
/// went wrong, marked when lines between were left out. Lines are shown as a terminal shows them:
/// an escape sequence or a progress bar's `\r` must not blank the row.
pub fn one_line(reason: &str, ascii: bool) -> String {
    let mut lines = reason.lines().map(|l| text::visible(l, BANNER_LINE));
    let first = lines.next().unwrap_or_default();
    let first = first.trim_end();
    let rest: Vec<String> = lines
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    match rest.last() {
        None => first.to_string(),
        Some(last) if rest.len() == 1 => format!("{first} {last}"),
        Some(last) => format!("{first} {} {last}", if ascii { "..." } else { "…" }),
    }
}

#[cfg(test)]
mod banner_tests {
    #![allow(clippy::unwrap_used)]
    use super::super::views::fixtures::*;
    use super::*;
    use crate::core::ids::IterationNo;
    use crate::core::model::IterStatus;

    #[test]
    fn a_failure_banner_shows_the_last_line_printed() {
        let mut s = training_state();
        let r = s.pipeline.run.as_mut().unwrap();
        let it = r.iteration_mut(IterationNo(2)).unwrap();
        it.status = IterStatus::Failed;
        it.reason = Some(
            "exited with code 1; last lines:\n  epoch 1/8 accuracy=0.70\n  ValueError: bad shape"
                .into(),
        );
        let (kind, text) = banner(&s).unwrap();
        assert_eq!(kind, BannerKind::Failure);
        assert_eq!(
            text,
            "iteration 2 failed: exited with code 1; last lines: … ValueError: bad shape (1 failed so far)"
        );
        assert_eq!(
            one_line("no output:\n  (no output)", true),
            "no output: (no output)"
        );
        assert_eq!(one_line("a\n  b\n  c", true), "a ... c");
        assert_eq!(one_line("plain", false), "plain");
    }

    #[test]
    fn escape_sequences_and_progress_bars_never_blank_the_banner() {
        let reason = "exited with code 1; last lines:\n  ValueError: bad shape\n  \u{1b}[0m\n  \r";
        assert_eq!(
            one_line(reason, false),
            "exited with code 1; last lines: ValueError: bad shape"
        );
        let bar = "exited with code 1; last lines:\n  Epoch 1/3\n  \u{1b}[1m1/8\u{1b}[0m ━━ 0.1\r\u{1b}[1m8/8\u{1b}[0m ━━ 0.9";
        assert_eq!(
            one_line(bar, true),
            "exited with code 1; last lines: ... 8/8 ━━ 0.9"
        );
    }

    #[test]
    fn a_run_stopped_for_good_shows_the_error_line_and_the_fix() {
        let mut s = training_state();
        let r = s.pipeline.run.as_mut().unwrap();
        let id = r.id;
        r.status = RunStatus::Failed;
        r.reason = Some(
            "ModuleNotFoundError: No module named 'seaborn' (at train.py:8) — the image has no \
             Python module `seaborn`: list it in requirements.txt next to mlops.toml, or name an \
             image that has it in [train] image (iteration 1 failed; no tweak can fix this, so \
             the run stopped)"
                .into(),
        );
        let (kind, text) = banner(&s).unwrap();
        assert_eq!(kind, BannerKind::Failure);
        assert!(
            text.starts_with(&format!(
                "run {id}: ModuleNotFoundError: No module named 'seaborn' (at train.py:8) — the image"
            )),
            "{text}"
        );
    }
}
