//! The row-job runner: what load, tag and every bulk action share, written once.
//!
//! A row job reads input rows (files, or the contacts a search lists), does something in GHL
//! for each, and accounts for every row in the state database, so that a rerun skips what was
//! settled and the reports (`succeeded.csv`, `failed.csv`) keep one line per input row. The
//! runner ([`run`]) does everything but the "something":
//! - opens the job in the state database ([`Ledger`]) under its key;
//! - streams each input in chunks, refusing a file whose first row has none of the columns the
//!   job needs (a missing header row);
//! - skips rows an earlier run settled, and turns a row that could not be read into a failed
//!   row with its raw columns;
//! - hands the rest to the job ([`RowJob::rows`]), which answers the rows it settled (maybe rows
//!   of earlier chunks, when it batches across the file) and the error that stops it, if any;
//! - records each chunk's settled rows in one transaction, also when the job stopped;
//! - on Ctrl-C, SIGTERM or SIGHUP stops starting rows: what is in flight finishes and is
//!   recorded, and the run ends with exit 130; the rerun resumes;
//! - at the end, counts every recorded row ([`Totals`]) and writes the reports.
//!
//! The one stop policy is [`crate::api::Error::stops_the_job`]: a job turns an API error into
//! a failed row with [`row_failure`], which hands back the errors that stop the job instead.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{Map, Value as Json};

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::input::{check_wanted_columns, Chunked, InputFormat, RowResult};
use crate::job::{Progress, Ui};
use crate::report::{write_row_reports, write_would_fail, RowReports};
use crate::state::{JobStatus, RowRecord, RowStatus, StateDb};

/// When a run forgets what earlier runs of its job recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    /// Never: a rerun resumes (skips settled rows).
    Never,
    /// Always (`--restart`): every row is worked again.
    Always,
    /// Once the job finished (a `--where` selection: the contacts that match now).
    IfFinished,
}

/// The state database of one row job, under its key, and whether the run is stopping.
pub struct Ledger {
    key: String,
    db: Mutex<StateDb>,
    dry_run: bool,
    /// Set by Ctrl-C, SIGTERM or SIGHUP (see [`run`]), or by a job that met an error that
    /// stops it: no new row starts; rows in flight finish and are recorded.
    stopping: AtomicBool,
    /// Set with `stopping` by a signal only: the run ends as interrupted (exit 130).
    interrupted: AtomicBool,
    /// Where the job stood when this run began.
    status: JobStatus,
    /// Dry run: the rows that would fail, for `would-fail.csv` (a dry run records nothing).
    would_fail: Mutex<Vec<RowRecord>>,
}

impl Ledger {
    /// Open the state database at `path` and begin (or resume) the job `key`.
    pub fn open(path: &Path, key: &str, description: &str, dry_run: bool) -> Result<Ledger> {
        Ledger::open_fresh(path, key, description, dry_run, Fresh::Never)
    }

    /// [`Ledger::open`], forgetting what earlier runs of the job recorded when `fresh` says
    /// so (`--restart`; a `--where` selection that finished is a new selection).
    pub fn open_fresh(
        path: &Path,
        key: &str,
        description: &str,
        dry_run: bool,
        fresh: Fresh,
    ) -> Result<Ledger> {
        let mut db = StateDb::open(path)?;
        let mut status = db.begin_job(key, description)?;
        let forget = match fresh {
            Fresh::Never => false,
            Fresh::Always => status != JobStatus::New,
            Fresh::IfFinished => status == JobStatus::Finished,
        };
        if forget && !dry_run {
            db.reset_job(key)?;
            status = db.begin_job(key, description)?;
        }
        Ok(Ledger {
            key: key.to_string(),
            db: Mutex::new(db),
            dry_run,
            stopping: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            status,
            would_fail: Mutex::new(Vec::new()),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The state database (the lock is held only for one statement or transaction).
    pub fn db(&self) -> MutexGuard<'_, StateDb> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one row's outcome now (a dry run records nothing).
    pub fn record(&self, r: &RowRecord) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        Ok(self.db().record_row(&self.key, r)?)
    }

    /// Record many rows' outcomes in one transaction (a dry run records nothing).
    pub fn record_all(&self, rows: &[RowRecord]) -> Result<()> {
        if self.dry_run || rows.is_empty() {
            return Ok(());
        }
        Ok(self.db().record_rows(&self.key, rows)?)
    }

    /// Forget a row's record: an intent whose request was refused before it could act.
    pub fn forget(&self, row: &Row) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        Ok(self
            .db()
            .forget_row(&self.key, row.table, &row.file, row.row)?)
    }

    /// Whether new rows may start.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Start no new row: the job met an error that stops it.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        self.stop();
    }
}

