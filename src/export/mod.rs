//! The export job: list each location's contacts, fetch their tasks/notes/appointments, map
//! them to rows, write part files and commit progress, as a pipeline per location.
//!
//! - `plan`: what the export does, resolved before any request ([`ExportPlan`]).
//! - `locations`: which locations it covers: ids, a locations file, an agency's installed
//!   locations, a shard of them ([`LocationSelection`]).
//! - `fanout`: one task per location (a bounded number at once), Ctrl-C, and which failures
//!   stop the others.
//! - `outcomes`: every location's outcome, printed and written as `_locations.json`.
//! - `output`: the output folder: owner marker, part numbering, sweep, manifest; it writes
//!   through `sink`'s [`Store`], a local folder or an object store.
//! - `location`: one location's pipeline (pager → fetch → writer) and its mapping.
//! - `fetch`: a page's child records, bulk or per contact.
//! - `write`: the writer thread: map, encode, commit chunks.
//! - `run`: [`Run`], what the locations' pipelines share.
//! - `failpoint`: crash injection for the resume tests (test builds only).
//! - `incremental`, `phases`: `--incremental` runs (watermarks, deltas, deletions, the
//!   partitioned layout).
//!
//! Progress is committed in chunks: when a chunk's part files are complete on disk, the cursor
//! after its last page and the part list go into the state database in one transaction. A
//! rerun of the same export deletes part files the database does not know and continues from
//! the stored cursor, so its output equals an uninterrupted run's.

mod failpoint;
mod fanout;
mod fetch;
mod incremental;
mod location;
mod locations;
mod outcomes;
mod output;
mod phases;
mod plan;
mod run;
mod write;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use incremental::{run_name, DELETED_TABLE};
pub use locations::{read_locations_file, shard_of, LocationSelection, Shard};
pub use outcomes::{LocationReport, LOCATIONS_FILE};
pub use plan::{ExportPlan, IncrementalPlan};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::job::{peak_rss_mb, Connection, ConnectionPlan, Cost, Progress, Ui};
use crate::lease::{self, OutputLease};
use crate::report::REJECT_FORMAT;
use crate::sink::{staging_dir, Store};
use crate::state::{CommittedPart, JobStatus, StateDb};
use crate::table::TableKind;
use fanout::{for_each_location, FanOut};
use outcomes::{location_reports, print_location_reports};
use output::{Layout, OutputDir, PartFolder};
use run::Run;

/// What a run did, for the summary, the manifest and tests.
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
    /// `--incremental`: the run's name, `full`, `delta` or `mixed`, and the contacts listed
    /// but left out because they did not change.
    pub run: Option<String>,
    pub mode: Option<String>,
    pub unchanged: u64,
    /// Every location's outcome, in list order.
    pub locations: Vec<LocationReport>,
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

    fn cost(&self) -> Cost {
        Cost {
            requests: self.requests,
            retries: self.retries,
            throttled: self.throttled,
            elapsed_s: self.elapsed_s,
            peak_rss_mb: self.peak_rss_mb,
        }
    }
}

/// The part folders of an export: one per table, and one per table of rejects; with a
/// partitioned layout, those of each location (and the deleted table).
fn part_folders(plan: &ExportPlan, layout: &Layout, root: &Path) -> Vec<PartFolder> {
    let mut folders = Vec::new();
    let locations: Vec<Option<&str>> = match layout {
        Layout::Flat => vec![None],
        Layout::Hive { .. } => plan.locations.iter().map(|l| Some(l.as_str())).collect(),
    };
    for location in locations {
        let folder = |name: &str| layout.folder(root, name, location.unwrap_or(""));
        for table in TableKind::ALL {
            let rejects = format!("rejects/{}", table.name());
            folders.push(PartFolder {
                dir: folder(table.name()),
                name: table.name().to_string(),
                format: plan.sink.format,
                location: location.map(str::to_string),
            });
            folders.push(PartFolder {
                dir: folder(&rejects),
                name: rejects,
                format: REJECT_FORMAT,
                location: location.map(str::to_string),
            });
        }
        if location.is_some() {
            folders.push(PartFolder {
                dir: folder(DELETED_TABLE),
                name: DELETED_TABLE.to_string(),
                format: plan.sink.format,
                location: location.map(str::to_string),
            });
        }
    }
    folders
}

/// `ghl-etl export`: connect, run, and close the embedded sandbox if there is one.
pub async fn export(conn: &ConnectionPlan, plan: &ExportPlan, ui: Ui) -> Result<Summary> {
    let connection = Connection::open(conn, ui.quiet).await?;
    let mut plan = plan.clone();
    if plan.locations.is_empty() && !plan.select.adds_locations() {
        plan.locations = connection.sandbox_locations();
    }
    let result = run(&connection.client, &conn.server_identity(), plan, ui).await;
    connection.close().await;
    result
}

