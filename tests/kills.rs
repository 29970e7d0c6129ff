//! Runs killed with SIGKILL (or a failpoint's abort, which is the same to the state left
//! behind) and run again: the export resumes to the output an uninterrupted run gives; `load`
//! and `bulk` killed at random points under injected faults land every row once and send no
//! write twice, read back from the sandbox's store. Also: a failpoint name no reader knows is
//! an error, so no test here can pass because its failpoint silently never fired.
//!
//! Random kill points come from a seeded RNG whose seed each test prints;
//! `GHL_KILLS_SEED=<seed>` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ghl_etl::sandbox::{Sandbox, Stats, DEFAULT_TOKEN};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::export::{col, parts, read_parquet_file, strict_ecosend, strings};
use crate::load::{essence, export_csv, load_file_args, manifest_dir};
use crate::util::{
    describe, ghl_on, ghl_stderr, kill_when, quiet_config, read_csv, run_bin, sandbox,
};

/// The seed of a test's kill points: `GHL_KILLS_SEED` if set, else the clock's nanoseconds.
/// Printed, so that a failing run can be replayed.
fn seed() -> u64 {
    let seed = match std::env::var("GHL_KILLS_SEED") {
        Ok(s) => s.parse().expect("GHL_KILLS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("kill points seeded with {seed}: GHL_KILLS_SEED={seed} replays them");
    seed
}

/// `n` kill points in `range`, in increasing order.
fn kill_points(rng: &mut SmallRng, n: usize, range: std::ops::Range<u64>) -> Vec<u64> {
    let mut points: Vec<u64> = (0..n).map(|_| rng.random_range(range.clone())).collect();
    points.sort();
    points
}

/// The command line of the resume tests: CSV (compared byte for byte), parts of 200 contacts.
fn export_cli_args<'a>(
    location: &'a str,
    out: &'a str,
    state: &'a str,
    format: &'a str,
) -> Vec<&'a str> {
    vec![
        "export",
        "--location",
        location,
        "--out",
        out,
        "--state",
        state,
        "--format",
        format,
        "--source",
        "list",
        "--part-rows",
        "200",
        "--rate",
        "off",
        "--quiet",
    ]
}

/// Run the binary's export against `sb`; returns its exit status and a description.
async fn export_bin(
    sb: &Sandbox,
    out: &Path,
    failpoint: Option<&str>,
) -> (std::process::ExitStatus, String) {
    export_bin_with(sb, out, failpoint, None).await
}

async fn export_bin_with(
    sb: &Sandbox,
    out: &Path,
    failpoint: Option<&str>,
    mapping: Option<&Path>,
) -> (std::process::ExitStatus, String) {
    export_bin_as(sb, out, failpoint, mapping, "csv").await
}

async fn export_bin_as(
    sb: &Sandbox,
    out: &Path,
    failpoint: Option<&str>,
    mapping: Option<&Path>,
    format: &'static str,
) -> (std::process::ExitStatus, String) {
    let out = out.to_path_buf();
    let mapping = mapping.map(|m| m.display().to_string());
    let url = sb.url();
    let location = sb.location_ids()[0].clone();
    let failpoint = failpoint.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let out_s = out.display().to_string();
        let state = out.join(".state.sqlite").display().to_string();
        let mut args = export_cli_args(&location, &out_s, &state, format);
        if let Some(m) = mapping.as_deref() {
            args.extend(["--mapping", m]);
        }
        let mut env = vec![("GHL_BASE_URL", url.as_str()), ("GHL_TOKEN", DEFAULT_TOKEN)];
        if let Some(f) = failpoint.as_deref() {
            env.push(("GHL_ETL_FAILPOINT", f));
        }
        let o = run_bin(&args, &env, out.parent().unwrap());
        (o.status, describe(&args, out.parent().unwrap(), &o))
    })
    .await
    .unwrap()
}

