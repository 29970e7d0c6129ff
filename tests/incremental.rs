//! `export --incremental` end to end through the binary against the sandbox: a full run,
//! changes made through the sandbox's write endpoints, then deltas that hold exactly the
//! changes and the deletions (read back from the Parquet partitions); a delta killed mid-way
//! and rerun, with nothing lost or repeated; and what a delta costs in requests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray};
use ghl_etl::api::Client;
use ghl_etl::sandbox::{Sandbox, DEFAULT_TOKEN};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};

use crate::util::{client, describe, quiet_config, run_bin, sandbox};

/// Run `export --incremental` into `out` (state beside it); answers the exit code, the
/// manifest of the run (when it finished) and a description for failures.
async fn export(
    sb: &Sandbox,
    out: &Path,
    extra: &[&str],
    failpoint: Option<&str>,
) -> (Option<i32>, Value, String) {
    export_as(sb, out, extra, failpoint, DEFAULT_TOKEN).await
}

/// [`export`] with `token`.
async fn export_as(
    sb: &Sandbox,
    out: &Path,
    extra: &[&str],
    failpoint: Option<&str>,
    token: &str,
) -> (Option<i32>, Value, String) {
    let first = sb.location_ids()[0].clone();
    let quiet = [&["--quiet"], extra].concat();
    export_of(sb, out, vec![first], &quiet, failpoint, token).await
}

/// `export --incremental` of `locations` into `out` (state beside it) with `token`, unpaced,
/// tasks and notes included; answers as [`export`] does.
async fn export_of(
    sb: &Sandbox,
    out: &Path,
    locations: Vec<String>,
    extra: &[&str],
    failpoint: Option<&str>,
    token: &str,
) -> (Option<i32>, Value, String) {
    let (out, url, token) = (out.to_path_buf(), sb.url(), token.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let failpoint = failpoint.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let out_s = out.display().to_string();
        let state = format!("{out_s}.state.sqlite");
        let mut args = vec![
            "export",
            "--incremental",
            "--out",
            &out_s,
            "--state",
            &state,
        ];
        for l in &locations {
            args.extend(["--location", l.as_str()]);
        }
        args.extend(["--with", "tasks,notes", "--rate", "off"]);
        args.extend(extra.iter().map(String::as_str));
        let mut env = vec![
            ("GHL_BASE_URL", url.as_str()),
            ("GHL_TOKEN", token.as_str()),
        ];
        if let Some(f) = failpoint.as_deref() {
            env.push(("GHL_ETL_FAILPOINT", f));
        }
        run_and_read_manifest(&args, &env, &out)
    })
    .await
    .unwrap()
}