/// Run an export to completion (or to its first fatal error) and return its summary.
pub async fn run(client: &Client, server: &str, mut plan: ExportPlan, ui: Ui) -> Result<Summary> {
    let started = Instant::now();
    plan.locations = plan.select.resolve(client, &plan.locations).await?;
    if let (Some(shard), true) = (plan.select.shard, plan.locations.is_empty()) {
        if !ui.quiet {
            eprintln!(
                "Shard {}/{} takes none of the locations: nothing to export.",
                shard.index, shard.count
            );
        }
        return Ok(Summary::default());
    }
    if plan.locations.is_empty() {
        return Err(JobError::usage(
            "no location: pass --location (or set GHL_LOCATION), or use --sandbox",
        ));
    }
    // One run at a time per state database and per output (see `lease`); the sweep of
    // uncommitted parts below must never run where another run writes.
    let _state_lock = lease::lock_state(&plan.state, "export").await?;
    let lease = OutputLease::acquire(&Store::open(&plan.out)?, "export").await?;
    let result = run_holding(client, server, plan, ui, started).await;
    lease.release().await;
    result
}

/// [`run`], once the state database and the output are this run's.
async fn run_holding(
    client: &Client,
    server: &str,
    plan: ExportPlan,
    ui: Ui,
    started: Instant,
) -> Result<Summary> {
    let description = format!("export {} -> {}", plan.locations.join(","), plan.out);
    let Opened {
        mut db,
        key,
        status,
        incr,
        out,
    } = open_job(&plan, server, &description).await?;
    if status == JobStatus::Finished {
        return already_finished(&db, &key, &plan, &out, ui).await;
    }
    // An incremental export owns its folder across runs: the marker names the dataset.
    let owner = incr.as_ref().map_or(key.as_str(), |i| i.dataset.as_str());
    let flags = (plan.restart, plan.force);
    if let Err(e) = out.claim(owner, status, flags, &plan.state).await {
        if status == JobStatus::New {
            db.reset_job(&key)?;
        }
        return Err(e);
    }
    if let Some(i) = &incr {
        incremental::begin(&mut db, i, &description)?;
    }
    out.sweep_uncommitted(&db.parts(&key)?, &plan.locations)
        .await?;
    let done_before = finished_locations(&db, &key, &plan.locations)?;

    let run = Arc::new(Run {
        key: key.clone(),
        client: client.clone(),
        bulk_tasks: AtomicBool::new(plan.bulk_tasks),
        progress: Progress::new(ui, "contacts"),
        cancelled: Arc::new(AtomicBool::new(false)),
        db: Mutex::new(db),
        out,
        plan,
        incr,
    });
    let fan = for_each_location(
        &run.plan.locations,
        run.plan.location_concurrency,
        &run.cancelled,
        ui.quiet,
        |l, i| location::export_location(run.clone(), l, i),
    )
    .await;
    run.progress.bar.finish_and_clear();
    let run =
        Arc::try_unwrap(run).map_err(|_| JobError::usage("the state database is still in use"))?;
    let resumed = run
        .incr
        .as_ref()
        .map_or(status == JobStatus::Resuming, |i| i.resumed);
    let summary = run_summary(&run, started, resumed);
    conclude(run, fan, summary, &done_before, server, ui, client).await
}

/// After every location has ended: their outcomes, then the job (or the incremental run)
/// marked finished, or the error that keeps it open for a rerun.
async fn conclude(
    run: Run,
    fan: FanOut,
    mut summary: Summary,
    done_before: &HashSet<String>,
    server: &str,
    ui: Ui,
    client: &Client,
) -> Result<Summary> {
    let Run {
        key,
        db,
        out,
        plan,
        incr,
        ..
    } = run;
    let mut db = db.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut parts = db.parts(&key)?;
    // An incremental run finishes without the locations refused access; their files of
    // this run go, so that their next run, from their last baseline, repeats nothing.
    let left_out = incr
        .as_ref()
        .and_then(|_| incremental::refused_locations(&fan))
        .unwrap_or_default();
    if !left_out.is_empty() {
        parts.retain(|p| !left_out.iter().any(|(l, _)| *l == p.location));
        out.sweep_uncommitted(&parts, &plan.locations).await?;
    }
    summary.add_parts(&parts);
    summary.locations = location_reports(&fan, done_before, &plan.select.names, |l| {
        db.location(&key, l)
            .ok()
            .flatten()
            .map_or(0, |s| s.contacts)
    });
    print_location_reports(&summary.locations, ui);
    out.write_manifest_as(LOCATIONS_FILE, &serde_json::json!(summary.locations))
        .await?;
    let refused = match fan.into_result() {
        Err(e) if !left_out.is_empty() => Some(e),
        Ok(()) => None,
        Err(e) => return Err(stopped(e, &summary, &parts, ui)),
    };
    let finished: Vec<String> = plan
        .locations
        .iter()
        .filter(|l| !left_out.iter().any(|(r, _)| r == *l))
        .cloned()
        .collect();
    summary.peak_rss_mb = peak_rss_mb();
    let of = (finished.as_slice(), left_out.as_slice());
    let job = (key.as_str(), incr.as_ref(), &plan);
    mark_finished(&out, job, &mut db, &mut summary, &parts, of, server).await?;
    report(&summary, &plan, ui, client);
    let Some(e) = refused else {
        return Ok(summary);
    };
    if ui.for_people() {
        eprintln!(
            "The run finished for the other {} locations and left out {} refused access; each picks up from its last finished run once its access is back.",
            finished.len(),
            left_out.len()
        );
    }
    Err(e)
}

