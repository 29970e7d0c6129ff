//! Stored events into the dataset: Parquet (typed) and NDJSON (each body as received) part
//! files under `table=events/location_id=…/date=…/`, beside what the export writes, locally or
//! in an object store.
//!
//! Events go out in batches, every `every_events` events or `every` seconds. A batch's range
//! is fixed in the state database before its files are written, and marked committed once they
//! are all in place; a listener killed in between writes the same range to the same file
//! names again (`part-<batch>.parquet`), so each event is in the dataset exactly once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::api::pages::epoch_ms;
use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::sink::{Format, PartWriter, SinkOptions, Store};
use crate::state::{EventBatch, StateDb, StoredEvent};
use crate::table::{Column, ColumnType, Row, TableKind, TableSchema, Value as Cell};

pub use crate::table::EVENTS_DIR;

/// When batches are cut, and how large they may be.
#[derive(Clone, Debug)]
pub struct Cadence {
    pub every_events: i64,
    pub every: Duration,
}

use ColumnType::{Bool, Json, ListString, String as Str, Timestamp};

/// The columns, named as the API names the fields (as the export's tables are), typed as the
/// export types them. `payload` is the whole body; `customFields` is by field name when the
/// location's definitions could be read.
const COLUMNS: &[(&str, ColumnType)] = &[
    ("type", Str),
    ("webhookId", Str),
    ("timestamp", Timestamp),
    ("receivedAt", Timestamp),
    ("locationId", Str),
    ("contactId", Str),
    ("id", Str),
    ("firstName", Str),
    ("lastName", Str),
    ("name", Str),
    ("email", Str),
    ("phone", Str),
    ("companyName", Str),
    ("source", Str),
    ("assignedTo", Str),
    ("dnd", Bool),
    ("tags", ListString),
    ("dateAdded", Timestamp),
    ("dateUpdated", Timestamp),
    ("title", Str),
    ("body", Str),
    ("dueDate", Timestamp),
    ("completed", Bool),
    ("customFields", Json),
    ("payload", Json),
];

pub fn schema() -> TableSchema {
    TableSchema {
        table: TableKind::Events,
        columns: COLUMNS
            .iter()
            .map(|(name, ty)| Column {
                name: name.to_string(),
                ty: *ty,
            })
            .collect(),
    }
}

/// The contact an event is about: `contactId`, or the record itself for contact events.
pub fn contact_of(event_type: &str, payload: &Value) -> Option<String> {
    let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
    text("contactId").or_else(|| {
        event_type
            .starts_with("Contact")
            .then(|| text("id"))
            .flatten()
    })
}

/// Custom-field names per location, read once each (when a client may read them).
#[derive(Clone)]
pub struct FieldNames {
    client: Option<Client>,
    names: HashMap<String, Option<HashMap<String, String>>>,
}

impl FieldNames {
    pub fn new(client: Option<Client>) -> FieldNames {
        FieldNames {
            client,
            names: HashMap::new(),
        }
    }

    /// Look up the locations of `batch` not seen yet; a location whose fields cannot be read
    /// keeps its custom fields as sent.
    async fn learn(&mut self, locations: impl Iterator<Item = String>) {
        let Some(client) = &self.client else { return };
        for l in locations {
            if l.is_empty() || self.names.contains_key(&l) {
                continue;
            }
            let names = match client.custom_fields(&l).await {
                Ok(fields) => Some(
                    fields
                        .into_iter()
                        .filter_map(|f| Some((f.id, f.name?)))
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!(location = %l, error = %e, "Cannot read custom-field names; events keep customFields by id.");
                    None
                }
            };
            self.names.insert(l, names);
        }
    }

    fn by_name(&self, location: &str, fields: &Value) -> Value {
        let (Some(Some(names)), Some(items)) = (self.names.get(location), fields.as_array()) else {
            return fields.clone();
        };
        let mut out = serde_json::Map::new();
        for f in items {
            let id = f.get("id").and_then(Value::as_str).unwrap_or_default();
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_string());
            let value = f.get("value").or_else(|| f.get("field_value")).cloned();
            out.insert(name, value.unwrap_or(Value::Null));
        }
        Value::Object(out)
    }
}

/// One typed row of an event.
fn row(e: &StoredEvent, payload: &Value, names: &FieldNames) -> Row {
    COLUMNS
        .iter()
        .map(|(name, ty)| match *name {
            "type" => Cell::String(e.event_type.clone()),
            "webhookId" => Cell::String(e.webhook_id.clone()),
            "receivedAt" => Cell::Timestamp(e.received_ms),
            "locationId" => Cell::String(e.location.clone()),
            "contactId" => contact_of(&e.event_type, payload).map_or(Cell::Null, Cell::String),
            "customFields" => payload
                .get("customFields")
                .map_or(Cell::Null, |f| Cell::Json(names.by_name(&e.location, f))),
            "payload" => Cell::Json(payload.clone()),
            _ => cell(payload.get(*name), *ty),
        })
        .collect()
}

/// A payload value as a cell of `ty`; what does not convert is left null (the payload column
/// keeps it).
fn cell(v: Option<&Value>, ty: ColumnType) -> Cell {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Cell::Null;
    };
    match ty {
        Timestamp => epoch_ms(v).map_or(Cell::Null, Cell::Timestamp),
        Bool => match v {
            Value::Bool(b) => Cell::Bool(*b),
            Value::String(s) if s == "true" || s == "false" => Cell::Bool(s == "true"),
            _ => Cell::Null,
        },
        ListString => match v {
            Value::Array(items) => Cell::List(
                items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect(),
            ),
            Value::String(s) => Cell::List(vec![s.clone()]),
            _ => Cell::Null,
        },
        _ => Cell::String(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
    }
}

