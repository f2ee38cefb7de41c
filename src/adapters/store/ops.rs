//! Reads and writes. Each public method is one committed transaction: single statements commit on
//! their own (autocommit), multi-row changes use an explicit transaction.

use rusqlite::{OptionalExtension, Row, params};

use super::types::{edits_from_json, edits_to_json, join_f64, split_f64};
use super::{
    EventRow, INTERRUPTED_REASON, IterationRow, MetricPoint, NewRun, RunRow, Store, StoreError,
    host_name, pid_alive,
};
use crate::core::clock::now_ms;
use crate::core::config::Params;
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::{IterStatus, RunStatus};

const RUN_COLUMNS: &str = "id, project, commit_id, commit_summary, branch, triggered_by, started_at, \
     finished_at, status, reason, best_iteration, owner_pid";

const ITERATION_COLUMNS: &str = "run_id, no, params, status, reason, final_value, \
     final_value_special, container_id, image, started_at, finished_at, proposal_reason, log_tail, \
     workdir, commit_id, edits, model";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: RunId(r.get(0)?),
        project: r.get(1)?,
        commit_id: r.get(2)?,
        commit_summary: r.get(3)?,
        branch: r.get(4)?,
        trigger: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        status: r.get(8)?,
        reason: r.get(9)?,
        best_iteration: r.get::<_, Option<u32>>(10)?.map(IterationNo),
        owner_pid: r.get(11)?,
    })
}

