//! NDJSON encoding: one compact JSON object per `\n`-terminated line.
//!
//! Typed mode writes the row as an object keyed by column name, in schema order: timestamps
//! and dates as RFC 3339 / `YYYY-MM-DD` strings, lists as arrays, JSON columns as JSON,
//! decimals as JSON numbers with exactly their scale (`12.50`; the text is exact, whatever a
//! reader then does with it), non-finite floats as `null` (JSON has no NaN or infinity).
//! Raw mode writes the record as the API returned it, so fields no mapping names survive.

use std::io::{BufWriter, Write};
use std::sync::Arc;

use super::text;
use super::{check_row, value_error, EncodeError, SinkOptions};
use crate::table::{ColumnType, Row, TableSchema, Value};

const BUFFER_BYTES: usize = 256 * 1024;

/// Writes rows as NDJSON lines.
pub struct NdjsonEncoder<W: Write> {
    out: BufWriter<W>,
    schema: Arc<TableSchema>,
    raw: bool,
    /// `"name":` for each column, escaped once rather than once per row.
    keys: Vec<Vec<u8>>,
    /// The line being built: a row is written only once all of it is spelled.
    line: Vec<u8>,
    scratch: String,
}

impl<W: Write> NdjsonEncoder<W> {
    pub fn new(out: W, schema: Arc<TableSchema>, opts: &SinkOptions) -> Self {
        let keys = schema
            .columns
            .iter()
            .map(|c| {
                let mut key = serde_json::Value::from(c.name.as_str())
                    .to_string()
                    .into_bytes();
                key.push(b':');
                key
            })
            .collect();
        NdjsonEncoder {
            out: BufWriter::with_capacity(BUFFER_BYTES, out),
            schema,
            raw: opts.raw_ndjson,
            keys,
            line: Vec::new(),
            scratch: String::new(),
        }
    }

    pub fn write(&mut self, row: &Row, raw: Option<&serde_json::Value>) -> Result<(), EncodeError> {
        self.line.clear();
        if self.raw {
            let raw = raw.ok_or(EncodeError::MissingRaw)?;
            serde_json::to_writer(&mut self.line, raw)?;
        } else {
            check_row(&self.schema, row)?;
            self.line.push(b'{');
            for (i, (col, value)) in self.schema.columns.iter().zip(row).enumerate() {
                if i > 0 {
                    self.line.push(b',');
                }
                self.line.extend_from_slice(&self.keys[i]);
                self.scratch.clear();
                spell(&mut self.line, &mut self.scratch, value, col.ty)
                    .map_err(|reason| value_error(col, reason))?;
            }
            self.line.push(b'}');
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok(())
    }

    pub fn finish(self) -> Result<W, EncodeError> {
        self.out
            .into_inner()
            .map_err(|e| EncodeError::Io(e.into_error()))
    }
}

fn spell(
    line: &mut Vec<u8>,
    scratch: &mut String,
    value: &Value,
    ty: ColumnType,
) -> Result<(), String> {
    match value {
        Value::Null => line.extend_from_slice(b"null"),
        Value::String(s) => json(line, s)?,
        Value::Int(i) => json(line, i)?,
        Value::Float(f) if f.is_finite() => json(line, f)?,
        Value::Float(_) => line.extend_from_slice(b"null"),
        Value::Decimal(d) => {
            let scale = match ty {
                ColumnType::Decimal { scale, .. } => scale,
                _ => 0,
            };
            text::push_decimal(scratch, *d, scale);
            line.extend_from_slice(scratch.as_bytes());
        }
        Value::Bool(b) => line.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Date(d) => {
            text::push_date(scratch, *d)?;
            quoted(line, scratch);
        }
        Value::Timestamp(t) => {
            text::push_timestamp(scratch, *t)?;
            quoted(line, scratch);
        }
        Value::List(items) => json(line, items)?,
        Value::Json(j) => json(line, j)?,
    }
    Ok(())
}

/// Dates and timestamps are plain ASCII digits and punctuation: nothing to escape.
fn quoted(line: &mut Vec<u8>, s: &str) {
    line.push(b'"');
    line.extend_from_slice(s.as_bytes());
    line.push(b'"');
}

fn json<T: serde::Serialize + ?Sized>(line: &mut Vec<u8>, value: &T) -> Result<(), String> {
    serde_json::to_writer(line, value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, TableKind};

    #[test]
    fn non_finite_floats_become_null_and_keys_are_escaped() {
        let schema = Arc::new(TableSchema {
            table: TableKind::Tasks,
            columns: vec![
                Column {
                    name: "a\"b".into(),
                    ty: ColumnType::Float,
                },
                Column {
                    name: "d".into(),
                    ty: ColumnType::Decimal {
                        precision: 10,
                        scale: 3,
                    },
                },
            ],
        });
        let mut enc = NdjsonEncoder::new(Vec::new(), schema, &SinkOptions::default());
        enc.write(&vec![Value::Float(f64::NAN), Value::Decimal(-1500)], None)
            .unwrap();
        enc.write(&vec![Value::Float(0.25), Value::Null], None)
            .unwrap();
        let out = String::from_utf8(enc.finish().unwrap()).unwrap();
        assert_eq!(
            out,
            "{\"a\\\"b\":null,\"d\":-1.500}\n{\"a\\\"b\":0.25,\"d\":null}\n"
        );
    }
}
