//! One location's pipeline: its mapping, its column check, then the pager feeding the fetch
//! stage feeding the writer thread, joined by a bounded channel.
//!
//! ```text
//!  pager ──pages──▶ fetch (children: bounded concurrency, in order) ──bounded chan──▶ writer
//!  (cursor)          (through the client's limiter and retries)                      (map, encode,
//!                                                                                     commit chunk)
//! ```
//! At most `PREFETCH_PAGES` pages are in flight, so a slow writer slows the pager and memory
//! stays flat.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use super::fetch::{enrich, EnrichedPage};
use super::incremental::Delta;
use super::phases;
use super::plan::PREFETCH_PAGES;
use super::run::Run;
use super::write::LocationWriter;
use crate::api::Cursor;
use crate::exit::{JobError, Result};
use crate::mapping::{CustomFieldInfo, Mapping};
use crate::state::{LocationState, SetKind};
use crate::table::TableKind;

/// Where a location of this run stands (its start when nothing is committed yet).
fn location_state(run: &Run, location: &str) -> Result<LocationState> {
    Ok(run
        .db()
        .location(&run.key, location)?
        .unwrap_or(LocationState {
            cursor: Cursor::Start,
            next_part: 0,
            contacts: 0,
            done: false,
        }))
}

/// Export one location from where its last run committed. An incremental run lists the
/// location's tasks first and writes its deletions last (see `phases`).
pub async fn export_location(run: Arc<Run>, location: String, location_index: usize) -> Result<()> {
    let mut start = location_state(&run, &location)?;
    let step = |kind| -> Result<bool> {
        Ok(run.incr.is_some() && run.db().seen(&run.key, &location, kind)?.is_empty())
    };
    let deletions_due = step(SetKind::Done)?;
    if start.done && !deletions_due {
        return Ok(());
    }
    let delta = match &run.incr {
        Some(incr) => Some(Arc::new(Delta::load(&run.db(), incr, &location)?)),
        None => None,
    };
    let mapping = Arc::new(mapping_for(&run, &location).await?);
    let tables: Vec<TableKind> = run
        .plan
        .tables()
        .into_iter()
        .filter(|t| mapping.table(*t).is_some())
        .collect();
    if start.contacts > 0 {
        tracing::info!(location, contacts = start.contacts, cursor = ?start.cursor, "Resuming from the last committed part.");
    }
    check_columns(&run, &location, &mapping, &tables, start.next_part > 0)?;
    let spawn = |start: LocationState| Writer {
        run: run.clone(),
        location: location.clone(),
        index: location_index,
        mapping: mapping.clone(),
        tables: tables.clone(),
        start,
    };

    let tasks_due = step(SetKind::Tasks)? && !start.done;
    if let (Some(delta), true) = (&delta, tasks_due) {
        if run.plan.children.contains(&TableKind::Tasks) && run.bulk_tasks.load(Ordering::Relaxed) {
            let (tx, rx) = mpsc::channel::<Vec<serde_json::Value>>(PREFETCH_PAGES);
            let d = delta.clone();
            let written = spawn(start.clone()).spawn(move |w| w.run_tasks(rx, &d));
            let listed = phases::list_tasks(&run, &location, tx).await;
            joined(written.await)?;
            if !listed? && run.bulk_tasks.swap(false, Ordering::Relaxed) {
                tracing::warn!("The token lacks locations/tasks.readonly: fetching tasks with one request per contact, for the contacts written only.");
            }
            start = location_state(&run, &location)?;
        }
    }
    if !start.done {
        let (tx, rx) = mpsc::channel::<EnrichedPage>(PREFETCH_PAGES);
        let written = spawn(start.clone()).spawn(move |w| w.run(rx));
        let produced = produce(&run, &location, start.cursor.clone(), delta.clone(), tx).await;
        // A writer error explains a closed channel; report it first.
        joined(written.await)?;
        produced?;
    }
    if run.cancelled.load(Ordering::Relaxed) {
        return Err(JobError::Interrupted);
    }
    if let (Some(delta), true) = (&delta, deletions_due) {
        let start = location_state(&run, &location)?;
        if start.done {
            let d = delta.clone();
            joined(spawn(start).spawn(move |w| w.write_deleted(&d)).await)?;
        }
    }
    Ok(())
}

/// What a location's writer thread is made of.
struct Writer {
    run: Arc<Run>,
    location: String,
    index: usize,
    mapping: Arc<Mapping>,
    tables: Vec<TableKind>,
    start: LocationState,
}

impl Writer {
    /// Run `f` on the location's writer, on a blocking thread.
    fn spawn<F>(self, f: F) -> tokio::task::JoinHandle<Result<()>>
    where
        F: for<'a> FnOnce(LocationWriter<'a>) -> Result<()> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let w = &self;
            f(LocationWriter::new(
                &w.run,
                &w.location,
                w.index,
                &w.mapping,
                &w.tables,
                w.start.clone(),
            ))
        })
    }
}

/// The outcome of a writer thread.
fn joined(r: std::result::Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    r.map_err(|e| JobError::Internal(format!("the writer task failed: {e}")))?
}

