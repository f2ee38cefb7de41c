//! What the iteration worker keeps of a container's output: every line in `output.log` as it streams,
//! and where it stands in the engine's log, so that a re-attachment resumes after the last line taken
//! (never repeating or reordering one) and says so when the engine's log no longer reaches back.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::adapters::backend::StampedLine;
use crate::core::model::LogLine;

/// The file in the iteration's directory that keeps every line of its output.
pub const OUTPUT_FILE: &str = "output.log";
/// Bytes of output kept in [`OUTPUT_FILE`]; beyond it, one note says the rest was not kept.
pub const OUTPUT_CAP: u64 = 1 << 30;

/// Every line of one iteration's output, in order, up to a cap.
///
/// Invariant: after the cap is reached, the file ends with exactly one note saying so, and nothing
/// else is written.
pub struct OutputLog {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    written: u64,
    cap: u64,
}

impl OutputLog {
    /// Creates (or replaces) `output.log` in `dir`. The directory is the container's `/mlops`: an
    /// entry the script put there is removed first and the file is created anew, so a symbolic link
    /// planted by the script is never followed. Without a file (it cannot be created), lines are
    /// only streamed; the cause is logged.
    pub fn create(dir: &Path, cap: u64) -> OutputLog {
        let path = dir.join(OUTPUT_FILE);
        let file = match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => File::options().write(true).create_new(true).open(&path),
        };
        let file = file
            .inspect_err(|e| tracing::warn!("cannot keep the output in {}: {e}", path.display()))
            .ok()
            .map(|f| BufWriter::with_capacity(1 << 16, f));
        OutputLog {
            file,
            path,
            written: 0,
            cap,
        }
    }

    /// Reopens `output.log` in `dir` after a restart, to go on where the predecessor's
    /// [`Mark`] says it stopped: cut back to `bytes` (what was written after the mark is read again)
    /// and appended to. Anything but a regular file there (the script's `/mlops` is writable by it)
    /// is replaced, as in [`create`](Self::create).
    pub fn resume(dir: &Path, cap: u64, bytes: u64) -> OutputLog {
        let path = dir.join(OUTPUT_FILE);
        let opened = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|_| File::options().write(true).open(&path).ok());
        let Some(file) = opened else {
            return OutputLog::create(dir, cap);
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let keep = bytes.min(len);
        let positioned = file.set_len(keep).and_then(|()| {
            use std::io::Seek;
            (&file).seek(std::io::SeekFrom::End(0)).map(|_| ())
        });
        if let Err(e) = positioned {
            tracing::warn!("cannot go on with {}: {e}", path.display());
            return OutputLog::create(dir, cap);
        }
        OutputLog {
            file: Some(BufWriter::with_capacity(1 << 16, file)),
            path,
            written: keep,
            cap,
        }
    }

    /// Bytes written so far (flushed or not).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends one line; past the cap, writes the note once and then nothing.
    pub fn write(&mut self, line: &LogLine) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let len = line.text.len() as u64 + 1;
        let result = if self.written + len > self.cap {
            let note = format!("… output beyond {} not kept …", human_bytes(self.cap));
            let r = writeln!(file, "{note}").and_then(|()| file.flush());
            self.file = None;
            r
        } else {
            self.written += len;
            writeln!(file, "{}", line.text)
        };
        if let Err(e) = result {
            tracing::warn!("writing {}: {e}", self.path.display());
            self.file = None;
        }
    }

    /// Makes what was written so far visible to readers of the file.
    pub fn flush(&mut self) {
        if let Some(Err(e)) = self.file.as_mut().map(Write::flush) {
            tracing::warn!("writing {}: {e}", self.path.display());
            self.file = None;
        }
    }
}

/// `1 GiB`, `512 MiB`, `300 bytes`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}

/// What the follower does with a line the engine's log stream gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Take,
    /// Already taken (a re-attachment replays from the start of a second), or older than a line
    /// already taken: taking it would duplicate or reorder.
    Skip,
    /// New, but the engine's log no longer holds the last line taken before the re-attachment:
    /// what came between may be lost.
    TakeAfterGap,
}

/// Where the follower stands in the container's log, per stream (stdout, stderr), by the engine's
/// stamps. Each stream's stamps never decrease; lines sharing a stamp are told apart by how many of
/// them were taken.
#[derive(Debug, Default)]
pub struct Cursor {
    /// The stamp of the last line taken from each stream.
    last: [Option<i128>; 2],
    /// How many lines with that stamp were taken.
    same: [u64; 2],
    /// Lines with the last stamp still to skip in the current replay.
    replay: [u64; 2],
    /// The stream's first line since the re-attachment is still to come.
    checking: [bool; 2],
}

/// A [`Cursor`] and the length of `output.log` at that point, kept across a restart of mlops-tui:
/// the next one resumes reading the container's log after the last line taken, never replaying
/// what was stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub last: [Option<i128>; 2],
    pub same: [u64; 2],
    pub bytes: u64,
}

impl Cursor {
    /// Where the cursor stands, with `bytes` of output written up to it.
    pub fn mark(&self, bytes: u64) -> Mark {
        Mark {
            last: self.last,
            same: self.same,
            bytes,
        }
    }

    /// A cursor standing where `mark` says.
    pub fn at(mark: &Mark) -> Cursor {
        Cursor {
            last: mark.last,
            same: mark.same,
            ..Cursor::default()
        }
    }

