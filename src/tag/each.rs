//! Actions with no bulk endpoint (workflows, campaigns, followers, delete): one request per
//! distinct contact of the chunk, [`super::TagPlan::concurrency`] at a time.
//!
//! Enrolments are sent at most once: each row is recorded `sending` before its request, so a
//! killed run's rerun reports it instead of enrolling the contact a second time.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::apply::{distinct_contacts, settle};
use super::rows::Resolved;
use super::{Action, TagSummary, Tagging};
use crate::api::actions::Program;
use crate::api::Error as ApiError;
use crate::exit::{JobError, Result};
use crate::state::{RowRecord, RowStatus};

/// An error that no other contact can escape either: the token, or an id given on the command
/// line that the location does not have. Anything else fails only its contact.
pub fn stops(e: &ApiError) -> Option<JobError> {
    if e.stops_the_run() {
        return Some(JobError::from(e.clone()));
    }
    let text = e.to_string().to_lowercase();
    let missing = ["workflow", "campaign", "business", "user"]
        .iter()
        .any(|what| text.contains(&format!("{what} not found")));
    (e.is_bad_request() && missing).then(|| {
        JobError::usage(format!(
            "{e}; check the id given on the command line (it must exist in the location)"
        ))
    })
}

pub async fn apply_each(
    t: &Tagging,
    rows: Vec<Resolved>,
    summary: &mut TagSummary,
) -> Result<Vec<RowRecord>> {
    let contacts = distinct_contacts(&rows);
    if t.plan.dry_run {
        t.planned
            .fetch_add(contacts.len() as u64, Ordering::Relaxed);
        summary.would_change += contacts.len() as u64;
        let none = HashMap::new();
        return Ok(rows
            .into_iter()
            .map(|r| settle(t, r, &none, true))
            .collect());
    }
    if t.plan.action.at_most_once() {
        let sending: Vec<RowRecord> = rows
            .iter()
            .filter(|r| r.work.is_some())
            .map(|r| RowRecord {
                status: RowStatus::Sending,
                ..r.record.clone()
            })
            .collect();
        t.db().record_rows(&t.key, &sending)?;
    }
    let answers: Vec<(String, std::result::Result<(), ApiError>)> = futures::stream::iter(contacts)
        .map(|c| async move {
            let answer = act(t, &c).await;
            (c, answer)
        })
        .buffer_unordered(t.plan.concurrency)
        .collect()
        .await;
    let mut failed = HashMap::new();
    for (contact, answer) in answers {
        let Err(e) = answer else { continue };
        if let Some(stop) = stops(&e) {
            return Err(stop);
        }
        let why = if e.is_contact_not_found() && t.plan.action == Action::Delete {
            continue;
        } else if e.is_contact_not_found() {
            format!("no contact with id {contact}")
        } else {
            e.to_string()
        };
        failed.insert(contact, why);
    }
    Ok(rows
        .into_iter()
        .map(|r| settle(t, r, &failed, false))
        .collect())
}

/// One contact's request. A delete of a contact already gone counts as done: a rerun after a
/// kill finds the contacts it deleted gone.
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
