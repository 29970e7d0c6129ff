//! The state database (SQLite): where each job stands, so a killed run resumes.
//!
//! One export is a *job*, keyed by a hash of the arguments that shape its output (locations,
//! source, tables, mapping, format, output folder). For each location a job keeps the listing
//! cursor and the part files written up to it. Both change in **one transaction** after the
//! part files are complete on disk: a crash before the commit leaves the previous cursor and
//! part list, and the rerun deletes the orphaned files and rewrites them from that cursor; a
//! crash after it leaves the new ones. Either way nothing is lost or written twice.
//!
//! The schema carries a version (`PRAGMA user_version`); opening a newer database refuses.
//!
//! This module opens and migrates the database; each concern keeps its queries in a file of its
//! own: `jobs` (a job's identity and whether it finished, shared by every job), `export` (listing
//! cursors, committed part files and table columns), `rows` (what happened to each input row
//! of a job that writes, and a migration's source → target contact ids), `incremental` (the
//! runs of an incremental export, each location's watermark and the compact id sets of its
//! last run), with `idset` the codec of those sets; `events` (the webhooks `listen` received,
//! the dataset batches they went into, and the rule actions they call for).

mod events;
mod export;
mod idset;
mod incremental;
mod jobs;
mod rows;

pub use events::{ActionRow, ActionStatus, EventBatch, NewEvent, StoredEvent};
pub use export::{CommittedPart, LocationState};
pub use idset::IdSet;
pub use incremental::{Baseline, IncrRun, SetKind};
pub use jobs::JobStatus;
pub use rows::{RowRecord, RowStatus};

use std::path::{Path, PathBuf};

use rusqlite::Connection;

