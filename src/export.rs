//! The export job: list a location's contacts, fetch their tasks/notes/appointments, map them
//! to rows, write part files, commit progress — as a pipeline of concurrent stages.
//!
//! ```text
//!  pager ──pages──▶ enrich (tasks, notes: bounded concurrency, in order) ──bounded chan──▶ writer
//!  (cursor)          (through the client's limiter and retries)                          (map, encode,
//!                                                                                          commit chunk)
//! ```
//! Each location runs its own pipeline (GHL rate-limits per location, so locations proceed in
//! parallel). Stages are joined by bounded channels, so a slow writer slows the pager and
//! memory stays flat: at most `PREFETCH_PAGES` pages are in flight per location. Rows come
//! out in listing order whatever the concurrency, because the enrich stage uses ordered
//! buffering.
//!
//! Progress is committed in chunks: when a chunk's part files are complete on disk, the cursor
//! after its last page and the part list go into the state database in one transaction
//! (`state`). A rerun with the same arguments deletes part files the database does not know
//! and continues from the stored cursor, so its output equals an uninterrupted run's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use sha2::Digest;
use tokio::sync::mpsc;

use crate::api::error::ErrorKind;
use crate::api::{Client, ContactPage, Cursor, Source};
use crate::cli::ConnectionArgs;
use crate::commands::{self, Interrupted};
use crate::mapping::{CustomFieldInfo, Mapping, RecordContext, RowOutcome};
use crate::sink::{self, Format, PartWriter, SinkOptions};
use crate::state::{CommittedPart, JobStatus, LocationState, StateDb};
use crate::table::{TableKind, TableSchema};

/// Errors that concern one location only (its daily budget, a token without access to it).
fn is_location_specific(e: &anyhow::Error) -> bool {
    commands::api_error(e).is_some_and(|a| {
        matches!(
            a.kind,
            ErrorKind::DailyBudgetExhausted { .. } | ErrorKind::Forbidden
        )
    })
}

/// Names the export (job key) that owns an output folder.
const OWNER_MARKER: &str = ".ghl-etl-export";
/// Written last, when an export has finished: tables, row counts, files, costs.
const MANIFEST: &str = "_manifest.json";

/// Pages fetched and enriched ahead of the writer, per location.
const PREFETCH_PAGES: usize = 2;
/// Contact ids per task-search request.
const TASK_SEARCH_IDS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Related {
    Tasks,
    Notes,
    Appointments,
    /// Contacts only.
    None,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// Location (sub-account) id; repeat or comma-separate for several (exported in parallel).
    #[arg(long = "location", env = "GHL_LOCATION", value_delimiter = ',')]
    pub locations: Vec<String>,

    /// Where contacts come from: `search` (POST /contacts/search, pages of 500: the fewest
    /// requests), `list` (GET /contacts/, pages of 100, deprecated by GHL) or `business:<id>`
    /// (the contacts of one business).
    #[arg(long, default_value = "search")]
    pub source: String,

    /// Only contacts updated at or after this instant (RFC 3339 or YYYY-MM-DD); uses search.
    #[arg(long)]
    pub updated_since: Option<String>,

    /// Related records to export with each contact.
    #[arg(
        long = "with",
        value_enum,
        value_delimiter = ',',
        default_value = "tasks,notes"
    )]
    pub with: Vec<Related>,

    /// Mapping file (TOML); without it every field is exported, one column per custom field.
    #[arg(long)]
    pub mapping: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    pub format: Format,

    /// Output folder: one sub-folder per table (`contacts/`, `tasks/`, `notes/`).
    #[arg(long)]
    pub out: PathBuf,

    /// Requests in flight per location for tasks/notes (the rate limit is the real bound).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,

    /// Contacts per listing request (default: the endpoint's maximum, 100 or 500).
    #[arg(long)]
    pub page_size: Option<usize>,

    /// State database (cursors and committed part files), for resume.
    #[arg(long, default_value = ".ghl-etl/state.sqlite")]
    pub state: PathBuf,

    /// Forget earlier progress of this export and start over: every part file in the output
    /// folder is deleted.
    #[arg(long)]
    pub restart: bool,

    /// Contacts per part file (a commit point: a killed run redoes at most one part).
    #[arg(long, default_value_t = 100_000)]
    pub part_rows: u64,

    /// Also commit a part after this many seconds, so slow (rate-limited) runs checkpoint often.
    #[arg(long, default_value_t = 300)]
    pub commit_seconds: u64,

    /// CSV: defuse spreadsheet formulas (cells starting with = + - @). Default: the mapping's
    /// `csv_safe`, else off.
    #[arg(long, overrides_with = "no_csv_safe")]
    pub csv_safe: bool,
    /// CSV: write cells exactly as they are.
    #[arg(long)]
    pub no_csv_safe: bool,

    /// CSV: separator for list cells such as tags (default: the mapping's, else `;`).
    #[arg(long)]
    pub list_separator: Option<String>,

    /// Fetch tasks with one request per contact even when the token can search tasks in bulk.
    #[arg(long)]
    pub tasks_per_contact: bool,

    /// Run against an embedded sandbox with seeded demo data (no token needed).
    #[arg(long)]
    pub sandbox: bool,

    /// Contacts in the embedded sandbox's location.
    #[arg(long, default_value_t = 2_000)]
    pub sandbox_contacts: usize,
}

/// What a run did, for the summary and for tests.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub rows: HashMap<String, u64>,
    pub rejected: HashMap<String, u64>,
    pub filtered: u64,
    pub contacts: u64,
    pub deleted_meanwhile: u64,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub tasks_mode: String,
    pub resumed: bool,
    pub files: Vec<String>,
    /// Peak resident memory of this process (Linux), for the summary and the benchmarks.
    pub peak_rss_mb: Option<f64>,
}

/// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl Summary {
    /// Rows and rejects per table, from the committed part files (this run's and, when
    /// resumed, the earlier runs').
    fn add_parts(&mut self, parts: &[CommittedPart]) {
        for p in parts {
            match p.table.strip_prefix("rejects/") {
                Some(t) => *self.rejected.entry(t.to_string()).or_default() += p.rows,
                None => *self.rows.entry(p.table.clone()).or_default() += p.rows,
            }
            self.files.push(p.path.clone());
        }
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Counters shared by the stages of every location.
#[derive(Default)]
struct Progress {
    contacts: AtomicU64,
    pages: AtomicU64,
    deleted: AtomicU64,
    filtered: AtomicU64,
}

/// Everything a location's pipeline needs, fixed for the run.
struct Job {
    key: String,
    client: Client,
    out: PathBuf,
    source: Source,
    page_size: usize,
    related: Vec<Related>,
    concurrency: usize,
    part_rows: u64,
    commit_every: Duration,
    sink: SinkOptions,
    /// Bulk task search until a 401 says the token lacks `locations/tasks.readonly`.
    bulk_tasks: AtomicBool,
    progress: Progress,
    bar: ProgressBar,
    /// Set on Ctrl-C or a fatal error of any location; every stage checks it before new work,
    /// so a stop does not wait for a page's remaining requests.
    cancelled: Arc<AtomicBool>,
}

pub(crate) fn parse_source(s: &str, updated_since: Option<&str>) -> anyhow::Result<Source> {
    let mut filters = Vec::new();
    if let Some(since) = updated_since {
        let ms = parse_instant(since).with_context(|| format!("--updated-since `{since}`"))?;
        let iso = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        filters.push(
            serde_json::json!({"field": "dateUpdated", "operator": "range", "value": {"gte": iso}}),
        );
    }
    match s {
        "list" if filters.is_empty() => Ok(Source::List),
        "list" | "search" => Ok(Source::Search { filters }),
        other => match other.strip_prefix("business:") {
            Some(id) if !id.is_empty() && filters.is_empty() => Ok(Source::Business {
                business_id: id.to_string(),
            }),
            Some(_) if !filters.is_empty() => anyhow::bail!(
                "--updated-since needs --source search (or list); business listings cannot filter"
            ),
            _ => {
                anyhow::bail!("--source must be `list`, `search` or `business:<id>`, not `{other}`")
            }
        },
    }
}

fn parse_instant(s: &str) -> anyhow::Result<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("expected RFC 3339 (2024-05-01T00:00:00Z) or YYYY-MM-DD"))?;
    Ok(d.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis())
}

