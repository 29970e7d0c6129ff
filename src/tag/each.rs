//! Actions with no bulk endpoint (workflows, campaigns, followers, delete): one request per
//! distinct contact of the chunk, [`super::TagPlan::concurrency`] at a time.
//!
//! Enrolments are made through the exactly-once primitive ([`crate::job::once`]): the rows are
//! recorded `sending` before the request, and since GHL cannot be asked whether a contact is
//! enrolled, a lost answer (or a row a killed run left `sending`) is reported, never resent.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::work::{settle, Resolved};
use super::{Action, Tagging};
use crate::api::actions::Program;
use crate::api::Error as ApiError;
use crate::exit::Result;
use crate::job::once::{exactly_once, Write};
use crate::job::rows::{each_concurrently, row_failure, Row, Settled};
use crate::state::{RowRecord, RowStatus};

/// Apply the action to the chunk's contacts; the rows without work settle as they are.
pub async fn apply_each(t: &Tagging, rows: Vec<Resolved>) -> Settled {
    let (mut records, by_contact) = by_contact(rows);
    if t.ledger.dry_run() {
        t.planned
            .fetch_add(by_contact.len() as u64, Ordering::Relaxed);
        let none = HashMap::new();
        records.extend(
            (by_contact.into_iter().flat_map(|(_, rows)| rows))
                .map(|r| settle(&t.plan.action, r, &none, true)),
        );
        return Settled {
            records,
            stop: None,
        };
    }
    let (done, stop) = each_concurrently(&t.ledger, by_contact, t.plan.concurrency, |(c, rows)| {
        contact_rows(t, c, rows)
    })
    .await;
    records.extend(done.into_iter().flatten());
    Settled { records, stop }
}

/// The rows without work, and the others by contact, in row order.
fn by_contact(rows: Vec<Resolved>) -> (Vec<RowRecord>, Vec<(String, Vec<Resolved>)>) {
    let mut settled = Vec::new();
    let mut order: Vec<(String, Vec<Resolved>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in rows {
        let Some(work) = &r.work else {
            settled.push(r.record);
            continue;
        };
        let i = *index.entry(work.contact.clone()).or_insert_with(|| {
            order.push((work.contact.clone(), Vec::new()));
            order.len() - 1
        });
        order[i].1.push(r);
    }
    (settled, order)
}

/// One contact's request, and the records of the rows that named it.
async fn contact_rows(t: &Tagging, contact: String, rows: Vec<Resolved>) -> Result<Vec<RowRecord>> {
    if t.plan.action.at_most_once() {
        let write = Enrol {
            t,
            contact: &contact,
        };
        let refs: Vec<&Row> = rows.iter().map(|r| &r.row).collect();
        let verb = t.plan.action.verb();
        let made = |r: &Row, id: &str| RowRecord {
            detail: Some(verb.to_string()),
            ..r.done(RowStatus::Updated, &contact, id)
        };
        return exactly_once(&t.ledger, &refs, &contact, None, &write, made).await;
    }
    let mut failed = HashMap::new();
    match act(t, &contact).await {
        Ok(()) => {}
        // A delete of a contact already gone counts as done: a rerun after a kill finds the
        // contacts it deleted gone.
        Err(e) if e.is_contact_not_found() && t.plan.action == Action::Delete => {}
        Err(e) if e.is_contact_not_found() => {
            failed.insert(contact.clone(), format!("no contact with id {contact}"));
        }
        Err(e) => {
            failed.insert(contact.clone(), row_failure(e)?);
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| settle(&t.plan.action, r, &failed, false))
        .collect())
}

/// A workflow or campaign enrolment: made at most once, never looked for (GHL cannot be asked).
struct Enrol<'a> {
    t: &'a Tagging,
    contact: &'a str,
}

impl Write for Enrol<'_> {
    async fn send(&self) -> std::result::Result<String, ApiError> {
        act(self.t, self.contact)
            .await
            .map(|()| self.contact.to_string())
    }

    async fn look(&self, _since_ms: i64) -> Result<Option<String>> {
        Ok(None)
    }

    fn look_again_ms(&self) -> &'static [u64] {
        &[]
    }
}

/// One contact's request.
async fn act(t: &Tagging, contact: &str) -> std::result::Result<(), ApiError> {
    let (client, location) = (&t.client, t.plan.location.as_str());
    match &t.plan.action {
        Action::Workflow { id, remove } => {
            client
                .enrol(location, contact, Program::Workflow, id, *remove)
                .await
        }
        Action::Campaign { id, remove } => {
            client
                .enrol(location, contact, Program::Campaign, id, *remove)
                .await
        }
        Action::Followers { users, remove } => {
            client
                .update_followers(location, contact, users, *remove)
                .await
        }
        Action::Delete => client.delete_contact(location, contact).await.map(drop),
        Action::Tags | Action::Business { .. } => Ok(()),
    }
}
