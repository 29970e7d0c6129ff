//! Tags in the fewest requests, across the whole file.
//!
//! `POST /contacts/bulk/tags/update/{add|remove}` takes one tag list and up to [`BULK_BATCH`]
//! contacts. A row's additions and its removals go separately, each split by the run's
//! [`Grouping`] into parts (its whole set, one part per tag, or one per block of tags that
//! often go together, whichever the file's tag sets make cheapest: see [`Grouping::plan`]).
//! Each part joins the group of contacts that get the same part, across every chunk of the
//! file; a group is sent when it is full or the input ends. A row settles when every part
//! of it was answered: a kill loses nothing (the rows of unsent groups are unrecorded, and the
//! rerun does them) and resends nothing answered.
//!
//! For a contact the same file names again, the rows apply in file order: a group holding the
//! contact for the opposite action on a shared tag is sent first. Groups waiting are bounded
//! ([`MAX_WAITING`] contacts in all), so memory stays flat however long the file.
//!
//! Every per-contact entry of a bulk answer is read; a contact it did not confirm gets `POST|
//! DELETE /contacts/{id}/tags`, and fails its row only if that fails too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::api::endpoints::TagAction;
use crate::api::Client;
use crate::exit::Result;
use crate::job::rows::{row_failure, Ledger};
use crate::state::{RowRecord, RowStatus};

use super::plan::{Action, TagPlan};
use super::rows::row_sets;
use super::work::{done_detail, Resolved, Work};
use crate::input::{Chunked, InputFormat};

/// Contacts per bulk request (GHL does not document its limit; 100 is the safe size).
pub const BULK_BATCH: usize = 100;

/// Contacts waiting in groups not yet full, in all: past it, the fullest group goes.
const MAX_WAITING: usize = 50_000;

/// How a tag set is split into the parts that are sent together.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// Tag → its block. Tags in one block travel together; a tag not seen when planning is a
    /// block of its own.
    block_of: HashMap<String, usize>,
    /// What the summary calls it.
    pub name: String,
}

/// Tag sets seen in a file, with how many rows carry each.
pub type SetCounts = HashMap<BTreeSet<String>, u64>;

impl Grouping {
    /// Every set sent whole.
    pub fn by_set() -> Grouping {
        Grouping {
            block_of: HashMap::new(),
            name: "by identical tag set".into(),
        }
    }

    fn from_blocks(blocks: &[BTreeSet<String>], name: String) -> Grouping {
        let block_of = blocks
            .iter()
            .enumerate()
            .flat_map(|(i, b)| b.iter().map(move |t| (t.clone(), i)))
            .collect();
        Grouping { block_of, name }
    }

    /// The cheapest way to send these sets: whole, per tag, or in blocks of tags found by
    /// merging the blocks that save the most requests while any merge saves some.
    pub fn plan(sets: &SetCounts) -> (Grouping, u64) {
        let tags: BTreeSet<String> = sets.keys().flatten().cloned().collect();
        let whole = vec![tags.clone()];
        let whole_cost = cost(sets, &whole);
        let mut blocks: Vec<BTreeSet<String>> =
            tags.iter().map(|t| BTreeSet::from([t.clone()])).collect();
        let per_tag_cost = cost(sets, &blocks);
        let mut best = per_tag_cost;
        // Merging is quadratic in the tags a step, each try a pass over the distinct sets.
        let small = tags.len() <= 24 && sets.len() <= 4_096;
        while small && blocks.len() > 1 {
            let mut pick: Option<(usize, usize, u64)> = None;
            for i in 0..blocks.len() {
                for j in i + 1..blocks.len() {
                    let mut trial = blocks.clone();
                    let merged = trial.remove(j);
                    trial[i].extend(merged);
                    let c = cost(sets, &trial);
                    if c < pick.map_or(best, |p| p.2) {
                        pick = Some((i, j, c));
                    }
                }
            }
            let Some((i, j, c)) = pick else { break };
            let merged = blocks.remove(j);
            blocks[i].extend(merged);
            best = c;
        }
        if whole_cost <= best {
            return (Grouping::by_set(), whole_cost);
        }
        let name = match blocks.len() == tags.len() {
            true => "per tag".to_string(),
            false => format!("in {} blocks of tags that go together", blocks.len()),
        };
        (Grouping::from_blocks(&blocks, name), best)
    }

    /// The parts `tags` is sent in.
    pub fn split(&self, tags: &BTreeSet<String>) -> Vec<Vec<String>> {
        if self.block_of.is_empty() {
            return match tags.is_empty() {
                true => vec![],
                false => vec![tags.iter().cloned().collect()],
            };
        }
        let mut parts: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
        for t in tags {
            let block = match self.block_of.get(t) {
                Some(&b) => (b, String::new()),
                None => (usize::MAX, t.clone()),
            };
            parts.entry(block).or_default().push(t.clone());
        }
        parts.into_values().collect()
    }
}

