//! The load job end to end: the binary reads real files and writes into a sandbox over HTTP;
//! the sandbox's own store is then read to check what landed, exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ghl_etl::sandbox::{Hostile, Sandbox, DEFAULT_TOKEN};
use serde_json::Value;

use crate::util::{ghl_stderr, quiet_config, read_csv, run_bin, sandbox, sandbox_rate};

pub(crate) fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Live contacts of a location, by lower-cased email.
fn contacts_by_email(sb: &Sandbox, location: &str) -> BTreeMap<String, Value> {
    sb.store()
        .contact_ids(location)
        .into_iter()
        .filter_map(|id| sb.store().contact(&id))
        .filter_map(|c| {
            let e = c["email"].as_str()?.to_lowercase();
            Some((e, c))
        })
        .collect()
}

fn tags(c: &Value) -> BTreeSet<String> {
    c["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_lowercase))
        .collect()
}

/// A custom field's value on a contact, by the field's name.
fn custom(sb: &Sandbox, location: &str, c: &Value, name: &str) -> Option<Value> {
    let id = sb
        .store()
        .custom_fields(location)
        .into_iter()
        .find(|f| f["name"] == name)?["id"]
        .as_str()?
        .to_string();
    c["customFields"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id.as_str())
        .map(|f| f["value"].clone())
}

fn load_args(location: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = strings(&[
        "load",
        "--location",
        location,
        "--state",
        &dir.join("state.sqlite").display().to_string(),
        "--report",
        &dir.join("report").display().to_string(),
        "--rate",
        "off",
    ]);
    a.extend(strings(extra));
    a
}

/// `load_args` for a contacts file and a mapping.
pub(crate) fn load_file_args(
    location: &str,
    dir: &Path,
    contacts: &Path,
    mapping: &Path,
    extra: &[&str],
) -> Vec<String> {
    let (contacts, mapping) = (
        contacts.display().to_string(),
        mapping.display().to_string(),
    );
    let mut a = load_args(
        location,
        dir,
        &["--contacts", &contacts, "--mapping", &mapping],
    );
    a.extend(strings(extra));
    a
}

/// The shipped sample through the shipped mapping: the good rows land once with their tags and
/// custom field, the bad ones are in failed.csv with their line and reason; a rerun changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecosend_sample_loads_good_rows_once_and_reports_the_bad_ones() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sample = manifest_dir().join("samples/ecosend-contacts.csv");
    let mapping = manifest_dir().join("mappings/from-ecosend.toml");
    let args = load_file_args(&location, dir.path(), &sample, &mapping, &[]);
    let (code, _, d) = ghl_stderr(&sb, args.clone(), dir.path()).await;
    assert_eq!(code, Some(1), "rows failed, so exit 1:\n{d}");
    let check = |sb: &Sandbox| {
        let by_email = contacts_by_email(sb, &location);
        assert_eq!(sb.store().contact_ids(&location).len(), 5, "{by_email:?}");
        let ada = &by_email["ada.lovelace@example.org"];
        assert_eq!(
            tags(ada),
            BTreeSet::from(["newsletter".into(), "vip".into()])
        );
        assert_eq!(ada["phone"], "+447700900123");
        assert_eq!(
            custom(sb, &location, ada, "Signup Date"),
            Some(Value::String("2021-03-02".into()))
        );
        let grace = &by_email["grace.hopper@example.org"];
        assert_eq!(grace["firstName"], "Grace");
        assert_eq!(grace["companyName"], "Navy, US");
        assert!(tags(&by_email["katherine.johnson@example.org"]).is_empty());
    };
    check(&sb);
    let report = dir.path().join("report");
    let (h, ok) = read_csv(&report.join("succeeded.csv"));
    assert_eq!(h[..4], ["table", "input_file", "input_row", "key"]);
    assert_eq!(ok.len(), 5);
    let (h, failed) = read_csv(&report.join("failed.csv"));
    assert_eq!(h[0], "Email Address", "the input's own columns come first");
    assert_eq!(h[h.len() - 3..], ["input_file", "input_row", "error"]);
    let lines: Vec<&str> = failed.iter().map(|r| r[h.len() - 2].as_str()).collect();
    assert_eq!(
        lines,
        ["6", "8", "9"],
        "CSV line numbers, quoted newline counted"
    );
    assert!(failed[0][h.len() - 1].contains("email"), "{failed:?}");
    assert!(failed[2][h.len() - 1].contains("30/02/2021"), "{failed:?}");
    assert_eq!(failed[2][4], "Apollo\nGuidance", "own cells as read");

    // The rerun settles nothing new, writes nothing, and the reports stay one line a row.
    let writes_before = sb.stats().requests;
    let (code, stderr, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    assert!(stderr.contains("resumed"), "{d}");
    check(&sb);
    assert_eq!(read_csv(&report.join("succeeded.csv")).1.len(), 5);
    assert_eq!(read_csv(&report.join("failed.csv")).1.len(), 3);
    let spent = sb.stats().requests - writes_before;
    assert!(
        spent <= 1,
        "a settled load spends at most the custom-field read: {spent}"
    );
    sb.shutdown().await;
}

/// Export one location's contacts, tasks and notes as CSV with the binary.
pub(crate) async fn export_csv(sb: &Sandbox, location: &str, out: &Path) {
    let args = strings(&[
        "export",
        "--location",
        location,
        "--out",
        &out.display().to_string(),
        "--state",
        &out.join(".state.sqlite").display().to_string(),
        "--format",
        "csv",
        "--rate",
        "off",
        "--quiet",
    ]);
    let (code, _, d) = ghl_stderr(sb, args, out.parent().unwrap()).await;
    assert_eq!(code, Some(0), "{d}");
}

/// What a contact is, ids, timestamps, tasks and notes aside: comparable across locations.
pub(crate) fn essence(sb: &Sandbox, location: &str, c: &Value) -> Value {
    let names = [
        "Lead Score",
        "Favourite Colour",
        "Nickname",
        "Budget",
        "Referral Code",
    ];
    let customs: Vec<Value> = names
        .iter()
        .map(|n| match custom(sb, location, c, n) {
            Some(Value::String(s)) if s.is_empty() => Value::Null,
            // JSON has one kind of number: `8991` and `8991.0` are the same value.
            Some(Value::Number(x)) => serde_json::json!(x.as_f64()),
            v => v.unwrap_or(Value::Null),
        })
        .collect();
    // A load leaves empty text out (it never blanks a field), so "" and null are the same.
    let text = |k: &str| match &c[k] {
        Value::String(s) if s.is_empty() => Value::Null,
        v => v.clone(),
    };
    serde_json::json!({
        "firstName": text("firstName"), "lastName": text("lastName"), "phone": text("phone"),
        "companyName": text("companyName"), "city": text("city"), "country": text("country"),
        "tags": tags(c), "custom": customs,
    })
}

/// Export location A, load it into an empty location B (no custom fields: they are created)
/// with the shipped migrate mapping under 5% faults (some applied, then answered with an
/// error) and a rate limit: every input row landed exactly once, compared by ids
/// ([`crate::kills::landed_once`]: report lines, B's contacts, tasks and notes against the
/// export's ids and A's records); then contact by contact, and export by export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_a_location_under_faults_lands_everything_exactly_once() {
    let a = sandbox(quiet_config(2_000)).await;
    let mut cfg_b = quiet_config(0);
    cfg_b.seed = 7;
    // A fresh target: no custom fields until the load creates them.
    cfg_b.custom_fields = false;
    let b = sandbox(cfg_b).await;
    let (la, lb) = (a.location_ids()[0].clone(), b.location_ids()[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export-of-a");
    export_csv(&a, &la, &export).await;

    b.set_fault_rate(0.05);
    b.set_rate_limit(Some(sandbox_rate("1500/1s")));
    let mapping = manifest_dir().join("mappings/migrate.toml");
    let mut args = load_file_args(
        &lb,
        dir.path(),
        &export,
        &mapping,
        &["--retry-max-delay", "0.2", "--create-missing-fields"],
    );
    args.retain(|x| x != "--rate" && x != "off");
    args.extend(strings(&["--rate", "1500/1s", "--concurrency", "32"]));
    let (code, _, d) = ghl_stderr(&b, args, dir.path()).await;
    assert_eq!(code, Some(0), "nothing fails under retryable faults: {d}");
    b.set_fault_rate(0.0);

    let report = dir.path().join("report");
    let sources_of = crate::kills::landed_once((&a, &la), (&b, &lb), &export, &report, &d);
    // migrate.toml writes ten custom fields: each created once, before the first row.
    let stats = b.stats();
    assert_eq!(
        stats.written("custom_field_create"),
        10,
        "{:?}",
        stats.writes
    );
    assert!(
        sources_of.len() > 1_800,
        "most contacts are distinct people"
    );
    let mut merged = 0;
    for (target, sources) in &sources_of {
        let [one] = sources.as_slice() else {
            merged += 1;
            continue;
        };
        let c = a.store().contact(one).unwrap();
        let d = b.store().contact(target).unwrap();
        assert_eq!(
            essence(&a, &la, &c),
            essence(&b, &lb, &d),
            "{one} -> {target}"
        );
    }
    assert!(merged < 100, "{merged} merged contacts");

    // And as a user checks it: export B, compare the two exports column by column (the
    // columns the mapping carries), contact by contact.
    let export_b = dir.path().join("export-of-b");
    export_csv(&b, &lb, &export_b).await;
    let by_email = |dir: &Path| -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(dir.join("contacts")).unwrap() {
            let (h, rows) = read_csv(&e.unwrap().path());
            for r in rows {
                let row: BTreeMap<String, String> = h.iter().cloned().zip(r).collect();
                if !row["email"].is_empty() {
                    out.insert(row["email"].to_lowercase(), row);
                }
            }
        }
        out
    };
    let (ea, eb) = (by_email(&export), by_email(&export_b));
    // The columns the mapping carries.
    let carried = "firstName,lastName,phone,companyName,address1,city,state,postalCode,country,website,timezone,source,dnd,dateOfBirth,Lead Score,Favourite Colour,Signup Date,Background,Nickname,Budget,Alt Phone,Referral Code"
        .split(',');
    let single: BTreeSet<String> = sources_of
        .values()
        .filter(|s| s.len() == 1)
        .map(|s| s[0].clone())
        .collect();
    for (email, ra) in ea.iter().filter(|(_, r)| single.contains(&r["id"])) {
        let rb = &eb[email];
        for col in carried.clone() {
            assert_eq!(ra[col], rb[col], "{email}: column {col}");
        }
        let tags = |r: &BTreeMap<String, String>| -> BTreeSet<String> {
            r["tags"]
                .split(';')
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect()
        };
        assert_eq!(tags(ra), tags(rb), "{email}: tags");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// A custom field the target lacks fails the rows that carry a value for it, saying how to fix
/// it; with --create-missing-fields it is created once, before the first row, and written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_custom_fields_fail_rows_or_are_created_once() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    std::fs::write(
        &input,
        "email,ref\na@x.example,R-1\nb@x.example,\nc@x.example,R-3\n",
    )
    .unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n[contacts]\n[[contacts.columns]]\nname = \"email\"\n\
         [[contacts.columns]]\nname = 'customFields.\"Partner Ref\"'\nfrom = \"ref\"\n",
    )
    .unwrap();
    let base = |state: &str, extra: &[&str]| {
        let mut a = load_file_args(&location, &dir.path().join(state), &input, &mapping, &[]);
        a.extend(strings(extra));
        a
    };
    let (code, _, d) = ghl_stderr(&sb, base("one", &[]), dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    let (_, failed) = read_csv(&dir.path().join("one/report/failed.csv"));
    assert_eq!(failed.len(), 2, "the rows with a value fail: {failed:?}");
    assert!(
        failed[0]
            .last()
            .unwrap()
            .contains("--create-missing-fields"),
        "{failed:?}"
    );

    let (code, stderr, d) =
        ghl_stderr(&sb, base("two", &["--create-missing-fields"]), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(
        stderr.contains("Partner Ref"),
        "the summary names the created field: {d}"
    );
    assert_eq!(sb.stats().written("custom_field_create"), 1);
    let by_email = contacts_by_email(&sb, &location);
    assert_eq!(
        custom(&sb, &location, &by_email["a@x.example"], "Partner Ref"),
        Some(Value::String("R-1".into()))
    );
    assert_eq!(
        custom(&sb, &location, &by_email["b@x.example"], "Partner Ref"),
        None
    );
    sb.shutdown().await;
}

/// `--verify` reads each written contact back: GHL ignores `gender` on an upsert that matches an
/// existing contact, and the report says so instead of claiming the field was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_fields_that_did_not_stick() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    std::fs::write(
        &input,
        "email,first,gender\nv@x.example,Vera,female\nv@x.example,Vera,male\n",
    )
    .unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n[contacts]\n[[contacts.columns]]\nname = \"email\"\n\
         [[contacts.columns]]\nname = \"firstName\"\nfrom = \"first\"\n\
         [[contacts.columns]]\nname = \"gender\"\n",
    )
    .unwrap();
    let mut args = load_file_args(&location, dir.path(), &input, &mapping, &["--verify"]);
    args.extend(strings(&["--concurrency", "1"]));
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let (h, ok) = read_csv(&dir.path().join("report/succeeded.csv"));
    let (action, note) = (
        h.iter().position(|c| c == "action").unwrap(),
        h.iter().position(|c| c == "note").unwrap(),
    );
    assert_eq!(ok[0][action], "created");
    assert_eq!(ok[0][note], "", "the first write stuck: {ok:?}");
    assert_eq!(ok[1][action], "updated");
    assert!(
        ok[1][note].contains("did not stick: gender"),
        "the ignored gender is reported: {ok:?}"
    );
    sb.shutdown().await;
}

