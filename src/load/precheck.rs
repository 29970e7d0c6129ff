//! Before the first write (and before any custom field is created), each input's first rows
//! are read and the mapping is checked against them:
//!
//! - every input column the mapping reads is in the input, or the error names the mapping's
//!   file:line:col and the closest header ([`TableMapping::check_input_columns`]);
//! - which custom fields `custom_fields = "all"` carries ([`Carried`]);
//! - contacts that would carry no email, no phone and no external id although the mapping
//!   maps one of them, for most rows, stop the load: nearly always a `from` that reads the
//!   wrong column, and each such row would create a new contact, a duplicate of someone the
//!   location may hold.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::carry::{find_definitions, Carried};
use super::plan::{EmptyCells, LoadPlan, Mode};
use super::rows::map_fields;
use crate::exit::{JobError, Result};
use crate::input::{check_wanted_columns, Chunked, InputFormat, RowResult};
use crate::job::rows::Input;
use crate::mapping::TableMapping;
use crate::table::TableKind;

/// Rows below which the identity check says nothing: a short file of a few people without
/// email or phone is a plausible thing to load, a long one is nearly always a wrong `from`.
const MIN_ROWS: usize = 20;

/// What the first rows of the inputs settled.
#[derive(Default)]
pub struct Checked {
    /// Mapping columns (of contacts) whose input columns are absent: they write nothing.
    pub absent: Vec<String>,
    pub carried: Option<Carried>,
}

/// Read each input's first chunk and check the mapping against it.
pub async fn check_inputs(
    plan: &LoadPlan,
    inputs: &[(TableKind, Arc<TableMapping>, Input)],
) -> Result<Checked> {
    let mut checked = Checked::default();
    for (table, mapping, input) in inputs {
        let mut chunks = Chunked::open(&input.path, input.format, input.chunk_rows)?;
        let first = chunks.next().await.unwrap_or_default();
        let format = chunks.format();
        drop(chunks);
        // A file without its header row first: its own message says so, plainer than one
        // error per mapping column.
        let wanted: Vec<&str> = input.wanted.iter().map(String::as_str).collect();
        check_wanted_columns(&first, &wanted).map_err(JobError::usage)?;
        let Some(headers) = headers_of(&first) else {
            continue;
        };
        let what = format!("the {table} input {}", input.path.display());
        let file = plan.mapping.mapping.file_name();
        match mapping.check_input_columns(file, &what, &headers) {
            // An NDJSON record (GHL's own included) omits a key whose value is empty, so a
            // key no first row has may still come later: said, not refused.
            Err(e) if format == InputFormat::Ndjson => {
                tracing::warn!("{}", e.to_string().replace("error: ", ""));
            }
            r => r?,
        }
        if *table != TableKind::Contacts {
            continue;
        }
        checked.absent = mapping.absent_columns(&headers);
        let definitions = find_definitions(plan.custom_fields.as_deref(), Some(&input.path));
        checked.carried = Carried::open(mapping, definitions.as_deref(), &headers)?;
        check_identity(plan, mapping, &first, &input.path)?;
    }
    Ok(checked)
}

/// The input's columns: every key of the first rows (a CSV's header, a Parquet schema, the
/// keys an NDJSON file's first rows have). `None` for an input without rows.
fn headers_of(rows: &[RowResult]) -> Option<BTreeSet<String>> {
    let headers: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|r| r.fields.keys().cloned())
        .collect();
    (!headers.is_empty()).then_some(headers)
}

/// Stop when most rows would reach the API with no way to match a contact it holds.
fn check_identity(
    plan: &LoadPlan,
    mapping: &TableMapping,
    rows: &[RowResult],
    path: &Path,
) -> Result<()> {
    let maps = |n: &str| mapping.schema().columns.iter().any(|c| c.name == n);
    let keyed = maps("email") || maps("phone") || plan.external_id.is_some();
    let creating = matches!(plan.mode, Mode::Upsert | Mode::Create);
    if plan.allow_no_identity || !keyed || !creating {
        return Ok(());
    }
    let clears = plan.empty == EmptyCells::Clear;
    let bodies: Vec<_> = rows
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|r| {
            map_fields(mapping, &r.fields, &plan.location, clears)
                .ok()
                .flatten()
        })
        .collect();
    let external = plan.external_id.is_some();
    let keyless = bodies
        .iter()
        .filter(|b| b.email().is_none() && b.phone().is_none())
        .filter(|b| !external || b.keys.id.is_none())
        .count();
    if bodies.len() < MIN_ROWS || keyless * 2 <= bodies.len() {
        return Ok(());
    }
    let sources: Vec<String> = ["email", "phone"]
        .iter()
        .filter_map(|n| {
            mapping
                .describe_source(n)
                .map(|s| format!("`{n}` from {s}"))
        })
        .collect();
    Err(JobError::usage(format!(
        "{keyless} of the first {} contact rows of {} have no email, no phone and no external id, although the mapping maps {}: each would create a new contact rather than match one the location holds. Check those columns' `from` against the file's header (a dry run shows how many rows carry each field), or pass --allow-no-identity if the rows really have none",
        bodies.len(),
        path.display(),
        if sources.is_empty() { "--external-id".to_string() } else { sources.join(" and ") },
    )))
}
