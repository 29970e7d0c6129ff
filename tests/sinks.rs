//! Sinks: every format written and read back, part-file naming and recovery, reject files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMillisecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use ghl_etl::sink::{
    clean_uncommitted, part_file_name, temp_file_name, Encoder, Format, PartWriter, SinkError,
    SinkOptions,
};
use ghl_etl::table::{Column, ColumnType, Row, TableKind, TableSchema, Value};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use serde_json::json;

const DEC: ColumnType = ColumnType::Decimal {
    precision: 12,
    scale: 2,
};

fn schema(table: TableKind, cols: &[(&str, ColumnType)]) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        table,
        columns: cols
            .iter()
            .map(|(name, ty)| Column {
                name: (*name).to_string(),
                ty: *ty,
            })
            .collect(),
    })
}

/// One column of every type, in an order that is not alphabetical (column order must hold).
fn every_type() -> Arc<TableSchema> {
    schema(
        TableKind::Contacts,
        &[
            ("id", ColumnType::String),
            ("age", ColumnType::Int),
            ("score", ColumnType::Float),
            ("balance", DEC),
            ("dnd", ColumnType::Bool),
            ("birthday", ColumnType::Date),
            ("date_added", ColumnType::Timestamp),
            ("tags", ColumnType::ListString),
            ("custom", ColumnType::Json),
        ],
    )
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| i.to_string()).collect())
}

/// 2024-01-31T12:00:00.000Z
const TS: i64 = 1_706_702_400_000;
/// 2024-01-31
const DAY: i32 = 19_753;

fn every_type_rows() -> Vec<Row> {
    vec![
        vec![
            s("c1"),
            Value::Int(42),
            Value::Float(0.5),
            Value::Decimal(123_456),
            Value::Bool(true),
            Value::Date(DAY),
            Value::Timestamp(TS + 7),
            list(&["vip", "lead"]),
            Value::Json(json!({"a": [1, 2], "b": null})),
        ],
        vec![Value::Null; 9],
        vec![
            s("Zoë 日本語 🚀"),
            Value::Int(-1),
            Value::Float(-1e300),
            Value::Decimal(-5),
            Value::Bool(false),
            Value::Date(-1),
            Value::Timestamp(-1),
            list(&[]),
            Value::Json(json!("text")),
        ],
    ]
}

fn encode(schema: Arc<TableSchema>, rows: &[Row], opts: &SinkOptions) -> Vec<u8> {
    let mut enc = Encoder::new(Vec::new(), schema, opts).expect("encoder");
    for row in rows {
        enc.write(row, None).expect("row");
    }
    assert_eq!(enc.rows(), rows.len() as u64);
    enc.finish().expect("finish")
}

fn parquet_opts() -> SinkOptions {
    SinkOptions {
        format: Format::Parquet,
        ..SinkOptions::default()
    }
}

fn csv_opts() -> SinkOptions {
    SinkOptions {
        format: Format::Csv,
        ..SinkOptions::default()
    }
}

fn read_parquet(bytes: Vec<u8>) -> (ParquetRecordBatchReaderBuilder<Bytes>, Vec<RecordBatch>) {
    let data = Bytes::from(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone()).expect("parquet footer");
    let batches = ParquetRecordBatchReaderBuilder::try_new(data)
        .expect("parquet footer")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches");
    (builder, batches)
}

