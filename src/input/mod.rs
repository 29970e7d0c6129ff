//! Input files for `load` and `tag`: CSV, NDJSON and Parquet, as one file or a folder of part
//! files, read row by row into [`InputRecord`]s that remember their file and row number.
//!
//! Reading is streamed: CSV and NDJSON a record at a time, Parquet a batch at a time, so memory
//! stays bounded by the largest row (or batch), never the file. A malformed row is not fatal: it
//! comes out as a [`BadRow`] (with its row number, a reason and whatever columns could be read,
//! for the failed report) and reading goes on. Only a file that cannot be read at all ends the
//! reader, with an [`InputError`] naming the path. What the columns mean is `mapping`'s business,
//! and what happens to each row is the job's.

mod chunked;
mod count;
mod csv;
mod files;
mod ndjson;
mod parquet;
mod values;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::table::{TableKind, MANIFEST};

pub use self::chunked::Chunked;
pub use self::count::estimate_rows;
pub use self::files::format_of;

/// How an input file is encoded. Without an explicit format, the extension decides: `.csv`
/// (comma), `.tsv` (tab), `.ndjson` or `.jsonl`, `.parquet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// RFC 4180 CSV in UTF-8 (a BOM is allowed), with a header row naming the columns. Lines
    /// end with LF or CRLF.
    Csv {
        delimiter: u8,
    },
    /// One JSON object per line; blank lines are skipped.
    Ndjson,
    Parquet,
}

/// Limits that turn a pathological row into a [`BadRow`] (or, where no resync is possible, an
/// [`InputError`]) instead of unbounded memory use.
#[derive(Clone, Debug)]
pub struct InputOptions {
    /// Largest cell (a CSV field, a top-level JSON or Parquet string) in bytes; a row holding a
    /// larger one is a [`BadRow`]. Default 1 MiB.
    pub max_cell_bytes: usize,
    /// Largest row in bytes. An NDJSON line over it is a [`BadRow`]. A CSV row over it is fatal:
    /// it is nearly always an unclosed quote, which swallows the rest of the file. Default 64 MiB.
    pub max_row_bytes: usize,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            max_cell_bytes: 1 << 20,
            max_row_bytes: 64 << 20,
        }
    }
}

/// One row of input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRecord {
    pub file: Arc<PathBuf>,
    /// The row as a person finds it: for CSV the line on which the record starts (the header is
    /// line 1), for NDJSON the line number, for Parquet the row index + 1.
    pub row: u64,
    /// Column name → value, in file order. CSV cells are strings (an empty cell is `""`); NDJSON
    /// values are as written; Parquet values are converted (see [`open`]).
    pub fields: Map<String, Value>,
}

/// A row that could not be read. Reading goes on with the next row.
#[derive(Clone, Debug, PartialEq)]
pub struct BadRow {
    pub file: Arc<PathBuf>,
    /// Numbered as [`InputRecord::row`].
    pub row: u64,
    /// What is wrong, for a person: "row has 5 fields but the header has 4".
    pub reason: String,
    /// The columns that could be read (name, text), so the failed report can carry the row;
    /// `None` when nothing could (a line that is not JSON). Cells over the size limit are left
    /// out; CSV cells with invalid UTF-8 are kept with U+FFFD in place of the bad bytes; CSV
    /// fields beyond the header are named `column N`.
    pub raw: Option<Vec<(String, String)>>,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.row, self.reason)
    }
}

pub type RowResult = Result<InputRecord, BadRow>;

/// A file (or folder) that cannot be read as input. Always names the path.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a readable {format} file: {reason}", path.display())]
    NotFormat {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    /// A CSV header that cannot name the columns: missing, empty names, duplicates.
    #[error("{}: {reason}", path.display())]
    Header { path: PathBuf, reason: String },
    #[error(
        "{}: column `{column}` has type {data_type}, which cannot be read as input; write it \
         as a string, number, boolean, date, timestamp, decimal or list",
        path.display()
    )]
    Unsupported {
        path: PathBuf,
        column: String,
        data_type: String,
    },
    #[error(
        "{}: the row starting at line {line} is over the {limit}-byte row limit (an unclosed \
         quote?)",
        path.display()
    )]
    RowTooLarge {
        path: PathBuf,
        line: u64,
        limit: usize,
    },
    /// The path itself: missing, of unknown format, a folder without part files, not an export.
    #[error("{}: {reason}", path.display())]
    Path { path: PathBuf, reason: String },
}

