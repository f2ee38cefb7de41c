//! `run --headless`: the engine's events and the training output as plain lines on stdout, for servers
//! and CI logs. Lines look like `[train:2] epoch 3/5 accuracy=0.81`.
//!
//! When more than one trial can run at once (`budget.parallel > 1` in the run's configuration, or
//! more than one engine), the output of trials running side by side interleaves: each line of
//! container output and each event about one iteration then names its trial and engine,
//! `[#3 e1] epoch 2 accuracy=0.91`, `[#3 e1] [evaluate:3] accuracy 0.91 < target 0.95`. On a
//! swarm they name the node Swarm placed the trial on as well (`[#3 s1/10.78.0.12]`), and the
//! placement is said (`[node:3] iteration 3 placed on node 10.78.0.12 by Swarm`). With one
//! iteration at a time on a plain engine the lines are as they always were.
//!
//! Every line, whatever stdout is, goes through [`text::escaped`]: what the training script printed
//! (and what a pushed commit says: its summary, quoted errors) cannot retitle the operator's
//! terminal, write their clipboard, clear the screen or make the terminal type into the shell, even
//! when stdout is a pipe into `tee` or a log followed with `tail -f`. The sequences stay visible
//! (`\e]52;c;…\a`): a log is evidence of what the script tried.
//!
//! Stdout is a terminal: every line is flushed as it comes. A pipe or a file: lines are written in
//! blocks, flushed whenever the engine's state changes, instead of one `write(2)` per line.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};

use crate::core::text;
use crate::engine::state::IterState;
use crate::engine::{EventLine, Level, Msg, Observer, PipelineState};

/// Buffer for a non-terminal stdout: big enough that a flood of lines costs few system calls.
const PIPE_BUFFER: usize = 64 * 1024;

pub struct Printer<W: Write + Send> {
    out: W,
    /// Print the containers' own output, not only the engine's events.
    pub show_logs: bool,
    /// The trial prefix of each iteration (`[#3 e1]`) while trials can run side by side; empty
    /// otherwise. Refreshed from the state after every message but container output, so an event
    /// about an iteration placed by the same message already names its engine.
    trials: BTreeMap<u32, String>,
    /// Whether more than one trial can run at once (lines are prefixed).
    multi: bool,
}

impl<W: Write + Send> Printer<W> {
    /// Lines into `out`.
    pub fn new(out: W, show_logs: bool) -> Self {
        Printer {
            out,
            show_logs,
            trials: BTreeMap::new(),
            multi: false,
        }
    }

    /// Remembers whether trials run side by side and where each runs.
    fn refresh(&mut self, state: &PipelineState) {
        let config = state.run.as_ref().and_then(|r| r.config.as_ref());
        self.multi = state.engines.len() > 1
            || config.is_some_and(|c| c.budget.parallel > 1)
            || state.has_clusters();
        self.trials.clear();
        if !self.multi {
            return;
        }
        for it in state.run.iter().flat_map(|r| &r.iterations) {
            self.trials.insert(it.no.0, trial_prefix(state, it));
        }
    }

    /// The prefix of iteration `no`'s lines: `[#3 e1] ` when trials run side by side, else nothing.
    fn prefix(&self, no: u32) -> String {
        match self.trials.get(&no) {
            Some(p) => format!("{p} "),
            None if self.multi => format!("[#{no}] "),
            None => String::new(),
        }
    }
}

impl Printer<Box<dyn Write + Send>> {
    /// The printer for the process's stdout, chosen by whether it is a terminal.
    pub fn stdout(show_logs: bool) -> Self {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            Printer::new(Box::new(stdout), show_logs)
        } else {
            Printer::new(
                Box::new(BufWriter::with_capacity(PIPE_BUFFER, stdout)),
                show_logs,
            )
        }
    }
}

impl<W: Write + Send> Observer for Printer<W> {
    fn on_msg(&mut self, msg: &Msg, state: &PipelineState) {
        let Msg::Logs { no, lines, .. } = msg else {
            self.refresh(state);
            return;
        };
        if !self.show_logs {
            return;
        }
        let tag = if self.multi {
            let it = state.run.as_ref().and_then(|r| r.iteration(*no));
            it.map_or_else(|| format!("[#{no}]"), |it| trial_prefix(state, it))
        } else {
            format!("[train:{no}]")
        };
        for l in lines {
            let line = text::escaped(&l.text);
            let _ = writeln!(self.out, "{tag} {line}");
        }
    }

    fn on_event(&mut self, line: &EventLine) {
        let mark = match line.level {
            Level::Error => "error: ",
            _ => "",
        };
        // Event texts quote the script's last lines when it fails, and a pushed commit's summary:
        // they get the same treatment.
        let raw = line.text.clone();
        let mut lines = raw.lines();
        let first = text::escaped(lines.next().unwrap_or(""));
        let trial = iteration_of(&line.tag).map_or_else(String::new, |no| self.prefix(no));
        let _ = writeln!(self.out, "{trial}[{}] {mark}{first}", line.tag);
        for rest in lines {
            let rest = text::escaped(rest);
            let _ = writeln!(self.out, "    {rest}");
        }
    }