/// `--dry-run` reads, maps and counts, and writes nothing; `--mode delete` needs `--yes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_and_delete_needs_yes() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sample = manifest_dir().join("samples/ecosend-contacts.csv");
    let mapping = manifest_dir().join("mappings/from-ecosend.toml");
    let base = load_file_args(&location, dir.path(), &sample, &mapping, &[]);
    let mut dry = base.clone();
    dry.push("--dry-run".into());
    let (code, stderr, d) = ghl_stderr(&sb, dry, dir.path()).await;
    assert_eq!(code, Some(1), "three rows would fail: {d}");
    assert!(
        stderr.contains("Dry run: nothing was written. 8 input rows"),
        "{d}"
    );
    assert!(stderr.contains("would write           5"), "{d}");
    assert!(stderr.contains("would fail            3"), "{d}");
    assert!(sb.stats().writes.is_empty(), "{:?}", sb.stats().writes);
    assert!(sb.store().contact_ids(&location).is_empty());

    let mut delete = base.clone();
    delete.extend(strings(&["--mode", "delete"]));
    let (code, stderr, d) = ghl_stderr(&sb, delete, dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(stderr.contains("--yes"), "{d}");
    sb.shutdown().await;
}

/// Tasks on their own, `--mode update`: existing tasks named by id, their contact by email, are
/// rewritten in place (title, completion); no task is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_their_own_update_existing_tasks_by_id() {
    let sb = sandbox(quiet_config(30)).await;
    let location = sb.location_ids()[0].clone();
    let (contact, email) = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter_map(|id| {
            let c = sb.store().contact(&id)?;
            let email = c["email"].as_str()?.to_string();
            (sb.store().tasks(&id).len() >= 2).then_some((id, email))
        })
        .next()
        .expect("a contact with an email and two tasks");
    let tasks = sb.store().tasks(&contact);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tasks.csv");
    let mut csv = String::from("task,who,title,done\n");
    for (i, t) in tasks.iter().take(2).enumerate() {
        csv.push_str(&format!(
            "{},{email},Renamed {i},true\n",
            t["id"].as_str().unwrap()
        ));
    }
    std::fs::write(&input, csv).unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n[tasks]\n[[tasks.columns]]\nname = \"id\"\nfrom = \"task\"\n\
         [[tasks.columns]]\nname = \"contact_email\"\nfrom = \"who\"\n[[tasks.columns]]\nname = \"title\"\n\
         [[tasks.columns]]\nname = \"completed\"\nfrom = \"done\"\ntype = \"bool\"\n",
    )
    .unwrap();
    let args = load_args(
        &location,
        dir.path(),
        &[
            "--tasks",
            &input.display().to_string(),
            "--mapping",
            &mapping.display().to_string(),
            "--mode",
            "update",
        ],
    );
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let after = sb.store().tasks(&contact);
    assert_eq!(after.len(), tasks.len(), "no task added");
    for (i, t) in tasks.iter().take(2).enumerate() {
        let now = after.iter().find(|a| a["id"] == t["id"]).unwrap();
        assert_eq!(now["title"], format!("Renamed {i}"));
        assert_eq!(now["completed"], true);
    }
    assert_eq!(sb.stats().written("task_create"), 0);
    assert_eq!(sb.stats().written("task_update"), 2);
    sb.shutdown().await;
}