/// Run the binary beside `out`; answers the exit code, the latest manifest in `out` (null
/// when there is none) and a description for failures.
fn run_and_read_manifest(
    args: &[&str],
    env: &[(&str, &str)],
    out: &Path,
) -> (Option<i32>, Value, String) {
    let cwd = out.parent().unwrap();
    let o = run_bin(args, env, cwd);
    let manifest = std::fs::read(out.join("_manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (o.status.code(), manifest, describe(args, cwd, &o))
}

/// A run that must succeed; answers its manifest.
async fn run_ok(sb: &Sandbox, out: &Path, extra: &[&str]) -> Value {
    let (code, manifest, d) = export(sb, out, extra, None).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(
        manifest["run"].is_string(),
        "a manifest names the run: {manifest}\n{d}"
    );
    manifest
}

/// The Parquet files of one table, location and run.
fn partition(out: &Path, table: &str, location: &str, run: &str) -> PathBuf {
    out.join(format!("table={table}"))
        .join(format!("location_id={location}"))
        .join(format!("run={run}"))
}

/// Every value of `column` in a partition's Parquet files (none when it has no file).
fn column(dir: &Path, column: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "a stray file {f:?}"
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch: RecordBatch = batch.unwrap();
            let a = batch
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no {column} in {f:?}"));
            let s = a
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("a string column");
            out.extend(
                (0..s.len())
                    .filter(|&i| s.is_valid(i))
                    .map(|i| s.value(i).to_string()),
            );
        }
    }
    out
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

/// Asserts no value repeats, and answers the values as a set.
fn once(v: Vec<String>, what: &str) -> BTreeSet<String> {
    let s = set(&v);
    assert_eq!(s.len(), v.len(), "{what}: a row written twice");
    s
}

fn run_name(m: &Value) -> String {
    m["run"].as_str().unwrap().to_string()
}

async fn update(c: &Client, loc: &str, id: &str, name: &str) {
    c.update_contact(loc, id, json!({"firstName": name}))
        .await
        .unwrap();
}

async fn add_task(c: &Client, loc: &str, id: &str, title: &str) -> String {
    let t = c
        .create_task(
            loc,
            id,
            json!({"title": title, "dueDate": "2027-01-01T00:00:00Z", "completed": false}),
        )
        .await
        .unwrap();
    t["task"]["id"].as_str().unwrap().to_string()
}

async fn add_note(c: &Client, loc: &str, id: &str, body: &str) -> String {
    let n = c.create_note(loc, id, json!({"body": body})).await.unwrap();
    n["note"]["id"].as_str().unwrap().to_string()
}

/// Ids of the tasks (or notes) of a contact, as the API answers now.
fn children(sb: &Sandbox, id: &str, table: &str) -> BTreeSet<String> {
    let list = match table {
        "tasks" => sb.store().tasks(id),
        _ => sb.store().notes(id),
    };
    list.iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_holds_exactly_the_changes_and_the_deletions() {
    let sb = sandbox(quiet_config(800)).await;
    let c = client(&sb, None);
    let loc = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&loc);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");

    // Updated just before the full run: inside the next run's overlap, already written.
    update(&c, &loc, &ids[10], "Before").await;
    let full = run_ok(&sb, &out, &[]).await;
    let r0 = run_name(&full);
    assert_eq!(full["mode"], "full", "{full}");
    let written = once(
        column(&partition(&out, "contacts", &loc, &r0), "id"),
        "full run",
    );
    assert_eq!(written, set(&ids), "a full run writes every contact");

    // The changes, through the API.
    let mut new = BTreeSet::new();
    for i in 0..3 {
        let contact = c
            .create_contact(
                &loc,
                json!({"firstName": format!("New{i}"), "email": format!("new{i}@example.com")}),
            )
            .await
            .unwrap();
        new.insert(contact.id.clone());
    }
    let first_new = new.iter().next().unwrap().clone();
    let new_task = add_task(&c, &loc, &first_new, "call the new one").await;
    let new_note = add_note(&c, &loc, &first_new, "met at the fair").await;
    let updated: Vec<String> = [100, 200, 300, 400, 500]
        .iter()
        .map(|&i| ids[i].clone())
        .collect();
    for id in &updated {
        update(&c, &loc, id, "Changed").await;
    }
    let note_on_updated = add_note(&c, &loc, &updated[0], "follow-up").await;
    let deleted: Vec<String> = [50, 150, 250, 350]
        .iter()
        .map(|&i| ids[i].clone())
        .collect();
    let mut deleted_tasks = BTreeSet::new();
    for id in &deleted {
        deleted_tasks.extend(children(&sb, id, "tasks"));
        assert!(c.delete_contact(&loc, id).await.unwrap());
    }
    // On contacts that did not otherwise change: a task (the full task listing sees it) and
    // a note (a delta cannot see it: adding a note leaves dateUpdated alone).
    let quiet = ids[600].clone();
    let task_on_quiet = add_task(&c, &loc, &quiet, "quiet task").await;
    let stamp = sb.store().contact(&ids[601]).unwrap()["dateUpdated"].clone();
    let note_on_quiet = add_note(&c, &loc, &ids[601], "quiet note").await;
    assert_eq!(
        sb.store().contact(&ids[601]).unwrap()["dateUpdated"],
        stamp,
        "the sandbox, like the spec, does not say a note updates its contact"
    );

    let delta = run_ok(&sb, &out, &[]).await;
    let r1 = run_name(&delta);
    assert!(r1 > r0, "runs sort in time: {r0} then {r1}");
    assert_eq!(delta["mode"], "delta", "{delta}");
    let contacts = once(
        column(&partition(&out, "contacts", &loc, &r1), "id"),
        "delta contacts",
    );
    let want: BTreeSet<String> = new.iter().cloned().chain(updated.iter().cloned()).collect();
    assert_eq!(contacts, want, "exactly the new and updated contacts");

    let tasks = once(
        column(&partition(&out, "tasks", &loc, &r1), "id"),
        "delta tasks",
    );
    let want_tasks: BTreeSet<String> = [new_task.clone(), task_on_quiet.clone()].into();
    assert_eq!(tasks, want_tasks, "exactly the new tasks");

    // Notes: all of each written contact's notes (the new ones among them), nothing else.
    let notes = once(
        column(&partition(&out, "notes", &loc, &r1), "id"),
        "delta notes",
    );
    let want_notes: BTreeSet<String> = want
        .iter()
        .flat_map(|id| children(&sb, id, "notes"))
        .collect();
    assert_eq!(notes, want_notes);
    assert!(notes.contains(&new_note) && notes.contains(&note_on_updated));
    assert!(
        !notes.contains(&note_on_quiet),
        "documented: a note alone does not make a delta"
    );

    let gone_dir = partition(&out, "deleted", &loc, &r1);
    let kinds = column(&gone_dir, "kind");
    let gone = column(&gone_dir, "id");
    let gone_contacts: BTreeSet<String> = gone
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| *k == "contact")
        .map(|(i, _)| i.clone())
        .collect();
    let gone_tasks: BTreeSet<String> = gone
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| *k == "task")
        .map(|(i, _)| i.clone())
        .collect();
    assert_eq!(gone_contacts, set(&deleted));
    assert_eq!(gone_tasks, deleted_tasks);
    assert_eq!(gone.len(), gone_contacts.len() + gone_tasks.len());
    assert!(column(&gone_dir, "first_missed_run")
        .iter()
        .all(|r| *r == r1));
    assert!(column(&gone_dir, "location").iter().all(|l| *l == loc));
    assert_eq!(delta["deleted_contacts"], deleted.len());

    // Nothing changed since: the next delta writes nothing and deletes nothing.
    let quiet_run = run_ok(&sb, &out, &[]).await;
    let r2 = run_name(&quiet_run);
    for table in ["contacts", "tasks", "notes", "deleted"] {
        assert!(
            column(&partition(&out, table, &loc, &r2), "id").is_empty(),
            "{table} in {r2}"
        );
    }
    // The earlier runs' files stay where they were.
    assert_eq!(
        column(&partition(&out, "contacts", &loc, &r1), "id").len(),
        want.len()
    );

    // --full-every makes a full snapshot again, and says so.
    let again = run_ok(&sb, &out, &["--full-every", "0.000001"]).await;
    assert_eq!(again["mode"], "full");
    let live = sb.store().contact_ids(&loc);
    assert_eq!(
        once(
            column(&partition(&out, "contacts", &loc, &run_name(&again)), "id"),
            "full"
        ),
        set(&live)
    );
    assert!(
        column(&partition(&out, "notes", &loc, &run_name(&again)), "id").contains(&note_on_quiet)
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_task_search_scope_a_delta_fetches_the_tasks_of_written_contacts() {
    let mut cfg = quiet_config(300);
    cfg.tokens = vec!["plain=contacts.readonly,locations/customFields.readonly"
        .parse::<ghl_etl::sandbox::TokenSpec>()
        .unwrap()];
    let sb = sandbox(cfg).await;
    let c = client(&sb, None);
    let loc = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&loc);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    let (code, full, d) = export_as(&sb, &out, &[], None, "plain").await;
    assert_eq!(code, Some(0), "{d}");
    let all_tasks: usize = ids.iter().map(|id| children(&sb, id, "tasks").len()).sum();
    assert_eq!(
        column(&partition(&out, "tasks", &loc, &run_name(&full)), "id").len(),
        all_tasks
    );

    let changed = [ids[3].clone(), ids[30].clone()];
    for id in &changed {
        update(&c, &loc, id, "Changed").await;
    }
    add_task(&c, &loc, &ids[40], "not seen without the scope").await;
    add_task(&c, &loc, &changed[0], "seen with its contact").await;
    let (code, delta, d) = export_as(&sb, &out, &[], None, "plain").await;
    assert_eq!(code, Some(0), "{d}");
    let tasks = once(
        column(&partition(&out, "tasks", &loc, &run_name(&delta)), "id"),
        "tasks",
    );
    let want: BTreeSet<String> = changed
        .iter()
        .flat_map(|id| children(&sb, id, "tasks"))
        .collect();
    assert_eq!(tasks, want, "all tasks of the written contacts, no others");
    assert_eq!(delta["deleted_tasks"], 0);
    sb.shutdown().await;
}

