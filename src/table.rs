//! Typed rows: the values a mapping produces and a sink writes.
//!
//! This module is the contract between `mapping` (which turns API records into rows) and
//! `sink` (which encodes rows as CSV, Parquet or NDJSON). It knows nothing of either.

use std::fmt;

/// The tables an export produces. Child tables carry the id of their contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    Contacts,
    Tasks,
    Notes,
    Appointments,
    /// The webhooks `listen` received (not an export table: never in [`TableKind::ALL`]).
    Events,
}

impl TableKind {
    pub const ALL: [TableKind; 4] = [
        TableKind::Contacts,
        TableKind::Tasks,
        TableKind::Notes,
        TableKind::Appointments,
    ];

    /// The name used for the mapping section, the output folder and the state database.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Contacts => "contacts",
            TableKind::Tasks => "tasks",
            TableKind::Notes => "notes",
            TableKind::Appointments => "appointments",
            TableKind::Events => "events",
        }
    }

    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The manifest of an export folder, written last when the export finishes: tables, row
/// counts, files, costs. It lives here, beside the table names that are the folder's other
/// half, because the export job writes it and `input` reads it to recognise an export folder,
/// and `input` must not import a job; this file imports nothing.
pub const MANIFEST: &str = "_manifest.json";

/// The folder of an export that holds each location's custom-field definitions
/// (`_custom_fields/LOCATION.json`, the answer of `GET /locations/{id}/customFields`): written
/// by the export, read by a load whose mapping says `custom_fields = "all"`.
pub const FIELDS_DIR: &str = "_custom_fields";

/// The folder of the events `listen` writes into an export's dataset (beside the export's
/// `table=contacts`, ...): the export leaves it alone.
pub const EVENTS_DIR: &str = "table=events";

/// The type of an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Int,
    Float,
    /// Fixed-point decimal; values are stored as an integer scaled by `10^scale`.
    Decimal {
        precision: u8,
        scale: i8,
    },
    Bool,
    /// Days since 1970-01-01.
    Date,
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp,
    ListString,
    /// Any JSON value, written as its JSON text (CSV, Parquet) or as is (NDJSON).
    Json,
}

impl ColumnType {
    /// The spelling used in mapping files and in `mapping check` output.
    pub fn spelling(&self) -> String {
        match self {
            ColumnType::String => "string".into(),
            ColumnType::Int => "int".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnType::Bool => "bool".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp".into(),
            ColumnType::ListString => "list<string>".into(),
            ColumnType::Json => "json".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// The columns of one output table, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub table: TableKind,
    pub columns: Vec<Column>,
}

/// One cell. `Null` is valid in every column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    String(String),
    Int(i64),
    Float(f64),
    /// Unscaled value; the column's `scale` says where the point is.
    Decimal(i128),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
    List(Vec<String>),
    Json(serde_json::Value),
}

/// One output row: one value per column of its table's schema, in schema order.
pub type Row = Vec<Value>;
