//! Parquet encoding with real logical types, through Arrow builders and parquet's
//! `ArrowWriter`.
//!
//! Column types: timestamp -> `Timestamp(Millisecond, "UTC")`, date -> `Date32`,
//! bool -> `Boolean`, int -> `Int64`, float -> `Float64`, decimal(p,s) -> `Decimal128(p,s)`,
//! `list<string>` -> `List<Utf8>` (nullable items), string and json -> `Utf8` (json as compact
//! JSON text). Every column is nullable and columns keep schema order. Pages are zstd
//! compressed.
//!
//! Memory stays bounded whatever the part size: rows go into Arrow builders, which are turned
//! into a record batch every [`BATCH_ROWS`] rows and handed to the writer; the writer itself
//! holds at most one row group (`row_group_rows`) of encoded pages before writing it out.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{check_row, EncodeError, SinkOptions};
use crate::table::{ColumnType, Row, TableSchema, Value};

/// Rows buffered in the Arrow builders before they become a record batch. Large enough that
/// per-batch overhead vanishes, small enough (a few MB for a contact table) not to matter.
pub const BATCH_ROWS: usize = 8 * 1024;

const UTC: &str = "UTC";

fn list_item_field() -> FieldRef {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

/// The Arrow schema a table is written with.
pub fn arrow_schema(schema: &TableSchema) -> Result<Schema, EncodeError> {
    let fields = schema
        .columns
        .iter()
        .map(|col| {
            let ty = match col.ty {
                ColumnType::String | ColumnType::Json => DataType::Utf8,
                ColumnType::Int => DataType::Int64,
                ColumnType::Float => DataType::Float64,
                ColumnType::Decimal { precision, scale } => {
                    // Parquet's DECIMAL annotation has no negative scale.
                    if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                        return Err(EncodeError::Schema {
                            format: "parquet",
                            reason: format!(
                                "column `{}` is decimal({precision},{scale}); Parquet needs \
                                 1 <= precision <= 38 and 0 <= scale <= precision",
                                col.name
                            ),
                        });
                    }
                    DataType::Decimal128(precision, scale)
                }
                ColumnType::Bool => DataType::Boolean,
                ColumnType::Date => DataType::Date32,
                ColumnType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
                }
                ColumnType::ListString => DataType::List(list_item_field()),
            };
            Ok(Field::new(col.name.clone(), ty, true))
        })
        .collect::<Result<Vec<_>, EncodeError>>()?;
    Ok(Schema::new(fields))
}