/// The flags of the kill tests: pages of 100, a chunk every 200 contacts.
const SMALL_CHUNKS: &[&str] = &["--page-size", "100", "--part-rows", "200"];

/// Ids of `table` in two runs' partitions together, each at most once.
fn in_runs(out: &Path, table: &str, loc: &str, runs: [&str; 2], what: &str) -> BTreeSet<String> {
    let ids: Vec<String> = runs
        .iter()
        .flat_map(|r| column(&partition(out, table, loc, r), "id"))
        .collect();
    once(ids, &format!("{what}: {table} of {runs:?}"))
}

/// A delta killed by each failpoint (after a commit, mid-chunk, before a commit) and rerun,
/// with contacts changed and tasks and notes added before the kill and while the run is down:
/// the rerun finishes the killed run (no third run), and that run and the next hold, between
/// them, every changed contact, every added task, and every note of each written contact,
/// each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_delta_reruns_without_gap_or_duplicate() {
    let sb = sandbox(quiet_config(1_000)).await;
    let c = client(&sb, None);
    let loc = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&loc);
    let dir = tempfile::tempdir().unwrap();
    // Commit 1 lists the tasks, 2 and 3 the first chunks of contacts; mid-chunk kills inside
    // the fourth chunk; before-commit leaves a finished but unrecorded part behind.
    for (i, failpoint) in ["after-commit:3", "mid-chunk:650", "before-commit:2"]
        .iter()
        .enumerate()
    {
        let out = dir.path().join(format!("lake-{i}"));
        let r0 = run_name(&run_ok(&sb, &out, SMALL_CHUNKS).await);

        // Changes spread over the whole listing; a task and a note on every third of them.
        let first: Vec<String> = (0..1_000).step_by(97).map(|k| ids[k].clone()).collect();
        let mut new_tasks = BTreeSet::new();
        for (k, id) in first.iter().enumerate() {
            update(&c, &loc, id, &format!("A{i}")).await;
            if k % 3 == 0 {
                new_tasks.insert(add_task(&c, &loc, id, &format!("task A{i}")).await);
                add_note(&c, &loc, id, &format!("note A{i}")).await;
            }
        }
        let (code, _, d) = export(&sb, &out, SMALL_CHUNKS, Some(failpoint)).await;
        assert!(
            code != Some(0) && code != Some(1),
            "{failpoint} killed the run:\n{d}"
        );

        // While the run is down: one change in a chunk it committed, one in a chunk it did
        // not, each with a new task and a new note.
        let early = ids[(i * 7) % 100 + 1].clone();
        let late = ids[990 - i].clone();
        for id in [&early, &late] {
            update(&c, &loc, id, &format!("B{i}")).await;
            new_tasks.insert(add_task(&c, &loc, id, &format!("task B{i}")).await);
            add_note(&c, &loc, id, &format!("note B{i}")).await;
        }

        let rerun = run_ok(&sb, &out, SMALL_CHUNKS).await;
        let r1 = run_name(&rerun);
        let runs: Vec<String> = std::fs::read_dir(
            out.join("table=contacts")
                .join(format!("location_id={loc}")),
        )
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
        assert_eq!(
            runs.len(),
            2,
            "the rerun finished the killed run, no third one: {runs:?}"
        );
        let got = once(
            column(&partition(&out, "contacts", &loc, &r1), "id"),
            failpoint,
        );
        for id in &first {
            assert!(got.contains(id), "{failpoint}: change to {id} lost");
        }
        assert!(
            got.contains(&late),
            "{failpoint}: the rerun listed the late chunk anew"
        );

        // The next run catches what changed in chunks committed before the kill, and writes
        // again nothing the killed run already wrote.
        let next = run_ok(&sb, &out, SMALL_CHUNKS).await;
        let r2 = run_name(&next);
        let both = [r1.as_str(), r2.as_str()];
        let union = in_runs(&out, "contacts", &loc, both, failpoint);
        assert!(
            union.contains(&early),
            "{failpoint}: no gap: the early change arrives"
        );
        let want: BTreeSet<String> = first
            .iter()
            .cloned()
            .chain([early.clone(), late.clone()])
            .collect();
        assert_eq!(union, want, "{failpoint}: r0 {r0}, r1 {r1}, r2 {r2}");
        assert_eq!(
            in_runs(&out, "tasks", &loc, both, failpoint),
            new_tasks,
            "{failpoint}: every new task once, no other"
        );
        let want_notes: BTreeSet<String> = want
            .iter()
            .flat_map(|id| children(&sb, id, "notes"))
            .collect();
        assert_eq!(
            in_runs(&out, "notes", &loc, both, failpoint),
            want_notes,
            "{failpoint}: every note of each written contact once, no other"
        );
    }
    sb.shutdown().await;
}

