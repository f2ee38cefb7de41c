//! `run --headless`: the engine's events and the training output as plain lines on stdout, for servers
//! and CI logs. Lines look like `[train:2] epoch 3/5 accuracy=0.81`.

use std::io::Write;

use crate::engine::{EventLine, Level, Msg, Observer, PipelineState};

pub struct Printer<W: Write + Send> {
    out: W,
    /// Print the containers' own output, not only the engine's events.
    pub show_logs: bool,
}

impl<W: Write + Send> Printer<W> {
    pub fn new(out: W, show_logs: bool) -> Self {
        Printer { out, show_logs }
    }
}

impl<W: Write + Send> Observer for Printer<W> {
    fn on_msg(&mut self, msg: &Msg, _state: &PipelineState) {
        if let Msg::Logs { no, lines, .. } = msg {
            if self.show_logs {
                for l in lines {
                    let _ = writeln!(self.out, "[train:{no}] {}", l.text);
                }
            }
        }
    }

    fn on_event(&mut self, line: &EventLine) {
        let mark = match line.level {
            Level::Error => "error: ",
            _ => "",
        };
        let mut lines = line.text.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(self.out, "[{}] {mark}{first}", line.tag);
        for rest in lines {
            let _ = writeln!(self.out, "    {rest}");
        }
    }

    fn on_change(&mut self, _state: &PipelineState) {
        let _ = self.out.flush();
    }
}
