//! What an incremental export keeps between runs (see `export::incremental`).
//!
//! - `incr_runs`: the runs of a dataset (an incremental export's key); a run not finished is
//!   the one the next invocation resumes.
//! - `incr_baselines`: per location, what the last committed run saw: its watermark (the
//!   instant its listing started), its contact ids with their `dateUpdated`, its task ids with
//!   a hash of each task, and when it last exported everything.
//! - `incr_seen`: what the open run has seen so far, committed with each chunk; promoted to
//!   the baselines in the transaction that marks the run finished, so a killed run leaves the
//!   previous baseline and watermark in place.

use rusqlite::{params, OptionalExtension};

use super::{IdSet, Result, StateDb, StateError};

/// One run of an incremental export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrRun {
    /// `20261126T020000Z`: names the run's partition folders.
    pub run: String,
    /// The job key under which its chunks and parts are recorded.
    pub job: String,
    /// When its listings started: the next run's watermark.
    pub started_ms: i64,
}

/// What the last committed run of a dataset saw for one location.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub watermark_ms: i64,
    pub last_run: String,
    pub last_full_ms: i64,
    /// Contact id → `dateUpdated` (epoch ms).
    pub contacts: IdSet,
    /// Task id → content hash; `None` when that run could not list every task.
    pub tasks: Option<IdSet>,
}

/// What a chunk of the open run records beside its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// The contacts a chunk listed.
    Contacts,
    /// Every task of the location.
    Tasks,
    /// The location's deletions are written: its part of the run is complete.
    Done,
}

impl SetKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            SetKind::Contacts => "contacts",
            SetKind::Tasks => "tasks",
            SetKind::Done => "done",
        }
    }
}

impl StateDb {
    fn decode_set(&self, blob: &[u8]) -> Result<IdSet> {
        IdSet::decode(blob).map_err(|source| StateError::IdSet {
            path: self.path.clone(),
            source,
        })
    }

    /// The dataset's run that started and did not finish, if any.
    pub fn open_run(&self, dataset: &str) -> Result<Option<IncrRun>> {
        let r = self
            .conn
            .query_row(
                "SELECT run, job, started_ms FROM incr_runs WHERE dataset = ?1 AND finished = 0 ORDER BY run DESC LIMIT 1",
                [dataset],
                |r| Ok(IncrRun { run: r.get(0)?, job: r.get(1)?, started_ms: r.get(2)? }),
            )
            .optional();
        self.sql(r)
    }

    /// The name of the dataset's latest run, finished or not.
    pub fn latest_run(&self, dataset: &str) -> Result<Option<String>> {
        let r = self
            .conn
            .query_row(
                "SELECT MAX(run) FROM incr_runs WHERE dataset = ?1",
                [dataset],
                |r| r.get(0),
            )
            .optional();
        self.sql(r).map(Option::flatten)
    }