/// The benchmark of benches/README.md: requests of a delta after 1% of the contacts changed, as a
/// share of a full run's (run with `--nocapture` to see the figures). The requests are counted
/// by the sandbox, and each manifest's `requests` and contacts written agree with the
/// sandbox's figures; the delta holds exactly the changed contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_after_one_percent_changed_costs_under_five_percent_of_a_full_run() {
    let n = 5_000;
    let sb = sandbox(quiet_config(n)).await;
    let c = client(&sb, None);
    let loc = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&loc);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    assert_eq!(sb.stats().requests, 0);
    let full = run_ok(&sb, &out, &[]).await;
    let f = sb.stats().requests;
    let changed: BTreeSet<String> = ids.iter().step_by(100).cloned().collect();
    for id in &changed {
        update(&c, &loc, id, "Changed").await;
    }
    sb.reset_stats();
    let delta = run_ok(&sb, &out, &[]).await;
    let d = sb.stats().requests;
    // The manifests' figures are the sandbox's: requests answered, contacts written.
    for (m, requests, contacts) in [(&full, f, n), (&delta, d, changed.len())] {
        assert_eq!(m["requests"], requests, "{}: {m}", m["mode"]);
        assert_eq!(m["tables"]["contacts"], contacts, "{}: {m}", m["mode"]);
    }
    let share = d as f64 / f as f64;
    println!(
        "incremental share: {n} contacts, {} changed: full run {f} requests, delta {d} requests = {:.2}%",
        changed.len(),
        share * 100.0
    );
    assert_eq!(changed.len(), n / 100);
    assert_eq!(
        once(
            column(&partition(&out, "contacts", &loc, &run_name(&delta)), "id"),
            "delta"
        ),
        changed
    );
    assert!(
        share <= 0.05,
        "a delta costs {:.2}% of a full run",
        share * 100.0
    );
    sb.shutdown().await;
}

