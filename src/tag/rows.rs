//! One input row → the contact it names and the tags to add and remove, or why it cannot be
//! used: a blank or malformed key, an email or phone no contact has (see [`super::lookup`]), a
//! row with no tag to change. (Rows a run settled never get here: the runner skips them.)

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use super::lookup::row_keys;
use super::work::{Resolved, Work};
use super::{TagPlan, Tagging};
use crate::exit::Result;
use crate::job::rows::Row;
use crate::state::RowStatus;

/// Tags compare case-insensitively: GHL stores them lower-cased.
fn tag_set(fixed: &[String], cell: &str) -> BTreeSet<String> {
    fixed
        .iter()
        .map(String::as_str)
        .chain(cell.split(';'))
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A tag column's text; a list (NDJSON, Parquet) is read as its items.
fn text(fields: &Map<String, Json>, column: &str) -> String {
    match fields.get(column) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join(";"),
        _ => String::new(),
    }
}

/// The tags a row adds and removes: the flags' and its columns' (a tag both added and
/// removed is added).
pub fn row_sets(
    plan: &TagPlan,
    fields: &Map<String, Json>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let add = tag_set(&plan.add, &text(fields, &plan.add_column));
    let remove: BTreeSet<String> = tag_set(&plan.remove, &text(fields, &plan.remove_column))
        .difference(&add)
        .cloned()
        .collect();
    (add, remove)
}

/// Resolve one input row.
pub async fn resolve(t: &Tagging, row: Row) -> Result<Resolved> {
    let keys = &t.plan.keys;
    let fields = &row.fields;
    let (id, email, phone) = row_keys(fields, keys);
    let key = [&id, &email, &phone]
        .into_iter()
        .find(|k| !k.is_empty())
        .cloned()
        .unwrap_or_default();
    let contact = if !id.is_empty() {
        Ok(id)
    } else if !email.is_empty() {
        t.resolver
            .find(&t.client, &t.plan.location, Some(&email), None)
            .await?
    } else if !phone.is_empty() {
        t.resolver
            .find(&t.client, &t.plan.location, None, Some(&phone))
            .await?
    } else {
        Err(format!(
            "no contact key: `{}`, `{}` and `{}` are all blank",
            keys.id, keys.email, keys.phone
        ))
    };
    let contact = match contact {
        Ok(c) => c,
        Err(why) => {
            let record = row.failed(&key, why);
            return Ok(Resolved {
                row,
                record,
                work: None,
            });
        }
    };
    let record = row.done(RowStatus::Unchanged, &key, &contact);
    let fields = row.fields.clone();
    Ok(work_for(&t.plan, row, record, contact, &fields))
}

/// The row's work once its contact is known: for tags, the sets from the flags and its columns.
pub fn work_for(
    plan: &TagPlan,
    row: Row,
    mut r: crate::state::RowRecord,
    contact: String,
    fields: &Map<String, Json>,
) -> Resolved {
    if !plan.uses_tags() {
        let work = Work {
            contact,
            add: BTreeSet::new(),
            remove: BTreeSet::new(),
        };
        return Resolved {
            row,
            record: r,
            work: Some(work),
        };
    }
    let (add, remove) = row_sets(plan, fields);
    if add.is_empty() && remove.is_empty() {
        r.detail = Some("no tag to add or remove".into());
        return Resolved {
            row,
            record: r,
            work: None,
        };
    }
    Resolved {
        row,
        record: r,
        work: Some(Work {
            contact,
            add,
            remove,
        }),
    }
}
