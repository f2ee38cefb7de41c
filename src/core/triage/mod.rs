//! Triage of a failed iteration: from how its container ended and the last lines it printed, tell a
//! failure that no tweak can fix (the run stops at once) from one that may depend on the parameters
//! (the loop goes on), and say which line went wrong and what to do about it.
//!
//! The rule is conservative: a failure is permanent only when the output names a cause that does not
//! depend on the parameters (a missing module or file, a syntax error, a read-only or forbidden path,
//! no network), or when the script failed after it had reported the metric (training was over). An
//! out-of-memory death and an error raised inside a model library (`ValueError` for a parameter
//! value) may go away with other parameters, and so may anything the triage does not recognise: the
//! loop then behaves as it always did.

mod setup;
mod traceback;

#[cfg(test)]
mod tests;

pub use setup::{SETUP_NOTE, SetupFault, SetupProblem, refused_setting, start_failure};
pub use traceback::{Frame, Traceback, is_exception_line};

/// How a failed container ended, as the triage needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub code: i64,
    pub oom_killed: bool,
    /// Whether the script reported the metric before it failed. An uncaught exception's traceback
    /// is printed as the script dies, after every line it printed before, so an error of the
    /// script's own code with a metric already reported was raised once training had reported:
    /// where the metric line sits among the last lines adds nothing (and stdout and stderr reach
    /// the engine as two streams, which can swap lines printed a moment apart).
    pub metric_reported: bool,
}

/// What kind of failure it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// An import failed: a module the image lacks (named when Python named it), or a version of it
    /// without the name imported.
    MissingModule { module: Option<String> },
    /// The interpreter could not open the script the command names.
    MissingScript { file: String },
    /// The script opened a file that is not there.
    MissingFile { path: Option<String> },
    /// The code does not parse.
    Syntax,
    /// The script wrote to a read-only file system: the image's, or a `[data]` mount (read-only by
    /// design). Said by Python (`[Errno 30]`, SQLite's `readonly database`) or by any other program
    /// (`sh: cannot create …: Read-only file system`).
    ReadOnly,
    /// The script touched a path its user may not.
    PermissionDenied,
    /// A write failed for size: a file past `[resources] disk` ("File too large") or a full file
    /// system (`/tmp`). The script writes that much whatever its parameters.
    DiskFull,
    /// The script tried to reach the network, which training containers do not have.
    NoNetwork,
    /// A notebook export calls `get_ipython()`, which exists only inside Jupyter.
    NotebookOnly,
    /// The script's own code failed after it reported the metric: training had reported its
    /// result, and what failed (saving, plotting) does not depend on the parameters.
    AfterMetric,
    /// Killed for memory, or Python ran out of it: smaller parameters may fit.
    OutOfMemory,
    /// Raised inside a model library, most often for a parameter value it refuses.
    Library,
    /// The trial could not start: the engine's set-up is wrong (a swarm's registry, a service spec
    /// Swarm refuses, a `host` that is not a manager). See [`setup`].
    EngineSetup,
    /// Nothing recognised.
    Unknown,
}

/// The triage of one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub class: Class,
    /// The line that says what went wrong, followed by where when the traceback tells
    /// (`ModuleNotFoundError: No module named 'seaborn' (at train.py:3)`); `None` when the output
    /// shows no error.
    pub error: Option<String>,
}

/// Libraries whose errors usually come from a parameter value (the frame where the exception was
/// raised lies in one of them).
const MODEL_LIBRARIES: [&str; 10] = [
    "sklearn",
    "keras",
    "tensorflow",
    "torch",
    "numpy",
    "scipy",
    "xgboost",
    "lightgbm",
    "catboost",
    "jax",
];

/// Texts that mean the network could not be reached, wherever they appear in the chain.
const NO_NETWORK_TEXTS: [&str; 9] = [
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Name or service not known",
    "URL fetch failure",
    "No address associated with hostname",
    "nodename nor servname provided",
    "Failed to establish a new connection",
    "Max retries exceeded with url",
    "[Errno 101]",
];

/// Exception types (the last part of the dotted name) that mean the network could not be reached.
const NO_NETWORK_TYPES: [&str; 8] = [
    "URLError",
    "gaierror",
    "herror",
    "ConnectionError",
    "NewConnectionError",
    "MaxRetryError",
    "NameResolutionError",
    "ConnectTimeout",
];

