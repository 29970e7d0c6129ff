//! Jobs: one row per job key (a hash of the resolved plan), started and finished times. Every
//! job (export, load, tag) registers here first; `--restart` forgets a job and, through the
//! foreign keys, everything it recorded.

use rusqlite::{params, OptionalExtension};

use super::{now, Result, StateDb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    New,
    Resuming,
    Finished,
}

impl StateDb {
    /// Register a job (if new). Answers whether it had finished before.
    pub fn begin_job(&mut self, job: &str, description: &str) -> Result<JobStatus> {
        let existing: Option<Option<String>> = {
            let r = self
                .conn
                .query_row("SELECT finished_at FROM jobs WHERE job = ?1", [job], |r| {
                    r.get(0)
                })
                .optional();
            self.sql(r)?
        };
        match existing {
            Some(Some(_)) => Ok(JobStatus::Finished),
            Some(None) => Ok(JobStatus::Resuming),
            None => {
                let r = self.conn.execute(
                    "INSERT INTO jobs (job, description, started_at) VALUES (?1, ?2, ?3)",
                    params![job, description, now()],
                );
                self.sql(r)?;
                Ok(JobStatus::New)
            }
        }
    }

    /// Forget a job (for `--restart`): its cursors and part records go; the caller deletes files.
    pub fn reset_job(&mut self, job: &str) -> Result<()> {
        let r = self.conn.execute("DELETE FROM jobs WHERE job = ?1", [job]);
        self.sql(r).map(|_| ())
    }

    pub fn finish_job(&mut self, job: &str) -> Result<()> {
        let r = self.conn.execute(
            "UPDATE jobs SET finished_at = ?2 WHERE job = ?1",
            params![job, now()],
        );
        self.sql(r).map(|_| ())
    }
}
