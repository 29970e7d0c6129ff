//! One input row in, one row's account out: [`load_row`] takes a row (read in chunks by
//! `input::Chunked`) through the mapping to the writer of its table.
//!
//! A row already settled by an earlier run of the same load is skipped; a bad input row or a
//! mapping reject becomes a failed row with its reason; the other rows go on.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::body::{body_of, Body};
use super::{children, contacts, Load};
use crate::exit::Result;
use crate::input::{InputRecord, RowResult};
use crate::mapping::{RecordContext, RowOutcome, TableMapping};
use crate::state::{RowRecord, RowStatus};
use crate::table::TableKind;

/// One row's account, and the tags still to add for it.
pub struct RowDone {
    pub record: RowRecord,
    /// Settled by an earlier run: not recorded again.
    pub resumed: bool,
    /// The contact's target id and the tags to add (contacts in `--tags add` mode).
    pub tags: Option<(String, Vec<String>)>,
}

impl RowDone {
    pub fn new(record: RowRecord) -> RowDone {
        RowDone {
            record,
            resumed: false,
            tags: None,
        }
    }
}

/// Where a row came from and how people find it again.
pub struct RowCtx {
    pub table: TableKind,
    pub file: String,
    pub row: u64,
    /// The input row's own columns, as JSON object text (for the failed report).
    pub raw: String,
    /// The row's recorded outcome from an earlier run, if any.
    pub prior: Option<RowRecord>,
}

impl RowCtx {
    /// A record of this row.
    pub fn record(&self, status: RowStatus, key: &str) -> RowRecord {
        RowRecord {
            table: self.table.name().to_string(),
            file: self.file.clone(),
            row: self.row,
            status,
            key: key.to_string(),
            target_id: None,
            fingerprint: None,
            detail: None,
            raw: Some(self.raw.clone()),
        }
    }

    pub fn failed(&self, key: &str, why: impl Into<String>) -> RowRecord {
        RowRecord {
            detail: Some(why.into()),
            ..self.record(RowStatus::Failed, key)
        }
    }

    pub fn done(&self, status: RowStatus, key: &str, target: &str) -> RowRecord {
        RowRecord {
            target_id: Some(target.to_string()),
            ..self.record(status, key)
        }
    }
}

/// Take one input row through the mapping to its table's writer. `Err` only for what stops
/// the whole load (a refused token, the state database).
pub async fn load_row(
    load: Arc<Load>,
    mapping: Arc<TableMapping>,
    row: RowResult,
) -> Result<RowDone> {
    let table = mapping.kind();
    let (rec, bad) = match row {
        Ok(rec) => (Some(rec), None),
        Err(bad) => (None, Some(bad)),
    };
    let (file, number, raw) = match (&rec, &bad) {
        (Some(r), _) => (
            r.file.display().to_string(),
            r.row,
            Json::Object(r.fields.clone()),
        ),
        (_, Some(b)) => {
            let fields: Map<String, Json> = b
                .raw
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            (b.file.display().to_string(), b.row, Json::Object(fields))
        }
        _ => unreachable!("a row is either read or bad"),
    };
    let prior = load.db().row(&load.key, table.name(), &file, number)?;
    let cx = RowCtx {
        table,
        file,
        row: number,
        raw: raw.to_string(),
        prior,
    };
    if let Some(p) = cx.prior.as_ref().filter(|p| p.status.is_final()) {
        return Ok(RowDone {
            record: p.clone(),
            resumed: true,
            tags: None,
        });
    }
    let rec = match (rec, bad) {
        (Some(rec), _) => rec,
        (_, Some(bad)) => return Ok(RowDone::new(cx.failed("", bad.reason))),
        _ => unreachable!("a row is either read or bad"),
    };
    let body = match map_row(&mapping, &rec, &load.plan.location) {
        Ok(Some(body)) => body,
        Ok(None) => {
            let r = RowRecord {
                detail: Some("left out by the mapping's filter".into()),
                ..cx.record(RowStatus::Unchanged, "")
            };
            return Ok(RowDone::new(r));
        }
        Err(why) => return Ok(RowDone::new(cx.failed("", why))),
    };
    match table {
        TableKind::Contacts => contacts::load_contact(&load, &cx, body).await,
        _ => children::load_child(&load, &cx, body).await,
    }
}

/// Apply the mapping: `Ok(None)` when a filter leaves the row out, `Err` with the reason when
/// a column rejects it.
fn map_row(
    mapping: &TableMapping,
    rec: &InputRecord,
    location: &str,
) -> std::result::Result<Option<Body>, String> {
    let ctx = RecordContext {
        location_id: location,
        contact_id: None,
    };
    match mapping.apply(&Json::Object(rec.fields.clone()), &ctx) {
        RowOutcome::Row(row) => Ok(Some(body_of(mapping.schema(), row))),
        RowOutcome::Filtered => Ok(None),
        RowOutcome::Rejected { column, reason } => Err(format!("column `{column}`: {reason}")),
    }
}

/// A row-level failure from the API: every message it gave (a 422 names each field), with the
/// status. `Err` for what stops the load.
pub fn api_failure(e: crate::api::Error) -> Result<String> {
    use crate::api::ErrorKind;
    let stops = e.stops_the_run()
        || matches!(
            e.kind,
            ErrorKind::DailyBudgetExhausted { .. } | ErrorKind::Cancelled | ErrorKind::Config
        );
    if stops {
        return Err(e.into());
    }
    Ok(e.to_string())
}