impl Diagnosis {
    /// Whether no tweak can fix it: the run stops.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.class,
            Class::MissingModule { .. }
                | Class::MissingScript { .. }
                | Class::MissingFile { .. }
                | Class::Syntax
                | Class::ReadOnly
                | Class::PermissionDenied
                | Class::DiskFull
                | Class::NoNetwork
                | Class::NotebookOnly
                | Class::AfterMetric
                | Class::EngineSetup
        )
    }

    /// What to do about a permanent failure; `None` for the others.
    pub fn hint(&self) -> Option<String> {
        let at = self
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        Some(match &self.class {
            Class::MissingModule { module: Some(m) } => format!(
                "the image has no Python module `{m}`: list it in requirements.txt next to \
                 mlops.toml, or name an image that has it in [train] image"
            ),
            Class::MissingModule { module: None } => "the image's packages are not the ones the \
                 code imports: pin them in requirements.txt next to mlops.toml, or name another \
                 image in [train] image"
                .to_string(),
            Class::MissingScript { file } => format!(
                "[train] command names `{file}`, which is not in the commit: check [train] \
                 command in mlops.toml"
            ),
            Class::MissingFile { path } => {
                let what = path
                    .as_deref()
                    .map_or("a file".to_string(), |p| format!("`{p}`"));
                format!(
                    "the script reads {what}, which the container does not have: commit it to the \
                     repository (paths are relative to /workspace) or mount its directory with \
                     [data] (see README)"
                )
            }
            Class::Syntax => format!("fix the code{at}: it does not parse"),
            Class::ReadOnly => "the script writes where it may not: the image's file system and \
                 [data] mounts are read-only (the host's data is shared with training, never \
                 changed by it); write under /mlops (its path is in MLOPS_DIR; a model in \
                 /mlops/model, caches anywhere below it) or in the working directory"
                .to_string(),
            Class::PermissionDenied => "permission denied: the container runs as an unprivileged \
                 user; write under /mlops (MLOPS_DIR) and read only what the repository holds"
                .to_string(),
            Class::DiskFull => "a write failed for size: no file may pass [resources] disk in \
                 mlops.toml, and /tmp holds 256 MiB; write less (fewer or smaller checkpoints), or \
                 raise [resources] disk"
                .to_string(),
            Class::NoNetwork => "training containers have no network: put the data in the \
                 repository or mount it with [data] (see README)"
                .to_string(),
            Class::NotebookOnly => "the script was exported from a notebook and calls \
                 get_ipython() (a %magic line), which exists only inside Jupyter: remove those \
                 lines"
                .to_string(),
            Class::AfterMetric => format!(
                "the script reported its metric, then failed{at} (saving, plotting…): a tweak will \
                 not fix that; fix the code that runs after training"
            ),
            Class::EngineSetup => {
                "the engine's set-up is wrong, not the trial: fix it as the error \
                 says (its [[engines]] entry in mlops.toml, or the cluster behind it), then start \
                 the run again"
                    .to_string()
            }
            Class::OutOfMemory | Class::Library | Class::Unknown => return None,
        })
    }

    /// `train.py:3` when the error line says where.
    fn location(&self) -> Option<&str> {
        let e = self.error.as_deref()?;
        e.strip_suffix(')')?.rsplit_once(" (at ").map(|(_, l)| l)
    }
}

/// Classifies the failure of a container that ended with `ending` after printing `lines` (its last
/// lines, oldest first). Never permanent for an exit code of 0 or a container killed for memory.
pub fn triage(ending: Ending, lines: &[&str]) -> Diagnosis {
    let tb = traceback::read(lines);
    let mut error = tb.as_ref().and_then(error_line);
    let mut class = if ending.oom_killed {
        Class::OutOfMemory
    } else if ending.code == 0 {
        Class::Unknown
    } else {
        tb.as_ref()
            .map_or(Class::Unknown, |tb| classify(tb, ending))
    };
    if class == Class::Unknown && ending.code != 0 && !ending.oom_killed {
        // A program other than Python (a shell, a tool the command runs) says it in its own words.
        if let Some(line) = lines
            .iter()
            .rev()
            .take(PLAIN_LINES)
            .find(|l| is_read_only(l))
        {
            class = Class::ReadOnly;
            error = Some(line.trim().to_string());
        }
    }
    Diagnosis { class, error }
}

/// How many of the last lines are searched for an error printed by a program other than Python.
const PLAIN_LINES: usize = 20;

/// `Read-only file system` (EROFS in any program's words) or SQLite refusing to write.
fn is_read_only(text: &str) -> bool {
    text.contains("Read-only file system")
        || text.contains("[Errno 30]")
        || text.contains("attempt to write a readonly database")
}

/// The class of the error `tb`, in order: a cause named by the exception, memory, a network error
/// anywhere in the chain, an error raised inside a model library, and last an error of the
/// script's own code after the metric was reported.
fn classify(tb: &Traceback, ending: Ending) -> Class {
    let Some(last) = tb.last() else {
        return Class::Unknown;
    };
    if let Some(class) = permanent(last) {
        return class;
    }
    if is_out_of_memory(last) {
        return Class::OutOfMemory;
    }
    if tb.exceptions.iter().any(|e| is_no_network(e)) {
        return Class::NoNetwork;
    }
    if tb.innermost().is_some_and(in_model_library) {
        return Class::Library;
    }
    if ending.metric_reported {
        return Class::AfterMetric;
    }
    Class::Unknown
}

