//! What the tag job's steps share (a leaf: it imports none of them): a resolved row, its
//! work, and how a row's final record reads.

use std::collections::{BTreeSet, HashMap};

use super::plan::Action;
use crate::job::rows::Row;
use crate::state::{RowRecord, RowStatus};

/// A row whose contact is known (or that failed to name one).
pub struct Resolved {
    pub row: Row,
    /// The row's record as it stands: failed, unchanged, or waiting for its work.
    pub record: RowRecord,
    /// The contact and its changes, when the row still has work to do.
    pub work: Option<Work>,
}

pub struct Work {
    pub contact: String,
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
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

/// A row's final record, its work done (or, in a dry run, not): failed with the reason in
/// `failed` for its contact, else changed as the action says.
pub fn settle(
    action: &Action,
    r: Resolved,
    failed: &HashMap<String, String>,
    dry_run: bool,
) -> RowRecord {
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
            record.status = match action {
                Action::Delete => RowStatus::Deleted,
                _ => RowStatus::Updated,
            };
            record.detail = Some(done_detail(action, &work, dry_run));
        }
    }
    record
}

/// What was done to the row's contact, in the report's words: `added a;b, removed c`.
pub fn done_detail(action: &Action, work: &Work, dry_run: bool) -> String {
    if *action != Action::Tags {
        let prefix = if dry_run { "would have been " } else { "" };
        return format!("{prefix}{}", action.verb());
    }
    let list = |tags: &BTreeSet<String>| tags.iter().cloned().collect::<Vec<_>>().join(";");
    let mut what = Vec::new();
    if !work.add.is_empty() {
        what.push(format!("added {}", list(&work.add)));
    }
    if !work.remove.is_empty() {
        what.push(format!("removed {}", list(&work.remove)));
    }
    let prefix = if dry_run { "would have " } else { "" };
    format!("{prefix}{}", what.join(", "))
}
