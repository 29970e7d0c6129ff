//! `--where`: the contacts a search matches, page by page (500 a request), instead of a file.
//!
//! Each page is applied before the next is asked for, so memory is one page. The report names
//! the rows `search` and numbers them in listing order. A rerun lists the search again from
//! the start (a few requests: one per 500 contacts) and skips the contacts the state database
//! says are settled: numbering by position alone would not do, since the changes themselves
//! can move contacts in or out of the search (adding the tag a search excludes).

use std::collections::HashSet;

use futures::StreamExt;
use serde_json::{json, Map, Value as Json};

use super::rows::{work_for, Resolved};
use super::{apply_and_record, TagSummary, Tagging};
use crate::api::{Cursor, Source};
use crate::exit::{JobError, Result};
use crate::job::Progress;
use crate::state::{RowRecord, RowStatus};

/// The `file` of the rows a search lists, in the state database and the reports.
pub const SEARCH_FILE: &str = "search";
const PAGE: usize = 500;

pub async fn run_search(
    t: &Tagging,
    filters: Vec<Json>,
    progress: &Progress,
    summary: &mut TagSummary,
) -> Result<()> {
    let (settled, mut row) = settled_rows(t)?;
    let source = Source::Search { filters };
    let location = t.plan.location.clone();
    let mut pages = Box::pin(
        t.client
            .contact_pages(&location, source, PAGE, Cursor::Start),
    );
    while let Some(page) = pages.next().await {
        let page = page.map_err(JobError::from)?;
        if let Some(total) = page.total {
            progress.grow_to(total);
        }
        let mut ready = Vec::with_capacity(page.records.len());
        for contact in &page.records {
            let id = contact.get("id").and_then(Json::as_str).unwrap_or_default();
            if id.is_empty() || settled.contains(id) {
                continue;
            }
            row += 1;
            ready.push(resolved(t, row, id, contact));
        }
        apply_and_record(t, ready, progress, summary).await?;
    }
    Ok(())
}

/// The contact ids an earlier run of this job settled, and the last row number it used.
fn settled_rows(t: &Tagging) -> Result<(HashSet<String>, u64)> {
    let records = t.db().rows(&t.key)?;
    let last = records.iter().map(|r| r.row).max().unwrap_or(0);
    let sent_once = t.plan.action.at_most_once();
    let settled = records
        .into_iter()
        .filter(|r| r.status.is_final() || sent_once)
        .filter_map(|r| r.target_id)
        .collect();
    Ok((settled, last))
}

/// A listed contact as a row: its id known, its columns the few a person needs in a report.
fn resolved(t: &Tagging, row: u64, id: &str, contact: &Json) -> Resolved {
    let pick = |k: &str| contact.get(k).cloned().unwrap_or(Json::Null);
    let raw = json!({
        "contact_id": id,
        "email": pick("email"),
        "phone": pick("phone"),
        "name": pick("contactName"),
    });
    let record = RowRecord {
        table: "tags".into(),
        file: SEARCH_FILE.into(),
        row,
        status: RowStatus::Unchanged,
        key: id.to_string(),
        target_id: Some(id.to_string()),
        fingerprint: None,
        detail: None,
        raw: Some(raw.to_string()),
    };
    work_for(&t.plan, record, id.to_string(), &Map::new())
}
