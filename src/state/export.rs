//! What an export records: per location the listing cursor after the last committed chunk, the
//! part files written up to it (both in one transaction), and each table's columns.

use rusqlite::{params, OptionalExtension};

use super::{now, Result, SetKind, StateDb, StateError};
use crate::api::Cursor;

/// Where one location of a job stands.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationState {
    pub cursor: Cursor,
    /// Sequence number of the next part file.
    pub next_part: u32,
    pub contacts: u64,
    pub done: bool,
}

/// A part file recorded as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedPart {
    pub table: String,
    pub location: String,
    pub seq: u32,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

impl StateDb {
    /// The columns a table of this job and location was started with (`name:type,...`).
    pub fn columns(&self, job: &str, location: &str, table: &str) -> Result<Option<String>> {
        let r = self
            .conn
            .query_row(
                "SELECT columns FROM schemas WHERE job = ?1 AND location = ?2 AND tbl = ?3",
                [job, location, table],
                |r| r.get(0),
            )
            .optional();
        self.sql(r)
    }

    pub fn save_columns(
        &mut self,
        job: &str,
        location: &str,
        table: &str,
        columns: &str,
    ) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO schemas (job, location, tbl, columns) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job, location, tbl) DO UPDATE SET columns = ?4",
            params![job, location, table, columns],
        );
        self.sql(r).map(|_| ())
    }
    pub fn location(&self, job: &str, location: &str) -> Result<Option<LocationState>> {
        let row: Option<(String, u32, u64, bool)> = {
            let r = self
                .conn
                .query_row(
                    "SELECT cursor, next_part, contacts, done FROM locations WHERE job = ?1 AND location = ?2",
                    [job, location],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional();
            self.sql(r)?
        };
        row.map(|(cursor, next_part, contacts, done)| {
            let cursor = serde_json::from_str(&cursor).map_err(|source| StateError::Cursor {
                path: self.path.clone(),
                source,
            })?;
            Ok(LocationState {
                cursor,
                next_part,
                contacts,
                done,
            })
        })
        .transpose()
    }

    pub fn parts(&self, job: &str) -> Result<Vec<CommittedPart>> {
        let mut stmt = {
            let r = self
                .conn
                .prepare("SELECT tbl, location, seq, path, rows, bytes FROM parts WHERE job = ?1 ORDER BY tbl, location, seq");
            self.sql(r)?
        };
        let rows = stmt
            .query_map([job], |r| {
                Ok(CommittedPart {
                    table: r.get(0)?,
                    location: r.get(1)?,
                    seq: r.get(2)?,
                    path: r.get(3)?,
                    rows: r.get(4)?,
                    bytes: r.get(5)?,
                })
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Record a chunk: its part files and the cursor after it, atomically.
    pub fn commit_chunk(
        &mut self,
        job: &str,
        location: &str,
        state: &LocationState,
        parts: &[CommittedPart],
    ) -> Result<()> {
        self.commit_chunk_with(job, location, state, parts, None)
    }

    /// [`commit_chunk`](Self::commit_chunk), and in the same transaction a set an incremental
    /// run keeps with the chunk (an encoded [`IdSet`](super::IdSet), see `incremental`).
    pub fn commit_chunk_with(
        &mut self,
        job: &str,
        location: &str,
        state: &LocationState,
        parts: &[CommittedPart],
        seen: Option<(SetKind, &[u8])>,
    ) -> Result<()> {
        let cursor = serde_json::to_string(&state.cursor).map_err(|source| StateError::Cursor {
            path: self.path.clone(),
            source,
        })?;
        let path = self.path.clone();
        let wrap = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        for p in parts {
            tx.execute(
                "INSERT INTO parts (job, tbl, location, seq, path, rows, bytes, committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![job, p.table, p.location, p.seq, p.path, p.rows, p.bytes, now()],
            )
            .map_err(wrap)?;
        }
        tx.execute(
            "INSERT INTO locations (job, location, cursor, next_part, contacts, done, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (job, location) DO UPDATE SET cursor = ?3, next_part = ?4, contacts = ?5, done = ?6, updated_at = ?7",
            params![job, location, cursor, state.next_part, state.contacts, state.done, now()],
        )
        .map_err(wrap)?;
        if let Some((kind, ids)) = seen {
            tx.execute(
                "INSERT INTO incr_seen (job, location, kind, seq, ids) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![job, location, kind.name(), state.next_part, ids],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }
}
