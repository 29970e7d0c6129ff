//! The export job end to end against the sandbox over HTTP, with output read back by real
//! readers (arrow's Parquet reader, the csv crate, serde_json).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use clap::Parser;
use ghl_etl::api::AuthConfig;
use ghl_etl::cli::ExportArgs;
use ghl_etl::exit::JobError;
use ghl_etl::export::{self, Summary};
use ghl_etl::job::Ui;
use ghl_etl::sandbox::{Sandbox, SandboxConfig, TokenSpec, DEFAULT_TOKEN};
use ghl_etl::secret::Secret;
use ghl_etl::sink::Format;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{quiet_config, read_csv, sandbox, sandbox_rate};

/// The export flags, as a user would type them.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    export: ExportArgs,
}

pub fn args(sb: &Sandbox, out: &Path, format: Format) -> ExportArgs {
    let url = sb.url();
    let out_s = out.display().to_string();
    let state = out.join(".state.sqlite").display().to_string();
    let format = format.extension();
    Flags::parse_from([
        "export",
        "--base-url",
        &url,
        "--rate",
        "off",
        "--retry-max-delay",
        "0.2",
        "--location",
        &sb.location_ids()[0],
        "--source",
        "list",
        "--with",
        "tasks,notes",
        "--format",
        format,
        "--out",
        &out_s,
        "--state",
        &state,
        "--commit-seconds",
        "3600",
    ])
    .export
}

/// `--with` values.
fn with(tables: &[&str]) -> Vec<String> {
    tables.iter().map(|t| t.to_string()).collect()
}

/// Run an export in this process with `token`.
async fn try_run(a: &ExportArgs, token: &str) -> Result<Summary, JobError> {
    let (mut conn, plan) = a.resolve()?;
    conn.auth = Some(AuthConfig::Static(Secret::new(token)));
    export::export(&conn, &plan, Ui::QUIET).await
}

async fn run(a: &ExportArgs, token: &str) -> Summary {
    try_run(a, token).await.expect("export succeeds")
}

/// Every part file of a table, in name order.
pub(crate) fn parts(out: &Path, table: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join(table))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub(crate) fn read_parquet(out: &Path, table: &str) -> Vec<RecordBatch> {
    parts(out, table, "parquet")
        .into_iter()
        .flat_map(|p| read_parquet_file(&p))
        .collect()
}

