//! Per-row outcomes of the jobs that write (load, tag): one row per input row, keyed by its
//! file and row number, so a resumed run skips what was settled and every input row lands in
//! exactly one report line. And `id_map`: a migration's source contact id → target contact
//! id per target location, so a later run with only tasks or notes still finds their contact.
//!
//! A create that is not idempotent is recorded as `Sending` (with its fingerprint) *before*
//! the request goes out, and settled after; a row found `Sending` on a rerun may have acted,
//! and is checked against the target before it is sent again.

use rusqlite::{params, OptionalExtension};

use super::{now, Result, StateDb};

/// Where an input row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// A non-idempotent write was (maybe) sent; its outcome is unknown.
    Sending,
    Created,
    Updated,
    Deleted,
    /// Nothing to change (e.g. a tag already there).
    Unchanged,
    Failed,
    /// Failed here, then written by a later load of the fixed row (a `failed.csv` fed back).
    Fixed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Sending => "sending",
            RowStatus::Created => "created",
            RowStatus::Updated => "updated",
            RowStatus::Deleted => "deleted",
            RowStatus::Unchanged => "unchanged",
            RowStatus::Failed => "failed",
            RowStatus::Fixed => "fixed",
        }
    }

    fn parse(s: &str) -> RowStatus {
        match s {
            "created" => RowStatus::Created,
            "updated" => RowStatus::Updated,
            "deleted" => RowStatus::Deleted,
            "unchanged" => RowStatus::Unchanged,
            "failed" => RowStatus::Failed,
            "fixed" => RowStatus::Fixed,
            _ => RowStatus::Sending,
        }
    }

    /// Settled: a rerun leaves the row alone.
    pub fn is_final(self) -> bool {
        self != RowStatus::Sending
    }
}

/// What happened to one input row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRecord {
    /// `contacts`, `tasks`, `notes`, `tags`, ...
    pub table: String,
    pub file: String,
    pub row: u64,
    pub status: RowStatus,
    /// What identifies the record to people: a source id, an email, a phone.
    pub key: String,
    pub target_id: Option<String>,
    /// For creates: what identifies the record in the target if its answer is lost.
    pub fingerprint: Option<String>,
    /// Why it failed.
    pub detail: Option<String>,
    /// The input row's own columns (JSON object text), for the failed report.
    pub raw: Option<String>,
}

