//! The tag job: a list of contacts (by id, email or phone, or every contact a search matches)
//! and the tags to add or remove on each, applied in few requests. `ghl-etl bulk` runs the
//! same job with another [`Action`]: workflows, campaigns, followers, business, delete.
//!
//! - `plan`: what the job does ([`TagPlan`], [`Action`]) and its identity.
//! - `lookup`: emails and phones → contact ids, per key or by one scan of the location,
//!   whichever costs fewer requests.
//! - `rows`: one input row → its contact and its changes, or why it cannot be used.
//! - `search`: `--where`: the contacts of a search, page by page, instead of a file.
//! - `apply`: a chunk's contacts grouped by identical (add, remove) sets, sent through
//!   `POST /contacts/bulk/tags/update/{add|remove}` in batches, every per-contact answer read,
//!   `POST|DELETE /contacts/{id}/tags` where the bulk call did not confirm; the business of
//!   many contacts through `POST /contacts/bulk/business`.
//! - `each`: the actions without a bulk endpoint, one request per contact.
//!
//! Adding or removing a tag twice changes nothing, so a rerun is safe; it also skips the rows
//! the state database says are settled, and the reports keep one line per input row.

mod apply;
mod each;
mod lookup;
mod plan;
mod rows;
mod search;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::StreamExt;

pub use plan::{Action, Contacts, KeyColumns, Lookup, TagPlan};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::input::{Chunked, InputFormat};
use crate::job::{
    planned_requests_line, row_job_tail, Connection, ConnectionPlan, Cost, Progress, Ui,
};
use crate::report::{write_row_reports, RowReports};
use crate::state::{RowRecord, RowStatus, StateDb};

/// Input rows handed over at a time: the unit of grouping into bulk requests.
const CHUNK_ROWS: usize = 1_000;

/// What a tag run did.
#[derive(Debug, Default)]
pub struct TagSummary {
    pub rows: u64,
    /// Rows whose contact was changed (tagged, enrolled, deleted, ...).
    pub changed: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub resumed: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub dry_run: bool,
    /// Dry run: contacts that would gain or lose tags, and the write requests it would take.
    pub would_change: u64,
    /// Dry run: tag → (contacts that would gain it, contacts that would lose it).
    pub would_tag: std::collections::BTreeMap<String, (u64, u64)>,
    pub planned_requests: u64,
    /// How emails and phones were looked up, and why (empty when none were).
    pub lookup: String,
    pub reports: Option<RowReports>,
}

/// What the row workers share.
pub(crate) struct Tagging {
    key: String,
    client: Client,
    plan: TagPlan,
    db: Mutex<StateDb>,
    resolver: lookup::Resolver,
    /// Dry run: the write requests the run would send.
    planned: AtomicU64,
}

