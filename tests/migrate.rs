//! Migrations of data this project did not generate: an email tool's export as people save
//! it, loaded with the shipped `mappings/from-ecosend.toml`, then exported and compared field
//! by field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{ghl_stderr, kill_when, quiet_config, read_csv, report_rows, sandbox};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// One person of the email tool's list, and what GHL should hold for them.
struct Person {
    cells: [String; 9],
    email: String,
    first: String,
    company: String,
    phone: Option<String>,
    tags: BTreeSet<String>,
    signup: String,
}

/// Row `i` as an email tool writes it: padded and mixed-case emails, accents, right-to-left
/// and emoji names, commas and quotes in organisations, tags in one cell, day-first dates, and
/// columns the mapping does not read.
fn person(i: usize) -> Person {
    let names = [
        "Ada",
        "Zoë",
        "José",
        "سارة",
        "Chloé 👩‍💻",
        "O'Brien",
        "=1+1",
        "Renée",
    ];
    let first = names[i % names.len()].to_string();
    let email = format!("person.{i}@example.org");
    let written = match i % 3 {
        0 => format!(" Person.{i}@Example.org "),
        _ => email.clone(),
    };
    let company = match i % 4 {
        0 => "Engines, Ltd".to_string(),
        1 => "The \"Best\" Co".to_string(),
        2 => "@sales".to_string(),
        _ => String::new(),
    };
    let mobile = (!i.is_multiple_of(5)).then(|| format!("07700 900{:03}", i % 1000));
    let phone = mobile
        .as_ref()
        .map(|m| format!("+44{}", m[1..].replace(' ', "")));
    let tag_cells = [
        "Newsletter;VIP",
        "newsletter",
        "",
        "Events;Newsletter;webinar 2024",
    ];
    let tag_cell = tag_cells[i % tag_cells.len()];
    let tags = tag_cell
        .split(';')
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let (d, m, y) = (1 + i % 28, 1 + i % 12, 2015 + i % 10);
    Person {
        cells: [
            written,
            format!(" {first} "),
            format!("Surname{i}"),
            mobile.unwrap_or_default(),
            company.clone(),
            tag_cell.to_string(),
            format!("{d:02}/{m:02}/{y}"),
            "Subscribed".to_string(),
            "Outlook".to_string(),
        ],
        email,
        first,
        company,
        phone,
        tags,
        signup: format!("{y}-{m:02}-{d:02}"),
    }
}

/// The list as a spreadsheet saves it: UTF-8 with a byte-order mark, CRLF line ends, every
/// cell quoted where it must be.
fn write_list(path: &Path, people: &[Person]) {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record([
        "Email Address",
        "First Name",
        "Last Name",
        "Mobile",
        "Organisation",
        "Tags",
        "Subscribed On",
        "Status",
        "Email Client",
    ])
    .unwrap();
    for p in people {
        w.write_record(&p.cells).unwrap();
    }
    std::fs::write(path, w.into_inner().unwrap()).unwrap();
}

/// An export's contacts, by lower-cased email.
fn exported(dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("contacts")).unwrap() {
        let (h, rows) = read_csv(&e.unwrap().path());
        for r in rows {
            let row: BTreeMap<String, String> = h.iter().cloned().zip(r).collect();
            out.insert(row["email"].to_lowercase(), row);
        }
    }
    out
}

