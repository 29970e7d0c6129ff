//! A chunk's changes in few requests.
//!
//! Tags: contacts grouped by identical (add, remove) sets, each group sent through the bulk
//! endpoints in batches of at most [`BULK_BATCH`] contacts. Every per-contact entry of the
//! answer is read; a contact the bulk call did not confirm gets `POST|DELETE
//! /contacts/{id}/tags`, and fails its row only if that fails too. The business of many
//! contacts goes the same way through `POST /contacts/bulk/business`; the other actions have
//! no bulk endpoint and go one request per distinct contact, [`TagPlan::concurrency`] at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use super::each;
use super::rows::{Resolved, Work};
use super::{Action, TagSummary, Tagging};
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
    match &t.plan.action {
        Action::Tags => apply_tags(t, rows, summary).await,
        Action::Business { id } => apply_business(t, rows, id.as_deref(), summary).await,
        _ => each::apply_each(t, rows, summary).await,
    }
}

async fn apply_tags(
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
            let n = contacts.len() as u64;
            for tag in add {
                summary.would_tag.entry(tag.clone()).or_default().0 += n;
            }
            for tag in remove {
                summary.would_tag.entry(tag.clone()).or_default().1 += n;
            }
        }
        return Ok(rows
            .into_iter()
            .map(|r| settle(t, r, &HashMap::new(), true))
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
        .map(|r| settle(t, r, &failed, false))
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
        Err(e) if e.stops_the_run() => return Err(JobError::from(e)),
        Err(_) => contacts.iter().collect(),
    };
    for c in unconfirmed {
        if let Err(e) = t.client.update_tags(location, c, action, tags).await {
            if e.stops_the_run() {
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

/// `POST /contacts/bulk/business` in batches; a contact left out of the answer's `ids` was not
/// changed (unknown, deleted, or of another location): its row fails saying so.
async fn apply_business(
    t: &Tagging,
    rows: Vec<Resolved>,
    business: Option<&str>,
    summary: &mut TagSummary,
) -> Result<Vec<RowRecord>> {
    let contacts = distinct_contacts(&rows);
    let mut failed: HashMap<String, String> = HashMap::new();
    if t.plan.dry_run {
        let batches = contacts.len().div_ceil(BULK_BATCH) as u64;
        t.planned.fetch_add(batches, Ordering::Relaxed);
        summary.would_change += contacts.len() as u64;
    } else {
        for batch in contacts.chunks(BULK_BATCH) {
            let answer = t
                .client
                .bulk_business(&t.plan.location, batch, business)
                .await;
            let (changed, error): (BTreeSet<String>, _) = match answer {
                Ok(a) => (a.ids.into_iter().collect(), None),
                Err(e) => match each::stops(&e) {
                    Some(stop) => return Err(stop),
                    None => (BTreeSet::new(), Some(e.to_string())),
                },
            };
            for c in batch.iter().filter(|c| !changed.contains(*c)) {
                let why = error.clone().unwrap_or_else(|| {
                    format!("not changed: no contact with id {c} in the location")
                });
                failed.insert(c.clone(), why);
            }
        }
    }
    let dry_run = t.plan.dry_run;
    Ok(rows
        .into_iter()
        .map(|r| settle(t, r, &failed, dry_run))
        .collect())
}

/// The contacts of the rows that still have work, each once, in row order: two rows naming
/// one contact share its request.
pub fn distinct_contacts(rows: &[Resolved]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .filter_map(|r| r.work.as_ref().map(|w| w.contact.clone()))
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

/// The row's final record.
pub fn settle(
    t: &Tagging,
    r: Resolved,
    failed: &HashMap<String, String>,
    dry_run: bool,
) -> RowRecord {
    let Some(work) = r.work else {
        return r.record;
    };
    let mut record = r.record;
    let prefix = if dry_run { "would have been " } else { "" };
    match failed.get(&work.contact) {
        Some(why) => {
            record.status = RowStatus::Failed;
            record.detail = Some(why.clone());
        }
        None if t.plan.action == Action::Delete => {
            record.status = RowStatus::Deleted;
            record.detail = Some(format!("{prefix}deleted"));
        }
        None if t.plan.action != Action::Tags => {
            record.status = RowStatus::Updated;
            record.detail = Some(format!("{prefix}{}", t.plan.action.verb()));
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
