//! The commented `mlops.toml` that `mlops-tui init` writes, shaped by what the detector found.

use crate::core::detect::{ModelKind, Verdict};

/// What `init` found in the code beyond the model kind (see `crate::core::knobs::discover`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    /// The training entry script, repository-relative; `None` when nothing looked like one.
    pub entry: Option<String>,
    /// The other scripts that looked like an entry, named in a comment so the choice can be checked.
    pub considered: Vec<String>,
    /// Whether the code reads `/mlops/params.json` or `$MLOPS_PARAMS`: only then do plain
    /// `[tweak.space]` parameters reach it.
    pub reads_params: bool,
    /// Candidate source knobs, written commented out.
    pub knobs: Vec<KnobLine>,
    /// Files the code keeps between runs and the file it writes its result into.
    pub files: FileUse,
}

/// A file the script both reads and writes: the state it keeps between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    pub path: String,
    /// Where it is read and written: `knn.py:31 open("mymodel.h5", "rb")`.
    pub read: String,
    pub written: String,
}

/// What the scripts do with files, as `init` proposes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileUse {
    pub state: Vec<StateFile>,
    /// The file the result is written into and where: (`accuracy.txt`, `knn.py:40 open(…, "w")`).
    pub metric_file: Option<(String, String)>,
}

/// One suggested `[tweak.space]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct KnobLine {
    pub name: String,
    /// The inline table, e.g. `{ source = "train.py", call = "svm.SVC", arg = "gamma", values = [0.001, 0.01] }`.
    pub value: String,
    /// Where and what was found, e.g. `train.py:64 svm.SVC(gamma=0.001)`.
    pub note: String,
}

/// Whether `line` of a written template is a suggested knob (`# name = { … }`): uncommenting it (dropping
/// the leading `# `) makes it a `[tweak.space]` entry.
pub fn is_suggestion(line: &str) -> bool {
    line.strip_prefix("# ")
        .and_then(|rest| rest.split_once(" = { source = "))
        .is_some_and(|(name, _)| super::is_identifier(name))
}

/// What the project brings for its environment, besides its code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Environment {
    /// A `Dockerfile` at the project root.
    pub dockerfile: bool,
    /// A `requirements.txt` at the project root.
    pub requirements: bool,
}

/// A complete, valid file for code that reads its parameters; the search space suits the
/// detected kind of model.
pub fn for_verdict(verdict: &Verdict) -> String {
    with_environment(verdict, Environment::default())
}

/// [`for_verdict`] for a project that may have its own `Dockerfile` (then the image is built from it)
/// or `requirements.txt` (then it is installed on top of the detected profile).
pub fn with_environment(verdict: &Verdict, env: Environment) -> String {
    let discovery = Discovery {
        reads_params: true,
        ..Discovery::default()
    };
    for_project(verdict, &discovery, env)
}

/// The command line, naming the entry script and the others considered.
fn command(discovery: &Discovery) -> String {
    let entry = discovery.entry.as_deref().unwrap_or("train.py");
    let line = format!(
        "command = [\"python3\", {}]   # run in /workspace (the iteration's writable copy of this commit)",
        serde_json::Value::String(entry.to_owned())
    );
    match discovery.considered.is_empty() {
        true => line,
        false => format!(
            "# {entry} looks most like the training entry; also considered: {}\n{line}",
            discovery.considered.join(", ")
        ),
    }
}

/// The `[tweak.space]` body: the kind's plain parameters when the code reads them, then the knobs
/// found in the code, commented out. A knob named like a plain parameter gets a `_code` suffix so
/// that every line may be uncommented at once.
fn space_body(generic: &str, discovery: &Discovery) -> String {
    let plain = discovery.reads_params || discovery.knobs.is_empty();
    let mut out = if plain {
        format!(
            "# The script receives these as /mlops/params.json and in $MLOPS_PARAMS.\n{generic}"
        )
    } else {
        "# The code reads no /mlops/params.json or $MLOPS_PARAMS: tweak its own literals below."
            .to_owned()
    };
    if discovery.knobs.is_empty() {
        return out;
    }
    out.push_str(
        "\n\n# Knobs found in the code. Uncomment the ones to tune: each iteration trains a copy of the\n\
         # commit with the literal at `source` changed (a git commit you can inspect and export).",
    );
    let taken: Vec<&str> = generic
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(name, _)| name.trim()))
        .collect();
    for knob in &discovery.knobs {
        let name = match plain && taken.contains(&knob.name.as_str()) {
            true => format!("{}_code", knob.name),
            false => knob.name.clone(),
        };
        out.push_str(&format!("\n# {}\n# {name} = {}", knob.note, knob.value));
    }
    out
}

