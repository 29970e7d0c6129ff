//! One input row in, one row's account out: [`load_row`] takes a row (handed over by the
//! row-job runner, [`crate::job::rows`]) through the mapping to the writer of its table.
//!
//! A mapping reject becomes a failed row with its reason; a filtered row is unchanged; the
//! other rows go on to the contact or the task and note writers.

use serde_json::{Map, Value as Json};

use super::body::{body_of, Body};
use super::done::RowDone;
use super::plan::EmptyCells;
use super::{children, contacts, Load};
use crate::exit::Result;
use crate::job::rows::Row;
use crate::mapping::{RecordContext, RowOutcome, TableMapping};
use crate::state::{RowRecord, RowStatus};

/// Take one input row through the mapping to its table's writer. `Err` only for what stops
/// the whole load (a refused token, a spent budget, the state database).
pub async fn load_row(load: &Load, mapping: &TableMapping, row: Row) -> Result<RowDone> {
    let clears = load.plan.empty == EmptyCells::Clear;
    let body = match map_fields(mapping, &row.fields, &load.plan.location, clears) {
        Ok(Some(mut body)) => {
            if let Some(carried) = &load.carried {
                body.carried = carried.values(&row.fields);
            }
            body
        }
        Ok(None) => {
            let r = RowRecord {
                detail: Some("left out by the mapping's filter".into()),
                ..row.record(RowStatus::Unchanged, "")
            };
            return Ok(RowDone::new(r));
        }
        Err(why) => return Ok(RowDone::new(row.failed("", why))),
    };
    if load.plan.dry_run {
        load.count_values(row.table, &body);
    }
    match row.table {
        "contacts" => contacts::load_contact(load, &row, body).await,
        _ => children::load_child(load, &row, body).await,
    }
}

/// Apply the mapping to an input row: `Ok(None)` when a filter leaves the row out, `Err`
/// with the reason when a column rejects it.
pub(super) fn map_fields(
    mapping: &TableMapping,
    fields: &Map<String, Json>,
    location: &str,
    clears: bool,
) -> std::result::Result<Option<Body>, String> {
    let ctx = RecordContext {
        location_id: location,
        contact_id: None,
    };
    match mapping.apply(&Json::Object(fields.clone()), &ctx) {
        RowOutcome::Row(mapped) => Ok(Some(body_of(mapping.schema(), mapped, clears))),
        RowOutcome::Filtered => Ok(None),
        RowOutcome::Rejected { column, reason } => Err(format!("column `{column}`: {reason}")),
    }
}