/// 300 people from an email tool's export, through `from-ecosend.toml` into an empty
/// location, then exported: every person once, each field as the mapping promises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_tool_export_lands_field_for_field() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let people: Vec<Person> = (0..300).map(person).collect();
    let list = dir.path().join("ecosend-export.csv");
    write_list(&list, &people);
    let mapping = manifest_dir().join("mappings/from-ecosend.toml");
    let d = dir.path().display().to_string();
    let args = strings(&[
        "load",
        "--location",
        &location,
        "--contacts",
        &list.display().to_string(),
        "--mapping",
        &mapping.display().to_string(),
        "--create-missing-fields",
        "--state",
        &format!("{d}/state.sqlite"),
        "--report",
        &format!("{d}/report"),
        "--rate",
        "off",
    ]);
    let (code, _, why) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    assert_eq!(sb.store().contact_ids(&location).len(), people.len());

    let out = dir.path().join("export");
    let args = strings(&[
        "export",
        "--location",
        &location,
        "--out",
        &out.display().to_string(),
        "--state",
        &format!("{d}/export.sqlite"),
        "--format",
        "csv",
        "--rate",
        "off",
    ]);
    let (code, _, why) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let got = exported(&out);
    assert_eq!(got.len(), people.len());
    for p in &people {
        let row = &got[&p.email];
        assert_eq!(row["email"], p.email, "trimmed and lower-cased");
        assert_eq!(row["firstName"].to_lowercase(), p.first.to_lowercase());
        assert_eq!(row["companyName"], p.company, "{}", p.email);
        assert_eq!(
            Some(row["phone"].clone()).filter(|s| !s.is_empty()),
            p.phone
        );
        let tags: BTreeSet<String> = row["tags"]
            .split(';')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(tags, p.tags, "{}", p.email);
        assert!(
            row["Signup Date"].starts_with(&p.signup),
            "{}: {} for {}",
            p.email,
            row["Signup Date"],
            p.signup
        );
    }
}

/// The foreign fixture: one location as GHL's API answers for it, made by a model of the API
/// this project did not write (`../shared/fixtures/foreign-location`).
fn foreign_dir() -> PathBuf {
    let dir = manifest_dir().join("../shared/fixtures/foreign-location");
    assert!(dir.is_dir(), "the foreign fixture is at {}", dir.display());
    dir
}

