//! What to send to MLflow for one run, worked out from the history and the acknowledgements: pure,
//! no I/O.
//!
//! A run of ours is an MLflow parent run; each iteration that started is a run nested under it
//! (`mlflow.parentRunId`). [`plan`] compares a [`Snapshot`] of the history with what the server has
//! acknowledged ([`Acks`]) and lists the [`Record`]s still to send, in order. Every record is
//! idempotent on the server (a run is found by its `mlops.key` tag before it is created; parameters,
//! tags and artifacts are overwritten with the same values; a metric point with the same key, step,
//! timestamp and value is stored once), so sending a record twice — a crash between the server's
//! answer and our acknowledgement — duplicates nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adapters::store::{IterationRow, MetricPoint, RunRow};
use crate::core::knobs::SourceEdit;
use crate::core::model::{IterStatus, RunStatus};

/// Metric points per `log-batch` request (the server accepts 1000).
pub const BATCH: usize = 1000;
/// MLflow's limits on a parameter and a tag value.
const PARAM_MAX: usize = 6000;
const TAG_MAX: usize = 8000;

/// What a run's records need besides the history: the project, the metric's name, the strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    /// The project's directory, as the history keeps it.
    pub project: String,
    pub metric: String,
    pub strategy: Option<String>,
}

/// The history of one run, as read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub run: RunRow,
    pub iterations: Vec<IterSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IterSnapshot {
    pub row: IterationRow,
    pub points: Vec<MetricPoint>,
    /// The engine it ran on last.
    pub engine: Option<String>,
}

/// What the server has acknowledged for one run (`runs/N/mlflow.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acks {
    pub uri: String,
    #[serde(default)]
    pub experiment: String,
    pub experiment_id: Option<String>,
    pub parent: Option<RunAck>,
    #[serde(default)]
    pub parent_ended: bool,
    /// By iteration number.
    #[serde(default)]
    pub iterations: BTreeMap<u32, IterAck>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunAck {
    pub run_id: String,
    /// Where its artifacts go (`mlflow-artifacts:/1/<run id>/artifacts` on a server that proxies them).
    pub artifact_uri: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IterAck {
    pub run: RunAck,
    #[serde(default)]
    pub params: bool,
    /// Metric points sent, in the order the history has them.
    #[serde(default)]
    pub points: usize,
    #[serde(default)]
    pub ended: bool,
}

/// Which MLflow run a record is about: the parent (our run) or an iteration's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Parent,
    Iteration(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    /// A number, or `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no spelling for those).
    pub value: serde_json::Value,
    pub step: i64,
    pub timestamp: i64,
}

/// One step of the upload, as queued in `runs/N/mlflow-queue.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// Find the run by its `mlops.key` tag, or create it.
    CreateRun {
        target: Target,
        key: String,
        name: String,
        start_time: i64,
        tags: Vec<(String, String)>,
    },
    LogParams {
        no: u32,
        params: Vec<(String, String)>,
    },
    /// Points `from..upto` of the iteration's series (or its final value when `upto` is `None`).
    LogMetrics {
        no: u32,
        metrics: Vec<Metric>,
        upto: Option<usize>,
    },
    SetTags {
        target: Target,
        tags: Vec<(String, String)>,
    },
    /// A file of ours, or a text made here, as the artifact `name`.
    Artifact {
        no: u32,
        name: String,
        file: Option<String>,
        text: Option<String>,
    },
    EndRun {
        target: Target,
        status: String,
        end_time: i64,
    },
}

/// The tag that finds a run again: the project and our run (and iteration).
pub fn key(project: &str, run: i64, no: Option<u32>) -> String {
    let project = project.replace(['\'', '"', '`'], "_");
    match no {
        Some(no) => format!("{project}#run-{run}/iter-{no}"),
        None => format!("{project}#run-{run}"),
    }
}

/// The records still to send for `snap`, given what `acks` says was sent.
pub fn plan(ctx: &RunContext, snap: &Snapshot, acks: &Acks) -> Vec<Record> {
    let run = &snap.run;
    let mut out = Vec::new();
    if acks.parent.is_none() {
        out.push(Record::CreateRun {
            target: Target::Parent,
            key: key(&ctx.project, run.id.0, None),
            name: format!("run-{}", run.id),
            start_time: run.started_at,
            tags: parent_tags(ctx, run),
        });
    }
    for it in &snap.iterations {
        plan_iteration(ctx, snap, it, acks.iterations.get(&it.row.no.0), &mut out);
    }
    if run.status.is_final() && run.status != RunStatus::Interrupted && !acks.parent_ended {
        let mut tags = vec![("mlops.status".to_string(), run.status.to_string())];
        if let Some(r) = &run.reason {
            tags.push(("mlops.status_reason".into(), clip(r, TAG_MAX)));
        }
        if let Some(best) = run.best_iteration {
            tags.push(("mlops.best_iteration".into(), best.to_string()));
        }
        out.push(Record::SetTags {
            target: Target::Parent,
            tags,
        });
        out.push(Record::EndRun {
            target: Target::Parent,
            status: run_status(run.status).into(),
            end_time: run.finished_at.unwrap_or(run.started_at),
        });
    }
    out
}

