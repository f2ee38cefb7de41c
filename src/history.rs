//! Plain-text tables for `mlops-tui history`, readable in a terminal and in a pasted bug report.
//! Times are shown in UTC so that the output does not depend on the machine's time zone.

use std::fmt::Write as _;

use crate::adapters::store::{IterationRow, RunRow, Store, StoreError};
use crate::core::clock::utc_minute;
use crate::core::ids::RunId;
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
    Ok(out)
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
    use crate::adapters::store::{IterStatus, RunStatus};
    use crate::core::ids::IterationNo;
    use crate::core::text::{duration_whole as duration, value_short as value};

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
        store.upsert_iteration(&two).unwrap();
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
        assert!(lines[1].contains("  2  "), "iteration count: {runs}");

        let detail = format_run(&store, run).unwrap();
        for field in [
            "status succeeded: accuracy 0.96 >= 0.95",
            "best iteration 2 (0.96)",
            "below_target",
            "0.8312",
            "3m05s",
            "filters=16 optimizer=adam",
            "target met",
        ] {
            assert!(detail.contains(field), "missing {field:?} in\n{detail}");
        }
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
        assert_eq!(value(-0.00001), "0");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
