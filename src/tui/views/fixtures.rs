//! Deterministic dashboard states for the view tests: fixed times, no clock, no engine.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Frame, layout::Position};

use crate::adapters::store::{IterationRow, MetricPoint, RunRow};
use crate::core::config::{ApplyMode, Config, Params};
use crate::core::ids::{ContainerId, IterationNo, RunId};
use crate::core::model::{CommitInfo, IterStatus, LogLine, RunStatus};
use crate::core::tweak::{Change, Proposal};
use crate::engine::state::{EngineState, IterState, Placement, RunState};
use crate::engine::{EventLine, Level, PipelineState, Stage, StageStatus};
use crate::tui::keymap::Keymap;
use crate::tui::msg::{SavedLines, UiMsg};
use crate::tui::state::{DockerStatus, EngineStatus, RunDetail, RunSummary, UiState};
use crate::tui::theme::Theme;
use crate::tui::update::update;

/// "Now" in every fixture: 2023-11-14 22:15:00 UTC.
pub const NOW: i64 = 1_700_000_100_000;
const T0: i64 = NOW - 300_000;

const CONFIG: &str = r#"
[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 5

[tweak]
apply = "ask"

[tweak.space]
hidden_units = { start = 8, max = 64, factor = 2 }
epochs = { start = 4, max = 16, step = 4 }

[params]
lr = 0.05
"#;

pub fn config() -> Config {
    Config::parse(CONFIG, Path::new("mlops.toml")).unwrap()
}

fn params(hidden: i64, epochs: i64) -> Params {
    let mut p = Params::new();
    p.insert("epochs".into(), epochs.into());
    p.insert("hidden_units".into(), hidden.into());
    p.insert("lr".into(), serde_json::json!(0.05));
    p
}

fn commit() -> CommitInfo {
    CommitInfo {
        id: "3f9a1c2e7b4d5a6f8e9d0c1b2a3f4e5d6c7b8a9f".into(),
        summary: "widen the hidden layer".into(),
        author: "Ada".into(),
        branch: "main".into(),
        time: (T0 / 1000) - 60,
    }
}

fn finished_iteration(
    no: u32,
    hidden: i64,
    epochs: i64,
    curve: &[f64],
    status: IterStatus,
) -> IterState {
    let mut it = IterState::new(IterationNo(no), params(hidden, epochs), None);
    it.status = status;
    it.container = Some(ContainerId(format!("c0ffee{no:06}aaaa")));
    it.points = curve
        .iter()
        .enumerate()
        .map(|(i, v)| (Some(i as u32 + 1), *v))
        .collect();
    it.final_value = curve.last().copied();
    it.epochs = Some(epochs as u32);
    let start = T0 + 20_000 + i64::from(no - 1) * 60_000;
    it.started_ms = Some(start);
    it.finished_ms = Some(start + 41_000);
    it
}

fn event(at: i64, tag: &str, text: &str, level: Level) -> EventLine {
    EventLine {
        at_ms: at,
        tag: tag.into(),
        text: text.into(),
        level,
    }
}

fn set_stage(
    p: &mut PipelineState,
    s: Stage,
    st: StageStatus,
    start: i64,
    end: Option<i64>,
    detail: &str,
) {
    let x = p.stage_mut(s);
    x.status = st;
    x.started_ms = Some(start);
    x.finished_ms = end;
    x.detail = detail.into();
}

/// A dashboard with nothing run yet.
pub fn base_state() -> UiState {
    let p = PipelineState::new("/home/ada/digits".into(), true);
    let mut s = UiState::new(p, Theme::default_dark(false), Keymap::defaults(), 10_000);
    s.now_ms = NOW;
    s.size = (160, 48);
    s.engine = EngineStatus::Running;
    s.docker = DockerStatus::Connected {
        endpoint: "unix:///var/run/docker.sock".into(),
    };
    s.save_dir = "/tmp/mlops-tui".into();
    s
}

#[allow(
    clippy::too_many_lines,
    reason = "one literal scene: the running pipeline every snapshot starts from"
)]
fn pipeline_running() -> PipelineState {
    let mut p = PipelineState::new("/home/ada/digits".into(), true);
    let mut r = RunState::new(RunId(3), commit());
    r.config = Some(config());
    r.image = Some("mlops-tui/numpy:fdfa2114094b".into());
    r.iterations.push(finished_iteration(
        1,
        8,
        4,
        &[0.61, 0.78, 0.84, 0.8912],
        IterStatus::BelowTarget,
    ));
    let mut it2 = IterState::new(
        IterationNo(2),
        params(16, 8),
        Some("accuracy 0.8912 < 0.95: grow every dimension one step".into()),
    );
    it2.status = IterStatus::Running;
    it2.container = Some(ContainerId("5be7d0a1c2f3aaaa".into()));
    it2.points = vec![(Some(1), 0.70), (Some(2), 0.85), (Some(3), 0.9012)];
    it2.final_value = Some(0.9012);
    it2.epochs = Some(8);
    it2.started_ms = Some(NOW - 14_000);
    r.iterations.push(it2);
    r.best = Some(IterationNo(1));
    p.run = Some(r);
    p.apply_override = Some(ApplyMode::Ask);
    set_stage(
        &mut p,
        Stage::Pull,
        StageStatus::Passed,
        T0,
        Some(T0 + 400),
        "",
    );
    set_stage(
        &mut p,
        Stage::Detect,
        StageStatus::Passed,
        T0 + 400,
        Some(T0 + 900),
        "numpy",
    );
    set_stage(
        &mut p,
        Stage::Image,
        StageStatus::Passed,
        T0 + 900,
        Some(T0 + 19_000),
        "mlops-tui/numpy:fdfa2114094b",
    );
    set_stage(
        &mut p,
        Stage::Train,
        StageStatus::Running,
        NOW - 14_000,
        None,
        "iteration 2",
    );
    set_stage(
        &mut p,
        Stage::Evaluate,
        StageStatus::Passed,
        T0 + 61_000,
        Some(T0 + 61_100),
        "",
    );
    set_stage(
        &mut p,
        Stage::Tweak,
        StageStatus::Passed,
        T0 + 61_100,
        Some(NOW - 15_000),
        "epochs 4→8, hidden_units 8→16",
    );
    p.stage_mut(Stage::Monitor).status = StageStatus::Skipped;
    p.events.push_back(event(
        T0 + 100,
        "pull",
        "run 3: commit 3f9a1c2e \"widen the hidden layer\" by Ada on main",
        Level::Info,
    ));
    p.events.push_back(event(
        T0 + 900,
        "detect",
        "numpy: a multi-layer perceptron in NumPy (train.py:88 np.dot)",
        Level::Info,
    ));
    p.events.push_back(event(
        T0 + 19_000,
        "image",
        "mlops-tui/numpy:fdfa2114094b ready",
        Level::Info,
    ));
    p.events.push_back(event(
        T0 + 61_000,
        "evaluate:1",
        "accuracy 0.8912 < target 0.95",
        Level::Warn,
    ));
    p.events.push_back(event(NOW - 15_000, "tweak:1→2", "epochs 4→8, hidden_units 8→16 (approved) — accuracy 0.8912 < 0.95: grow every dimension one step", Level::Info));
    p.events.push_back(event(
        NOW - 14_000,
        "train:2",
        "container 5be7d0a1c2f3 started with epochs=8, hidden_units=16, lr=0.05",
        Level::Info,
    ));
    p
}

