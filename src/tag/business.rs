//! The business of many contacts at once: `POST /contacts/bulk/business` in batches of
//! [`BULK_BATCH`] distinct contacts a chunk. A contact left out of the answer's `ids` was not
//! changed (unknown, deleted, or of another location): its row fails saying so.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use super::batch::BULK_BATCH;
use super::work::{distinct_contacts, settle, Resolved};
use super::Tagging;
use crate::job::rows::{row_failure, Settled};

pub async fn apply_business(t: &Tagging, rows: Vec<Resolved>, business: Option<&str>) -> Settled {
    let contacts = distinct_contacts(&rows);
    let dry_run = t.ledger.dry_run();
    let mut failed: HashMap<String, String> = HashMap::new();
    if dry_run {
        let batches = contacts.len().div_ceil(BULK_BATCH) as u64;
        t.planned.fetch_add(batches, Ordering::Relaxed);
    }
    // Contacts of the batches answered so far: what a stop leaves settled.
    let mut answered: BTreeSet<&String> = BTreeSet::new();
    for batch in contacts.chunks(BULK_BATCH).filter(|_| !dry_run) {
        let answer = t
            .client
            .bulk_business(&t.plan.location, batch, business)
            .await;
        let (changed, error): (BTreeSet<String>, _) = match answer {
            Ok(a) => (a.ids.into_iter().collect(), None),
            Err(e) => match row_failure(e) {
                Ok(why) => (BTreeSet::new(), Some(why)),
                Err(stop) => {
                    let records = rows
                        .into_iter()
                        .filter(|r| {
                            r.work
                                .as_ref()
                                .is_none_or(|w| answered.contains(&w.contact))
                        })
                        .map(|r| settle(&t.plan.action, r, &failed, false))
                        .collect();
                    return Settled::stopped(records, stop);
                }
            },
        };
        for c in batch.iter().filter(|c| !changed.contains(*c)) {
            let why = error
                .clone()
                .unwrap_or_else(|| format!("not changed: no contact with id {c} in the location"));
            failed.insert(c.clone(), why);
        }
        answered.extend(batch);
    }
    let records = rows
        .into_iter()
        .map(|r| settle(&t.plan.action, r, &failed, dry_run))
        .collect();
    Settled {
        records,
        stop: None,
    }
}
