//! `run --headless`: the engine's events and the training output as plain lines on stdout, for servers
//! and CI logs. Lines look like `[train:2] epoch 3/5 accuracy=0.81`.
//!
//! Two cases, decided once at start:
//! - stdout is a terminal: every line is flushed as it comes, and what the training script printed is
//!   shown as the terminal would show it, with its escape sequences removed ([`text::visible`]), so
//!   that a script cannot retitle the operator's terminal, write their clipboard, clear the screen or
//!   switch to the alternate screen;
//! - stdout is a pipe or a file: bytes are kept verbatim (a log is evidence) and written in blocks,
//!   flushed whenever the engine's state changes, instead of one `write(2)` per line.

use std::io::{BufWriter, IsTerminal, Write};

use crate::core::text;
use crate::engine::{EventLine, Level, Msg, Observer, PipelineState};

/// Buffer for a non-terminal stdout: big enough that a flood of lines costs few system calls.
const PIPE_BUFFER: usize = 64 * 1024;

pub struct Printer<W: Write + Send> {
    out: W,
    /// Print the containers' own output, not only the engine's events.
    pub show_logs: bool,
    /// Remove terminal escapes from what the training script printed (see the module's comment).
    sanitize: bool,
}

impl<W: Write + Send> Printer<W> {
    /// Verbatim output into `out`.
    pub fn new(out: W, show_logs: bool) -> Self {
        Printer {
            out,
            show_logs,
            sanitize: false,
        }
    }

    /// Output into `out` as a terminal should get it.
    pub fn for_terminal(out: W, show_logs: bool) -> Self {
        Printer {
            out,
            show_logs,
            sanitize: true,
        }
    }

    fn shown<'a>(&self, raw: &'a str) -> std::borrow::Cow<'a, str> {
        if self.sanitize {
            text::visible(raw, usize::MAX).into()
        } else {
            raw.into()
        }
    }
}

impl Printer<Box<dyn Write + Send>> {
    /// The printer for the process's stdout, chosen by whether it is a terminal.
    pub fn stdout(show_logs: bool) -> Self {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            Printer::for_terminal(Box::new(stdout), show_logs)
        } else {
            Printer::new(
                Box::new(BufWriter::with_capacity(PIPE_BUFFER, stdout)),
                show_logs,
            )
        }
    }
}

impl<W: Write + Send> Observer for Printer<W> {
    fn on_msg(&mut self, msg: &Msg, _state: &PipelineState) {
        if let Msg::Logs { no, lines, .. } = msg {
            if self.show_logs {
                for l in lines {
                    let line = self.shown(&l.text);
                    let _ = writeln!(self.out, "[train:{no}] {line}");
                }
            }
        }
    }

    fn on_event(&mut self, line: &EventLine) {
        let mark = match line.level {
            Level::Error => "error: ",
            _ => "",
        };
        // Event texts quote the script's last lines when it fails: they get the same treatment.
        let raw = line.text.clone();
        let mut lines = raw.lines();
        let first = self.shown(lines.next().unwrap_or("")).into_owned();
        let _ = writeln!(self.out, "[{}] {mark}{first}", line.tag);
        for rest in lines {
            let rest = self.shown(rest).into_owned();
            let _ = writeln!(self.out, "    {rest}");
        }
    }

    fn on_change(&mut self, _state: &PipelineState) {
        let _ = self.out.flush();
    }
}

impl<W: Write + Send> Drop for Printer<W> {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::backend::LogLine;
    use crate::core::ids::{IterationNo, RunId};

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

    #[test]
    fn a_terminal_gets_no_escape_sequence_from_training_output() {
        let mut p = Printer::for_terminal(Vec::new(), true);
        let out = printed(&mut p, HOSTILE);
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert!(!out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("[train:1] epoch 1 accuracy=0.5\n"), "{out:?}");
        assert!(out.contains("    epoch 1 accuracy=0.5\n"), "{out:?}");
    }

    /// Drives the engine's reducer through an image build and prints what it announces.
    fn printed_build(lines: &[&str]) -> String {
        use crate::adapters::git::CommitInfo;
        use crate::core::config::Config;
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
                image: crate::adapters::images::ImageSpec::Profile(
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

    #[test]
    fn a_pipe_gets_the_bytes_verbatim() {
        let mut p = Printer::new(Vec::new(), true);
        let out = printed(&mut p, HOSTILE);
        assert!(out.contains(&format!("[train:1] {HOSTILE}\n")), "{out:?}");
    }
}