fn history() -> Vec<RunSummary> {
    let row =
        |id: i64, status: RunStatus, started: i64, finished: Option<i64>, best: Option<u32>| {
            RunRow {
                id: RunId(id),
                project: "/home/ada/digits".into(),
                commit_id: format!("{id}f9a1c2e7b4d5a6f8e9d0c1b2a3f4e5d6c7b8a9f"),
                commit_summary: match id {
                    3 => "widen the hidden layer",
                    2 => "fix the data loader",
                    _ => "first model",
                }
                .into(),
                branch: "main".into(),
                trigger: "commit".into(),
                started_at: started,
                finished_at: finished,
                status,
                reason: None,
                best_iteration: best.map(IterationNo),
                owner_pid: None,
            }
        };
    vec![
        RunSummary {
            row: row(3, RunStatus::Running, T0, None, Some(1)),
            iterations: 2,
            best_value: Some(0.8912),
        },
        RunSummary {
            row: row(
                2,
                RunStatus::BudgetSpent,
                T0 - 7_200_000,
                Some(T0 - 6_900_000),
                Some(4),
            ),
            iterations: 5,
            best_value: Some(0.9344),
        },
        RunSummary {
            row: row(
                1,
                RunStatus::Failed,
                T0 - 90_000_000,
                Some(T0 - 89_990_000),
                None,
            ),
            iterations: 0,
            best_value: None,
        },
    ]
}