impl StateDb {
    /// Record (or replace) a row's outcome; durable when this returns.
    pub fn record_row(&mut self, job: &str, o: &RowRecord) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO row_outcomes (job, tbl, file, row, status, key, target_id, fingerprint, detail, raw, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (job, tbl, file, row) DO UPDATE SET status = ?5, key = ?6, target_id = ?7,
               fingerprint = ?8, detail = ?9, raw = ?10, updated_at = ?11",
            params![
                job,
                o.table,
                o.file,
                o.row,
                o.status.as_str(),
                o.key,
                o.target_id,
                o.fingerprint,
                o.detail,
                o.raw,
                now()
            ],
        );
        self.sql(r).map(|_| ())
    }

    /// Record many rows' outcomes in one transaction: one disk sync for a chunk, not one a
    /// row. All or none are durable when this returns.
    pub fn record_rows(&mut self, job: &str, rows: &[RowRecord]) -> Result<()> {
        let r = self.conn.execute_batch("BEGIN IMMEDIATE");
        self.sql(r)?;
        for o in rows {
            if let Err(e) = self.record_row(job, o) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        let r = self.conn.execute_batch("COMMIT");
        self.sql(r)
    }

    /// Forget a row's outcome: an intent recorded before a request that was refused before it
    /// could act (a 429, a spent budget), so that a rerun sends it as new.
    pub fn forget_row(&mut self, job: &str, table: &str, file: &str, row: u64) -> Result<()> {
        let r = self.conn.execute(
            "DELETE FROM row_outcomes WHERE job = ?1 AND tbl = ?2 AND file = ?3 AND row = ?4",
            params![job, table, file, row],
        );
        self.sql(r).map(|_| ())
    }

    /// A row's recorded outcome, if any.
    pub fn row(&self, job: &str, table: &str, file: &str, row: u64) -> Result<Option<RowRecord>> {
        let r = self
            .conn
            .query_row(
                "SELECT tbl, file, row, status, key, target_id, fingerprint, detail, raw
                 FROM row_outcomes WHERE job = ?1 AND tbl = ?2 AND file = ?3 AND row = ?4",
                params![job, table, file, row],
                read_outcome,
            )
            .optional();
        self.sql(r)
    }

    /// When a row's outcome was last recorded, in epoch ms: for a row left `sending`, when
    /// its request went out (or just before).
    pub fn row_recorded_ms(
        &self,
        job: &str,
        table: &str,
        file: &str,
        row: u64,
    ) -> Result<Option<i64>> {
        let r = self
            .conn
            .query_row(
                "SELECT updated_at FROM row_outcomes
                 WHERE job = ?1 AND tbl = ?2 AND file = ?3 AND row = ?4",
                params![job, table, file, row],
                |r| r.get::<_, String>(0),
            )
            .optional();
        let at = self.sql(r)?;
        Ok(at
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_millis()))
    }

    /// Every recorded row of a job (of one table, when given), in table, file and row order,
    /// handed to `f` one at a time, so memory stays flat however many rows a job has. Stops at
    /// the first error `f` answers, and answers it as the inner result.
    pub fn for_each_row<E>(
        &self,
        job: &str,
        table: Option<&str>,
        mut f: impl FnMut(RowRecord) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<(), E>> {
        let mut stmt = {
            let r = self.conn.prepare(
                "SELECT tbl, file, row, status, key, target_id, fingerprint, detail, raw
                 FROM row_outcomes WHERE job = ?1 AND (?2 IS NULL OR tbl = ?2)
                 ORDER BY tbl, file, row",
            );
            self.sql(r)?
        };
        let rows = stmt.query_map(params![job, table], read_outcome);
        for row in self.sql(rows)? {
            if let Err(e) = f(self.sql(row)?) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Every recorded row of a job, in table, file and row order.
    pub fn rows(&self, job: &str) -> Result<Vec<RowRecord>> {
        let mut stmt = {
            let r = self.conn.prepare(
                "SELECT tbl, file, row, status, key, target_id, fingerprint, detail, raw
                 FROM row_outcomes WHERE job = ?1 ORDER BY tbl, file, row",
            );
            self.sql(r)?
        };
        let rows = stmt
            .query_map([job], read_outcome)
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
        self.sql(rows)
    }

    /// The target ids of rows of `table` already settled with this fingerprint (created, or
    /// found already there): records in the target that another row must not take for its own.
    pub fn claimed(&self, job: &str, table: &str, fingerprint: &str) -> Result<Vec<String>> {
        let mut stmt = {
            let r = self.conn.prepare(
                "SELECT target_id FROM row_outcomes WHERE job = ?1 AND tbl = ?2
                 AND fingerprint = ?3 AND status IN ('created', 'unchanged')
                 AND target_id IS NOT NULL",
            );
            self.sql(r)?
        };
        let rows = stmt
            .query_map(params![job, table, fingerprint], |r| r.get(0))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>());
        self.sql(rows)
    }

    /// Whether this job created the target contact `target_id` at `since` (a time stamp as
    /// recorded) or later: then every task and note it has came from rows recorded since.
    pub fn created_contact_since(&self, job: &str, target_id: &str, since: &str) -> Result<bool> {
        let r = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM row_outcomes WHERE job = ?1 AND target_id = ?2
             AND tbl = 'contacts' AND status = 'created' AND updated_at >= ?3)",
            params![job, target_id, since],
            |r| r.get(0),
        );
        self.sql(r)
    }

    /// How many distinct target records a job's settled rows reached (a list that names one
    /// contact twice counts it once).
    pub fn distinct_targets(&self, job: &str) -> Result<u64> {
        let r = self.conn.query_row(
            "SELECT COUNT(DISTINCT target_id) FROM row_outcomes WHERE job = ?1
             AND target_id IS NOT NULL AND status NOT IN ('failed', 'sending')",
            [job],
            |r| r.get(0),
        );
        self.sql(r)
    }

    /// A failed row of any job in this database (`table`, its input `file` and `row`, as a
    /// `failed.csv` names them) that a later row wrote after all: settled as fixed, with `by`.
    pub fn mark_fixed(&mut self, table: &str, file: &str, row: u64, by: &str) -> Result<usize> {
        let r = self.conn.execute(
            "UPDATE row_outcomes SET status = 'fixed', detail = ?4, updated_at = ?5
             WHERE tbl = ?1 AND file = ?2 AND row = ?3 AND status = 'failed'",
            params![table, file, row, by, super::now()],
        );
        self.sql(r)
    }

    /// Remember that `source_id` became `target_id` in `location`.
    pub fn map_id(&mut self, location: &str, source_id: &str, target_id: &str) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO id_map (location, source_id, target_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (location, source_id) DO UPDATE SET target_id = ?3",
            params![location, source_id, target_id],
        );
        self.sql(r).map(|_| ())
    }

    /// The target id of a source contact id in `location`.
    pub fn mapped_id(&self, location: &str, source_id: &str) -> Result<Option<String>> {
        let r = self
            .conn
            .query_row(
                "SELECT target_id FROM id_map WHERE location = ?1 AND source_id = ?2",
                params![location, source_id],
                |r| r.get(0),
            )
            .optional();
        self.sql(r)
    }
}