    /// Where a re-attachment must start reading: the older of the two streams' last stamps.
    pub fn since(&self) -> Option<i128> {
        self.last.iter().flatten().min().copied()
    }

    /// A new attachment starts: the engine replays from [`since`](Self::since).
    pub fn reattach(&mut self) {
        self.replay = self.same;
        self.checking = [true; 2];
    }

    /// Decides on one line of the stream and, when it is taken, moves past it.
    pub fn admit(&mut self, line: &StampedLine) -> Admit {
        let k = usize::from(line.line.stderr);
        let first = std::mem::take(&mut self.checking[k]);
        match self.last[k] {
            Some(last) if line.at < last => Admit::Skip,
            Some(last) if line.at == last => {
                if self.replay[k] > 0 {
                    self.replay[k] -= 1;
                    Admit::Skip
                } else {
                    self.same[k] += 1;
                    Admit::Take
                }
            }
            last => {
                self.last[k] = Some(line.at);
                self.same[k] = 1;
                self.replay[k] = 0;
                if first && last.is_some() {
                    Admit::TakeAfterGap
                } else {
                    Admit::Take
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: i128, stderr: bool, text: &str) -> StampedLine {
        StampedLine {
            at,
            line: LogLine {
                stderr,
                text: text.into(),
            },
        }
    }

    fn taken(c: &mut Cursor, lines: &[StampedLine]) -> Vec<(String, Admit)> {
        lines
            .iter()
            .map(|l| (l.line.text.clone(), c.admit(l)))
            .filter(|(_, a)| *a != Admit::Skip)
            .collect()
    }

    #[test]
    fn a_replay_takes_only_what_follows_the_last_line_taken() {
        let log = [
            line(10, false, "a"),
            line(20, false, "b"),
            line(20, false, "c"),
            line(20, true, "e1"),
            line(30, false, "d"),
        ];
        let mut c = Cursor::default();
        let first = taken(&mut c, &log[..3]);
        assert_eq!(first.len(), 3);
        assert_eq!(c.since(), Some(20));
        c.reattach();
        let again = taken(&mut c, &log[1..]);
        let texts: Vec<_> = again.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["e1", "d"]);
        assert!(again.iter().all(|(_, a)| *a == Admit::Take));
    }

    #[test]
    fn an_older_line_is_never_taken_after_a_newer_one() {
        let mut c = Cursor::default();
        let got = taken(
            &mut c,
            &[
                line(5, false, "x"),
                line(3, false, "y"),
                line(7, false, "z"),
            ],
        );
        let texts: Vec<_> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["x", "z"]);
    }

    #[test]
    fn a_replay_that_no_longer_reaches_the_last_line_is_a_gap() {
        let mut c = Cursor::default();
        taken(&mut c, &[line(10, false, "a")]);
        c.reattach();
        let got = taken(&mut c, &[line(50, false, "q"), line(60, false, "r")]);
        assert_eq!(
            got,
            [
                ("q".to_string(), Admit::TakeAfterGap),
                ("r".to_string(), Admit::Take)
            ]
        );
    }

    #[test]
    fn the_output_file_stops_at_its_cap_with_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutputLog::create(dir.path(), 10);
        for text in ["1234", "5678", "9abc", "def"] {
            out.write(&LogLine {
                stderr: false,
                text: text.into(),
            });
        }
        out.flush();
        let kept = std::fs::read_to_string(dir.path().join(OUTPUT_FILE)).unwrap();
        assert_eq!(kept, "1234\n5678\n… output beyond 10 bytes not kept …\n");
    }

    #[test]
    fn a_resumed_log_is_cut_back_to_its_mark_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let line = |text: &str| LogLine {
            stderr: false,
            text: text.into(),
        };
        let mut out = OutputLog::create(dir.path(), OUTPUT_CAP);
        out.write(&line("kept"));
        let mark = out.written();
        out.write(&line("after the mark"));
        out.flush();
        drop(out);
        let mut again = OutputLog::resume(dir.path(), OUTPUT_CAP, mark);
        again.write(&line("read again"));
        again.flush();
        let kept = std::fs::read_to_string(dir.path().join(OUTPUT_FILE)).unwrap();
        assert_eq!(kept, "kept\nread again\n");
        let mut c = Cursor::default();
        c.admit(&StampedLine {
            at: 7,
            line: line("x"),
        });
        let back = Cursor::at(&c.mark(5));
        assert_eq!((back.since(), back.mark(5)), (Some(7), c.mark(5)));
    }

    #[test]
    fn a_resumed_log_replaces_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(OUTPUT_FILE)).unwrap();
        let mut out = OutputLog::resume(dir.path(), OUTPUT_CAP, 3);
        out.write(&LogLine {
            stderr: false,
            text: "x".into(),
        });
        out.flush();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let kept = std::fs::read_to_string(dir.path().join(OUTPUT_FILE)).unwrap();
        assert_eq!(kept, "x\n");
    }

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(OUTPUT_FILE)).unwrap();
        let mut out = OutputLog::create(dir.path(), OUTPUT_CAP);
        out.write(&LogLine {
            stderr: false,
            text: "x".into(),
        });
        out.flush();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let kept = std::fs::read_to_string(dir.path().join(OUTPUT_FILE)).unwrap();
        assert_eq!(kept, "x\n");
    }
}
