//! The load job: input files → mapping (`direction = "load"`) → writes into one GHL location,
//! contacts first, then their tasks and notes, each input row exactly once.
//!
//! - `plan`: what the load does ([`LoadPlan`]), and its identity.
//! - `body`: a mapped row → request keys, body fields, custom fields, tags.
//! - `fields`: the target's custom fields, resolved by name or created.
//! - `rows`: one input row through the mapping to its writer; the row's account.
//! - `contacts`: upsert / create / update / delete of one contact row.
//! - `children`: task and note creates, exactly once.
//! - `tags`: the chunk's tags through the bulk endpoint, grouped to few requests.
//! - `verify`: `--verify`: written contacts read back, fields that did not stick reported.
//!
//! Every input row ends in the state database as one [`RowRecord`], so a rerun skips what was
//! settled, and the reports (`succeeded.csv`, `failed.csv`) are written from those records: one
//! line per input row, also across resumed runs.

mod body;
mod children;
mod contacts;
mod fields;
mod plan;
mod rows;
mod tags;
mod verify;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::StreamExt;

pub use plan::{LoadPlan, Mode, TagsMode};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::input::Chunked;
use crate::job::{
    planned_requests_line, row_job_tail, Connection, ConnectionPlan, Cost, Progress, Ui,
};
use crate::report::{write_row_reports, RowReports};
use crate::state::{JobStatus, RowRecord, RowStatus, StateDb};
use crate::table::TableKind;
use fields::TargetFields;
use rows::RowDone;

/// Input rows handed to the writers at a time: the unit of concurrency and of tag batching.
const CHUNK_ROWS: usize = 500;

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadSummary {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// Rows settled by an earlier run of the same load.
    pub resumed: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub dry_run: bool,
    /// Requests the writes would cost (dry run).
    pub planned_requests: u64,
    pub fields_created: Vec<String>,
    pub reports: Option<RowReports>,
}

/// Everything the row writers share, fixed for the run.
pub(crate) struct Load {
    key: String,
    client: Client,
    plan: LoadPlan,
    fields: TargetFields,
    db: Mutex<StateDb>,
    progress: Progress,
    cancelled: Arc<AtomicBool>,
    /// Contacts looked up by email or phone (`email:x`, `phone:y`) → target id.
    lookups: Mutex<std::collections::HashMap<String, Option<String>>>,
    /// Requests a dry run would send.
    planned: AtomicU64,
    /// One lock per target contact (its task and note creates take turns, see `children`),
    /// and per email and phone key (upserts that could match one contact take turns).
    turns: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Load {
    fn db(&self) -> MutexGuard<'_, StateDb> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock a contact's creates take turns with.
    fn contact_turn(&self, contact: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.entry(contact.to_string()).or_default().clone()
    }

    /// The turns of every contact an upsert with this email and phone could match, taken in
    /// key order (so two rows never wait on each other crosswise). Two upserts that could
    /// match the same contact must not run at once: the API looks for the duplicate and then
    /// creates, so both could create, and a retried one would then pick either.
    async fn match_turns(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        use crate::api::matching::key_of;
        let mut keys: Vec<String> = [
            email.and_then(|e| key_of(Some(e), None).ok()),
            phone.and_then(|p| key_of(None, Some(p)).ok()),
        ]
        .into_iter()
        .flatten()
        .collect();
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for k in keys {
            held.push(self.contact_turn(&k).lock_owned().await);
        }
        held
    }

    /// Record a row's outcome (not in a dry run, which writes nothing).
    fn record(&self, r: &RowRecord) -> Result<()> {
        if self.plan.dry_run {
            return Ok(());
        }
        Ok(self.db().record_row(&self.key, r)?)
    }
}

/// `ghl-etl load`: connect, run, close the embedded sandbox if any.
pub async fn load(conn: &ConnectionPlan, plan: &LoadPlan, ui: Ui) -> Result<LoadSummary> {
    let connection = Connection::open(conn, ui.quiet).await?;
    let mut plan = plan.clone();
    plan.location = connection.location_or_default(&plan.location)?;
    let result = run(&connection.client, &conn.server_identity(), plan, ui).await;
    connection.close().await;
    result
}

/// Run a load to completion (or its first fatal error).
pub async fn run(client: &Client, server: &str, plan: LoadPlan, ui: Ui) -> Result<LoadSummary> {
    let started = Instant::now();
    let key = plan.job_key(server);
    let mut db = StateDb::open(&plan.state)?;
    let status = db.begin_job(&key, &format!("load -> {}", plan.location))?;
    let fields = TargetFields::resolve(
        client,
        &plan.location,
        &plan.mapping.mapping,
        plan.external_id.as_deref(),
        plan.create_missing_fields,
        plan.dry_run,
    )
    .await?;
    let load = Arc::new(Load {
        key: key.clone(),
        client: client.clone(),
        fields,
        db: Mutex::new(db),
        progress: Progress::new(ui, "rows"),
        cancelled: Arc::new(AtomicBool::new(false)),
        lookups: Mutex::new(Default::default()),
        planned: AtomicU64::new(0),
        turns: Mutex::new(Default::default()),
        plan,
    });
    let mut summary = LoadSummary {
        dry_run: load.plan.dry_run,
        fields_created: load.fields.created.clone(),
        ..Default::default()
    };
    let inputs = [
        (TableKind::Contacts, load.plan.contacts.clone()),
        (TableKind::Tasks, load.plan.tasks.clone()),
        (TableKind::Notes, load.plan.notes.clone()),
    ];
    let mut outcome = Ok(());
    for (table, path) in inputs {
        let Some(path) = path else { continue };
        outcome = with_ctrl_c(&load, ui, load_table(&load, table, &path, &mut summary)).await;
        if outcome.is_err() {
            break;
        }
    }
    load.progress.bar.finish_and_clear();
    if !load.plan.dry_run {
        let records = load.db().rows(&key)?;
        tally(&mut summary, &records);
        let reports = write_row_reports(&load.plan.report_dir, &records)
            .map_err(|e| JobError::io("write the reports in", &load.plan.report_dir, e))?;
        summary.reports = Some(reports);
        if outcome.is_ok() {
            load.db().finish_job(&key)?;
        }
    }
    let stats = client.stats();
    summary.requests = stats.requests;
    summary.retries = stats.retries;
    summary.throttled = stats.throttled;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.planned_requests = load.planned.load(Ordering::Relaxed);
    outcome?;
    if status == JobStatus::Finished && summary.resumed == summary.rows && !ui.quiet {
        eprintln!("This load had finished: every row was settled by an earlier run.");
    }
    print_summary(&summary, &load.plan, ui, client);
    Ok(summary)
}

/// Run `work`, stopping new work on Ctrl-C (in-flight requests finish and are recorded).
async fn with_ctrl_c(
    load: &Load,
    ui: Ui,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => r,
        _ = tokio::signal::ctrl_c() => {
            load.cancelled.store(true, Ordering::Relaxed);
            if !ui.quiet {
                eprintln!("Stopping after the rows in flight; a rerun resumes.");
            }
            work.await?;
            Err(JobError::Interrupted)
        }
    }
}

