//! The tag job: a list of contacts (by id, email or phone) and the tags to add or remove on
//! each, applied in few requests.
//!
//! - `plan`: what the job does ([`TagPlan`]) and its identity.
//! - `rows`: one input row → its contact key and its tag changes, or why it cannot be used.
//! - `apply`: a chunk's contacts grouped by identical (add, remove) sets, sent through
//!   `POST /contacts/bulk/tags/update/{add|remove}` in batches, every per-contact answer read,
//!   `POST|DELETE /contacts/{id}/tags` where the bulk call did not confirm.
//!
//! Adding or removing a tag twice changes nothing, so a rerun is safe; it also skips the rows
//! the state database says are settled, and the reports keep one line per input row.

mod apply;
mod plan;
mod rows;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::StreamExt;

pub use plan::{KeyColumns, TagPlan};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::input::Chunked;
use crate::job::{Connection, ConnectionPlan, Cost, Progress, Ui};
use crate::report::{write_row_reports, RowReports};
use crate::state::{RowRecord, RowStatus, StateDb};

/// Input rows handed over at a time: the unit of grouping into bulk requests.
const CHUNK_ROWS: usize = 1_000;

/// What a tag run did.
#[derive(Debug, Default)]
pub struct TagSummary {
    pub rows: u64,
    pub tagged: u64,
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
    pub planned_requests: u64,
    pub reports: Option<RowReports>,
}

/// What the row workers share.
pub(crate) struct Tagging {
    key: String,
    client: Client,
    plan: TagPlan,
    db: Mutex<StateDb>,
    /// `email:x` / `phone:y` → the contact id, or why there is none.
    lookups: Mutex<std::collections::HashMap<String, std::result::Result<String, String>>>,
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
    db.begin_job(&key, &format!("tag -> {}", plan.location))?;
    let t = Arc::new(Tagging {
        key: key.clone(),
        client: client.clone(),
        db: Mutex::new(db),
        lookups: Mutex::new(Default::default()),
        planned: AtomicU64::new(0),
        plan,
    });
    let progress = Progress::new(ui, "rows");
    let mut summary = TagSummary {
        dry_run: t.plan.dry_run,
        ..Default::default()
    };
    let outcome = run_rows(&t, &t.plan.input.clone(), &progress, &mut summary).await;
    progress.bar.finish_and_clear();
    if !t.plan.dry_run {
        let records = t.db().rows(&key)?;
        summary.rows = records.len() as u64;
        summary.tagged = count(&records, RowStatus::Updated);
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
    progress: &Progress,
    summary: &mut TagSummary,
) -> Result<()> {
    let mut chunks = Chunked::open(input, t.plan.input_format, CHUNK_ROWS)
        .map_err(|e| JobError::usage(e.to_string()))?;
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
        let n = ready.len() as u64;
        let records = apply::apply_chunk(t, ready, summary).await?;
        for r in records {
            if !t.plan.dry_run {
                t.db().record_row(&t.key, &r)?;
            } else {
                summary.rows += 1;
                match r.status {
                    RowStatus::Failed => summary.failed += 1,
                    RowStatus::Updated => summary.tagged += 1,
                    _ => summary.unchanged += 1,
                }
            }
        }
        progress.advance(n, &t.client.stats());
    }
    chunks
        .finish()
        .await
        .map_err(|e| JobError::usage(e.to_string()))
}

fn print_summary(s: &TagSummary, plan: &TagPlan, ui: Ui, client: &Client) {
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            rows = s.rows,
            tagged = s.tagged,
            unchanged = s.unchanged,
            failed = s.failed,
            requests = s.requests,
            "Tagging finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    let rate = client.rate(&plan.location);
    if s.dry_run {
        eprintln!("Dry run: nothing was written. {} input rows:", s.rows);
        eprintln!("  would change  {:>9} contacts' tags", s.would_change);
        eprintln!("  would fail    {:>9}", s.failed);
        let secs = rate.map_or(0.0, |r| s.planned_requests as f64 / r.per_second());
        eprintln!(
            "  requests      {:>9} writes, about {secs:.0} s at {} (look-ups: {} requests already spent)",
            s.planned_requests,
            rate.map_or("no limit".to_string(), |r| r.to_string()),
            s.requests
        );
        return;
    }
    eprintln!("Tagging finished in {:.1} s.", s.elapsed_s);
    eprintln!(
        "  rows          {:>9} = {} tagged + {} unchanged + {} failed",
        s.rows, s.tagged, s.unchanged, s.failed
    );
    if s.resumed > 0 {
        eprintln!(
            "  resumed       {:>9} rows settled by an earlier run",
            s.resumed
        );
    }
    let cost = Cost {
        requests: s.requests,
        retries: s.retries,
        throttled: s.throttled,
        elapsed_s: s.elapsed_s,
        peak_rss_mb: crate::job::peak_rss_mb(),
    };
    for line in cost.lines("row", s.rows.saturating_sub(s.resumed), rate) {
        eprintln!("{line}");
    }
    if let Some(r) = &s.reports {
        r.print();
    }
}
