//! `history`, `history --recover` and `export`: reading and mending the runs kept in the history.

use super::CliError;
use crate::adapters::store::Store;
use crate::core::text::escaped_lines;
use crate::support::paths::Paths;

/// `export RUN [--branch NAME]`: the best iteration's commit as a branch.
pub(super) fn export_cmd(paths: &Paths, run: i64, branch: Option<String>) -> Result<i32, CliError> {
    let store = Store::open(&paths.db())?;
    let made = crate::history::export_run(&store, crate::core::ids::RunId(run), branch)
        .map_err(CliError::Message)?;
    print!("{}", escaped_lines(&made.text));
    Ok(0)
}

/// `history [RUN]`: the runs table, or one run's iterations.
pub(super) fn history_cmd(paths: &Paths, run: Option<i64>, limit: usize) -> Result<i32, CliError> {
    let store = Store::open(&paths.db())?;
    let text = match run {
        Some(id) => crate::history::format_run(&store, crate::core::ids::RunId(id))?,
        None => crate::history::format_runs(&store, limit)?,
    };
    print!("{}", escaped_lines(&text));
    Ok(0)
}

/// `history --recover`: only a damaged history is touched; a sound one is left as it is.
pub(super) fn recover_cmd(paths: &Paths) -> Result<i32, CliError> {
    let db = paths.db();
    if !db.exists() {
        println!(
            "{}: no history database here; nothing to recover",
            db.display()
        );
        return Ok(0);
    }
    match Store::open(&db) {
        Ok(_) => {
            println!(
                "{}: the history database is sound; nothing to recover",
                db.display()
            );
            return Ok(0);
        }
        Err(crate::adapters::store::StoreError::Damaged { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let report = crate::adapters::store::recover(&db)?;
    print!("{}", recovery_text(&report));
    Ok(0)
}

/// What a recovery saved and lost, for people.
pub(super) fn recovery_text(r: &crate::adapters::store::Recovery) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "damaged history kept as {}", r.damaged.display());
    let _ = writeln!(out, "fresh history at {}", r.fresh.display());
    let _ = writeln!(
        out,
        "saved: {} runs whole, {} runs in part or not at all",
        r.runs_saved.len(),
        r.runs_lost.len()
    );
    for t in &r.tables {
        let _ = writeln!(out, "  {}: {} rows copied", t.table, t.rows);
    }
    if !r.runs_lost.is_empty() {
        let lost: Vec<String> = r.runs_lost.iter().map(|id| id.to_string()).collect();
        let _ = writeln!(out, "lost (in part or whole): runs {}", lost.join(", "));
    }
    for p in &r.problems {
        let _ = writeln!(out, "unreadable: {p}");
    }
    out
}
