//! `mlops.toml`: the pipeline file that lives in the trained repository, like a Jenkinsfile.
//!
//! Parsing is strict (`deny_unknown_fields`) so that a typo is an error that names the file, line and
//! column, never a silently ignored setting. Every value that needs more than a type check (durations,
//! sizes, search-space bounds) is checked while deserializing, so the error carries the span of the bad
//! value. The few checks that need the whole file (an empty command, a regex without its group, a name
//! both fixed and tweaked) run after it and point at the key by its full table path.

mod binding;
mod data;
mod engine_kind;
pub mod engines;
mod image;
pub mod keep;
mod limits;
mod locate;
pub mod mailbox;
pub mod notify;
pub mod placement;
mod pruning;
mod range;
mod space;
pub mod template;
pub mod track;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::core::units::{ByteSize, HumanDuration};
pub use binding::{BindTarget, SourceBinding};
pub(crate) use binding::{is_identifier, template_names};
pub use data::DataMount;
pub use engines::{EngineHost, EngineKind, EngineSpec, TlsFiles};
pub use image::ImageSetting;
pub use keep::KeepFrom;
pub use limits::{
    EngineLimits, MAX_DIMENSIONS, MAX_PARALLEL, MAX_PARAMS_BYTES, MAX_VALUE_BYTES,
    check_params_size, trials_that_fit,
};
pub use locate::key_line;
pub use pruning::{PruneRule, Pruning};
pub use range::MetricRange;
pub use space::{Dimension, MAX_GRID, Scale, number, same_value, tidy};

/// The name of the pipeline file at the root of a trained repository.
pub const FILE_NAME: &str = "mlops.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `line` and `column` are 1-based; `snippet` is the offending source line.
    #[error("{path}:{line}:{column}: {message}\n  | {snippet}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub train: Train,
    pub metric: Metric,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub tweak: Tweak,
    #[serde(default)]
    pub monitor: Monitor,
    /// Fixed parameters passed to every iteration unchanged, beside the tweaked ones.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub notify: notify::NotifyConfig,
    /// Where runs are recorded besides the history (`[track.mlflow]`).
    #[serde(default, skip_serializing_if = "track::Track::is_empty")]
    pub track: track::Track,
    /// Host directories mounted read-only into the container, by name (see [`DataMount`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, DataMount>,
    /// The Docker engines trials run on (`[[engines]]`); empty means the local engine only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Train {
    /// argv run inside the container, with `/workspace` (the iteration's writable copy of its commit)
    /// as working directory.
    pub command: Vec<String>,
    /// `auto` (detect), a built-in profile (`numpy`, `sklearn`, `torch`, `keras`), any image
    /// reference, or `{ dockerfile = "Dockerfile" }`.
    #[serde(default)]
    pub image: ImageSetting,
    /// The branch whose commits start runs when watching; `None` means the checked-out branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// Files the script leaves in its workspace that the next iteration's workspace starts with
    /// (see [`keep`]); empty: every iteration starts from its commit alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// Which earlier iteration `keep` copies from.
    #[serde(default, skip_serializing_if = "KeepFrom::is_default")]
    pub keep_from: KeepFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximize,
    Minimize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    pub target: f64,
    /// Optional regex with a named group `value` (and optionally `epoch`) for logs the built-in parser
    /// does not understand.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The values the metric can take, for metrics whose scale the name does not tell (see
    /// [`Metric::valid_range`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<MetricRange>,
    /// A file the script writes its final value into (`accuracy.txt`), read when the container
    /// exits: relative to `/workspace`, or under `/mlops/`. Its value is the iteration's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

fn default_direction() -> Direction {
    Direction::Maximize
}

impl Metric {
    /// True when `value` meets the target. NaN, infinities and values outside the metric's range
    /// never do.
    pub fn meets_target(&self, value: f64) -> bool {
        self.is_valid(value)
            && match self.direction {
                Direction::Maximize => value >= self.target,
                Direction::Minimize => value <= self.target,
            }
    }