#[test]
fn parquet_schema_has_real_types_in_schema_order() {
    let bytes = encode(every_type(), &every_type_rows(), &parquet_opts());
    let (builder, _) = read_parquet(bytes);
    let schema = builder.schema();
    let got: Vec<(&str, &DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
        .collect();
    let list_of_utf8 = match schema.field(7).data_type() {
        DataType::List(item) => {
            assert_eq!(item.data_type(), &DataType::Utf8);
            assert!(item.is_nullable(), "list items must be nullable");
            schema.field(7).data_type().clone()
        }
        other => panic!("tags should be a list, got {other:?}"),
    };
    let want = [
        ("id", DataType::Utf8),
        ("age", DataType::Int64),
        ("score", DataType::Float64),
        ("balance", DataType::Decimal128(12, 2)),
        ("dnd", DataType::Boolean),
        ("birthday", DataType::Date32),
        (
            "date_added",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        ),
        ("tags", list_of_utf8),
        ("custom", DataType::Utf8),
    ];
    assert_eq!(got.len(), want.len());
    for ((name, ty, nullable), (want_name, want_ty)) in got.iter().zip(&want) {
        assert_eq!(name, want_name);
        assert_eq!(*ty, want_ty, "column {name}");
        assert!(nullable, "column {name} must be nullable");
    }
    let meta = builder.metadata();
    for col in meta.row_group(0).columns() {
        assert!(
            matches!(col.compression(), Compression::ZSTD(_)),
            "{} is {:?}",
            col.column_path(),
            col.compression()
        );
    }
}

#[test]
fn parquet_values_round_trip() {
    let bytes = encode(every_type(), &every_type_rows(), &parquet_opts());
    let (_, batches) = read_parquet(bytes);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 3);

    let id = b.column(0).as_string::<i32>();
    assert_eq!(id.value(0), "c1");
    assert!(id.is_null(1));
    assert_eq!(id.value(2), "Zoë 日本語 🚀");

    let age = b.column(1).as_primitive::<Int64Type>();
    assert_eq!((age.value(0), age.is_null(1), age.value(2)), (42, true, -1));

    let score = b.column(2).as_primitive::<Float64Type>();
    assert_eq!(
        (score.value(0), score.is_null(1), score.value(2)),
        (0.5, true, -1e300)
    );

    let balance = b.column(3).as_primitive::<Decimal128Type>();
    assert_eq!(balance.value(0), 123_456);
    assert_eq!(balance.value_as_string(0), "1234.56");
    assert!(balance.is_null(1));
    assert_eq!(balance.value_as_string(2), "-0.05");

    let dnd = b.column(4).as_boolean();
    assert_eq!(
        (dnd.value(0), dnd.is_null(1), dnd.value(2)),
        (true, true, false)
    );

    let birthday = b.column(5).as_primitive::<Date32Type>();
    assert_eq!(
        (birthday.value(0), birthday.is_null(1), birthday.value(2)),
        (DAY, true, -1)
    );

    let added = b.column(6).as_primitive::<TimestampMillisecondType>();
    assert_eq!(added.value(0), TS + 7);
    assert!(added.is_null(1));
    assert_eq!(added.value(2), -1);
    assert_eq!(added.timezone(), Some("UTC"));

    let tags = b.column(7).as_list::<i32>();
    let first = tags.value(0);
    let first = first.as_string::<i32>();
    assert_eq!(
        (0..first.len()).map(|i| first.value(i)).collect::<Vec<_>>(),
        ["vip", "lead"]
    );
    assert!(tags.is_null(1), "a null list stays null");
    assert!(!tags.is_null(2), "an empty list is not null");
    assert_eq!(tags.value(2).len(), 0);

    let custom = b.column(8).as_string::<i32>();
    let parsed: serde_json::Value = serde_json::from_str(custom.value(0)).unwrap();
    assert_eq!(parsed, json!({"a": [1, 2], "b": null}));
    assert!(custom.is_null(1));
    assert_eq!(custom.value(2), "\"text\"");
}

#[test]
fn parquet_splits_row_groups_and_keeps_every_row() {
    let schema = schema(
        TableKind::Notes,
        &[("n", ColumnType::Int), ("body", ColumnType::String)],
    );
    // Crosses the encoder's internal batch size several times and ends on a partial group.
    let total = 20_000_i64;
    let rows: Vec<Row> = (0..total)
        .map(|i| vec![Value::Int(i), s(&format!("note {i}"))])
        .collect();
    let opts = SinkOptions {
        row_group_rows: 6_000,
        ..parquet_opts()
    };
    let (builder, batches) = read_parquet(encode(schema, &rows, &opts));
    let groups: Vec<i64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(groups, [6_000, 6_000, 6_000, 2_000]);
    let mut next = 0_i64;
    for batch in &batches {
        let n = batch.column(0).as_primitive::<Int64Type>();
        let body = batch.column(1).as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert_eq!(n.value(i), next);
            assert_eq!(body.value(i), format!("note {next}"));
            next += 1;
        }
    }
    assert_eq!(next, total);
}

