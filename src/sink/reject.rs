//! Reject files: `DIR/rejects/<table>.csv`, one line per record a table could not take, with
//! the columns `contact_id, record_id, column, reason, record_json`.
//!
//! The file is appended to (a resumed run adds to what the first attempt found) and flushed
//! after each line, so a crash loses at most the line being written. It is meant to be opened
//! by people, often in a spreadsheet, so formula-like cells are always defused; deciding what
//! is a reject, and counting them, is the caller's job.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::csv::starts_formula;
use super::SinkError;
use crate::table::TableKind;

const HEADER: [&str; 5] = ["contact_id", "record_id", "column", "reason", "record_json"];

/// Appends rejected records to `DIR/rejects/<table>.csv`.
pub struct RejectWriter {
    path: PathBuf,
    out: ::csv::Writer<File>,
}

impl RejectWriter {
    /// Opens (or creates, with a header row) the reject file of `table`.
    pub fn open(dir: &Path, table: TableKind) -> Result<Self, SinkError> {
        let rejects = dir.join("rejects");
        fs::create_dir_all(&rejects).map_err(|e| SinkError::io("create directory", &rejects, e))?;
        let path = rejects.join(format!("{}.csv", table.name()));
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| SinkError::io("open", &path, e))?;
        let is_new = file
            .metadata()
            .map_err(|e| SinkError::io("stat", &path, e))?
            .len()
            == 0;
        let out = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(file);
        let mut writer = RejectWriter { path, out };
        if is_new {
            writer.line(&HEADER)?;
        }
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one rejected record and flushes it to the file.
    pub fn reject(
        &mut self,
        contact_id: &str,
        record_id: &str,
        column: &str,
        reason: &str,
        record: &serde_json::Value,
    ) -> Result<(), SinkError> {
        let record_json = record.to_string();
        self.line(&[contact_id, record_id, column, reason, &record_json])
    }

    fn line(&mut self, cells: &[&str]) -> Result<(), SinkError> {
        let encode = |source: ::csv::Error| SinkError::Encode {
            path: self.path.clone(),
            source: source.into(),
        };
        for cell in cells {
            if starts_formula(cell) {
                self.out.write_field(format!("'{cell}")).map_err(encode)?;
            } else {
                self.out.write_field(cell).map_err(encode)?;
            }
        }
        self.out.write_record(None::<&[u8]>).map_err(encode)?;
        self.out
            .flush()
            .map_err(|e| SinkError::io("write", &self.path, e))
    }
}
