//! Parquet input: one file, a record batch at a time, each row turned into JSON fields. The
//! schema is checked when the file opens, so an unreadable column type fails before any row.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Map;

use super::{bad_json_row, check_cells, values, InputError, InputOptions, InputRecord, RowResult};

/// Rows decoded at once: memory for a batch of wide contact rows stays in the megabytes.
const BATCH_ROWS: usize = 1024;

pub(super) struct ParquetFile {
    file: Arc<PathBuf>,
    batches: ParquetRecordBatchReader,
    columns: Vec<String>,
    batch: Option<RecordBatch>,
    /// Next row of `batch`.
    index: usize,
    /// Rows of the file handed out so far.
    rows: u64,
    opts: InputOptions,
}

impl ParquetFile {
    pub(super) fn open(file: Arc<PathBuf>, opts: &InputOptions) -> Result<Self, InputError> {
        let f = File::open(&*file).map_err(|e| InputError::io(&file, e))?;
        let not_parquet = |e: parquet::errors::ParquetError| InputError::NotFormat {
            path: file.to_path_buf(),
            format: "Parquet",
            reason: e.to_string(),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(not_parquet)?;
        let schema = builder.schema().clone();
        if let Some(f) = schema
            .fields()
            .iter()
            .find(|f| !values::supported(f.data_type()))
        {
            return Err(InputError::Unsupported {
                path: file.to_path_buf(),
                column: f.name().clone(),
                data_type: f.data_type().to_string(),
            });
        }
        let batches = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(not_parquet)?;
        Ok(ParquetFile {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            file,
            batches,
            batch: None,
            index: 0,
            rows: 0,
            opts: opts.clone(),
        })
    }

    pub(super) fn columns(&self) -> &[String] {
        &self.columns
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, InputError>> {
        while self
            .batch
            .as_ref()
            .is_none_or(|b| self.index >= b.num_rows())
        {
            match self.batches.next()? {
                Ok(batch) => {
                    self.batch = Some(batch);
                    self.index = 0;
                }
                Err(e) => {
                    return Some(Err(InputError::NotFormat {
                        path: self.file.to_path_buf(),
                        format: "Parquet",
                        reason: e.to_string(),
                    }))
                }
            }
        }
        self.rows += 1;
        self.index += 1;
        Some(Ok(self.row(self.index - 1)))
    }

    /// Row `i` of the current batch. A bad cell does not stop the others being read, so the
    /// bad row carries every column it can.
    fn row(&self, i: usize) -> RowResult {
        let batch = self.batch.as_ref().expect("a batch with row i");
        let mut fields = Map::with_capacity(self.columns.len());
        let mut bad = None;
        for (name, column) in self.columns.iter().zip(batch.columns()) {
            match values::cell(&**column, i) {
                Ok(v) => {
                    fields.insert(name.clone(), v);
                }
                Err(why) => {
                    bad.get_or_insert(format!("{why} in column `{name}`"));
                }
            }
        }
        match bad.map_or_else(|| check_cells(&fields, &self.opts), Err) {
            Ok(()) => Ok(InputRecord {
                file: self.file.clone(),
                row: self.rows,
                fields,
            }),
            Err(reason) => Err(bad_json_row(
                &self.file, self.rows, reason, &fields, &self.opts,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{open, InputFormat};
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int32Array, Int64Array, StringArray, Time64MicrosecondArray, TimestampMillisecondArray,
    };
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use serde_json::{json, Value};
    use std::path::Path;

    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn tags(rows: &[Option<Vec<&str>>]) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for row in rows {
            match row {
                Some(items) => b.append_value(items.iter().map(|s| Some(*s))),
                None => b.append_null(),
            }
        }
        Arc::new(b.finish())
    }

    fn contacts() -> Vec<(&'static str, ArrayRef)> {
        let ts = TimestampMillisecondArray::from(vec![Some(1_714_555_800_123), None])
            .with_timezone("UTC");
        let amount = Decimal128Array::from(vec![Some(1234), Some(-99_999_999_999_999_999)])
            .with_precision_and_scale(18, 2)
            .unwrap();
        vec![
            (
                "id",
                Arc::new(StringArray::from(vec![Some("c1"), Some("")])) as ArrayRef,
            ),
            (
                "visits",
                Arc::new(Int64Array::from(vec![Some(i64::MAX), None])),
            ),
            ("score", Arc::new(Float64Array::from(vec![0.5, -1e300]))),
            (
                "vip",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
            ),
            ("created", Arc::new(ts)),
            (
                "birthday",
                Arc::new(Date32Array::from(vec![Some(19_844), Some(-1)])),
            ),
            ("amount", Arc::new(amount)),
            ("tags", tags(&[Some(vec!["a", "b"]), None])),
        ]
    }

    #[test]
    fn every_column_type_reads_back_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        write(&path, contacts());
        let rows = read_all(&path, None);
        let got: Vec<Value> = rows
            .iter()
            .map(|r| Value::Object(r.as_ref().unwrap().fields.clone()))
            .collect();
        let want = [
            json!({"id": "c1", "visits": i64::MAX, "score": 0.5, "vip": true,
                   "created": "2024-05-01T09:30:00.123Z", "birthday": "2024-05-01",
                   "amount": "12.34", "tags": ["a", "b"]}),
            json!({"id": "", "visits": null, "score": -1e300, "vip": false, "created": null,
                   "birthday": "1969-12-31", "amount": "-999999999999999.99", "tags": null}),
        ];
        assert_eq!(got, want);
        assert_eq!(rows[1].as_ref().unwrap().row, 2);
    }

    #[test]
    fn folder_of_parquet_parts_numbers_rows_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let ids = |v: Vec<i32>| vec![("id", Arc::new(Int32Array::from(v)) as ArrayRef)];
        write(&dir.path().join("part-00001.parquet"), ids(vec![3]));
        write(
            &dir.path().join("part-00000.parquet"),
            ids((0..2000).collect()),
        );
        write(&dir.path().join(".part-00002.parquet.tmp"), ids(vec![9]));
        let rows = read_all(dir.path(), None);
        let got: Vec<_> = rows.iter().map(|r| r.as_ref().unwrap()).collect();
        assert_eq!(got.len(), 2001);
        assert_eq!(
            (got[1999].row, &got[1999].fields["id"]),
            (2000, &json!(1999))
        );
        assert!(got[2000].file.ends_with("part-00001.parquet"));
        assert_eq!((got[2000].row, &got[2000].fields["id"]), (1, &json!(3)));
    }

    #[test]
    fn bad_cells_are_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.parquet");
        let raw: Vec<&[u8]> = vec![b"ok", b"\xff", b"a\0b", b"fine"];
        write(
            &path,
            vec![
                ("name", Arc::new(BinaryArray::from(raw)) as ArrayRef),
                ("n", Arc::new(Int32Array::from(vec![1, 2, 3, 4]))),
            ],
        );
        let rows = read_all(&path, None);
        let got: Vec<_> = rows
            .iter()
            .map(|r| match r {
                Ok(r) => (r.row, Ok(r.fields["name"].clone())),
                Err(b) => (b.row, Err((b.reason.clone(), b.raw.clone().unwrap()))),
            })
            .collect();
        let raw = |cells: &[(&str, &str)]| -> Vec<(String, String)> {
            cells
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let want = vec![
            (1, Ok(json!("ok"))),
            (
                2,
                Err((
                    "invalid UTF-8 in column `name`".to_string(),
                    raw(&[("n", "2")]),
                )),
            ),
            (
                3,
                Err((
                    "embedded NUL byte in column `name`".to_string(),
                    raw(&[("name", "a\0b"), ("n", "3")]),
                )),
            ),
            (4, Ok(json!("fine"))),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unsupported_type_and_non_parquet_are_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let at = Time64MicrosecondArray::from(vec![1]);
        write(&path, vec![("at", Arc::new(at) as ArrayRef)]);
        let err = open(&path, None, &InputOptions::default()).err().unwrap();
        let dt = DataType::Time64(TimeUnit::Microsecond);
        assert!(
            err.to_string()
                .contains(&format!("column `at` has type {dt}")),
            "{err}"
        );

        let path = dir.path().join("c.csv");
        std::fs::write(&path, "a,b\n").unwrap();
        let err = open(&path, Some(InputFormat::Parquet), &InputOptions::default())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("is not a readable Parquet file"),
            "{err}"
        );
    }
}