impl InputError {
    pub fn path(&self) -> &Path {
        match self {
            InputError::Io { path, .. }
            | InputError::NotFormat { path, .. }
            | InputError::Header { path, .. }
            | InputError::Unsupported { path, .. }
            | InputError::RowTooLarge { path, .. }
            | InputError::Path { path, .. } => path,
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        InputError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Open a file, or a folder of part files, for reading.
///
/// A folder's part files are read in file-name order (`part-00000.csv`, `part-00001.csv`, ...),
/// skipping sub-folders, hidden and temporary files (names starting with `.`) and files of other
/// formats. Without `format`, the extensions decide, and a folder mixing formats is refused.
///
/// The first file is opened here, so a missing or bad header fails now rather than at the first
/// row. CSV lines whose fields are all empty (`,,,` from spreadsheets) are skipped, as are blank
/// NDJSON lines.
///
/// Parquet values become JSON as follows: strings (and binary holding UTF-8), booleans and
/// integers as themselves; floats as numbers (NaN and infinities as null); timestamps as RFC 3339
/// in UTC (`2024-05-01T09:30:00.000Z`; micro and nanosecond columns keep their digits); dates as
/// `YYYY-MM-DD`; decimals as strings (`"12.30"`: no precision is lost); lists as arrays; structs
/// and maps as JSON text; dictionary columns as their values. Other types (times, durations,
/// fixed-size binary, unions) fail here.
pub fn open(
    path: &Path,
    format: Option<InputFormat>,
    opts: &InputOptions,
) -> Result<InputReader, InputError> {
    let (files, format) = files::resolve(path, format)?;
    let mut reader = InputReader {
        files: files.into_iter().map(Arc::new).collect(),
        next: 0,
        format,
        opts: opts.clone(),
        current: None,
        done: false,
    };
    reader.open_next()?;
    Ok(reader)
}

/// The table folders (`contacts/`, `tasks/`, ...) of an export's root folder, those that exist,
/// each ready for [`open`]. The root must hold the export's `_manifest.json`: a folder without one
/// is not a finished export.
pub fn export_tables(root: &Path) -> Result<Vec<(TableKind, PathBuf)>, InputError> {
    if !root.join(MANIFEST).is_file() {
        return Err(InputError::Path {
            path: root.to_path_buf(),
            reason: format!("is not the folder of a finished export: it has no {MANIFEST}"),
        });
    }
    Ok(TableKind::ALL
        .into_iter()
        .map(|t| (t, root.join(t.name())))
        .filter(|(_, dir)| dir.is_dir())
        .collect())
}

/// Rows of one file or a folder of part files, in order. Yields `Ok(row result)` per row, and
/// at most one `Err`, after which it ends.
pub struct InputReader {
    files: Vec<Arc<PathBuf>>,
    /// Index in `files` of the next file to open.
    next: usize,
    format: InputFormat,
    opts: InputOptions,
    current: Option<FileReader>,
    /// Set after a fatal error, so the reader never goes on past it.
    done: bool,
}

impl InputReader {
    /// The files this reader reads, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.as_path())
    }

    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// The column names of the file being read, when the file declares them (CSV header,
    /// Parquet schema); NDJSON rows each have their own.
    pub fn columns(&self) -> Option<&[String]> {
        match self.current.as_ref()? {
            FileReader::Csv(r) => Some(r.columns()),
            FileReader::Parquet(r) => Some(r.columns()),
            FileReader::Ndjson(_) => None,
        }
    }

    /// Open the next file, if any is left.
    fn open_next(&mut self) -> Result<(), InputError> {
        let Some(file) = self.files.get(self.next).cloned() else {
            return Ok(());
        };
        self.next += 1;
        self.current = Some(match self.format {
            InputFormat::Csv { delimiter } => {
                FileReader::Csv(csv::CsvFile::open(file, delimiter, &self.opts)?)
            }
            InputFormat::Ndjson => FileReader::Ndjson(ndjson::NdjsonFile::open(file, &self.opts)?),
            InputFormat::Parquet => {
                FileReader::Parquet(parquet::ParquetFile::open(file, &self.opts)?)
            }
        });
        Ok(())
    }
}

impl Iterator for InputReader {
    type Item = Result<RowResult, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let row = match self.current.as_mut() {
                Some(FileReader::Csv(r)) => r.next_row(),
                Some(FileReader::Ndjson(r)) => r.next_row(),
                Some(FileReader::Parquet(r)) => r.next_row(),
                None => {
                    self.done = true;
                    return None;
                }
            };
            match row {
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(row)) => return Some(Ok(row)),
                None => {
                    self.current = None;
                    if let Err(e) = self.open_next() {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
        None
    }
}

enum FileReader {
    Csv(csv::CsvFile),
    Ndjson(ndjson::NdjsonFile),
    Parquet(parquet::ParquetFile),
}

/// Checks every format applies to a decoded row: no cell over the size limit, no NUL (which
/// the API and most databases refuse, and which is nearly always a sign of a binary file).
/// Only top-level strings are checked; nested values are bounded by the row limit.
fn check_cells(fields: &Map<String, Value>, opts: &InputOptions) -> Result<(), String> {
    for (name, value) in fields {
        let Value::String(s) = value else { continue };
        if s.len() > opts.max_cell_bytes {
            return Err(over_limit(s.len(), name, opts));
        }
        if let Some(reason) = control_char(name, s) {
            return Err(reason);
        }
    }
    Ok(())
}

/// A NUL in a cell: nearly always a binary file, or UTF-16 read as UTF-8, and refused by the
/// API. Every other character, control characters included (GHL stores a bell or a vertical
/// tab it was given, and a migration must carry them back), is sent as it is, JSON-escaped.
fn control_char(column: &str, s: &str) -> Option<String> {
    s.contains('\0')
        .then(|| format!("embedded NUL byte in column `{column}`"))
}

/// Refuse a file whose first row has none of the `wanted` columns: nearly always a CSV without
/// its header row, whose first data row became the header (and would be lost) while every other
/// row failed as "missing". Used by the jobs before their first write.
pub fn check_wanted_columns(chunk: &[RowResult], wanted: &[&str]) -> Result<(), String> {
    let Some(Ok(first)) = chunk.first() else {
        return Ok(());
    };
    if wanted.is_empty() || wanted.iter().any(|c| first.fields.contains_key(*c)) {
        return Ok(());
    }
    let quote = |v: &mut dyn Iterator<Item = &str>| {
        v.map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    };
    Err(format!(
        "{}: none of the columns {} is in the file, whose columns are {}; is the header row \
         missing?",
        first.file.display(),
        quote(&mut wanted.iter().copied()),
        quote(&mut first.fields.keys().map(String::as_str))
    ))
}

fn over_limit(len: usize, column: &str, opts: &InputOptions) -> String {
    format!(
        "cell of {len} bytes in column `{column}` is over the {}-byte limit",
        opts.max_cell_bytes
    )
}

/// A decoded row that failed [`check_cells`], with its readable columns for the report.
fn bad_json_row(
    file: &Arc<PathBuf>,
    row: u64,
    reason: String,
    fields: &Map<String, Value>,
    opts: &InputOptions,
) -> BadRow {
    let raw = fields
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Left empty, not left out: the report keeps every column.
            let text = if text.len() <= opts.max_cell_bytes {
                text
            } else {
                String::new()
            };
            (k.clone(), text)
        })
        .collect();
    BadRow {
        file: file.clone(),
        row,
        reason,
        raw: Some(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn assert_send<T: Send>() {}

    #[test]
    fn reader_can_move_to_a_worker_thread() {
        assert_send::<InputReader>();
    }

    /// Read everything, panicking on a fatal error.
    pub(super) fn read_all(path: &Path, format: Option<InputFormat>) -> Vec<RowResult> {
        open(path, format, &InputOptions::default())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn folder_of_parts_in_name_order_skipping_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("part-00001.csv"), "id\nc\n").unwrap();
        fs::write(d.join("part-00000.csv"), "id\na\nb\n").unwrap();
        fs::write(d.join(".part-00002.csv.tmp"), "id\nhalf-written\n").unwrap();
        fs::write(d.join("notes.txt"), "not input").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/part-00000.csv"), "id\nnested\n").unwrap();

        let rows = read_all(d, None);
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap();
                let name = r.file.file_name().unwrap().to_string_lossy().into_owned();
                (name, r.row, r.fields["id"].as_str().unwrap().to_string())
            })
            .collect();
        let want = [
            ("part-00000.csv", 2, "a"),
            ("part-00000.csv", 3, "b"),
            ("part-00001.csv", 2, "c"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(f, r, v)| (f.to_string(), *r, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn folder_mixing_formats_needs_an_explicit_format() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("part-00000.csv"), "id\na\n").unwrap();
        fs::write(dir.path().join("part-00001.ndjson"), "{\"id\":\"b\"}\n").unwrap();
        let err = open(dir.path(), None, &InputOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("more than one format"), "{err}");

        let rows = read_all(dir.path(), Some(InputFormat::Ndjson));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].as_ref().unwrap().fields["id"], "b");
    }

