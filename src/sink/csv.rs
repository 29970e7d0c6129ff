//! CSV encoding: RFC 4180 quoting, UTF-8 without a byte-order mark, one header row.
//!
//! Records end in a bare `\n`, not RFC 4180's `\r\n`. Every reader this output is meant for
//! (DuckDB, Spark, pandas, polars, spreadsheets) accepts either, while line-oriented tools
//! (`cut`, `awk`, Spark with `multiLine` off) would keep the `\r` as part of the last field.
//! Fields are quoted only when they need it (a comma, quote, `\r` or `\n` inside), so embedded
//! newlines and quotes round-trip through any RFC 4180 reader.
//!
//! Cell spellings: null is an empty field (so are an empty string and an empty list: CSV has
//! no way to tell them apart without a convention the readers would not share), timestamps
//! are RFC 3339 UTC with milliseconds, dates `YYYY-MM-DD`, decimals with exactly their scale,
//! booleans `true`/`false`, lists joined by the configured separator, JSON as compact text.

use std::io::Write;
use std::sync::Arc;

use super::text;
use super::{check_row, value_error, EncodeError, SinkOptions};
use crate::table::{ColumnType, Row, TableSchema, Value};

/// Larger than the csv crate's default 8 KiB so that a file write happens every few hundred
/// rows rather than every few dozen.
const BUFFER_BYTES: usize = 256 * 1024;

/// Writes rows as CSV records.
pub struct CsvEncoder<W: Write> {
    out: ::csv::Writer<W>,
    schema: Arc<TableSchema>,
    safe: bool,
    list_separator: String,
    /// The current row's cells, back to back; `ends[i]` is where cell `i` stops. A row is
    /// spelled here in full before any of it is written, so a cell that cannot be spelled
    /// refuses the whole row.
    cells: String,
    ends: Vec<usize>,
}

impl<W: Write> CsvEncoder<W> {
    /// Starts the file with its header row.
    pub fn new(out: W, schema: Arc<TableSchema>, opts: &SinkOptions) -> Result<Self, EncodeError> {
        let mut out = ::csv::WriterBuilder::new()
            .buffer_capacity(BUFFER_BYTES)
            .terminator(::csv::Terminator::Any(b'\n'))
            .quote_style(::csv::QuoteStyle::Necessary)
            .from_writer(out);
        out.write_record(schema.columns.iter().map(|c| c.name.as_bytes()))?;
        Ok(CsvEncoder {
            out,
            ends: Vec::with_capacity(schema.columns.len()),
            schema,
            safe: opts.csv_safe,
            list_separator: opts.list_separator.clone(),
            cells: String::new(),
        })
    }

    pub fn write(&mut self, row: &Row) -> Result<(), EncodeError> {
        check_row(&self.schema, row)?;
        self.cells.clear();
        self.ends.clear();
        for (col, value) in self.schema.columns.iter().zip(row) {
            let start = self.cells.len();
            spell(&mut self.cells, value, col.ty, &self.list_separator)
                .map_err(|reason| value_error(col, reason))?;
            if self.safe && is_text(col.ty) && starts_formula(&self.cells[start..]) {
                self.cells.insert(start, '\'');
            }
            self.ends.push(self.cells.len());
        }
        let mut start = 0;
        for &end in &self.ends {
            self.out.write_field(&self.cells[start..end])?;
            start = end;
        }
        self.out.write_record(None::<&[u8]>)?;
        Ok(())
    }

    pub fn finish(self) -> Result<W, EncodeError> {
        self.out
            .into_inner()
            .map_err(|e| EncodeError::Io(e.into_error()))
    }
}

fn is_text(ty: ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::String | ColumnType::ListString | ColumnType::Json
    )
}

/// Whether a spreadsheet would read the cell as a formula (OWASP's list of leading characters).
/// A plain signed number (`+447911123456`, `-12.5`) is left alone: a spreadsheet reads it as
/// a number, not a formula, and defusing it would break E.164 phone numbers for importers.
pub fn starts_formula(cell: &str) -> bool {
    let b = cell.as_bytes();
    match b.first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(&b[1..]),
        _ => false,
    }
}