enum ColumnBuilder {
    Utf8(StringBuilder),
    Json(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    List(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    fn new(ty: ColumnType) -> Result<Self, EncodeError> {
        let n = BATCH_ROWS;
        Ok(match ty {
            ColumnType::String => ColumnBuilder::Utf8(StringBuilder::with_capacity(n, n * 16)),
            ColumnType::Json => ColumnBuilder::Json(StringBuilder::with_capacity(n, n * 16)),
            ColumnType::Int => ColumnBuilder::Int(Int64Builder::with_capacity(n)),
            ColumnType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(n)),
            ColumnType::Decimal { precision, scale } => ColumnBuilder::Decimal(
                Decimal128Builder::with_capacity(n).with_precision_and_scale(precision, scale)?,
            ),
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(n)),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(n)),
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMillisecondBuilder::with_capacity(n).with_timezone(UTC),
            ),
            ColumnType::ListString => ColumnBuilder::List(
                ListBuilder::with_capacity(StringBuilder::new(), n).with_field(list_item_field()),
            ),
        })
    }

    /// Appends a value that `check_row` has matched to this column's type.
    fn append(&mut self, value: &Value, json_text: &mut String) {
        use std::fmt::Write as _;
        match (self, value) {
            (ColumnBuilder::Utf8(b) | ColumnBuilder::Json(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Utf8(b), Value::String(s)) => b.append_value(s),
            (ColumnBuilder::Json(b), Value::Json(j)) => {
                json_text.clear();
                // Writing to a String cannot fail.
                let _ = write!(json_text, "{j}");
                b.append_value(&*json_text);
            }
            (ColumnBuilder::Int(b), v) => b.append_option(match v {
                Value::Int(i) => Some(*i),
                _ => None,
            }),
            (ColumnBuilder::Float(b), v) => b.append_option(match v {
                Value::Float(f) => Some(*f),
                _ => None,
            }),
            (ColumnBuilder::Decimal(b), v) => b.append_option(match v {
                Value::Decimal(d) => Some(*d),
                _ => None,
            }),
            (ColumnBuilder::Bool(b), v) => b.append_option(match v {
                Value::Bool(x) => Some(*x),
                _ => None,
            }),
            (ColumnBuilder::Date(b), v) => b.append_option(match v {
                Value::Date(d) => Some(*d),
                _ => None,
            }),
            (ColumnBuilder::Timestamp(b), v) => b.append_option(match v {
                Value::Timestamp(t) => Some(*t),
                _ => None,
            }),
            (ColumnBuilder::List(b), Value::List(items)) => {
                let values = b.values();
                for item in items {
                    values.append_value(item);
                }
                b.append(true);
            }
            (ColumnBuilder::List(b), _) => b.append_null(),
            (ColumnBuilder::Utf8(_) | ColumnBuilder::Json(_), other) => {
                unreachable!("check_row admitted a {other:?} into a text column")
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(b) | ColumnBuilder::Json(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::List(b) => Arc::new(b.finish()),
        }
    }
}

/// Writes rows as a Parquet file.
pub struct ParquetEncoder<W: Write + Send> {
    schema: Arc<TableSchema>,
    arrow: SchemaRef,
    out: ArrowWriter<W>,
    builders: Vec<ColumnBuilder>,
    buffered: usize,
    json_text: String,
}

impl<W: Write + Send> ParquetEncoder<W> {
    pub fn new(out: W, schema: Arc<TableSchema>, opts: &SinkOptions) -> Result<Self, EncodeError> {
        if opts.row_group_rows == 0 {
            return Err(EncodeError::Options(
                "row_group_rows must be at least 1".into(),
            ));
        }
        let level = ZstdLevel::try_new(opts.zstd_level)
            .map_err(|e| EncodeError::Options(format!("zstd level {}: {e}", opts.zstd_level)))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_size(opts.row_group_rows)
            .build();
        let arrow: SchemaRef = Arc::new(arrow_schema(&schema)?);
        let out = ArrowWriter::try_new(out, arrow.clone(), Some(props))?;
        let builders = schema
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.ty))
            .collect::<Result<_, _>>()?;
        Ok(ParquetEncoder {
            schema,
            arrow,
            out,
            builders,
            buffered: 0,
            json_text: String::new(),
        })
    }

    pub fn write(&mut self, row: &Row) -> Result<(), EncodeError> {
        check_row(&self.schema, row)?;
        for (builder, value) in self.builders.iter_mut().zip(row) {
            builder.append(value, &mut self.json_text);
        }
        self.buffered += 1;
        if self.buffered >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), EncodeError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let batch = RecordBatch::try_new(self.arrow.clone(), columns)?;
        self.buffered = 0;
        self.out.write(&batch)?;
        Ok(())
    }

    /// Writes the buffered rows, the last row group and the footer.
    pub fn finish(mut self) -> Result<W, EncodeError> {
        self.flush_batch()?;
        Ok(self.out.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, TableKind};

    #[test]
    fn decimal_schemas_parquet_cannot_hold_are_refused() {
        for (precision, scale) in [(0, 0), (39, 2), (10, -1), (4, 5)] {
            let schema = TableSchema {
                table: TableKind::Contacts,
                columns: vec![Column {
                    name: "d".into(),
                    ty: ColumnType::Decimal { precision, scale },
                }],
            };
            let err = arrow_schema(&schema).unwrap_err();
            assert!(err.to_string().contains("column `d`"), "{err}");
        }
    }

    /// Counts the bytes that reach the underlying writer.
    struct Counting(Arc<std::sync::atomic::AtomicUsize>);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .fetch_add(buf.len(), std::sync::atomic::Ordering::Relaxed);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rows_leave_memory_as_row_groups_fill() {
        let schema = Arc::new(TableSchema {
            table: TableKind::Contacts,
            columns: vec![Column {
                name: "n".into(),
                ty: ColumnType::Int,
            }],
        });
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let opts = SinkOptions {
            row_group_rows: 1_000,
            ..SinkOptions::default()
        };
        let mut enc = ParquetEncoder::new(Counting(written.clone()), schema, &opts).unwrap();
        let mut after_first_batch = 0;
        for i in 0..(3 * BATCH_ROWS as i64 + 10) {
            enc.write(&vec![Value::Int(i)]).unwrap();
            assert!(
                enc.buffered < BATCH_ROWS,
                "builders are drained every batch"
            );
            if i == BATCH_ROWS as i64 {
                after_first_batch = written.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        // The first batch filled several row groups, which went to the writer at once
        // rather than waiting for `finish`.
        assert!(after_first_batch > 4 * 1_000, "{after_first_batch} bytes");
        let before_finish = written.load(std::sync::atomic::Ordering::Relaxed);
        assert!(before_finish > after_first_batch);
        enc.finish().unwrap();
        assert!(written.load(std::sync::atomic::Ordering::Relaxed) > before_finish);
    }

    #[test]
    fn bad_options_are_refused() {
        let schema = Arc::new(TableSchema {
            table: TableKind::Contacts,
            columns: vec![Column {
                name: "a".into(),
                ty: ColumnType::Int,
            }],
        });
        let opts = SinkOptions {
            zstd_level: 99,
            ..SinkOptions::default()
        };
        assert!(ParquetEncoder::new(Vec::new(), schema.clone(), &opts).is_err());
        let opts = SinkOptions {
            row_group_rows: 0,
            ..SinkOptions::default()
        };
        assert!(ParquetEncoder::new(Vec::new(), schema, &opts).is_err());
    }
}