/// Load one input file (or folder) into `table`.
async fn load_table(
    load: &Arc<Load>,
    table: TableKind,
    path: &Path,
    summary: &mut LoadSummary,
) -> Result<()> {
    let Some(mapping) = load.plan.mapping.mapping.table(table) else {
        return Err(JobError::usage(format!(
            "the mapping {} has no [{table}] section for --{table}",
            load.plan.mapping.path.display()
        )));
    };
    let mapping = Arc::new(mapping.clone());
    let mut chunks = Chunked::open(path, load.plan.input_format, CHUNK_ROWS)
        .map_err(|e| JobError::usage(e.to_string()))?;
    let mut first = true;
    while let Some(chunk) = chunks.next().await {
        if load.cancelled.load(Ordering::Relaxed) {
            break;
        }
        if std::mem::take(&mut first) {
            // The mapping's columns, before any write: a missing header row is refused.
            crate::input::check_wanted_columns(&chunk, &mapping.source_columns())
                .map_err(JobError::usage)?;
        }
        // After Ctrl-C no new row starts; the rows in flight finish and are recorded.
        let cancelled = load.cancelled.clone();
        let done: Vec<Result<RowDone>> = futures::stream::iter(chunk)
            .take_while(move |_| futures::future::ready(!cancelled.load(Ordering::Relaxed)))
            .map(|row| rows::load_row(load.clone(), mapping.clone(), row))
            .buffer_unordered(load.plan.concurrency)
            .collect()
            .await;
        // Every row of the chunk is done: no create holds a contact's turn any more.
        load.turns.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut settled = Vec::with_capacity(done.len());
        for d in done {
            settled.push(d?);
        }
        if table == TableKind::Contacts && load.plan.tags == TagsMode::Add {
            tags::add_chunk_tags(load, &mut settled).await?;
        }
        let n = settled.len() as u64;
        for d in &settled {
            if d.resumed {
                summary.resumed += 1;
            } else {
                load.record(&d.record)?;
            }
            if load.plan.dry_run {
                count(summary, d.record.status);
            }
        }
        load.progress.advance(n, &load.client.stats());
    }
    chunks
        .finish()
        .await
        .map_err(|e| JobError::usage(e.to_string()))
}

fn count(s: &mut LoadSummary, status: RowStatus) {
    s.rows += 1;
    match status {
        RowStatus::Created => s.created += 1,
        RowStatus::Updated => s.updated += 1,
        RowStatus::Deleted => s.deleted += 1,
        RowStatus::Unchanged => s.unchanged += 1,
        RowStatus::Failed | RowStatus::Sending => s.failed += 1,
    }
}

/// Counts over every recorded row (this run's and earlier runs').
fn tally(s: &mut LoadSummary, records: &[RowRecord]) {
    let resumed = s.resumed;
    *s = LoadSummary {
        resumed,
        dry_run: s.dry_run,
        fields_created: std::mem::take(&mut s.fields_created),
        ..Default::default()
    };
    for r in records {
        count(s, r.status);
    }
}

fn print_summary(s: &LoadSummary, plan: &LoadPlan, ui: Ui, client: &Client) {
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            rows = s.rows,
            created = s.created,
            updated = s.updated,
            deleted = s.deleted,
            unchanged = s.unchanged,
            failed = s.failed,
            requests = s.requests,
            "Load finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    let rate = client.rate(&plan.location);
    if s.dry_run {
        eprintln!("Dry run: nothing was written. {} input rows:", s.rows);
        eprintln!(
            "  would write   {:>9} (created or updated)",
            s.created + s.updated
        );
        eprintln!("  would delete  {:>9}", s.deleted);
        eprintln!("  would fail    {:>9}", s.failed);
        eprintln!("{}", planned_requests_line(s.planned_requests, rate));
        return;
    }
    eprintln!("Load finished in {:.1} s.", s.elapsed_s);
    eprintln!(
        "  rows          {:>9} = {} created + {} updated + {} deleted + {} unchanged + {} failed",
        s.rows, s.created, s.updated, s.deleted, s.unchanged, s.failed
    );
    if !s.fields_created.is_empty() {
        eprintln!("  custom fields created: {}", s.fields_created.join(", "));
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