/// Manifest first (an export marked finished always has one), then the job marked finished,
/// or for an incremental run the baselines of `finished` advanced and the run closed.
async fn mark_finished(
    out: &OutputDir,
    (key, incr, plan): (&str, Option<&incremental::RunIncr>, &ExportPlan),
    db: &mut StateDb,
    summary: &mut Summary,
    parts: &[CommittedPart],
    (finished, left_out): (&[String], &[(String, String)]),
    server: &str,
) -> Result<()> {
    let total = contacts_total(db, key, finished)?;
    let mut manifest = manifest(summary, parts, total);
    match incr {
        None => {
            out.write_manifest(&manifest).await?;
            db.finish_job(key)?;
        }
        Some(incr) => {
            let of = (finished, left_out);
            let done = incremental::finish(db, incr, plan, of, out, &mut manifest, server).await?;
            summary.run = Some(incr.run.run.clone());
            summary.mode = Some(done.mode);
            summary.unchanged = done.unchanged;
        }
    }
    Ok(())
}

/// A run that stopped: say what is committed and what to do, and hand the error on.
fn stopped(e: JobError, summary: &Summary, parts: &[CommittedPart], ui: Ui) -> JobError {
    if ui.for_people() && (summary.contacts > 0 || !parts.is_empty()) {
        let next = if e.rerun_resumes() {
            "Rerun the same command to resume."
        } else {
            "Fix the cause below; the same command then resumes from there."
        };
        // What is committed is what a rerun keeps; contacts read since the last commit are
        // read again.
        let committed: u64 = parts
            .iter()
            .filter(|p| p.table == "contacts")
            .map(|p| p.rows)
            .sum();
        eprintln!(
            "Stopped after reading {} contacts in this run; {committed} contacts are committed, in {} part files, and a rerun keeps them. {next}",
            summary.contacts,
            parts.len()
        );
    }
    e
}

/// A job opened in the state database, with its output folder.
struct Opened {
    db: StateDb,
    key: String,
    status: JobStatus,
    incr: Option<incremental::RunIncr>,
    out: OutputDir,
}

/// Open the state database and the export's job: the plan's key with the flat layout, or
/// for `--incremental` the dataset's run with its partitioned layout. `--restart` forgets the
/// earlier progress and files here.
async fn open_job(plan: &ExportPlan, server: &str, description: &str) -> Result<Opened> {
    let mut db = StateDb::open(&plan.state)?;
    let store = Store::open(&plan.out)?;
    let (key, status, incr) = match &plan.incremental {
        None => (plan.job_key(&plan.locations, server), None, None),
        Some(ip) => {
            let (incr, status) = incremental::open(&mut db, plan, server, ip, &store).await?;
            (incr.run.job.clone(), Some(status), Some(incr))
        }
    };
    let layout = match &incr {
        None => Layout::Flat,
        Some(i) => Layout::Hive {
            run: i.run.run.clone(),
        },
    };
    // Parts are written in place in a local folder, else staged beside the state database.
    let root = match store.local_root() {
        Some(dir) => dir.to_path_buf(),
        None => staging_dir(&plan.state, &key),
    };
    let out = OutputDir {
        folders: part_folders(plan, &layout, &root),
        root,
        store,
        layout,
    };
    if plan.restart && incr.is_none() {
        out.remove_parts(&db.parts(&key)?).await;
        db.reset_job(&key)?;
    }
    let status = match status {
        Some(s) => s,
        None => db.begin_job(&key, description)?,
    };
    Ok(Opened {
        db,
        key,
        status,
        incr,
        out,
    })
}

