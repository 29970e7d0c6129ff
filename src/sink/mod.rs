//! Output sinks: typed rows in, part files out, laid out as a dataset that DuckDB, Spark,
//! pandas and polars read as is (`DIR/<table>/part-00000.parquet`, `part-00001.parquet`, ...).
//!
//! Three formats share one shape. [`Encoder`] turns rows into bytes on any `Write` (tests and
//! benches use a `Vec<u8>`); [`PartWriter`] puts an encoder on a hidden temporary file and only
//! gives it its visible name once it is complete and durable, so a killed run never leaves a
//! file that looks finished. [`clean_uncommitted`] sweeps what a crash left behind. Files of
//! rejected records are `report`'s, written through the same part files. [`Store`] is where
//! finished files go: `--out` parsed ([`OutTarget`]), a local folder or an object store
//! (`s3://`, `gs://`, `az://`) behind put/get/list/delete.
//!
//! This module decides nothing about *which* part numbers exist or are committed: the export
//! job numbers parts, and the state database remembers which ones are committed. Mapping API
//! records to rows is `mapping`'s job; a row reaching a sink is trusted to follow its schema,
//! and one that does not is refused with a row error (see [`SinkError::is_row_error`]) without
//! harming the part being written.

mod csv;
mod ndjson;
mod parquet;
mod part;
mod store;
mod text;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::table::{ColumnType, Row, TableSchema, Value};

pub use self::csv::{starts_formula, CsvEncoder};
pub use self::ndjson::NdjsonEncoder;
pub use self::parquet::{arrow_schema, ParquetEncoder};
pub use self::part::{
    clean_uncommitted, clean_uncommitted_in, parse_part_name, part_file_name, part_path, table_dir,
    temp_file_name, PartFile, PartWriter,
};
pub use self::store::{staging_dir, OutTarget, Store, UPLOAD_CHUNK, WRITABLE};

/// Output file format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Ndjson,
}

impl Format {
    /// File extension of a part file, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    pub const ALL: [Format; 3] = [Format::Parquet, Format::Csv, Format::Ndjson];
}

/// How part files are encoded.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub format: Format,
    /// CSV: defuse spreadsheet formulas by prefixing `'` to text cells that start with
    /// `=`, `+`, `-`, `@`, tab or carriage return (OWASP "CSV injection"). Only text,
    /// list and JSON columns are touched: numbers the sink spells itself cannot be formulas,
    /// and prefixing `-5` would turn a number into text.
    pub csv_safe: bool,
    /// CSV: how the items of a `list<string>` cell are joined. Items are not escaped, so an
    /// item containing the separator cannot be told apart from two items; Parquet and NDJSON
    /// keep lists as lists.
    pub list_separator: String,
    /// Parquet: rows per row group.
    pub row_group_rows: usize,
    /// Parquet: zstd compression level (1-22).
    pub zstd_level: i32,
    /// NDJSON: write each record as the API returned it (every field kept, mapped or not)
    /// instead of the typed row.
    pub raw_ndjson: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            format: Format::Parquet,
            csv_safe: false,
            list_separator: ";".to_string(),
            row_group_rows: 64 * 1024,
            zstd_level: 3,
            raw_ndjson: false,
        }
    }
}

/// Why rows could not be encoded. Carries no path: [`SinkError`] adds it.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the row has {got} values but the table has {want} columns")]
    RowWidth { got: usize, want: usize },
    #[error("column `{column}` ({ty}): {reason}")]
    Value {
        column: String,
        ty: String,
        reason: String,
    },
    #[error("raw NDJSON output is on but no raw record was given")]
    MissingRaw,
    #[error("invalid sink options: {0}")]
    Options(String),
    #[error("table cannot be written as {format}: {reason}")]
    Schema {
        format: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("Parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
}

impl EncodeError {
    /// True when only the offered row was refused: nothing of it was written and the
    /// encoder can take further rows.
    pub fn is_row_error(&self) -> bool {
        matches!(
            self,
            EncodeError::RowWidth { .. } | EncodeError::Value { .. } | EncodeError::MissingRaw
        )
    }
}

/// A sink failure, naming the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: EncodeError,
    },
    #[error(
        "{} already exists; clean uncommitted parts before writing this part again",
        path.display()
    )]
    PartExists { path: PathBuf },
}