    pub fn start_run(&mut self, dataset: &str, run: &IncrRun) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO incr_runs (dataset, run, job, started_ms) VALUES (?1, ?2, ?3, ?4)",
            params![dataset, run.run, run.job, run.started_ms],
        );
        self.sql(r).map(|_| ())
    }

    pub fn baseline(&self, dataset: &str, location: &str) -> Result<Option<Baseline>> {
        type Row = (i64, String, i64, Vec<u8>, Option<Vec<u8>>);
        let row: Option<Row> = {
            let r = self
                .conn
                .query_row(
                    "SELECT watermark_ms, last_run, last_full_ms, contacts, tasks FROM incr_baselines WHERE dataset = ?1 AND location = ?2",
                    [dataset, location],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional();
            self.sql(r)?
        };
        let Some((watermark_ms, last_run, last_full_ms, contacts, tasks)) = row else {
            return Ok(None);
        };
        Ok(Some(Baseline {
            watermark_ms,
            last_run,
            last_full_ms,
            contacts: self.decode_set(&contacts)?,
            tasks: tasks.map(|t| self.decode_set(&t)).transpose()?,
        }))
    }

    /// The sets of `kind` the open run `job` has committed for `location`.
    pub fn seen(&self, job: &str, location: &str, kind: SetKind) -> Result<Vec<IdSet>> {
        let blobs: Vec<Vec<u8>> = {
            let mut stmt = self.sql(self.conn.prepare(
                "SELECT ids FROM incr_seen WHERE job = ?1 AND location = ?2 AND kind = ?3 ORDER BY seq",
            ))?;
            let rows = stmt
                .query_map([job, location, kind.name()], |r| r.get(0))
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
            self.sql(rows)?
        };
        blobs.iter().map(|b| self.decode_set(b)).collect()
    }

    /// Finish a run: each of `locations` gets the baseline of what the run saw (`full`: the
    /// location was exported in full), the run and its job are marked finished, all in one
    /// transaction. Until this commits the previous baselines stand.
    pub fn promote_run(
        &mut self,
        dataset: &str,
        run: &IncrRun,
        locations: &[(String, bool)],
    ) -> Result<()> {
        let mut baselines = Vec::new();
        for (location, full) in locations {
            let contacts = IdSet::union(self.seen(&run.job, location, SetKind::Contacts)?);
            let tasks = self.seen(&run.job, location, SetKind::Tasks)?.pop();
            let last_full = match self.baseline(dataset, location)? {
                Some(b) if !full => b.last_full_ms,
                _ => run.started_ms,
            };
            baselines.push((
                location,
                contacts.encode(),
                tasks.map(|t| t.encode()),
                last_full,
            ));
        }
        let path = self.path.clone();
        let wrap = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        for (location, contacts, tasks, last_full) in baselines {
            tx.execute(
                "INSERT INTO incr_baselines (dataset, location, watermark_ms, last_run, last_full_ms, contacts, tasks)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (dataset, location) DO UPDATE SET watermark_ms = ?3, last_run = ?4, last_full_ms = ?5, contacts = ?6, tasks = ?7",
                params![dataset, location, run.started_ms, run.run, last_full, contacts, tasks],
            )
            .map_err(wrap)?;
        }
        tx.execute(
            "UPDATE incr_runs SET finished = 1 WHERE dataset = ?1 AND run = ?2",
            params![dataset, run.run],
        )
        .map_err(wrap)?;
        tx.execute("DELETE FROM incr_seen WHERE job = ?1", [&run.job])
            .map_err(wrap)?;
        tx.execute(
            "UPDATE jobs SET finished_at = ?2 WHERE job = ?1",
            params![run.job, super::now()],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Forget a dataset (for `--restart`): its baselines and runs go; answers the job keys of
    /// its runs, whose parts the caller deletes before resetting them.
    pub fn forget_dataset(&mut self, dataset: &str) -> Result<Vec<String>> {
        let jobs: Vec<String> = {
            let mut stmt = self.sql(
                self.conn
                    .prepare("SELECT job FROM incr_runs WHERE dataset = ?1 ORDER BY run"),
            )?;
            let rows = stmt
                .query_map([dataset], |r| r.get(0))
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
            self.sql(rows)?
        };
        let r = self.conn.execute_batch("BEGIN;");
        self.sql(r)?;
        for table in ["incr_baselines", "incr_runs"] {
            let r = self.conn.execute(
                &format!("DELETE FROM {table} WHERE dataset = ?1"),
                [dataset],
            );
            self.sql(r)?;
        }
        let r = self.conn.execute_batch("COMMIT;");
        self.sql(r)?;
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Cursor;
    use crate::state::LocationState;

    fn ids(items: &[(&str, i64)]) -> IdSet {
        IdSet::from_unsorted(items.iter().map(|(i, n)| (i.to_string(), *n)).collect())
    }

    #[test]
    fn a_run_becomes_the_baseline_only_when_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("s.sqlite")).unwrap();
        let run = IncrRun {
            run: "20261126T020000Z".into(),
            job: "ds:20261126T020000Z".into(),
            started_ms: 1_000,
        };
        db.begin_job(&run.job, "export").unwrap();
        db.start_run("ds", &run).unwrap();
        assert_eq!(db.open_run("ds").unwrap(), Some(run.clone()));
        let st = |next_part| LocationState {
            cursor: Cursor::Start,
            next_part,
            contacts: 0,
            done: false,
        };
        let chunk = ids(&[("a", 1), ("b", 2)]).encode();
        db.commit_chunk_with(
            &run.job,
            "L",
            &st(1),
            &[],
            Some((SetKind::Contacts, &chunk)),
        )
        .unwrap();
        let chunk = ids(&[("c", 3)]).encode();
        db.commit_chunk_with(
            &run.job,
            "L",
            &st(2),
            &[],
            Some((SetKind::Contacts, &chunk)),
        )
        .unwrap();
        assert!(
            db.baseline("ds", "L").unwrap().is_none(),
            "not before the run finishes"
        );
        db.promote_run("ds", &run, &[("L".into(), true)]).unwrap();
        let b = db.baseline("ds", "L").unwrap().unwrap();
        assert_eq!((b.watermark_ms, b.last_full_ms), (1_000, 1_000));
        assert_eq!(b.contacts, ids(&[("a", 1), ("b", 2), ("c", 3)]));
        assert_eq!(b.tasks, None);
        assert_eq!(db.open_run("ds").unwrap(), None);
        assert_eq!(
            db.begin_job(&run.job, "export").unwrap(),
            crate::state::JobStatus::Finished
        );
        assert!(db
            .seen(&run.job, "L", SetKind::Contacts)
            .unwrap()
            .is_empty());
        assert_eq!(
            db.latest_run("ds").unwrap().as_deref(),
            Some("20261126T020000Z")
        );
        assert_eq!(db.forget_dataset("ds").unwrap(), vec![run.job.clone()]);
        assert!(db.baseline("ds", "L").unwrap().is_none());
    }
}
