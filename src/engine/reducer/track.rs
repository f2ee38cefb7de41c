//! What the MLflow tracking worker reports: its server going and coming back.

use crate::engine::event::Level;
use crate::engine::state::PipelineState;

use super::fx::Fx;
use super::lookup::current_run;

/// The tracking server became unreachable (`down` is the status bar's notice) or reachable again;
/// each change is said once in the event log.
pub(super) fn tracking(state: &mut PipelineState, fx: &mut Fx, down: Option<String>, text: String) {
    let level = if down.is_some() {
        Level::Warn
    } else {
        Level::Good
    };
    state.tracking = down;
    let run = current_run(state);
    fx.event(state, run, "mlflow", level, text);
}

#[cfg(test)]
mod tests {
    use crate::engine::msg::{Effect, Msg};
    use crate::engine::reducer::update;
    use crate::engine::state::PipelineState;

    #[test]
    fn the_server_going_and_coming_back_is_a_notice_and_one_line_each() {
        let mut s = PipelineState::new("/p".into(), false);
        let down = "MLflow at http://127.0.0.1:5000 unreachable: 4 records queued".to_string();
        let fx = update(
            &mut s,
            Msg::Tracking {
                down: Some(down.clone()),
                text: down.clone(),
            },
            0,
        );
        assert_eq!(s.tracking.as_deref(), Some(down.as_str()));
        assert!(fx.iter().any(
            |e| matches!(e, Effect::Event { line, .. } if line.text == down && line.tag == "mlflow")
        ));
        let back = "MLflow at http://127.0.0.1:5000 reachable again: 4 records sent".to_string();
        update(
            &mut s,
            Msg::Tracking {
                down: None,
                text: back.clone(),
            },
            1,
        );
        assert_eq!(s.tracking, None);
        assert_eq!(
            s.events.back().map(|l| l.text.as_str()),
            Some(back.as_str())
        );
    }
}