/// The tag sets the file's rows add and remove, with how many rows carry each: one read of the
/// file, before any write, so the grouping can be chosen for the whole file.
pub async fn file_sets(
    plan: &TagPlan,
    path: &std::path::Path,
    format: Option<InputFormat>,
) -> Result<(SetCounts, SetCounts)> {
    let mut chunks = Chunked::open(path, format, 1_000)?;
    let (mut adds, mut removes) = (SetCounts::new(), SetCounts::new());
    while let Some(chunk) = chunks.next().await {
        for row in chunk.iter().flatten() {
            let (add, remove) = row_sets(plan, &row.fields);
            for (sets, set) in [(&mut adds, add), (&mut removes, remove)] {
                if !set.is_empty() {
                    *sets.entry(set).or_default() += 1;
                }
            }
        }
    }
    chunks.finish().await?;
    Ok((adds, removes))
}

/// Requests the sets cost when split into `blocks`.
fn cost(sets: &SetCounts, blocks: &[BTreeSet<String>]) -> u64 {
    let mut per_part: HashMap<(usize, Vec<&String>), u64> = HashMap::new();
    for (set, n) in sets {
        for (i, b) in blocks.iter().enumerate() {
            let part: Vec<&String> = set.intersection(b).collect();
            if !part.is_empty() {
                *per_part.entry((i, part)).or_default() += n;
            }
        }
    }
    per_part
        .values()
        .map(|n| n.div_ceil(BULK_BATCH as u64))
        .sum()
}

/// One group's identity: the action and the tags.
type GroupKey = (bool, Vec<String>);

fn action_of(key: &GroupKey) -> TagAction {
    match key.0 {
        true => TagAction::Add,
        false => TagAction::Remove,
    }
}

/// Contacts waiting to be sent with the same tags, and the rows waiting on each.
#[derive(Default)]
struct Group {
    contacts: Vec<String>,
    rows: HashMap<String, Vec<u64>>,
}

/// A row waiting for its parts' answers.
struct Waiting {
    resolved: Resolved,
    parts_left: usize,
    failure: Option<String>,
}

/// The groups of one run, filled across the whole file.
pub struct Batcher {
    add: Grouping,
    remove: Grouping,
    groups: HashMap<GroupKey, Group>,
    /// Contact → the groups it waits in (to keep one contact's rows in file order).
    waiting_in: HashMap<String, Vec<GroupKey>>,
    rows: HashMap<u64, Waiting>,
    next_row: u64,
    waiting_contacts: usize,
    dry_run: bool,
    /// Requests sent (or, in a dry run, that would be).
    pub requests: u64,
}

impl Batcher {
    pub fn new(add: Grouping, remove: Grouping, dry_run: bool) -> Batcher {
        Batcher {
            add,
            remove,
            groups: HashMap::new(),
            waiting_in: HashMap::new(),
            rows: HashMap::new(),
            next_row: 0,
            waiting_contacts: 0,
            dry_run,
            requests: 0,
        }
    }

    /// Take a chunk's resolved rows; answers the rows settled now (rows without work, and
    /// the rows of groups that filled up). `Err` for what stops the job: the rows of unsent
    /// groups stay unrecorded, and the rerun does them; so do the rows left when the run is
    /// stopping (a signal).
    pub async fn add(
        &mut self,
        (client, location): (&Client, &str),
        ledger: &Ledger,
        rows: Vec<Resolved>,
        out: &mut Vec<RowRecord>,
    ) -> Result<()> {
        for r in rows {
            if ledger.stopping() {
                break;
            }
            let Some(work) = &r.work else {
                out.push(r.record);
                continue;
            };
            let parts: Vec<GroupKey> = (self.add.split(&work.add).into_iter())
                .map(|p| (true, p))
                .chain(
                    self.remove
                        .split(&work.remove)
                        .into_iter()
                        .map(|p| (false, p)),
                )
                .collect();
            let contact = work.contact.clone();
            let id = self.next_row;
            self.next_row += 1;
            self.rows.insert(
                id,
                Waiting {
                    resolved: r,
                    parts_left: parts.len(),
                    failure: None,
                },
            );
            for key in parts {
                self.join(client, location, key, &contact, id, out).await?;
            }
        }
        while self.waiting_contacts > MAX_WAITING {
            let fullest = self.groups.iter().max_by_key(|(_, g)| g.contacts.len());
            let key = fullest
                .map(|(k, _)| k.clone())
                .expect("contacts wait in groups");
            self.send(client, location, &key, out).await?;
        }
        Ok(())
    }

    /// The input ended: send every group left.
    pub async fn flush(
        &mut self,
        client: &Client,
        location: &str,
        out: &mut Vec<RowRecord>,
    ) -> Result<()> {
        let mut keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        keys.sort();
        for key in keys {
            self.send(client, location, &key, out).await?;
        }
        Ok(())
    }