/// The counters of this run.
fn run_summary(run: &Run, started: Instant, resumed: bool) -> Summary {
    let stats = run.client.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    Summary {
        contacts: count(&run.progress.done),
        pages: count(&run.progress.pages),
        deleted_meanwhile: count(&run.progress.deleted),
        filtered: count(&run.progress.filtered),
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        elapsed_s: started.elapsed().as_secs_f64(),
        tasks_mode: if !run.plan.children.contains(&TableKind::Tasks) {
            "none".into()
        } else if run.bulk_tasks.load(Ordering::Relaxed) {
            "bulk (POST /locations/{id}/tasks/search)".into()
        } else {
            "per contact (GET /contacts/{id}/tasks)".into()
        },
        resumed,
        ..Default::default()
    }
}

/// A rerun of an export that finished: say so, and make sure its manifest exists.
async fn already_finished(
    db: &StateDb,
    key: &str,
    plan: &ExportPlan,
    out: &OutputDir,
    ui: Ui,
) -> Result<Summary> {
    if !ui.quiet {
        eprintln!(
            "This export already finished (state {}, job {key}); its files are in {}. Pass --restart to export again.",
            plan.state.display(),
            plan.out
        );
    }
    let mut summary = Summary {
        resumed: true,
        ..Default::default()
    };
    let parts = db.parts(key)?;
    summary.add_parts(&parts);
    if !out.has_manifest().await? {
        let total = contacts_total(db, key, &plan.locations)?;
        out.write_manifest(&manifest(&summary, &parts, total))
            .await?;
    }
    Ok(summary)
}

/// The locations of the job that an earlier run finished.
fn finished_locations(
    db: &StateDb,
    key: &str,
    locations: &[String],
) -> Result<std::collections::HashSet<String>> {
    let mut done = std::collections::HashSet::new();
    for l in locations {
        if db.location(key, l)?.is_some_and(|s| s.done) {
            done.insert(l.clone());
        }
    }
    Ok(done)
}

/// Contacts listed by the export over all its runs.
fn contacts_total(db: &StateDb, key: &str, locations: &[String]) -> Result<u64> {
    let mut total = 0;
    for l in locations {
        total += db.location(key, l)?.map_or(0, |s| s.contacts);
    }
    Ok(total)
}

fn manifest(summary: &Summary, parts: &[CommittedPart], contacts_total: u64) -> serde_json::Value {
    serde_json::json!({
        "tables": summary.rows,
        "rejected": summary.rejected,
        "files": parts.iter().map(|p| serde_json::json!({"table": p.table, "location": p.location, "path": p.path, "rows": p.rows, "bytes": p.bytes})).collect::<Vec<_>>(),
        "contacts_total": contacts_total,
        // The rest describes the last run (a resumed export's earlier runs are not counted).
        "contacts": summary.contacts,
        "deleted_meanwhile": summary.deleted_meanwhile,
        "requests": summary.requests,
        "retries": summary.retries,
        "throttled": summary.throttled,
        "elapsed_s": summary.elapsed_s,
        "peak_rss_mb": summary.peak_rss_mb,
        "finished_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// The summary: prose for people on stderr, or one structured event for log shippers.
fn report(s: &Summary, plan: &ExportPlan, ui: Ui, client: &Client) {
    if ui.json_logs && !ui.quiet {
        tracing::info!(
            contacts = s.contacts,
            requests = s.requests,
            retries = s.retries,
            throttled = s.throttled,
            elapsed_s = s.elapsed_s,
            "Export finished."
        );
    }
    if !ui.for_people() {
        return;
    }
    eprintln!(
        "Export finished in {:.1} s{}.",
        s.elapsed_s,
        if s.resumed { " (resumed)" } else { "" }
    );
    let mut tables: Vec<_> = s.rows.iter().collect();
    tables.sort();
    for (t, n) in tables {
        let rej = s.rejected.get(t).copied().unwrap_or(0);
        let rejects = if rej > 0 {
            format!(", {rej} rejected (see rejects/{t}/)")
        } else {
            String::new()
        };
        eprintln!("  {t:<13} {n:>9} rows{rejects}");
    }
    if s.filtered > 0 {
        eprintln!(
            "  filtered out  {:>9} contacts (mapping filter)",
            s.filtered
        );
    }
    for line in s
        .cost()
        .lines("contact", s.contacts, client.rate(&plan.locations[0]))
    {
        eprintln!("{line}");
    }
    eprintln!("  tasks         {}", s.tasks_mode);
    if let (Some(run), Some(mode)) = (&s.run, &s.mode) {
        eprintln!(
            "  run           {run} ({mode}; {} contacts unchanged, not written)",
            s.unchanged
        );
    }
    if s.deleted_meanwhile > 0 {
        eprintln!(
            "  deleted while exporting: {} contacts (kept, without related records)",
            s.deleted_meanwhile
        );
    }
    eprintln!("Output: {}", plan.out.identity());
}
