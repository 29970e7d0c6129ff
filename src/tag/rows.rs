//! One input row → the contact it names and the tags to add and remove, or why it cannot be
//! used: a blank or malformed key, an email or phone no contact has (looked up once each with
//! `GET /contacts/search/duplicate`, cached), a row with no tag to change.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::Tagging;
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

fn cell(fields: &Map<String, Json>, column: &str) -> String {
    match fields.get(column) {
        Some(Json::String(s)) => s.trim().to_string(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
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
    if let Some(p) = t.db().row(&t.key, "tags", &file, number)? {
        return Ok(Resolved {
            record: p,
            work: None,
        });
    }
    if let Err(bad) = &row {
        let r = record(RowStatus::Failed, "", Some(bad.reason.clone()));
        return Ok(Resolved {
            record: r,
            work: None,
        });
    }
    let keys = &t.plan.keys;
    let (id, email, phone) = (
        cell(&fields, &keys.id),
        cell(&fields, &keys.email),
        cell(&fields, &keys.phone),
    );
    let key = [&id, &email, &phone]
        .into_iter()
        .find(|k| !k.is_empty())
        .cloned()
        .unwrap_or_default();
    let contact = if !id.is_empty() {
        Ok(id)
    } else if !email.is_empty() {
        lookup(&t, Some(&email), None).await?
    } else if !phone.is_empty() {
        lookup(&t, None, Some(&phone)).await?
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
    let add = tag_set(&t.plan.add, &cell(&fields, &t.plan.add_column));
    let remove: BTreeSet<String> = tag_set(&t.plan.remove, &cell(&fields, &t.plan.remove_column))
        .difference(&add)
        .cloned()
        .collect();
    let mut r = record(RowStatus::Unchanged, &key, None);
    r.target_id = Some(contact.clone());
    if add.is_empty() && remove.is_empty() {
        r.detail = Some("no tag to add or remove".into());
        return Ok(Resolved {
            record: r,
            work: None,
        });
    }
    Ok(Resolved {
        record: r,
        work: Some(Work {
            contact,
            add,
            remove,
        }),
    })
}

/// The contact with this email or phone, or why none: looked up once per value.
async fn lookup(
    t: &Tagging,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<std::result::Result<String, String>> {
    if let Some(e) = email {
        if !e.contains('@') {
            return Ok(Err(format!("malformed email `{e}`")));
        }
    }
    if let Some(p) = phone {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        let junk = p.chars().any(|c| c.is_alphabetic());
        if digits < 7 || junk {
            return Ok(Err(format!("malformed phone `{p}`")));
        }
    }
    let cache_key = match (email, phone) {
        (Some(e), _) => format!("email:{}", e.to_lowercase()),
        (_, Some(p)) => format!("phone:{p}"),
        _ => return Ok(Err("no contact key".into())),
    };
    if let Some(hit) = t
        .lookups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cache_key)
    {
        return Ok(hit.clone());
    }
    let found = match t
        .client
        .find_duplicate(&t.plan.location, email, phone)
        .await
    {
        Ok(Some(c)) => Ok(c.id),
        Ok(None) => Err(format!(
            "no contact in the location has {}",
            email.map_or_else(
                || format!("phone {}", phone.unwrap_or("")),
                |e| format!("email {e}")
            )
        )),
        Err(e) if e.is_auth() => return Err(e.into()),
        Err(e) => Err(e.to_string()),
    };
    t.lookups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cache_key, found.clone());
    Ok(found)
}