    #[test]
    fn a_bad_later_part_is_fatal_after_the_good_rows() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("part-00000.csv"), "id\na\n").unwrap();
        fs::write(dir.path().join("part-00001.csv"), "id,id\nb,b\n").unwrap();
        let mut r = open(dir.path(), None, &InputOptions::default()).unwrap();
        assert_eq!(r.columns().unwrap(), ["id"]);
        assert!(r.next().unwrap().unwrap().is_ok());
        let err = r.next().unwrap().unwrap_err();
        assert!(err.path().ends_with("part-00001.csv"), "{err}");
        assert!(r.next().is_none());
    }

    #[test]
    fn path_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let opts = InputOptions::default();
        let cases: Vec<(PathBuf, &str)> = vec![
            (d.join("missing.csv"), "cannot read"),
            (d.join("data.txt"), "cannot tell the format"),
            (d.to_path_buf(), "no part files"),
        ];
        fs::write(d.join("data.txt"), "x").unwrap();
        for (path, want) in cases {
            let err = open(&path, None, &opts).err().unwrap();
            assert!(err.to_string().contains(want), "{path:?}: {err}");
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
    }

    #[test]
    fn export_root_lists_its_table_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let err = export_tables(root).unwrap_err();
        assert!(err.to_string().contains("_manifest.json"), "{err}");

        fs::write(root.join(MANIFEST), "{}").unwrap();
        for sub in ["contacts", "notes", "rejects"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        fs::write(root.join("tasks"), "a file, not a table folder").unwrap();
        let tables = export_tables(root).unwrap();
        assert_eq!(
            tables,
            [
                (TableKind::Contacts, root.join("contacts")),
                (TableKind::Notes, root.join("notes")),
            ]
        );
    }
}
