//! Incremental exports (`--incremental`): each run writes what changed since the last
//! committed run, into its own Hive-style partitions, and what was deleted.
//!
//! The design follows where requests cost:
//! - contacts are listed in full every run (`POST /contacts/search`, one request per 500), so
//!   the run knows every id and `dateUpdated`; a contact is written when it is new since the
//!   last run, or its `dateUpdated` differs from the one that run saw ([`Delta::wants`]). With
//!   the overlap (`--overlap`, search indexing lags), contacts updated after the watermark
//!   minus the overlap are the candidates; one the last run already wrote with the same
//!   `dateUpdated` is not written again, and one whose change reached the index later than
//!   the overlap is still caught because its `dateUpdated` differs from the stored one.
//! - tasks are listed in full through the location task search (100 a request) and compared
//!   with the last run's task hashes: new or changed tasks are written, gone ones are deleted;
//! - notes (and appointments) cost one request per contact, so they are fetched only for the
//!   contacts written: a note added to a contact that did not otherwise change is missed
//!   until the next full run (`--full-every`).
//!
//! A run is one job (`<dataset>:<run>`) in the state database, so chunks commit and resume as
//! in any export. What it saw (contact ids per chunk, the task set) is committed with its
//! chunks; it becomes the next run's baseline, and its start the next watermark, only in the
//! transaction that finishes the run. A killed run is resumed by the next invocation under
//! the same run name and watermark: nothing between two runs is skipped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::fanout::{FanOut, Outcome};
use super::output::{Layout, OutputDir};
use super::plan::{ExportPlan, IncrementalPlan};
use crate::api::pages::epoch_ms;
use crate::exit::{self, Result};
use crate::sink::Store;
use crate::state::{Baseline, IdSet, IncrRun, JobStatus, StateDb};

/// The table of deletions an incremental export writes beside the data.
pub const DELETED_TABLE: &str = "deleted";

/// The run-wide part of an incremental export.
pub(crate) struct RunIncr {
    pub dataset: String,
    pub run: IncrRun,
    /// The run was started by an earlier invocation and is resumed.
    pub resumed: bool,
    pub plan: IncrementalPlan,
    /// Contacts listed and left out because they did not change.
    pub unchanged: AtomicU64,
    /// Contacts written because their change reached the search index after the overlap.
    pub late: AtomicU64,
    /// Rows of the deleted table (contacts and tasks).
    pub deleted_contacts: AtomicU64,
    pub deleted_tasks: AtomicU64,
    /// Tasks listed and left out because they did not change.
    pub tasks_unchanged: AtomicU64,
}