/// One input row with work left: where it came from, its columns, and what an earlier run
/// left of it (a write recorded as `sending` whose outcome is unknown).
#[derive(Debug, Clone)]
pub struct Row {
    /// What the state database and the reports file the row under: `contacts`, `tags`, ...
    pub table: &'static str,
    pub file: String,
    pub row: u64,
    pub fields: Map<String, Json>,
    /// An earlier run's record of the row, if it was left unsettled.
    pub prior: Option<RowRecord>,
}

impl Row {
    /// A record of this row, carrying its own columns for the reports.
    pub fn record(&self, status: RowStatus, key: &str) -> RowRecord {
        RowRecord {
            table: self.table.to_string(),
            file: self.file.clone(),
            row: self.row,
            status,
            key: key.to_string(),
            target_id: None,
            fingerprint: None,
            detail: None,
            raw: Some(Json::Object(self.fields.clone()).to_string()),
        }
    }

    pub fn failed(&self, key: &str, why: impl Into<String>) -> RowRecord {
        RowRecord {
            detail: Some(why.into()),
            ..self.record(RowStatus::Failed, key)
        }
    }

    pub fn done(&self, status: RowStatus, key: &str, target: &str) -> RowRecord {
        RowRecord {
            target_id: Some(target.to_string()),
            ..self.record(status, key)
        }
    }

    /// Left `sending` by an earlier run: its write may have acted.
    pub fn was_sending(&self) -> bool {
        self.prior
            .as_ref()
            .is_some_and(|p| p.status == RowStatus::Sending)
    }
}

/// What a job settled, and the error that stops it, if one came. Rows settled before the
/// error are recorded all the same.
#[derive(Default)]
pub struct Settled {
    pub records: Vec<RowRecord>,
    pub stop: Option<JobError>,
}

impl Settled {
    pub fn stopped(records: Vec<RowRecord>, stop: JobError) -> Settled {
        Settled {
            records,
            stop: Some(stop),
        }
    }
}

impl From<Result<Vec<RowRecord>>> for Settled {
    fn from(r: Result<Vec<RowRecord>>) -> Settled {
        match r {
            Ok(records) => Settled {
                records,
                stop: None,
            },
            Err(e) => Settled::stopped(Vec::new(), e),
        }
    }
}

/// What a row job does with the rows the runner hands it.
pub trait RowJob {
    /// Rows of one chunk that still have work. Answers the rows it settled (rows of earlier
    /// chunks included, when it batches across the file) and the error that stops it.
    fn rows(&self, rows: Vec<Row>) -> impl Future<Output = Settled>;

    /// The input ended: settle what still waits (groups not yet full).
    fn flush(&self) -> impl Future<Output = Settled> {
        async { Settled::default() }
    }
}

/// One input of a job: a file (or folder of parts) whose rows go to `table`.
#[derive(Debug, Clone)]
pub struct Input {
    pub table: &'static str,
    pub path: PathBuf,
    pub format: Option<InputFormat>,
    /// The columns the job reads; the first row must have at least one of them.
    pub wanted: Vec<String>,
    /// Rows read at a time: the unit of recording and of concurrency.
    pub chunk_rows: usize,
    /// Inputs of one stage run together, their chunks in one pipe (a load's tasks and notes);
    /// a later stage starts when every row of the earlier ones is settled (they need the
    /// contacts' ids).
    pub stage: u8,
}