/// The permanent class an exception line names, if any.
fn permanent(line: &str) -> Option<Class> {
    let ty = traceback::exception_type(line);
    let name = ty.rsplit('.').next().unwrap_or(ty);
    let message = line.split_once(": ").map_or("", |(_, m)| m);
    if let Some(file) = cant_open(line) {
        return Some(Class::MissingScript { file });
    }
    if is_no_network(line) {
        return Some(Class::NoNetwork);
    }
    Some(match name {
        "ModuleNotFoundError" | "ImportError" => Class::MissingModule {
            module: quoted_after(message, "No module named "),
        },
        "SyntaxError" | "IndentationError" | "TabError" => Class::Syntax,
        "NameError" if message.contains("'get_ipython'") => Class::NotebookOnly,
        _ if is_read_only(message) => Class::ReadOnly,
        // SQLite cannot create its file where the directory is read-only (or missing): either way
        // the path is in the code, not in the parameters.
        "OperationalError" if message.contains("unable to open database file") => Class::ReadOnly,
        _ if is_disk_full(message) => Class::DiskFull,
        "PermissionError" => Class::PermissionDenied,
        _ if message.contains("[Errno 13]") => Class::PermissionDenied,
        "FileNotFoundError" => Class::MissingFile {
            path: quoted_after(message, "No such file or directory: ")
                .or_else(|| not_found(message)),
        },
        _ if message.contains("[Errno 2] No such file or directory") => Class::MissingFile {
            path: quoted_after(message, "No such file or directory: "),
        },
        _ => return None,
    })
}

/// The script's path in python's `python3: can't open file '/workspace/x.py': [Errno 2] …`, relative
/// to the workspace.
fn cant_open(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("can't open file '")?;
    let (file, _) = rest.split_once('\'')?;
    Some(file.strip_prefix("/workspace/").unwrap_or(file).to_string())
}

/// The first quoted word after `prefix` (`No module named 'seaborn.apionly'` gives `seaborn`, the
/// package to install; a path keeps its whole text).
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let (_, rest) = message.split_once(prefix)?;
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = rest[1..].split(quote).next()?;
    let value = if prefix.starts_with("No module") {
        inner.split('.').next().unwrap_or(inner)
    } else {
        inner
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// The path in numpy's `data.csv not found.`.
fn not_found(message: &str) -> Option<String> {
    let path = message.strip_suffix(" not found.")?;
    (!path.is_empty() && !path.contains(' ')).then(|| path.to_string())
}

/// EFBIG (a file past `RLIMIT_FSIZE`, which is `[resources] disk`) or ENOSPC, as Python words them.
fn is_disk_full(message: &str) -> bool {
    [
        "[Errno 27]",
        "File too large",
        "[Errno 28]",
        "No space left on device",
    ]
    .iter()
    .any(|t| message.contains(t))
}

fn is_no_network(line: &str) -> bool {
    let ty = traceback::exception_type(line);
    let name = ty.rsplit('.').next().unwrap_or(ty);
    NO_NETWORK_TYPES.contains(&name) || NO_NETWORK_TEXTS.iter().any(|t| line.contains(t))
}

/// `MemoryError`, numpy's `_ArrayMemoryError`, TensorFlow's `ResourceExhaustedError`, PyTorch's
/// `OutOfMemoryError` or its allocator's message.
fn is_out_of_memory(line: &str) -> bool {
    let ty = traceback::exception_type(line);
    let name = ty.rsplit('.').next().unwrap_or(ty);
    name.ends_with("MemoryError")
        || name == "ResourceExhaustedError"
        || line.contains("out of memory")
        || line.contains("can't allocate memory")
}

fn in_model_library(frame: &Frame) -> bool {
    frame.in_library()
        && MODEL_LIBRARIES.iter().any(|lib| {
            frame.file.contains(&format!("-packages/{lib}/"))
                || frame.file.contains(&format!("-packages/{lib}_"))
        })
}

/// The exception that ended the script, with where it happened: the syntax error's own place, or
/// the innermost frame in the user's code.
fn error_line(tb: &Traceback) -> Option<String> {
    let last = tb.last()?;
    let frame = match traceback::exception_type(last) {
        "SyntaxError" | "IndentationError" | "TabError" => tb.innermost(),
        _ => tb.user_frame(),
    };
    Some(match frame {
        Some(f) => format!("{last} (at {})", f.location()),
        None => last.to_string(),
    })
}
