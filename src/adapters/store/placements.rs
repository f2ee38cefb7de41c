//! Where iterations ran: one row per stay of an iteration on an engine, in order.

use rusqlite::params;

use super::{PlacementRow, Store, StoreError};
use crate::core::ids::{IterationNo, RunId};

impl Store {
    /// Records that iteration `no` of `run` went to an engine; its stays keep the order they were
    /// recorded in.
    pub fn add_placement(
        &self,
        run: RunId,
        no: IterationNo,
        p: &PlacementRow,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO placements (run_id, iteration, seq, engine, at, reason) \
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM placements \
                 WHERE run_id = ?1 AND iteration = ?2), ?3, ?4, ?5)",
                params![run.0, no.0, p.engine, p.at, p.reason],
            )
            .map_err(self.err(format!("record where iteration {no} of run {run} runs")))?;
        Ok(())
    }

    /// Every stay of every iteration of `run` on an engine, by iteration then in order.
    pub fn placements(&self, run: RunId) -> Result<Vec<(IterationNo, PlacementRow)>, StoreError> {
        let err = self.err(format!("read where the iterations of run {run} ran"));
        let mut stmt = match self.conn.prepare(
            "SELECT iteration, engine, at, reason FROM placements WHERE run_id = ?1 \
             ORDER BY iteration, seq",
        ) {
            Ok(s) => s,
            Err(e) => return Err(err(e)),
        };
        stmt.query_map([run.0], |r| {
            Ok((
                IterationNo(r.get(0)?),
                PlacementRow {
                    engine: r.get(1)?,
                    at: r.get(2)?,
                    reason: r.get(3)?,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::store::{IterationRow, NewRun};

    fn row(engine: &str, at: i64, reason: &str) -> PlacementRow {
        PlacementRow {
            engine: engine.into(),
            at,
            reason: reason.into(),
        }
    }

    #[test]
    fn stays_come_back_by_iteration_in_order_and_go_with_their_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).unwrap();
        let run = store
            .create_run(&NewRun {
                project: "/p",
                commit_id: "abc",
                commit_summary: "s",
                branch: "main",
                trigger: "manual",
            })
            .unwrap();
        for no in [1, 2] {
            let it = IterationRow::new(run, IterationNo(no), Default::default());
            store.upsert_iteration(&it).unwrap();
        }
        let moved = "moved: engine e1 unreachable for 20s; resumes from epoch 3";
        store
            .add_placement(run, IterationNo(2), &row("e1", 5, "first placement"))
            .unwrap();
        store
            .add_placement(run, IterationNo(1), &row("local", 4, "first placement"))
            .unwrap();
        store
            .add_placement(run, IterationNo(2), &row("e2", 30, moved))
            .unwrap();
        let all = store.placements(run).unwrap();
        assert_eq!(
            all,
            [
                (IterationNo(1), row("local", 4, "first placement")),
                (IterationNo(2), row("e1", 5, "first placement")),
                (IterationNo(2), row("e2", 30, moved)),
            ]
        );
    }
}