/// Where a job's rows come from.
pub enum Source<'a> {
    Files(Vec<Input>),
    /// Rows made elsewhere (the contacts a search lists), a page at a time.
    Listed(BoxStream<'a, Result<Vec<Row>>>),
}

/// Every row a job accounted for, by outcome.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// Rows that failed here and were written later from a fed-back `failed.csv`.
    pub fixed: u64,
    /// Rows an earlier run settled, skipped by this one.
    pub resumed: u64,
    /// The same counts per table (`contacts`, `tasks`, `notes`, `tags`), when counted with
    /// [`Totals::count_in`].
    pub tables: std::collections::BTreeMap<String, Totals>,
}

impl Totals {
    pub fn count(&mut self, status: RowStatus) {
        self.rows += 1;
        match status {
            RowStatus::Created => self.created += 1,
            RowStatus::Updated => self.updated += 1,
            RowStatus::Deleted => self.deleted += 1,
            RowStatus::Unchanged => self.unchanged += 1,
            RowStatus::Failed | RowStatus::Sending => self.failed += 1,
            RowStatus::Fixed => self.fixed += 1,
        }
    }

    /// Count a row of `table`, in all and in its table.
    pub fn count_in(&mut self, table: &str, status: RowStatus) {
        self.count(status);
        self.tables
            .entry(table.to_string())
            .or_default()
            .count(status);
    }

    /// Rows that changed something in GHL.
    pub fn changed(&self) -> u64 {
        self.created + self.updated + self.deleted
    }
}

/// How a row job's run ended.
pub struct Ran {
    pub totals: Totals,
    /// The rows this run recorded, by table (a dry run's predictions included).
    pub reports: Option<RowReports>,
    /// Whether every row had been settled by an earlier run already.
    pub was_finished: bool,
}

/// Run a row job over `source` to its end, its first stopping error, or a signal; then count
/// every recorded row and write the reports into `report_dir`.
pub async fn run<J: RowJob>(
    ledger: &Ledger,
    job: &J,
    source: Source<'_>,
    progress: &Progress,
    report_dir: &Path,
    ui: Ui,
    client: &Client,
) -> Result<Ran> {
    let was_finished = ledger.status == JobStatus::Finished;
    let mut totals = Totals::default();
    let work = feed(ledger, job, source, progress, client, &mut totals);
    let outcome = until_signal(ledger, ui, work).await;
    progress.bar.finish_and_clear();
    let mut ran = Ran {
        totals,
        reports: None,
        was_finished,
    };
    if ledger.dry_run {
        let failed =
            std::mem::take(&mut *ledger.would_fail.lock().unwrap_or_else(|e| e.into_inner()));
        let (path, n) = write_would_fail(report_dir, &failed)
            .map_err(|e| JobError::io("write the reports in", report_dir, e))?;
        if !ui.quiet && n > 0 {
            eprintln!(
                "Rows that would fail, with their reasons: {} ({n})",
                path.display()
            );
        }
    } else {
        let resumed = ran.totals.resumed;
        ran.totals = Totals::default();
        let reports = write_row_reports(report_dir, &ledger.db(), &ledger.key, |table, status| {
            ran.totals.count_in(table, status)
        })
        .map_err(|e| JobError::io("write the reports in", report_dir, e))?;
        ran.totals.resumed = resumed;
        ran.reports = Some(reports);
        if outcome.is_ok() {
            ledger.db().finish_job(&ledger.key)?;
        }
    }
    outcome.map(|()| ran)
}

/// Run `work`; on Ctrl-C, SIGTERM or SIGHUP stop starting rows, let it finish what is in
/// flight, and end as interrupted.
async fn until_signal(
    ledger: &Ledger,
    ui: Ui,
    work: impl Future<Output = Result<()>>,
) -> Result<()> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => r,
        () = super::signal::stop_signal() => {
            ledger.interrupt();
            if !ui.quiet {
                eprintln!("Stopping after the rows in flight; a rerun resumes.");
            }
            work.await?;
            Err(JobError::Interrupted)
        }
    }
}