/// The date partition of an event: its timestamp's UTC day (else its arrival's).
fn day(payload: &Value, received_ms: i64) -> String {
    let ms = payload
        .get("timestamp")
        .and_then(epoch_ms)
        .unwrap_or(received_ms);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// A partition key safe as a folder name (location ids are, but a payload could say anything).
fn folder_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// Write `batch`'s events under `root` (the output folder, or the staging folder of an object
/// store); answers the files written, as (key under the dataset root, local path).
pub fn write_batch(
    db: &StateDb,
    batch: &EventBatch,
    root: &Path,
    names: &FieldNames,
) -> Result<Vec<(String, PathBuf)>> {
    let schema = Arc::new(schema());
    let part = u32::try_from(batch.batch).map_err(|_| JobError::Internal("batch number".into()))?;
    let mut writers: HashMap<String, [PartWriter; 2]> = HashMap::new();
    let mut failure: Option<JobError> = None;
    let stream = db.for_each_event(batch, |e| {
        let payload: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
        let folder = format!(
            "{EVENTS_DIR}/location_id={}/date={}",
            folder_safe(&e.location),
            day(&payload, e.received_ms)
        );
        if !writers.contains_key(&folder) {
            match open_pair(&root.join(&folder), &schema, part) {
                Ok(pair) => {
                    writers.insert(folder.clone(), pair);
                }
                Err(err) => {
                    failure = Some(err);
                    return Err(std::io::Error::other("open"));
                }
            }
        }
        let [parquet, ndjson] = writers.get_mut(&folder).expect("opened above");
        let typed = row(&e, &payload, names);
        for w in [parquet, ndjson] {
            if let Err(err) = w.write(&typed, Some(&payload)) {
                failure = Some(err.into());
                return Err(std::io::Error::other("write"));
            }
        }
        Ok(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    stream.map_err(|e| JobError::Internal(format!("writing events: {e}")))?;
    let mut files = Vec::new();
    for (folder, pair) in writers {
        for w in pair {
            let done = w.finish()?;
            let name = done
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            files.push((format!("{folder}/{name}"), done.path));
        }
    }
    files.sort();
    Ok(files)
}

/// A Parquet and an NDJSON writer for one partition folder; files of an earlier attempt at
/// this (uncommitted) batch are replaced.
fn open_pair(folder: &Path, schema: &Arc<TableSchema>, part: u32) -> Result<[PartWriter; 2]> {
    let open = |format: Format| -> Result<PartWriter> {
        let opts = SinkOptions {
            format,
            raw_ndjson: format == Format::Ndjson,
            ..SinkOptions::default()
        };
        let stale = folder.join(crate::sink::part_file_name(part, format));
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| JobError::io("remove", &stale, e))?;
        }
        Ok(PartWriter::create_in(folder, schema.clone(), part, &opts)?)
    };
    Ok([open(Format::Parquet)?, open(Format::Ndjson)?])
}

/// Cut and write every batch that is due; answers how many events went out. `db` is the
/// caller's connection; a batch's files are written on a blocking thread with one of its own.
pub async fn flush(
    db: &mut StateDb,
    store: &Store,
    cadence: &Cadence,
    names: &mut FieldNames,
    force: bool,
) -> Result<i64> {
    let mut written = 0;
    while let Some(batch) = due_batch(db, cadence, force)? {
        names.learn(db.batch_locations(&batch)?.into_iter()).await;
        written += write_and_commit(db, store, &batch, names).await?;
    }
    Ok(written)
}

/// The batch to write now: one left uncommitted, else a new one when enough events wait or
/// the oldest has waited long enough (or `force`).
fn due_batch(db: &mut StateDb, cadence: &Cadence, force: bool) -> Result<Option<EventBatch>> {
    if let Some(b) = db.next_open_batch()? {
        return Ok(Some(b));
    }
    let (waiting, oldest) = db.unbatched_events()?;
    let now = chrono::Utc::now().timestamp_millis();
    let old = oldest.is_some_and(|t| now - t >= cadence.every.as_millis() as i64);
    if waiting >= cadence.every_events || (waiting > 0 && (old || force)) {
        return Ok(db.next_event_batch(cadence.every_events)?);
    }
    Ok(None)
}

async fn write_and_commit(
    db: &mut StateDb,
    store: &Store,
    batch: &EventBatch,
    names: &FieldNames,
) -> Result<i64> {
    let state = db.path().to_path_buf();
    let root = match store.local_root() {
        Some(r) => r.to_path_buf(),
        None => crate::sink::staging_dir(&state, "listen"),
    };
    // Names were read on this task; the writing itself blocks (files, SQLite).
    let (b, names) = (*batch, names.clone());
    let files = tokio::task::spawn_blocking(move || {
        let reader = StateDb::open(&state)?;
        write_batch(&reader, &b, &root, &names)
    })
    .await
    .map_err(|e| JobError::Internal(format!("the dataset task failed: {e}")))??;
    for (key, local) in &files {
        store.put_file(key, local).await?;
        if store.local_root().is_none() {
            let _ = std::fs::remove_file(local);
        }
    }
    db.commit_event_batch(batch)?;
    Ok(batch.last_seq - batch.first_seq + 1)
}
