//! Reading a Python traceback out of the last lines a container printed: the exception lines of the
//! chain (`During handling of the above exception…`), the frames of the last traceback, and where in
//! the output the error began.
//!
//! Python prints a traceback as a header (`Traceback (most recent call last):`), indented frames
//! (`  File "…", line N, in f`, each followed by its source line and, since 3.11, caret lines), then the
//! exception at column 0 (`Type: message`). A syntax error in the script itself has no header: only
//! the `File` line, the source, a caret line and `SyntaxError: …`.

/// The header that opens every traceback.
const HEADER: &str = "Traceback (most recent call last):";

/// One frame of a traceback: the file as Python printed it and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub file: String,
    pub line: u32,
}

impl Frame {
    /// Where the code lives in a library rather than in the user's project: an installed package,
    /// the standard library, or code without a file (`<frozen os>`, numpy's
    /// `<__array_function__ internals>`).
    pub fn in_library(&self) -> bool {
        let f = &self.file;
        f.contains("/site-packages/")
            || f.contains("/dist-packages/")
            || f.starts_with("/usr/lib/python")
            || f.starts_with("/usr/local/lib/python")
            || f.starts_with('<')
    }

    /// `train.py:12`: the path relative to the workspace when it is under it.
    pub fn location(&self) -> String {
        let file = self.file.strip_prefix("/workspace/").unwrap_or(&self.file);
        format!("{file}:{}", self.line)
    }
}

/// What the output says about the error that ended the script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traceback {
    /// The exception lines of the chain, oldest first; the last one ended the script.
    pub exceptions: Vec<String>,
    /// The frames of the last traceback, outermost first.
    pub frames: Vec<Frame>,
}

impl Traceback {
    /// The exception that ended the script.
    pub fn last(&self) -> Option<&str> {
        self.exceptions.last().map(String::as_str)
    }

    /// The frame where the exception was raised.
    pub fn innermost(&self) -> Option<&Frame> {
        self.frames.last()
    }

    /// The frame to show people: the innermost one in their own code, else the innermost.
    pub fn user_frame(&self) -> Option<&Frame> {
        self.frames
            .iter()
            .rev()
            .find(|f| !f.in_library())
            .or_else(|| self.innermost())
    }
}

/// How far from the end of the output (in non-blank lines) the exception that ended the script may
/// be. An uncaught exception is the last thing Python prints, followed at most by the rest of a
/// message spanning several lines (Keras and NumPy write long ones) and by a few stdout lines the
/// engine delivered late; a traceback further up was printed by a script that went on (an error it
/// logged and handled), and is not why it failed.
const ENDING_LINES: usize = 25;

/// Reads the error that ended the script from the output's last lines, or `None` when they end
/// with no exception.
pub fn read(lines: &[&str]) -> Option<Traceback> {
    let tb = match lines.iter().rposition(|l| l.trim_end() == HEADER) {
        Some(last) => chain(lines, last),
        None => headerless(lines)?,
    };
    let last = tb.last()?;
    let ending = lines
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(ENDING_LINES)
        .any(|l| l.trim_end() == last);
    ending.then_some(tb)
}

/// The chain that ends with the traceback whose header is at `last`.
fn chain(lines: &[&str], last: usize) -> Traceback {
    let (frames, exception) = block(lines, last + 1);
    let mut tb = Traceback {
        exceptions: Vec::new(),
        frames,
    };
    // Earlier tracebacks belong to the chain when a linking sentence sits between them.
    let mut header = last;
    while let Some(link) = lines[..header].iter().rposition(|l| !l.trim().is_empty())
        && is_link(lines[link])
    {
        let Some(prev) = lines[..link].iter().rposition(|l| l.trim_end() == HEADER) else {
            break;
        };
        if let (_, Some(e)) = block(lines, prev + 1) {
            tb.exceptions.push(e);
        }
        header = prev;
    }
    tb.exceptions.reverse();
    if let Some(e) = exception {
        tb.exceptions.push(e);
    }
    tb
}

/// The sentences Python prints between the tracebacks of a chain.
fn is_link(line: &str) -> bool {
    let l = line.trim();
    l == "During handling of the above exception, another exception occurred:"
        || l == "The above exception was the direct cause of the following exception:"
}

/// The frames and the exception line of the traceback whose frames begin at `from`, read up to the
/// next traceback of the chain.
///
/// The script's stdout and stderr reach the engine as two streams, so a line the script printed on
/// stdout just before dying can land among the frames or after the exception. The exception line is
/// therefore the last line at column 0 that reads like one, or failing that (an exception class
/// with an unusual name) the first line at column 0.
fn block(lines: &[&str], from: usize) -> (Vec<Frame>, Option<String>) {
    let mut frames = Vec::new();
    let mut first: Option<&str> = None;
    let mut exception: Option<&str> = None;
    for line in &lines[from.min(lines.len())..] {
        if line.trim().is_empty() {
            continue;
        }
        if line.trim_end() == HEADER || is_link(line) {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(f) = frame(line) {
                frames.push(f);
            }
            continue;
        }
        first.get_or_insert(line);
        if is_exception_line(line) {
            exception = Some(line);
        }
    }
    let line = exception.or(first).map(|l| l.trim_end().to_string());
    (frames, line)
}

/// `  File "/workspace/train.py", line 12, in <module>` (or without `, in …` for a syntax error).
fn frame(line: &str) -> Option<Frame> {
    let rest = line.trim_start().strip_prefix("File \"")?;
    let (file, rest) = rest.split_once("\", line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Frame {
        file: file.to_string(),
        line: digits.parse().ok()?,
    })
}

/// An error printed without a traceback header: a syntax error in the script itself (its `File`
/// line comes just before), or the interpreter's own complaint (`can't open file`).
fn headerless(lines: &[&str]) -> Option<Traceback> {
    let at = lines.iter().rposition(|l| is_exception_line(l))?;
    let start = lines[..at]
        .iter()
        .rposition(|l| frame(l).is_some())
        .filter(|f| at - f <= 4)
        .unwrap_or(at);
    let frames = lines[start..at].iter().filter_map(|l| frame(l)).collect();
    Some(Traceback {
        exceptions: vec![lines[at].trim_end().to_string()],
        frames,
    })
}

/// A line that reads like an exception Python printed at column 0 (`ValueError: …`,
/// `socket.gaierror: …`, `MemoryError`), or the interpreter refusing to start the script.
pub fn is_exception_line(line: &str) -> bool {
    if line.contains("can't open file '") && line.contains("[Errno") {
        return true;
    }
    if line.starts_with(char::is_whitespace) {
        return false;
    }
    let name = exception_type(line);
    let last = name.rsplit('.').next().unwrap_or(name);
    !last.is_empty()
        && last.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (["Error", "Exception", "Exit", "Interrupt"]
            .iter()
            .any(|s| last.ends_with(s))
            || ["gaierror", "herror", "timeout"].contains(&last))
}

/// The exception's type as printed (`urllib.error.URLError`), the part before `: `.
pub fn exception_type(line: &str) -> &str {
    let line = line.trim();
    match line.split_once(':') {
        Some((name, _)) => name.trim(),
        None => line,
    }
}