fn ndjson(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every record of an export's (or the fixture's) table.
fn records(dir: &Path, table: &str) -> Vec<Value> {
    let single = dir.join(format!("{table}.ndjson"));
    if single.is_file() {
        return ndjson(&single);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().flat_map(|f| ndjson(f)).collect()
}

/// Custom-field id → (name, dataType), from the fixture's file or an export's folder.
fn field_names(dir: &Path) -> BTreeMap<String, (String, String)> {
    let single = dir.join("custom-fields.json");
    let files: Vec<PathBuf> = match single.is_file() {
        true => vec![single],
        false => std::fs::read_dir(dir.join("_custom_fields"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect(),
    };
    let mut out = BTreeMap::new();
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        for field in v["customFields"].as_array().unwrap() {
            let text = |k: &str| field[k].as_str().unwrap_or_default().to_string();
            out.insert(text("id"), (text("name"), text("dataType")));
        }
    }
    out
}

/// A location as a person compares two of them: contacts by email (else phone, else names),
/// each with its texts, tags, custom values by field name, tasks and notes.
fn location_view(dir: &Path) -> BTreeMap<String, Value> {
    let fields = field_names(dir);
    let mut children: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for t in records(dir, "tasks") {
        let line = format!(
            "{}|{}|{}|{}",
            t["title"], t["body"], t["dueDate"], t["completed"]
        );
        let id = t["contactId"].as_str().unwrap().to_string();
        children.entry(id).or_default().0.push(line);
    }
    for n in records(dir, "notes") {
        let id = n["contactId"].as_str().unwrap().to_string();
        children
            .entry(id)
            .or_default()
            .1
            .push(n["body"].to_string());
    }
    let mut out = BTreeMap::new();
    for c in records(dir, "contacts") {
        let text = |k: &str| c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let key = text("email")
            .map(str::to_lowercase)
            .or_else(|| text("phone").map(str::to_string))
            .unwrap_or_else(|| format!("{:?} {:?}", text("firstName"), text("lastName")));
        let (mut tasks, mut notes) = children
            .remove(c["id"].as_str().unwrap())
            .unwrap_or_default();
        tasks.sort();
        notes.sort();
        let texts: BTreeMap<&str, Option<&str>> = TEXTS.iter().map(|k| (*k, text(k))).collect();
        let view = serde_json::json!({
            "texts": texts,
            "tags": tag_set(&c),
            "custom": custom_by_name(&c, &fields),
            "tasks": tasks,
            "notes": notes,
        });
        assert!(
            out.insert(key.clone(), view).is_none(),
            "{key} twice in {}",
            dir.display()
        );
    }
    out
}

const TEXTS: &[&str] = &[
    "firstName",
    "lastName",
    "email",
    "phone",
    "companyName",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "source",
    "timezone",
    "country",
];

/// Tags, lower-cased: GHL stores them so.
fn tag_set(c: &Value) -> BTreeSet<String> {
    c["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Custom values by field name; a number as a number (`8991` and `8991.0` are one JSON
/// value); empty values, and file uploads (never carried), left out.
fn custom_by_name(
    c: &Value,
    fields: &BTreeMap<String, (String, String)>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for v in c["customFields"].as_array().into_iter().flatten() {
        let (name, ty) = &fields[v["id"].as_str().unwrap()];
        let value = match &v["value"] {
            Value::Number(n) => serde_json::json!(n.as_f64()),
            Value::Null => continue,
            Value::String(s) if s.is_empty() => continue,
            other => other.clone(),
        };
        if ty != "FILE_UPLOAD" {
            out.insert(name.clone(), value);
        }
    }
    out
}

/// Compare two location views contact by contact, naming the first difference.
fn assert_same_location(want: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>) {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (key, w) in want {
        for part in ["texts", "tags", "custom", "tasks", "notes"] {
            assert_eq!(w[part], got[key][part], "contact {key}: {part}");
        }
    }
}

/// Export the fixture's location from the sandbox in `format`, load it into an empty
/// location with `mappings/migrate.toml` (under 5% faults and one SIGKILL when `faults`), and
/// export the target as raw records: it must hold exactly what the fixture holds.
async fn migrate_foreign_location(format: &str, faults: bool) {
    let mut cfg = quiet_config(0);
    cfg.locations = 2;
    cfg.fixture = Some(ghl_etl::sandbox::Fixture::read(&foreign_dir()).unwrap());
    let sb = sandbox(cfg).await;
    let ids = sb.location_ids();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let export = |location: &str, out: &str, format: &str| {
        strings(&[
            "export",
            "--location",
            location,
            "--out",
            &format!("{d}/{out}"),
            "--state",
            &format!("{d}/{out}.sqlite"),
            "--format",
            format,
            "--rate",
            "off",
        ])
    };
    let (code, _, why) = ghl_stderr(&sb, export(&ids[0], "a", format), dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    if format == "ndjson" {
        // The seeded location answers as the fixture says, read through the tool's export.
        let seeded = location_view(&dir.path().join("a"));
        assert_same_location(&location_view(&foreign_dir()), &seeded);
    }
    let mapping = manifest_dir().join("mappings/migrate.toml");
    let load = strings(&[
        "load",
        "--location",
        &ids[1],
        "--contacts",
        &format!("{d}/a"),
        "--mapping",
        &mapping.display().to_string(),
        "--create-missing-fields",
        "--state",
        &format!("{d}/load.sqlite"),
        "--report",
        &format!("{d}/report"),
        "--rate",
        "off",
        "--retry-max-delay",
        "0.2",
    ]);
    if faults {
        sb.set_fault_rate(0.05);
        kill_when(&sb, load.clone(), dir.path(), |s| {
            s.written("note_create") >= 400
        })
        .await;
    }
    let (code, _, why) = ghl_stderr(&sb, load, dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    if !faults {
        assert_load_cost(&sb, &ids[1]);
    }
    sb.set_fault_rate(0.0);
    let (code, _, why) = ghl_stderr(&sb, export(&ids[1], "b", "ndjson"), dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let want = location_view(&foreign_dir());
    assert_eq!(want.len(), 600);
    assert_same_location(&want, &location_view(&dir.path().join("b")));
}

/// The twin of the load cost `benches/README.md` gives ("requests per contact"): a load
/// spends one request per contact, task and note written, and at most 3% more (custom fields,
/// bulk tags, lookups), counted by the sandbox.
fn assert_load_cost(sb: &ghl_etl::sandbox::Sandbox, target: &str) {
    let s = sb.stats();
    let spent = s.by_location.get(target).copied().unwrap_or_default();
    let floor = sb.store().contact_ids(target).len() as u64
        + s.written("task_create")
        + s.written("note_create");
    assert!(floor >= 600 + 1_480 + 1_284, "{floor}");
    let per_write = spent as f64 / floor as f64;
    eprintln!("load: {spent} requests for {floor} records written = {per_write:.4} each");
    assert!(
        per_write <= 1.03,
        "{spent} requests for {floor} records: {per_write:.4}"
    );
}

/// Through a CSV export, under 5% faults (half of the faulted writes applied before the
/// fault) and a SIGKILL mid-load, then a rerun: every contact, task and note once, texts
/// byte for byte, tags, and every custom value by field name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_location_migrates_whole_through_csv_under_faults_and_a_kill() {
    migrate_foreign_location("csv", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_location_migrates_whole_through_parquet() {
    migrate_foreign_location("parquet", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_location_migrates_whole_through_ndjson() {
    migrate_foreign_location("ndjson", false).await;
}

/// The writes a location received that create something: contacts, tasks, notes.
fn creates(sb: &ghl_etl::sandbox::Sandbox, location: &str) -> (usize, u64, u64) {
    let s = sb.stats();
    let contacts = sb.store().contact_ids(location).len();
    (contacts, s.written("task_create"), s.written("note_create"))
}

/// A load is idempotent without its state: the state database deleted, or replaced by an
/// older copy (taken after a SIGKILL mid-load), and the same command run again creates nothing:
/// each task and note is found on its contact by fingerprint; contacts without email or phone
/// by `--external-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_rerun_without_its_state_or_with_an_older_one_creates_nothing() {
    let mut cfg = quiet_config(0);
    cfg.locations = 2;
    cfg.fixture = Some(ghl_etl::sandbox::Fixture::read(&foreign_dir()).unwrap());
    let sb = sandbox(cfg).await;
    let ids = sb.location_ids();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let export = strings(&[
        "export",
        "--location",
        &ids[0],
        "--out",
        &format!("{d}/a"),
        "--state",
        &format!("{d}/a.sqlite"),
        "--format",
        "csv",
        "--rate",
        "off",
    ]);
    let (code, _, why) = ghl_stderr(&sb, export, dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let mapping = manifest_dir().join("mappings/migrate.toml");
    let load = |state: &str| {
        strings(&[
            "load",
            "--location",
            &ids[1],
            "--contacts",
            &format!("{d}/a"),
            "--mapping",
            &mapping.display().to_string(),
            "--create-missing-fields",
            "--external-id",
            "Source ID",
            "--state",
            &format!("{d}/{state}"),
            "--report",
            &format!("{d}/report"),
            "--rate",
            "off",
        ])
    };
    kill_when(&sb, load("load.sqlite"), dir.path(), |s| {
        s.written("note_create") >= 300
    })
    .await;
    // The older state: what the killed run had committed.
    for suffix in ["", "-wal"] {
        let from = dir.path().join(format!("load.sqlite{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.path().join(format!("old.sqlite{suffix}"))).unwrap();
        }
    }
    let (code, _, why) = ghl_stderr(&sb, load("load.sqlite"), dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let whole = creates(&sb, &ids[1]);
    assert_eq!(whole.0, 600, "every contact once");
    for state in ["fresh.sqlite", "old.sqlite"] {
        let (code, stderr, why) = ghl_stderr(&sb, load(state), dir.path()).await;
        assert_eq!(code, Some(0), "{why}");
        assert_eq!(
            creates(&sb, &ids[1]),
            whole,
            "with {state}: nothing created again\n{stderr}"
        );
    }
    let succeeded = report_rows(&dir.path().join("report"), "succeeded.csv");
    let found = succeeded
        .iter()
        .filter(|r| r.iter().any(|c| c.starts_with("already in the target")))
        .count();
    assert!(found > 0, "the rows found on their contacts say so");
    sb.shutdown().await;
}