/// Page the listing from `cursor`, fetch each page's children, and hand the pages on in order.
async fn produce(
    run: &Arc<Run>,
    location: &str,
    cursor: Cursor,
    delta: Option<Arc<Delta>>,
    tx: mpsc::Sender<EnrichedPage>,
) -> Result<()> {
    let plan = &run.plan;
    let from_start = cursor == Cursor::Start;
    let pages = run
        .client
        .contact_pages(location, plan.source.clone(), plan.page_size, cursor);
    let count = Count::default();
    let mut enriched = std::pin::pin!(pages
        .map_ok(|page| {
            count.saw(&page);
            if let Some(t) = page.total {
                run.progress.grow_to(t);
            }
            let run = run.clone();
            let location = location.to_string();
            let delta = delta.clone();
            async move { enrich(&run, &location, page, delta.as_deref()).await }
        })
        .try_buffered(PREFETCH_PAGES));
    while let Some(page) = enriched.next().await {
        if run.cancelled.load(Ordering::Relaxed) {
            return Ok(());
        }
        let page = page?;
        run.progress.pages.fetch_add(1, Ordering::Relaxed);
        if tx.send(page).await.is_err() {
            return Ok(()); // the writer stopped; its error says why
        }
    }
    if from_start {
        count.check(location);
    }
    Ok(())
}

/// Contacts listed against the count the API gave with its pages. The count only sizes the
/// progress bar (a listing ends with a short page, never at a count), so a count that is off
/// is worth a warning, not a stop.
#[derive(Default)]
struct Count {
    listed: std::sync::atomic::AtomicU64,
    said: std::sync::Mutex<Option<u64>>,
}

impl Count {
    fn saw(&self, page: &crate::api::ContactPage) {
        self.listed
            .fetch_add(page.records.len() as u64, Ordering::Relaxed);
        if page.total.is_some() {
            *self.said.lock().unwrap_or_else(|e| e.into_inner()) = page.total;
        }
    }

    fn check(&self, location: &str) {
        let listed = self.listed.load(Ordering::Relaxed);
        let said = *self.said.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(said) = said.filter(|&s| s != listed) {
            tracing::warn!(
                location,
                "The API said the location has {said} contacts; {listed} were listed. Contacts added or deleted during the run explain a small difference; the export does not rely on the count."
            );
        }
    }
}

/// The mapping for one location: the file's (custom fields resolved against the location), or
/// the full default built from the location's custom fields.
async fn mapping_for(run: &Run, location: &str) -> Result<Mapping> {
    let base = run.plan.mapping.as_ref().map(|m| m.mapping.clone());
    let needs_fields = base.as_ref().is_none_or(|m| m.uses_custom_fields());
    let fields: Vec<CustomFieldInfo> = if needs_fields {
        match run.client.custom_fields(location).await {
            Ok(f) => {
                write_field_definitions(run, location, &f).await?;
                f.into_iter().map(CustomFieldInfo::from).collect()
            }
            // Without a mapping, a token that may not read field names still exports them,
            // by id. A refused token is not that case: the listing reports it.
            Err(e) if e.is_scope_error() && base.is_none() => {
                tracing::warn!(error = %e, "Cannot read custom-field names; custom fields stay in the customFields column.");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        Vec::new()
    };
    match base {
        Some(mut m) => {
            if needs_fields {
                m.resolve_custom_fields(&fields)?;
            }
            Ok(m)
        }
        None => Ok(Mapping::default_for(&fields)),
    }
}

/// The location's custom-field definitions as the API answered them, beside the data
/// (`_custom_fields/LOCATION.json`): a load with `custom_fields = "all"` names, types and
/// creates the fields from them, and a reader can tell what each column held.
async fn write_field_definitions(
    run: &Run,
    location: &str,
    fields: &[crate::api::model::CustomField],
) -> Result<()> {
    let name = format!("{}/{location}.json", crate::table::FIELDS_DIR);
    let answer = serde_json::json!({ "customFields": fields });
    run.out.write_manifest_as(&name, &answer).await
}

/// Keep a dataset's columns the same across runs: the first run records each table's columns;
/// a resumed run whose columns differ (a custom field added or renamed meanwhile, without
/// `--mapping`) stops instead of writing parts that readers could not line up.
fn check_columns(
    run: &Run,
    location: &str,
    mapping: &Mapping,
    tables: &[TableKind],
    resuming: bool,
) -> Result<()> {
    let mut db = run.db();
    for t in tables {
        let Some(tm) = mapping.table(*t) else {
            continue;
        };
        let columns: Vec<String> = tm
            .schema()
            .columns
            .iter()
            .map(|c| format!("{}:{}", c.name, c.ty.spelling()))
            .collect();
        let columns = columns.join(",");
        match db.columns(&run.key, location, t.name())? {
            Some(before) if resuming && before != columns => {
                let old: Vec<&str> = before.split(',').collect();
                let new: Vec<&str> = columns.split(',').collect();
                let added: Vec<&&str> = new.iter().filter(|c| !old.contains(c)).collect();
                let gone: Vec<&&str> = old.iter().filter(|c| !new.contains(c)).collect();
                return Err(JobError::usage(format!(
                    "the columns of table {t} changed since this export started (added {added:?}, removed {gone:?}), most likely a custom field of location {location} was added or renamed; rerun with --restart to export again with the new columns"
                )));
            }
            _ => db.save_columns(&run.key, location, t.name(), &columns)?,
        }
    }
    Ok(())
}