impl SinkError {
    /// True when only the offered row was refused and the writer is still usable: the
    /// caller should send the record to its reject file and go on.
    pub fn is_row_error(&self) -> bool {
        matches!(self, SinkError::Encode { source, .. } if source.is_row_error())
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SinkError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Encodes rows of one table in one format onto any writer.
pub struct Encoder<W: Write + Send> {
    inner: Inner<W>,
    rows: u64,
}

enum Inner<W: Write + Send> {
    // Boxed: the csv crate's state and the Arrow builders are several times larger than
    // the NDJSON encoder.
    Csv(Box<CsvEncoder<W>>),
    Parquet(Box<ParquetEncoder<W>>),
    Ndjson(NdjsonEncoder<W>),
}

impl<W: Write + Send> Encoder<W> {
    /// Starts an encoder in `opts.format`; CSV writes its header row at once.
    pub fn new(out: W, schema: Arc<TableSchema>, opts: &SinkOptions) -> Result<Self, EncodeError> {
        if schema.columns.is_empty() && !(opts.format == Format::Ndjson && opts.raw_ndjson) {
            return Err(EncodeError::Schema {
                format: opts.format.extension(),
                reason: format!("table `{}` has no columns", schema.table),
            });
        }
        let inner = match opts.format {
            Format::Csv => Inner::Csv(Box::new(CsvEncoder::new(out, schema, opts)?)),
            Format::Parquet => Inner::Parquet(Box::new(ParquetEncoder::new(out, schema, opts)?)),
            Format::Ndjson => Inner::Ndjson(NdjsonEncoder::new(out, schema, opts)),
        };
        Ok(Encoder { inner, rows: 0 })
    }

    /// Encodes one row. `raw` is the record as the API returned it; only raw NDJSON uses it.
    /// On a row error (see [`EncodeError::is_row_error`]) nothing was written.
    pub fn write(&mut self, row: &Row, raw: Option<&serde_json::Value>) -> Result<(), EncodeError> {
        match &mut self.inner {
            Inner::Csv(e) => e.write(row)?,
            Inner::Parquet(e) => e.write(row)?,
            Inner::Ndjson(e) => e.write(row, raw)?,
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes whatever is buffered (the Parquet footer included) and hands back the writer.
    pub fn finish(self) -> Result<W, EncodeError> {
        match self.inner {
            Inner::Csv(e) => e.finish(),
            Inner::Parquet(e) => e.finish(),
            Inner::Ndjson(e) => e.finish(),
        }
    }
}

/// Checks that a row fits its schema, so encoders can append it without failing halfway
/// through (which would leave a half row in a CSV line or in the Arrow builders).
pub(crate) fn check_row(schema: &TableSchema, row: &Row) -> Result<(), EncodeError> {
    if row.len() != schema.columns.len() {
        return Err(EncodeError::RowWidth {
            got: row.len(),
            want: schema.columns.len(),
        });
    }
    for (col, value) in schema.columns.iter().zip(row) {
        let fits = match (col.ty, value) {
            (_, Value::Null) => true,
            (ColumnType::String, Value::String(_))
            | (ColumnType::Int, Value::Int(_))
            | (ColumnType::Float, Value::Float(_))
            | (ColumnType::Bool, Value::Bool(_))
            | (ColumnType::Date, Value::Date(_))
            | (ColumnType::Timestamp, Value::Timestamp(_))
            | (ColumnType::ListString, Value::List(_))
            | (ColumnType::Json, Value::Json(_)) => true,
            (ColumnType::Decimal { precision, .. }, Value::Decimal(v)) => {
                // 10^precision overflows i128 only beyond 38 digits, where there is no bound
                // to check here (Parquet refuses such a schema up front).
                let fits = 10_i128
                    .checked_pow(u32::from(precision))
                    .is_none_or(|limit| v.unsigned_abs() < limit.unsigned_abs());
                if !fits {
                    return Err(value_error(
                        col,
                        format!("unscaled value {v} has more than {precision} digits"),
                    ));
                }
                true
            }
            _ => false,
        };
        if !fits {
            return Err(value_error(
                col,
                format!("got a value of type {}", value_kind(value)),
            ));
        }
    }
    Ok(())
}

pub(crate) fn value_error(col: &crate::table::Column, reason: String) -> EncodeError {
    EncodeError::Value {
        column: col.name.clone(),
        ty: col.ty.spelling(),
        reason,
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::String(_) => "string",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Decimal(_) => "decimal",
        Value::Bool(_) => "bool",
        Value::Date(_) => "date",
        Value::Timestamp(_) => "timestamp",
        Value::List(_) => "list<string>",
        Value::Json(_) => "json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, TableKind};

    fn schema() -> TableSchema {
        TableSchema {
            table: TableKind::Contacts,
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::String,
                },
                Column {
                    name: "amount".into(),
                    ty: ColumnType::Decimal {
                        precision: 4,
                        scale: 2,
                    },
                },
            ],
        }
    }

    #[test]
    fn check_row_accepts_matching_values_and_nulls() {
        let s = schema();
        check_row(&s, &vec![Value::String("a".into()), Value::Decimal(9999)]).unwrap();
        check_row(&s, &vec![Value::Null, Value::Decimal(-9999)]).unwrap();
    }

    #[test]
    fn check_row_names_the_offending_column() {
        let s = schema();
        let err = check_row(&s, &vec![Value::Int(1), Value::Null]).unwrap_err();
        assert!(err.is_row_error());
        assert_eq!(
            err.to_string(),
            "column `id` (string): got a value of type int"
        );
        let err = check_row(&s, &vec![Value::Null, Value::Decimal(10_000)]).unwrap_err();
        assert!(err.to_string().contains("more than 4 digits"), "{err}");
        let err = check_row(&s, &vec![Value::Null]).unwrap_err();
        assert!(matches!(err, EncodeError::RowWidth { got: 1, want: 2 }));
    }

    #[test]
    fn extensions() {
        assert_eq!(Format::Parquet.extension(), "parquet");
        assert_eq!(Format::Csv.extension(), "csv");
        assert_eq!(Format::Ndjson.extension(), "ndjson");
    }
}
