//! One input row → the contact it names and the tags to add and remove, or why it cannot be
//! used: a blank or malformed key, an email or phone no contact has (see [`super::lookup`]), a
//! row with no tag to change. A row a run settled is taken from the state database as it is;
//! one left `sending` by a killed run is sent again only if the action is safe to repeat.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::lookup::row_keys;
use super::{TagPlan, Tagging};
use crate::exit::Result;
use crate::input::RowResult;
use crate::state::{RowRecord, RowStatus};

/// A row ready to apply, or settled already.
pub struct Resolved {
    pub record: RowRecord,
    /// The contact and its changes, when the row still has work to do.
    pub work: Option<Work>,
}

pub struct Work {
    pub contact: String,
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
}

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

/// Why a row left `sending` is not sent again.
pub const LOST_ANSWER: &str = "sent by an earlier run whose answer was lost: the contact may be enrolled already, so it was not sent again; check it in GHL";

/// Resolve one input row.
pub async fn resolve(t: Arc<Tagging>, row: RowResult) -> Result<Resolved> {
    let (file, number, fields) = match &row {
        Ok(r) => (r.file.display().to_string(), r.row, r.fields.clone()),
        Err(b) => (
            b.file.display().to_string(),
            b.row,
            b.raw
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect(),
        ),
    };
    let record = |status: RowStatus, key: &str, detail: Option<String>| RowRecord {
        table: "tags".into(),
        file: file.clone(),
        row: number,
        status,
        key: key.to_string(),
        target_id: None,
        fingerprint: None,
        detail,
        raw: Some(Json::Object(fields.clone()).to_string()),
    };
    if let Some(mut p) = t.db().row(&t.key, "tags", &file, number)? {
        if p.status == RowStatus::Sending && t.plan.action.at_most_once() {
            p.status = RowStatus::Failed;
            p.detail = Some(LOST_ANSWER.into());
        }
        if p.status.is_final() {
            return Ok(Resolved {
                record: p,
                work: None,
            });
        }
    }
    if let Err(bad) = &row {
        let r = record(RowStatus::Failed, "", Some(bad.reason.clone()));
        return Ok(Resolved {
            record: r,
            work: None,
        });
    }
    let keys = &t.plan.keys;
    let (id, email, phone) = row_keys(&fields, keys);
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
            let r = record(RowStatus::Failed, &key, Some(why));
            return Ok(Resolved {
                record: r,
                work: None,
            });
        }
    };
    let mut r = record(RowStatus::Unchanged, &key, None);
    r.target_id = Some(contact.clone());
    Ok(work_for(&t.plan, r, contact, &fields))
}

/// The row's work once its contact is known: for tags, the sets from the flags and its columns.
pub fn work_for(
    plan: &TagPlan,
    mut r: RowRecord,
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
            record: r,
            work: Some(work),
        };
    }
    let add = tag_set(&plan.add, &text(fields, &plan.add_column));
    let remove: BTreeSet<String> = tag_set(&plan.remove, &text(fields, &plan.remove_column))
        .difference(&add)
        .cloned()
        .collect();
    if add.is_empty() && remove.is_empty() {
        r.detail = Some("no tag to add or remove".into());
        return Resolved {
            record: r,
            work: None,
        };
    }
    Resolved {
        record: r,
        work: Some(Work {
            contact,
            add,
            remove,
        }),
    }
}