#[test]
fn parquet_with_no_rows_is_a_valid_file() {
    let (builder, batches) = read_parquet(encode(every_type(), &[], &parquet_opts()));
    assert_eq!(builder.schema().fields().len(), 9);
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[test]
fn csv_is_byte_for_byte() {
    let out = encode(every_type(), &every_type_rows(), &csv_opts());
    let want = concat!(
        "id,age,score,balance,dnd,birthday,date_added,tags,custom\n",
        "c1,42,0.5,1234.56,true,2024-01-31,2024-01-31T12:00:00.007Z,vip;lead,\"{\"\"a\"\":[1,2],\"\"b\"\":null}\"\n",
        ",,,,,,,,\n",
        "Zoë 日本語 🚀,-1,-1e300,-0.05,false,1969-12-31,1969-12-31T23:59:59.999Z,,\"\"\"text\"\"\"\n",
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn csv_has_no_bom_and_uses_lf() {
    let schema = schema(TableKind::Tasks, &[("a", ColumnType::String)]);
    let out = encode(schema, &[vec![s("x")]], &csv_opts());
    assert_eq!(out, b"a\nx\n");
}

#[test]
fn csv_list_separator_is_configurable() {
    let schema = schema(TableKind::Contacts, &[("tags", ColumnType::ListString)]);
    let opts = SinkOptions {
        list_separator: " | ".into(),
        ..csv_opts()
    };
    let out = encode(schema, &[vec![list(&["a", "b", "c"])]], &opts);
    assert_eq!(String::from_utf8(out).unwrap(), "tags\na | b | c\n");
}

#[test]
fn csv_awkward_text_round_trips_through_a_reader() {
    let nasty = [
        "plain",
        "comma, inside",
        "quote \" inside",
        "\"starts and ends with quotes\"",
        "line\nbreak",
        "crlf\r\nbreak",
        "  spaces kept  ",
        "tab\tinside",
        "Zoë 日本語 🚀",
    ];
    let schema = schema(
        TableKind::Notes,
        &[("n", ColumnType::Int), ("body", ColumnType::String)],
    );
    let rows: Vec<Row> = nasty
        .iter()
        .enumerate()
        .map(|(i, t)| vec![Value::Int(i as i64), s(t)])
        .collect();
    let out = encode(schema, &rows, &csv_opts());
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(reader.headers().unwrap(), vec!["n", "body"]);
    let back: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    let want: Vec<(String, String)> = nasty
        .iter()
        .enumerate()
        .map(|(i, t)| (i.to_string(), t.to_string()))
        .collect();
    assert_eq!(back, want);
}

#[test]
fn csv_safe_defuses_formulas_only_when_asked() {
    let schema = schema(
        TableKind::Contacts,
        &[("name", ColumnType::String), ("n", ColumnType::Int)],
    );
    let rows = vec![
        vec![s("=HYPERLINK(\"http://x\")"), Value::Int(-3)],
        vec![s("+1 555"), Value::Null],
        vec![s("-2"), Value::Null],
        vec![s("@SUM(A1)"), Value::Null],
        vec![s("\tx"), Value::Null],
        vec![s("fine = ok"), Value::Null],
    ];
    let off = encode(schema.clone(), &rows, &csv_opts());
    assert_eq!(
        String::from_utf8(off).unwrap(),
        "name,n\n\"=HYPERLINK(\"\"http://x\"\")\",-3\n+1 555,\n-2,\n@SUM(A1),\n\tx,\nfine = ok,\n"
    );
    let opts = SinkOptions {
        csv_safe: true,
        ..csv_opts()
    };
    let on = encode(schema, &rows, &opts);
    assert_eq!(
        String::from_utf8(on).unwrap(),
        "name,n\n\"'=HYPERLINK(\"\"http://x\"\")\",-3\n'+1 555,\n-2,\n'@SUM(A1),\n'\tx,\nfine = ok,\n"
    );
}

#[test]
fn ndjson_typed_rows_are_keyed_by_column() {
    let opts = SinkOptions {
        format: Format::Ndjson,
        ..SinkOptions::default()
    };
    let out = String::from_utf8(encode(every_type(), &every_type_rows(), &opts)).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(out.matches('\n').count(), 3);
    assert_eq!(
        lines[0],
        json!({
            "id": "c1", "age": 42, "score": 0.5, "balance": 1234.56, "dnd": true,
            "birthday": "2024-01-31", "date_added": "2024-01-31T12:00:00.007Z",
            "tags": ["vip", "lead"], "custom": {"a": [1, 2], "b": null}
        })
    );
    // Key order follows the schema, and decimals keep their scale in the text.
    assert!(out.starts_with("{\"id\":\"c1\",\"age\":42,\"score\":0.5,\"balance\":1234.56,"));
    assert!(lines[1].as_object().unwrap().values().all(|v| v.is_null()));
    assert_eq!(lines[2]["tags"], json!([]));
    assert_eq!(lines[2]["id"], json!("Zoë 日本語 🚀"));
    assert_eq!(lines[2]["custom"], json!("text"));
    assert!(out.lines().nth(2).unwrap().contains("\"balance\":-0.05,"));
}

#[test]
fn ndjson_raw_keeps_unknown_fields() {
    let opts = SinkOptions {
        format: Format::Ndjson,
        raw_ndjson: true,
        ..SinkOptions::default()
    };
    let schema = schema(TableKind::Contacts, &[("id", ColumnType::String)]);
    let raw = json!({
        "id": "c1",
        "customFields": [{"id": "f1", "value": "x"}],
        "someFieldAddedLater": {"nested": true}
    });
    let mut enc = Encoder::new(Vec::new(), schema, &opts).unwrap();
    enc.write(&vec![s("c1")], Some(&raw)).unwrap();
    let err = enc.write(&vec![s("c2")], None).unwrap_err();
    assert!(err.is_row_error(), "{err}");
    let out = String::from_utf8(enc.finish().unwrap()).unwrap();
    assert_eq!(
        out,
        "{\"id\":\"c1\",\"customFields\":[{\"id\":\"f1\",\"value\":\"x\"}],\"someFieldAddedLater\":{\"nested\":true}}\n"
    );
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[test]
fn part_is_hidden_until_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let table_dir = tmp.path().join("contacts");
    let mut w = PartWriter::create(tmp.path(), every_type(), 3, &parquet_opts()).unwrap();
    for row in every_type_rows() {
        w.write(&row, None).unwrap();
    }
    assert_eq!(w.rows(), 3);
    assert_eq!(names_in(&table_dir), [".part-00003.parquet.tmp"]);

    let done = w.finish().unwrap();
    assert_eq!(names_in(&table_dir), ["part-00003.parquet"]);
    assert_eq!(done.table, TableKind::Contacts);
    assert_eq!(done.part, 3);
    assert_eq!(done.rows, 3);
    assert_eq!(done.path, table_dir.join("part-00003.parquet"));
    let bytes = fs::read(&done.path).unwrap();
    assert_eq!(done.bytes, bytes.len() as u64);
    let (builder, _) = read_parquet(bytes);
    assert_eq!(builder.metadata().file_metadata().num_rows(), 3);
}

#[test]
fn abort_and_drop_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let table_dir = tmp.path().join("contacts");
    for format in Format::ALL {
        let opts = SinkOptions {
            format,
            ..SinkOptions::default()
        };
        let mut w = PartWriter::create(tmp.path(), every_type(), 0, &opts).unwrap();
        w.write(&every_type_rows()[0], Some(&json!({}))).unwrap();
        assert_eq!(names_in(&table_dir), [temp_file_name(0, format)]);
        w.abort();
        assert!(names_in(&table_dir).is_empty(), "{format:?} after abort");

        let w = PartWriter::create(tmp.path(), every_type(), 1, &opts).unwrap();
        drop(w);
        assert!(names_in(&table_dir).is_empty(), "{format:?} after drop");
    }
}

#[test]
fn every_format_finishes_under_its_own_extension() {
    let tmp = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let opts = SinkOptions {
            format,
            ..SinkOptions::default()
        };
        let mut w = PartWriter::create(tmp.path(), every_type(), 0, &opts).unwrap();
        w.write(&every_type_rows()[0], Some(&json!({"id": "c1"})))
            .unwrap();
        let done = w.finish().unwrap();
        assert_eq!(
            done.path,
            tmp.path().join("contacts").join(part_file_name(0, format))
        );
        assert_eq!(done.rows, 1);
        assert!(done.bytes > 0);
    }
    assert_eq!(
        names_in(&tmp.path().join("contacts")),
        ["part-00000.csv", "part-00000.ndjson", "part-00000.parquet"]
    );
}

#[test]
fn a_refused_row_leaves_the_part_usable() {
    let tmp = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let opts = SinkOptions {
            format,
            ..SinkOptions::default()
        };
        let mut w = PartWriter::create(tmp.path(), every_type(), 0, &opts).unwrap();
        let mut bad = every_type_rows()[0].clone();
        bad[1] = s("not an int");
        let err = w.write(&bad, None).unwrap_err();
        assert!(err.is_row_error(), "{format:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("column `age` (int)"), "{msg}");
        assert!(msg.contains(".part-00000."), "error names the file: {msg}");
        let err = w.write(&vec![Value::Null], None).unwrap_err();
        assert!(err.is_row_error());
        assert_eq!(w.rows(), 0);
        w.write(&every_type_rows()[0], None).unwrap();
        let done = w.finish().unwrap();
        assert_eq!(done.rows, 1);
        if format == Format::Csv {
            let text = fs::read_to_string(&done.path).unwrap();
            assert_eq!(text.lines().count(), 2, "{text}");
        }
        fs::remove_file(done.path).unwrap();
    }
}

#[test]
fn create_refuses_to_overwrite_a_finished_part() {
    let tmp = tempfile::tempdir().unwrap();
    let w = PartWriter::create(tmp.path(), every_type(), 0, &csv_opts()).unwrap();
    w.finish().unwrap();
    match PartWriter::create(tmp.path(), every_type(), 0, &csv_opts()) {
        Err(SinkError::PartExists { path }) => {
            assert_eq!(path, tmp.path().join("contacts/part-00000.csv"))
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a finished part was reopened"),
    }
}

#[test]
fn clean_uncommitted_removes_strays_and_keeps_committed_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contacts");
    fs::create_dir_all(&dir).unwrap();
    let touch = |name: &str| fs::write(dir.join(name), b"x").unwrap();
    for name in [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
        ".part-00003.parquet.tmp",
        ".part-00000.csv.tmp",
        "part-00004.csv",
        "README.txt",
        "_SUCCESS",
    ] {
        touch(name);
    }
    let removed =
        clean_uncommitted(tmp.path(), TableKind::Contacts, Format::Parquet, &[0, 1]).unwrap();
    let want: Vec<PathBuf> = [
        ".part-00000.csv.tmp",
        ".part-00003.parquet.tmp",
        "part-00002.parquet",
    ]
    .iter()
    .map(|n| dir.join(n))
    .collect();
    assert_eq!(removed, want);
    assert_eq!(
        names_in(&dir),
        [
            "README.txt",
            "_SUCCESS",
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00004.csv"
        ]
    );
    // Idempotent, and a table that was never written is not an error.
    assert!(
        clean_uncommitted(tmp.path(), TableKind::Contacts, Format::Parquet, &[0, 1])
            .unwrap()
            .is_empty()
    );
    assert!(
        clean_uncommitted(tmp.path(), TableKind::Notes, Format::Parquet, &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn resume_rewrites_an_uncommitted_part_instead_of_duplicating_it() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = every_type_rows();
    // First run: part 0 committed, part 1 finished but the crash came before its commit.
    for part in [0, 1] {
        let mut w = PartWriter::create(tmp.path(), every_type(), part, &csv_opts()).unwrap();
        w.write(&rows[0], None).unwrap();
        w.finish().unwrap();
    }
    // Second run.
    clean_uncommitted(tmp.path(), TableKind::Contacts, Format::Csv, &[0]).unwrap();
    let mut w = PartWriter::create(tmp.path(), every_type(), 1, &csv_opts()).unwrap();
    w.write(&rows[2], None).unwrap();
    w.finish().unwrap();
    let dir = tmp.path().join("contacts");
    assert_eq!(names_in(&dir), ["part-00000.csv", "part-00001.csv"]);
    let second = fs::read_to_string(dir.join("part-00001.csv")).unwrap();
    assert_eq!(second.lines().count(), 2);
    assert!(second.contains("Zoë"), "{second}");
}