fn plan_iteration(
    ctx: &RunContext,
    snap: &Snapshot,
    it: &IterSnapshot,
    ack: Option<&IterAck>,
    out: &mut Vec<Record>,
) {
    let row = &it.row;
    let no = row.no.0;
    let Some(started) = row.started_at.or(row.finished_at) else {
        return; // never started: nothing to show yet
    };
    if ack.is_none() {
        out.push(Record::CreateRun {
            target: Target::Iteration(no),
            key: key(&ctx.project, snap.run.id.0, Some(no)),
            name: format!("run-{}/iter-{no}", snap.run.id),
            start_time: started,
            tags: iteration_tags(ctx, snap, it),
        });
    }
    if !ack.is_some_and(|a| a.params) {
        out.push(Record::LogParams {
            no,
            params: params(&row.params),
        });
    }
    let sent = ack.map_or(0, |a| a.points);
    let pending: Vec<(usize, &MetricPoint)> = it.points.iter().enumerate().skip(sent).collect();
    for chunk in pending.chunks(BATCH) {
        let upto = chunk.last().map_or(sent, |(i, _)| i + 1);
        let metrics = chunk
            .iter()
            .map(|(i, p)| Metric {
                key: ctx.metric.clone(),
                value: number(p.value),
                step: p.epoch.map_or(*i as i64 + 1, i64::from),
                timestamp: p.at,
            })
            .collect();
        out.push(Record::LogMetrics {
            no,
            metrics,
            upto: Some(upto),
        });
    }
    if row.status.is_final() && !ack.is_some_and(|a| a.ended) {
        let previous = snap.iterations.iter().find(|p| p.row.no.0 + 1 == no);
        plan_end(ctx, it, previous, out);
    }
}

/// The records that close an iteration: its outcome, final value, artifacts, status.
fn plan_end(
    ctx: &RunContext,
    it: &IterSnapshot,
    previous: Option<&IterSnapshot>,
    out: &mut Vec<Record>,
) {
    let row = &it.row;
    let no = row.no.0;
    let end = row.finished_at.or(row.started_at).unwrap_or_default();
    let mut tags = vec![("mlops.outcome".to_string(), outcome(row.status).to_string())];
    if let Some(r) = &row.reason {
        tags.push(("mlops.outcome_reason".into(), clip(r, TAG_MAX)));
    }
    if let Some(e) = &it.engine {
        tags.push(("mlops.engine".into(), e.clone()));
    }
    if let Some(c) = &row.commit_id {
        tags.push(("mlops.commit".into(), c.clone()));
    }
    out.push(Record::SetTags {
        target: Target::Iteration(no),
        tags,
    });
    if let Some(v) = row.final_value {
        out.push(Record::LogMetrics {
            no,
            metrics: vec![Metric {
                key: format!("final_{}", ctx.metric),
                value: number(v),
                step: 0,
                timestamp: end,
            }],
            upto: None,
        });
    }
    if let Some(m) = &row.model {
        let name = std::path::Path::new(m)
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
        out.push(Record::Artifact {
            no,
            name: format!("model/{name}"),
            file: Some(m.clone()),
            text: None,
        });
    } else if let Some(w) = &row.workdir {
        out.push(Record::Artifact {
            no,
            name: "model".into(),
            file: Some(format!("{w}/model")),
            text: None,
        });
    }
    let text = if row.edits.is_empty() {
        params_diff(previous.map(|p| &p.row.params), &row.params)
    } else {
        diff(&row.edits)
    };
    out.push(Record::Artifact {
        no,
        name: "knobs.diff".into(),
        file: None,
        text: Some(text),
    });
    out.push(Record::EndRun {
        target: Target::Iteration(no),
        status: iter_status(row.status).into(),
        end_time: end,
    });
}

fn parent_tags(ctx: &RunContext, run: &RunRow) -> Vec<(String, String)> {
    let mut tags = vec![
        ("mlops.project".to_string(), ctx.project.clone()),
        ("mlops.run".into(), run.id.to_string()),
        ("mlops.commit".into(), run.commit_id.clone()),
        ("mlflow.source.git.commit".into(), run.commit_id.clone()),
        ("mlops.branch".into(), run.branch.clone()),
        ("mlops.trigger".into(), run.trigger.clone()),
        (
            "mlflow.note.content".into(),
            clip(&run.commit_summary, TAG_MAX),
        ),
    ];
    if let Some(s) = &ctx.strategy {
        tags.push(("mlops.strategy".into(), s.clone()));
    }
    tags
}