/// Iteration 2 of run 3 trains; iteration 1 missed the target; logs are streaming.
pub fn training_state() -> UiState {
    let mut s = base_state();
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(pipeline_running())));
    let lines: Vec<LogLine> = [
        (false, "loaded 1437 training and 360 test images"),
        (true, "warning: unknown parameter 'lr' ignored"),
        (false, "epoch 1/8 accuracy=0.7000 loss=1.0412"),
        (false, "epoch 2/8 accuracy=0.8500 loss=0.5234"),
        (false, "epoch 3/8 accuracy=0.9012 loss=0.3310"),
    ]
    .iter()
    .map(|(e, t)| LogLine {
        stderr: *e,
        text: (*t).into(),
    })
    .collect();
    let _ = update(
        &mut s,
        UiMsg::Logs {
            run: RunId(3),
            no: IterationNo(2),
            lines,
            at_ms: NOW - 2_000,
        },
    );
    let _ = update(&mut s, UiMsg::History(Ok(history())));
    s
}

/// Iteration 2 finished below the target; a proposal for iteration 3 waits for the operator.
pub fn awaiting_state() -> UiState {
    let mut s = training_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    let it = r.iteration_mut(IterationNo(2)).unwrap();
    it.status = IterStatus::BelowTarget;
    it.points.push((Some(8), 0.9321));
    it.final_value = Some(0.9321);
    it.finished_ms = Some(NOW - 5_000);
    r.best = Some(IterationNo(2));
    r.pending = Some(Proposal {
        params: params(32, 12),
        changes: vec![
            Change {
                name: "epochs".into(),
                from: 8.into(),
                to: 12.into(),
            },
            Change {
                name: "hidden_units".into(),
                from: 16.into(),
                to: 32.into(),
            },
        ],
        reason: "accuracy 0.9321 < 0.95: grow every dimension one step".into(),
    });
    set_stage(
        &mut p,
        Stage::Train,
        StageStatus::Passed,
        NOW - 46_000,
        Some(NOW - 5_000),
        "iteration 2",
    );
    set_stage(
        &mut p,
        Stage::Evaluate,
        StageStatus::Passed,
        NOW - 5_000,
        Some(NOW - 5_000),
        "",
    );
    set_stage(
        &mut p,
        Stage::Tweak,
        StageStatus::Running,
        NOW - 5_000,
        None,
        "awaiting approval",
    );
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    s
}

/// Iteration 3 reached the target; the run is over.
pub fn finished_state() -> UiState {
    let mut s = awaiting_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    r.pending = None;
    r.iterations.push(finished_iteration(
        3,
        32,
        12,
        &[0.80, 0.90, 0.93, 0.9611],
        IterStatus::Succeeded,
    ));
    r.best = Some(IterationNo(3));
    r.status = RunStatus::Succeeded;
    r.reason = Some(
        "target reached at iteration 3: accuracy 0.9611 (best model: /data/runs/3/iter-3/model)"
            .into(),
    );
    set_stage(
        &mut p,
        Stage::Tweak,
        StageStatus::Passed,
        NOW - 5_000,
        Some(NOW - 4_000),
        "epochs 8→12, hidden_units 16→32",
    );
    set_stage(
        &mut p,
        Stage::Train,
        StageStatus::Passed,
        NOW - 4_000,
        Some(NOW - 1_000),
        "iteration 3",
    );
    set_stage(
        &mut p,
        Stage::Evaluate,
        StageStatus::Passed,
        NOW - 1_000,
        Some(NOW - 1_000),
        "",
    );
    p.stage_mut(Stage::Notify).status = StageStatus::Skipped;
    p.finished_runs = 1;
    let run = p.run.as_ref().unwrap().id;
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    // The pane asked for iteration 3's saved output; it printed nothing, and the history says so.
    let _ = update(
        &mut s,
        UiMsg::SavedOutput {
            run,
            no: IterationNo(3),
            saved: Ok(SavedLines {
                lines: Vec::new(),
                at_ms: NOW,
            }),
        },
    );
    s
}

