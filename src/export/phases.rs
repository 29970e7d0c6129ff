//! The two steps an incremental run adds around a location's listing (see `incremental`):
//! before it, every task of the location through the task search, the changed ones written
//! and the task set committed; after it, the contacts and tasks that disappeared since the
//! last run, written to the `deleted` table. Each commits like a chunk, so a killed run
//! resumes after the last step it finished.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::incremental::{gone, task_hash, Delta, DELETED_TABLE};
use super::run::Run;
use super::write::LocationWriter;
use crate::api::endpoints::TASK_SEARCH_PAGE;
use crate::api::{self, ErrorKind};
use crate::exit::{JobError, Result};
use crate::sink::{PartWriter, SinkOptions};
use crate::state::{IdSet, SetKind};
use crate::table::{Column, ColumnType, TableKind, TableSchema, Value as Cell};

/// Pages of the location's tasks, then an empty page when the listing is complete.
pub type TaskPages = mpsc::Receiver<Vec<Value>>;

/// Page every task of `location` into `tx`; an empty page at the end says it is complete.
/// Answers `false` when the token may not search tasks.
pub async fn list_tasks(run: &Run, location: &str, tx: mpsc::Sender<Vec<Value>>) -> Result<bool> {
    let mut seen = std::collections::HashSet::new();
    let (mut skip, mut largest) = (0usize, 0usize);
    loop {
        if run.cancelled.load(Ordering::Relaxed) {
            return Err(JobError::Interrupted);
        }
        let page = match run.client.location_tasks_page(location, skip).await {
            Ok(p) => p,
            Err(e) if e.is_scope_error() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let n = page.len();
        skip += n;
        // The largest page the API honours is undocumented: a short page ends the listing
        // only when a longer one was seen (or it is empty).
        let end = n == 0 || (n < TASK_SEARCH_PAGE && n < largest);
        largest = largest.max(n);
        let fresh: Vec<Value> = page
            .into_iter()
            .filter(|t| {
                seen.insert(
                    t.get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        if n > 0 && fresh.is_empty() {
            let path = format!("/locations/{location}/tasks/search");
            return Err(api::Error::new(ErrorKind::CursorLoop, "POST", &path)
                .with_message(format!(
                    "the task search answered only tasks already listed (skip {skip})"
                ))
                .into());
        }
        if !fresh.is_empty() && tx.send(fresh).await.is_err() {
            return Ok(true); // the writer stopped; its error says why
        }
        if end {
            let _ = tx.send(Vec::new()).await;
            return Ok(true);
        }
    }
}

impl LocationWriter<'_> {
    /// Write the tasks that changed since the last run, then commit them with the set of all
    /// tasks. Without the end-of-listing mark (an error or a scope refusal upstream) nothing
    /// is committed.
    pub fn run_tasks(mut self, mut rx: TaskPages, delta: &Delta) -> Result<()> {
        let Some(incr) = self.run.incr.as_ref() else {
            return Ok(());
        };
        let mut set = Vec::new();
        let mut complete = false;
        while let Some(page) = rx.blocking_recv() {
            if page.is_empty() {
                complete = true;
                break;
            }
            for task in &page {
                let id = task.get("id").and_then(Value::as_str).unwrap_or("");
                let hash = task_hash(task);
                set.push((id.to_string(), hash));
                if delta.wants_task(incr, id, hash) {
                    let cid = task.get("contactId").and_then(Value::as_str);
                    self.write_record(TableKind::Tasks, task, cid)?;
                }
            }
        }
        if !complete {
            let chunk = std::mem::replace(&mut self.chunk, super::write::Chunk::new(0));
            chunk.abort();
            return Ok(());
        }
        let ids = IdSet::from_unsorted(set).encode();
        let cursor = self.state.cursor.clone();
        self.commit_with(cursor, Some((SetKind::Tasks, ids)), Vec::new())
    }

    /// Write the contacts (and tasks) the last run saw and this one did not to the `deleted`
    /// table, and mark the location's part of the run complete.
    pub fn write_deleted(mut self, delta: &Delta) -> Result<()> {
        let Some(incr) = self.run.incr.as_ref() else {
            return Ok(());
        };
        let (contacts, tasks) = {
            let db = self.run.db();
            let contacts =
                IdSet::union(db.seen(&self.run.key, self.location, SetKind::Contacts)?);
            let tasks = db.seen(&self.run.key, self.location, SetKind::Tasks)?.pop();
            (contacts, tasks)
        };
        let gone_contacts = gone(&delta.baseline.contacts, &contacts);
        // Task deletions are known only when both runs listed every task.
        let gone_tasks = match (&delta.baseline.tasks, &tasks) {
            (Some(before), Some(now)) => gone(before, now),
            _ => Vec::new(),
        };
        incr.deleted_contacts
            .fetch_add(gone_contacts.len() as u64, Ordering::Relaxed);
        incr.deleted_tasks
            .fetch_add(gone_tasks.len() as u64, Ordering::Relaxed);
        let mut extra = Vec::new();
        if !gone_contacts.is_empty() || !gone_tasks.is_empty() {
            let folder = self.run.out.folder(DELETED_TABLE, self.location);
            let opts = SinkOptions {
                raw_ndjson: false,
                ..self.run.plan.sink.clone()
            };
            let mut w =
                PartWriter::create_in(&folder, deleted_schema(), self.part_number()?, &opts)?;
            let rows = gone_contacts
                .iter()
                .map(|id| (id, "contact"))
                .chain(gone_tasks.iter().map(|id| (id, "task")));
            for (id, kind) in rows {
                let row = vec![
                    Cell::String(id.clone()),
                    Cell::String(kind.into()),
                    Cell::String(self.location.to_string()),
                    Cell::String(incr.run.run.clone()),
                ];
                w.write(&row, None)?;
            }
            extra.push((DELETED_TABLE.to_string(), w.finish()?));
        }
        let cursor = self.state.cursor.clone();
        self.commit_with(cursor, Some((SetKind::Done, Vec::new())), extra)
    }
}

/// `id, kind (contact | task), location, first_missed_run`: one row per record that the
/// previous run saw and this one did not. The location is named `location` in the file, not
/// `location_id`, so engines that also read the partition columns from the path never clash.
fn deleted_schema() -> Arc<TableSchema> {
    let col = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::String,
    };
    Arc::new(TableSchema {
        // The kind only names the schema; the layout puts the file in `table=deleted`.
        table: TableKind::Contacts,
        columns: vec![
            col("id"),
            col("kind"),
            col("location"),
            col("first_missed_run"),
        ],
    })
}
