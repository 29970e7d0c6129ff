//! The tag job end to end: the shipped sample list against a sandbox with faults and a rate
//! limit, by id, email and phone, adding and removing; then a rerun that changes nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ghl_etl::sandbox::{Sandbox, DEFAULT_TOKEN};

use crate::util::{ghl_on as ghl, kill_when, quiet_config, report_rows, sandbox, sandbox_rate};

fn tags_of(sb: &Sandbox, id: &str) -> BTreeSet<String> {
    sb.store().contact(id).unwrap()["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_lowercase))
        .collect()
}

fn set(tags: &[&str]) -> BTreeSet<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_list_tags_exactly_the_intended_contacts_under_faults() {
    let mut cfg = quiet_config(30);
    cfg.fault_rate = 0.05;
    cfg.rate_limit = Some(sandbox_rate("200/1s"));
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    // The sample names these contacts of the seeded location (by id, email, email, phone, id).
    let targets = [
        (
            "4RhsN9dHkUd4X04LVXJV",
            set(&["vip", "spring-campaign"]),
            set(&["webinar 2024"]),
        ),
        ("AHIHc4ODWs3RP49RPSWF", set(&["spring-campaign"]), set(&[])),
        (
            "JtMOVeZ3DVPfjJTSthd1",
            set(&["spring-campaign", "vip"]),
            set(&["follow-up"]),
        ),
        (
            "IToyztpeJtKDetTA6gbx",
            set(&["spring-campaign"]),
            set(&["cold"]),
        ),
        ("HSlrCqbxWrLKoCM3gzsL", set(&[]), set(&["cold"])),
    ];
    let before: Vec<BTreeSet<String>> = targets.iter().map(|(id, _, _)| tags_of(&sb, id)).collect();
    let untouched: Vec<(String, BTreeSet<String>)> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter(|id| !targets.iter().any(|(t, _, _)| t == id))
        .map(|id| {
            let tags = tags_of(&sb, &id);
            (id, tags)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/tags.csv");
    let args: Vec<String> = [
        "tag",
        "--location",
        &location,
        "--input",
        &sample.display().to_string(),
        "--state",
        &dir.path().join("s.sqlite").display().to_string(),
        "--report",
        &dir.path().join("report").display().to_string(),
        "--rate",
        "200/1s",
        "--retry-max-delay",
        "0.2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, d) = ghl(&sb, args.clone(), dir.path()).await;
    assert_eq!(code, Some(1), "three rows fail by design: {d}");
    let check = |sb: &Sandbox| {
        for ((id, add, remove), old) in targets.iter().zip(&before) {
            let want: BTreeSet<String> = old
                .union(add)
                .filter(|t| !remove.contains(*t))
                .cloned()
                .collect();
            assert_eq!(tags_of(sb, id), want, "{id}");
        }
        for (id, tags) in &untouched {
            assert_eq!(&tags_of(sb, id), tags, "{id} was not on the list");
        }
    };
    check(&sb);
    let read = |f: &str| -> Vec<csv::StringRecord> {
        csv::Reader::from_path(dir.path().join("report").join(f))
            .unwrap()
            .records()
            .map(Result::unwrap)
            .collect()
    };
    let (ok, failed) = (read("succeeded.csv"), read("failed.csv"));
    assert_eq!(
        ok.len() + failed.len(),
        8,
        "succeeded + failed = input rows"
    );
    let reasons: Vec<&str> = failed.iter().map(|r| r.get(r.len() - 1).unwrap()).collect();
    assert!(
        reasons[0].contains("no contact in the location has email"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("malformed phone"), "{reasons:?}");
    assert!(reasons[2].contains("no contact key"), "{reasons:?}");

    // A rerun changes nothing and keeps one report line per row.
    sb.set_fault_rate(0.0);
    let (code, d) = ghl(&sb, args, dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    check(&sb);
    assert_eq!(read("succeeded.csv").len() + read("failed.csv").len(), 8);
    sb.shutdown().await;
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The rows of a generated list: (id, email, phone) cells, add and remove cells, and the
/// contact the row names (None for rows that must fail).
struct ListRow {
    cells: [String; 5],
    contact: Option<String>,
}

/// A list of `n` contacts of the location named by id, email and phone in turn, in three tag
/// groups (one larger than a bulk batch), plus four rows that must fail (an email two contacts
/// share, an unknown email, a malformed phone, a blank key).
fn tag_list(sb: &Sandbox, location: &str, n: usize) -> Vec<ListRow> {
    let mut seen_emails = std::collections::HashMap::new();
    let mut seen_phones = std::collections::HashMap::new();
    let contacts: Vec<serde_json::Value> = sb
        .store()
        .contact_ids(location)
        .iter()
        .map(|id| sb.store().contact(id).unwrap())
        .collect();
    for c in &contacts {
        for (k, seen) in [("email", &mut seen_emails), ("phone", &mut seen_phones)] {
            if let Some(v) = c[k].as_str() {
                *seen.entry(v.to_lowercase()).or_insert(0) += 1;
            }
        }
    }
    let unique = |c: &serde_json::Value, k: &str, seen: &std::collections::HashMap<String, i32>| {
        c[k].as_str()
            .filter(|v| seen.get(&v.to_lowercase()) == Some(&1))
            .map(str::to_string)
    };
    let mut rows = Vec::new();
    for c in &contacts {
        let (Some(email), Some(phone)) = (
            unique(c, "email", &seen_emails),
            unique(c, "phone", &seen_phones),
        ) else {
            continue;
        };
        let i = rows.len();
        if i == n {
            break;
        }
        let id = c["id"].as_str().unwrap().to_string();
        let key = match i % 3 {
            0 => [id.clone(), String::new(), String::new()],
            1 => [String::new(), email.to_uppercase(), String::new()],
            _ => [String::new(), String::new(), phone],
        };
        let (add, remove) = match i % 5 {
            0..=2 => ("Alpha;beta", ""),
            3 => ("gamma", "alpha"),
            _ => ("", "beta;Delta"),
        };
        rows.push(ListRow {
            cells: [
                key[0].clone(),
                key[1].clone(),
                key[2].clone(),
                add.into(),
                remove.into(),
            ],
            contact: Some(id),
        });
    }
    // The last contact listed takes the first one's email: two contacts now share it.
    let shared = rows[0].cells[0].clone();
    let shared = sb.store().contact(&shared).unwrap()["email"]
        .as_str()
        .unwrap()
        .to_string();
    let last = rows.last().unwrap().contact.clone().unwrap();
    rows.pop();
    assert!(sb.store().edit_contact(&last, |c| {
        c.insert("email".into(), serde_json::json!(shared.clone()));
    }));
    for bad in [
        ["", shared.as_str(), "", "x", ""],
        ["", "nobody@nowhere.example", "", "x", ""],
        ["", "", "555-01", "x", ""],
        ["", "", "", "x", ""],
    ] {
        rows.push(ListRow {
            cells: bad.map(String::from),
            contact: None,
        });
    }
    rows
}

fn write_list(path: &std::path::Path, rows: &[ListRow]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["contact_id", "email", "phone", "add_tags", "remove_tags"])
        .unwrap();
    for r in rows {
        w.write_record(&r.cells).unwrap();
    }
    w.flush().unwrap();
}

/// Every contact's tags as they must end: the listed ones changed, all others as before.
fn intended(
    sb: &Sandbox,
    location: &str,
    rows: &[ListRow],
) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut want: std::collections::BTreeMap<String, BTreeSet<String>> = sb
        .store()
        .contact_ids(location)
        .into_iter()
        .map(|id| {
            let t = tags_of(sb, &id);
            (id, t)
        })
        .collect();
    for r in rows {
        let Some(id) = &r.contact else { continue };
        let split = |s: &str| -> BTreeSet<String> {
            s.split(';')
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect()
        };
        let tags = want.get_mut(id).unwrap();
        tags.extend(split(&r.cells[3]));
        for t in split(&r.cells[4]) {
            tags.remove(&t);
        }
    }
    want
}

/// By id, email and phone, adding and removing, from a file, with 5% faults and the limiter on;
/// killed with SIGKILL once bulk writes have begun, then rerun: the final tags are exactly the
/// intended ones on exactly the intended contacts, and every row is in one report line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_a_list_by_id_email_and_phone_is_exact_under_faults_and_a_kill() {
    let mut cfg = quiet_config(900);
    cfg.fault_rate = 0.05;
    cfg.rate_limit = Some(sandbox_rate("300/1s"));
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let rows = tag_list(&sb, &location, 450);
    let want = intended(&sb, &location, &rows);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    write_list(&list, &rows);
    let report = dir.path().join("report");
    let args = |lookup: &str| {
        strings(&[
            "tag",
            "--location",
            &location,
            "--input",
            &list.display().to_string(),
            "--state",
            &dir.path().join("s.sqlite").display().to_string(),
            "--report",
            &report.display().to_string(),
            "--rate",
            "300/1s",
            "--retry-max-delay",
            "0.2",
            "--lookup",
            lookup,
            "--quiet",
        ])
    };
    // The first run looks keys up one by one and is killed once bulk writes have begun.
    kill_when(&sb, args("per-key"), dir.path(), |s| {
        s.written("bulk_tags_add") >= 2
    })
    .await;
    // The rerun scans the location instead (cheaper for 300 keys) and finishes.
    let (code, d) = ghl(&sb, args("auto"), dir.path()).await;
    assert_eq!(code, Some(1), "four rows fail by design: {d}");
    for (id, tags) in &want {
        assert_eq!(&tags_of(&sb, id), tags, "{id}");
    }
    let (ok, failed) = (
        report_rows(&report, "succeeded.csv"),
        report_rows(&report, "failed.csv"),
    );
    assert_eq!(
        ok.len() + failed.len(),
        rows.len(),
        "succeeded + failed = input rows"
    );
    assert_eq!(failed.len(), 4, "{failed:?}");
    let reasons: Vec<&str> = failed.iter().map(|r| r.get(r.len() - 1).unwrap()).collect();
    assert!(reasons[0].starts_with("ambiguous: "), "{reasons:?}");
    // A third run changes nothing.
    sb.set_fault_rate(0.0);
    let before = sb.stats().written("bulk_tags_add") + sb.stats().written("bulk_tags_remove");
    let (code, d) = ghl(&sb, args("auto"), dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    let after = sb.stats().written("bulk_tags_add") + sb.stats().written("bulk_tags_remove");
    assert_eq!(before, after, "a rerun of a finished list writes nothing");
    sb.shutdown().await;
}

/// `--where`: every contact added in a window with tag `lead` gains `cohort` and loses `lead`,
/// under faults; the search's contacts and no others change; a rerun changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_by_search_changes_exactly_the_matching_contacts() {
    let mut cfg = quiet_config(1200);
    cfg.fault_rate = 0.05;
    cfg.rate_limit = Some(sandbox_rate("300/1s"));
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let all: Vec<serde_json::Value> = sb
        .store()
        .contact_ids(&location)
        .iter()
        .map(|id| sb.store().contact(id).unwrap())
        .collect();
    // The window: the middle half of the contacts' dateAdded range, by whole days.
    let mut days: Vec<String> = all
        .iter()
        .filter_map(|c| c["dateAdded"].as_str().map(|d| d[..10].to_string()))
        .collect();
    days.sort();
    let (from, to) = (
        days[days.len() / 4].clone(),
        days[days.len() * 3 / 4].clone(),
    );
    let matches = |c: &serde_json::Value| {
        let day = &c["dateAdded"].as_str().unwrap()[..10];
        let has_lead = c["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t.as_str().map(str::to_lowercase).as_deref() == Some("lead"));
        day >= from.as_str() && day < to.as_str() && has_lead
    };
    let mut want: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    let mut matched = 0;
    for c in &all {
        let id = c["id"].as_str().unwrap().to_string();
        let mut tags = tags_of(&sb, &id);
        if matches(c) {
            matched += 1;
            tags.insert("cohort".into());
            tags.remove("lead");
        }
        want.insert(id, tags);
    }
    assert!(
        matched > 20,
        "the window holds enough contacts to test: {matched}"
    );
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let args = strings(&[
        "tag",
        "--location",
        &location,
        "--where",
        &format!("dateAdded>={from}"),
        "--where",
        &format!("dateAdded<{to}"),
        "--where",
        "tags=lead",
        "--add",
        "Cohort",
        "--remove",
        "lead",
        "--state",
        &dir.path().join("s.sqlite").display().to_string(),
        "--report",
        &report.display().to_string(),
        "--rate",
        "300/1s",
        "--retry-max-delay",
        "0.2",
        "--quiet",
    ]);
    let (code, d) = ghl(&sb, args.clone(), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    for (id, tags) in &want {
        assert_eq!(&tags_of(&sb, id), tags, "{id}");
    }
    assert_eq!(report_rows(&report, "succeeded.csv").len(), matched);
    // A week later the tag is back on one of them (a form, a workflow): the same command is
    // a new selection, the contacts that match now, and takes it off again.
    let back = want
        .iter()
        .find(|(_, tags)| tags.contains("cohort"))
        .map(|(id, _)| id.clone())
        .unwrap();
    let c = crate::util::client(&sb, None);
    c.update_tags(
        &location,
        &back,
        ghl_etl::api::endpoints::TagAction::Add,
        &["lead".to_string()],
    )
    .await
    .unwrap();
    assert!(tags_of(&sb, &back).contains("lead"));
    let (code, d) = ghl(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let rows = report_rows(&report, "succeeded.csv");
    assert_eq!(
        rows.len(),
        1,
        "this run's selection: the one contact that matches now\n{d}"
    );
    for (id, tags) in &want {
        assert_eq!(&tags_of(&sb, id), tags, "{id}");
    }
    sb.shutdown().await;
}

#[derive(clap::Parser)]
struct ExportFlags {
    #[command(flatten)]
    export: ghl_etl::cli::ExportArgs,
}

/// `export --where` takes the same conditions: the contact ids in the exported files are
/// exactly those of the sandbox's contacts that match (tagged `vip` and with an email), each
/// once, and the conditions did leave contacts out on both counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_where_exports_exactly_the_matching_contacts() {
    use clap::Parser;
    let sb = sandbox(quiet_config(800)).await;
    let location = sb.location_ids()[0].clone();
    let all: Vec<serde_json::Value> = sb
        .store()
        .contact_ids(&location)
        .iter()
        .map(|id| sb.store().contact(id).unwrap())
        .collect();
    let vip = |c: &serde_json::Value| {
        c["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t.as_str() == Some("vip"))
    };
    let email = |c: &serde_json::Value| c["email"].as_str().is_some_and(|e| !e.is_empty());
    let ids_where = |f: &dyn Fn(&serde_json::Value) -> bool| -> BTreeSet<String> {
        all.iter()
            .filter(|c| f(c))
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let want = ids_where(&|c| vip(c) && email(c));
    assert!(!want.is_empty());
    assert!(
        want.len() < ids_where(&vip).len() && want.len() < ids_where(&email).len(),
        "each condition leaves contacts out"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let url = sb.url();
    let (out_s, state) = (
        out.display().to_string(),
        dir.path().join("s.sqlite").display().to_string(),
    );
    let flags = ExportFlags::parse_from([
        "export",
        "--base-url",
        &url,
        "--rate",
        "off",
        "--location",
        &location,
        "--where",
        "tags=vip",
        "--where",
        "email exists",
        "--with",
        "none",
        "--out",
        &out_s,
        "--state",
        &state,
    ]);
    let (mut conn, plan) = flags.export.resolve().unwrap();
    conn.auth = Some(ghl_etl::api::AuthConfig::Static(
        ghl_etl::secret::Secret::new(DEFAULT_TOKEN),
    ));
    let summary = ghl_etl::export::export(&conn, &plan, ghl_etl::job::Ui::QUIET)
        .await
        .unwrap();
    let exported: Vec<String> =
        crate::export::strings(&crate::export::read_parquet(&out, "contacts"), "id")
            .into_iter()
            .map(|id| id.expect("every row has an id"))
            .collect();
    let got: BTreeSet<String> = exported.iter().cloned().collect();
    assert_eq!(got.len(), exported.len(), "a contact exported twice");
    assert_eq!(got, want, "the exported contacts are the matching ones");
    assert_eq!(summary.contacts, want.len() as u64);
    sb.shutdown().await;
}

/// `--dry-run` resolves every row, writes nothing, and says which tags would change on how
/// many contacts and what the writes would cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_the_changes_per_tag_and_writes_nothing() {
    let sb = sandbox(quiet_config(30)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/tags.csv");
    let args = strings(&[
        "tag",
        "--location",
        &location,
        "--input",
        &sample.display().to_string(),
        "--state",
        &dir.path().join("s.sqlite").display().to_string(),
        "--dry-run",
    ]);
    let (code, d) = ghl(&sb, args, dir.path()).await;
    assert_eq!(code, Some(1), "three rows would fail: {d}");
    let stats = sb.stats();
    assert_eq!(
        stats.written("bulk_tags_add") + stats.written("bulk_tags_remove"),
        0,
        "{d}"
    );
    for line in [
        "would change          5 contacts",
        "+4  spring-campaign",
        "-2  cold",
        "would fail            3",
    ] {
        assert!(d.contains(line), "missing `{line}`: {d}");
    }
    sb.shutdown().await;
}

/// An email two contacts share fails its row as ambiguous, looked up per key or by a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_two_contacts_share_is_ambiguous_either_way() {
    let sb = sandbox(quiet_config(40)).await;
    let location = sb.location_ids()[0].clone();
    let with_email: Vec<(String, String)> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter_map(|id| {
            let e = sb.store().contact(&id).unwrap()["email"]
                .as_str()?
                .to_string();
            Some((id, e))
        })
        .collect();
    let ((a, email), (b, _)) = (with_email[0].clone(), with_email[1].clone());
    assert!(sb.store().edit_contact(&b, |c| {
        c.insert("email".into(), serde_json::json!(email.clone()));
    }));
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    std::fs::write(&list, format!("email,add_tags\n{email},x\n")).unwrap();
    for lookup in ["per-key", "scan"] {
        let report = dir.path().join(lookup);
        let args = strings(&[
            "tag",
            "--location",
            &location,
            "--input",
            &list.display().to_string(),
            "--lookup",
            lookup,
            "--state",
            &dir.path()
                .join(format!("{lookup}.sqlite"))
                .display()
                .to_string(),
            "--report",
            &report.display().to_string(),
        ]);
        let (code, d) = ghl(&sb, args, dir.path()).await;
        assert_eq!(code, Some(1), "{d}");
        let failed = report_rows(&report, "failed.csv");
        let why = failed[0].get(failed[0].len() - 1).unwrap();
        assert!(
            why.starts_with("ambiguous: 2 contacts have email")
                && why.contains(&a)
                && why.contains(&b),
            "{lookup}: {why}"
        );
        assert!(!tags_of(&sb, &a).contains("x") && !tags_of(&sb, &b).contains("x"));
    }
    sb.shutdown().await;
}
