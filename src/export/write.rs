//! The write stage (a blocking thread per location): map each record to a row, encode it into
//! the chunk's part files, and commit chunks.
//!
//! A chunk is a set of part files, one per table (and one per table of rejects), that end
//! together: when a chunk is full (`part_rows` contacts or `commit_every`) or the listing ends,
//! its files are finished and recorded with the cursor after its last page in one transaction.
//! If the run stops before, the open chunk's temporary files are removed and a rerun redoes it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc;

use super::failpoint::{Failpoints, Point};
use super::fetch::{contact_id, EnrichedPage};
use super::run::Run;
use crate::api::Cursor;
use crate::exit::Result;
use crate::mapping::{Mapping, RecordContext, RowOutcome};
use crate::report::{Reject, RejectPart};
use crate::sink::PartWriter;
use crate::state::{CommittedPart, IdSet, LocationState, SetKind};
use crate::table::{TableKind, TableSchema};

/// The open part files of one chunk, created on their first row.
pub(super) struct Chunk {
    pub(super) seq: u32,
    data: HashMap<TableKind, PartWriter>,
    /// Rejected records of this chunk: part files like the data, so they are committed (or
    /// redone) together with it and a resumed run never repeats a reject.
    rejects: HashMap<TableKind, RejectPart>,
    contacts: u64,
    started: Instant,
    /// Incremental runs: every contact the chunk listed, with its `dateUpdated`.
    seen: Vec<(String, i64)>,
}

impl Chunk {
    pub(super) fn new(seq: u32) -> Chunk {
        Chunk {
            seq,
            data: HashMap::new(),
            rejects: HashMap::new(),
            contacts: 0,
            started: Instant::now(),
            seen: Vec::new(),
        }
    }

    /// Remove the chunk's temporary files.
    pub(super) fn abort(self) {
        self.data.into_values().for_each(PartWriter::abort);
        self.rejects.into_values().for_each(RejectPart::abort);
    }
}

/// Writes one location's pages; owns its chunk and its place in the listing.
pub struct LocationWriter<'a> {
    pub(super) run: &'a Run,
    pub(super) location: &'a str,
    location_index: usize,
    mapping: &'a Mapping,
    schemas: HashMap<TableKind, Arc<TableSchema>>,
    pub(super) state: LocationState,
    pub(super) chunk: Chunk,
    commits: u64,
    pub(super) failpoints: Failpoints,
}