/// Contacts with neither email nor phone cannot be matched by upsert: with `--external-id` their
/// source id is written to a custom field and searched before every create, so loading the same
/// file again, even with a new state database, makes no second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_id_keeps_contacts_without_email_or_phone_single() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("old-crm.csv");
    std::fs::write(
        &input,
        "legacy_id,first,last\nL-1,Ida,Noether\nL-2,Emmy,Noether\nL-3,Ida,Noether\n",
    )
    .unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n[contacts]\n[[contacts.columns]]\nname = \"id\"\nfrom = \"legacy_id\"\n\
         [[contacts.columns]]\nname = \"firstName\"\nfrom = \"first\"\n[[contacts.columns]]\nname = \"lastName\"\nfrom = \"last\"\n",
    )
    .unwrap();
    for run in ["first", "second"] {
        let args = load_file_args(
            &location,
            &dir.path().join(run),
            &input,
            &mapping,
            &["--external-id", "Source ID", "--create-missing-fields"],
        );
        let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
        assert_eq!(code, Some(0), "{run}: {d}");
        assert_eq!(
            sb.store().contact_ids(&location).len(),
            3,
            "{run}: two Ida Noethers are two contacts, and no row is made twice"
        );
    }
    let (h, ok) = read_csv(&dir.path().join("second/report/succeeded.csv"));
    let action = h.iter().position(|c| c == "action").unwrap();
    assert!(ok.iter().all(|r| r[action] == "unchanged"), "{ok:?}");
    assert_eq!(sb.stats().written("contact_create"), 3);
    assert_eq!(sb.stats().written("custom_field_create"), 1);
    sb.shutdown().await;
}