    /// True when `a` is strictly better than `b`. An invalid value (non-finite or outside the
    /// metric's range) is never better, and any valid value is better than an invalid one.
    pub fn better(&self, a: f64, b: f64) -> bool {
        if !self.is_valid(a) {
            return false;
        }
        if !self.is_valid(b) {
            return true;
        }
        match self.direction {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Iterations per run, the first (starting parameters) included.
    pub max_iterations: u32,
    /// Wall-clock limit of one iteration's container.
    pub iteration_timeout: HumanDuration,
    /// A container that prints no metric line for this long is stopped and the iteration fails.
    pub metric_timeout: HumanDuration,
    /// Failed iterations tolerated in one run before it gives up.
    pub max_failures: u32,
    /// Iterations trained at once (trials side by side, on every engine's free slots); all of them
    /// count against `max_iterations`. At least 1.
    pub parallel: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_iterations: 5,
            iteration_timeout: HumanDuration(Duration::from_secs(30 * 60)),
            metric_timeout: HumanDuration(Duration::from_secs(5 * 60)),
            max_failures: 2,
            parallel: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    pub memory: ByteSize,
    pub cpus: f64,
    pub pids: i64,
    /// What an iteration's container may hold under `/workspace` and `/mlops` together, and the
    /// largest file it may write: over it, the container is killed at once and the run stops (a
    /// script writes that much whatever its parameters), so a script cannot fill the disk.
    pub disk: ByteSize,
    /// GPUs each trial's container gets (`1`, `"all"`, `["0", "2"]`); `None` trains on the CPU.
    /// See [`crate::core::gpu`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<crate::core::gpu::GpuRequest>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            memory: ByteSize(2 * 1024 * 1024 * 1024),
            cpus: 1.0,
            pids: 256,
            disk: ByteSize(4 * 1024 * 1024 * 1024),
            gpus: None,
        }
    }
}

/// Job 6: how dead training containers are revived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitor {
    /// Revive containers that die of infrastructure causes (OOM kill, a signal the script did not ask
    /// for, an engine restart). Code failures are never revived.
    pub revive: bool,
    /// Revivals allowed per iteration; past it the iteration fails.
    pub max_revivals: u32,
    /// Delay before the second revival of an iteration (the first is immediate); doubles each time.
    pub backoff_initial: HumanDuration,
    pub backoff_max: HumanDuration,
    /// A container that ran this long before dying starts its back-off afresh.
    pub healthy_after: HumanDuration,
    /// Exit codes that mean the container was killed from outside (128 + signal). Any other non-zero
    /// code is the script's own failure.
    pub revive_exit_codes: Vec<i64>,
    /// How long an engine may stay unreachable before the trials on it move to another engine
    /// (resuming from their last checkpoint copied home). At least 1 s.
    pub engine_grace: HumanDuration,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            revive: true,
            max_revivals: 5,
            backoff_initial: HumanDuration(Duration::from_secs(1)),
            backoff_max: HumanDuration(Duration::from_secs(60)),
            healthy_after: HumanDuration(Duration::from_secs(60)),
            revive_exit_codes: vec![129, 130, 137, 143],
            engine_grace: HumanDuration(Duration::from_secs(20)),
        }
    }
}

impl Monitor {
    /// Delay before revival number `n` (1-based) of a back-off sequence: 0, then initial, doubling, capped.
    pub fn backoff(&self, n: u32) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(n - 2);
        self.backoff_initial
            .0
            .saturating_mul(factor)
            .min(self.backoff_max.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyMode {
    /// The loop waits for the operator to approve each proposal.
    Ask,
    /// Proposals are applied at once.
    #[default]
    Auto,
}

/// `[tweak] strategy`: how the next point is chosen (see `docs/search.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyName {
    /// A Gaussian-process model of the metric over the space, proposing by expected improvement.
    #[default]
    Gp,
    /// Uniform random points, seeded; a finite space is enumerated without repeats.
    Random,
    /// Every dimension one step up at once (more capacity), as people do by hand.
    Grow,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "binding::RawTweak")]
pub struct Tweak {
    pub strategy: StrategyName,
    pub apply: ApplyMode,
    /// Seeds the strategies' random choices: the same seed and history give the same proposals.
    pub seed: u64,
    /// Ordered by name; the grow strategy walks dimensions in this order.
    pub space: BTreeMap<String, Dimension>,
    /// The dimensions written with `source = "..."`: their value is patched into the code (see
    /// [`crate::core::knobs`]). Invariant: every key is also a key of `space`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, SourceBinding>,
    /// When an iteration that lags behind the finished ones is stopped early (`[tweak.pruning]`).
    pub pruning: Pruning,
}

