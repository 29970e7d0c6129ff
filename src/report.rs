//! Per-record outcome files: the one place that writes, for people, what happened to records a
//! job could not take. Today: export's rejects, `DIR/rejects/<table>/part-NNNNN.csv` with the
//! columns `contact_id, record_id, column, reason, record_json`.
//!
//! Rejects are part files committed together with the data chunk they belong to, so a resumed
//! run never repeats or loses one. They are CSV with spreadsheet formulas always defused:
//! people open them in a spreadsheet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sink::{Format, PartFile, PartWriter, SinkError, SinkOptions};
use crate::table::{Column, ColumnType, TableKind, TableSchema, Value};

const REJECT_COLUMNS: [&str; 5] = ["contact_id", "record_id", "column", "reason", "record_json"];

/// Folder of the reject part files, beside the tables: `DIR/rejects/<table>/part-NNNNN.csv`.
pub fn rejects_dir(out: &Path) -> PathBuf {
    out.join("rejects")
}

/// The format of reject files.
pub const REJECT_FORMAT: Format = Format::Csv;

/// One rejected record.
pub struct Reject<'a> {
    pub contact_id: &'a str,
    pub record_id: &'a str,
    pub column: &'a str,
    pub reason: &'a str,
    pub record: &'a serde_json::Value,
}

/// The reject part file of one table and chunk, created on its first reject.
pub struct RejectPart {
    out: PathBuf,
    schema: Arc<TableSchema>,
    part: u32,
    writer: Option<PartWriter>,
}

impl RejectPart {
    pub fn new(out: &Path, table: TableKind, part: u32) -> RejectPart {
        let columns = REJECT_COLUMNS
            .into_iter()
            .map(|name| Column {
                name: name.into(),
                ty: ColumnType::String,
            })
            .collect();
        RejectPart {
            out: rejects_dir(out),
            schema: Arc::new(TableSchema { table, columns }),
            part,
            writer: None,
        }
    }

    pub fn write(&mut self, r: &Reject) -> Result<(), SinkError> {
        if self.writer.is_none() {
            let opts = SinkOptions {
                format: REJECT_FORMAT,
                csv_safe: true,
                ..SinkOptions::default()
            };
            self.writer = Some(PartWriter::create(
                &self.out,
                self.schema.clone(),
                self.part,
                &opts,
            )?);
        }
        let line = vec![
            Value::String(r.contact_id.to_string()),
            Value::String(r.record_id.to_string()),
            Value::String(r.column.to_string()),
            Value::String(r.reason.to_string()),
            Value::String(r.record.to_string()),
        ];
        match self.writer.as_mut() {
            Some(w) => w.write(&line, None),
            None => Ok(()),
        }
    }

    /// Finish the file, if any record was rejected.
    pub fn finish(self) -> Result<Option<PartFile>, SinkError> {
        self.writer.map(PartWriter::finish).transpose()
    }

    /// Remove the unfinished file (the chunk is not committed).
    pub fn abort(self) {
        if let Some(w) = self.writer {
            w.abort();
        }
    }
}