/// The image build failed: the run is over before training.
pub fn image_failed_state() -> UiState {
    let mut s = base_state();
    let mut p = PipelineState::new("/home/ada/digits".into(), true);
    let mut r = RunState::new(RunId(4), commit());
    r.config = Some(config());
    r.status = RunStatus::Failed;
    r.reason = Some(
        "Build image failed: image mlops-tui/base:bookworm: mmdebstrap is not installed".into(),
    );
    p.run = Some(r);
    set_stage(
        &mut p,
        Stage::Pull,
        StageStatus::Passed,
        T0,
        Some(T0 + 400),
        "",
    );
    set_stage(
        &mut p,
        Stage::Detect,
        StageStatus::Passed,
        T0 + 400,
        Some(T0 + 900),
        "numpy",
    );
    set_stage(
        &mut p,
        Stage::Image,
        StageStatus::Failed,
        T0 + 900,
        Some(T0 + 3_900),
        "image mlops-tui/base:bookworm: mmdebstrap is not installed",
    );
    p.stage_mut(Stage::Notify).status = StageStatus::Skipped;
    p.stage_mut(Stage::Monitor).status = StageStatus::Skipped;
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    s
}

/// Run 2 of the history, opened.
pub fn detail() -> RunDetail {
    let h = history();
    let mut run = h[1].row.clone();
    run.reason = Some("budget spent: 5 of 5 iterations without reaching the target".into());
    let it = |no: u32, hidden: i64, v: f64, status: IterStatus| {
        let mut row = IterationRow::new(run.id, IterationNo(no), params(hidden, 4 * i64::from(no)));
        row.status = status;
        row.final_value = Some(v);
        row.started_at = Some(run.started_at + i64::from(no) * 60_000);
        row.finished_at = Some(run.started_at + i64::from(no) * 60_000 + 30_000);
        row.log_tail = Some(format!(
            "epoch {no}/{no} accuracy={v:.4}\nfinal accuracy={v:.4}"
        ));
        row.proposal_reason = (no > 1).then(|| "grow every dimension one step".to_string());
        let points = (1..=4)
            .map(|e| MetricPoint {
                epoch: Some(e),
                value: v - 0.05 * f64::from(4 - e),
                at: 0,
            })
            .collect();
        (row, points)
    };
    let iterations = vec![
        it(1, 8, 0.8712, IterStatus::BelowTarget),
        it(2, 16, 0.9102, IterStatus::BelowTarget),
        it(3, 32, 0.9344, IterStatus::BelowTarget),
    ];
    RunDetail {
        run,
        iterations,
        selected: 1,
    }
}

/// The screen as text, one quoted line per row (insta snapshots).
pub fn render(s: &UiState, w: u16, h: u16, draw: impl Fn(&UiState, &mut Frame)) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(s, f)).unwrap();
    t.backend().to_string()
}

/// A single view drawn over the whole test terminal.
pub fn render_view(
    s: &UiState,
    w: u16,
    h: u16,
    view: fn(&UiState, Rect, &mut Frame),
) -> (String, Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(s, f.area(), f)).unwrap();
    (t.backend().to_string(), t.backend().buffer().clone())
}

/// Where `symbol` first appears in the buffer.
pub fn find(buf: &Buffer, symbol: &str) -> Option<Position> {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if buf[(x, y)].symbol() == symbol {
                return Some(Position::new(x, y));
            }
        }
    }
    None
}

/// Where the text `needle` starts in the buffer (cells compared one symbol per character).
pub fn find_text(buf: &Buffer, needle: &str) -> Option<Position> {
    let chars: Vec<String> = needle.chars().map(|c| c.to_string()).collect();
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let fits = chars.iter().enumerate().all(|(i, c)| {
                let xx = x + i as u16;
                xx < area.right() && buf[(xx, y)].symbol() == c
            });
            if fits {
                return Some(Position::new(x, y));
            }
        }
    }
    None
}