/// Every input through the job, chunk by chunk, then the job's flush.
async fn feed<J: RowJob>(
    ledger: &Ledger,
    job: &J,
    source: Source<'_>,
    progress: &Progress,
    client: &Client,
    totals: &mut Totals,
) -> Result<()> {
    match source {
        Source::Files(inputs) => {
            // A total for the bar from the start, not one that grows as rows are read.
            // Read only when someone sees it: it is one more pass over every input.
            let estimate: u64 = match progress.is_seen() {
                true => inputs
                    .iter()
                    .filter_map(|i| crate::input::estimate_rows(&i.path, i.format))
                    .sum(),
                false => 0,
            };
            if estimate > 0 {
                progress.grow_to(estimate);
            }
            for stage in inputs.chunk_by(|a, b| a.stage == b.stage) {
                feed_stage(ledger, job, stage, progress, client, totals).await?;
                if ledger.stopping() {
                    return stopped(ledger);
                }
            }
        }
        Source::Listed(mut pages) => {
            while let Some(rows) = pages.next().await {
                let rows = rows?;
                let n = rows.len() as u64;
                settle(ledger, job.rows(rows).await, n, progress, client, totals)?;
                if ledger.stopping() {
                    return stopped(ledger);
                }
            }
        }
    }
    settle(ledger, job.flush().await, 0, progress, client, totals)
}

fn stopped(ledger: &Ledger) -> Result<()> {
    match ledger.interrupted.load(Ordering::Relaxed) {
        true => Err(JobError::Interrupted),
        false => Ok(()),
    }
}

/// Chunks under way at once. A chunk settles (one transaction) only when its last row is
/// done, and a few rows of every chunk wait seconds (a retry's backoff, a lost create looked
/// for again): with one chunk at a time those waits idled the whole pipe at every chunk's
/// end, and with one file at a time at every file's end. Outcomes are still recorded chunk by
/// chunk, in order.
const CHUNKS_UNDER_WAY: usize = 3;

/// A chunk read and sorted: rows to work, rows that could not be read, rows settled before.
struct ChunkWork {
    work: Vec<Row>,
    bad: Vec<RowRecord>,
    read: u64,
    resumed: u64,
}

/// The input files of one stage through the job, their chunks one after the other in one
/// pipe, so that the next file's first chunks start while the last ones of a file finish.
async fn feed_stage<J: RowJob>(
    ledger: &Ledger,
    job: &J,
    stage: &[Input],
    progress: &Progress,
    client: &Client,
    totals: &mut Totals,
) -> Result<()> {
    let mut readers = Vec::with_capacity(stage.len());
    for input in stage {
        readers.push(Chunked::open(&input.path, input.format, input.chunk_rows)?);
    }
    let stop = {
        let source = futures::stream::iter(readers.iter_mut().zip(stage)).flat_map(|(c, input)| {
            futures::stream::unfold((c, true), move |(c, first)| async move {
                let chunk = c.next().await?;
                Some(((input, chunk, first), (c, false)))
            })
        });
        let settled = source
            .take_while(|_| futures::future::ready(!ledger.stopping()))
            .map(|(input, chunk, first)| prepare(ledger, input, chunk, first))
            .map(|prepared| async move {
                let p = prepared?;
                let fixes = fed_back(&p.work);
                let mut settled = job.rows(p.work).await;
                settled.records.extend(p.bad);
                Ok::<_, JobError>((settled, p.read, p.resumed, fixes))
            })
            .buffered(CHUNKS_UNDER_WAY);
        let mut settled = std::pin::pin!(settled);
        // Every chunk under way is settled, also after a stop, so that what was done is recorded.
        let mut stop = None;
        while let Some(next) = settled.next().await {
            let outcome = next.and_then(|(done, read, resumed, fixes)| {
                totals.resumed += resumed;
                mark_fixed(ledger, &done, &fixes)?;
                settle(ledger, done, read, progress, client, totals)
            });
            if let Err(e) = outcome {
                ledger.stop();
                stop.get_or_insert(e);
            }
        }
        stop
    };
    if let Some(e) = stop {
        return Err(e);
    }
    for reader in readers {
        reader.finish().await?;
    }
    Ok(())
}

