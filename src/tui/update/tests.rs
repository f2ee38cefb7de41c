//! Reducer tests: feed a message, check the state and the effects.
#![allow(clippy::unwrap_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::super::msg::{Effect, QuitSignal, SavedLines, UiMsg};
use super::super::state::{Confirm, EngineStatus, Mode, Pane, UiState};
use super::super::views::fixtures::*;
use super::update;
use crate::core::config::ApplyMode;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::LogLine;

fn key(s: &mut UiState, code: KeyCode) -> Vec<Effect> {
    update(
        s,
        UiMsg::Key(KeyEvent::new_with_kind(
            code,
            KeyModifiers::NONE,
            KeyEventKind::Press,
        )),
    )
}

fn ch(s: &mut UiState, c: char) -> Vec<Effect> {
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    update(
        s,
        UiMsg::Key(KeyEvent::new_with_kind(
            KeyCode::Char(c),
            mods,
            KeyEventKind::Press,
        )),
    )
}

fn ctrl(s: &mut UiState, c: char) -> Vec<Effect> {
    update(
        s,
        UiMsg::Key(KeyEvent::new_with_kind(
            KeyCode::Char(c),
            KeyModifiers::CONTROL,
            KeyEventKind::Press,
        )),
    )
}

fn typed(s: &mut UiState, text: &str) {
    for c in text.chars() {
        ch(s, c);
    }
}

fn engine_msgs(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Engine(m) => Some(format!("{m:?}")),
            _ => None,
        })
        .collect()
}

fn flood(s: &mut UiState, n: usize) {
    let lines = (0..n)
        .map(|i| LogLine {
            stderr: false,
            text: format!("line {i}{}", if i % 10 == 0 { " needle" } else { "" }),
        })
        .collect();
    let _ = update(
        s,
        UiMsg::Logs {
            run: RunId(3),
            no: IterationNo(2),
            lines,
            at_ms: NOW,
        },
    );
}

#[test]
fn tab_and_brackets_cycle_focus_both_ways() {
    let mut s = training_state();
    assert_eq!(s.focus, Pane::Logs);
    key(&mut s, KeyCode::Tab);
    assert_eq!(s.focus, Pane::Plot);
    ch(&mut s, ']');
    assert_eq!(s.focus, Pane::Tweak);
    key(&mut s, KeyCode::BackTab);
    assert_eq!(s.focus, Pane::Plot);
    ch(&mut s, '[');
    ch(&mut s, '[');
    assert_eq!(s.focus, Pane::Graph);
    ch(&mut s, '[');
    assert_eq!(s.focus, Pane::Runs, "wraps around");
}

#[test]
fn approve_sends_approve_to_the_engine() {
    let mut s = awaiting_state();
    let fx = ch(&mut s, 'a');
    assert_eq!(engine_msgs(&fx), vec!["Approve"]);
    assert!(
        s.notice
            .as_ref()
            .unwrap()
            .text
            .starts_with("approved: epochs 8→12")
    );
}

#[test]
fn reject_sends_reject_and_nothing_without_a_proposal() {
    let mut s = awaiting_state();
    assert_eq!(engine_msgs(&ch(&mut s, 'x')), vec!["Reject"]);
    let mut s = training_state();
    assert!(ch(&mut s, 'a').is_empty());
    assert_eq!(s.notice.as_ref().unwrap().text, "no proposal is waiting");
}