const SEARCHED_CONFIG: &str = r#"
[train]
command = ["python3", "train.py"]
image = "numpy"

[metric]
name = "accuracy"
target = 0.95

[budget]
max_iterations = 12

[tweak]
apply = "auto"

[tweak.space]
hidden_units = { start = 8, max = 64, factor = 2 }
epochs = { start = 4, max = 16, step = 4 }
lr = { values = [0.5, 0.1, 0.05, 0.01] }
"#;

fn searched_params(hidden: i64, epochs: i64, lr: f64) -> Params {
    let mut p = Params::new();
    p.insert("epochs".into(), epochs.into());
    p.insert("hidden_units".into(), hidden.into());
    p.insert("lr".into(), serde_json::json!(lr));
    p
}

/// A run of seven iterations over three dimensions: completed ones below and above the target, one
/// pruned at epoch 3, one failed; the best is iteration 5; iteration 8 trains.
pub fn searched_state() -> UiState {
    let mut s = finished_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    r.config = Some(Config::parse(SEARCHED_CONFIG, Path::new("mlops.toml")).unwrap());
    r.status = RunStatus::Running;
    r.reason = None;
    let tried: [(i64, i64, f64, &[f64], IterStatus); 7] = [
        (
            8,
            4,
            0.5,
            &[0.52, 0.61, 0.66, 0.7012],
            IterStatus::BelowTarget,
        ),
        (
            16,
            8,
            0.1,
            &[0.80, 0.88, 0.91, 0.9312],
            IterStatus::BelowTarget,
        ),
        (64, 4, 0.01, &[0.41, 0.55, 0.62], IterStatus::Pruned),
        (
            32,
            12,
            0.05,
            &[0.81, 0.90, 0.93, 0.9544],
            IterStatus::Succeeded,
        ),
        (
            32,
            16,
            0.1,
            &[0.85, 0.93, 0.95, 0.9633],
            IterStatus::Succeeded,
        ),
        (8, 16, 0.5, &[], IterStatus::Failed),
        (
            64,
            8,
            0.05,
            &[0.83, 0.91, 0.93, 0.9488],
            IterStatus::BelowTarget,
        ),
    ];
    r.iterations = tried
        .iter()
        .enumerate()
        .map(|(i, (h, e, lr, curve, status))| {
            let mut it = finished_iteration(i as u32 + 1, *h, *e, curve, *status);
            it.params = searched_params(*h, *e, *lr);
            if *status == IterStatus::Pruned {
                it.reason = Some("pruned at epoch 3: 0.62 < median 0.91 at epoch 3".into());
            }
            if *status == IterStatus::Failed {
                it.reason = Some("exited with code 1".into());
            }
            it
        })
        .collect();
    let mut now = IterState::new(
        IterationNo(8),
        searched_params(16, 12, 0.05),
        Some("TPE: 6 observations, good region hidden_units≈32, epochs ≥ 12, lr≈0.05; expected 0.962".into()),
    );
    now.status = IterStatus::Running;
    now.points = vec![(Some(1), 0.79)];
    now.epochs = Some(12);
    r.iterations.push(now);
    r.best = Some(IterationNo(5));
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    s
}

/// Six dimensions: more panels than an 80×24 screen shows at once.
pub fn many_dimensions_state() -> UiState {
    let mut s = searched_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    let mut text = SEARCHED_CONFIG
        .split("[tweak.space]")
        .next()
        .unwrap()
        .to_string();
    text.push_str("[tweak.space]\n");
    for name in ["a_dim", "b_dim", "c_dim", "d_dim", "e_dim", "f_dim"] {
        text.push_str(&format!("{name} = {{ start = 1, max = 9, step = 2 }}\n"));
    }
    r.config = Some(Config::parse(&text, Path::new("mlops.toml")).unwrap());
    for (i, it) in r.iterations.iter_mut().enumerate() {
        for (k, name) in ["a_dim", "b_dim", "c_dim", "d_dim", "e_dim", "f_dim"]
            .iter()
            .enumerate()
        {
            it.params.insert(
                (*name).into(),
                serde_json::json!(1 + 2 * ((i + k) % 5) as i64),
            );
        }
    }
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    s
}

