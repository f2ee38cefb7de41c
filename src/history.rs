//! Plain-text tables for `mlops-tui history`, readable in a terminal and in a pasted bug report.
//! Times are shown in UTC so that the output does not depend on the machine's time zone.

use std::fmt::Write as _;

use crate::adapters::store::{IterationRow, PlacementRow, RunRow, Store, StoreError};
use crate::core::clock::utc_minute;
use crate::core::ids::{IterationNo, RunId};
use crate::core::text;

/// Runs, newest first: id, start time, short commit, status, best metric value, iteration count.
pub fn format_runs(store: &Store, limit: usize) -> Result<String, StoreError> {
    let runs = store.runs(limit)?;
    if runs.is_empty() {
        return Ok(format!(
            "no runs recorded yet in {}\n",
            store.path().display()
        ));
    }
    let mut rows = vec![cells(&[
        "RUN",
        "STARTED (UTC)",
        "COMMIT",
        "BRANCH",
        "STATUS",
        "BEST",
        "ITERS",
        "SUMMARY",
    ])];
    for run in &runs {
        let iterations = store.iterations(run.id)?;
        rows.push(vec![
            run.id.to_string(),
            utc_minute(run.started_at),
            short_commit(&run.commit_id).to_string(),
            run.branch.clone(),
            run.status.to_string(),
            best_value(run, &iterations),
            iterations.len().to_string(),
            truncate(&run.commit_summary, 50),
        ]);
    }
    Ok(table(&rows))
}

