//! The dashboard's event loop: gathers terminal events and workers' messages, feeds them to the
//! reducer, carries out its effects, and draws.
//!
//! Drawing happens only when something changed, at most every [`MIN_FRAME`] (so a flood of log
//! batches costs at most that frame rate), plus a [`SPIN`] tick while a stage runs so the spinner
//! and the elapsed times move. An idle dashboard sleeps in `select!` and draws nothing.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::adapters::backend::{BackendError, ContainerBackend};
use crate::core::clock;
use crate::engine::{Engine, Msg, PipelineState, Stage, StageStatus};

use super::msg::{Effect, QuitSignal, UiMsg};
use super::options::{Options, Prepared, TuiError};
use super::state::{EngineStatus, UiState};
use super::terminal::TerminalGuard;
use super::theme::Theme;
use super::update::update;
use super::views;
use super::workers::{self, HistoryRequest, TuiObserver};

/// Shortest time between two frames.
pub const MIN_FRAME: Duration = Duration::from_millis(33);
/// Spinner and elapsed-time tick while a stage runs.
pub const SPIN: Duration = Duration::from_millis(100);
/// Waiting messages taken in one go after the first; the rest wait for the next turn of the loop.
const DRAIN_MAX: usize = 64;

/// Whether anything on screen moves by itself (a running stage that is not just waiting for a key).
pub fn animating(s: &UiState) -> bool {
    Stage::ALL.iter().any(|st| {
        s.pipeline.stage(*st).status == StageStatus::Running
            && !(*st == Stage::Tweak
                && s.pipeline.run.as_ref().is_some_and(|r| r.pending.is_some()))
    })
}

pub async fn run<B, C, E>(
    opts: Options,
    prepared: Prepared,
    connect: C,
    build: E,
) -> Result<i32, TuiError>
where
    B: ContainerBackend,
    C: Fn() -> Result<B, BackendError> + Send + 'static,
    E: FnOnce(Arc<B>) -> Engine<B>,
{
    let (ui_tx, ui_rx) = mpsc::unbounded_channel::<UiMsg>();
    let initial = PipelineState::new(opts.project.clone(), true);
    let (snap_tx, snap_rx) = watch::channel(initial.clone());
    let no_color = prepared.no_color;
    let mut state = initial_state(&opts, prepared, initial);

    let (hist_tx, hist_rx) = mpsc::unbounded_channel::<HistoryRequest>();
    workers::supervise(
        "history reader",
        ui_tx.clone(),
        workers::history_worker(opts.paths.db(), hist_rx, ui_tx.clone()),
    );
    let (ready_tx, ready_rx) = oneshot::channel::<Arc<B>>();
    workers::supervise(
        "Docker monitor",
        ui_tx.clone(),
        workers::docker_monitor(connect, ui_tx.clone(), ready_tx),
    );

    // Before the terminal changes: from here on SIGTERM and SIGHUP no longer kill the process
    // outright, they reach the loop, which restores the terminal on its way out.
    let signals = QuitSignals::install().map_err(TuiError::Terminal)?;
    let guard = TerminalGuard::enter(std::thread::current().id(), ui_tx.clone())
        .map_err(TuiError::Terminal)?;
    let size = guard.terminal.size().map_err(TuiError::Terminal)?;
    let ctx = Ctx {
        ui: ui_tx.clone(),
        history: hist_tx,
        engine: None,
        config_dir: opts.paths.config.clone(),
        no_color,
    };
    ctx.feed(&mut state, UiMsg::Resize(size.width, size.height));
    let _ = ctx.history.send(HistoryRequest::Runs);

    let mut dashboard = Dashboard {
        guard,
        state,
        ui_tx,
        ui_rx,
        snap_tx,
        snap_rx,
        ready_rx,
        build: Some(build),
        engine_task: None,
        events: EventStream::new(),
        signals,
        dirty: true,
        last_draw: Instant::now() - MIN_FRAME,
        ctx,
    };
    dashboard.run().await?;
    let code = dashboard.state.exit_code;
    drop(dashboard);
    Ok(code)
}

/// SIGTERM and SIGHUP, caught for as long as the dashboard runs.
struct QuitSignals {
    terminate: Signal,
    hangup: Signal,
}

