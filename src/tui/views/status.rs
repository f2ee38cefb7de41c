//! The status bar: the container engine's state, repository, branch, commit, apply mode and key
//! hints, or the prompt of the mode being typed in, or the last notice.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::core::config::ApplyMode;

use super::super::keymap::Action;
use super::super::state::{DockerStatus, EngineStatus, Mode, UiState};
use super::super::trials::{self, Health};
use super::lanes;

pub fn draw(s: &UiState, area: Rect, f: &mut Frame) {
    let bar = s.theme.bar();
    f.render_widget(Paragraph::new("").style(bar), area);
    if let Some(prompt) = prompt(s) {
        f.render_widget(Paragraph::new(prompt).style(bar), area);
        return;
    }
    let right = match &s.notice {
        Some(n) if n.error => Line::from(Span::styled(
            format!(" {} ", n.text),
            bar.patch(s.theme.bad()),
        )),
        Some(n) => Line::from(Span::styled(format!(" {} ", n.text), bar)),
        None => Line::from(Span::styled(String::new(), bar)),
    };
    let left = Line::from(facts(s));
    let right = match &s.notice {
        Some(_) => right,
        None => {
            let room = usize::from(area.width).saturating_sub(left.width() + 2);
            Line::from(Span::styled(format!(" {} ", hints(s, room)), bar))
        }
    };
    // A notice wins the room it needs (up to two thirds); hints take what the facts leave.
    let right_w = match &s.notice {
        Some(_) => (right.width() as u16).min(area.width * 2 / 3),
        None => (right.width() as u16).min(area.width.saturating_sub(left.width() as u16)),
    };
    let left_w = area.width.saturating_sub(right_w);
    f.render_widget(
        Paragraph::new(left).style(bar),
        Rect::new(area.x, area.y, left_w, 1),
    );
    if right_w > 0 {
        f.render_widget(
            Paragraph::new(right).alignment(Alignment::Right).style(bar),
            Rect::new(area.x + left_w, area.y, right_w, 1),
        );
    }
}

fn prompt(s: &UiState) -> Option<Line<'static>> {
    let bar = s.theme.bar();
    let strong = bar.add_modifier(Modifier::BOLD);
    let cursor = if s.ascii { "_" } else { "▏" };
    // What was wrong with the last entry replaces the hint, next to the text to fix.
    let hint = |text: &str| match &s.notice {
        Some(n) if n.error => Span::styled(format!("   {}", n.text), bar.patch(s.theme.bad())),
        _ => Span::styled(format!("   {text}"), bar),
    };
    let (typed, help) = match &s.mode {
        Mode::Search { input } => (format!("/{input}"), "enter searches · esc cancels"),
        Mode::Command { input } => (
            format!(":{input}"),
            "enter runs · esc cancels · :help lists commands",
        ),
        Mode::Edit { name, input } => (
            format!("set {name} = {input}"),
            "enter sends it to the engine · esc cancels",
        ),
        _ => return None,
    };
    Some(Line::from(vec![
        Span::styled(format!("{typed}{cursor}"), strong),
        hint(help),
    ]))
}

fn facts(s: &UiState) -> Vec<Span<'static>> {
    let bar = s.theme.bar();
    let sep = Span::styled(" │ ", bar);
    // The one engine, when it is a cluster: its manager and nodes.
    let cluster = s.pipeline.engines.first().and_then(trials::cluster_text);
    let (dot, docker, style) = match &s.docker_status() {
        DockerStatus::Unknown => ("○", "docker: checking".to_string(), bar),
        DockerStatus::Connected { .. } => (
            "●",
            cluster.unwrap_or_else(|| "docker: connected".to_string()),
            bar.patch(s.theme.good()),
        ),
        DockerStatus::Unavailable { retry_s, .. } => (
            "●",
            format!("docker: unavailable, retrying in {retry_s}s"),
            bar.patch(s.theme.bad()),
        ),
    };
    let mut out = if s.pipeline.engines.len() > 1 {
        engines(s)
    } else {
        vec![
            Span::styled(format!(" {dot} "), style),
            Span::styled(docker, style),
        ]
    };
    out.push(sep.clone());
    let repo = s
        .pipeline
        .project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.pipeline.project.display().to_string());
    out.push(Span::styled(repo, bar.add_modifier(Modifier::BOLD)));
    let commit = s.pipeline.run.as_ref().map(|r| &r.commit);
    let branch = commit
        .map(|c| c.branch.clone())
        .filter(|b| !b.is_empty())
        .or_else(|| s.branch.clone());
    if let Some(b) = branch {
        out.push(Span::styled(format!(" on {b}"), bar));
    }
    if let Some(c) = commit {
        out.push(Span::styled(format!(" @ {}", c.short()), bar));
    }
    out.push(sep.clone());
    let mode = match s.apply_mode() {
        ApplyMode::Ask => "mode: ask",
        ApplyMode::Auto => "mode: auto-apply",
    };
    out.push(Span::styled(mode, bar));
    if s.pipeline.paused {
        out.push(sep.clone());
        out.push(Span::styled(
            "paused",
            bar.patch(s.theme.warn()).add_modifier(Modifier::BOLD),
        ));
    }
    match &s.engine {
        EngineStatus::WaitingForDocker => {
            out.push(sep);
            out.push(Span::styled(
                "engine waits for Docker",
                bar.patch(s.theme.warn()),
            ));
        }
        EngineStatus::Stopped { .. } => {
            out.push(sep);
            out.push(Span::styled("engine stopped", bar.patch(s.theme.bad())));
        }
        EngineStatus::Running => {}
    }
    if let Some(t) = &s.pipeline.tracking {
        out.push(Span::styled(" │ ", bar));
        out.push(Span::styled(t.clone(), bar.patch(s.theme.warn())));
    }
    out
}

