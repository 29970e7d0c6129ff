//! Migrations of data this project did not generate: an email tool's export as people save
//! it, loaded with the shipped `mappings/from-ecosend.toml`, then exported and compared field
//! by field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::{ghl_stderr, quiet_config, read_csv, sandbox};

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
    let mobile = (i % 5 != 0).then(|| format!("07700 900{:03}", i % 1000));
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