/// A refused token stops the load at once, with exit 3 and one error naming what to fix; no
/// row is reported failed for it (a rerun with a good token loads them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_load_at_once() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sample = manifest_dir().join("samples/ecosend-contacts.csv");
    let mapping = manifest_dir().join("mappings/from-ecosend.toml");
    let args = load_file_args(&location, dir.path(), &sample, &mapping, &[]);
    let url = sb.url();
    let cwd = dir.path().to_path_buf();
    let a = args.clone();
    let out = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_bin(
            &a,
            &[("GHL_BASE_URL", url.as_str()), ("GHL_TOKEN", "revoked")],
            &cwd,
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(stderr.contains("GHL_TOKEN"), "{stderr}");
    assert_eq!(sb.stats().requests, 1, "one request, no retries");
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(
        code,
        Some(1),
        "the rerun with a good token loads the good rows: {d}"
    );
    assert_eq!(sb.store().contact_ids(&location).len(), 5);
    sb.shutdown().await;
}

/// A file-upload custom field's value points at files GHL hosts for the source location: it
/// is never written, and the row's report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_upload_fields_are_not_carried_and_the_report_says_so() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let file_field = sb
        .store()
        .custom_fields(&location)
        .into_iter()
        .find(|f| f["dataType"] == "FILE_UPLOAD")
        .expect("the sandbox has a file-upload field");
    let name = file_field["name"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.csv");
    std::fs::write(
        &input,
        "email,doc\nf@x.example,https://files.example/contract.pdf\n",
    )
    .unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        format!(
            "version = 1\ndirection = \"load\"\n[contacts]\n[[contacts.columns]]\nname = \"email\"\n\
             [[contacts.columns]]\nname = 'customFields.\"{name}\"'\nfrom = \"doc\"\n"
        ),
    )
    .unwrap();
    let args = load_file_args(&location, dir.path(), &input, &mapping, &[]);
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let c = &contacts_by_email(&sb, &location)["f@x.example"];
    assert_eq!(
        custom(&sb, &location, c, &name),
        None,
        "nothing written: {c}"
    );
    let (h, ok) = read_csv(&dir.path().join("report/succeeded.csv"));
    let note = h.iter().position(|c| c == "note").unwrap();
    assert!(ok[0][note].contains("not carried"), "{ok:?}");
    sb.shutdown().await;
}

