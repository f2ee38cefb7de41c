//! How long the engine takes to handle a message while a run records metric points: the time from a
//! message being sent to the end of the batch that handled it (reducer, effects, history writes).
//! `cargo bench --bench engine_latency`. No Docker: a fake backend's container runs until stopped,
//! and the bench plays its worker, sending a stream of `Metric` messages with a few `Logs` and
//! `Notice` ones mixed in. The history lives on the real disk (the target directory), so each
//! committed write pays a real fsync. Prints figures; asserts nothing about speed.

#[path = "../tests/fake_backend/mod.rs"]
mod fake_backend;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_backend::{FakeBackend, PanicIn};
use mlops_tui::adapters::git::Project;
use mlops_tui::adapters::store::Store;
use mlops_tui::core::ids::{IterationNo, RunId};
use mlops_tui::core::metrics::Observation;
use mlops_tui::core::model::LogLine;
use mlops_tui::engine::{Engine, EngineOptions, Level, Msg, Observer, Operator, PipelineState};
use tokio::sync::watch;

/// Messages in the stream, and the pause between two of them (a busy training script's pace).
const MESSAGES: usize = 3000;
const PACE: Duration = Duration::from_millis(1);

/// Stamps the bench's messages when the batch that handled them ends.
struct Stopwatch {
    sent: Arc<Mutex<Vec<Instant>>>,
    waiting: Vec<usize>,
    seen: usize,
    latencies: Vec<Duration>,
    training: watch::Sender<Option<(RunId, IterationNo)>>,
}

impl Stopwatch {
    fn is_ours(msg: &Msg) -> bool {
        match msg {
            Msg::Metric { .. } | Msg::Logs { .. } => true,
            Msg::Notice { tag, .. } => tag == "bench",
            _ => false,
        }
    }
}

impl Observer for Stopwatch {
    fn on_msg(&mut self, msg: &Msg, _state: &PipelineState) {
        if let Msg::ContainerStarted { run, no, .. } = msg {
            let _ = self.training.send(Some((*run, *no)));
        }
        if Self::is_ours(msg) {
            self.waiting.push(self.seen);
            self.seen += 1;
        }
    }

    fn on_change(&mut self, _state: &PipelineState) {
        let now = Instant::now();
        let sent = match self.sent.lock() {
            Ok(s) => s,
            Err(_) => return,
        };
        for i in self.waiting.drain(..) {
            if let Some(t) = sent.get(i) {
                self.latencies.push(now - *t);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Runtime::new()?.block_on(bench())
}

fn message(i: usize, run: RunId, no: IterationNo) -> Msg {
    if i % 50 == 49 {
        Msg::Notice {
            tag: "bench".into(),
            text: format!("notice {i}"),
            level: Level::Info,
        }
    } else if i % 10 == 9 {
        Msg::Logs {
            run,
            no,
            lines: vec![LogLine {
                stderr: false,
                text: format!("line {i}"),
            }],
        }
    } else {
        Msg::Metric {
            run,
            no,
            obs: Observation {
                epoch: Some(i as u32),
                epochs: None,
                value: (i % 97) as f64 / 100.0,
            },
        }
    }
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let repo = tempfile::tempdir_in(tmp)?;
    let data = tempfile::tempdir_in(tmp)?;
    fake_backend::project(repo.path(), 1, 5);
    let db = data.path().join("h.sqlite3");
    let opts = EngineOptions {
        project: Project::locate(repo.path())?,
        runs_dir: data.path().join("runs"),
        interactive: false,
        once: true,
        branch: None,
        poll_interval: Duration::from_secs(1),
        queue_all: false,
        cold: false,
        remote: None,
        webhook: None,
        data_policy: mlops_tui::support::data_policy::DataPolicy::new(
            vec![std::env::temp_dir().display().to_string()],
            "test-config.toml".into(),
            &[],
        ),
    };
    let engine = Engine::new(
        Arc::new(FakeBackend::new(PanicIn::Nothing)),
        Store::open(&db)?,
        opts,
    );
    let tx = engine.sender();
    let sent = Arc::new(Mutex::new(Vec::with_capacity(MESSAGES)));
    let (training, mut started) = watch::channel(None);
    let mut watch = Stopwatch {
        sent: sent.clone(),
        waiting: Vec::new(),
        seen: 0,
        latencies: Vec::with_capacity(MESSAGES),
        training,
    };
    let engine_task = tokio::spawn(async move {
        let outcome = engine.run(&mut watch).await;
        (outcome, watch)
    });
    let (run, no) = loop {
        if let Some(ids) = *started.borrow_and_update() {
            break ids;
        }
        started.changed().await?;
    };
    let begun = Instant::now();
    let mut tick = tokio::time::interval(PACE);
    for i in 0..MESSAGES {
        tick.tick().await;
        sent.lock().map_err(|_| "poisoned")?.push(Instant::now());
        tx.send(message(i, run, no))?;
    }
    let streamed = begun.elapsed();
    tx.send(Msg::Operator(Operator::StopTraining))?;
    let (outcome, watch) = engine_task.await?;
    let ended = begun.elapsed();
    let points = Store::open(&db)?.metric_points(run, no)?.len();
    report(watch.latencies, streamed, ended, points);
    println!("outcome: {:?} ({})", outcome.status, outcome.reason);
    Ok(())
}

fn report(mut l: Vec<Duration>, streamed: Duration, ended: Duration, points: usize) {
    l.sort();
    let at = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "engine_latency: {} messages in {:.2?} (engine done after {:.2?}), {points} metric points in the history",
        l.len(),
        streamed,
        ended
    );
    println!(
        "  send -> handled: p50 {:.3?}  p99 {:.3?}  max {:.3?}",
        at(0.50),
        at(0.99),
        l.last().copied().unwrap_or_default()
    );
}