/// A fed-back `failed.csv` row (it has `input_file` and `input_row`): (its own file and row,
/// the original file and row it fixes).
type FedBack = ((String, u64), (String, u64));

/// The rows of a chunk that come from a fed-back `failed.csv`.
fn fed_back(rows: &[Row]) -> Vec<FedBack> {
    rows.iter()
        .filter_map(|r| {
            let file = r.fields.get("input_file")?.as_str()?;
            let row = r.fields.get("input_row")?.as_str()?.trim().parse().ok()?;
            Some(((r.file.clone(), r.row), (file.to_string(), row)))
        })
        .collect()
}

/// Settle as fixed the original failed rows that this chunk's fed-back rows wrote after all,
/// so the original job's reports (and exit code) say so. In the same database, whichever job
/// failed them.
fn mark_fixed(ledger: &Ledger, settled: &Settled, fixes: &[FedBack]) -> Result<()> {
    if fixes.is_empty() || ledger.dry_run {
        return Ok(());
    }
    let mut db = ledger.db();
    for r in &settled.records {
        let written = r.status.is_final() && !matches!(r.status, RowStatus::Failed);
        let Some((_, (file, row))) = fixes.iter().find(|((f, n), _)| *f == r.file && *n == r.row)
        else {
            continue;
        };
        if written {
            let by = format!("fixed by {} row {}", r.file, r.row);
            db.mark_fixed(&r.table, file, *row, &by)?;
        }
    }
    Ok(())
}

/// Sort a chunk's rows: `first` checks the file's columns first.
fn prepare(
    ledger: &Ledger,
    input: &Input,
    chunk: Vec<RowResult>,
    first: bool,
) -> Result<ChunkWork> {
    if first {
        let wanted: Vec<&str> = input.wanted.iter().map(String::as_str).collect();
        check_wanted_columns(&chunk, &wanted).map_err(JobError::usage)?;
    }
    let mut out = ChunkWork {
        work: Vec::with_capacity(chunk.len()),
        bad: Vec::new(),
        read: chunk.len() as u64,
        resumed: 0,
    };
    for item in chunk {
        match row_of(ledger, input.table, item)? {
            Prepared::Resumed => out.resumed += 1,
            Prepared::Settled(r) => out.bad.push(r),
            Prepared::Work(row) => out.work.push(row),
        }
    }
    Ok(out)
}

/// Record what the job settled (in one transaction), count it, and pass on its stop.
fn settle(
    ledger: &Ledger,
    settled: Settled,
    read: u64,
    progress: &Progress,
    client: &Client,
    totals: &mut Totals,
) -> Result<()> {
    ledger.record_all(&settled.records)?;
    if ledger.dry_run {
        settled
            .records
            .iter()
            .for_each(|r| totals.count_in(&r.table, r.status));
        let failed = settled
            .records
            .iter()
            .filter(|r| r.status == RowStatus::Failed);
        let mut would_fail = ledger.would_fail.lock().unwrap_or_else(|e| e.into_inner());
        would_fail.extend(failed.cloned());
    }
    progress.advance(read, &client.stats());
    match settled.stop {
        Some(e) => {
            ledger.stop();
            Err(e)
        }
        None => Ok(()),
    }
}

enum Prepared {
    /// Settled by an earlier run.
    Resumed,
    /// Settled without the job: a row that could not be read (failed), or a blank one
    /// (unchanged, so that it too is in a report).
    Settled(RowRecord),
    Work(Row),
}