/// `export --incremental` of every location of `sb` with `token`, not quiet.
async fn export_all(sb: &Sandbox, out: &Path, token: &str) -> (Option<i32>, Value, String) {
    export_of(sb, out, sb.location_ids(), &[], None, token).await
}

/// A location refused access does not hold the others back: the run finishes without it
/// (exit 3, named in the manifest's `left_out`, none of its files kept), the next run gives
/// the others their delta, and once its access is back it picks up from its last finished
/// run (here none: a full snapshot), each contact once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_refused_access_is_left_out_and_the_others_go_on() {
    const PARTIAL: &str = "tok-partial";
    let cfg = ghl_etl::sandbox::SandboxConfig {
        locations: 3,
        tokens: vec![format!(
            "{PARTIAL}=contacts.readonly,contacts.write,locations/tasks.readonly,locations/customFields.readonly@0+1"
        )
        .parse()
        .unwrap()],
        ..quiet_config(60)
    };
    let sb = sandbox(cfg).await;
    let ids = sb.location_ids();
    let (l0, l2) = (ids[0].clone(), ids[2].clone());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lake");

    // Run 1: the third location answers 403.
    let (code, m1, d) = export_all(&sb, &out, PARTIAL).await;
    assert_eq!(code, Some(3), "{d}");
    assert!(d.contains("left out 1 refused access"), "{d}");
    let r1 = run_name(&m1);
    assert_eq!(m1["left_out"][0]["location"], l2.as_str(), "{m1}");
    assert_eq!(m1["locations"].as_object().unwrap().len(), 2, "{m1}");
    let c = |l: &str, run: &str| column(&partition(&out, "contacts", l, run), "id");
    assert_eq!(once(c(&l0, &r1), "run 1").len(), 60, "{d}");
    assert!(
        c(&l2, &r1).is_empty(),
        "no file of the refused location is kept"
    );

    // Run 2: a change in the first location shows; the third is still refused.
    let api = client(&sb, None);
    let changed = sb.store().contact_ids(&l0)[7].clone();
    update(&api, &l0, &changed, "Changed").await;
    let (code, m2, d) = export_all(&sb, &out, PARTIAL).await;
    assert_eq!(code, Some(3), "{d}");
    let r2 = run_name(&m2);
    assert_ne!(
        r1, r2,
        "a new run: the refused location did not keep the last one open"
    );
    assert_eq!(m2["locations"][l0.as_str()], "delta", "{m2}");
    assert_eq!(
        set(&c(&l0, &r2)),
        set(std::slice::from_ref(&changed)),
        "{d}"
    );

    // Run 3: access is back; the third location gets its full snapshot, the others nothing new.
    let (code, m3, d) = export_all(&sb, &out, DEFAULT_TOKEN).await;
    assert_eq!(code, Some(0), "{d}");
    let r3 = run_name(&m3);
    assert_eq!(m3["locations"][l2.as_str()], "full", "{m3}");
    assert_eq!(m3["mode"], "mixed", "{m3}");
    assert!(m3.get("left_out").is_none(), "{m3}");
    assert_eq!(once(c(&l2, &r3), "run 3").len(), 60, "{d}");
    assert!(c(&l0, &r3).is_empty(), "{d}");
    sb.shutdown().await;
}
