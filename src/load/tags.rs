//! A chunk's tags, added after its contacts are written, in few requests.
//!
//! Tags never go in an upsert or update body by default: GHL replaces all of a contact's tags
//! with it. They go through `POST /contacts/bulk/tags/update/add` instead, up to
//! [`BULK_TAGS_BATCH`] contacts a request, grouped whichever way costs fewer requests: contacts
//! with the same tag set together, or one request per distinct tag for every contact that gets
//! it. The answer is per contact: every entry is read, and a contact whose entry is not a
//! success (or whose whole request failed) gets its tags through `POST /contacts/{id}/tags`.
//! A contact whose tags could not be added at all fails its row, saying the contact itself
//! was written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use super::done::RowDone;
use super::Load;
use crate::api::endpoints::TagAction;
use crate::exit::Result;
use crate::job::rows::row_failure as api_failure;
use crate::state::RowStatus;

/// Contacts per bulk tags request (GHL does not document its limit; 100 is the safe size).
pub const BULK_TAGS_BATCH: usize = 100;

/// One bulk request's worth: tags and the contacts that get them.
type Group = (Vec<String>, Vec<String>);

/// The cheaper of the two groupings of `wants` (contact → its tags).
fn plan_groups(wants: &[(String, Vec<String>)]) -> Vec<Group> {
    let mut by_set: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (contact, tags) in wants {
        let set: BTreeSet<String> = tags.iter().map(|t| t.to_lowercase()).collect();
        for t in &set {
            by_tag.entry(t.clone()).or_default().push(contact.clone());
        }
        by_set
            .entry(set.into_iter().collect())
            .or_default()
            .push(contact.clone());
    }
    let batches = |n: usize| n.div_ceil(BULK_TAGS_BATCH);
    let cost_set: usize = by_set.values().map(|c| batches(c.len())).sum();
    let cost_tag: usize = by_tag.values().map(|c| batches(c.len())).sum();
    let groups: Vec<Group> = if cost_set <= cost_tag {
        by_set.into_iter().collect()
    } else {
        by_tag.into_iter().map(|(t, c)| (vec![t], c)).collect()
    };
    groups
        .into_iter()
        .flat_map(|(tags, contacts)| {
            contacts
                .chunks(BULK_TAGS_BATCH)
                .map(|c| (tags.clone(), c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Add the tags of a chunk's written contacts; rows whose tags could not be added fail.
pub async fn add_chunk_tags(load: &Load, rows: &mut [RowDone]) -> Result<()> {
    let wants: Vec<(String, Vec<String>)> = rows.iter().filter_map(|r| r.tags.clone()).collect();
    if wants.is_empty() {
        return Ok(());
    }
    let groups = plan_groups(&wants);
    if load.plan.dry_run {
        load.planned
            .fetch_add(groups.len() as u64, Ordering::Relaxed);
        return Ok(());
    }
    // Contacts whose bulk entry was not a success, with why.
    let mut retry: HashMap<String, String> = HashMap::new();
    for (tags, contacts) in &groups {
        let answer = load
            .client
            .bulk_update_tags(&load.plan.location, TagAction::Add, contacts, tags)
            .await;
        match answer {
            Ok(a) => {
                let ok: BTreeSet<&str> = a
                    .responses
                    .iter()
                    .filter(|r| r.get("type").and_then(|t| t.as_str()) == Some("success"))
                    .filter_map(|r| r.get("contactId").and_then(|c| c.as_str()))
                    .collect();
                for c in contacts.iter().filter(|c| !ok.contains(c.as_str())) {
                    retry.insert(c.clone(), "the bulk tags answer did not confirm it".into());
                }
            }
            Err(e) => {
                let why = api_failure(e)?;
                for c in contacts {
                    retry.insert(c.clone(), why.clone());
                }
            }
        }
    }
    for row in rows.iter_mut() {
        let Some((contact, tags)) = row.tags.take() else {
            continue;
        };
        if !retry.contains_key(&contact) {
            continue;
        }
        let one = load
            .client
            .update_tags(&load.plan.location, &contact, TagAction::Add, &tags)
            .await;
        if let Err(e) = one {
            let why = api_failure(e)?;
            row.record.status = RowStatus::Failed;
            row.record.detail = Some(format!(
                "the contact was written ({contact}) but its tags were not added: {why}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(c: &str, tags: &[&str]) -> (String, Vec<String>) {
        (c.to_string(), tags.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn same_sets_go_together_and_shared_tags_go_per_tag_when_cheaper() {
        // Three contacts with one set: one request.
        let g = plan_groups(&[
            want("a", &["x", "y"]),
            want("b", &["Y", "x"]),
            want("c", &["x", "y"]),
        ]);
        assert_eq!(
            g,
            vec![(
                vec!["x".into(), "y".into()],
                vec!["a".into(), "b".into(), "c".into()]
            )]
        );
        // Every contact has `vip` plus a tag of its own: by tag costs 1 + 4 = 5, by set 4.
        let w: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|c| want(c, &["vip", c]))
            .collect();
        assert_eq!(plan_groups(&w).len(), 4);
        // 250 contacts with one of two sets, all sharing `lead`: by set 2 + 2 = 4 batches.
        let w: Vec<_> = (0..250)
            .map(|i| {
                want(
                    &format!("c{i}"),
                    if i % 2 == 0 {
                        &["lead", "a"]
                    } else {
                        &["lead", "b"]
                    },
                )
            })
            .collect();
        let g = plan_groups(&w);
        assert_eq!(g.len(), 4);
        assert!(g.iter().all(|(_, c)| c.len() <= BULK_TAGS_BATCH));
        assert_eq!(g.iter().map(|(_, c)| c.len()).sum::<usize>(), 250);
    }
}