impl<'a> LocationWriter<'a> {
    pub fn new(
        run: &'a Run,
        location: &'a str,
        location_index: usize,
        mapping: &'a Mapping,
        tables: &[TableKind],
        start: LocationState,
    ) -> LocationWriter<'a> {
        let schemas = tables
            .iter()
            .filter_map(|t| {
                mapping
                    .table(*t)
                    .map(|m| (*t, Arc::new(m.schema().clone())))
            })
            .collect();
        LocationWriter {
            run,
            location,
            location_index,
            mapping,
            schemas,
            chunk: Chunk::new(start.next_part),
            state: start,
            commits: 0,
            failpoints: Failpoints::from_env(),
        }
    }

    /// Write pages until the channel closes: the listing ended (its last page was committed)
    /// or the run stopped early (the open chunk is dropped, and a rerun redoes it).
    pub fn run(mut self, mut rx: mpsc::Receiver<EnrichedPage>) -> Result<()> {
        let mut last_cursor = self.state.cursor.clone();
        while let Some(page) = rx.blocking_recv() {
            self.write_page(&page)?;
            last_cursor = page.page.next.clone();
            let chunk = &self.chunk;
            let full = chunk.contacts >= self.run.plan.part_rows
                || chunk.started.elapsed() >= self.run.plan.commit_every;
            if full || last_cursor == Cursor::Done {
                self.commit(last_cursor.clone())?;
            }
        }
        if last_cursor != Cursor::Done {
            self.chunk.abort();
        }
        Ok(())
    }

    fn write_page(&mut self, ep: &EnrichedPage) -> Result<()> {
        let n = ep.page.records.len() as u64;
        let progress = &self.run.progress;
        let incremental = self.run.incr.is_some();
        for (record, children) in ep.page.records.iter().zip(&ep.children) {
            let cid = contact_id(record);
            if incremental {
                let updated = super::incremental::updated_ms(record);
                self.chunk.seen.push((cid.to_string(), updated));
            }
            if children.unchanged {
                continue;
            }
            if !self.write_record(TableKind::Contacts, record, None)? {
                progress.filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if children.deleted {
                progress.deleted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    contact_id = cid,
                    "The contact was deleted while exporting; kept without related records."
                );
            }
            for table in &self.run.plan.children {
                for r in children.of(*table) {
                    self.write_record(*table, r, Some(cid))?;
                }
            }
        }
        self.chunk.contacts += n;
        if let Some(k) = self.failpoints.mid_chunk() {
            // Only inside a chunk that will not be committed with this page.
            if self.state.contacts + n >= k
                && self.chunk.contacts < self.run.plan.part_rows
                && ep.page.next != Cursor::Done
            {
                self.failpoints.hit(Point::MidChunk(k));
            }
        }
        self.state.contacts += n;
        progress.advance(n, &self.run.client.stats());
        Ok(())
    }

    /// Map one record into its table's part file, or its reject file. Answers whether the
    /// record was kept (false: filtered out or rejected).
    pub(super) fn write_record(
        &mut self,
        table: TableKind,
        record: &Value,
        contact_id: Option<&str>,
    ) -> Result<bool> {
        let Some(tm) = self.mapping.table(table) else {
            return Ok(true);
        };
        let ctx = RecordContext {
            location_id: self.location,
            contact_id,
        };
        match tm.apply(record, &ctx) {
            RowOutcome::Row(row) => {
                let part = self.part_number()?;
                let writer = match self.chunk.data.entry(table) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(PartWriter::create_in(
                            &self.run.out.folder(table.name(), self.location),
                            self.schemas[&table].clone(),
                            part,
                            &self.run.plan.sink,
                        )?)
                    }
                };
                writer.write(&row, Some(record))?;
                Ok(true)
            }
            RowOutcome::Filtered => Ok(false),
            RowOutcome::Rejected { column, reason } => {
                let part = self.part_number()?;
                let record_id = record.get("id").and_then(Value::as_str).unwrap_or("");
                let folder = self
                    .run
                    .out
                    .folder(&format!("rejects/{}", table.name()), self.location);
                self.chunk
                    .rejects
                    .entry(table)
                    .or_insert_with(|| RejectPart::in_folder(folder, table, part))
                    .write(&Reject {
                        contact_id: contact_id.unwrap_or(record_id),
                        record_id,
                        column: &column,
                        reason: &reason,
                        record,
                    })?;
                tracing::debug!(table = %table, record_id, column, reason, "Rejected a record.");
                Ok(false)
            }
        }
    }

    /// The file name number of the open chunk's parts.
    pub(super) fn part_number(&self) -> Result<u32> {
        self.run
            .out
            .layout
            .part_number(self.location_index, self.chunk.seq)
    }

    /// Finish the chunk's files, then record them and `cursor` in one transaction (with the
    /// contacts the chunk listed, in an incremental run).
    fn commit(&mut self, cursor: Cursor) -> Result<()> {
        let seen = self.run.incr.is_some().then(|| {
            let ids = IdSet::from_unsorted(std::mem::take(&mut self.chunk.seen));
            (SetKind::Contacts, ids.encode())
        });
        self.commit_with(cursor, seen, Vec::new())
    }

    /// Finish the chunk's files and `extra` finished parts, then record them, `cursor` and
    /// `seen` in one transaction.
    pub(super) fn commit_with(
        &mut self,
        cursor: Cursor,
        seen: Option<(SetKind, Vec<u8>)>,
        extra: Vec<(String, crate::sink::PartFile)>,
    ) -> Result<()> {
        let next = Chunk::new(self.chunk.seq + 1);
        let chunk = std::mem::replace(&mut self.chunk, next);
        let mut finished = extra;
        for (table, w) in chunk.data {
            finished.push((table.name().to_string(), w.finish()?));
        }
        for (table, r) in chunk.rejects {
            if let Some(f) = r.finish()? {
                finished.push((format!("rejects/{}", table.name()), f));
            }
        }
        // Visible where the output goes (uploaded, for an object store) before recorded.
        for (_, f) in &finished {
            self.run.out.publish(&f.path)?;
        }
        let parts: Vec<CommittedPart> = finished
            .into_iter()
            .map(|(table, f)| CommittedPart {
                table,
                location: self.location.to_string(),
                seq: chunk.seq,
                path: self.run.out.relative(&f.path),
                rows: f.rows,
                bytes: f.bytes,
            })
            .collect();
        self.commits += 1;
        self.failpoints.hit(Point::BeforeCommit(self.commits));
        self.state.done = cursor == Cursor::Done;
        self.state.cursor = cursor;
        self.state.next_part = chunk.seq + 1;
        self.run.db().commit_chunk_with(
            &self.run.key,
            self.location,
            &self.state,
            &parts,
            seen.as_ref().map(|(k, ids)| (*k, ids.as_slice())),
        )?;
        self.failpoints.hit(Point::AfterCommit(self.commits));
        Ok(())
    }
}
