//! The fetch stage: a listing page in, the page with each contact's child records out.
//!
//! Tasks come from the location task search (100 contacts a request) while the token can use
//! it, else one request per contact like notes and appointments; per-contact requests run
//! `concurrency` at a time through the client's limiter, and come back in listing order. A
//! contact deleted between listing and fetching is marked so, not failed. In an incremental
//! run, contacts that did not change are marked so and get no request at all, and tasks come
//! from the location's full task listing instead (see `incremental`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::incremental::Delta;
use super::plan::TASK_SEARCH_IDS;
use super::run::Run;
use crate::api::{self, Client, ContactPage, ErrorKind};
use crate::table::TableKind;

/// A page with the child records of each of its contacts, in listing order.
pub struct EnrichedPage {
    pub page: ContactPage,
    /// Per contact (same index as `page.records`).
    pub children: Vec<Children>,
}

/// One contact's child records, per child table.
#[derive(Default)]
pub struct Children {
    pub records: Vec<(TableKind, Vec<Value>)>,
    /// The contact was deleted before its children could be fetched.
    pub deleted: bool,
    /// Incremental run: the contact did not change since the last run; it is not written.
    pub unchanged: bool,
}

impl Children {
    /// The records of `table` (none if it was not fetched).
    pub fn of(&self, table: TableKind) -> &[Value] {
        self.records
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(&[], |(_, r)| r.as_slice())
    }

    fn set(&mut self, table: TableKind, records: Vec<Value>) {
        match self.records.iter_mut().find(|(t, _)| *t == table) {
            Some((_, r)) => *r = records,
            None => self.records.push((table, records)),
        }
    }
}

pub fn contact_id(r: &Value) -> &str {
    r.get("id").and_then(Value::as_str).unwrap_or("")
}

/// `GET /contacts/{id}/<table>`: `None` when the contact no longer exists.
async fn fetch_child(
    client: &Client,
    location: &str,
    id: &str,
    table: TableKind,
) -> api::error::Result<Option<Vec<Value>>> {
    match table {
        TableKind::Tasks => client.contact_tasks(location, id).await,
        TableKind::Notes => client.contact_notes(location, id).await,
        TableKind::Appointments => client.contact_appointments(location, id).await,
        TableKind::Contacts | TableKind::Events => Ok(Some(Vec::new())),
    }
}

/// Fetch the child records of one page's contacts (in an incremental run, `delta` says which
/// contacts are written; the others get no request).
pub async fn enrich(
    run: &Run,
    location: &str,
    page: ContactPage,
    delta: Option<&Delta>,
) -> api::error::Result<EnrichedPage> {
    let mut children: Vec<Children> = page.records.iter().map(|_| Children::default()).collect();
    if let (Some(d), Some(incr)) = (delta, run.incr.as_ref()) {
        for (slot, r) in children.iter_mut().zip(&page.records) {
            slot.unchanged = !d.wants(incr, r);
        }
    }
    // Only the contacts written need their children; `wanted[k]` is the slot of `ids[k]`.
    let wanted: Vec<usize> = (0..children.len())
        .filter(|&i| !children[i].unchanged)
        .collect();
    let ids: Vec<String> = wanted
        .iter()
        .map(|&i| contact_id(&page.records[i]).to_string())
        .collect();
    let wants_tasks = run.plan.children.contains(&TableKind::Tasks);
    // An incremental run lists the location's tasks in full before its contacts.
    if wants_tasks && run.bulk_tasks.load(Ordering::Relaxed) && delta.is_none() {
        match bulk_tasks(run, location, &ids).await {
            Ok(mut by_contact) => {
                for (&i, id) in wanted.iter().zip(&ids) {
                    let tasks = by_contact.remove(id).unwrap_or_default();
                    children[i].set(TableKind::Tasks, tasks);
                }
            }
            Err(e) if e.is_scope_error() => {
                if run.bulk_tasks.swap(false, Ordering::Relaxed) {
                    tracing::warn!("The token lacks locations/tasks.readonly: fetching tasks with one request per contact.");
                }
            }
            Err(e) => return Err(e),
        }
    }
    let bulk = run.bulk_tasks.load(Ordering::Relaxed);
    let per_contact: Vec<TableKind> = run
        .plan
        .children
        .iter()
        .copied()
        .filter(|t| *t != TableKind::Tasks || !bulk)
        .collect();
    if per_contact.is_empty() {
        return Ok(EnrichedPage { page, children });
    }
    let fetched: Vec<Children> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            // Owned clones per request: the futures must not borrow across the pipeline.
            let client = run.client.clone();
            let location = location.to_string();
            let cancelled = run.cancelled.clone();
            let tables = per_contact.clone();
            async move {
                let mut c = Children::default();
                for table in tables {
                    if cancelled.load(Ordering::Relaxed) {
                        let path = format!("/contacts/{id}/{table}");
                        return Err(api::Error::new(ErrorKind::Cancelled, "GET", &path));
                    }
                    match fetch_child(&client, &location, &id, table).await? {
                        Some(records) => c.set(table, records),
                        None => {
                            c.deleted = true;
                            break;
                        }
                    }
                }
                Ok::<_, api::Error>(c)
            }
        })
        .buffered(run.plan.concurrency)
        .try_collect()
        .await?;
    for (&i, f) in wanted.iter().zip(fetched) {
        let slot = &mut children[i];
        if f.deleted {
            // A contact gone is written without children, even those fetched before.
            *slot = Children {
                records: Vec::new(),
                deleted: true,
                unchanged: false,
            };
            continue;
        }
        for (table, records) in f.records {
            slot.set(table, records);
        }
    }
    Ok(EnrichedPage { page, children })
}

/// The tasks of `ids` through the location task search, grouped by contact.
async fn bulk_tasks(
    run: &Run,
    location: &str,
    ids: &[String],
) -> api::error::Result<HashMap<String, Vec<Value>>> {
    let mut by_contact: HashMap<String, Vec<Value>> = HashMap::new();
    let chunks: Vec<Vec<Value>> =
        futures::stream::iter(ids.chunks(TASK_SEARCH_IDS).map(<[String]>::to_vec))
            .map(|chunk| {
                let client = run.client.clone();
                let location = location.to_string();
                async move { client.search_tasks(&location, &chunk).await }
            })
            .buffered(run.plan.concurrency.min(4))
            .try_collect()
            .await?;
    for task in chunks.into_iter().flatten() {
        let cid = task
            .get("contactId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        by_contact.entry(cid).or_default().push(task);
    }
    Ok(by_contact)
}