    fn on_change(&mut self, _state: &PipelineState) {
        let _ = self.out.flush();
    }
}

/// `[#3 e1]`: the iteration and the engine it runs on (`local` when the state lists no engine);
/// on a cluster, the node too: `[#3 s1/10.78.0.12]`. A trial that holds GPUs names them:
/// `[#3 e1 gpu 1]`.
fn trial_prefix(state: &PipelineState, it: &IterState) -> String {
    let gpus = if it.gpus.is_empty() {
        String::new()
    } else {
        format!(" {}", crate::core::gpu::label(&it.gpus))
    };
    let node = it
        .node
        .as_ref()
        .map_or_else(String::new, |n| format!("/{}", n.name));
    match it.engine.as_deref() {
        Some(e) => format!("[#{} {e}{node}{gpus}]", it.no),
        None if state.engines.is_empty() => format!("[#{} local{gpus}]", it.no),
        None => format!("[#{}{gpus}]", it.no),
    }
}

/// The iteration an event is about, from its tag `{topic}:{no}` (`train:3`, `evaluate:3`); `None`
/// for run-wide events and for a tweak (`tweak:2→3`), which is about the next proposal.
fn iteration_of(tag: &str) -> Option<u32> {
    tag.split_once(':').and_then(|(_, no)| no.parse().ok())
}

impl<W: Write + Send> Drop for Printer<W> {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{IterationNo, RunId};
    use crate::core::model::LogLine;