/// `20261126T020000Z`: sortable, and free of `:` (which Hadoop paths refuse).
pub fn run_name(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// The run this invocation works on: the dataset's unfinished run (resumed as it was), or a
/// new one named after now, later than every earlier run of the dataset.
fn pick_run(db: &mut StateDb, dataset: &str, plan: &IncrementalPlan) -> Result<RunIncr> {
    let (run, resumed) = match db.open_run(dataset)? {
        Some(run) => (run, true),
        None => {
            let mut ms = chrono::Utc::now().timestamp_millis();
            let latest = db.latest_run(dataset)?;
            // Two runs within one second would share a name: the later one moves on.
            while latest
                .as_deref()
                .is_some_and(|l| run_name(ms).as_str() <= l)
            {
                ms += 1_000;
            }
            let name = run_name(ms);
            let run = IncrRun {
                job: format!("{dataset}:{name}"),
                run: name,
                started_ms: chrono::Utc::now().timestamp_millis(),
            };
            (run, false)
        }
    };
    let incr = RunIncr {
        dataset: dataset.to_string(),
        run,
        resumed,
        plan: plan.clone(),
        unchanged: AtomicU64::new(0),
        late: AtomicU64::new(0),
        deleted_contacts: AtomicU64::new(0),
        deleted_tasks: AtomicU64::new(0),
        tasks_unchanged: AtomicU64::new(0),
    };
    Ok(incr)
}

/// What one location's run compares with: the last committed run's baseline, and whether
/// this run exports the location in full.
pub(crate) struct Delta {
    pub full: bool,
    /// Watermark minus overlap: contacts updated since are candidates.
    pub since_ms: i64,
    pub baseline: Baseline,
}

impl Delta {
    /// The location's delta for this run (full without a baseline or when the last full run
    /// is older than `--full-every`).
    pub fn load(db: &StateDb, incr: &RunIncr, location: &str) -> Result<Delta> {
        let baseline = db.baseline(&incr.dataset, location)?;
        let full = is_full(incr, baseline.as_ref());
        let baseline = baseline.unwrap_or_default();
        let since_ms = baseline.watermark_ms - incr.plan.overlap.as_millis() as i64;
        Ok(Delta {
            full,
            since_ms,
            baseline,
        })
    }

    /// Whether a listed contact goes into this run's output: always in a full run; in a
    /// delta when it is new since the last run or its `dateUpdated` is not the one the last
    /// run saw (a candidate of the overlap that the last run already wrote is left out).
    pub fn wants(&self, incr: &RunIncr, record: &Value) -> bool {
        if self.full {
            return true;
        }
        let id = record.get("id").and_then(Value::as_str).unwrap_or("");
        let updated = updated_ms(record);
        match self.baseline.contacts.get(id) {
            None => true,
            Some(seen) if seen == updated => {
                incr.unchanged.fetch_add(1, Ordering::Relaxed);
                false
            }
            Some(_) => {
                if updated < self.since_ms {
                    incr.late.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(contact_id = id, "A change older than the overlap reached the search index late; written now.");
                }
                true
            }
        }
    }

    /// Whether a listed task goes into this run's output (`hash`: [`task_hash`]).
    pub fn wants_task(&self, incr: &RunIncr, id: &str, hash: i64) -> bool {
        let same = !self.full
            && self
                .baseline
                .tasks
                .as_ref()
                .is_some_and(|t| t.get(id) == Some(hash));
        if same {
            incr.tasks_unchanged.fetch_add(1, Ordering::Relaxed);
        }
        !same
    }
}

/// Whether this run exports a location in full: it has no baseline, or its last full run is
/// older than `--full-every`. Fixed for the run (its start and the baseline do not change
/// until it finishes), so a resumed run decides the same.
fn is_full(incr: &RunIncr, baseline: Option<&Baseline>) -> bool {
    match (baseline, incr.plan.full_every) {
        (None, _) => true,
        (Some(b), Some(every)) => incr.run.started_ms - b.last_full_ms >= every.as_millis() as i64,
        (Some(_), None) => false,
    }
}

/// The run this invocation works on (see [`pick_run`]), after `--restart` forgot the
/// dataset; and whether the output folder is new to the dataset, for the claim.
pub(crate) async fn open(
    db: &mut StateDb,
    plan: &ExportPlan,
    server: &str,
    ip: &IncrementalPlan,
    store: &Store,
) -> Result<(RunIncr, JobStatus)> {
    let dataset = plan.dataset_key(server);
    if plan.restart {
        // Removing committed parts needs only the store: their paths are recorded whole.
        let out = OutputDir {
            root: PathBuf::new(),
            store: store.clone(),
            layout: Layout::Flat,
            folders: Vec::new(),
        };
        for job in db.forget_dataset(&dataset)? {
            out.remove_parts(&db.parts(&job)?).await;
            db.reset_job(&job)?;
        }
    }
    let status = if db.latest_run(&dataset)?.is_some() {
        JobStatus::Resuming
    } else {
        JobStatus::New
    };
    let incr = pick_run(db, &dataset, ip)?;
    Ok((incr, status))
}

/// Register the run (once the folder is claimed).
pub(crate) fn begin(db: &mut StateDb, incr: &RunIncr, description: &str) -> Result<()> {
    if db.begin_job(&incr.run.job, description)? == JobStatus::New {
        db.start_run(&incr.dataset, &incr.run)?;
    }
    Ok(())
}

/// What a finished run says in the summary.
pub(crate) struct Finished {
    pub mode: String,
    pub unchanged: u64,
}

/// The locations to leave out so that the run can finish for the others: those refused
/// access (their token, or the app uninstalled there: exit 3), which no rerun fixes. `None`
/// keeps the run open for the next invocation to resume: when something else failed or
/// stopped the run, or when no location finished.
pub(crate) fn refused_locations(fan: &FanOut) -> Option<Vec<(String, String)>> {
    if fan.stop.is_some() {
        return None;
    }
    let (mut refused, mut finished) = (Vec::new(), 0);
    for (location, outcome) in &fan.outcomes {
        match outcome {
            Outcome::Finished => finished += 1,
            Outcome::Failed(e) if e.exit_code() == exit::AUTH => {
                refused.push((location.clone(), e.root().to_string()));
            }
            _ => return None,
        }
    }
    (finished > 0 && !refused.is_empty()).then_some(refused)
}

/// Finish a run for `locations` (all of the run's, or those left when some were refused
/// access, named in `left_out`): the manifests (the run's own under `_manifests/`, and
/// `_manifest.json` for the latest run), then, in one transaction, the new baselines and
/// watermarks of `locations` and the run marked finished. A location left out keeps its
/// baseline, so its next run picks up from its last finished one.
pub(crate) async fn finish(
    db: &mut StateDb,
    incr: &RunIncr,
    plan: &ExportPlan,
    (locations, left_out): (&[String], &[(String, String)]),
    out: &OutputDir,
    manifest: &mut Value,
    server: &str,
) -> Result<Finished> {
    let mut modes = Vec::new();
    for l in locations {
        let baseline = db.baseline(&incr.dataset, l)?;
        modes.push((l.clone(), is_full(incr, baseline.as_ref())));
    }
    let mut fields = manifest_fields(incr, plan, &modes);
    if !left_out.is_empty() {
        let left: Vec<Value> = left_out
            .iter()
            .map(|(l, why)| serde_json::json!({"location": l, "error": why}))
            .collect();
        fields.insert("left_out".into(), Value::Array(left));
    }
    let mode = fields["mode"].as_str().unwrap_or("delta").to_string();
    if let Some(m) = manifest.as_object_mut() {
        m.extend(fields);
    }
    // Shards of one agency may share the folder: the location set tells their manifests apart.
    let shard = plan.job_key(&plan.locations, server);
    let name = format!("_manifests/run={}-{}.json", incr.run.run, &shard[..8]);
    out.write_manifest_as(&name, manifest).await?;
    out.write_manifest(manifest).await?;
    db.promote_run(&incr.dataset, &incr.run, &modes)?;
    Ok(Finished {
        mode,
        unchanged: incr.unchanged.load(Ordering::Relaxed),
    })
}

/// A contact's `dateUpdated` in epoch ms (0 when it has none).
pub fn updated_ms(record: &Value) -> i64 {
    record.get("dateUpdated").and_then(epoch_ms).unwrap_or(0)
}

/// A stable 64-bit hash (FNV-1a) of a task's JSON, to tell a changed task from the stored one
/// across runs and versions of this program.
pub fn task_hash(task: &Value) -> i64 {
    let text = task.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The ids of a set the listing no longer answered: `baseline` minus `now`.
pub fn gone(baseline: &IdSet, now: &IdSet) -> Vec<String> {
    baseline.missing_from(now).map(str::to_string).collect()
}

/// What the manifest of an incremental run adds.
fn manifest_fields(
    incr: &RunIncr,
    plan: &ExportPlan,
    modes: &[(String, bool)],
) -> serde_json::Map<String, Value> {
    let mode = if modes.iter().all(|(_, full)| *full) {
        "full"
    } else if modes.iter().all(|(_, full)| !*full) {
        "delta"
    } else {
        "mixed"
    };
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut m = serde_json::Map::new();
    m.insert("run".into(), incr.run.run.clone().into());
    m.insert("mode".into(), mode.into());
    m.insert(
        "locations".into(),
        modes
            .iter()
            .map(|(l, full)| (l.clone(), Value::from(if *full { "full" } else { "delta" })))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    );
    m.insert(
        "watermark".into(),
        chrono::DateTime::from_timestamp_millis(incr.run.started_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    );
    m.insert("overlap_s".into(), incr.plan.overlap.as_secs().into());
    m.insert(
        "layout".into(),
        "table=<table>/location_id=<location>/run=<run>/part-NNNNN".into(),
    );
    m.insert("unchanged_contacts".into(), count(&incr.unchanged).into());
    m.insert("late_contacts".into(), count(&incr.late).into());
    m.insert(
        "deleted_contacts".into(),
        count(&incr.deleted_contacts).into(),
    );
    m.insert("deleted_tasks".into(), count(&incr.deleted_tasks).into());
    m.insert(
        "unchanged_tasks".into(),
        count(&incr.tasks_unchanged).into(),
    );
    m.insert("format".into(), plan.sink.format.extension().into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn incr(full_every: Option<Duration>) -> RunIncr {
        RunIncr {
            dataset: "ds".into(),
            run: IncrRun {
                run: run_name(10_000_000),
                job: "ds:r".into(),
                started_ms: 10_000_000,
            },
            resumed: false,
            plan: IncrementalPlan {
                overlap: Duration::from_secs(600),
                full_every,
            },
            unchanged: AtomicU64::new(0),
            late: AtomicU64::new(0),
            deleted_contacts: AtomicU64::new(0),
            deleted_tasks: AtomicU64::new(0),
            tasks_unchanged: AtomicU64::new(0),
        }
    }

    fn contact(id: &str, ms: i64) -> Value {
        let iso = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        json!({"id": id, "dateUpdated": iso})
    }

    #[test]
    fn a_delta_writes_new_and_changed_contacts_once() {
        let i = incr(None);
        let watermark = 5_000_000;
        let baseline = Baseline {
            watermark_ms: watermark,
            last_run: "r0".into(),
            last_full_ms: watermark,
            contacts: IdSet::from_unsorted(vec![
                ("same".into(), 1_000),
                ("overlap".into(), watermark - 1_000),
                ("changed".into(), 1_000),
                ("late".into(), 1_000),
            ]),
            tasks: None,
        };
        let full = is_full(&i, Some(&baseline));
        assert!(!full);
        let d = Delta {
            full,
            since_ms: watermark - 600_000,
            baseline,
        };
        assert!(d.wants(&i, &contact("new", 1)), "new since the last run");
        assert!(!d.wants(&i, &contact("same", 1_000)));
        // Seen by the last run inside the overlap, unchanged: not written twice.
        assert!(!d.wants(&i, &contact("overlap", watermark - 1_000)));
        assert!(d.wants(&i, &contact("changed", watermark + 5)));
        // A change older than the overlap that the index showed only now.
        assert!(d.wants(&i, &contact("late", watermark - 700_000)));
        assert_eq!(i.unchanged.load(Ordering::Relaxed), 2);
        assert_eq!(i.late.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn full_runs_come_first_and_every_n_days() {
        let b = Baseline {
            last_full_ms: 10_000_000 - 86_400_000,
            ..Baseline::default()
        };
        assert!(is_full(&incr(None), None), "a location's first run");
        assert!(!is_full(&incr(None), Some(&b)));
        assert!(is_full(&incr(Some(Duration::from_secs(86_400))), Some(&b)));
        assert!(!is_full(
            &incr(Some(Duration::from_secs(2 * 86_400))),
            Some(&b)
        ));
        assert_eq!(run_name(1_795_744_800_000), "20261127T020000Z");
        assert_eq!(task_hash(&json!({"a": 1})), task_hash(&json!({"a": 1})));
        assert_ne!(task_hash(&json!({"a": 1})), task_hash(&json!({"a": 2})));
    }
}