/// Digits with at most one decimal point, nothing else.
fn is_plain_number(rest: &[u8]) -> bool {
    let digits = rest.iter().filter(|c| c.is_ascii_digit()).count();
    let dots = rest.iter().filter(|c| **c == b'.').count();
    digits > 0 && dots <= 1 && digits + dots == rest.len()
}

fn spell(
    out: &mut String,
    value: &Value,
    ty: ColumnType,
    list_separator: &str,
) -> Result<(), String> {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Int(i) => {
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => text::push_float(out, *f),
        Value::Decimal(d) => {
            let scale = match ty {
                ColumnType::Decimal { scale, .. } => scale,
                _ => 0,
            };
            text::push_decimal(out, *d, scale);
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => text::push_date(out, *d)?,
        Value::Timestamp(t) => text::push_timestamp(out, *t)?,
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(list_separator);
                }
                out.push_str(item);
            }
        }
        Value::Json(j) => out.push_str(&j.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, TableKind};

    fn encode(cols: Vec<(&str, ColumnType)>, rows: &[Row], opts: &SinkOptions) -> String {
        let schema = Arc::new(TableSchema {
            table: TableKind::Notes,
            columns: cols
                .into_iter()
                .map(|(name, ty)| Column {
                    name: name.into(),
                    ty,
                })
                .collect(),
        });
        let mut enc = CsvEncoder::new(Vec::new(), schema, opts).unwrap();
        for row in rows {
            enc.write(row).unwrap();
        }
        String::from_utf8(enc.finish().unwrap()).unwrap()
    }

    #[test]
    fn formula_detection() {
        for cell in ["=1+1", "+1+1", "-A1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(starts_formula(cell), "{cell:?}");
        }
        for cell in ["", "a=1", " =1", "'=1", "1", "+1", "-1"] {
            assert!(!starts_formula(cell), "{cell:?}");
        }
    }

    #[test]
    fn signed_plain_numbers_are_not_formulas() {
        assert!(!starts_formula("+447911123456"));
        assert!(!starts_formula("-12.5"));
        assert!(starts_formula("+1+cmd|' /C calc'!A0"));
        assert!(starts_formula("-2+3"));
        assert!(starts_formula("=SUM(A1)"));
        assert!(starts_formula("@import"));
        assert!(starts_formula("+"));
    }

    #[test]
    fn safe_mode_leaves_numbers_alone() {
        let opts = SinkOptions {
            csv_safe: true,
            ..SinkOptions::default()
        };
        let out = encode(
            vec![
                ("n", ColumnType::Int),
                ("f", ColumnType::Float),
                ("s", ColumnType::String),
                ("l", ColumnType::ListString),
            ],
            &[vec![
                Value::Int(-5),
                Value::Float(-0.5),
                Value::String("-5".into()),
                Value::List(vec!["@a".into(), "b".into()]),
            ]],
            &opts,
        );
        assert_eq!(out, "n,f,s,l\n-5,-0.5,-5,'@a;b\n");
    }

    #[test]
    fn a_row_with_an_unspellable_cell_writes_nothing() {
        let schema = Arc::new(TableSchema {
            table: TableKind::Notes,
            columns: vec![
                Column {
                    name: "a".into(),
                    ty: ColumnType::String,
                },
                Column {
                    name: "t".into(),
                    ty: ColumnType::Timestamp,
                },
            ],
        });
        let mut enc = CsvEncoder::new(Vec::new(), schema, &SinkOptions::default()).unwrap();
        let err = enc
            .write(&vec![Value::String("x".into()), Value::Timestamp(i64::MAX)])
            .unwrap_err();
        assert!(err.is_row_error());
        assert!(err.to_string().contains("column `t` (timestamp)"), "{err}");
        enc.write(&vec![Value::String("y".into()), Value::Timestamp(0)])
            .unwrap();
        let out = String::from_utf8(enc.finish().unwrap()).unwrap();
        assert_eq!(out, "a,t\ny,1970-01-01T00:00:00.000Z\n");
    }
}