fn iteration_from_row(r: &Row<'_>) -> rusqlite::Result<IterationRow> {
    let params_json: String = r.get(2)?;
    let params: Params = serde_json::from_str(&params_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let special: Option<String> = r.get(6)?;
    Ok(IterationRow {
        run_id: RunId(r.get(0)?),
        no: IterationNo(r.get(1)?),
        params,
        status: r.get(3)?,
        reason: r.get(4)?,
        final_value: join_f64(r.get(5)?, special.as_deref()),
        container_id: r.get(7)?,
        image: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        proposal_reason: r.get(11)?,
        log_tail: r.get(12)?,
        workdir: r.get(13)?,
        commit_id: r.get(14)?,
        edits: edits_from_json(r.get::<_, Option<String>>(15)?.as_deref()),
        model: r.get(16)?,
    })
}

impl Store {
    /// Records a new run as `running`, owned by this process.
    pub fn create_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.create_run_above(run, 0)
    }

    /// Records a new run as `running`, owned by this process, numbered above every run of the
    /// history and above `taken`: the highest number something outside the history already uses (a
    /// run directory, a `refs/mlops/run-N` ref), so that a history started anew never hands out a
    /// number whose directory or refs belong to an older run.
    pub fn create_run_above(&self, run: &NewRun, taken: i64) -> Result<RunId, StoreError> {
        self.check_file()?;
        self.conn
            .execute(
                "INSERT INTO runs (id, project, commit_id, commit_summary, branch, triggered_by, \
                 started_at, status, owner_pid, owner_host) VALUES \
                 (MAX(COALESCE((SELECT MAX(id) FROM runs), 0), ?10) + 1, \
                 ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run.project,
                    run.commit_id,
                    run.commit_summary,
                    run.branch,
                    run.trigger,
                    now_ms(),
                    RunStatus::Running,
                    std::process::id(),
                    host_name(),
                    taken.max(0),
                ],
            )
            .map_err(self.err("record a new run"))?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Sets the run's final status and reason and stamps `finished_at`.
    pub fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1",
                params![id.0, status, reason, now_ms()],
            )
            .map_err(self.err(format!("finish run {id}")))?;
        self.expect_run(n, id)
    }

    pub fn set_best(&self, id: RunId, no: IterationNo) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET best_iteration = ?2 WHERE id = ?1",
                params![id.0, no.0],
            )
            .map_err(self.err(format!("set the best iteration of run {id}")))?;
        self.expect_run(n, id)
    }

    /// Inserts the iteration, or replaces every column of an existing one. Updates in place rather than
    /// `INSERT OR REPLACE`, which would delete the row first. The run must exist.
    pub fn upsert_iteration(&self, row: &IterationRow) -> Result<(), StoreError> {
        let action = || format!("record iteration {} of run {}", row.no, row.run_id);
        let params_json = serde_json::to_string(&row.params).map_err(|e| {
            self.err(action())(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        })?;
        let (value, special) = split_f64(row.final_value);
        self.conn
            .execute(
                &format!(
                    "INSERT INTO iterations ({ITERATION_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
                     ON CONFLICT (run_id, no) DO UPDATE SET params = excluded.params, \
                     status = excluded.status, reason = excluded.reason, \
                     final_value = excluded.final_value, \
                     final_value_special = excluded.final_value_special, \
                     container_id = excluded.container_id, image = excluded.image, \
                     started_at = excluded.started_at, finished_at = excluded.finished_at, \
                     proposal_reason = excluded.proposal_reason, log_tail = excluded.log_tail, \
                     workdir = excluded.workdir, commit_id = excluded.commit_id, \
                     edits = excluded.edits, model = excluded.model"
                ),
                params![
                    row.run_id.0,
                    row.no.0,
                    params_json,
                    row.status,
                    row.reason,
                    value,
                    special,
                    row.container_id,
                    row.image,
                    row.started_at,
                    row.finished_at,
                    row.proposal_reason,
                    row.log_tail,
                    row.workdir,
                    row.commit_id,
                    edits_to_json(&row.edits),
                    row.model,
                ],
            )
            .map_err(self.err(action()))?;
        Ok(())
    }

    /// Sets status and reason (`None` clears the reason). Also stamps `started_at` when the iteration
    /// enters `building`/`running` and `finished_at` when it reaches a final status, unless already set.
    pub fn set_iteration_status(
        &self,
        run: RunId,
        no: IterationNo,
        status: IterStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let starts = matches!(status, IterStatus::Building | IterStatus::Running);
        let n = self
            .conn
            .execute(
                "UPDATE iterations SET status = ?3, reason = ?4, \
                 started_at = CASE WHEN ?5 THEN COALESCE(started_at, ?7) ELSE started_at END, \
                 finished_at = CASE WHEN ?6 THEN COALESCE(finished_at, ?7) ELSE finished_at END \
                 WHERE run_id = ?1 AND no = ?2",
                params![run.0, no.0, status, reason, starts, status.is_final(), now],
            )
            .map_err(self.err(format!("set the status of iteration {no} of run {run}")))?;
        if n == 0 {
            return Err(StoreError::NoSuchIteration {
                path: self.path.clone(),
                run,
                no,
            });
        }
        Ok(())
    }

    /// Appends a point after the iteration's previous ones. The run must exist; the iteration row need
    /// not (points may arrive before the engine records the iteration).
    pub fn add_metric_point(
        &self,
        run: RunId,
        no: IterationNo,
        p: &MetricPoint,
    ) -> Result<(), StoreError> {
        let (value, special) = split_f64(Some(p.value));
        // A revived script reports again the epoch it died in: the newer value replaces the older, so
        // the series has no duplicated epoch. Both statements run in one transaction.
        let tx = self.conn.unchecked_transaction().map_err(self.err(format!(
            "record a metric point of iteration {no} of run {run}"
        )))?;
        if let Some(epoch) = p.epoch {
            tx.execute(
                "DELETE FROM metric_points WHERE run_id = ?1 AND iteration = ?2 AND epoch = ?3",
                params![run.0, no.0, epoch],
            )
            .map_err(self.err(format!(
                "replace epoch {epoch} of iteration {no} of run {run}"
            )))?;
        }
        tx.execute(
            "INSERT INTO metric_points (run_id, iteration, seq, epoch, value, value_special, at) \
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM metric_points \
                 WHERE run_id = ?1 AND iteration = ?2), ?3, ?4, ?5, ?6)",
            params![run.0, no.0, p.epoch, value, special, p.at],
        )
        .map_err(self.err(format!(
            "record a metric point of iteration {no} of run {run}"
        )))?;
        tx.commit().map_err(self.err(format!(
            "record a metric point of iteration {no} of run {run}"
        )))?;
        Ok(())
    }

    /// Records an event, stamped now. Events of no run (`run = None`) are tool-wide.
    pub fn add_event(
        &self,
        run: Option<RunId>,
        no: Option<IterationNo>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO events (run_id, iteration, at, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run.map(|r| r.0), no.map(|n| n.0), now_ms(), kind, message],
            )
            .map_err(self.err(format!("record a {kind} event")))?;
        Ok(())
    }

    /// The `limit` most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let err = self.err("list runs");
        let mut stmt = match self.conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
        )) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map([limit], run_from_row)
            .and_then(|rows| rows.collect())
            .map_err(err)
    }

    pub fn run(&self, id: RunId) -> Result<Option<RunRow>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id.0],
                run_from_row,
            )
            .optional()
            .map_err(self.err(format!("read run {id}")))
    }

    /// The newest run of `project` on each branch that ran to its own end (succeeded, spent its
    /// budget or failed; see [`RunStatus::ran_to_end`]): what a restarted watcher compares the branch's
    /// head with, so that opening the console does not train a commit again.
    pub fn last_finished_runs(&self, project: &str) -> Result<Vec<RunRow>, StoreError> {
        let err = self.err("look for the last finished runs");
        let mut stmt = match self.conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id IN (SELECT MAX(id) FROM runs \
             WHERE project = ?1 AND status IN (?2, ?3, ?4) GROUP BY branch) ORDER BY id DESC"
        )) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map(
            params![
                project,
                RunStatus::Succeeded,
                RunStatus::BudgetSpent,
                RunStatus::Failed
            ],
            run_from_row,
        )
        .and_then(|rows| rows.collect())
        .map_err(err)
    }

    /// The runs of `project` on `branch` that trained another commit than `commit` to their own end,
    /// newest first, at most `limit`: what a run on a new commit starts warm from.
    pub fn earlier_runs(
        &self,
        project: &str,
        branch: &str,
        commit: &str,
        limit: usize,
    ) -> Result<Vec<RunRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let err = self.err("look for earlier runs of the branch");
        let mut stmt = match self.conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE project = ?1 AND branch = ?2 AND commit_id <> ?3 \
             AND status IN (?4, ?5, ?6) ORDER BY id DESC LIMIT ?7"
        )) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map(
            params![
                project,
                branch,
                commit,
                RunStatus::Succeeded,
                RunStatus::BudgetSpent,
                RunStatus::Failed,
                limit
            ],
            run_from_row,
        )
        .and_then(|rows| rows.collect())
        .map_err(err)
    }

    /// The run's iterations, by number.
    pub fn iterations(&self, run: RunId) -> Result<Vec<IterationRow>, StoreError> {
        let err = self.err(format!("read the iterations of run {run}"));
        let mut stmt = match self.conn.prepare(&format!(
            "SELECT {ITERATION_COLUMNS} FROM iterations WHERE run_id = ?1 ORDER BY no"
        )) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map([run.0], iteration_from_row)
            .and_then(|rows| rows.collect())
            .map_err(err)
    }

    /// The iteration's metric points, in the order they were added.
    pub fn metric_points(
        &self,
        run: RunId,
        no: IterationNo,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        let err = self.err(format!("read the metric of iteration {no} of run {run}"));
        let mut stmt = match self.conn.prepare(
            "SELECT epoch, value, value_special, at FROM metric_points \
             WHERE run_id = ?1 AND iteration = ?2 ORDER BY seq",
        ) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map(params![run.0, no.0], |r| {
            let special: Option<String> = r.get(2)?;
            Ok(MetricPoint {
                epoch: r.get(0)?,
                value: join_f64(r.get(1)?, special.as_deref()).unwrap_or(f64::NAN),
                at: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(err)
    }

    /// The run's events as `(at, iteration, kind, message)`, in the order they were recorded.
    pub fn events(&self, run: RunId) -> Result<Vec<EventRow>, StoreError> {
        let err = self.err(format!("read the events of run {run}"));
        let mut stmt = match self.conn.prepare(
            "SELECT at, iteration, kind, message FROM events WHERE run_id = ?1 ORDER BY id",
        ) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map([run.0], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<u32>>(1)?.map(IterationNo),
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)
    }

    /// Marks runs left `running` by a process that no longer exists as `interrupted`, and their
    /// unfinished iterations as `stopped`, each run in one transaction. Runs owned by a live process,
    /// or by another host (whose pids cannot be checked from here), are left alone. Returns the ids of
    /// the runs marked.
    pub fn recover_interrupted(&self) -> Result<Vec<RunId>, StoreError> {
        let me = host_name();
        let err = self.err("look for interrupted runs");
        let mut stmt = match self
            .conn
            .prepare("SELECT id, owner_pid, owner_host FROM runs WHERE status = ?1 ORDER BY id")
        {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        let candidates: Vec<(i64, Option<u32>, Option<String>)> = stmt
            .query_map([RunStatus::Running], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(err)?;
        let mut recovered = Vec::new();
        for (id, pid, host) in candidates {
            let id = RunId(id);
            let other_host = matches!((&host, &me), (Some(h), Some(m)) if h != m);
            if other_host || pid.is_some_and(pid_alive) {
                continue;
            }
            self.mark_interrupted(id)?;
            tracing::info!(run = %id, ?pid, "marked a run orphaned by a stopped mlops-tui as interrupted");
            recovered.push(id);
        }
        Ok(recovered)
    }

    /// Runs of `project` left `running` by a process that is gone from this host, newest first: the
    /// candidates a restarted mlops-tui adopts.
    pub fn orphaned_runs(&self, project: &str) -> Result<Vec<RunId>, StoreError> {
        let me = host_name();
        let mut stmt = self
            .conn
            .prepare("SELECT id, owner_pid, owner_host FROM runs WHERE status = ?1 AND project = ?2 ORDER BY id DESC")
            .map_err(self.err("look for orphaned runs"))?;
        let err = self.err("look for orphaned runs");
        let rows: Vec<(i64, Option<u32>, Option<String>)> = stmt
            .query_map(params![RunStatus::Running, project], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .filter(|(_, pid, host)| {
                let other_host = matches!((host, &me), (Some(h), Some(m)) if h != m);
                !other_host && !pid.is_some_and(pid_alive)
            })
            .map(|(id, _, _)| RunId(id))
            .collect())
    }

    /// Makes this process the owner of `id` (after adopting it).
    pub fn claim_run(&self, id: RunId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET owner_pid = ?2, owner_host = ?3 WHERE id = ?1",
                params![id.0, std::process::id(), host_name()],
            )
            .map_err(self.err(format!("claim run {id}")))?;
        Ok(())
    }

    /// Marks one run (and its unfinished iterations) interrupted.
    pub fn interrupt_run(&self, id: RunId) -> Result<(), StoreError> {
        self.mark_interrupted(id)
    }

    fn mark_interrupted(&self, id: RunId) -> Result<(), StoreError> {
        let err = || self.err(format!("mark run {id} as interrupted"));
        let now = now_ms();
        let tx = self.conn.unchecked_transaction().map_err(err())?;
        // Re-checked inside the transaction: the run may have finished since it was listed.
        let n = tx
            .execute(
                "UPDATE runs SET status = ?2, reason = ?3, finished_at = COALESCE(finished_at, ?4) \
                 WHERE id = ?1 AND status = ?5",
                params![
                    id.0,
                    RunStatus::Interrupted,
                    INTERRUPTED_REASON,
                    now,
                    RunStatus::Running
                ],
            )
            .map_err(err())?;
        if n > 0 {
            tx.execute(
                "UPDATE iterations SET status = ?2, reason = ?3, \
                 finished_at = COALESCE(finished_at, ?4) \
                 WHERE run_id = ?1 AND status IN (?5, ?6, ?7, ?8)",
                params![
                    id.0,
                    IterStatus::Stopped,
                    INTERRUPTED_REASON,
                    now,
                    IterStatus::Pending,
                    IterStatus::AwaitingApproval,
                    IterStatus::Building,
                    IterStatus::Running,
                ],
            )
            .map_err(err())?;
        }
        tx.commit().map_err(err())
    }

    fn expect_run(&self, changed: usize, run: RunId) -> Result<(), StoreError> {
        if changed == 0 {
            return Err(StoreError::NoSuchRun {
                path: self.path.clone(),
                run,
            });
        }
        Ok(())
    }
}