fn read_outcome(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowRecord> {
    let status: String = r.get(3)?;
    Ok(RowRecord {
        table: r.get(0)?,
        file: r.get(1)?,
        row: r.get(2)?,
        status: RowStatus::parse(&status),
        key: r.get(4)?,
        target_id: r.get(5)?,
        fingerprint: r.get(6)?,
        detail: r.get(7)?,
        raw: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::JobStatus;

    #[test]
    fn outcomes_replace_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut o = RowRecord {
            table: "notes".into(),
            file: "notes.csv".into(),
            row: 7,
            status: RowStatus::Sending,
            key: "n1".into(),
            target_id: None,
            fingerprint: Some("abc".into()),
            detail: None,
            raw: Some("{\"body\":\"hi\"}".into()),
        };
        {
            let mut db = StateDb::open(&path).unwrap();
            assert_eq!(db.begin_job("j", "load").unwrap(), JobStatus::New);
            db.record_row("j", &o).unwrap();
            db.map_id("L", "src-1", "tgt-1").unwrap();
        }
        let mut db = StateDb::open(&path).unwrap();
        let got = db.row("j", "notes", "notes.csv", 7).unwrap().unwrap();
        assert_eq!(got, o);
        let at = db
            .row_recorded_ms("j", "notes", "notes.csv", 7)
            .unwrap()
            .unwrap();
        let age = chrono::Utc::now().timestamp_millis() - at;
        assert!((0..60_000).contains(&age), "recorded {age} ms ago");
        assert_eq!(
            db.row_recorded_ms("j", "notes", "notes.csv", 8).unwrap(),
            None
        );
        assert!(!got.status.is_final());
        o.status = RowStatus::Created;
        o.target_id = Some("t9".into());
        db.record_row("j", &o).unwrap();
        assert_eq!(db.rows("j").unwrap(), vec![o]);
        assert_eq!(
            db.mapped_id("L", "src-1").unwrap().as_deref(),
            Some("tgt-1")
        );
        assert_eq!(db.mapped_id("L", "src-2").unwrap(), None);
        db.reset_job("j").unwrap();
        assert!(db.rows("j").unwrap().is_empty());
    }
}