impl Config {
    /// Parses `text`; `path` only names the file in errors (`support::config_file` reads it).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            locate::invalid_at(text, path, offset, e.message().to_string())
        })?;
        cfg.validate(text, path)?;
        Ok(cfg)
    }

    /// Checks that need more than one field or more than a type. Errors point at the key that is wrong,
    /// found by its full table path in the parsed document.
    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        self.check().map_err(|v| v.locate(text, path))
    }

    fn check(&self) -> Result<(), Violation> {
        // First the checks whose cost does not grow with the file, so a huge space is refused
        // before anything walks it.
        self.check_space_size()?;
        self.check_train()?;
        self.check_templates()?;
        self.check_metric()?;
        self.check_budget_and_resources()?;
        self.check_params()?;
        self.check_data()?;
        self.check_engines()?;
        self.check_params_size()
    }

    fn check_train(&self) -> Result<(), Violation> {
        if self.train.command.is_empty() || self.train.command[0].trim().is_empty() {
            return Err(Violation::at(
                &["train", "command"],
                "`train.command` must not be empty".into(),
            ));
        }
        keep::check(self)
    }

    fn check_metric(&self) -> Result<(), Violation> {
        if self.metric.name.trim().is_empty() {
            return Err(Violation::at(
                &["metric", "name"],
                "`metric.name` must not be empty".into(),
            ));
        }
        if !self.metric.target.is_finite() {
            return Err(Violation::at(
                &["metric", "target"],
                format!(
                    "`metric.target` must be a finite number, found {}",
                    self.metric.target
                ),
            ));
        }
        self.check_metric_range()?;
        self.check_metric_file()?;
        let Some(p) = &self.metric.pattern else {
            return Ok(());
        };
        let message = match regex::Regex::new(p) {
            Err(e) => format!("`metric.pattern` is not a valid regex: {e}"),
            Ok(re) if !re.capture_names().flatten().any(|n| n == "value") => {
                format!("`metric.pattern` \"{p}\" needs a named group `(?P<value>...)`")
            }
            Ok(_) => return Ok(()),
        };
        Err(Violation::at(&["metric", "pattern"], message))
    }

    /// `metric.file` names a file inside the iteration's workspace or its `/mlops`.
    fn check_metric_file(&self) -> Result<(), Violation> {
        let Some(f) = &self.metric.file else {
            return Ok(());
        };
        let inside = f.strip_prefix("/mlops/").unwrap_or(f);
        let bad = if f.trim().is_empty() {
            Some("must not be empty")
        } else if inside.starts_with('/') {
            Some("must be relative to the script's directory (/workspace) or start with /mlops/")
        } else if inside.split('/').any(|c| c == "..") {
            Some("must not contain `..`")
        } else {
            None
        };
        match bad {
            Some(why) => Err(Violation::at(
                &["metric", "file"],
                format!("`metric.file` \"{f}\" {why}"),
            )),
            None => Ok(()),
        }
    }

    /// A target the metric cannot take could never be reached.
    fn check_metric_range(&self) -> Result<(), Violation> {
        let m = &self.metric;
        match m.valid_range() {
            Some(r) if !r.contains(m.target) => {
                let (key, how) = match m.range {
                    Some(_) => ("range", "`metric.range`".to_string()),
                    None => ("target", format!("`{}`'s range", m.name)),
                };
                Err(Violation::at(
                    &["metric", key],
                    format!(
                        "`metric.target` {} is outside {how} {r}; set [metric] range to the scale `{}` is reported in",
                        m.target, m.name
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn check_budget_and_resources(&self) -> Result<(), Violation> {
        if self.budget.max_iterations == 0 {
            return Err(Violation::at(
                &["budget", "max_iterations"],
                "`budget.max_iterations` must be at least 1".into(),
            ));
        }
        if self.monitor.engine_grace.0 < Duration::from_secs(1) {
            return Err(Violation::at(
                &["monitor", "engine_grace"],
                format!(
                    "`monitor.engine_grace` must be at least 1s (a dropped ping is not a lost engine), found {}",
                    self.monitor.engine_grace
                ),
            ));
        }
        if self.budget.parallel == 0 {
            return Err(Violation::at(
                &["budget", "parallel"],
                "`budget.parallel` must be at least 1 (1 trains one iteration at a time)".into(),
            ));
        }
        if self.budget.parallel > limits::MAX_PARALLEL {
            return Err(Violation::at(
                &["budget", "parallel"],
                format!(
                    "`budget.parallel` is {}; at most {} trials can run at once: set it to how many \
                     your engines can train side by side (it is also capped by their CPUs and memory)",
                    self.budget.parallel,
                    limits::MAX_PARALLEL
                ),
            ));
        }
        if !self.resources.cpus.is_finite() || self.resources.cpus < 0.01 {
            return Err(Violation::at(
                &["resources", "cpus"],
                format!(
                    "`resources.cpus` must be at least 0.01 (Docker's minimum), found {}",
                    self.resources.cpus
                ),
            ));
        }
        if self.resources.memory.0 < 6 * 1024 * 1024 {
            return Err(Violation::at(
                &["resources", "memory"],
                "`resources.memory` must be at least 6m (Docker's minimum)".into(),
            ));
        }
        if self.resources.disk.0 < 1024 * 1024 {
            return Err(Violation::at(
                &["resources", "disk"],
                format!(
                    "`resources.disk` must be at least 1m (room for params.json and a model), found {}",
                    self.resources.disk
                ),
            ));
        }
        if self.resources.pids < 16 {
            return Err(Violation::at(
                &["resources", "pids"],
                format!(
                    "`resources.pids` must be at least 16, found {}",
                    self.resources.pids
                ),
            ));
        }
        Ok(())
    }

    /// The error `message` about tweak dimension `name`'s file, located at its `source` key in
    /// `text` (the file at `path`), e.g. `mlops.toml:14:11: knob "x": …`.
    pub fn binding_error(&self, name: &str, text: &str, path: &Path, message: &str) -> ConfigError {
        Violation::at(
            &["tweak", "space", name, "source"],
            format!("knob \"{name}\": {message}"),
        )
        .locate(text, path)
    }

    /// A name may be fixed or tweaked, not both. The error points at whichever of the two is written
    /// later, as a duplicate key would.
    fn check_params(&self) -> Result<(), Violation> {
        match self
            .tweak
            .space
            .keys()
            .find(|name| self.params.contains_key(*name))
        {
            Some(name) => Err(Violation {
                keys: vec![
                    vec!["params".into(), name.clone()],
                    vec!["tweak".into(), "space".into(), name.clone()],
                ],
                message: format!(
                    "`{name}` is both a fixed parameter in [params] and a tweak dimension"
                ),
            }),
            None => Ok(()),
        }
    }

    /// The parameters of iteration 1: every dimension at its start, plus the fixed ones.
    pub fn starting_params(&self) -> Params {
        self.starting_params_with(&Params::new())
    }

    /// The parameters of iteration 1 given the values the source-bound places hold in the commit
    /// (`crate::core::knobs::Knobs::current`): a bound dimension written without a start of its own
    /// starts from the code's value when the dimension holds it, so the first iteration trains the
    /// code as the user wrote it.
    pub fn starting_params_with(&self, in_source: &Params) -> Params {
        let mut p: Params = self.params.clone();
        for (name, dim) in &self.tweak.space {
            let from_source = in_source
                .get(name)
                .filter(|v| {
                    self.tweak.bindings.contains_key(name)
                        && dim.takes_start_from_source()
                        && dim.contains(v)
                })
                .cloned();
            p.insert(name.clone(), from_source.unwrap_or_else(|| dim.start()));
        }
        p
    }
}

/// An iteration's parameters, as written to `/mlops/params.json`. Ordered so that equal parameter sets
/// serialize identically (the tweak strategy relies on that to never repeat a point).
pub type Params = BTreeMap<String, serde_json::Value>;

/// A check that failed after deserialising: what is wrong, and the keys (full table paths) it is
/// about. The error points at the one written last in the file.
struct Violation {
    keys: Vec<Vec<String>>,
    message: String,
}

impl Violation {
    fn at(key: &[&str], message: String) -> Violation {
        Violation {
            keys: vec![key.iter().map(|k| k.to_string()).collect()],
            message,
        }
    }

    /// The error in `text` (the file at `path`), pointing at the key written last.
    fn locate(self, text: &str, path: &Path) -> ConfigError {
        let offset = locate::last_key_offset(text, &self.keys);
        locate::invalid_at(text, path, offset, self.message)
    }
}

#[cfg(test)]
mod tests;
