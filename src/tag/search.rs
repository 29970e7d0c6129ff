//! `--where`: the contacts a search matches, page by page (500 a request), instead of a file.
//!
//! Each page becomes rows handed to the runner before the next is asked for, so memory is one
//! page. The report names the rows `search` and numbers them in listing order. A rerun lists
//! the search again from the start (a few requests: one per 500 contacts) and skips the
//! contacts the state database says are settled: numbering by position alone would not do,
//! since the changes themselves can move contacts in or out of the search (adding the tag a
//! search excludes).

use std::collections::HashSet;

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{Map, Value as Json};

use super::Tagging;
use crate::api::{Cursor, Source};
use crate::exit::{JobError, Result};
use crate::job::rows::Row;
use crate::job::Progress;

/// The `file` of the rows a search lists, in the state database and the reports.
pub const SEARCH_FILE: &str = "search";
const PAGE: usize = 500;

/// The search's contacts not yet settled, as rows, a page at a time.
pub fn listed<'a>(
    t: &'a Tagging,
    filters: Vec<Json>,
    progress: &'a Progress,
) -> Result<BoxStream<'a, Result<Vec<Row>>>> {
    let (settled, mut row) = settled_rows(t)?;
    let source = Source::Search { filters };
    let pages = t
        .client
        .contact_pages(&t.plan.location, source, PAGE, Cursor::Start);
    let rows = pages.map(move |page| {
        let page = page.map_err(JobError::from)?;
        if let Some(total) = page.total {
            progress.grow_to(total);
        }
        let mut rows = Vec::with_capacity(page.records.len());
        for contact in &page.records {
            let id = contact.get("id").and_then(Json::as_str).unwrap_or_default();
            if id.is_empty() || settled.contains(id) {
                continue;
            }
            row += 1;
            rows.push(listed_row(t, row, id, contact));
        }
        Ok(rows)
    });
    Ok(rows.boxed())
}

/// The contact ids an earlier run of this job settled, and the last row number it used.
fn settled_rows(t: &Tagging) -> Result<(HashSet<String>, u64)> {
    let sent_once = t.plan.action.at_most_once();
    let (mut settled, mut last) = (HashSet::new(), 0);
    let each = t.ledger.db().for_each_row(t.ledger.key(), None, |r| {
        last = last.max(r.row);
        if let Some(id) = r.target_id.filter(|_| r.status.is_final() || sent_once) {
            settled.insert(id);
        }
        Ok::<(), std::convert::Infallible>(())
    })?;
    let Ok(()) = each;
    Ok((settled, last))
}

/// A listed contact as a row: its id in the id column, and the few columns a person needs in
/// a report.
fn listed_row(t: &Tagging, row: u64, id: &str, contact: &Json) -> Row {
    let pick = |k: &str| contact.get(k).cloned().unwrap_or(Json::Null);
    let mut fields = Map::new();
    fields.insert(t.plan.keys.id.clone(), Json::String(id.to_string()));
    fields.insert("email".into(), pick("email"));
    fields.insert("phone".into(), pick("phone"));
    fields.insert("name".into(), pick("contactName"));
    Row {
        table: "tags",
        file: SEARCH_FILE.into(),
        row,
        fields,
        prior: None,
    }
}