#[test]
fn edit_mode_sends_the_typed_value() {
    let mut s = awaiting_state();
    // The first changed value (epochs) is selected when the proposal arrives.
    assert_eq!(s.tweak_sel, 0);
    ch(&mut s, 'j');
    assert_eq!(
        s.tweak_sel, 0,
        "j scrolls the focused pane (logs), not the proposal"
    );
    s.focus = Pane::Tweak;
    ch(&mut s, 'j');
    assert_eq!(s.tweak_sel, 1);
    ch(&mut s, 'e');
    assert_eq!(
        s.mode,
        Mode::Edit {
            name: "hidden_units".into(),
            input: "32".into()
        }
    );
    key(&mut s, KeyCode::Backspace);
    key(&mut s, KeyCode::Backspace);
    // One backspace too many: the field stays open and the next keys are still the value's
    // (`4` would otherwise go to the key table).
    key(&mut s, KeyCode::Backspace);
    assert_eq!(
        s.mode,
        Mode::Edit {
            name: "hidden_units".into(),
            input: String::new()
        }
    );
    typed(&mut s, "48");
    let fx = key(&mut s, KeyCode::Enter);
    assert_eq!(
        engine_msgs(&fx),
        vec![r#"Edit { name: "hidden_units", raw: "48" }"#]
    );
    assert_eq!(s.mode, Mode::Normal);
}

/// A value the engine would refuse is refused here, in the status bar, with the field still open;
/// nothing is sent and nothing claims it was.
#[test]
fn a_bad_edit_is_said_in_the_status_bar_and_not_sent() {
    let mut s = awaiting_state();
    s.focus = Pane::Tweak;
    ch(&mut s, 'j');
    ch(&mut s, 'e');
    ctrl(&mut s, 'u');
    typed(&mut s, "lots");
    let fx = key(&mut s, KeyCode::Enter);
    assert!(engine_msgs(&fx).is_empty(), "{fx:?}");
    let n = s.notice.clone().unwrap();
    assert!(n.error, "{n:?}");
    assert!(!n.text.contains("asked the engine"), "{n:?}");
    assert!(n.text.contains("hidden_units"), "{n:?}");
    assert_eq!(
        s.mode,
        Mode::Edit {
            name: "hidden_units".into(),
            input: "lots".into()
        }
    );
    ctrl(&mut s, 'u');
    typed(&mut s, "48");
    let fx = key(&mut s, KeyCode::Enter);
    assert_eq!(engine_msgs(&fx).len(), 1);
    assert_eq!(s.mode, Mode::Normal);
}

#[test]
fn esc_leaves_every_mode() {
    let mut s = awaiting_state();
    for open in ['/', ':', '?', 'e'] {
        ch(&mut s, open);
        assert_ne!(s.mode, Mode::Normal, "{open}");
        let fx = key(&mut s, KeyCode::Esc);
        assert!(fx.is_empty());
        assert_eq!(s.mode, Mode::Normal, "esc after {open}");
    }
    ch(&mut s, 's');
    assert_eq!(s.mode, Mode::Normal, "nothing trains: no question");
    let mut s = training_state();
    ch(&mut s, 's');
    assert_eq!(s.mode, Mode::Confirm(Confirm::Stop));
    assert!(key(&mut s, KeyCode::Esc).is_empty());
    assert_eq!(s.mode, Mode::Normal);
}

#[test]
fn stop_asks_then_sends_stop_training() {
    let mut s = training_state();
    assert!(ch(&mut s, 's').is_empty());
    assert_eq!(engine_msgs(&ch(&mut s, 'y')), vec!["StopTraining"]);
}

#[test]
fn quit_asks_while_training_and_not_otherwise() {
    let mut s = training_state();
    assert!(ch(&mut s, 'q').is_empty());
    assert_eq!(s.mode, Mode::Confirm(Confirm::Quit));
    ch(&mut s, 'n');
    assert!(!s.quit);
    ctrl(&mut s, 'c');
    assert_eq!(s.mode, Mode::Confirm(Confirm::Quit), "ctrl-c asks too");
    let fx = key(&mut s, KeyCode::Enter);
    assert!(matches!(fx.as_slice(), [Effect::Quit]));
    assert!(s.quit);

    let mut s = finished_state();
    let fx = ch(&mut s, 'q');
    assert!(matches!(fx.as_slice(), [Effect::Quit]));
    assert_eq!(s.exit_code, 0);
}

#[test]
fn a_signal_quits_at_once_even_while_training_or_asking() {
    for (sig, code) in [(QuitSignal::Terminate, 143), (QuitSignal::Hangup, 129)] {
        let mut s = training_state();
        let fx = update(&mut s, UiMsg::Signal(sig));
        assert!(
            matches!(fx.as_slice(), [Effect::Quit]),
            "{sig:?}: no question"
        );
        assert!(s.quit);
        assert_eq!(s.exit_code, code);

        let mut s = training_state();
        ch(&mut s, 'q');
        assert_eq!(s.mode, Mode::Confirm(Confirm::Quit));
        let fx = update(&mut s, UiMsg::Signal(sig));
        assert!(matches!(fx.as_slice(), [Effect::Quit]));
        assert_eq!(s.mode, Mode::Normal, "the open question is dropped");
    }
}

#[test]
fn scrolling_up_pauses_follow_and_g_resumes() {
    let mut s = training_state();
    flood(&mut s, 500);
    assert!(s.logs.follow);
    ch(&mut s, 'k');
    assert!(!s.logs.follow);
    let last = s.logs.buffers[&(RunId(3), IterationNo(2))]
        .last_seq()
        .unwrap();
    assert_eq!(s.logs.bottom, last - 1);
    key(&mut s, KeyCode::PageUp);
    let rows = super::super::layout::log_rows(&s) as u64;
    assert_eq!(s.logs.bottom, last - 1 - rows);
    ctrl(&mut s, 'd');
    assert_eq!(s.logs.bottom, last - 1 - rows + rows / 2);
    // New lines do not move a paused view.
    flood(&mut s, 10);
    assert_eq!(s.logs.bottom, last - 1 - rows + rows / 2);
    ch(&mut s, 'G');
    assert!(s.logs.follow);
    ch(&mut s, 'g');
    assert!(!s.logs.follow);
    let first = s.logs.buffers[&(RunId(3), IterationNo(2))].first_seq();
    assert_eq!(s.logs.bottom, first + rows - 1, "top keeps a full screen");
    key(&mut s, KeyCode::End);
    assert!(s.logs.follow);
}

#[test]
fn search_finds_jumps_and_n_moves_between_matches() {
    let mut s = training_state();
    flood(&mut s, 500);
    ch(&mut s, '/');
    typed(&mut s, "needle");
    assert_eq!(
        s.mode,
        Mode::Search {
            input: "needle".into()
        }
    );
    key(&mut s, KeyCode::Enter);
    assert_eq!(s.mode, Mode::Normal);
    assert_eq!(s.logs.search.as_deref(), Some("needle"));
    let buf = &s.logs.buffers[&(RunId(3), IterationNo(2))];
    let first = s.logs.current_match.unwrap();
    assert!(buf.get(first).unwrap().text.ends_with("line 490 needle"));
    assert!(!s.logs.follow, "looking at a match pauses follow");
    ch(&mut s, 'N');
    let prev = s.logs.current_match.unwrap();
    assert!(buf_text(&s, prev).ends_with("line 480 needle"));
    ch(&mut s, 'n');
    assert_eq!(s.logs.current_match, Some(first));
    // esc clears the search.
    key(&mut s, KeyCode::Esc);
    assert!(s.logs.search.is_none());
}

fn buf_text(s: &UiState, seq: u64) -> String {
    s.logs.buffers[&(RunId(3), IterationNo(2))]
        .get(seq)
        .unwrap()
        .text
        .clone()
}

#[test]
fn a_search_without_match_says_so() {
    let mut s = training_state();
    ch(&mut s, '/');
    typed(&mut s, "zzz");
    key(&mut s, KeyCode::Enter);
    let n = s.notice.clone().unwrap();
    assert!(n.error);
    assert_eq!(n.text, "no match for \"zzz\"");
}

#[test]
fn command_line_target_theme_and_errors() {
    let mut s = training_state();
    ch(&mut s, ':');
    typed(&mut s, "target 0.97");
    let fx = key(&mut s, KeyCode::Enter);
    assert_eq!(engine_msgs(&fx), vec!["SetTarget(0.97)"]);
    ch(&mut s, ':');
    typed(&mut s, "theme light");
    let fx = key(&mut s, KeyCode::Enter);
    assert!(matches!(fx.as_slice(), [Effect::LoadTheme(n)] if n == "light"));
    ch(&mut s, ':');
    typed(&mut s, "nope");
    assert!(key(&mut s, KeyCode::Enter).is_empty());
    assert!(s.notice.as_ref().unwrap().error);
    ch(&mut s, ':');
    typed(&mut s, "q");
    assert!(
        key(&mut s, KeyCode::Enter).is_empty(),
        ":q asks while training"
    );
    assert_eq!(s.mode, Mode::Confirm(Confirm::Quit));
}

#[test]
fn loop_keys_reach_the_engine() {
    let mut s = finished_state();
    assert_eq!(engine_msgs(&ch(&mut s, 'r')), vec!["Retry"]);
    assert_eq!(engine_msgs(&ch(&mut s, 't')), vec!["TriggerNow"]);
    assert_eq!(engine_msgs(&ch(&mut s, 'p')), vec!["Pause(true)"]);
    assert_eq!(s.pipeline.apply_mode(), ApplyMode::Ask);
    assert_eq!(engine_msgs(&ch(&mut s, 'A')), vec!["SetApply(Auto)"]);
}

#[test]
fn engine_keys_before_the_engine_runs_explain_why_nothing_happens() {
    let mut s = training_state();
    s.engine = EngineStatus::WaitingForDocker;
    assert!(ch(&mut s, 't').is_empty());
    assert!(
        s.notice
            .as_ref()
            .unwrap()
            .text
            .contains("once Docker answers")
    );
}

#[test]
fn wrap_timestamps_and_iteration_switching() {
    let mut s = finished_state();
    ch(&mut s, 'w');
    assert!(s.logs.wrap);
    ch(&mut s, 'T');
    assert!(s.logs.timestamps);
    assert_eq!(s.log_source(), Some((RunId(3), IterationNo(3))));
    ch(&mut s, '<');
    assert_eq!(s.logs.pinned, Some((RunId(3), IterationNo(2))));
    ch(&mut s, '>');
    assert_eq!(s.logs.pinned, None, "back on the newest: follow it again");
}

#[test]
fn enter_on_a_run_opens_its_detail() {
    let mut s = training_state();
    s.focus = Pane::Runs;
    ch(&mut s, 'j');
    let fx = key(&mut s, KeyCode::Enter);
    assert!(matches!(
        fx.as_slice(),
        [Effect::LoadRun(RunId(2)), Effect::LoadHistory]
    ));
    let _ = update(&mut s, UiMsg::Detail(Ok(detail())));
    assert_eq!(s.mode, Mode::Detail);
    ch(&mut s, 'k');
    assert_eq!(s.history.detail.as_ref().unwrap().selected, 0);
    key(&mut s, KeyCode::Esc);
    assert_eq!(s.mode, Mode::Normal);
}

#[test]
fn save_logs_writes_what_is_kept() {
    let mut s = training_state();
    let fx = ch(&mut s, 'S');
    match fx.as_slice() {
        [Effect::SaveLogs { path, text }] => {
            assert!(path.starts_with("/tmp/mlops-tui"));
            assert!(text.contains("epoch 3/8 accuracy=0.9012"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_background_task_is_pinned_until_esc() {
    let mut s = training_state();
    let _ = update(
        &mut s,
        UiMsg::TaskFailed {
            task: "history reader".into(),
            error: "panicked".into(),
        },
    );
    let (_, text) = super::super::layout::banner(&s).unwrap();
    assert!(text.starts_with("history reader failed: panicked"));
    key(&mut s, KeyCode::Esc);
    assert!(s.errors.is_empty());
}

#[test]
fn history_refreshes_when_a_run_or_iteration_changes() {
    let mut s = training_state();
    let same = s.pipeline.clone();
    let fx = update(&mut s, UiMsg::Pipeline(Box::new(same)));
    assert!(fx.is_empty(), "nothing changed: no refresh");
    let mut p = s.pipeline.clone();
    p.finished_runs += 1;
    let fx = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    assert!(matches!(fx.as_slice(), [Effect::LoadHistory]));
}

/// The saved output of a finished iteration is asked for once, never for a running one, and never
/// replaces lines that arrived live.
#[test]
fn saved_output_is_read_once_and_only_for_finished_iterations() {
    let loads = |fx: &[Effect]| {
        fx.iter()
            .filter(|e| matches!(e, Effect::LoadOutput(..)))
            .count()
    };
    let mut s = training_state();
    s.logs.buffers.clear();
    let p = s.pipeline.clone();
    assert_eq!(loads(&update(&mut s, UiMsg::Pipeline(Box::new(p)))), 0);

    let mut s = base_state();
    let p = finished_state().pipeline;
    assert_eq!(
        loads(&update(&mut s, UiMsg::Pipeline(Box::new(p.clone())))),
        1
    );
    assert_eq!(loads(&update(&mut s, UiMsg::Pipeline(Box::new(p)))), 0);
    let key = (RunId(3), IterationNo(3));
    let _ = update(
        &mut s,
        UiMsg::Logs {
            run: key.0,
            no: key.1,
            lines: vec![LogLine {
                stderr: false,
                text: "live".into(),
            }],
            at_ms: NOW,
        },
    );
    let _ = update(
        &mut s,
        UiMsg::SavedOutput {
            run: key.0,
            no: key.1,
            saved: Ok(SavedLines {
                lines: vec!["saved".into()],
                at_ms: NOW,
            }),
        },
    );
    let buf = &s.logs.buffers[&key];
    assert_eq!(buf.len(), 1);
    assert_eq!(buf.to_text(false).trim(), "live");
}

#[test]
fn logs_of_old_runs_are_dropped() {
    let mut s = training_state();
    for run in [1, 2, 3, 4] {
        let _ = update(
            &mut s,
            UiMsg::Logs {
                run: RunId(run),
                no: IterationNo(1),
                lines: vec![LogLine {
                    stderr: false,
                    text: "x".into(),
                }],
                at_ms: NOW,
            },
        );
    }
    let runs: Vec<i64> = s.logs.buffers.keys().map(|(r, _)| r.0).collect();
    assert_eq!(runs, vec![3, 3, 4]);
}

#[test]
fn help_opens_and_closes_with_q_or_question_mark() {
    let mut s = training_state();
    ch(&mut s, '?');
    assert_eq!(s.mode, Mode::Help { scroll: 0 });
    ch(&mut s, 'j');
    assert_eq!(s.mode, Mode::Help { scroll: 1 });
    ch(&mut s, 'q');
    assert_eq!(s.mode, Mode::Normal);
    assert!(!s.quit);
}

#[test]
fn a_notice_expires_at_the_first_frame_after_its_time() {
    let mut s = awaiting_state();
    ch(&mut s, 'a');
    assert!(s.notice.is_some());
    let _ = update(&mut s, UiMsg::Tick(NOW + 1_000));
    assert!(s.notice.is_some());
    let _ = update(&mut s, UiMsg::Tick(NOW + super::NOTICE_MS + 1));
    assert!(s.notice.is_none());
}

#[test]
fn v_opens_the_search_space_which_scrolls_within_its_rows_and_closes() {
    let mut s = many_dimensions_state();
    s.size = (80, 24);
    let fx = ch(&mut s, 'v');
    assert!(fx.is_empty());
    assert_eq!(s.mode, Mode::Space { scroll: 0 });
    // Six panels at 80×24: two per row, two rows shown, so one row to scroll to and no more.
    ch(&mut s, 'j');
    assert_eq!(s.mode, Mode::Space { scroll: 1 });
    ch(&mut s, 'j');
    key(&mut s, KeyCode::PageDown);
    assert_eq!(s.mode, Mode::Space { scroll: 1 }, "kept within the rows");
    ch(&mut s, 'g');
    assert_eq!(s.mode, Mode::Space { scroll: 0 });
    ch(&mut s, 'G');
    assert_eq!(s.mode, Mode::Space { scroll: 1 });
    // `q` closes the view; it does not quit the dashboard.
    ch(&mut s, 'q');
    assert_eq!(s.mode, Mode::Normal);
    assert!(!s.quit);
    ch(&mut s, 'v');
    key(&mut s, KeyCode::Esc);
    assert_eq!(s.mode, Mode::Normal);
    ch(&mut s, 'v');
    ch(&mut s, 'v');
    assert_eq!(s.mode, Mode::Normal, "its own key closes it");
}

/// The logs follow the newest running trial; `c` and `C` cycle through the running ones (wrapping),
/// each with its own lines, and the pane's title says which one of how many, and where it runs.
#[test]
fn c_cycles_the_logs_through_the_running_trials() {
    use super::super::views::{draw_logs, fixtures::render_view};
    let mut s = parallel_state();
    let shown = |s: &UiState| s.log_source().map(|(_, no)| no.0);
    assert_eq!(shown(&s), Some(5), "the newest running trial");
    assert!(s.logs.pinned.is_none());
    let (text, _) = render_view(&s, 100, 6, draw_logs);
    assert!(
        text.contains("Logs · #5 on e1 (3 of 3) · following"),
        "{text}"
    );
    assert!(text.contains("epoch 1/8 accuracy=0.7010"), "{text}");
    assert!(
        !text.contains("accuracy=0.9120"),
        "lines of trials do not mix:\n{text}"
    );
    ch(&mut s, 'c');
    assert_eq!(shown(&s), Some(3), "wraps to the first");
    let (text, _) = render_view(&s, 100, 6, draw_logs);
    assert!(text.contains("#3 on local (1 of 3)"), "{text}");
    assert!(text.contains("epoch 2/8 accuracy=0.8840"), "{text}");
    // A narrow pane gets the short form rather than a cut title.
    let (narrow, _) = render_view(&s, 46, 6, draw_logs);
    assert!(
        narrow.contains("Logs · #3 (1/3) (pinned) · following"),
        "{narrow}"
    );
    ch(&mut s, 'c');
    assert_eq!(shown(&s), Some(4));
    ch(&mut s, 'C');
    ch(&mut s, 'C');
    assert_eq!(shown(&s), Some(5));
    assert!(
        s.logs.pinned.is_none(),
        "back on the newest: following it again"
    );
    // Nothing runs: a note, nothing moves.
    let mut idle = finished_state();
    let before = idle.log_source();
    ch(&mut idle, 'c');
    assert_eq!(idle.log_source(), before);
    assert_eq!(idle.notice.as_ref().unwrap().text, "no iteration runs");
}