/// Every output file (relative path -> bytes), temporary files included so leftovers show.
fn snapshot(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    for table in ["contacts", "tasks", "notes", "rejects/contacts"] {
        if let Ok(d) = std::fs::read_dir(out.join(table)) {
            for e in d {
                let p = e.unwrap().path();
                m.insert(
                    format!("{table}/{}", p.file_name().unwrap().to_string_lossy()),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    m
}

/// An export killed by each failpoint (mid-chunk, before and after a commit), with the default
/// mapping and with a strict one that rejects rows, and rerun: every output file, reject files
/// included, is byte for byte an uninterrupted run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_export_resumes_to_the_same_output_as_a_clean_run() {
    let sb = sandbox(quiet_config(1_000)).await;
    let dir = tempfile::tempdir().unwrap();
    // The default mapping (contacts, tasks, notes), and a strict one that rejects rows, so the
    // reject files are shown to resume exactly too (exit 1: rows were rejected).
    let strict = strict_ecosend(dir.path());
    for (m, mapping, code) in [("default", None, 0), ("strict", Some(strict.as_path()), 1)] {
        let clean = dir.path().join(format!("clean-{m}"));
        let (status, d) = export_bin_with(&sb, &clean, None, mapping).await;
        assert_eq!(status.code(), Some(code), "{d}");
        let want = snapshot(&clean);
        assert_eq!(
            want.keys().filter(|k| k.starts_with("contacts/")).count(),
            5,
            "{:?}",
            want.keys()
        );
        if mapping.is_some() {
            assert!(
                want.keys()
                    .filter(|k| k.starts_with("rejects/contacts/"))
                    .count()
                    >= 3,
                "{:?}",
                want.keys()
            );
        } else {
            assert!(
                want.keys().any(|k| k.starts_with("tasks/"))
                    && want.keys().any(|k| k.starts_with("notes/"))
            );
        }
        for (i, fp) in [
            "mid-chunk:300",
            "before-commit:1",
            "after-commit:2",
            "before-commit:5",
            "mid-chunk:900",
        ]
        .iter()
        .enumerate()
        {
            let out = dir.path().join(format!("killed-{m}-{i}"));
            let (status, d) = export_bin_with(&sb, &out, Some(fp), mapping).await;
            assert!(
                status.code() != Some(0) && status.code() != Some(1),
                "the failpoint {fp} killed the run:\n{d}"
            );
            let (status, d) = export_bin_with(&sb, &out, None, mapping).await;
            assert_eq!(
                status.code(),
                Some(code),
                "the rerun after {fp} finishes:\n{d}"
            );
            let got = snapshot(&out);
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "same files after {fp} ({m})"
            );
            for (k, v) in &want {
                assert!(got[k] == *v, "{k} differs after resuming from {fp} ({m})");
            }
        }
    }
    sb.shutdown().await;
}

/// An export (CSV, then Parquet) killed with SIGKILL once its second part file is written,
/// then rerun: every file is byte for byte an uninterrupted run's, and the contact ids are the
/// store's, in listing order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_resume_loses_and_repeats_nothing() {
    let mut cfg = quiet_config(3_000);
    // Slow enough that the kill lands mid-run.
    cfg.latency = std::time::Duration::from_millis(2);
    let sb = sandbox(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "parquet"] {
        let clean = dir.path().join(format!("clean-{format}"));
        let (status, d) = export_bin_as(&sb, &clean, None, None, format).await;
        assert!(status.success(), "{d}");
        let want = snapshot(&clean);
        let out = dir.path().join(format!("killed-{format}"));
        let url = sb.url();
        let location = sb.location_ids()[0].clone();
        let out2 = out.clone();
        // Start, wait for the second committed part file, kill -9.
        tokio::task::spawn_blocking(move || {
            let out_s = out2.display().to_string();
            let state = out2.join(".state.sqlite").display().to_string();
            let mut child = std::process::Command::new(crate::util::bin())
                .args(export_cli_args(&location, &out_s, &state, format))
                .env("GHL_BASE_URL", &url)
                .env("GHL_TOKEN", DEFAULT_TOKEN)
                .spawn()
                .unwrap();
            let first = out2.join("contacts").join(format!("part-00001.{format}"));
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !first.exists()
                && std::time::Instant::now() < deadline
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(std::time::Duration::from_millis(5)); // poll interval, not synchronisation
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the export was still running when killed"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        })
        .await
        .unwrap();
        let (status, d) = export_bin_as(&sb, &out, None, None, format).await;
        assert!(status.success(), "{d}");
        // Every table, byte for byte, equals an uninterrupted run's.
        let got = snapshot(&out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "same files ({format})"
        );
        for table in ["contacts/", "tasks/", "notes/"] {
            assert!(got.keys().any(|k| k.starts_with(table)), "{table} written");
        }
        for (k, v) in &want {
            assert!(got[k] == *v, "{k} differs after the kill and resume");
        }
        let mut ids = Vec::new();
        for p in parts(&out, "contacts", format) {
            ids.extend(match format {
                "csv" => {
                    let (h, rows) = read_csv(&p);
                    let c = col(&h, "id");
                    rows.into_iter().map(|r| r[c].clone()).collect::<Vec<_>>()
                }
                _ => strings(&read_parquet_file(&p), "id")
                    .into_iter()
                    .map(Option::unwrap)
                    .collect(),
            });
        }
        assert_eq!(ids, sb.store().contact_ids(&sb.location_ids()[0]));
    }
    sb.shutdown().await;
}

/// A rerun whose columns differ from those the killed run recorded (a custom field renamed in
/// between) stops with exit 2, naming the table and the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_refuses_columns_that_changed_since_the_export_started() {
    let sb = sandbox(quiet_config(600)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (status, d) = export_bin(&sb, &out, Some("after-commit:1")).await;
    assert!(status.code() != Some(0), "{d}");
    // As if a custom field had been renamed in GHL between the two runs.
    let conn = rusqlite::Connection::open(out.join(".state.sqlite")).unwrap();
    let changed = conn
        .execute(
            "UPDATE schemas SET columns = columns || ',Old Field:string' WHERE tbl = 'contacts'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let (status, d) = export_bin(&sb, &out, None).await;
    assert_eq!(status.code(), Some(2), "{d}");
    assert!(
        d.contains("columns of table contacts changed") && d.contains("Old Field"),
        "{d}"
    );
    sb.shutdown().await;
}

/// A misspelt `GHL_ETL_FAILPOINT` stops the run with exit 2, naming the value and the known
/// failpoints, before anything is written: in an export (which reads the export's points), in
/// an export with a count that is not a number, and in a command that only sends requests
/// (the client reads `panic-in-request` on every request). A known name, for contrast, lets
/// an `auth check` run as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_failpoint_name_stops_the_run() {
    let sb = sandbox(quiet_config(50)).await;
    let dir = tempfile::tempdir().unwrap();
    for bogus in ["mid-chunck:3", "before-commit:x"] {
        let out = dir.path().join(bogus.replace(':', "-"));
        let (status, d) = export_bin(&sb, &out, Some(bogus)).await;
        assert_eq!(status.code(), Some(2), "{d}");
        assert!(
            d.contains(&format!("GHL_ETL_FAILPOINT=\"{bogus}\" names no failpoint"))
                && d.contains("mid-chunk:N, mid-upload, panic-in-request"),
            "{d}"
        );
        assert!(parts(&out, "contacts", "csv").is_empty(), "{d}");
    }
    let location = sb.location_ids()[0].clone();
    let auth = |failpoint: &'static str| {
        let (url, cwd, location) = (sb.url(), dir.path().to_path_buf(), location.clone());
        tokio::task::spawn_blocking(move || {
            let args = ["auth", "check", "--location", location.as_str()];
            let env = [
                ("GHL_BASE_URL", url.as_str()),
                ("GHL_TOKEN", DEFAULT_TOKEN),
                ("GHL_ETL_FAILPOINT", failpoint),
            ];
            let o = run_bin(&args, &env, &cwd);
            (o.status.code(), describe(&args, &cwd, &o))
        })
    };
    let (code, d) = auth("panic-in-requests").await.unwrap();
    assert_eq!(code, Some(2), "{d}");
    assert!(
        d.contains("GHL_ETL_FAILPOINT=\"panic-in-requests\" names no failpoint"),
        "{d}"
    );
    let (code, d) = auth("mid-upload").await.unwrap();
    assert_eq!(code, Some(0), "a known failpoint that never comes up: {d}");
    sb.shutdown().await;
}

/// What a task or note is, ids and timestamps aside: comparable across locations. (A note's
/// title is not carried: the API writes only its body.)
fn child_essence(table: &str, r: &Value) -> String {
    match table {
        "tasks" => format!(
            "{}|{}|{}|{}",
            r["title"], r["body"], r["dueDate"], r["completed"]
        ),
        _ => r["body"].to_string(),
    }
}

/// The ids (`id` column) of a table of an export folder (CSV); asserts each is there once.
fn export_ids(export: &Path, table: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(export.join(table)).unwrap() {
        let (h, rows) = read_csv(&e.unwrap().path());
        let id = col(&h, "id");
        ids.extend(rows.into_iter().map(|r| r[id].clone()));
    }
    assert_eq!(
        ids.len(),
        ids.iter().collect::<BTreeSet<_>>().len(),
        "{table}"
    );
    ids
}

/// A task's or note's id -> (its contact, what it is), for every one in `location`.
fn records(sb: &Sandbox, location: &str, table: &str) -> BTreeMap<String, (String, String)> {
    let mut m = BTreeMap::new();
    for c in sb.store().contact_ids(location) {
        let list = match table {
            "tasks" => sb.store().tasks(&c),
            _ => sb.store().notes(&c),
        };
        for r in list {
            let id = r["id"].as_str().unwrap().to_string();
            assert!(m
                .insert(id, (c.clone(), child_essence(table, &r)))
                .is_none());
        }
    }
    m
}

/// Asserts that a load of `export` (an export folder of A's location) into B, with its report
/// in `report`, landed every input row exactly once, by ids: no row failed; the report's
/// (table, source id) pairs are the export's, each once; B's contacts are exactly the report's
/// target contacts; B's tasks and notes are exactly the report's target records, one per
/// source record, each on the contact its source's contact became and equal to its source;
/// and the sandbox applied no task or note create besides them. `why` is shown on failure.
/// Answers each target contact's source contacts (several when B's duplicate rule merged
/// them).
pub(crate) fn landed_once(
    (a, la): (&Sandbox, &str),
    (b, lb): (&Sandbox, &str),
    export: &Path,
    report: &Path,
    why: &str,
) -> BTreeMap<String, Vec<String>> {
    let failed: Vec<String> = ["failed.csv", "failed-tasks.csv", "failed-notes.csv"]
        .iter()
        .filter(|f| report.join(f).exists())
        .flat_map(|f| read_csv(&report.join(f)).1)
        .map(|r| r.join(","))
        .collect();
    assert!(failed.is_empty(), "rows failed: {failed:#?}\n{why}");
    let ok = read_csv(&report.join("succeeded.csv")).1;
    let lines: Vec<(String, String)> = ok.iter().map(|r| (r[0].clone(), r[3].clone())).collect();
    let reported: BTreeSet<(String, String)> = lines.iter().cloned().collect();
    assert_eq!(reported.len(), lines.len(), "a row reported twice\n{why}");
    let input: BTreeSet<(String, String)> = ["contacts", "tasks", "notes"]
        .iter()
        .flat_map(|t| {
            export_ids(export, t)
                .into_iter()
                .map(|id| (t.to_string(), id))
        })
        .collect();
    assert_eq!(reported, input, "one report line per input row\n{why}");

    let mut sources_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut target_of: BTreeMap<String, String> = BTreeMap::new();
    for r in ok.iter().filter(|r| r[0] == "contacts") {
        sources_of
            .entry(r[4].clone())
            .or_default()
            .push(r[3].clone());
        target_of.insert(r[3].clone(), r[4].clone());
    }
    let in_b: BTreeSet<String> = b.store().contact_ids(lb).into_iter().collect();
    let stray: Vec<&String> = in_b
        .iter()
        .filter(|id| !sources_of.contains_key(*id))
        .collect();
    let lost: Vec<&String> = sources_of.keys().filter(|id| !in_b.contains(*id)).collect();
    assert!(
        stray.is_empty() && lost.is_empty(),
        "B's contacts are the report's targets, none made twice: in B but in no report line \
         {stray:?}; in the report but not in B {lost:?}\n{:?}\n{why}",
        b.stats().faults
    );

    let stats = b.stats();
    for (table, kind) in [("tasks", "task_create"), ("notes", "note_create")] {
        let (of_a, of_b) = (records(a, la, table), records(b, lb, table));
        let made: BTreeMap<String, String> = ok
            .iter()
            .filter(|r| r[0] == table)
            .map(|r| (r[4].clone(), r[3].clone()))
            .collect();
        assert_eq!(
            made.len(),
            of_a.len(),
            "{table}: two rows name one record\n{why}"
        );
        assert_eq!(
            made.keys().collect::<BTreeSet<_>>(),
            of_b.keys().collect::<BTreeSet<_>>(),
            "{table}: B holds exactly the records the report names\n{why}"
        );
        for (target, source) in &made {
            let ((a_contact, a_is), (b_contact, b_is)) = (&of_a[source], &of_b[target]);
            assert_eq!(
                &target_of[a_contact], b_contact,
                "{table} {source} -> {target}"
            );
            assert_eq!(a_is, b_is, "{table} {source} -> {target}");
        }
        assert_eq!(
            stats.written(kind),
            of_b.len() as u64,
            "{kind}: {:?}\n{why}",
            stats.writes
        );
    }
    sources_of
}

/// The writes a load applies, one per input row: contacts, tasks, notes.
fn row_writes(s: &Stats) -> u64 {
    [
        "contact_upsert",
        "contact_create",
        "task_create",
        "note_create",
    ]
    .iter()
    .map(|k| s.written(k))
    .sum()
}

/// `load` of an export (contacts, tasks, notes) under 5% faults, killed with SIGKILL three
/// times at points drawn from a seeded RNG (between 5% and 85% of the rows' writes, so in any
/// phase, with writes in flight), each time run again, then to the end: every input row
/// landed exactly once ([`landed_once`]), and each contact that is one source's equals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_killed_at_random_points_under_faults_lands_every_row_once() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let a = sandbox(quiet_config(300)).await;
    let mut cfg_b = quiet_config(0);
    cfg_b.seed = 9;
    cfg_b.latency = std::time::Duration::from_millis(2);
    cfg_b.fault_rate = 0.05;
    let b = sandbox(cfg_b).await;
    let (la, lb) = (a.location_ids()[0].clone(), b.location_ids()[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export-of-a");
    export_csv(&a, &la, &export).await;
    let rows: u64 = ["contacts", "tasks", "notes"]
        .iter()
        .map(|t| export_ids(&export, t).len() as u64)
        .sum();
    let mapping = manifest_dir().join("mappings/migrate.toml");
    let args = load_file_args(
        &lb,
        dir.path(),
        &export,
        &mapping,
        &["--quiet", "--retry-max-delay", "0.2"],
    );
    let points = kill_points(&mut rng, 3, rows / 20..rows * 85 / 100);
    for &at in &points {
        kill_when(&b, args.clone(), dir.path(), move |s| row_writes(s) >= at).await;
    }
    let (code, _, d) = ghl_stderr(&b, args, dir.path()).await;
    let why = format!("seed {seed}, killed at {points:?} of {rows} writes\n{d}");
    assert_eq!(code, Some(0), "{why}");
    assert!(b.stats().faults_total() > 0, "faults were injected");
    let report = dir.path().join("report");
    let sources_of = landed_once((&a, &la), (&b, &lb), &export, &report, &why);
    for (target, sources) in &sources_of {
        let [one] = sources.as_slice() else { continue };
        let (c, d) = (a.store().contact(one), b.store().contact(target));
        assert_eq!(
            essence(&a, &la, &c.unwrap()),
            essence(&b, &lb, &d.unwrap()),
            "{one} -> {target}: {why}"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// `bulk workflow-add` of 200 contacts under 5% faults, killed with SIGKILL twice at points
/// drawn from a seeded RNG (a number of enrolments applied), then run to the end and once
/// more, read back from the sandbox's store: no contact is enrolled twice (the sandbox applied
/// exactly as many enrolments as it holds enrolled contacts); every row is in one report file;
/// every contact reported succeeded is enrolled, and the only others enrolled are rows
/// reported as lost answers (in flight at a kill, or answered by a cut-short body), which are
/// never resent; no one outside the list is enrolled; the last rerun sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_enrolment_killed_at_random_points_under_faults_enrols_no_one_twice() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut cfg = quiet_config(300);
    cfg.fault_rate = 0.05;
    cfg.latency = std::time::Duration::from_millis(5);
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let workflow = sb.store().workflow_ids(&location)[0].clone();
    let ids: Vec<String> = sb.store().contact_ids(&location)[..200].to_vec();
    let listed: BTreeSet<String> = ids.iter().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    crate::bulk::id_list(&list, &ids);
    let report = dir.path().join("report");
    let args: Vec<String> = [
        "bulk",
        "workflow-add",
        "--workflow",
        &workflow,
        "--input",
        &list.display().to_string(),
        "--location",
        &location,
        "--state",
        &dir.path().join("state.sqlite").display().to_string(),
        "--report",
        &report.display().to_string(),
        "--retry-max-delay",
        "0.2",
        "--concurrency",
        "2",
        "--quiet",
    ]
    .map(str::to_string)
    .to_vec();
    let points = kill_points(&mut rng, 2, 10..150);
    for &at in &points {
        kill_when(&sb, args.clone(), dir.path(), move |s| {
            s.written("workflow_add") >= at
        })
        .await;
    }
    let (_, d) = ghl_on(&sb, args.clone(), dir.path()).await;
    let why = format!("seed {seed}, killed at {points:?} enrolments\n{d}");
    let (ok, failed) = crate::bulk::reported(&report);
    let all: BTreeSet<String> = ok.iter().chain(failed.keys()).cloned().collect();
    assert_eq!(all, listed, "every row in a report file: {why}");
    assert_eq!(ok.len() + failed.len(), listed.len(), "and in one: {why}");
    assert!(ok.len() >= 160, "most rows succeeded: {why}");

    let stats = sb.stats();
    let now = crate::bulk::enrolled(&sb, &location, &workflow);
    let sent = stats.written("workflow_add");
    assert_eq!(sent, now.len() as u64, "a contact enrolled twice: {why}");
    let missing: Vec<&String> = ok.difference(&now).collect();
    assert!(
        missing.is_empty(),
        "reported but not enrolled: {missing:?}\n{why}"
    );
    let outside: Vec<&String> = now.difference(&listed).collect();
    assert!(
        outside.is_empty(),
        "enrolled but not listed: {outside:?}\n{why}"
    );
    for id in now.difference(&ok) {
        assert!(
            failed[id].starts_with(ghl_etl::job::once::LOST_ANSWER),
            "{id} is enrolled but failed with: {}\n{why}",
            failed[id]
        );
    }
    let (_, d) = ghl_on(&sb, args, dir.path()).await;
    assert_eq!(
        sb.stats().written("workflow_add"),
        sent,
        "a rerun enrols no one: {d}"
    );
    assert_eq!(crate::bulk::enrolled(&sb, &location, &workflow), now);
    assert_eq!(crate::bulk::reported(&report), (ok, failed), "{d}");
    sb.shutdown().await;
}