/// A complete, valid file (also with every suggested knob uncommented): the command names the
/// entry script, the image suits the project's environment, the search space suits the detected
/// kind of model and what the code reads.
pub fn for_project(verdict: &Verdict, discovery: &Discovery, env: Environment) -> String {
    let image = image_part(verdict, env);
    let space = match verdict.kind {
        ModelKind::Cnn => {
            "conv_layers = { start = 1, max = 4, step = 1 }     # more convolution layers\n\
             filters = { start = 8, max = 64, factor = 2 }      # more filters per layer\n\
             epochs = { start = 3, max = 12, step = 3 }"
        }
        ModelKind::Ann => {
            "hidden_units = { start = 16, max = 256, factor = 2 }  # wider hidden layers\n\
             epochs = { start = 5, max = 40, step = 5 }"
        }
        ModelKind::Classic => {
            "k = { values = [15, 9, 5, 3, 1] }   # e.g. neighbours; list values in the order to try"
        }
    };
    let command = command(discovery);
    let space = space_body(space, discovery);
    let (keep, metric_file) = file_lines(&discovery.files);
    format!(
        r#"# mlops.toml: how mlops-tui trains this project (like a Jenkinsfile, but for the training loop).
# Every key is documented in mlops-tui's README.

[train]
{command}
{image}{keep}

[metric]
name = "accuracy"        # printed by the script as `accuracy=0.91`, `accuracy: 0.91` or JSON
direction = "maximize"   # or "minimize" (e.g. for a loss)
target = 0.95{metric_file}

[budget]
max_iterations = 5       # iterations per run, the first included
iteration_timeout = "30m"
metric_timeout = "5m"    # no metric line for this long: the iteration fails
max_failures = 2
parallel = 1             # iterations trained at once (over every engine's free slots)

[resources]
memory = "2g"
cpus = 1.0
pids = 256

[tweak]
strategy = "gp"          # Bayesian search (a Gaussian process); "random"; or "grow": one step per dimension
apply = "ask"            # "ask": approve each proposal in the dashboard; "auto": apply at once

[tweak.space]
{space}

[params]                 # fixed parameters, passed unchanged to every iteration
"#
    )
}

/// The `keep` lines of `[train]` (files the script reads and writes, carried from one iteration
/// to the next) and the `file =` line of `[metric]`, each with the lines that show why; empty when
/// the code shows neither.
fn file_lines(files: &FileUse) -> (String, String) {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let keep = match files.state.is_empty() {
        true => String::new(),
        false => {
            let mut text = String::new();
            for f in &files.state {
                text.push_str(&format!(
                    "\n# {} reads {}; {} writes it",
                    f.read, f.path, f.written
                ));
            }
            let names: Vec<String> = files.state.iter().map(|f| q(&f.path)).collect();
            text.push_str(&format!(
                "\n# The script continues from what its previous run saved, as in a Jenkins workspace kept\n\
                 # between builds: each iteration's workspace starts with these files from an earlier one's.\n\
                 keep = [{}]\n\
                 keep_from = \"previous\"     # the iteration that ended last; \"best\": the best-scoring one",
                names.join(", ")
            ));
            text
        }
    };
    let metric_file = match &files.metric_file {
        None => String::new(),
        Some((path, at)) => format!(
            "\nfile = {}   # {at}: the result is read from this file when the script ends",
            q(path)
        ),
    };
    (keep, metric_file)
}

/// The `image =` line of `[train]` with the comments that explain it.
fn image_part(verdict: &Verdict, env: Environment) -> String {
    let detected = format!("# detected: {}", verdict.summary());
    if env.dockerfile {
        return format!(
            "{detected}\n\
             # The project's Dockerfile is built (with this commit's files as context) and trained in;\n\
             # it may start `FROM mlops-tui/{}`. Use image = \"auto\" for the built-in image instead.\n\
             image = {{ dockerfile = \"Dockerfile\" }}",
            verdict.profile()
        );
    }
    let mut text = format!("image = \"auto\"            {detected}");
    if env.requirements {
        text.push_str(&format!(
            "\n# requirements.txt is installed with pip on top of image {} (built once, reused until it changes).",
            verdict.profile()
        ));
    }
    text
}

#[cfg(test)]
mod environment_tests {
    use std::path::{Path, PathBuf};

    use super::{Environment, with_environment};
    use crate::core::config::{Config, ImageSetting};
    use crate::core::detect::detect_sources;

    fn keras_verdict() -> crate::core::detect::Verdict {
        let src = "from keras.layers import Conv2D\nm.add(Conv2D(8, 3))\n";
        detect_sources(
            Path::new("p"),
            &[(PathBuf::from("train.py"), src.to_owned())],
        )
        .unwrap()
    }

    #[test]
    fn a_dockerfile_becomes_the_image() {
        let env = Environment {
            dockerfile: true,
            requirements: false,
        };
        let text = with_environment(&keras_verdict(), env);
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        assert_eq!(
            config.train.image,
            ImageSetting::Dockerfile("Dockerfile".into())
        );
        assert!(
            text.contains("# The project's Dockerfile is built"),
            "{text}"
        );
        assert!(text.contains("FROM mlops-tui/keras"), "{text}");
    }

    #[test]
    fn requirements_are_noted_on_top_of_the_detected_profile() {
        let env = Environment {
            dockerfile: false,
            requirements: true,
        };
        let text = with_environment(&keras_verdict(), env);
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        assert_eq!(config.train.image, ImageSetting::Auto);
        assert!(
            text.contains("# requirements.txt is installed with pip on top of image keras"),
            "{text}"
        );
        let plain = with_environment(&keras_verdict(), Environment::default());
        assert!(!plain.contains("requirements.txt"), "{plain}");
        assert!(plain.contains("→ image keras"), "{plain}");
    }
}