impl QuitSignals {
    fn install() -> std::io::Result<QuitSignals> {
        Ok(QuitSignals {
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next of the two to arrive.
    async fn recv(&mut self) -> QuitSignal {
        tokio::select! {
            Some(()) = self.terminate.recv() => QuitSignal::Terminate,
            Some(()) = self.hangup.recv() => QuitSignal::Hangup,
        }
    }
}

/// The reducer's state before the first message: settings and command-line options applied.
fn initial_state(opts: &Options, prepared: Prepared, initial: PipelineState) -> UiState {
    let mut state = UiState::new(
        initial,
        prepared.theme,
        prepared.keymap,
        prepared.settings.scrollback,
    );
    state.ascii = opts.ascii || prepared.settings.ascii;
    state.branch = opts.branch.clone();
    state.configured_apply = opts.apply;
    state.save_dir = opts.paths.state.join("saved-logs");
    state.now_ms = clock::now_ms();
    state
}

/// Everything the event loop owns. The terminal guard comes first so that it is dropped (and the
/// terminal restored) first.
struct Dashboard<B: ContainerBackend, E> {
    guard: TerminalGuard,
    state: UiState,
    ui_tx: mpsc::UnboundedSender<UiMsg>,
    ui_rx: mpsc::UnboundedReceiver<UiMsg>,
    snap_tx: watch::Sender<PipelineState>,
    snap_rx: watch::Receiver<PipelineState>,
    ready_rx: oneshot::Receiver<Arc<B>>,
    /// Builds the engine once Docker answers; `None` once used.
    build: Option<E>,
    engine_task: Option<tokio::task::JoinHandle<crate::engine::Outcome>>,
    events: EventStream,
    signals: QuitSignals,
    /// Something changed since the last frame.
    dirty: bool,
    last_draw: Instant,
    ctx: Ctx,
}

impl<B, E> Dashboard<B, E>
where
    B: ContainerBackend,
    E: FnOnce(Arc<B>) -> Engine<B>,
{
    /// Draws, waits, updates, until the operator quits or the terminal's event stream ends.
    async fn run(&mut self) -> Result<(), TuiError> {
        loop {
            self.draw_if_due()?;
            if self.state.quit {
                return Ok(());
            }
            let Some(woke) = self.wait().await? else {
                return Ok(());
            };
            if let Some(m) = self.on_wake(woke) {
                self.handle(m);
            }
        }
    }

    fn draw_if_due(&mut self) -> Result<(), TuiError> {
        if self.dirty && self.last_draw.elapsed() >= MIN_FRAME {
            self.ctx.feed(&mut self.state, UiMsg::Tick(clock::now_ms()));
            let state = &self.state;
            self.guard
                .terminal
                .draw(|f| views::draw(state, f))
                .map_err(TuiError::Terminal)?;
            self.dirty = false;
            self.last_draw = Instant::now();
        }
        Ok(())
    }

    /// When the loop must wake by itself: the next frame slot when dirty, the spinner's tick while
    /// something runs, or when the notice expires; `None` sleeps until a message comes.
    fn wake_at(&self) -> Option<Instant> {
        let notice_gone = self.state.notice.as_ref().map(|_| {
            let left = self.state.notice_at + super::update::NOTICE_MS + 1 - clock::now_ms();
            Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
        });
        if self.dirty {
            Some(self.last_draw + MIN_FRAME)
        } else if animating(&self.state) {
            Some(self.last_draw + SPIN)
        } else {
            notice_gone
        }
    }

    /// The next reason to wake; `None` when the terminal's event stream has ended.
    async fn wait(&mut self) -> Result<Option<Wake<B>>, TuiError> {
        let wake = self.wake_at();
        let Self {
            events,
            signals,
            snap_rx,
            ui_rx,
            ready_rx,
            build,
            engine_task,
            ..
        } = self;
        let woke = tokio::select! {
            // A request to end first, then keys, then the (coalesced) state, then log batches:
            // under a flood the operator still gets the next frame and the graph still moves.
            biased;
            sig = signals.recv() => Wake::Msg(UiMsg::Signal(sig)),
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => Wake::Msg(UiMsg::Key(k)),
                Some(Ok(Event::Resize(w, h))) => Wake::Msg(UiMsg::Resize(w, h)),
                Some(Ok(_)) => Wake::Nothing,
                Some(Err(e)) => return Err(TuiError::Terminal(e)),
                None => return Ok(None),
            },
            Ok(()) = snap_rx.changed() => {
                let p = snap_rx.borrow_and_update().clone();
                Wake::Msg(UiMsg::Pipeline(Box::new(p)))
            }
            Some(m) = ui_rx.recv() => Wake::Msg(m),
            ready = ready_rx, if build.is_some() => Wake::Ready(ready.ok()),
            done = async {
                match engine_task.as_mut() {
                    Some(t) => t.await,
                    None => std::future::pending().await,
                }
            }, if engine_task.is_some() => Wake::EngineDone(done),
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Wake::Draw,
        };
        Ok(Some(woke))
    }

    /// The message a wake-up stands for, if any.
    fn on_wake(&mut self, woke: Wake<B>) -> Option<UiMsg> {
        match woke {
            Wake::Msg(m) => Some(m),
            Wake::Nothing => None,
            Wake::Draw => {
                self.dirty = true;
                None
            }
            Wake::Ready(backend) => match (backend, self.build.take()) {
                (Some(backend), Some(build)) => {
                    self.start_engine(build(backend));
                    Some(UiMsg::Engine(EngineStatus::Running))
                }
                _ => Some(UiMsg::Engine(EngineStatus::Stopped {
                    reason: "the Docker monitor ended before Docker answered".into(),
                })),
            },
            Wake::EngineDone(done) => {
                self.engine_task = None;
                self.ctx.engine = None;
                let reason = match done {
                    Ok(outcome) => format!("it returned: {}", outcome.reason),
                    Err(e) => format!("it {}", workers::join_error_text(&e)),
                };
                Some(UiMsg::Engine(EngineStatus::Stopped { reason }))
            }
        }
    }

    fn start_engine(&mut self, engine: Engine<B>) {
        self.ctx.engine = Some(engine.sender());
        let mut observer = TuiObserver {
            ui: self.ui_tx.clone(),
            state: self.snap_tx.clone(),
        };
        // The engine runs on a thread of its own: its future need not be `Send`, a panic in it is
        // contained (the join reports it), and a busy reducer never delays a frame.
        let rt = tokio::runtime::Handle::current();
        self.engine_task = Some(tokio::task::spawn_blocking(move || {
            rt.block_on(engine.run(&mut observer))
        }));
    }

    /// Feeds `m` (and, unless it is a key, what else waits) to the reducer and carries out the
    /// effects.
    fn handle(&mut self, m: UiMsg) {
        self.dirty = true;
        let key = matches!(m, UiMsg::Key(_));
        // The reducer's clock is only as fresh as the last tick: refresh it first.
        self.ctx.feed(&mut self.state, UiMsg::Tick(clock::now_ms()));
        self.ctx.feed(&mut self.state, m);
        if key {
            // Answer a key with a frame at once rather than at the next frame slot.
            self.last_draw = Instant::now() - MIN_FRAME;
        } else {
            // Take what else is waiting (bounded, so a key is never stuck behind a backlog) so
            // that one frame shows it all.
            for _ in 0..DRAIN_MAX {
                let Ok(more) = self.ui_rx.try_recv() else {
                    break;
                };
                self.ctx.feed(&mut self.state, more);
            }
        }
    }
}

/// Why the loop woke up.
enum Wake<B> {
    Msg(UiMsg),
    Nothing,
    Draw,
    /// The Docker monitor's first working connection (or `None` if it gave up).
    Ready(Option<Arc<B>>),
    EngineDone(Result<crate::engine::Outcome, tokio::task::JoinError>),
}

/// What effects need besides the state.
struct Ctx {
    ui: mpsc::UnboundedSender<UiMsg>,
    history: mpsc::UnboundedSender<HistoryRequest>,
    /// The running engine's inbox; `None` before it starts and after it ends.
    engine: Option<mpsc::UnboundedSender<Msg>>,
    config_dir: std::path::PathBuf,
    no_color: bool,
}

impl Ctx {
    /// The one way a message reaches the reducer: whatever it is (a tick included), the effects it
    /// asks for are carried out.
    fn feed(&self, state: &mut UiState, m: UiMsg) {
        for e in update(state, m) {
            self.execute(e, state);
        }
    }

    fn execute(&self, e: Effect, state: &mut UiState) {
        match e {
            Effect::Engine(m) => {
                let sent = self
                    .engine
                    .as_ref()
                    .is_some_and(|tx| tx.send(Msg::Operator(m)).is_ok());
                if !sent {
                    self.feed(
                        state,
                        UiMsg::TaskFailed {
                            task: "the engine".into(),
                            error: "it is not running, the message was dropped".into(),
                        },
                    );
                }
            }
            Effect::LoadHistory => {
                let _ = self.history.send(HistoryRequest::Runs);
            }
            Effect::LoadRun(id) => {
                let _ = self.history.send(HistoryRequest::Run(id));
            }
            Effect::LoadOutput(run, no) => {
                let _ = self.history.send(HistoryRequest::Output(run, no));
            }
            Effect::LoadTheme(name) => {
                let dir = self.config_dir.clone();
                let no_color = self.no_color;
                let ui = self.ui.clone();
                workers::supervise("theme loader", self.ui.clone(), async move {
                    let r = tokio::task::spawn_blocking(move || Theme::load(&name, &dir, no_color))
                        .await;
                    let msg = match r {
                        Ok(t) => UiMsg::Theme(t.map_err(|e| e.to_string())),
                        Err(e) => UiMsg::Theme(Err(workers::join_error_text(&e))),
                    };
                    let _ = ui.send(msg);
                });
            }
            Effect::SaveLogs { path, text } => {
                let ui = self.ui.clone();
                workers::supervise("log saver", self.ui.clone(), async move {
                    let p = path.clone();
                    let r = tokio::task::spawn_blocking(move || save_text(&p, &text)).await;
                    let msg = match r {
                        Ok(Ok(())) => UiMsg::Saved(Ok(path)),
                        Ok(Err(e)) => UiMsg::Saved(Err(format!("{}: {e}", path.display()))),
                        Err(e) => UiMsg::Saved(Err(workers::join_error_text(&e))),
                    };
                    let _ = ui.send(msg);
                });
            }
            Effect::Quit => {}
        }
    }
}

/// Writes `text` to `path`, creating its directory.
fn save_text(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::views::fixtures::{base_state, finished_state};
    use super::*;
    use crate::core::ids::{IterationNo, RunId};
    use crate::engine::Operator;

    fn ctx() -> (
        Ctx,
        mpsc::UnboundedReceiver<UiMsg>,
        mpsc::UnboundedReceiver<HistoryRequest>,
    ) {
        let (ui, ui_rx) = mpsc::unbounded_channel();
        let (history, hist_rx) = mpsc::unbounded_channel();
        let ctx = Ctx {
            ui,
            history,
            engine: None,
            config_dir: std::env::temp_dir(),
            no_color: false,
        };
        (ctx, ui_rx, hist_rx)
    }

    /// The tick before a frame is a message like any other: when the state it finds asks for the
    /// saved output of a finished iteration, the history reader is asked for it.
    #[test]
    fn a_ticks_effects_are_carried_out() {
        let (ctx, _ui_rx, mut hist_rx) = ctx();
        let mut s = base_state();
        s.pipeline = finished_state().pipeline;
        let now = s.now_ms;
        ctx.feed(&mut s, UiMsg::Tick(now + 1));
        assert_eq!(
            hist_rx.try_recv().unwrap(),
            HistoryRequest::Output(RunId(3), IterationNo(3))
        );
        // Asked once: the next tick finds the request on its way.
        ctx.feed(&mut s, UiMsg::Tick(now + 2));
        assert!(hist_rx.try_recv().is_err());
    }

    /// An operator message with no engine to take it is said, not lost in silence.
    #[test]
    fn an_operator_message_without_an_engine_is_reported() {
        let (mut ctx, _ui_rx, _hist_rx) = ctx();
        let mut s = base_state();
        ctx.execute(Effect::Engine(Operator::Pause(true)), &mut s);
        assert_eq!(
            s.errors,
            vec!["the engine failed: it is not running, the message was dropped".to_string()]
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        ctx.engine = Some(tx);
        ctx.execute(Effect::Engine(Operator::Pause(true)), &mut s);
        assert!(matches!(
            rx.try_recv().unwrap(),
            Msg::Operator(Operator::Pause(true))
        ));
        assert_eq!(s.errors.len(), 1);
    }
}
