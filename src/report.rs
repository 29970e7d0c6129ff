//! Per-record outcome files: the one place that writes, for people, what happened to records.
//! Export's rejects, `DIR/rejects/<table>/part-NNNNN.csv` with the columns `contact_id,
//! record_id, column, reason, record_json`; and the per-row reports of the jobs that write
//! (`succeeded.csv`, `failed.csv`), made from the outcomes recorded in the state database.
//!
//! Rejects are part files committed together with the data chunk they belong to, so a resumed
//! run never repeats or loses one. They are CSV with spreadsheet formulas always defused:
//! people open them in a spreadsheet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sink::{Format, PartFile, PartWriter, SinkError, SinkOptions};
use crate::state::{RowRecord, RowStatus, StateDb};
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
    /// The folder of this table's reject part files.
    folder: PathBuf,
    schema: Arc<TableSchema>,
    part: u32,
    writer: Option<PartWriter>,
}

impl RejectPart {
    pub fn new(out: &Path, table: TableKind, part: u32) -> RejectPart {
        RejectPart::in_folder(rejects_dir(out).join(table.name()), table, part)
    }

    /// The reject part file `part` of `table`, in `folder` (wherever the layout puts it).
    pub fn in_folder(folder: PathBuf, table: TableKind, part: u32) -> RejectPart {
        let columns = REJECT_COLUMNS
            .into_iter()
            .map(|name| Column {
                name: name.into(),
                ty: ColumnType::String,
            })
            .collect();
        RejectPart {
            folder,
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
            self.writer = Some(PartWriter::create_in(
                &self.folder,
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

/// The per-row report files of a job that writes, made from its recorded outcomes, so every
/// input row is in exactly one of them, also across resumed runs.
///
/// - `succeeded.csv`: `table, input_file, input_row, key, target_id, action, note` (what was
///   not carried, fields that did not stick under `--verify`).
/// - `failed.csv` (contacts or tag rows), `failed-tasks.csv`, `failed-notes.csv`: the input
///   row's own columns as they were read, then `input_file`, `input_row`, `error`, so the file
///   can be fixed and fed back as input (a mapping ignores the three extra columns). The own
///   columns are left as given; only `error`, which is ours, has formulas defused.
///
/// A row left `sending` by an interrupted run is reported failed ("rerun to check") until a
/// rerun settles it. The rows are read from the state database one at a time, twice (the
/// failed files' header is the union of their rows' columns), so memory stays flat however
/// many rows the job has; `count` sees every row's table and status once.
pub fn write_row_reports(
    dir: &Path,
    db: &StateDb,
    job: &str,
    mut count: impl FnMut(&str, RowStatus),
) -> std::io::Result<RowReports> {
    std::fs::create_dir_all(dir)?;
    let mut reports = RowReports::default();
    // Per table, in order: the failed rows' columns (in the order first seen) and how many.
    let mut tables: Vec<(String, Vec<String>, u64)> = Vec::new();
    let path = dir.join("succeeded.csv");
    let mut succeeded = 0;
    write_atomically(&path, |w| {
        w.write_record([
            "table",
            "input_file",
            "input_row",
            "key",
            "target_id",
            "action",
            "note",
        ])?;
        let each = db.for_each_row(job, None, |r| {
            count(&r.table, r.status);
            if tables.last().is_none_or(|(t, _, _)| *t != r.table) {
                tables.push((r.table.clone(), Vec::new(), 0));
            }
            if is_failed(&r) {
                let (_, columns, n) = tables.last_mut().expect("pushed above");
                *n += 1;
                for k in raw_of(&r).keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
                return Ok(());
            }
            succeeded += 1;
            let row = r.row.to_string();
            let target = r.target_id.as_deref().unwrap_or("");
            let note = defused(r.detail.clone().unwrap_or_default());
            w.write_record([
                &r.table,
                &r.file,
                &row,
                &r.key,
                target,
                r.status.as_str(),
                &note,
            ])
        });
        each.map_err(|e| ::csv::Error::from(std::io::Error::other(e.to_string())))?
    })?;
    reports.succeeded = (path, succeeded);
    for (table, columns, n) in tables {
        let name = match table.as_str() {
            "tasks" | "notes" => format!("failed-{table}.csv"),
            _ => "failed.csv".to_string(),
        };
        let path = dir.join(name);
        write_failed(&path, db, job, &table, &columns)?;
        reports.failed.push((path, n));
    }
    Ok(reports)
}

/// `1 row`, `2 rows`.
fn rows(n: u64) -> String {
    match n {
        1 => "1 row".to_string(),
        n => format!("{n} rows"),
    }
}

/// Whether a recorded row belongs in a failed report: failed, or left `sending`.
fn is_failed(r: &RowRecord) -> bool {
    !(r.status.is_final() && r.status != RowStatus::Failed)
}

/// The input row's own columns, as recorded.
fn raw_of(r: &RowRecord) -> serde_json::Map<String, serde_json::Value> {
    r.raw
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// A dry run's `would-fail.csv`: every row that would fail, with its table, its own columns,
/// `input_file`, `input_row` and the reason; answers the file and its row count.
pub fn write_would_fail(dir: &Path, failed: &[RowRecord]) -> std::io::Result<(PathBuf, u64)> {
    std::fs::create_dir_all(dir)?;
    let mut columns: Vec<String> = Vec::new();
    for r in failed {
        for k in raw_of(r).keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let path = dir.join("would-fail.csv");
    write_atomically(&path, |w| {
        let mut header = vec!["table".to_string()];
        header.extend(columns.iter().cloned());
        header.extend(["input_file", "input_row", "error"].map(String::from));
        w.write_record(&header)?;
        for r in failed {
            let raw = raw_of(r);
            let mut line = vec![r.table.clone()];
            line.extend(columns.iter().map(|c| match raw.get(c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }));
            let error = defused(r.detail.clone().unwrap_or_default());
            line.extend([r.file.clone(), r.row.to_string(), error]);
            w.write_record(&line)?;
        }
        Ok(())
    })?;
    Ok((path, failed.len() as u64))
}

/// The report files written, with their line counts.
#[derive(Debug, Default)]
pub struct RowReports {
    pub succeeded: (PathBuf, u64),
    pub failed: Vec<(PathBuf, u64)>,
}

impl RowReports {
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    /// Where the reports went, for the summary on stderr (failed files only when not empty).
    pub fn print(&self) {
        let (path, n) = &self.succeeded;
        eprintln!("Reports: {} ({})", path.display(), rows(*n));
        for (path, n) in self.failed.iter().filter(|(_, n)| *n > 0) {
            eprintln!("         {} ({})", path.display(), rows(*n));
        }
    }
}

fn write_failed(
    path: &Path,
    db: &StateDb,
    job: &str,
    table: &str,
    columns: &[String],
) -> std::io::Result<()> {
    write_atomically(path, |w| {
        let mut header = columns.to_vec();
        header.extend(["input_file", "input_row", "error"].map(String::from));
        w.write_record(&header)?;
        let each = db.for_each_row(job, Some(table), |r| {
            if !is_failed(&r) {
                return Ok(());
            }
            let raw = raw_of(&r);
            let mut line: Vec<String> = columns
                .iter()
                .map(|c| match raw.get(c) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect();
            let error = match r.status {
                // An interrupted run: the write may or may not have happened; a rerun checks.
                RowStatus::Sending => {
                    "interrupted while sending; rerun to check and finish it".into()
                }
                _ => defused(r.detail.clone().unwrap_or_default()),
            };
            line.extend([r.file.clone(), r.row.to_string(), error]);
            w.write_record(&line)
        });
        each.map_err(|e| ::csv::Error::from(std::io::Error::other(e.to_string())))?
    })
}

/// A cell of ours, with a spreadsheet formula defused.
fn defused(text: String) -> String {
    if crate::sink::starts_formula(&text) {
        format!("'{text}")
    } else {
        text
    }
}

/// Write a CSV file through a temporary file and a rename: a reader never sees half of it.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut ::csv::Writer<std::fs::File>) -> ::csv::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let mut w = ::csv::Writer::from_path(&tmp)?;
    fill(&mut w).map_err(std::io::Error::other)?;
    w.flush()?;
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .sync_all()?;
    std::fs::rename(&tmp, path)
}