/// A stable key for "the same export": what shapes the output, not how hard it pushes.
fn job_key(
    args: &ExportArgs,
    source: &Source,
    locations: &[String],
    mapping_text: Option<&str>,
) -> String {
    let mut h = sha2::Sha256::new();
    let out = std::path::absolute(&args.out).unwrap_or_else(|_| args.out.clone());
    let mut related: Vec<String> = args.with.iter().map(|r| format!("{r:?}")).collect();
    related.sort();
    for part in [
        out.display().to_string(),
        locations.join(","),
        serde_json::to_string(source).unwrap_or_default(),
        related.join(","),
        format!("{:?}", args.format),
        // CSV formatting shapes the bytes too: a resume must not mix two spellings.
        format!(
            "csv_safe={} no_csv_safe={} sep={:?}",
            args.csv_safe, args.no_csv_safe, args.list_separator
        ),
        mapping_text.unwrap_or("").to_string(),
        args.base_url_for_key(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ExportArgs {
    fn base_url_for_key(&self) -> String {
        if self.sandbox {
            "sandbox".into()
        } else {
            self.conn.base_url.clone()
        }
    }
}

/// `ghl-etl export`.
pub async fn run_cli(mut args: ExportArgs, quiet: bool, json_logs: bool) -> anyhow::Result<i32> {
    let mut sandbox = None;
    let mut default_token = None;
    if args.sandbox {
        let cfg = crate::sandbox::SandboxConfig {
            contacts: args.sandbox_contacts,
            rate_limit: Some("500/1s".parse().map_err(anyhow::Error::msg)?),
            ..Default::default()
        };
        let sb = crate::sandbox::Sandbox::start(cfg)
            .await
            .context("cannot start the embedded sandbox")?;
        args.conn.base_url = sb.url();
        // Pace to the sandbox's budget unless the user chose a rate.
        if args.conn.rate == "100/10s" {
            args.conn.rate = "500/1s".into();
        }
        if args.locations.is_empty() {
            args.locations = sb.location_ids();
        }
        default_token = Some(crate::sandbox::DEFAULT_TOKEN);
        if !quiet {
            eprintln!(
                "Embedded sandbox at {} with {} contacts in location {}.",
                sb.url(),
                args.sandbox_contacts,
                args.locations.join(", ")
            );
        }
        sandbox = Some(sb);
    }
    let result = run(&args, default_token, quiet, json_logs).await;
    if let Some(sb) = sandbox {
        sb.shutdown().await;
    }
    let summary = result?;
    Ok(if summary.rejected_total() > 0 {
        commands::EXIT_RECORD_FAILURES
    } else {
        commands::EXIT_OK
    })
}

/// Run an export to completion (or to its first fatal error) and return its summary.
pub async fn run(
    args: &ExportArgs,
    default_token: Option<&str>,
    quiet: bool,
    json_logs: bool,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    if args.locations.is_empty() {
        anyhow::bail!("no location: pass --location (or set GHL_LOCATION), or use --sandbox");
    }
    let source = parse_source(&args.source, args.updated_since.as_deref())?;
    let page_size = args
        .page_size
        .unwrap_or(source.max_page_size())
        .clamp(1, source.max_page_size());
    let mapping_text = match &args.mapping {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read mapping file {}", p.display()))?,
        ),
        None => None,
    };
    // Validate the mapping before any request is made.
    let base_mapping = match (&args.mapping, &mapping_text) {
        (Some(p), Some(text)) => Some(
            Mapping::from_str(text, &p.display().to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        _ => None,
    };
    let csv_safe = if args.csv_safe {
        true
    } else if args.no_csv_safe {
        false
    } else {
        base_mapping
            .as_ref()
            .and_then(|m| m.csv_safe_default())
            .unwrap_or(false)
    };
    let list_separator = args
        .list_separator
        .clone()
        .or_else(|| base_mapping.as_ref().and_then(|m| m.list_separator()))
        .unwrap_or_else(|| ";".into());
    let sink_opts = SinkOptions {
        format: args.format,
        csv_safe,
        list_separator,
        raw_ndjson: args.format == Format::Ndjson && args.mapping.is_none(),
        ..SinkOptions::default()
    };

    let client = Client::new(args.conn.client_config(default_token)?)?;
    let mut related: Vec<Related> = args
        .with
        .iter()
        .copied()
        .filter(|r| *r != Related::None)
        .collect();
    related.dedup();

    let key = job_key(args, &source, &args.locations, mapping_text.as_deref());
    let mut db = StateDb::open(&args.state)?;
    if args.restart {
        for part in db.parts(&key)? {
            let _ = std::fs::remove_file(args.out.join(&part.path));
        }
        db.reset_job(&key)?;
    }
    let status = db.begin_job(
        &key,
        &format!(
            "export {} -> {}",
            args.locations.join(","),
            args.out.display()
        ),
    )?;
    if status == JobStatus::Finished {
        if !quiet {
            eprintln!(
                "This export already finished (state {}, job {key}); its files are in {}. Pass --restart to export again.",
                args.state.display(),
                args.out.display()
            );
        }
        let mut summary = Summary {
            resumed: true,
            ..Default::default()
        };
        let parts = db.parts(&key)?;
        summary.add_parts(&parts);
        if !args.out.join(MANIFEST).exists() {
            let total = contacts_total(&db, &key, &args.locations)?;
            write_manifest(&args.out, &summary, &parts, total)?;
        }
        return Ok(summary);
    }
    let resumed = status == JobStatus::Resuming;
    // The folder's owner: the sweep below deletes part files this export did not commit, so it
    // must never run in a folder that another export writes to.
    let marker = args.out.join(OWNER_MARKER);
    let owner = std::fs::read_to_string(&marker)
        .ok()
        .map(|s| s.trim().to_string());
    let foreign = match &owner {
        _ if args.restart => None,
        Some(o) if *o != key => Some(format!("belongs to another export (job {o})")),
        None if status == JobStatus::New => {
            let files = part_files_in(&args.out);
            (!files.is_empty()).then(|| {
                format!(
                    "already holds {} part files of another export (e.g. {})",
                    files.len(),
                    files[0].display()
                )
            })
        }
        _ => None,
    };
    if let Some(why) = foreign {
        if status == JobStatus::New {
            db.reset_job(&key)?;
        }
        anyhow::bail!(
            "{} {why}; use an empty --out folder (such as one per night), or --restart to replace its contents",
            args.out.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    std::fs::write(&marker, format!("{key}\n"))
        .with_context(|| format!("cannot write {}", marker.display()))?;
    // A manifest describes a finished export only: remove the last one until this run ends.
    match std::fs::remove_file(args.out.join(MANIFEST)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context("cannot remove the previous _manifest.json"))
        }
        _ => {}
    }

    let bar = if quiet || json_logs {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} contacts {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    };

    let job = Arc::new(Job {
        key: key.clone(),
        client: client.clone(),
        out: args.out.clone(),
        source,
        page_size,
        related,
        concurrency: args.concurrency.max(1),
        part_rows: args.part_rows.max(1),
        commit_every: Duration::from_secs(args.commit_seconds.max(1)),
        sink: sink_opts,
        bulk_tasks: AtomicBool::new(!args.tasks_per_contact),
        progress: Progress::default(),
        bar,
        cancelled: Arc::new(AtomicBool::new(false)),
    });
    let db = Arc::new(std::sync::Mutex::new(db));

    let mut tasks = tokio::task::JoinSet::new();
    {
        let db = db.lock().unwrap_or_else(|e| e.into_inner());
        sweep_uncommitted(&args.out, args.format, &db.parts(&key)?, &args.locations)?;
    }
    for (index, location) in args.locations.iter().cloned().enumerate() {
        let job = job.clone();
        let db = db.clone();
        let base_mapping = base_mapping.clone();
        tasks.spawn(async move {
            let r = export_location(&job, &db, &location, index, base_mapping).await;
            (location, r)
        });
    }
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            next = tasks.join_next() => {
                let Some(joined) = next else { break };
                match joined {
                    Ok((_, Ok(()))) => {}
                    Ok((location, Err(e))) => {
                        // A location's own trouble (its daily budget, no access to it) leaves the
                        // others running: GHL budgets and grants access per location. Anything
                        // else (a bad token, a bad mapping, the disk) stops them all.
                        if !is_location_specific(&e) {
                            job.cancelled.store(true, Ordering::Relaxed);
                        }
                        tracing::warn!(location = %location, error = %format!("{e:#}"), "The location stopped.");
                        if failure.is_none() {
                            failure = Some(e.context(format!("location {location}")));
                        }
                    }
                    Err(e) => {
                        job.cancelled.store(true, Ordering::Relaxed);
                        failure.get_or_insert_with(|| anyhow::anyhow!("a pipeline task failed: {e}"));
                    }
                }
            }
            _ = tokio::signal::ctrl_c(), if failure.is_none() => {
                job.cancelled.store(true, Ordering::Relaxed);
                failure = Some(anyhow::Error::new(Interrupted));
                if !quiet {
                    eprintln!("Stopping: committed parts are kept; press Ctrl-C again to quit at once (a rerun resumes either way).");
                }
                // A second Ctrl-C quits on the spot: resume copes with a hard stop.
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(commands::EXIT_INTERRUPTED);
                    }
                });
            }
        }
    }
    job.bar.finish_and_clear();
    let stats = client.stats();
    let db = Arc::try_unwrap(db)
        .map_err(|_| anyhow::anyhow!("state database still in use"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let parts = db.parts(&key)?;
    let mut summary = Summary {
        contacts: job.progress.contacts.load(Ordering::Relaxed),
        pages: job.progress.pages.load(Ordering::Relaxed),
        deleted_meanwhile: job.progress.deleted.load(Ordering::Relaxed),
        filtered: job.progress.filtered.load(Ordering::Relaxed),
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        elapsed_s: started.elapsed().as_secs_f64(),
        tasks_mode: if !job.related.contains(&Related::Tasks) {
            "none".into()
        } else if job.bulk_tasks.load(Ordering::Relaxed) {
            "bulk (POST /locations/{id}/tasks/search)".into()
        } else {
            "per contact (GET /contacts/{id}/tasks)".into()
        },
        resumed,
        ..Default::default()
    };
    summary.add_parts(&parts);
    if let Some(e) = failure {
        if !quiet {
            eprintln!(
                "Stopped after {} contacts; {} part files are committed. Rerun the same command to resume.",
                summary.contacts,
                parts.len()
            );
        }
        return Err(e);
    }
    summary.peak_rss_mb = peak_rss_mb();
    let mut db = db;
    // Manifest first: an export marked finished always has one.
    let total = contacts_total(&db, &key, &args.locations)?;
    write_manifest(&args.out, &summary, &parts, total)?;
    db.finish_job(&key)?;
    if !quiet && !json_logs {
        print_summary(&summary, &args.out, client.rate(&args.locations[0]));
    }
    if json_logs {
        // For log shippers: the summary as one structured event (people read the lines above).
        tracing::info!(
            contacts = summary.contacts,
            requests = summary.requests,
            retries = summary.retries,
            throttled = summary.throttled,
            elapsed_s = summary.elapsed_s,
            "Export finished."
        );
    }
    Ok(summary)
}

fn print_summary(s: &Summary, out: &Path, rate: Option<crate::api::RateSpec>) {
    let mut tables: Vec<_> = s.rows.iter().collect();
    tables.sort();
    let per_contact = if s.contacts > 0 {
        s.requests as f64 / s.contacts as f64
    } else {
        0.0
    };
    let req_rate = if s.elapsed_s > 0.0 {
        s.requests as f64 / s.elapsed_s
    } else {
        0.0
    };
    eprintln!(
        "Export finished in {:.1} s{}.",
        s.elapsed_s,
        if s.resumed { " (resumed)" } else { "" }
    );
    for (t, n) in tables {
        let rej = s.rejected.get(t).copied().unwrap_or(0);
        eprintln!(
            "  {t:<13} {n:>9} rows{}",
            if rej > 0 {
                format!(", {rej} rejected (see rejects/{t}/)")
            } else {
                String::new()
            }
        );
    }
    if s.filtered > 0 {
        eprintln!(
            "  filtered out  {:>9} contacts (mapping filter)",
            s.filtered
        );
    }
    eprintln!(
        "  requests      {:>9} ({per_contact:.3} per contact), {} retries, {} answered 429",
        s.requests, s.retries, s.throttled
    );
    match rate {
        Some(r) => eprintln!(
            "  request rate  {req_rate:>9.1}/s (budget {:.1}/s per location)",
            r.per_second()
        ),
        None => eprintln!("  request rate  {req_rate:>9.1}/s"),
    }
    eprintln!("  tasks         {}", s.tasks_mode);
    if let Some(mb) = s.peak_rss_mb {
        eprintln!("  peak memory   {mb:>9.0} MiB");
    }
    if s.deleted_meanwhile > 0 {
        eprintln!(
            "  deleted while exporting: {} contacts (kept, without related records)",
            s.deleted_meanwhile
        );
    }
    eprintln!(
        "Output: {}",
        std::path::absolute(out)
            .unwrap_or_else(|_| out.to_path_buf())
            .display()
    );
}

/// Contacts listed by the export over all its runs.
fn contacts_total(db: &StateDb, key: &str, locations: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for l in locations {
        total += db.location(key, l)?.map_or(0, |s| s.contacts);
    }
    Ok(total)
}

fn write_manifest(
    out: &Path,
    summary: &Summary,
    parts: &[CommittedPart],
    contacts_total: u64,
) -> anyhow::Result<()> {
    let manifest = serde_json::json!({
        "tables": summary.rows,
        "rejected": summary.rejected,
        "files": parts.iter().map(|p| serde_json::json!({"table": p.table, "location": p.location, "path": p.path, "rows": p.rows, "bytes": p.bytes})).collect::<Vec<_>>(),
        "contacts_total": contacts_total,
        // The rest describes the last run (a resumed export's earlier runs are not counted).
        "contacts": summary.contacts,
        "requests": summary.requests,
        "retries": summary.retries,
        "throttled": summary.throttled,
        "elapsed_s": summary.elapsed_s,
        "peak_rss_mb": summary.peak_rss_mb,
        "finished_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let path = out.join(MANIFEST);
    let tmp = out.join(format!(".{MANIFEST}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A page with the related records of each of its contacts, in listing order.
struct EnrichedPage {
    page: ContactPage,
    /// Per contact (same index as `page.records`): tasks, notes, appointments; `None` when the
    /// contact was deleted before they could be fetched.
    related: Vec<RelatedRecords>,
}

#[derive(Default)]
struct RelatedRecords {
    tasks: Vec<Value>,
    notes: Vec<Value>,
    appointments: Vec<Value>,
    deleted: bool,
}

fn contact_id(r: &Value) -> &str {
    r.get("id").and_then(Value::as_str).unwrap_or("")
}

/// What the mapping needs of a location's custom-field definitions.
fn custom_field_infos(fields: Vec<crate::api::model::CustomField>) -> Vec<CustomFieldInfo> {
    fields
        .into_iter()
        .map(|f| CustomFieldInfo {
            name: f.name.clone().unwrap_or_else(|| f.id.clone()),
            id: f.id,
            field_key: f.field_key,
            data_type: f.data_type,
        })
        .collect()
}

/// The mapping for one location: the file's (custom fields resolved against the location), or
/// the full default built from the location's custom fields.
async fn mapping_for(job: &Job, location: &str, base: Option<Mapping>) -> anyhow::Result<Mapping> {
    let needs_fields = base.as_ref().is_none_or(|m| m.uses_custom_fields());
    let fields = if needs_fields {
        match job.client.custom_fields(location).await {
            Ok(f) => custom_field_infos(f),
            Err(e) if e.kind == ErrorKind::Unauthorized && base.is_none() => {
                tracing::warn!(error = %e, "Cannot read custom-field names; custom fields stay in the customFields column.");
                Vec::new()
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("reading the location's custom fields (for the mapping)"))
            }
        }
    } else {
        Vec::new()
    };
    match base {
        Some(mut m) => {
            if needs_fields {
                m.resolve_custom_fields(&fields)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(m)
        }
        None => Ok(Mapping::default_for(&fields)),
    }
}

/// Fetch the related records of one page's contacts.
async fn enrich(
    job: &Job,
    location: &str,
    page: ContactPage,
) -> crate::api::error::Result<EnrichedPage> {
    let ids: Vec<String> = page
        .records
        .iter()
        .map(|r| contact_id(r).to_string())
        .collect();
    let mut related: Vec<RelatedRecords> = ids.iter().map(|_| RelatedRecords::default()).collect();
    let want = |r: Related| job.related.contains(&r);

    if want(Related::Tasks) && job.bulk_tasks.load(Ordering::Relaxed) {
        match bulk_tasks(job, location, &ids).await {
            Ok(mut by_contact) => {
                for (i, id) in ids.iter().enumerate() {
                    related[i].tasks = by_contact.remove(id).unwrap_or_default();
                }
            }
            Err(e) if e.is_scope_error() => {
                if job.bulk_tasks.swap(false, Ordering::Relaxed) {
                    tracing::warn!("The token lacks locations/tasks.readonly: fetching tasks with one request per contact.");
                }
            }
            Err(e) => return Err(e),
        }
    }
    let per_contact_tasks = want(Related::Tasks) && !job.bulk_tasks.load(Ordering::Relaxed);
    let (notes, appts) = (want(Related::Notes), want(Related::Appointments));
    if per_contact_tasks || notes || appts {
        // Owned clones per request: the futures must not borrow across the spawned pipeline.
        let fetched: Vec<RelatedRecords> = futures::stream::iter(ids.iter().cloned())
            .map(|id| {
                let client = job.client.clone();
                let location = location.to_string();
                let cancelled = job.cancelled.clone();
                async move {
                    if cancelled.load(Ordering::Relaxed) {
                        return Err(crate::api::Error::new(
                            ErrorKind::Cancelled,
                            "GET",
                            &format!("/contacts/{id}/..."),
                        ));
                    }
                    let mut r = RelatedRecords::default();
                    if per_contact_tasks {
                        match client.contact_tasks(&location, &id).await? {
                            Some(t) => r.tasks = t,
                            None => r.deleted = true,
                        }
                    }
                    if notes && !r.deleted {
                        match client.contact_notes(&location, &id).await? {
                            Some(n) => r.notes = n,
                            None => r.deleted = true,
                        }
                    }
                    if appts && !r.deleted {
                        match client.contact_appointments(&location, &id).await? {
                            Some(a) => r.appointments = a,
                            None => r.deleted = true,
                        }
                    }
                    Ok::<_, crate::api::Error>(r)
                }
            })
            .buffered(job.concurrency)
            .try_collect()
            .await?;
        for (slot, f) in related.iter_mut().zip(fetched) {
            if f.deleted {
                slot.deleted = true;
                slot.tasks.clear();
            }
            if per_contact_tasks {
                slot.tasks = f.tasks;
            }
            slot.notes = f.notes;
            slot.appointments = f.appointments;
        }
    }
    Ok(EnrichedPage { page, related })
}

async fn bulk_tasks(
    job: &Job,
    location: &str,
    ids: &[String],
) -> crate::api::error::Result<HashMap<String, Vec<Value>>> {
    let mut by_contact: HashMap<String, Vec<Value>> = HashMap::new();
    let chunks: Vec<Vec<Value>> =
        futures::stream::iter(ids.chunks(TASK_SEARCH_IDS).map(<[String]>::to_vec))
            .map(|chunk| {
                let client = job.client.clone();
                let location = location.to_string();
                async move { client.search_tasks(&location, &chunk).await }
            })
            .buffered(job.concurrency.min(4))
            .try_collect()
            .await?;
    for task in chunks.into_iter().flatten() {
        let cid = task
            .get("contactId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        by_contact.entry(cid).or_default().push(task);
    }
    Ok(by_contact)
}

/// One location's pipeline. Returns reject counts per table.
async fn export_location(
    job: &Arc<Job>,
    db: &Arc<std::sync::Mutex<StateDb>>,
    location: &str,
    location_index: usize,
    base_mapping: Option<Mapping>,
) -> anyhow::Result<()> {
    let start = {
        let db = db.lock().unwrap_or_else(|e| e.into_inner());
        db.location(&job.key, location)?.unwrap_or(LocationState {
            cursor: Cursor::Start,
            next_part: 0,
            contacts: 0,
            done: false,
        })
    };
    if start.done {
        return Ok(());
    }
    let mapping = Arc::new(mapping_for(job, location, base_mapping).await?);
    let tables: Vec<TableKind> = std::iter::once(TableKind::Contacts)
        .chain(job.related.iter().filter_map(|r| match r {
            Related::Tasks => Some(TableKind::Tasks),
            Related::Notes => Some(TableKind::Notes),
            Related::Appointments => Some(TableKind::Appointments),
            Related::None => None,
        }))
        .filter(|t| mapping.table(*t).is_some())
        .collect();

    if start.contacts > 0 {
        tracing::info!(location, contacts = start.contacts, cursor = ?start.cursor, "Resuming from the last committed part.");
    }

    check_columns(job, db, location, &mapping, &tables, start.next_part > 0)?;

    let (tx, rx) = mpsc::channel::<EnrichedPage>(PREFETCH_PAGES);
    let writer = {
        let job = job.clone();
        let db = db.clone();
        let location = location.to_string();
        let mapping = mapping.clone();
        let tables = tables.clone();
        let start = start.clone();
        tokio::task::spawn_blocking(move || {
            write_location(
                &job,
                &db,
                &location,
                location_index,
                &mapping,
                &tables,
                start,
                rx,
            )
        })
    };

    let pages = job.client.contact_pages(
        location,
        job.source.clone(),
        job.page_size,
        start.cursor.clone(),
    );
    let producer = async {
        let mut enriched = std::pin::pin!(pages
            .map_ok(|page| {
                if let Some(t) = page.total {
                    if job.bar.length().is_none_or(|l| l < t) {
                        job.bar.set_length(t);
                    }
                }
                let job = job.clone();
                let location = location.to_string();
                async move { enrich(&job, &location, page).await }
            })
            .try_buffered(PREFETCH_PAGES));
        while let Some(page) = enriched.next().await {
            if job.cancelled.load(Ordering::Relaxed) {
                break;
            }
            let page = page?;
            job.progress.pages.fetch_add(1, Ordering::Relaxed);
            if tx.send(page).await.is_err() {
                break; // the writer stopped; its error says why
            }
        }
        drop(tx);
        Ok::<_, crate::api::Error>(())
    };
    let produced = producer.await;
    let written = writer
        .await
        .map_err(|e| anyhow::anyhow!("writer task failed: {e}"))?;
    // A writer error explains a closed channel; report it first.
    written?;
    produced?;
    if job.cancelled.load(Ordering::Relaxed) {
        anyhow::bail!(Interrupted);
    }
    Ok(())
}

/// Part files of location number `i` (its place in `--location`, which the job key fixes)
/// are numbered from `i * PARTS_PER_LOCATION`: names stay deterministic and never collide,
/// and a one-location export reads `part-00000`, `part-00001`, ...
const PARTS_PER_LOCATION: u32 = 100_000;

fn part_number(location_index: usize, seq: u32) -> u32 {
    location_index as u32 * PARTS_PER_LOCATION + seq
}

/// Refuse a part number that would run into the next location's range.
fn check_part_seq(seq: u32) -> anyhow::Result<()> {
    if seq >= PARTS_PER_LOCATION {
        anyhow::bail!(
            "a location reached {PARTS_PER_LOCATION} part files; rerun with --restart and a larger --part-rows or --commit-seconds"
        );
    }
    Ok(())
}

/// Keep a dataset's columns the same across runs: the first run records each table's columns;
/// a resumed run whose columns differ (a custom field added or renamed meanwhile, without
/// `--mapping`) stops instead of writing parts that readers could not line up.
fn check_columns(
    job: &Job,
    db: &std::sync::Mutex<StateDb>,
    location: &str,
    mapping: &Mapping,
    tables: &[TableKind],
    resuming: bool,
) -> anyhow::Result<()> {
    let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
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
        match db.columns(&job.key, location, t.name())? {
            Some(before) if resuming && before != columns => {
                let old: Vec<&str> = before.split(',').collect();
                let new: Vec<&str> = columns.split(',').collect();
                let added: Vec<&&str> = new.iter().filter(|c| !old.contains(c)).collect();
                let gone: Vec<&&str> = old.iter().filter(|c| !new.contains(c)).collect();
                anyhow::bail!(
                    "the columns of table {t} changed since this export started (added {added:?}, removed {gone:?}), most likely a custom field of location {location} was added or renamed; rerun with --restart to export again with the new columns"
                );
            }
            _ => db.save_columns(&job.key, location, t.name(), &columns)?,
        }
    }
    Ok(())
}

/// Part files (finished or temporary) under an output folder, of any table and format.
fn part_files_in(out: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for table in TableKind::ALL {
        for dir in [out.join(table.name()), rejects_dir(out).join(table.name())] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("part-") || name.starts_with(".part-") {
                    found.push(e.path());
                }
            }
        }
    }
    found.sort();
    found
}

/// Remove part files a crash left behind (written but never committed), for every table.
/// Runs before any location starts writing, so no live temporary file is touched.
fn sweep_uncommitted(
    out: &Path,
    format: Format,
    parts: &[CommittedPart],
    locations: &[String],
) -> anyhow::Result<()> {
    for table in TableKind::ALL {
        let data = (out.to_path_buf(), table.name().to_string(), format);
        let rejects = (
            rejects_dir(out),
            format!("rejects/{}", table.name()),
            Format::Csv,
        );
        for (dir, name, format) in [data, rejects] {
            let keep: Vec<u32> = parts
                .iter()
                .filter(|p| p.table == name)
                .filter_map(|p| {
                    let index = locations.iter().position(|l| *l == p.location)?;
                    Some(part_number(index, p.seq))
                })
                .collect();
            for r in sink::clean_uncommitted(&dir, table, format, &keep)? {
                tracing::info!(path = %r.display(), "Removed an uncommitted part file of an interrupted run.");
            }
        }
    }
    Ok(())
}

/// Crash injection for resume tests (`GHL_ETL_FAILPOINT`): the process aborts on the spot, with
/// no cleanup, like `kill -9`. `before-commit:N` dies after finishing the files of the N-th
/// chunk but before recording them; `after-commit:N` right after the N-th commit;
/// `mid-chunk:N` after N contacts of a chunk that is not yet complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failpoint {
    BeforeCommit(u64),
    AfterCommit(u64),
    MidChunk(u64),
}

fn failpoint() -> Option<Failpoint> {
    let v = std::env::var("GHL_ETL_FAILPOINT").ok()?;
    let (kind, n) = v.split_once(':')?;
    let n: u64 = n.parse().ok()?;
    match kind {
        "before-commit" => Some(Failpoint::BeforeCommit(n)),
        "after-commit" => Some(Failpoint::AfterCommit(n)),
        "mid-chunk" => Some(Failpoint::MidChunk(n)),
        _ => None,
    }
}

fn crash_if(point: Option<Failpoint>, here: Failpoint) {
    if point == Some(here) {
        eprintln!("failpoint {here:?} reached: aborting");
        std::process::abort();
    }
}

/// The open part files of one chunk.
struct Chunk {
    seq: u32,
    writers: Vec<(TableKind, Option<PartWriter>)>,
    /// Rejected records of this chunk, per table: part files like the data, so they are
    /// committed (or redone) together with it and a resumed run never repeats a reject.
    rejects: Vec<(TableKind, Option<PartWriter>)>,
    contacts: u64,
    started: Instant,
}

/// Folder of the reject part files, beside the tables: `DIR/rejects/<table>/part-NNNNN.csv`.
fn rejects_dir(out: &Path) -> PathBuf {
    out.join("rejects")
}

/// The columns of a reject file.
fn reject_schema(table: TableKind) -> TableSchema {
    use crate::table::{Column, ColumnType};
    TableSchema {
        table,
        columns: ["contact_id", "record_id", "column", "reason", "record_json"]
            .into_iter()
            .map(|name| Column {
                name: name.into(),
                ty: ColumnType::String,
            })
            .collect(),
    }
}

fn reject_options() -> SinkOptions {
    // Rejects are for people to read in a spreadsheet: CSV, formulas defused.
    SinkOptions {
        format: Format::Csv,
        csv_safe: true,
        ..SinkOptions::default()
    }
}

/// The writer stage (a blocking thread): map, encode, and commit chunks.
#[allow(clippy::too_many_arguments)]
fn write_location(
    job: &Job,
    db: &std::sync::Mutex<StateDb>,
    location: &str,
    location_index: usize,
    mapping: &Mapping,
    tables: &[TableKind],
    start: LocationState,
    mut rx: mpsc::Receiver<EnrichedPage>,
) -> anyhow::Result<()> {
    let schemas: HashMap<TableKind, Arc<TableSchema>> = tables
        .iter()
        .filter_map(|t| {
            mapping
                .table(*t)
                .map(|m| (*t, Arc::new(m.schema().clone())))
        })
        .collect();
    let reject_schemas: HashMap<TableKind, Arc<TableSchema>> = tables
        .iter()
        .map(|t| (*t, Arc::new(reject_schema(*t))))
        .collect();
    let reject_opts = reject_options();
    let mut state = start;
    let new_chunk = |seq: u32| Chunk {
        seq,
        writers: tables.iter().map(|t| (*t, None)).collect(),
        rejects: tables.iter().map(|t| (*t, None)).collect(),
        contacts: 0,
        started: Instant::now(),
    };
    let mut chunk = new_chunk(state.next_part);

    let write_row = |chunk: &mut Chunk,
                     table: TableKind,
                     record: &Value,
                     ctx: &RecordContext|
     -> anyhow::Result<bool> {
        let Some(tm) = mapping.table(table) else {
            return Ok(true);
        };
        match tm.apply(record, ctx) {
            RowOutcome::Row(row) => {
                let slot = chunk
                    .writers
                    .iter_mut()
                    .find(|(t, _)| *t == table)
                    .map(|(_, w)| w);
                let Some(slot) = slot else { return Ok(true) };
                if slot.is_none() {
                    check_part_seq(chunk.seq)?;
                    *slot = Some(PartWriter::create(
                        &job.out,
                        schemas[&table].clone(),
                        part_number(location_index, chunk.seq),
                        &job.sink,
                    )?);
                }
                if let Some(w) = slot.as_mut() {
                    w.write(&row, Some(record))?;
                }
                Ok(true)
            }
            RowOutcome::Filtered => Ok(false),
            RowOutcome::Rejected { column, reason } => {
                let Some(slot) = chunk
                    .rejects
                    .iter_mut()
                    .find(|(t, _)| *t == table)
                    .map(|(_, w)| w)
                else {
                    return Ok(false);
                };
                if slot.is_none() {
                    *slot = Some(PartWriter::create(
                        &rejects_dir(&job.out),
                        reject_schemas[&table].clone(),
                        part_number(location_index, chunk.seq),
                        &reject_opts,
                    )?);
                }
                let rid = record.get("id").and_then(Value::as_str).unwrap_or("");
                let line = vec![
                    crate::table::Value::String(ctx.contact_id.unwrap_or(rid).to_string()),
                    crate::table::Value::String(rid.to_string()),
                    crate::table::Value::String(column.clone()),
                    crate::table::Value::String(reason.clone()),
                    crate::table::Value::String(record.to_string()),
                ];
                if let Some(w) = slot.as_mut() {
                    w.write(&line, None)?;
                }
                tracing::debug!(table = %table, record_id = rid, column, reason, "Rejected a record.");
                Ok(false)
            }
        }
    };

    let failpoint = failpoint();
    let mut commits = 0u64;
    let mut commit =
        |chunk: Chunk, state: &mut LocationState, cursor: Cursor| -> anyhow::Result<()> {
            let mut parts = Vec::new();
            let data = chunk
                .writers
                .into_iter()
                .map(|(t, w)| (t.name().to_string(), w));
            let rejects = chunk
                .rejects
                .into_iter()
                .map(|(t, w)| (format!("rejects/{}", t.name()), w));
            for (table, w) in data.chain(rejects) {
                if let Some(w) = w {
                    let f = w.finish()?;
                    let rel = f
                        .path
                        .strip_prefix(&job.out)
                        .unwrap_or(&f.path)
                        .display()
                        .to_string();
                    parts.push(CommittedPart {
                        table,
                        location: location.to_string(),
                        seq: chunk.seq,
                        path: rel,
                        rows: f.rows,
                        bytes: f.bytes,
                    });
                }
            }
            commits += 1;
            crash_if(failpoint, Failpoint::BeforeCommit(commits));
            state.done = cursor == Cursor::Done;
            state.cursor = cursor;
            state.next_part = chunk.seq + 1;
            db.lock()
                .unwrap_or_else(|e| e.into_inner())
                .commit_chunk(&job.key, location, state, &parts)?;
            crash_if(failpoint, Failpoint::AfterCommit(commits));
            Ok(())
        };

    let mut last_cursor = state.cursor.clone();
    while let Some(ep) = rx.blocking_recv() {
        let n = ep.page.records.len() as u64;
        for (record, rel) in ep.page.records.iter().zip(&ep.related) {
            let cid = contact_id(record);
            let ctx = RecordContext {
                location_id: location,
                contact_id: Some(cid),
            };
            let kept = write_row(
                &mut chunk,
                TableKind::Contacts,
                record,
                &RecordContext {
                    location_id: location,
                    contact_id: None,
                },
            )?;
            if !kept {
                job.progress.filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if rel.deleted {
                job.progress.deleted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    contact_id = cid,
                    "The contact was deleted while exporting; kept without related records."
                );
            }
            for (table, records) in [
                (TableKind::Tasks, &rel.tasks),
                (TableKind::Notes, &rel.notes),
                (TableKind::Appointments, &rel.appointments),
            ] {
                for r in records {
                    write_row(&mut chunk, table, r, &ctx)?;
                }
            }
        }
        chunk.contacts += n;
        if let Some(Failpoint::MidChunk(k)) = failpoint {
            // Only inside a chunk that will not be committed with this page.
            if state.contacts + n >= k
                && chunk.contacts < job.part_rows
                && ep.page.next != Cursor::Done
            {
                crash_if(failpoint, Failpoint::MidChunk(k));
            }
        }
        state.contacts += n;
        job.progress.contacts.fetch_add(n, Ordering::Relaxed);
        job.bar.inc(n);
        let stats = job.client.stats();
        job.bar.set_message(format!(
            "{} pages, {} requests, {} retries, {} 429s",
            job.progress.pages.load(Ordering::Relaxed),
            stats.requests,
            stats.retries,
            stats.throttled
        ));
        last_cursor = ep.page.next.clone();
        let full = chunk.contacts >= job.part_rows || chunk.started.elapsed() >= job.commit_every;
        if full || last_cursor == Cursor::Done {
            let next_seq = chunk.seq + 1;
            let done_chunk = std::mem::replace(&mut chunk, new_chunk(next_seq));
            commit(done_chunk, &mut state, last_cursor.clone())?;
        }
    }
    // The channel closed: either the listing ended (the last page was committed above) or the
    // run stopped early, in which case the open chunk is dropped (its temp files removed) and
    // a rerun redoes it.
    if last_cursor == Cursor::Done {
        drop(chunk);
    } else {
        for (_, w) in chunk.writers.into_iter().chain(chunk.rejects) {
            if let Some(w) = w {
                w.abort();
            }
        }
    }
    Ok(())
}

/// `ghl-etl mapping check FILE [--location L]`.
pub async fn mapping_check(
    file: &Path,
    location: Option<&str>,
    conn: &ConnectionArgs,
) -> anyhow::Result<i32> {
    let mut mapping = match Mapping::from_path(file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return Ok(commands::EXIT_USAGE);
        }
    };
    if let Some(location) = location {
        let client = Client::new(conn.client_config(None)?)?;
        let fields = custom_field_infos(client.custom_fields(location).await?);
        if let Err(e) = mapping.resolve_custom_fields(&fields) {
            eprintln!("{e}");
            return Ok(commands::EXIT_USAGE);
        }
    }
    print!("{}", crate::mapping::describe(&mapping));
    println!("{}: ok", file.display());
    Ok(commands::EXIT_OK)
}