impl Tagging {
    fn db(&self) -> MutexGuard<'_, StateDb> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `ghl-etl tag`: connect, run, close the embedded sandbox if any.
pub async fn tag(conn: &ConnectionPlan, plan: &TagPlan, ui: Ui) -> Result<TagSummary> {
    let connection = Connection::open(conn, ui.quiet).await?;
    let mut plan = plan.clone();
    plan.location = connection.location_or_default(&plan.location)?;
    let result = run(&connection.client, &conn.server_identity(), plan, ui).await;
    connection.close().await;
    result
}

pub async fn run(client: &Client, server: &str, plan: TagPlan, ui: Ui) -> Result<TagSummary> {
    let started = Instant::now();
    let key = plan.job_key(server);
    let mut db = StateDb::open(&plan.state)?;
    db.begin_job(
        &key,
        &format!("{} -> {}", plan.action.verb(), plan.location),
    )?;
    let resolver = match &plan.contacts {
        Contacts::File { path, format } => {
            let input = (path.as_path(), *format);
            lookup::Resolver::prepare(client, &plan.location, input, &plan.keys, plan.lookup)
                .await?
        }
        Contacts::Where(_) => lookup::Resolver::none(),
    };
    let mut summary = TagSummary {
        dry_run: plan.dry_run,
        lookup: resolver.reason.clone(),
        ..Default::default()
    };
    let t = Arc::new(Tagging {
        key: key.clone(),
        client: client.clone(),
        db: Mutex::new(db),
        resolver,
        planned: AtomicU64::new(0),
        plan,
    });
    let progress = Progress::new(ui, "rows");
    let outcome = match t.plan.contacts.clone() {
        Contacts::File { path, format } => {
            run_rows(&t, &path, format, &progress, &mut summary).await
        }
        Contacts::Where(filters) => search::run_search(&t, filters, &progress, &mut summary).await,
    };
    progress.bar.finish_and_clear();
    if !t.plan.dry_run {
        let records = t.db().rows(&key)?;
        summary.rows = records.len() as u64;
        summary.changed = count(&records, RowStatus::Updated) + count(&records, RowStatus::Deleted);
        summary.unchanged = count(&records, RowStatus::Unchanged);
        summary.failed = count(&records, RowStatus::Failed);
        let reports = write_row_reports(&t.plan.report_dir, &records)
            .map_err(|e| JobError::io("write the reports in", &t.plan.report_dir, e))?;
        summary.reports = Some(reports);
        if outcome.is_ok() {
            t.db().finish_job(&key)?;
        }
    }
    let stats = client.stats();
    summary.requests = stats.requests;
    summary.retries = stats.retries;
    summary.throttled = stats.throttled;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.planned_requests = t.planned.load(Ordering::Relaxed);
    outcome?;
    print_summary(&summary, &t.plan, ui, client);
    Ok(summary)
}

fn count(records: &[RowRecord], status: RowStatus) -> u64 {
    records.iter().filter(|r| r.status == status).count() as u64
}

async fn run_rows(
    t: &Arc<Tagging>,
    input: &Path,
    format: Option<InputFormat>,
    progress: &Progress,
    summary: &mut TagSummary,
) -> Result<()> {
    let mut chunks =
        Chunked::open(input, format, CHUNK_ROWS).map_err(|e| JobError::usage(e.to_string()))?;
    let mut first = true;
    while let Some(chunk) = chunks.next().await {
        if std::mem::take(&mut first) {
            // The key columns, before any request: a missing header row is refused.
            let k = &t.plan.keys;
            crate::input::check_wanted_columns(&chunk, &[&k.id, &k.email, &k.phone])
                .map_err(JobError::usage)?;
        }
        let resolved: Vec<Result<rows::Resolved>> = futures::stream::iter(chunk)
            .map(|row| rows::resolve(t.clone(), row))
            .buffered(t.plan.concurrency)
            .collect()
            .await;
        let mut ready = Vec::with_capacity(resolved.len());
        for r in resolved {
            ready.push(r?);
        }
        apply_and_record(t, ready, progress, summary).await?;
    }
    chunks
        .finish()
        .await
        .map_err(|e| JobError::usage(e.to_string()))
}

/// Apply a chunk and record each row's outcome (or, in a dry run, count it).
async fn apply_and_record(
    t: &Tagging,
    ready: Vec<rows::Resolved>,
    progress: &Progress,
    summary: &mut TagSummary,
) -> Result<()> {
    let n = ready.len() as u64;
    let records = apply::apply_chunk(t, ready, summary).await?;
    if !t.plan.dry_run {
        t.db().record_rows(&t.key, &records)?;
    } else {
        for r in records {
            summary.rows += 1;
            match r.status {
                RowStatus::Failed => summary.failed += 1,
                RowStatus::Updated | RowStatus::Deleted => summary.changed += 1,
                _ => summary.unchanged += 1,
            }
        }
    }
    progress.advance(n, &t.client.stats());
    Ok(())
}

fn print_summary(s: &TagSummary, plan: &TagPlan, ui: Ui, client: &Client) {
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            rows = s.rows,
            changed = s.changed,
            unchanged = s.unchanged,
            failed = s.failed,
            requests = s.requests,
            "Finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    let rate = client.rate(&plan.location);
    if s.dry_run {
        eprintln!("Dry run: nothing was written. {} input rows:", s.rows);
        eprintln!(
            "  would change  {:>9} contacts ({})",
            s.would_change,
            plan.action.verb()
        );
        for (tag, (gain, lose)) in &s.would_tag {
            let what = match (gain, lose) {
                (g, 0) => format!("+{g}"),
                (0, l) => format!("-{l}"),
                (g, l) => format!("+{g} -{l}"),
            };
            eprintln!("    {what:>11}  {tag}");
        }
        eprintln!("  would fail    {:>9}", s.failed);
        eprintln!(
            "{} (reads already spent: {})",
            planned_requests_line(s.planned_requests, rate),
            s.requests
        );
        if !s.lookup.is_empty() {
            eprintln!("  look-ups      {}", s.lookup);
        }
        return;
    }
    eprintln!("Finished in {:.1} s.", s.elapsed_s);
    eprintln!(
        "  rows          {:>9} = {} {} + {} unchanged + {} failed",
        s.rows,
        s.changed,
        plan.action.verb(),
        s.unchanged,
        s.failed
    );
    if !s.lookup.is_empty() {
        eprintln!("  look-ups      {}", s.lookup);
    }
    let cost = Cost {
        requests: s.requests,
        retries: s.retries,
        throttled: s.throttled,
        elapsed_s: s.elapsed_s,
        peak_rss_mb: crate::job::peak_rss_mb(),
    };
    for line in row_job_tail(s.resumed, s.rows, &cost, rate) {
        eprintln!("{line}");
    }
    if let Some(r) = &s.reports {
        r.print();
    }
}