pub(crate) fn read_parquet_file(p: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(p).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

pub(crate) fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"));
            let s = a
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8 column");
            (0..s.len())
                .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn counts(ids: &[Option<String>]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for id in ids.iter().flatten() {
        *m.entry(id.clone()).or_default() += 1;
    }
    m
}

/// Each row's list of strings in `column` (an empty list for a null).
fn lists(batches: &[RecordBatch], column: &str) -> Vec<Vec<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let l = b
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"))
                .as_any()
                .downcast_ref::<ListArray>()
                .expect("a list column")
                .clone();
            (0..l.len())
                .map(|i| {
                    if l.is_null(i) {
                        return Vec::new();
                    }
                    let v = l.value(i);
                    let s = v.as_any().downcast_ref::<StringArray>().unwrap();
                    (0..s.len()).map(|j| s.value(j).to_string()).collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A child table's rows as record id -> contact id; asserts that no record repeats.
fn children(batches: &[RecordBatch]) -> std::collections::BTreeMap<String, String> {
    let ids = strings(batches, "id");
    let owners = strings(batches, "contact_id");
    let m: std::collections::BTreeMap<String, String> = ids
        .into_iter()
        .zip(owners)
        .map(|(id, c)| (id.expect("a record id"), c.expect("a contact id")))
        .collect();
    assert_eq!(
        m.len(),
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        "a record twice"
    );
    m
}

/// Parquet under 5% faults and a rate limit, read back and compared with the sandbox's store:
/// every contact once in listing order, every row's tags, every task and note once under its
/// contact; typed columns; and the requests that did work are exactly the ones needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_export_under_faults_and_rate_limit_is_complete_and_typed() {
    let sb = sandbox(SandboxConfig {
        contacts: 1_200,
        rate_limit: Some(sandbox_rate("300/1s")),
        fault_rate: 0.05,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Parquet);
    a.conn.rate = Some("300/1s".into());
    a.part_rows = 500;
    let summary = run(&a, DEFAULT_TOKEN).await;
    let location = &a.locations[0];
    let expected = sb.store().contact_ids(location);

    let contacts = read_parquet(dir.path(), "contacts");
    let ids: Vec<String> = strings(&contacts, "id")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        ids, expected,
        "every contact exactly once, in listing order"
    );
    assert_eq!(
        parts(dir.path(), "contacts", "parquet").len(),
        3,
        "1,200 contacts in parts of 500"
    );

    let schema = contacts[0].schema();
    assert_eq!(
        schema.field_with_name("dateAdded").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("dnd").unwrap().data_type(),
        &DataType::Boolean
    );
    assert!(
        matches!(schema.field_with_name("tags").unwrap().data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8)
    );
    // Tags survive as lists: every row's, as the store holds them.
    let tags = lists(&contacts, "tags");
    let mut tagged = 0;
    for (id, got) in ids.iter().zip(&tags) {
        let want: Vec<String> = sb.store().contact(id).unwrap()["tags"]
            .as_array()
            .map(|t| t.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        tagged += usize::from(!want.is_empty());
        assert_eq!(got, &want, "tags of {id}");
    }
    assert!(tagged > 100, "the sandbox's contacts carry tags: {tagged}");

    // Tasks and notes: exactly the store's, each once, under the contact that holds it.
    let tasks = children(&read_parquet(dir.path(), "tasks"));
    let notes = children(&read_parquet(dir.path(), "notes"));
    let store_children = |of: &dyn Fn(&str) -> Vec<serde_json::Value>| {
        let mut m = std::collections::BTreeMap::new();
        for id in &expected {
            for t in of(id) {
                m.insert(t["id"].as_str().unwrap().to_string(), id.clone());
            }
        }
        m
    };
    assert_eq!(tasks, store_children(&|id| sb.store().tasks(id)), "tasks");
    assert_eq!(notes, store_children(&|id| sb.store().notes(id)), "notes");
    assert!(!tasks.is_empty() && !notes.is_empty());
    assert_eq!(summary.contacts, 1_200);
    assert!(
        summary.retries > 0,
        "faults were injected and retried: {summary:?}"
    );
    assert!(
        summary.tasks_mode.starts_with("bulk"),
        "{}",
        summary.tasks_mode
    );
    // Pages (13: the last full page is followed by an empty one), custom fields (1), one notes
    // request per contact, and the task search.
    // Bulk task search per page of 100 contacts: pages of 100 tasks until one is shorter than
    // a full one; a first short page is confirmed by one more (empty) request.
    let task_requests: usize = expected
        .chunks(100)
        .map(|page| {
            match page
                .iter()
                .map(|id| sb.store().tasks(id).len())
                .sum::<usize>()
            {
                0 => 1,
                t if t < 100 => 2,
                t => t / 100 + 1,
            }
        })
        .sum();
    let server = sb.stats();
    let spent = server.requests - server.faults_total() - server.rate_limited;
    assert_eq!(
        spent as usize,
        13 + 1 + 1_200 + task_requests,
        "requests that did work"
    );
    assert!(dir.path().join("_manifest.json").exists());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_fall_back_to_one_request_per_contact_without_the_search_scope() {
    let mut cfg = quiet_config(150);
    cfg.tokens = vec!["plain=contacts.readonly,locations/customFields.readonly"
        .parse::<TokenSpec>()
        .unwrap()];
    let sb = sandbox(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let a = args(&sb, dir.path(), Format::Parquet);
    let summary = run(&a, "plain").await;
    assert!(
        summary.tasks_mode.starts_with("per contact"),
        "{}",
        summary.tasks_mode
    );
    let tasks = counts(&strings(&read_parquet(dir.path(), "tasks"), "contact_id"));
    for id in sb.store().contact_ids(&a.locations[0]) {
        assert_eq!(
            tasks.get(&id).copied().unwrap_or(0),
            sb.store().tasks(&id).len()
        );
    }
    sb.shutdown().await;
}

/// NDJSON without a mapping: every line is the contact exactly as the store holds it, and the
/// ids are the location's, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_without_mapping_is_lossless() {
    let sb = sandbox(quiet_config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Ndjson);
    a.with = with(&["none"]);
    run(&a, DEFAULT_TOKEN).await;
    let text: String = parts(dir.path(), "contacts", "ndjson")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut ids = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(
            v,
            sb.store().contact(&id).unwrap(),
            "the record as the API answered it"
        );
        ids.push(id);
    }
    let got: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(got.len(), ids.len(), "a contact exported twice");
    let want: std::collections::BTreeSet<String> = sb
        .store()
        .contact_ids(&a.locations[0])
        .into_iter()
        .collect();
    assert_eq!(got, want, "every contact of the location, no other");
    sb.shutdown().await;
}

/// A cell a spreadsheet would run: `=`/`@` first, or `+`/`-` not followed by a plain number.
fn is_formula(s: &str) -> bool {
    match s.chars().next() {
        Some('=' | '@') => true,
        Some('+' | '-') => !(s.len() > 1 && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.')),
        _ => false,
    }
}

pub(crate) fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_round_trips_unicode_and_defuses_formulas_when_asked() {
    let sb = sandbox(quiet_config(600)).await;
    let location = sb.location_ids()[0].clone();
    for safe in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(&sb, dir.path(), Format::Csv);
        a.with = with(&["none"]);
        a.csv_safe = safe;
        run(&a, DEFAULT_TOKEN).await;
        let (header, rows) = read_csv(&parts(dir.path(), "contacts", "csv")[0]);
        assert_eq!(rows.len(), 600);
        let (id_col, first_col, last_col) = (
            col(&header, "id"),
            col(&header, "firstName"),
            col(&header, "lastName"),
        );
        let mut bait = 0;
        let mut exotic = 0;
        for row in &rows {
            let c = sb.store().contact(&row[id_col]).unwrap();
            for (i, field) in [(first_col, "firstName"), (last_col, "lastName")] {
                let want = c[field].as_str().unwrap_or("");
                if !want.is_ascii() {
                    exotic += 1;
                }
                if is_formula(want) {
                    bait += 1;
                    if safe {
                        assert_eq!(
                            row[i],
                            format!("'{want}"),
                            "defused {field} of {}",
                            row[id_col]
                        );
                        continue;
                    }
                }
                assert_eq!(row[i], want, "{field} of {} round-trips", row[id_col]);
            }
        }
        assert!(bait > 0, "the sandbox data has formula bait in names");
        assert!(exotic > 0, "the sandbox data has non-ASCII names");
    }
    let _ = location;
    sb.shutdown().await;
}

/// The shipped EcoSend mapping, made strict on phones so bad numbers are rejected with a reason.
pub(crate) fn strict_ecosend(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/ecosend.toml"
    ))
    .unwrap();
    assert!(shipped.contains("on_error = \"null\""));
    let strict = shipped.replacen(
        "transform = [{ phone_e164 = { default_country = \"GB\" } }]\non_error = \"null\"",
        "transform = [{ phone_e164 = { default_country = \"GB\" } }]\non_error = \"reject\"",
        1,
    );
    assert_ne!(strict, shipped, "the phone column's on_error was found");
    let mapping = dir.join("ecosend-strict.toml");
    std::fs::write(&mapping, strict).unwrap();
    mapping
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecosend_mapping_gives_importable_rows_and_a_reject_file() {
    let sb = sandbox(quiet_config(800)).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = strict_ecosend(dir.path());
    let mut a = args(&sb, &dir.path().join("out"), Format::Csv);
    a.with = with(&["none"]);
    a.mapping = Some(mapping);
    let summary = run(&a, DEFAULT_TOKEN).await;
    let out = dir.path().join("out");
    let (header, rows) = read_csv(&parts(&out, "contacts", "csv")[0]);
    let (email, phone) = (col(&header, "email"), col(&header, "phone"));
    let e164 = regex::Regex::new(r"^\+[1-9][0-9]{6,14}$").unwrap();
    for row in &rows {
        assert!(
            !row[email].is_empty() && row[email] == row[email].to_lowercase().trim(),
            "{row:?}"
        );
        assert!(
            row[phone].is_empty() || e164.is_match(&row[phone]),
            "phone {:?}",
            row[phone]
        );
        for cell in row {
            assert!(!is_formula(cell), "formula bait left live: {cell:?}");
        }
    }
    let with_email = sb
        .store()
        .contact_ids(&a.locations[0])
        .iter()
        .filter(|id| {
            sb.store().contact(id).unwrap()["email"]
                .as_str()
                .is_some_and(|e| !e.trim().is_empty())
        })
        .count();
    let rejected = summary.rejected.get("contacts").copied().unwrap_or(0) as usize;
    assert!(rejected > 0, "some sandbox phones cannot be made E.164");
    assert_eq!(
        rows.len() + rejected,
        with_email,
        "every contact with an email is either a row or a reject"
    );
    let reject_files = parts(&out.join("rejects"), "contacts", "csv");
    assert_eq!(reject_files.len(), 1);
    let (rh, rrows) = read_csv(&reject_files[0]);
    assert_eq!(rrows.len(), rejected);
    let (reason, column, cid) = (
        col(&rh, "reason"),
        col(&rh, "column"),
        col(&rh, "contact_id"),
    );
    for r in &rrows {
        assert_eq!(r[column], "phone");
        assert!(!r[reason].is_empty());
        assert!(
            sb.store().contact(&r[cid]).is_some(),
            "the reject names a real contact: {r:?}"
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecologi_and_analytics_mappings_export() {
    use sha2::Digest;
    let sb = sandbox(quiet_config(300)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();

    let mut a = args(&sb, &dir.path().join("ecologi"), Format::Csv);
    a.with = with(&["none"]);
    a.mapping = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/ecologi.toml").into());
    run(&a, DEFAULT_TOKEN).await;
    let (header, rows) = read_csv(&parts(&dir.path().join("ecologi"), "contacts", "csv")[0]);
    let link = header
        .iter()
        .position(|h| h.contains("url") || h.contains("link"))
        .expect("a link column");
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(row[link].contains(&location), "{}", row[link]);
    }

    let mut a = args(&sb, &dir.path().join("analytics"), Format::Parquet);
    a.mapping = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/analytics.toml").into());
    run(&a, DEFAULT_TOKEN).await;
    let batches = read_parquet(&dir.path().join("analytics"), "contacts");
    let ids = strings(
        &batches,
        batches[0]
            .schema()
            .fields()
            .iter()
            .find(|f| f.name() == "id" || f.name() == "contact_id")
            .unwrap()
            .name(),
    );
    let hashed = strings(&batches, "email_sha256");
    assert_eq!(ids.len(), 300);
    let mut checked = 0;
    for (id, h) in ids.iter().zip(&hashed) {
        let c = sb.store().contact(id.as_ref().unwrap()).unwrap();
        if let Some(e) = c["email"].as_str().filter(|e| !e.trim().is_empty()) {
            let want: String = sha2::Sha256::digest(e.trim().to_lowercase().as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(h.as_deref(), Some(want.as_str()));
            checked += 1;
        }
    }
    assert!(checked > 100);
    assert!(!parts(&dir.path().join("analytics"), "notes", "parquet").is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_since_exports_only_recently_updated_contacts() {
    let sb = sandbox(quiet_config(600)).await;
    let location = sb.location_ids()[0].clone();
    let mut stamps: Vec<(String, i64)> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .map(|id| {
            let c = sb.store().contact(&id).unwrap();
            let ms = ghl_etl::api::pages::epoch_ms(&c["dateUpdated"]).unwrap();
            (id, ms)
        })
        .collect();
    stamps.sort_by_key(|(_, ms)| *ms);
    let cut = stamps[stamps.len() / 2].1;
    let since = chrono::DateTime::from_timestamp_millis(cut)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Parquet);
    a.with = with(&["none"]);
    a.updated_since = Some(since);
    run(&a, DEFAULT_TOKEN).await;
    let mut got: Vec<String> = strings(&read_parquet(dir.path(), "contacts"), "id")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut want: Vec<String> = stamps
        .iter()
        .filter(|(_, ms)| *ms >= cut)
        .map(|(id, _)| id.clone())
        .collect();
    got.sort();
    want.sort();
    assert!(!want.is_empty() && want.len() < 600);
    assert_eq!(got, want);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_locations_export_in_parallel_into_one_dataset() {
    let mut cfg = quiet_config(250);
    cfg.locations = 2;
    let sb = sandbox(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Parquet);
    a.locations = sb.location_ids();
    let summary = run(&a, DEFAULT_TOKEN).await;
    assert_eq!(summary.contacts, 500);
    let files: Vec<String> = parts(dir.path(), "contacts", "parquet")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["part-00000.parquet", "part-100000.parquet"]);
    let batches = read_parquet(dir.path(), "contacts");
    let mut got: Vec<String> = strings(&batches, "id")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut want: Vec<String> = sb
        .location_ids()
        .iter()
        .flat_map(|l| sb.store().contact_ids(l))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let notes = counts(&strings(&read_parquet(dir.path(), "notes"), "contact_id"));
    for id in &want {
        assert_eq!(
            notes.get(id).copied().unwrap_or(0),
            sb.store().notes(id).len()
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_export_never_deletes_files_of_another_in_the_same_folder() {
    let sb = sandbox(quiet_config(120)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Csv);
    a.with = with(&["none"]);
    run(&a, DEFAULT_TOKEN).await;
    let before = std::fs::read(dir.path().join("contacts/part-00000.csv")).unwrap();
    // Another export (different related tables) into the same folder is refused...
    a.with = with(&["notes"]);
    let err = try_run(&a, DEFAULT_TOKEN).await.unwrap_err();
    assert!(format!("{err:#}").contains("another export"), "{err:#}");
    // ...and the first export's files are untouched.
    assert_eq!(
        std::fs::read(dir.path().join("contacts/part-00000.csv")).unwrap(),
        before
    );
    // With --restart it starts over in that folder.
    a.restart = true;
    let summary = run(&a, DEFAULT_TOKEN).await;
    assert_eq!(summary.rows.get("contacts"), Some(&120));
    assert!(summary.rows.get("notes").copied().unwrap_or(0) > 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_export_when_asked() {
    let sb = sandbox(quiet_config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Parquet);
    a.with = with(&["appointments"]);
    let summary = run(&a, DEFAULT_TOKEN).await;
    let got = counts(&strings(
        &read_parquet(dir.path(), "appointments"),
        "contact_id",
    ));
    let mut total = 0;
    for id in sb.store().contact_ids(&a.locations[0]) {
        let want = sb.store().appointments(&id).len();
        total += want;
        assert_eq!(
            got.get(&id).copied().unwrap_or(0),
            want,
            "appointments of {id}"
        );
    }
    assert!(total > 0, "the sandbox has appointments");
    assert!(
        parts(dir.path(), "tasks", "parquet").is_empty(),
        "only what was asked"
    );
    assert_eq!(
        summary.rows.get("appointments").copied(),
        Some(total as u64)
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_without_access_does_not_stop_the_others() {
    let mut cfg = quiet_config(200);
    cfg.locations = 2;
    cfg.tokens = vec![
        "first-only=contacts.readonly,locations/customFields.readonly,locations/tasks.readonly@0"
            .parse::<TokenSpec>()
            .unwrap(),
    ];
    let sb = sandbox(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&sb, dir.path(), Format::Parquet);
    a.locations = sb.location_ids();
    let err = try_run(&a, "first-only").await.unwrap_err();
    assert_eq!(err.exit_code(), ghl_etl::exit::AUTH, "{err:#}");
    assert!(
        format!("{err:#}").contains(&sb.location_ids()[1]),
        "names the location: {err:#}"
    );
    // The location the token can read was exported completely.
    let ids: Vec<String> = strings(&read_parquet(dir.path(), "contacts"), "id")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(ids, sb.store().contact_ids(&sb.location_ids()[0]));
    sb.shutdown().await;
}

/// Reject files are opened in spreadsheets: a cell that starts like a formula is defused there
/// even when the data files are written as they are (`csv_safe` off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_files_defuse_formulas_end_to_end() {
    let sb = sandbox(quiet_config(40)).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("bait.toml");
    std::fs::write(
        &mapping,
        r#"version = 1

[contacts]

[[contacts.columns]]
name = "id"
from = "id"

[[contacts.columns]]
name = "=HYPERLINK(1)"
from = "firstName"
type = "int"
on_error = "reject"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut a = args(&sb, &out, Format::Csv);
    a.with = with(&["none"]);
    a.mapping = Some(mapping);
    let summary = run(&a, DEFAULT_TOKEN).await;
    assert!(!a.csv_safe);
    let rejected = summary.rejected.get("contacts").copied().unwrap_or(0);
    assert!(rejected > 0, "first names are not ints");
    let files = parts(&out.join("rejects"), "contacts", "csv");
    let (header, rows) = read_csv(&files[0]);
    assert_eq!(
        header,
        ["contact_id", "record_id", "column", "reason", "record_json"]
    );
    assert_eq!(rows.len() as u64, rejected);
    for row in &rows {
        assert_eq!(row[2], "'=HYPERLINK(1)", "defused: {row:?}");
        for cell in row {
            assert!(!is_formula(cell), "formula bait left live: {cell:?}");
        }
        let record: serde_json::Value = serde_json::from_str(&row[4]).unwrap();
        assert_eq!(record["id"].as_str(), Some(row[1].as_str()));
    }
    sb.shutdown().await;
}