    /// Put a row's part in its group: after the contact's opposite-action groups on a shared
    /// tag are sent, and sending the group when it is full.
    async fn join(
        &mut self,
        client: &Client,
        location: &str,
        key: GroupKey,
        contact: &str,
        row: u64,
        out: &mut Vec<RowRecord>,
    ) -> Result<()> {
        let conflicting: Vec<GroupKey> = (self.waiting_in.get(contact).into_iter().flatten())
            .filter(|k| k.0 != key.0 && k.1.iter().any(|t| key.1.contains(t)))
            .cloned()
            .collect();
        for k in conflicting {
            self.send(client, location, &k, out).await?;
        }
        let group = self.groups.entry(key.clone()).or_default();
        let rows = group.rows.entry(contact.to_string()).or_default();
        if rows.is_empty() {
            group.contacts.push(contact.to_string());
            self.waiting_contacts += 1;
            let keys = self.waiting_in.entry(contact.to_string()).or_default();
            keys.push(key.clone());
        }
        rows.push(row);
        if group.contacts.len() >= BULK_BATCH {
            self.send(client, location, &key, out).await?;
        }
        Ok(())
    }

    /// Send one group, and settle the rows whose last part it was.
    async fn send(
        &mut self,
        client: &Client,
        location: &str,
        key: &GroupKey,
        out: &mut Vec<RowRecord>,
    ) -> Result<()> {
        let Some(group) = self.groups.get(key) else {
            return Ok(());
        };
        self.requests += 1;
        let failed = match self.dry_run {
            true => HashMap::new(),
            false => send_group(client, location, action_of(key), &group.contacts, &key.1).await?,
        };
        let group = self.groups.remove(key).expect("the group was just read");
        self.waiting_contacts -= group.contacts.len();
        for (contact, rows) in group.rows {
            if let Some(keys) = self.waiting_in.get_mut(&contact) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.waiting_in.remove(&contact);
                }
            }
            for row in rows {
                let waiting = self.rows.get_mut(&row).expect("a grouped row waits");
                waiting.parts_left -= 1;
                if let Some(why) = failed.get(&contact) {
                    waiting.failure.get_or_insert_with(|| why.clone());
                }
                if waiting.parts_left == 0 {
                    let done = self.rows.remove(&row).expect("it was just read");
                    out.push(finish(done, self.dry_run));
                }
            }
        }
        Ok(())
    }
}

/// A row whose every part was answered.
fn finish(w: Waiting, dry_run: bool) -> RowRecord {
    let mut record = w.resolved.record;
    let work: &Work = w.resolved.work.as_ref().expect("a grouped row has work");
    match w.failure {
        Some(why) => {
            record.status = RowStatus::Failed;
            record.detail = Some(why);
        }
        None => {
            record.status = RowStatus::Updated;
            record.detail = Some(done_detail(&Action::Tags, work, dry_run));
        }
    }
    record
}

/// One bulk request, then the contacts it did not confirm one by one. Answers the contacts
/// whose change did not go through, with why.
async fn send_group(
    client: &Client,
    location: &str,
    action: TagAction,
    contacts: &[String],
    tags: &[String],
) -> Result<HashMap<String, String>> {
    let unconfirmed: Vec<&String> = match client
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
        Err(e) => {
            row_failure(e)?;
            contacts.iter().collect()
        }
    };
    let mut failed = HashMap::new();
    for c in unconfirmed {
        if let Err(e) = client.update_tags(location, c, action, tags).await {
            let why = match e.is_contact_not_found() {
                true => format!("no contact with id {c}"),
                false => row_failure(e)?,
            };
            failed.insert(c.clone(), why);
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tags: &[&str]) -> BTreeSet<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn identical_sets_go_whole_and_varied_subsets_in_cheaper_blocks() {
        // Five groups of 2,000 contacts: whole sets, 100 requests.
        let sets: SetCounts = (0..5).map(|i| (set(&[&format!("g{i}")]), 2_000)).collect();
        let (g, requests) = Grouping::plan(&sets);
        assert_eq!(requests, 100);
        assert_eq!(g.split(&set(&["g1"])), vec![vec!["g1".to_string()]]);
        // 10,000 rows each adding a random subset of 8 tags (every subset about equally
        // often): whole sets cost 255 requests, per tag 400; blocks cost fewer than both.
        let tags: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let sets: SetCounts = (1u32..256)
            .map(|mask| {
                let s = (0..8)
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| tags[b].clone())
                    .collect();
                (s, 10_000 / 255)
            })
            .collect();
        let (g, requests) = Grouping::plan(&sets);
        assert!(requests < 255, "{requests} requests, {}", g.name);
        let all: BTreeSet<String> = tags.iter().cloned().collect();
        let parts = g.split(&all);
        let rejoined: BTreeSet<String> = parts.iter().flatten().cloned().collect();
        assert_eq!(rejoined, all, "the parts of a set are the set");
        // A tag the plan never saw is a part of its own.
        let parts = g.split(&set(&["t0", "new"]));
        assert!(parts.contains(&vec!["new".to_string()]), "{parts:?}");
    }

    #[test]
    fn the_cost_counts_batches_per_part() {
        let sets: SetCounts = [(set(&["a", "b"]), 150), (set(&["a"]), 50)].into();
        assert_eq!(cost(&sets, &[set(&["a", "b"])]), 2 + 1);
        assert_eq!(cost(&sets, &[set(&["a"]), set(&["b"])]), 2 + 2);
    }
}