/// One run: a header describing it, then its iterations (number, status, metric, duration,
/// parameters, reason).
pub fn format_run(store: &Store, id: RunId) -> Result<String, StoreError> {
    let Some(run) = store.run(id)? else {
        return Err(StoreError::NoSuchRun {
            path: store.path().to_path_buf(),
            run: id,
        });
    };
    let iterations = store.iterations(id)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} of {}: commit {} \"{}\" on {} (trigger: {})",
        run.id,
        run.project,
        short_commit(&run.commit_id),
        run.commit_summary,
        run.branch,
        run.trigger
    );
    let finished = run
        .finished_at
        .map(|f| format!(", finished {}", utc_minute(f)))
        .unwrap_or_default();
    let _ = writeln!(out, "started {}{finished}", utc_minute(run.started_at));
    let reason = run
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let _ = writeln!(out, "status {}{reason}", run.status);
    if let Some(best) = run.best_iteration {
        let _ = writeln!(
            out,
            "best iteration {best} ({})",
            best_value(&run, &iterations)
        );
    }
    out.push('\n');
    if iterations.is_empty() {
        out.push_str("no iterations\n");
        return Ok(out);
    }
    let mut rows = vec![cells(&[
        "NO", "STATUS", "METRIC", "DURATION", "PARAMS", "REASON",
    ])];
    for it in &iterations {
        rows.push(vec![
            it.no.to_string(),
            it.status.to_string(),
            it.final_value
                .map(text::value_short)
                .unwrap_or_else(|| "-".into()),
            match (it.started_at, it.finished_at) {
                (Some(s), Some(f)) => text::duration_whole(f - s),
                _ => "-".into(),
            },
            text::params_spaced(&it.params),
            it.reason.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str(&proposals(&iterations));
    out.push_str(&placements(&store.placements(id)?));
    out.push_str(&trained(run.id, &iterations));
    Ok(out)
}

/// Where each iteration ran and why it went there, one line per iteration: `e1 (first placement) →
/// e2 (moved: engine e1 unreachable for 20s; resumes from epoch 3)`. Empty when nothing was placed
/// (a history written before engines were recorded).
fn placements(stays: &[(IterationNo, PlacementRow)]) -> String {
    if stays.is_empty() {
        return String::new();
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut last: Option<IterationNo> = None;
    for (no, p) in stays {
        let stay = format!("{} ({})", p.engine, p.reason);
        match rows.last_mut() {
            Some(row) if last == Some(*no) => {
                row[1] = format!("{} → {stay}", row[1]);
            }
            _ => rows.push(vec![format!("  {no}"), stay]),
        }
        last = Some(*no);
    }
    format!("\nengines\n{}", table(&rows))
}

/// Why each iteration's parameters were tried, in the strategy's words: one line per iteration.
fn proposals(iterations: &[IterationRow]) -> String {
    let mut out = String::from(
        "
proposals
",
    );
    let mut rows = Vec::new();
    for it in iterations {
        let why = match (&it.proposal_reason, it.no.0) {
            (Some(r), _) => r.clone(),
            (None, 1) => "starting parameters".into(),
            (None, _) => "-".into(),
        };
        rows.push(vec![format!("  {}", it.no), why]);
    }
    out.push_str(&table(&rows));
    out
}

/// What each iteration trained and left, for those that say more than their parameters: the commit
/// (and the ref that keeps it), the model file, the source lines its parameters changed.
fn trained(run: RunId, iterations: &[IterationRow]) -> String {
    let mut out = String::new();
    for it in iterations {
        // A notebook's run keeps the executed notebook in the iteration's directory.
        let notebook = it
            .workdir
            .as_deref()
            .and_then(|w| crate::engine::workers::notebook::executed(std::path::Path::new(w)));
        if it.commit_id.is_none() && it.edits.is_empty() && it.model.is_none() && notebook.is_none()
        {
            continue;
        }
        let mut head = format!("\niteration {}", it.no);
        if let Some(c) = &it.commit_id {
            let refname = crate::adapters::git::iteration_ref(run.0, it.no.0);
            head.push_str(&format!(": commit {} ({refname})", short_commit(c)));
        }
        if let Some(m) = &it.model {
            head.push_str(&format!(", model {m}"));
        }
        if let Some(nb) = &notebook {
            head.push_str(&format!(", executed notebook {}", nb.display()));
        }
        let _ = writeln!(out, "{head}");
        for e in &it.edits {
            let _ = writeln!(out, "  {}", text::source_edit(e));
        }
    }
    out
}

/// What `export` made, for people: the branch, where it points, and how to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub branch: String,
    pub commit: String,
    pub text: String,
}

/// `mlops-tui export RUN [--branch NAME]`: a branch (default `mlops/run-N-best`) at the commit the
/// run's best iteration trained, in the repository that holds its `refs/mlops` (the project's, or
/// the mirror's when watching a remote). An existing branch is never moved.
pub fn export_run(store: &Store, id: RunId, branch: Option<String>) -> Result<Exported, String> {
    let run = store
        .run(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run {id} in {}", store.path().display()))?;
    let best = run.best_iteration.ok_or_else(|| {
        format!("run {id} has no best iteration (no iteration reported a value): nothing to export")
    })?;
    let iterations = store.iterations(id).map_err(|e| e.to_string())?;
    let it = iterations.iter().find(|i| i.no == best);
    let project = crate::adapters::git::Project::locate(std::path::Path::new(&run.project))
        .map_err(|e| e.to_string())?;
    let refname = crate::adapters::git::iteration_ref(id.0, best.0);
    let stored = it.and_then(|i| i.commit_id.clone());
    let at_ref = project.ref_target(&refname).map_err(|e| e.to_string())?;
    let (commit, note) = export_commit(&project, (id, best), &refname, at_ref, stored)?;
    let name = branch.unwrap_or_else(|| format!("mlops/run-{id}-best"));
    project
        .branch_at(&name, &commit)
        .map_err(|e| e.to_string())?;
    let mut out = note.map(|n| format!("note: {n}\n")).unwrap_or_default();
    let _ = write!(
        out,
        "created branch {name} at {} (run {id}, iteration {best}",
        short_commit(&commit)
    );
    if let Some(it) = it {
        let value = it.final_value.map(text::value_short).unwrap_or_default();
        let _ = write!(out, ": {} → {value}", text::params(&it.params));
    }
    out.push_str(")\n");
    for e in it.map(|i| i.edits.as_slice()).unwrap_or_default() {
        let _ = writeln!(out, "  {}", text::source_edit(e));
    }
    let _ = writeln!(
        out,
        "  git diff {} {name}    # what the tweaks changed\n  git merge {name}    # take them into your branch",
        short_commit(&run.commit_id)
    );
    Ok(Exported {
        branch: name,
        commit,
        text: out,
    })
}

/// The commit to branch at, and a note when it is not what the ref says. The history's record of
/// what the iteration trained wins over its ref: a ref can be overwritten (another history that
/// numbered its runs from 1 again, a hand-made `git update-ref`) or deleted, the record cannot. So
/// a ref that disagrees is reported and the recorded commit used, as when the ref is missing; a
/// commit that is not in the repository is refused with the ref and the way out named.
fn export_commit(
    project: &crate::adapters::git::Project,
    (run, no): (RunId, IterationNo),
    refname: &str,
    at_ref: Option<String>,
    stored: Option<String>,
) -> Result<(String, Option<String>), String> {
    let repo = project
        .repo_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| project.dir.display().to_string());
    let has = |c: &str| project.has_commit(c).map_err(|e| e.to_string());
    let missing = |c: &str, whose: String| {
        format!(
            "{whose} {c}, which is not in the repository {repo} (pruned, or the repository was \
             replaced by another clone): nothing to export. Fetch it back from a clone that has it \
             (git fetch <that clone> {c}), or remove the dangling ref (git update-ref -d {refname})"
        )
    };
    match (at_ref, stored) {
        (Some(r), Some(s)) if r != s => {
            if !has(&s)? {
                return Err(format!(
                    "{refname} points at {r}, but the history says run {run} iteration {no} trained \
                     {s}, which is not in the repository {repo}; refusing to export a commit that \
                     was not trained. Fetch {s} back from a clone that has it (git fetch <that \
                     clone> {s}) and run export again"
                ));
            }
            let note = format!(
                "{refname} points at {}, not at {} that the history says run {run} iteration {no} \
                 trained (the ref was overwritten); the branch is made at the trained commit {}. \
                 To put the ref back: git update-ref {refname} {s}",
                short_commit(&r),
                short_commit(&s),
                short_commit(&s)
            );
            Ok((s, Some(note)))
        }
        (Some(r), _) if !has(&r)? => Err(missing(&r, format!("{refname} points at"))),
        (Some(r), _) => Ok((r, None)),
        (None, Some(s)) if !has(&s)? => Err(missing(
            &s,
            format!("{refname} is missing and the history says run {run} iteration {no} trained"),
        )),
        (None, Some(s)) => Ok((s, None)),
        (None, None) => Err(format!(
            "run {run} iteration {no} has no commit ({refname} is missing): it was trained before \
             iterations were kept as commits"
        )),
    }
}

fn cells(headers: &[&str]) -> Vec<String> {
    headers.iter().map(|h| h.to_string()).collect()
}

/// Left-aligned columns two spaces apart; the last column is not padded, so long reasons just run on.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn best_value(run: &RunRow, iterations: &[IterationRow]) -> String {
    run.best_iteration
        .and_then(|b| iterations.iter().find(|i| i.no == b))
        .and_then(|i| i.final_value)
        .map(text::value_short)
        .unwrap_or_else(|| "-".into())
}

fn short_commit(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn truncate(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::store::fixtures::{new_run, open_temp, params};
    use crate::core::ids::IterationNo;
    use crate::core::model::{IterStatus, RunStatus};
    use crate::core::text::{duration_whole as duration, value_short as value};

    #[test]
    fn a_run_shows_each_iterations_commit_model_and_source_edits() {
        let (_dir, store) = open_temp();
        let run = store.create_run(&new_run()).unwrap();
        let mut one = IterationRow::new(run, IterationNo(1), params(8));
        one.commit_id = Some("0123456789abcdef".repeat(2));
        one.model = Some("/runs/1/iter-1/workspace/mymodel.pkl".into());
        one.edits = vec![crate::core::knobs::SourceEdit {
            file: "train.py".into(),
            line: 64,
            old: "    clf = svm.SVC(gamma=0.001)".into(),
            new: "    clf = svm.SVC(gamma=0.01)".into(),
        }];
        store.upsert_iteration(&one).unwrap();
        let back = store.iterations(run).unwrap();
        assert_eq!(back[0].edits, one.edits, "the edits survive the store");
        let text = format_run(&store, run).unwrap();
        assert!(
            text.contains(&format!(
                "iteration 1: commit 01234567 (refs/mlops/run-{run}/iter-1), model \
                 /runs/1/iter-1/workspace/mymodel.pkl\n  train.py:64  − clf = svm.SVC(gamma=0.001)  \
                 + clf = svm.SVC(gamma=0.01)\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn a_run_shows_where_each_iteration_ran_and_why_it_moved() {
        let (_dir, store) = open_temp();
        let run = store.create_run(&new_run()).unwrap();
        for no in [1, 2] {
            let it = IterationRow::new(run, IterationNo(no), params(8));
            store.upsert_iteration(&it).unwrap();
        }
        let stay = |engine: &str, reason: &str| PlacementRow {
            engine: engine.into(),
            at: 0,
            reason: reason.into(),
        };
        let moved = "moved: engine e1 unreachable for 20s; resumes from epoch 3";
        store
            .add_placement(run, IterationNo(1), &stay("local", "first placement"))
            .unwrap();
        store
            .add_placement(run, IterationNo(2), &stay("e1", "first placement"))
            .unwrap();
        store
            .add_placement(run, IterationNo(2), &stay("e2", moved))
            .unwrap();
        let text = format_run(&store, run).unwrap();
        assert!(
            text.contains(&format!(
                "engines\n  1  local (first placement)\n  2  e1 (first placement) → e2 ({moved})\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn history_tables() {
        let (_dir, store) = open_temp();
        assert!(
            format_runs(&store, 10)
                .unwrap()
                .starts_with("no runs recorded yet")
        );
        let run = store.create_run(&new_run()).unwrap();
        let mut one = IterationRow::new(run, IterationNo(1), params(8));
        one.status = IterStatus::BelowTarget;
        one.final_value = Some(0.8312);
        one.started_at = Some(0);
        one.finished_at = Some(185_000);
        store.upsert_iteration(&one).unwrap();
        let mut two = IterationRow::new(run, IterationNo(2), params(16));
        two.status = IterStatus::Succeeded;
        two.final_value = Some(0.96);
        two.reason = Some("target met".into());
        two.proposal_reason = Some("TPE: 1 observation; expected 0.9".into());
        store.upsert_iteration(&two).unwrap();
        let mut three = IterationRow::new(run, IterationNo(3), params(4));
        three.status = IterStatus::Pruned;
        three.final_value = Some(0.71);
        three.reason = Some("pruned at epoch 3: 0.71 < median 0.84 at epoch 3".into());
        three.proposal_reason = Some("random (seed 0): 2 of 9 points tried".into());
        store.upsert_iteration(&three).unwrap();
        store.set_best(run, IterationNo(2)).unwrap();
        store
            .finish_run(run, RunStatus::Succeeded, Some("accuracy 0.96 >= 0.95"))
            .unwrap();

        let runs = format_runs(&store, 10).unwrap();
        let lines: Vec<&str> = runs.lines().collect();
        assert_eq!(lines.len(), 2, "{runs}");
        for field in ["RUN", "STARTED (UTC)", "COMMIT", "STATUS", "BEST", "ITERS"] {
            assert!(lines[0].contains(field), "{runs}");
        }
        for field in ["01234567", "succeeded", "0.96", "main", "bigger model"] {
            assert!(lines[1].contains(field), "{runs}");
        }
        assert!(lines[1].starts_with(&format!("{run} ")), "{runs}");
        assert!(lines[1].contains("  3  "), "iteration count: {runs}");

        let detail = format_run(&store, run).unwrap();
        for field in [
            "status succeeded: accuracy 0.96 >= 0.95",
            "best iteration 2 (0.96)",
            "below_target",
            "0.8312",
            "3m05s",
            "filters=16 optimizer=adam",
            "target met",
            "pruned at epoch 3: 0.71 < median 0.84 at epoch 3",
        ] {
            assert!(detail.contains(field), "missing {field:?} in\n{detail}");
        }
        let row = |no: &str| {
            detail
                .lines()
                .find(|l| l.starts_with(no))
                .unwrap_or_default()
                .to_string()
        };
        assert!(row("3 ").contains("pruned"), "{detail}");
        let proposals = detail.split("\nproposals\n").nth(1).unwrap_or_default();
        let lines: Vec<&str> = proposals.lines().take(3).collect();
        assert_eq!(
            lines,
            vec![
                "  1  starting parameters",
                "  2  TPE: 1 observation; expected 0.9",
                "  3  random (seed 0): 2 of 9 points tried",
            ],
            "{detail}"
        );
        assert!(matches!(
            format_run(&store, RunId(77)),
            Err(StoreError::NoSuchRun { .. })
        ));
    }

    #[test]
    fn dates_and_durations() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        // 2026-11-23 04:12:30 UTC
        assert_eq!(utc_minute(1_795_407_150_000), "2026-11-23 04:12");
        assert_eq!(utc_minute(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(3_720_000), "1h02m");
        assert_eq!(value(0.95), "0.95");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(-0.00001), "-1e-5");
        assert_eq!(value(1e308), "1e308");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