/// An input row as the job sees it, or why the job need not see it.
fn row_of(ledger: &Ledger, table: &'static str, item: RowResult) -> Result<Prepared> {
    let (file, number, fields, bad) = match item {
        Ok(r) => (r.file.display().to_string(), r.row, r.fields, None),
        Err(b) => {
            let fields: Map<String, Json> = b
                .raw
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            (b.file.display().to_string(), b.row, fields, Some(b.reason))
        }
    };
    let prior = ledger.db().row(&ledger.key, table, &file, number)?;
    if prior.as_ref().is_some_and(|p| p.status.is_final()) {
        return Ok(Prepared::Resumed);
    }
    let row = Row {
        table,
        file,
        row: number,
        fields,
        prior,
    };
    Ok(match bad {
        Some(reason) => Prepared::Settled(row.failed("", reason)),
        None if is_blank(&row.fields) => Prepared::Settled(RowRecord {
            detail: Some(BLANK_ROW.to_string()),
            ..row.record(RowStatus::Unchanged, "")
        }),
        None => Prepared::Work(row),
    })
}

/// The note a blank row gets in `succeeded.csv`.
pub const BLANK_ROW: &str = "blank row (every cell empty): nothing to write";

/// Every cell empty or blank: `,,,` as a spreadsheet pads a sheet, `""`, or `{}`.
fn is_blank(fields: &Map<String, Json>) -> bool {
    fields.values().all(|v| match v {
        Json::Null => true,
        Json::String(s) => s.trim().is_empty(),
        _ => false,
    })
}

/// A row-level failure from the API: every message it gave (a 422 names each field), with the
/// status. `Err` for what stops the job ([`crate::api::Error::stops_the_job`]).
pub fn row_failure(e: crate::api::Error) -> Result<String> {
    if e.stops_the_job() {
        return Err(e.into());
    }
    Ok(e.to_string())
}

/// Run `work` on each item, `concurrency` at a time, until the ledger says stop (a signal, or
/// an item whose error stops the job: the first such error is answered, after the items in
/// flight finish). Answers every item's result that finished.
pub async fn each_concurrently<T, R, F, Fut>(
    ledger: &Ledger,
    items: Vec<T>,
    concurrency: usize,
    work: F,
) -> (Vec<R>, Option<JobError>)
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    let results: Vec<Result<R>> = futures::stream::iter(items)
        .take_while(|_| futures::future::ready(!ledger.stopping()))
        .map(&work)
        .buffer_unordered(concurrency.max(1))
        .inspect(|r| {
            if r.is_err() {
                ledger.stop();
            }
        })
        .collect()
        .await;
    let mut done = Vec::with_capacity(results.len());
    let mut stop = None;
    for r in results {
        match r {
            Ok(r) => done.push(r),
            Err(e) if stop.is_none() => stop = Some(e),
            Err(_) => {}
        }
    }
    (done, stop)
}

/// The shared part of a row job's summary: the rows an earlier run settled, what this run
/// cost, and where the reports are.
pub fn print_tail(ran: &Ran, cost: &crate::job::Cost, rate: Option<crate::api::RateSpec>) {
    for line in crate::job::row_job_tail(ran.totals.resumed, ran.totals.rows, cost, rate) {
        eprintln!("{line}");
    }
    if let Some(r) = &ran.reports {
        r.print();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_count_each_outcome_once() {
        let mut t = Totals::default();
        for s in [
            RowStatus::Created,
            RowStatus::Updated,
            RowStatus::Failed,
            RowStatus::Sending,
            RowStatus::Unchanged,
            RowStatus::Deleted,
        ] {
            t.count(s);
        }
        assert_eq!(t.rows, 6);
        assert_eq!(t.failed, 2, "a row left sending is not a success");
        assert_eq!(t.changed(), 3);
    }

    #[tokio::test]
    async fn the_first_stopping_error_stops_new_items_and_the_rest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("s.sqlite"), "j", "test", false).unwrap();
        let (done, stop) = each_concurrently(&ledger, (0..100).collect(), 1, |i| async move {
            match i {
                3 => Err(JobError::Interrupted),
                i => Ok(i),
            }
        })
        .await;
        assert_eq!(done, vec![0, 1, 2]);
        assert!(matches!(stop, Some(JobError::Interrupted)));
        assert!(ledger.stopping());
    }
}