    /// What hostile training output tries: a window title (OSC 0), a clipboard write (OSC 52), a
    /// screen clear (CSI 2J), the alternate screen (CSI ?1049h) and a colour.
    const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}[?1049hepoch 1 \u{1b}[31maccuracy=0.5\u{1b}[0m";

    fn logs(text: &str) -> Msg {
        Msg::Logs {
            run: RunId(1),
            no: IterationNo(1),
            lines: vec![LogLine {
                stderr: false,
                text: text.into(),
            }],
        }
    }

    fn printed(printer: &mut Printer<Vec<u8>>, text: &str) -> String {
        printer.on_msg(&logs(text), &PipelineState::new(".".into(), false));
        printer.on_event(&EventLine {
            at_ms: 0,
            tag: "train:1".into(),
            text: format!("failed; last lines:\n{text}"),
            level: Level::Error,
        });
        String::from_utf8(std::mem::take(&mut printer.out)).unwrap()
    }

    /// Whatever stdout is, no escape sequence or control character of the training output reaches
    /// it; what the script tried stays visible.
    #[test]
    fn no_escape_sequence_from_training_output_reaches_stdout() {
        let mut p = Printer::new(Vec::new(), true);
        let out = printed(&mut p, HOSTILE);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        let shown = "\\e]0;owned\\a\\e]52;c;ZXZpbA==\\a\\e[2J\\e[?1049hepoch 1 accuracy=0.5";
        assert!(out.contains(&format!("[train:1] {shown}\n")), "{out:?}");
        assert!(out.contains(&format!("    {shown}\n")), "{out:?}");
    }

    /// Drives the engine's reducer through an image build and prints what it announces.
    fn printed_build(lines: &[&str]) -> String {
        use crate::core::config::Config;
        use crate::core::model::CommitInfo;
        use crate::engine::{Effect, Trigger, update};
        let commit = CommitInfo {
            id: "a".repeat(40),
            summary: "tune".into(),
            author: "Ada".into(),
            branch: "main".into(),
            time: 0,
        };
        let toml = "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n";
        let config = Config::parse(toml, std::path::Path::new("mlops.toml")).unwrap();
        let mut state = PipelineState::new(".".into(), false);
        let run = RunId(1);
        let mut msgs = vec![
            Msg::RunRequested {
                commit: commit.clone(),
                trigger: Trigger::Start,
            },
            Msg::RunCreated { run, commit },
            Msg::Prepared {
                run,
                config: Box::new(config),
                workspace: ".".into(),
                image_reason: "mlp (numpy)".into(),
                image: crate::core::model::ImageSpec::Profile(
                    crate::adapters::images::profile("numpy").expect("numpy is a profile"),
                ),
                knobs: Box::default(),
                warnings: Vec::new(),
            },
        ];
        msgs.extend(lines.iter().map(|l| Msg::ImageProgress {
            run,
            line: l.to_string(),
        }));
        let mut p = Printer::new(Vec::new(), true);
        for msg in msgs {
            let image = matches!(msg, Msg::ImageProgress { .. });
            for effect in update(&mut state, msg, 0) {
                if let (true, Effect::Event { line, .. }) = (image, effect) {
                    p.on_event(&line);
                }
            }
        }
        String::from_utf8(std::mem::take(&mut p.out)).unwrap()
    }

    #[test]
    fn an_image_build_prints_one_line_per_step() {
        let mut lines = vec![
            "building image mlops-tui/numpy:1 from dockerfiles/numpy/Dockerfile",
            "Step 1/2 : FROM mlops-tui/base:bookworm",
            " ---> 3f1c2a9d0b7e",
            "Step 2/2 : RUN apt-get install -y python3-numpy",
            "0 upgraded, 200 newly installed, 0 to remove and 0 not upgraded.",
        ];
        lines.extend(std::iter::repeat_n("Unpacking libfoo (1.0) ...", 200));
        lines.extend(std::iter::repeat_n("Setting up libfoo (1.0) ...", 200));
        let out = printed_build(&lines);
        assert_eq!(
            out,
            "[image] building image mlops-tui/numpy:1 from dockerfiles/numpy/Dockerfile\n\
             [image] step 1/2: FROM mlops-tui/base:bookworm\n\
             [image] step 2/2: RUN apt-get install -y python3-numpy\n"
        );
    }

    /// A state with iterations 3 (on `e1`) and 4 (not placed yet) running; `parallel` from the
    /// run's configuration, `engines` listed or not.
    fn side_by_side(parallel: u32, engines: &[&str]) -> PipelineState {
        use crate::core::config::Config;
        use crate::core::model::{CommitInfo, IterStatus};
        use crate::engine::state::{EngineState, RunState};
        let commit = CommitInfo {
            id: "a".repeat(40),
            summary: "tune".into(),
            author: "Ada".into(),
            branch: "main".into(),
            time: 0,
        };
        let toml = format!(
            "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n[budget]\nparallel = {parallel}\n"
        );
        let mut run = RunState::new(RunId(1), commit);
        run.config = Some(Config::parse(&toml, std::path::Path::new("mlops.toml")).unwrap());
        for (no, engine) in [(3, Some("e1")), (4, None)] {
            let mut it = IterState::new(IterationNo(no), Default::default(), None);
            it.status = IterStatus::Running;
            it.engine = engine.map(str::to_string);
            run.iterations.push(it);
        }
        let mut state = PipelineState::new(".".into(), false);
        state.run = Some(run);
        state.engines = engines
            .iter()
            .map(|name| EngineState {
                name: (*name).into(),
                endpoint: String::new(),
                slots: 1,
                up: Some(true),
                down_since_ms: None,
                detail: String::new(),
                nodes: None,
            })
            .collect();
        state
    }

    fn side_by_side_output(state: &PipelineState) -> String {
        let mut p = Printer::new(Vec::new(), true);
        let msg = |no: u32, text: &str| Msg::Logs {
            run: RunId(1),
            no: IterationNo(no),
            lines: vec![LogLine {
                stderr: false,
                text: text.into(),
            }],
        };
        let docker = Msg::Health(crate::engine::msg::Health::local(true, ""));
        p.on_msg(&docker, state);
        p.on_msg(&msg(3, "epoch 2 accuracy=0.91"), state);
        p.on_msg(&msg(4, "epoch 1 accuracy=0.70"), state);
        for tag in ["evaluate:3", "train:4", "tweak:3→5", "pull"] {
            p.on_event(&EventLine {
                at_ms: 0,
                tag: tag.into(),
                text: "said".into(),
                level: Level::Info,
            });
        }
        String::from_utf8(std::mem::take(&mut p.out)).unwrap()
    }

    /// Trials side by side: container output and iteration events name the trial and its engine;
    /// run-wide events and tweaks do not. One trial at a time: the lines as they always were.
    #[test]
    fn lines_name_their_trial_when_trials_run_side_by_side() {
        assert_eq!(
            side_by_side_output(&side_by_side(2, &["local", "e1"])),
            "[#3 e1] epoch 2 accuracy=0.91\n\
             [#4] epoch 1 accuracy=0.70\n\
             [#3 e1] [evaluate:3] said\n\
             [#4] [train:4] said\n\
             [tweak:3→5] said\n\
             [pull] said\n"
        );
        // `parallel = 2` on the one local engine the state does not list yet.
        let local = side_by_side_output(&side_by_side(2, &[]));
        assert!(
            local.contains("[#4 local] epoch 1 accuracy=0.70\n"),
            "{local}"
        );
        assert_eq!(
            side_by_side_output(&side_by_side(1, &[])),
            "[train:3] epoch 2 accuracy=0.91\n\
             [train:4] epoch 1 accuracy=0.70\n\
             [evaluate:3] said\n\
             [train:4] said\n\
             [tweak:3→5] said\n\
             [pull] said\n"
        );
    }

    /// On a swarm, even one trial at a time: its lines name the node Swarm placed it on.
    #[test]
    fn lines_name_the_node_of_a_swarm() {
        use crate::core::model::NodeView;
        use crate::engine::state::NodePlace;
        let mut state = side_by_side(1, &["e1"]);
        let node = NodeView::fixture("w2", "host", "10.78.0.12");
        state.engines[0].nodes = Some(vec![node.clone()]);
        let it = state.run.as_mut().unwrap().iteration_mut(IterationNo(3));
        it.unwrap().node = Some(NodePlace::of(&node));
        let out = side_by_side_output(&state);
        assert!(
            out.starts_with("[#3 e1/host] epoch 2 accuracy=0.91\n[#4] epoch 1"),
            "{out}"
        );
        assert!(out.contains("[#3 e1/host] [evaluate:3] said\n"), "{out}");
    }
}