pub(super) fn engine(name: &str, endpoint: &str, slots: u32, up: bool) -> EngineState {
    EngineState {
        name: name.into(),
        endpoint: endpoint.into(),
        slots,
        up: Some(up),
        down_since_ms: (!up).then_some(NOW - 12_000),
        detail: String::new(),
        nodes: None,
    }
}

pub(super) fn place(engine: &str, at_ms: i64, reason: &str) -> Placement {
    Placement {
        engine: engine.into(),
        at_ms,
        reason: reason.into(),
    }
}

/// Iteration `no` running with `curve` so far, on the engine of its last placement.
pub(super) fn running_trial(
    no: u32,
    hidden: i64,
    curve: &[f64],
    started: i64,
    at: Vec<Placement>,
) -> IterState {
    let mut it = IterState::new(IterationNo(no), params(hidden, 8), None);
    it.status = IterStatus::Running;
    it.container = Some(ContainerId(format!("c0ffee{no:06}bbbb")));
    it.points = curve
        .iter()
        .enumerate()
        .map(|(i, v)| (Some(i as u32 + 1), *v))
        .collect();
    it.final_value = curve.last().copied();
    it.epochs = Some(8);
    it.started_ms = Some(started);
    it.engine = at.last().map(|p| p.engine.clone());
    it.placements = at;
    it
}

/// Trials side by side on three engines: iterations 1 and 2 are over; #3 trains on `local`, #4 on
/// `e1` after `e2` stopped answering (it moved), #5 on `e1` too; `e2` is down since 12 s. Each
/// running trial has its own log lines.
pub fn parallel_state() -> UiState {
    let mut s = training_state();
    let mut p = s.pipeline.clone();
    let r = p.run.as_mut().unwrap();
    let mut cfg = config();
    cfg.budget.parallel = 3;
    cfg.budget.max_iterations = 12;
    r.config = Some(cfg);
    let it2 = r.iteration_mut(IterationNo(2)).unwrap();
    it2.status = IterStatus::BelowTarget;
    it2.points.push((Some(4), 0.9102));
    it2.final_value = Some(0.9102);
    it2.finished_ms = Some(NOW - 90_000);
    p.engines = vec![
        engine("local", "unix:///var/run/docker.sock", 1, true),
        engine("e1", "tcp://10.77.1.2:2376", 2, true),
        engine("e2", "tcp://10.77.2.2:2376", 1, false),
    ];
    let r = p.run.as_mut().unwrap();
    r.iterations.push(running_trial(
        3,
        32,
        &[0.74, 0.8840],
        NOW - 21_000,
        vec![place("local", NOW - 21_000, "first placement")],
    ));
    r.iterations.push(running_trial(
        4,
        64,
        &[0.71, 0.83, 0.88, 0.9120],
        NOW - 72_000,
        vec![
            place("e2", NOW - 72_000, "first placement"),
            place(
                "e1",
                NOW - 10_000,
                "moved: engine e2 unreachable for 20s; resumes from epoch 3",
            ),
        ],
    ));
    r.iterations.push(running_trial(
        5,
        16,
        &[0.7010],
        NOW - 8_000,
        vec![place("e1", NOW - 8_000, "first placement")],
    ));
    set_stage(
        &mut p,
        Stage::Train,
        StageStatus::Running,
        NOW - 72_000,
        None,
        "iterations 3, 4, 5",
    );
    let _ = update(&mut s, UiMsg::Pipeline(Box::new(p)));
    for (no, text) in [
        (3, "epoch 2/8 accuracy=0.8840 loss=0.4100"),
        (4, "epoch 4/8 accuracy=0.9120 loss=0.2500"),
        (5, "epoch 1/8 accuracy=0.7010 loss=1.1000"),
    ] {
        let _ = update(
            &mut s,
            UiMsg::Logs {
                run: RunId(3),
                no: IterationNo(no),
                lines: vec![LogLine {
                    stderr: false,
                    text: text.into(),
                }],
                at_ms: NOW - 1_000,
            },
        );
    }
    s
}