/// Each engine's state and free slots: ` local ● 1/1 · e1 ● 0/1 · e2 ✕ down 12s`; a cluster
/// engine by its manager and nodes: `s1 ● 1/3 swarm cluster @ unix://…, 3 nodes (1 down)`.
fn engines(s: &UiState) -> Vec<Span<'static>> {
    let bar = s.theme.bar();
    let mut out = vec![Span::styled(" ", bar)];
    let lanes = trials::lanes(&s.pipeline, s.docker_up());
    for (i, e) in s.pipeline.engines.iter().enumerate() {
        // A cluster's lanes are its nodes: the engine itself is drawn as one.
        let own = lanes.iter().find(|l| l.node.is_none() && l.name == e.name);
        let lane = match own {
            Some(l) => l.clone(),
            None => trials::Lane {
                name: e.name.clone(),
                node: None,
                health: trials::engine_health(e, if i == 0 { s.docker_up() } else { None }),
                slots: e.slots,
                free: s.pipeline.free_slots(&e.name),
                trials: Vec::new(),
            },
        };
        if i > 0 {
            out.push(Span::styled(" · ", bar));
        }
        out.extend(engine_spans(s, &lane, trials::cluster_text(e)));
    }
    out
}

/// `e1 ● 0/2`, `e2 ✕ down 12s`, or with the cluster's text after the slots.
fn engine_spans(s: &UiState, l: &trials::Lane<'_>, cluster: Option<String>) -> Vec<Span<'static>> {
    let bar = s.theme.bar();
    let (glyph, style) = lanes::health_glyph(s, l.health);
    let state = match l.health {
        Health::Up => format!("{}/{}", l.free, l.slots),
        _ => trials::lane_state(l, s.now_ms),
    };
    let state_style = match l.health {
        Health::Down { .. } => bar.patch(s.theme.bad()),
        _ => bar,
    };
    let mut out = vec![
        Span::styled(format!("{} ", l.name), bar),
        Span::styled(glyph, bar.patch(style)),
        Span::styled(format!(" {state}"), state_style),
    ];
    if let Some(c) = cluster {
        out.push(Span::styled(format!(" {c}"), bar));
    }
    out
}

/// The key hints that fit in `room` columns, whole: the last ones give way first.
fn hints(s: &UiState, room: usize) -> String {
    let k = &s.keymap;
    let mut h = vec![
        format!("{} help", k.key_of(Action::Help)),
        format!("{} quit", k.key_of(Action::Quit)),
        format!("{} focus", k.key_of(Action::FocusNext)),
    ];
    if s.pipeline.run.as_ref().is_some_and(|r| r.pending.is_some()) {
        h.push(format!("{} approve", k.key_of(Action::Approve)));
        h.push(format!("{} reject", k.key_of(Action::Reject)));
        h.push(format!("{} edit", k.key_of(Action::Edit)));
    }
    h.push(format!("{} space", k.key_of(Action::SearchSpace)));
    h.push(format!("{} search", k.key_of(Action::Search)));
    h.push(format!("{} command", k.key_of(Action::Command)));
    while h.len() > 1 && h.join(" · ").chars().count() > room {
        h.pop();
    }
    h.join(" · ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ratatui::style::Color;

    use super::super::fixtures::*;
    use super::*;
    use crate::tui::state::Notice;

    #[test]
    fn status_bar_connected() {
        let s = awaiting_state();
        let (text, buf) = render_view(&s, 160, 1, draw);
        insta::assert_snapshot!(text);
        assert_eq!(buf[(1, 0)].fg, Color::Green);
    }

    #[test]
    fn status_bar_docker_unavailable() {
        let mut s = base_state();
        s.docker = DockerStatus::Unavailable {
            endpoint: "unix:///var/run/docker.sock".into(),
            message: "connection refused".into(),
            retry_s: 4,
        };
        s.engine = EngineStatus::WaitingForDocker;
        s.branch = Some("main".into());
        let (text, buf) = render_view(&s, 160, 1, draw);
        insta::assert_snapshot!(text);
        assert_eq!(buf[(1, 0)].fg, Color::Red);
    }

    #[test]
    fn status_bar_prompt_and_error_notice() {
        let mut s = training_state();
        s.mode = Mode::Command {
            input: "target 0.97".into(),
        };
        let (text, _) = render_view(&s, 100, 1, draw);
        insta::assert_snapshot!(text);
        s.mode = Mode::Normal;
        s.notice = Some(Notice {
            text: "no match for \"zzz\"".into(),
            error: true,
        });
        let (text, buf) = render_view(&s, 120, 1, draw);
        assert!(text.contains("no match for \"zzz\""), "{text}");
        let n = find_text(&buf, "no match").unwrap();
        assert_eq!(buf[n].fg, Color::Red);
    }

    /// An MLflow server that cannot be reached is said in the bar, in the warning colour, until it
    /// answers again.
    #[test]
    fn status_bar_mlflow_unreachable() {
        let mut s = training_state();
        let notice = "MLflow at http://127.0.0.1:5000 unreachable: 7 records queued";
        s.pipeline.tracking = Some(notice.into());
        let (text, buf) = render_view(&s, 200, 1, draw);
        assert!(text.contains(&format!("mode: ask │ {notice}")), "{text}");
        let n = find_text(&buf, "MLflow at").unwrap();
        assert_eq!(buf[n].fg, Color::Yellow);
        s.pipeline.tracking = None;
        let (text, _) = render_view(&s, 200, 1, draw);
        assert!(!text.contains("MLflow"), "{text}");
    }

    /// A refused edit keeps its field open; the reason shows beside it, in red, not a hint.
    #[test]
    fn status_bar_edit_with_its_error() {
        let mut s = awaiting_state();
        s.mode = Mode::Edit {
            name: "hidden_units".into(),
            input: "lots".into(),
        };
        s.notice = Some(Notice {
            text: "hidden_units: `lots` is not a number".into(),
            error: true,
        });
        let (text, buf) = render_view(&s, 120, 1, draw);
        assert!(text.contains("set hidden_units = lots"), "{text}");
        assert!(text.contains("`lots` is not a number"), "{text}");
        assert!(!text.contains("enter sends it"), "{text}");
        let n = find_text(&buf, "`lots`").unwrap();
        assert_eq!(buf[n].fg, Color::Red);
    }

    /// Several engines: each with its state and free slots, the one that is down in the failure
    /// colour with how long it has been down.
    #[test]
    fn status_bar_engines_and_free_slots() {
        let s = parallel_state();
        let (text, buf) = render_view(&s, 160, 1, draw);
        insta::assert_snapshot!(text);
        assert!(
            text.contains(" local ● 0/1 · e1 ● 0/2 · e2 ✕ down 12s │ digits on main"),
            "{text}"
        );
        assert_eq!(buf[find(&buf, "✕").unwrap()].fg, Color::Red);
        assert_eq!(buf[find(&buf, "●").unwrap()].fg, Color::Green);
        // One engine listed: as before, the Docker status.
        let mut one = parallel_state();
        one.pipeline.engines.truncate(1);
        let (text, _) = render_view(&one, 160, 1, draw);
        assert!(text.starts_with("\" ● docker: connected │"), "{text}");
    }

    /// A swarm as the only engine: the bar names its manager and how many nodes are down.
    #[test]
    fn status_bar_swarm_manager_and_nodes() {
        let s = super::super::fixtures_swarm::swarm_state();
        let (text, buf) = render_view(&s, 180, 1, draw);
        insta::assert_snapshot!(text);
        assert!(
            text.starts_with(
                "\" ● swarm cluster @ unix:///run/mlops-s1/docker.sock, 3 nodes (1 down) │ digits"
            ),
            "{text}"
        );
        assert_eq!(buf[(1, 0)].fg, Color::Green);
    }

    /// A swarm beside another engine: its slots, then its manager and nodes.
    #[test]
    fn status_bar_swarm_in_a_pool() {
        let s = super::super::fixtures_swarm::swarm_pool_state();
        let (text, buf) = render_view(&s, 200, 1, draw);
        assert!(
            text.contains(
                " local ● 1/1 · s1 ● 0/3 swarm cluster @ unix:///run/mlops-s1/docker.sock, 3 nodes (1 down) │ digits"
            ),
            "{text}"
        );
        assert_eq!(buf[find(&buf, "●").unwrap()].fg, Color::Green);
    }
}
