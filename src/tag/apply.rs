//! A chunk's tag changes in few requests: contacts grouped by identical (add, remove) sets,
//! each group sent through the bulk endpoints in batches of at most [`BULK_BATCH`] contacts.
//! Every per-contact entry of the answer is read; a contact the bulk call did not confirm gets
//! `POST|DELETE /contacts/{id}/tags`, and fails its row only if that fails too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use super::rows::{Resolved, Work};
use super::{TagSummary, Tagging};
use crate::api::endpoints::TagAction;
use crate::exit::{JobError, Result};
use crate::state::{RowRecord, RowStatus};

/// Contacts per bulk request (GHL does not document its limit; 100 is the safe size).
pub const BULK_BATCH: usize = 100;

type Sets = (BTreeSet<String>, BTreeSet<String>);

/// Apply a chunk's changes; answers one record per row.
pub async fn apply_chunk(
    t: &Tagging,
    rows: Vec<Resolved>,
    summary: &mut TagSummary,
) -> Result<Vec<RowRecord>> {
    let mut groups: BTreeMap<Sets, Vec<String>> = BTreeMap::new();
    for r in &rows {
        if let Some(Work {
            contact,
            add,
            remove,
        }) = &r.work
        {
            let contacts = groups.entry((add.clone(), remove.clone())).or_default();
            if !contacts.contains(contact) {
                contacts.push(contact.clone());
            }
        }
    }
    if t.plan.dry_run {
        for ((add, remove), contacts) in &groups {
            let batches = contacts.len().div_ceil(BULK_BATCH) as u64;
            let sends = u64::from(!add.is_empty()) + u64::from(!remove.is_empty());
            t.planned.fetch_add(batches * sends, Ordering::Relaxed);
            summary.would_change += contacts.len() as u64;
        }
        return Ok(rows
            .into_iter()
            .map(|r| settle(r, &HashMap::new(), true))
            .collect());
    }
    // Contact → why its change did not go through.
    let mut failed: HashMap<String, String> = HashMap::new();
    for ((add, remove), contacts) in &groups {
        for (action, tags) in [(TagAction::Add, add), (TagAction::Remove, remove)] {
            if tags.is_empty() {
                continue;
            }
            let tags: Vec<String> = tags.iter().cloned().collect();
            for batch in contacts.chunks(BULK_BATCH) {
                send(t, action, batch, &tags, &mut failed).await?;
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| settle(r, &failed, false))
        .collect())
}

/// One bulk request, then the contacts it did not confirm one by one.
async fn send(
    t: &Tagging,
    action: TagAction,
    contacts: &[String],
    tags: &[String],
    failed: &mut HashMap<String, String>,
) -> Result<()> {
    let location = &t.plan.location;
    let unconfirmed: Vec<&String> = match t
        .client
        .bulk_update_tags(location, action, contacts, tags)
        .await
    {
        Ok(a) => {
            let ok: BTreeSet<&str> = a
                .responses
                .iter()
                .filter(|r| r.get("type").and_then(|v| v.as_str()) == Some("success"))
                .filter_map(|r| r.get("contactId").and_then(|v| v.as_str()))
                .collect();
            contacts
                .iter()
                .filter(|c| !ok.contains(c.as_str()))
                .collect()
        }
        Err(e) if e.is_auth() => return Err(JobError::from(e)),
        Err(_) => contacts.iter().collect(),
    };
    for c in unconfirmed {
        if let Err(e) = t.client.update_tags(location, c, action, tags).await {
            if e.is_auth() {
                return Err(e.into());
            }
            let why = if e.is_contact_not_found() {
                format!("no contact with id {c}")
            } else {
                e.to_string()
            };
            failed.insert(c.clone(), why);
        }
    }
    Ok(())
}

/// The row's final record.
fn settle(r: Resolved, failed: &HashMap<String, String>, dry_run: bool) -> RowRecord {
    let Some(work) = r.work else {
        return r.record;
    };
    let mut record = r.record;
    match failed.get(&work.contact) {
        Some(why) => {
            record.status = RowStatus::Failed;
            record.detail = Some(why.clone());
        }
        None => {
            record.status = RowStatus::Updated;
            let list = |tags: &BTreeSet<String>| tags.iter().cloned().collect::<Vec<_>>().join(";");
            let mut what = Vec::new();
            if !work.add.is_empty() {
                what.push(format!("added {}", list(&work.add)));
            }
            if !work.remove.is_empty() {
                what.push(format!("removed {}", list(&work.remove)));
            }
            let prefix = if dry_run { "would have " } else { "" };
            record.detail = Some(format!("{prefix}{}", what.join(", ")));
        }
    }
    record
}