fn iteration_tags(ctx: &RunContext, snap: &Snapshot, it: &IterSnapshot) -> Vec<(String, String)> {
    let run = &snap.run;
    let mut tags = vec![
        ("mlops.project".to_string(), ctx.project.clone()),
        ("mlops.run".into(), run.id.to_string()),
        ("mlops.iteration".into(), it.row.no.to_string()),
        ("mlops.branch".into(), run.branch.clone()),
        (
            "mlops.commit".into(),
            it.row
                .commit_id
                .clone()
                .unwrap_or_else(|| run.commit_id.clone()),
        ),
        ("mlflow.source.git.commit".into(), run.commit_id.clone()),
    ];
    if let Some(s) = &ctx.strategy {
        tags.push(("mlops.strategy".into(), s.clone()));
    }
    if let Some(r) = &it.row.proposal_reason {
        tags.push(("mlops.strategy_reason".into(), clip(r, TAG_MAX)));
    }
    if let Some(e) = &it.engine {
        tags.push(("mlops.engine".into(), e.clone()));
    }
    if let Some(i) = &it.row.image {
        tags.push(("mlops.image".into(), i.clone()));
    }
    tags
}

/// Parameters as MLflow keeps them: strings, a string value without its JSON quotes.
fn params(p: &crate::core::config::Params) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), clip(&text, PARAM_MAX))
        })
        .collect()
}

/// The source lines the knobs changed, as a diff.
pub fn diff(edits: &[SourceEdit]) -> String {
    let mut out = String::new();
    for e in edits {
        out.push_str(&format!("@@ {}:{} @@\n", e.file, e.line));
        for l in e.old.lines() {
            out.push_str(&format!("-{l}\n"));
        }
        for l in e.new.lines() {
            out.push_str(&format!("+{l}\n"));
        }
    }
    out
}

/// The parameters that changed since the iteration before (every one for the first), as a diff of
/// `name = value` lines: what a knob without a source binding changed.
pub fn params_diff(
    previous: Option<&crate::core::config::Params>,
    params: &crate::core::config::Params,
) -> String {
    let mut out = String::from("@@ params.json @@\n");
    for (k, v) in params {
        let old = previous.and_then(|p| p.get(k));
        if old == Some(v) {
            continue;
        }
        if let Some(old) = old {
            out.push_str(&format!("-{k} = {old}\n"));
        }
        out.push_str(&format!("+{k} = {v}\n"));
    }
    out
}

fn number(v: f64) -> serde_json::Value {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::json!(v)
    }
}

/// The outcome tag: `succeeded`, `below_target`, `failed`, `stopped`, `pruned`.
fn outcome(s: IterStatus) -> &'static str {
    s.as_str()
}

fn iter_status(s: IterStatus) -> &'static str {
    match s {
        IterStatus::Succeeded | IterStatus::BelowTarget => "FINISHED",
        IterStatus::Failed => "FAILED",
        IterStatus::Stopped | IterStatus::Pruned => "KILLED",
        _ => "RUNNING",
    }
}

fn run_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded | RunStatus::BudgetSpent => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Cancelled | RunStatus::Interrupted => "KILLED",
        RunStatus::Running => "RUNNING",
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Acks {
    /// Records `rec` as acknowledged; `run` is the MLflow run a `CreateRun` found or made.
    pub fn acknowledge(&mut self, rec: &Record, run: Option<RunAck>) {
        match rec {
            Record::CreateRun { target, .. } => match (target, run) {
                (Target::Parent, Some(r)) => self.parent = Some(r),
                (Target::Iteration(no), Some(r)) => {
                    self.iterations.entry(*no).or_default().run = r;
                }
                (_, None) => {}
            },
            Record::LogParams { no, .. } => self.iterations.entry(*no).or_default().params = true,
            Record::LogMetrics {
                no, upto: Some(n), ..
            } => self.iterations.entry(*no).or_default().points = *n,
            Record::EndRun {
                target: Target::Parent,
                ..
            } => self.parent_ended = true,
            Record::EndRun {
                target: Target::Iteration(no),
                ..
            } => self.iterations.entry(*no).or_default().ended = true,
            Record::LogMetrics { upto: None, .. }
            | Record::SetTags { .. }
            | Record::Artifact { .. } => {}
        }
    }

    /// The MLflow run of `target`, once created.
    pub fn run_of(&self, target: Target) -> Option<&RunAck> {
        match target {
            Target::Parent => self.parent.as_ref(),
            Target::Iteration(no) => self.iterations.get(&no).map(|a| &a.run),
        }
        .filter(|r| !r.run_id.is_empty())
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