const SCHEMA_VERSION: i64 = 6;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database {path} has schema version {found}, newer than this ghl-etl understands ({SCHEMA_VERSION}); upgrade ghl-etl or use another --state")]
    TooNew { path: PathBuf, found: i64 },
    #[error("state database {path}: stored cursor is unreadable: {source}")]
    Cursor {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state database {path}: {source}")]
    IdSet {
        path: PathBuf,
        #[source]
        source: idset::IdSetError,
    },
    /// The file itself cannot be opened for writing (a read-only folder or file): said plainly,
    /// where SQLite would only say "unable to open database file".
    #[error(
        "cannot open the state database {path} for writing: {source}; choose a writable --state"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the folder of the state database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StateError>;

pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl StateDb {
    pub fn open(path: &Path) -> Result<StateDb> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        }
        // Opened once by hand first: its error names the cause (permission denied, read-only
        // file system), where SQLite's does not.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StateError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let conn = Connection::open(path).map_err(|source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let mut db = StateDb {
            conn,
            path: path.to_path_buf(),
        };
        db.migrate()?;
        Ok(db)
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    fn migrate(&mut self) -> Result<()> {
        // WAL + synchronous=FULL: a committed chunk survives power loss, and readers (a second
        // `ghl-etl` inspecting progress) do not block the writer.
        let r = self.conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        );
        self.sql(r)?;
        let version: i64 = {
            let r = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0));
            self.sql(r)?
        };
        if version > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        if version < 1 {
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS jobs (
                     job TEXT PRIMARY KEY,
                     description TEXT NOT NULL,
                     started_at TEXT NOT NULL,
                     finished_at TEXT
                 );
                 CREATE TABLE IF NOT EXISTS locations (
                     job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
                     location TEXT NOT NULL,
                     cursor TEXT NOT NULL,
                     next_part INTEGER NOT NULL,
                     contacts INTEGER NOT NULL,
                     done INTEGER NOT NULL,
                     updated_at TEXT NOT NULL,
                     PRIMARY KEY (job, location)
                 );
                 CREATE TABLE IF NOT EXISTS parts (
                     job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
                     tbl TEXT NOT NULL,
                     location TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     path TEXT NOT NULL,
                     rows INTEGER NOT NULL,
                     bytes INTEGER NOT NULL,
                     committed_at TEXT NOT NULL,
                     PRIMARY KEY (job, tbl, location, seq)
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        if version < 2 {
            // v2: the output columns of each table, so a resume cannot change them mid-dataset.
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS schemas (
                     job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
                     location TEXT NOT NULL,
                     tbl TEXT NOT NULL,
                     columns TEXT NOT NULL,
                     PRIMARY KEY (job, location, tbl)
                 );
                 PRAGMA user_version = 2;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        if version < 3 {
            // v3: per-row outcomes of jobs that write (load, tag), and the source -> target
            // contact ids of a migration, kept per target location across jobs.
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS row_outcomes (
                     job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
                     tbl TEXT NOT NULL,
                     file TEXT NOT NULL,
                     row INTEGER NOT NULL,
                     status TEXT NOT NULL,
                     key TEXT NOT NULL,
                     target_id TEXT,
                     fingerprint TEXT,
                     detail TEXT,
                     raw TEXT,
                     updated_at TEXT NOT NULL,
                     PRIMARY KEY (job, tbl, file, row)
                 );
                 CREATE TABLE IF NOT EXISTS id_map (
                     location TEXT NOT NULL,
                     source_id TEXT NOT NULL,
                     target_id TEXT NOT NULL,
                     PRIMARY KEY (location, source_id)
                 );
                 PRAGMA user_version = 3;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        if version < 4 {
            // v4: incremental exports. A dataset's runs; per location the watermark and the
            // id sets of the last committed run; and, while a run is open, what it has seen so
            // far (committed with each chunk, so a killed run resumes with it).
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS incr_runs (
                     dataset TEXT NOT NULL,
                     run TEXT NOT NULL,
                     job TEXT NOT NULL,
                     started_ms INTEGER NOT NULL,
                     finished INTEGER NOT NULL DEFAULT 0,
                     PRIMARY KEY (dataset, run)
                 );
                 CREATE TABLE IF NOT EXISTS incr_baselines (
                     dataset TEXT NOT NULL,
                     location TEXT NOT NULL,
                     watermark_ms INTEGER NOT NULL,
                     last_run TEXT NOT NULL,
                     last_full_ms INTEGER NOT NULL,
                     contacts BLOB NOT NULL,
                     tasks BLOB,
                     PRIMARY KEY (dataset, location)
                 );
                 CREATE TABLE IF NOT EXISTS incr_seen (
                     job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
                     location TEXT NOT NULL,
                     kind TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     ids BLOB NOT NULL,
                     PRIMARY KEY (job, location, kind, seq)
                 );
                 PRAGMA user_version = 4;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        if version < 5 {
            // v5: a load looks up rows by fingerprint (claims) and by target contact (was it
            // created here?) for every task and note: indexed, so a large load stays linear.
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE INDEX IF NOT EXISTS row_outcomes_fingerprint
                     ON row_outcomes (job, tbl, fingerprint);
                 CREATE INDEX IF NOT EXISTS row_outcomes_target
                     ON row_outcomes (job, target_id);
                 PRAGMA user_version = 5;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        if version < 6 {
            // v6: `listen`. Each webhook received once (by its webhookId), in arrival order;
            // the dataset batches they are written in (a batch's range is fixed before its
            // files are, so a rerun rewrites the same files); and the rule actions each calls
            // for, recorded with it and settled one by one.
            let r = self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS events (
                     seq INTEGER PRIMARY KEY,
                     webhook_id TEXT NOT NULL UNIQUE,
                     event_type TEXT NOT NULL,
                     location TEXT NOT NULL,
                     received_ms INTEGER NOT NULL,
                     body BLOB NOT NULL,
                     batch INTEGER
                 );
                 CREATE INDEX IF NOT EXISTS events_batch ON events (batch, seq);
                 CREATE TABLE IF NOT EXISTS event_batches (
                     batch INTEGER PRIMARY KEY,
                     first_seq INTEGER NOT NULL,
                     last_seq INTEGER NOT NULL,
                     committed INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE TABLE IF NOT EXISTS rule_actions (
                     webhook_id TEXT NOT NULL,
                     rule TEXT NOT NULL,
                     action INTEGER NOT NULL,
                     status TEXT NOT NULL,
                     started_ms INTEGER,
                     detail TEXT,
                     PRIMARY KEY (webhook_id, rule, action)
                 );
                 CREATE INDEX IF NOT EXISTS rule_actions_status ON rule_actions (status);
                 PRAGMA user_version = 6;
                 COMMIT;",
            );
            self.sql(r)?;
        }
        let r = self.conn.execute_batch("PRAGMA foreign_keys=ON;");
        self.sql(r)
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Now, as the database stamps what it records (comparable as text).
pub fn stamp() -> String {
    now()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Cursor;

    #[test]
    fn chunk_commit_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let mut db = StateDb::open(&path).unwrap();
            assert_eq!(db.begin_job("j1", "export").unwrap(), JobStatus::New);
            assert_eq!(db.location("j1", "L").unwrap(), None);
            let st = LocationState {
                cursor: Cursor::List {
                    start_after: 5,
                    start_after_id: "abc".into(),
                },
                next_part: 1,
                contacts: 100,
                done: false,
            };
            let part = CommittedPart {
                table: "contacts".into(),
                location: "L".into(),
                seq: 0,
                path: "contacts/part-L-00000.parquet".into(),
                rows: 100,
                bytes: 1234,
            };
            db.commit_chunk("j1", "L", &st, std::slice::from_ref(&part))
                .unwrap();
            // The same part twice is refused, and the failed transaction changes nothing.
            let st2 = LocationState {
                next_part: 2,
                ..st.clone()
            };
            assert!(db.commit_chunk("j1", "L", &st2, &[part]).is_err());
        }
        let mut db = StateDb::open(&path).unwrap();
        assert_eq!(db.begin_job("j1", "export").unwrap(), JobStatus::Resuming);
        let st = db.location("j1", "L").unwrap().unwrap();
        assert_eq!(st.next_part, 1);
        assert_eq!(
            st.cursor,
            Cursor::List {
                start_after: 5,
                start_after_id: "abc".into()
            }
        );
        assert_eq!(db.parts("j1").unwrap().len(), 1);
        db.save_columns("j1", "L", "contacts", "id:string").unwrap();
        assert_eq!(
            db.columns("j1", "L", "contacts").unwrap().as_deref(),
            Some("id:string")
        );
        db.finish_job("j1").unwrap();
        assert_eq!(db.begin_job("j1", "export").unwrap(), JobStatus::Finished);
        db.reset_job("j1").unwrap();
        assert!(db.parts("j1").unwrap().is_empty());
        assert_eq!(db.begin_job("j1", "export").unwrap(), JobStatus::New);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = StateDb::open(&path).err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