/// A load mapping of `email`, `phone` and `name` (the first name) columns, written in `dir`.
fn people_mapping(dir: &Path) -> PathBuf {
    let mapping = dir.join("people.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n\n[contacts]\n\
         [[contacts.columns]]\nname = \"email\"\nfrom = \"email\"\n\n\
         [[contacts.columns]]\nname = \"phone\"\nfrom = \"phone\"\n\n\
         [[contacts.columns]]\nname = \"firstName\"\nfrom = \"name\"\n",
    )
    .unwrap();
    mapping
}

/// Upserts that could match the same contact (a shared email or phone) take turns: the API
/// looks for the duplicate and then creates, so two at once can both create, and a retried
/// one would then pick either. All upserts are held at the gate until as many have arrived as
/// there are people, so a client that let twins race would have them in flight together;
/// the sandbox counts any upsert that arrives while one sharing a key is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_that_could_match_one_contact_take_turns() {
    const PEOPLE: usize = 30;
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mapping = people_mapping(dir.path());
    // Each person three times, a wave apart: email and phone, email only, phone only.
    let mut csv = String::from("email,phone,name\n");
    let person = |i: usize| {
        (
            format!("p{i}@example.org"),
            format!("+1 415 555 {:04}", 100 + i),
        )
    };
    for wave in 0..3 {
        for i in 0..PEOPLE {
            let (email, phone) = person(i);
            let (e, p) = match wave {
                0 => (email.as_str(), phone.as_str()),
                1 => (email.as_str(), ""),
                _ => ("", phone.as_str()),
            };
            csv.push_str(&format!("{e},{p},Person {i}\n"));
        }
    }
    let input = dir.path().join("people.csv");
    std::fs::write(&input, csv).unwrap();
    let args = load_file_args(
        &location,
        dir.path(),
        &input,
        &mapping,
        &["--concurrency", "90"],
    );
    let hold = sb.hold(&["POST /contacts/upsert"]);
    let ((code, stderr, d), ()) = tokio::join!(ghl_stderr(&sb, args, dir.path()), async {
        hold.arrived(PEOPLE as u64).await;
        hold.release();
    });
    assert_eq!(code, Some(0), "{d}\n{stderr}");
    let stats = sb.stats();
    assert_eq!(stats.overlapping_upserts, 0, "{d}");
    assert_eq!(stats.written("contact_upsert"), 3 * PEOPLE as u64);
    assert_eq!(sb.store().contact_ids(&location).len(), PEOPLE, "{d}");
    let ok = read_csv(&dir.path().join("report/succeeded.csv")).1;
    let targets: BTreeSet<&String> = ok.iter().map(|r| &r[4]).collect();
    assert_eq!((ok.len(), targets.len()), (3 * PEOPLE, PEOPLE), "{d}");
}

/// The positive control of the test above: the sandbox does count upserts that share a key
/// in flight together. Two upserts with the same email, sent at once and held at the gate
/// until both have arrived, count one overlap; two with different keys, none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_counts_upserts_that_share_a_key_in_flight_together() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let http = reqwest::Client::new();
    let upsert = |email: &str| {
        http.post(format!("{}/contacts/upsert", sb.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Version", ghl_etl::api::API_VERSION)
            .json(&serde_json::json!({"locationId": location, "email": email}))
            .send()
    };
    for (first, second, overlaps) in [
        ("x@example.org", "y@example.org", 0),
        ("z@example.org", "z@example.org", 1),
    ] {
        let hold = sb.hold(&["POST /contacts/upsert"]);
        let (r1, r2, ()) = tokio::join!(upsert(first), upsert(second), async {
            hold.arrived(2).await;
            hold.release();
        });
        for r in [r1, r2] {
            assert!(r.unwrap().status().is_success());
        }
        assert_eq!(
            sb.stats().overlapping_upserts,
            overlaps,
            "{first}, {second}"
        );
    }
    assert_eq!(sb.stats().written("contact_upsert"), 4);
    sb.shutdown().await;
}

/// A create whose answer is lost is looked for among the newest contacts of its name, so it is
/// found however many older contacts share that name, and not sent twice. The target already
/// holds 150 contacts named Ana; the load's create of another Ana (no email, no phone) is
/// answered with an HTML page after it was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_is_found_among_many_namesakes() {
    const NAMESAKES: usize = 150;
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let http = reqwest::Client::new();
    for i in 0..NAMESAKES {
        let resp = http
            .post(format!("{}/contacts/", sb.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Version", ghl_etl::api::API_VERSION)
            .json(&serde_json::json!({"locationId": location, "firstName": "Ana", "lastName": format!("Older{i}")}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ana.csv");
    std::fs::write(&input, "email,phone,name\n,,Ana\n").unwrap();
    let mapping = people_mapping(dir.path());
    let args = load_file_args(&location, dir.path(), &input, &mapping, &[]);
    let hold = sb.hold(&["POST /contacts/"]);
    let ((code, stderr, d), ()) = tokio::join!(ghl_stderr(&sb, args, dir.path()), async {
        hold.arrived(1).await;
        // The create is applied, then its answer is an HTML page: the outcome is unknown.
        sb.set_hostile(Some(Hostile::Html200), 1);
        hold.release();
    });
    assert_eq!(code, Some(0), "{d}\n{stderr}");
    let stats = sb.stats();
    assert_eq!(stats.written("contact_create"), NAMESAKES as u64 + 1, "{d}");
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        NAMESAKES + 1,
        "{d}"
    );
    let ok = read_csv(&dir.path().join("report/succeeded.csv")).1;
    assert_eq!(ok.len(), 1, "{d}");
    let target = sb
        .store()
        .contact(&ok[0][4])
        .expect("the reported contact exists");
    assert_eq!(target["firstName"], "Ana");
    assert!(
        target.get("lastName").is_none_or(Value::is_null),
        "{target}"
    );
}
