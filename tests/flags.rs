//! User flags that `flag_checks.rs` leaves without a test, each run through the binary against
//! the in-process sandbox and each failing if its flag were ignored: `--daily-reserve` (also with
//! `--rate off`), `--overlap`, load's `--tasks`/`--notes` beside an export folder, `--delimiter`
//! and `--input-format` on files whose names say nothing, tag's `--remove-column`, load's
//! `--empty`, `--allow-no-identity` and `--custom-fields`, and `--sandbox-locations`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ghl_etl::sandbox::{Sandbox, Store};
use serde_json::{json, Value};

use crate::export::parts;
use crate::util::{describe, ghl_stderr, quiet_config, read_csv, run_bin, sandbox};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `head` (a command and its own flags), then `--location`, a state database and report folder
/// named `name` in `dir`, no pacing, and `extra`.
fn job(head: &[&str], location: &str, dir: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a = strings(head);
    a.extend(strings(&["--location", location, "--rate", "off"]));
    a.push("--state".into());
    a.push(dir.join(format!("{name}.sqlite")).display().to_string());
    if head[0] != "export" {
        a.push("--report".into());
        a.push(dir.join(name).display().to_string());
    }
    a.extend(strings(extra));
    a
}

/// `export` of `location` as CSV into `dir/out`, contacts only, with `extra` (no `--rate`).
fn export_args(location: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let d = dir.display();
    let mut a = strings(&["export", "--location", location, "--format", "csv"]);
    a.extend(strings(&["--with", "none", "--out", &format!("{d}/out")]));
    a.extend(strings(&["--state", &format!("{d}/state.sqlite")]));
    a.extend(strings(extra));
    a
}

/// The ids in the contacts CSV parts of `out`, asserting none repeats.
fn csv_ids(out: &Path) -> BTreeSet<String> {
    let mut ids = Vec::new();
    for p in parts(out, "contacts", "csv") {
        let (h, rows) = read_csv(&p);
        let at = h.iter().position(|c| c == "id").expect("an id column");
        ids.extend(rows.into_iter().map(|r| r[at].clone()));
    }
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a contact written twice");
    set
}

/// A contact's tags, as the sandbox holds them.
fn tags_of(sb: &Sandbox, id: &str) -> BTreeSet<String> {
    sb.store().contact(id).unwrap()["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The contacts of a location with this email, as the sandbox holds them.
fn by_email(sb: &Sandbox, location: &str, email: &str) -> Vec<Value> {
    sb.store()
        .contact_ids(location)
        .iter()
        .filter_map(|id| sb.store().contact(id))
        .filter(|c| c["email"] == email)
        .collect()
}

/// A load mapping of `email`, `firstName` and `city` from the columns `email`, `first`, `city`.
fn people_mapping(dir: &Path) -> String {
    let path = dir.join("people.toml");
    let mut text = String::from("version = 1\ndirection = \"load\"\n\n[contacts]\n");
    for (name, from) in [("email", "email"), ("firstName", "first"), ("city", "city")] {
        text.push_str(&format!(
            "\n[[contacts.columns]]\nname = \"{name}\"\nfrom = \"{from}\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `--daily-reserve 980` on a location whose daily limit is 1000: the export stops with exit
/// 4 after exactly 20 requests (one contact a page); the same command with `--daily-reserve 900`
/// resumes and finishes, every contact exported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_reserve_stops_an_export_where_the_budget_falls_to_it() {
    let mut cfg = quiet_config(40);
    cfg.daily_limit = 1000;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let paced = ["--page-size", "1", "--rate", "1000/1s", "--daily-reserve"];
    let args = |reserve: &str| {
        let mut a = paced.to_vec();
        a.push(reserve);
        export_args(&location, dir.path(), &a)
    };
    let (code, stderr, d) = ghl_stderr(&sb, args("980"), dir.path()).await;
    assert_eq!(code, Some(4), "{d}");
    assert!(stderr.contains("at most 980 requests left today"), "{d}");
    assert_eq!(sb.stats().by_location[&location], 20, "{d}");
    let (code, _, d) = ghl_stderr(&sb, args("900"), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(sb.stats().by_location[&location] < 100, "{d}");
    let all: BTreeSet<String> = sb.store().contact_ids(&location).into_iter().collect();
    assert_eq!(csv_ids(&dir.path().join("out")), all);
    sb.shutdown().await;
}

/// `--daily-reserve` holds with `--rate off` too (pacing off is not budget off): the export
/// stops with exit 4 after 20 requests of the location's 1000, as with a rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_reserve_holds_with_rate_off() {
    let mut cfg = quiet_config(40);
    cfg.daily_limit = 1000;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--page-size",
        "1",
        "--rate",
        "off",
        "--daily-reserve",
        "980",
    ];
    let (code, _, d) =
        ghl_stderr(&sb, export_args(&location, dir.path(), &flags), dir.path()).await;
    let spent = sb.stats().by_location[&location];
    assert_eq!(
        (code, spent),
        (Some(4), 20),
        "(exit, requests) with 1000 a day and 980 kept: {d}"
    );
    sb.shutdown().await;
}

/// `--overlap` is the overlap an incremental run works with and records (`overlap_s` in its
/// manifest: 2h, 90s, 45 (seconds), then the default 10m); a unit it does not know is refused.
/// That record is all a run shows of it: every contact is listed each run, and the overlap only
/// decides which changed contacts count as `late` (a change the search index showed after the
/// overlap), which the sandbox, indexing at once, never makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_is_the_overlap_each_incremental_run_records() {
    let sb = sandbox(quiet_config(6)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    let run = |extra: &[&str]| {
        let mut a = strings(&["export", "--incremental", "--with", "none", "--out"]);
        a.push(out.display().to_string());
        a.extend(strings(extra));
        job(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            &location,
            dir.path(),
            "s",
            &[],
        )
    };
    let manifest = || -> Value {
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap()
    };
    for (extra, seconds, mode) in [
        (&["--overlap", "2h"][..], 7200, "full"),
        (&["--overlap", "90s"][..], 90, "delta"),
        (&["--overlap", "45"][..], 45, "delta"),
        (&[][..], 600, "delta"),
    ] {
        let (code, _, d) = ghl_stderr(&sb, run(extra), dir.path()).await;
        assert_eq!(code, Some(0), "{d}");
        let m = manifest();
        assert_eq!(
            (m["overlap_s"].clone(), m["mode"].clone()),
            (json!(seconds), json!(mode)),
            "{m}"
        );
    }
    let (code, stderr, d) = ghl_stderr(&sb, run(&["--overlap", "1d"]), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(stderr.contains("--overlap"), "{d}");
    sb.shutdown().await;
}

/// The notes or tasks of a location's contacts: id → (the contact's email, a note's body or a
/// task's title).
fn children(sb: &Sandbox, location: &str, table: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for id in sb.store().contact_ids(location) {
        let c = sb.store().contact(&id).unwrap();
        let email = c["email"].as_str().unwrap_or("").to_string();
        let (list, key) = match table {
            "tasks" => (sb.store().tasks(&id), "title"),
            _ => (sb.store().notes(&id), "body"),
        };
        for r in list {
            let text = r[key].as_str().unwrap_or("").to_string();
            out.insert(r["id"].as_str().unwrap().to_string(), (email.clone(), text));
        }
    }
    out
}

/// What [`children`] holds now that it did not hold `before`, as a sorted list.
fn added(
    now: BTreeMap<String, (String, String)>,
    before: &BTreeMap<String, (String, String)>,
) -> Vec<(String, String)> {
    let mut v: Vec<_> = now
        .into_iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(_, r)| r)
        .collect();
    v.sort();
    v
}

/// `load --contacts EXPORT --tasks FILE --notes FILE`: the files given replace the export's own
/// `tasks/` and `notes/`, each row landing on the contact its source `contact_id` names; without
/// the flags the export's own are loaded, all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_notes_flags_replace_the_exports_own() {
    let mut cfg = quiet_config(6);
    cfg.locations = 3;
    let sb = sandbox(cfg).await;
    let [source, given, own] = <[String; 3]>::try_from(sb.location_ids()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut export = export_args(&source, dir.path(), &["--rate", "off"]);
    let at = export.iter().position(|a| a == "none").unwrap();
    export[at] = "tasks,notes".into();
    let (code, _, why) = ghl_stderr(&sb, export, dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let picked: Vec<(String, String)> = sb
        .store()
        .contact_ids(&source)
        .into_iter()
        .filter_map(|id| {
            let email = sb.store().contact(&id)?["email"].as_str()?.to_string();
            Some((id, email))
        })
        .take(2)
        .collect();
    assert_eq!(picked.len(), 2, "two source contacts with an email");
    let notes = dir.path().join("given-notes.csv");
    let tasks = dir.path().join("given-tasks.csv");
    let mut n = String::from("id,contact_id,body\n");
    let mut t = String::from("id,contact_id,title,dueDate,completed\n");
    for (i, (id, _)) in picked.iter().enumerate() {
        n.push_str(&format!("gn{i},{id},Given note {i}\n"));
        t.push_str(&format!(
            "gt{i},{id},Given task {i},2027-01-01T09:00:00Z,false\n"
        ));
    }
    std::fs::write(&notes, n).unwrap();
    std::fs::write(&tasks, t).unwrap();
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/migrate.toml");
    let load = |target: &str, name: &str, extra: &[String]| {
        let mut a = strings(&["load", "--contacts"]);
        a.push(dir.path().join("out").display().to_string());
        a.push("--mapping".into());
        a.push(mapping.display().to_string());
        a.push("--create-missing-fields".into());
        a.extend(extra.iter().cloned());
        let head: Vec<&str> = a.iter().map(String::as_str).collect();
        job(&head, target, dir.path(), name, &[])
    };
    let before: Vec<_> = [&given, &own]
        .iter()
        .map(|l| (children(&sb, l, "notes"), children(&sb, l, "tasks")))
        .collect();
    let flags = vec![
        "--tasks".to_string(),
        tasks.display().to_string(),
        "--notes".to_string(),
        notes.display().to_string(),
    ];
    let (code, _, why) = ghl_stderr(&sb, load(&given, "given", &flags), dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let (code, _, why) = ghl_stderr(&sb, load(&own, "own", &[]), dir.path()).await;
    assert_eq!(code, Some(0), "{why}");
    let want = |what: &str| -> Vec<(String, String)> {
        let v = picked.iter().enumerate();
        let mut v: Vec<_> = v
            .map(|(i, (_, e))| (e.clone(), format!("Given {what} {i}")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        added(children(&sb, &given, "notes"), &before[0].0),
        want("note")
    );
    assert_eq!(
        added(children(&sb, &given, "tasks"), &before[0].1),
        want("task")
    );
    for (table, was) in [("notes", &before[1].0), ("tasks", &before[1].1)] {
        let mut exported: Vec<_> = children(&sb, &source, table).into_values().collect();
        exported.sort();
        assert!(!exported.is_empty(), "{table}");
        assert_eq!(
            added(children(&sb, &own, table), was),
            exported,
            "the export's own {table}"
        );
    }
    sb.shutdown().await;
}

/// `load --delimiter ';'` alone reads `people.dat` as `;`-separated CSV, field for field; without
/// it the file is refused (its name says no format) and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delimiter_alone_reads_an_oddly_named_file_as_csv() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.dat");
    std::fs::write(
        &input,
        "email;first;city\nann@example.org;Ann;Paris, France\nbob@example.org;Bob;Rome\n",
    )
    .unwrap();
    let mapping = people_mapping(dir.path());
    let head = [
        "load",
        "--contacts",
        &input.display().to_string(),
        "--mapping",
        &mapping,
    ];
    let (code, stderr, d) =
        ghl_stderr(&sb, job(&head, &location, dir.path(), "a", &[]), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(stderr.contains("cannot tell the format"), "{d}");
    assert!(sb.store().contact_ids(&location).is_empty());
    let args = job(&head, &location, dir.path(), "b", &["--delimiter", ";"]);
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(sb.store().contact_ids(&location).len(), 2);
    for (email, first, city) in [
        ("ann@example.org", "Ann", "Paris, France"),
        ("bob@example.org", "Bob", "Rome"),
    ] {
        let c = by_email(&sb, &location, email);
        assert_eq!(c.len(), 1, "{email}");
        assert_eq!(
            (c[0]["firstName"].clone(), c[0]["city"].clone()),
            (json!(first), json!(city))
        );
    }
    sb.shutdown().await;
}

/// `tag --input-format ndjson` reads `list.data` as NDJSON and `tag --delimiter '|'` reads
/// `list.lst` as `|`-separated CSV: each tags exactly the contacts it lists; without the flags
/// neither file is read (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_reads_an_oddly_named_file_as_the_format_given() {
    let sb = sandbox(quiet_config(10)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let ndjson = dir.path().join("list.data");
    let lines: Vec<String> = ids[..3]
        .iter()
        .map(|id| json!({"contact_id": id, "add_tags": "from-ndjson"}).to_string())
        .collect();
    std::fs::write(&ndjson, lines.join("\n") + "\n").unwrap();
    let piped = dir.path().join("list.lst");
    let mut text = String::from("contact_id|add_tags\n");
    for id in &ids[3..6] {
        text.push_str(&format!("{id}|from-pipes\n"));
    }
    std::fs::write(&piped, text).unwrap();
    for (file, flags, tag, listed) in [
        (
            &ndjson,
            ["--input-format", "ndjson"],
            "from-ndjson",
            &ids[..3],
        ),
        (&piped, ["--delimiter", "|"], "from-pipes", &ids[3..6]),
    ] {
        let head = ["tag", "--input", &file.display().to_string()];
        let args = job(&head, &location, dir.path(), &format!("{tag}-bare"), &[]);
        let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
        assert_eq!(code, Some(2), "{d}");
        let args = job(&head, &location, dir.path(), tag, &flags);
        let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
        assert_eq!(code, Some(0), "{d}");
        let got: BTreeSet<String> = ids
            .iter()
            .filter(|id| tags_of(&sb, id).contains(tag))
            .cloned()
            .collect();
        assert_eq!(got, listed.iter().cloned().collect(), "{flags:?}");
    }
    sb.shutdown().await;
}

/// `tag --remove-column Drop` takes each row's own `;`-separated tags off its contact, and
/// nothing else; the default column (`remove_tags`) is not in the file, so without the flag
/// nothing would be removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_column_takes_each_rows_tags_off() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    for id in &ids[..4] {
        sb.store().edit_contact(id, |c| {
            c.insert("tags".into(), json!(["keep", "drop-a", "drop-b"]));
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let rows = [(0, "drop-a"), (1, "drop-a;drop-b"), (2, "")];
    let mut text = String::from("contact_id,Drop\n");
    for (i, drop) in rows {
        text.push_str(&format!("{},{drop}\n", ids[i]));
    }
    std::fs::write(&list, text).unwrap();
    let head = ["tag", "--input", &list.display().to_string()];
    let args = job(
        &head,
        &location,
        dir.path(),
        "r",
        &["--remove-column", "Drop"],
    );
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let all = ["keep", "drop-a", "drop-b"];
    for (i, want) in [
        (0, &["keep", "drop-b"][..]),
        (1, &["keep"][..]),
        (2, &all[..]),
        (3, &all[..]),
    ] {
        assert_eq!(tags_of(&sb, &ids[i]), set(want), "contact {i}");
    }
    sb.shutdown().await;
}

/// `load --empty`: a blank `city` cell leaves the contact's city as it is with `keep` (and by
/// default), and clears it with `clear`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_keeps_or_clears_a_field_a_blank_cell_names() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mapping = people_mapping(dir.path());
    let file = |name: &str, city: &str| {
        let p = dir.path().join(format!("{name}.csv"));
        std::fs::write(
            &p,
            format!("email,first,city\nann@example.org,Ann,{city}\n"),
        )
        .unwrap();
        p.display().to_string()
    };
    let city = || by_email(&sb, &location, "ann@example.org")[0]["city"].clone();
    let full = file("full", "Paris");
    let blank = file("blank", "");
    for (name, input, flags, want) in [
        ("full", &full, &[][..], json!("Paris")),
        ("default", &blank, &[][..], json!("Paris")),
        ("keep", &blank, &["--empty", "keep"][..], json!("Paris")),
        ("clear", &blank, &["--empty", "clear"][..], json!("")),
    ] {
        let head = ["load", "--contacts", input, "--mapping", &mapping];
        let (code, _, d) = ghl_stderr(
            &sb,
            job(&head, &location, dir.path(), name, flags),
            dir.path(),
        )
        .await;
        assert_eq!(code, Some(0), "{d}");
        let got = city();
        let cleared = want == "" && got.as_str().is_none_or(str::is_empty);
        assert!(got == want || cleared, "{name}: city {got}, want {want}");
    }
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        1,
        "one contact, updated"
    );
    sb.shutdown().await;
}

/// A file of 25 people with an empty email column (which the mapping maps): refused (exit 2,
/// naming `--allow-no-identity`) and nothing written; with `--allow-no-identity` each row makes
/// its contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_no_identity_loads_rows_without_email_or_phone() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mapping = people_mapping(dir.path());
    let input = dir.path().join("names.csv");
    let mut text = String::from("email,first,city\n");
    let names: BTreeSet<String> = (0..25).map(|i| format!("Nameless{i}")).collect();
    for n in &names {
        text.push_str(&format!(",{n},Oslo\n"));
    }
    std::fs::write(&input, text).unwrap();
    let head = [
        "load",
        "--contacts",
        &input.display().to_string(),
        "--mapping",
        &mapping,
    ];
    let (code, stderr, d) =
        ghl_stderr(&sb, job(&head, &location, dir.path(), "a", &[]), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(stderr.contains("--allow-no-identity"), "{d}");
    assert!(
        sb.store().contact_ids(&location).is_empty(),
        "nothing written"
    );
    let args = job(&head, &location, dir.path(), "b", &["--allow-no-identity"]);
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let got: BTreeSet<String> = sb
        .store()
        .contact_ids(&location)
        .iter()
        .map(|id| {
            sb.store().contact(id).unwrap()["firstName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, names);
    assert_eq!(sb.store().contact_ids(&location).len(), 25);
    sb.shutdown().await;
}

/// `load --custom-fields defs.json` with `custom_fields = "all"`: the column named after a field
/// of the file is carried, and the field made in the target with the file's type
/// (LARGE_TEXT); without the flag the load stops (exit 2) naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_names_the_source_field_definitions() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("defs.json");
    let field = json!({"id": "srcFieldShoe01", "name": "Shoe size note", "fieldKey": "contact.shoe_size_note", "dataType": "LARGE_TEXT", "position": 0});
    std::fs::write(&defs, json!({"customFields": [field]}).to_string()).unwrap();
    let mapping = dir.path().join("all.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n\n[contacts]\ncustom_fields = \"all\"\n\n[[contacts.columns]]\nname = \"email\"\n",
    )
    .unwrap();
    let input = dir.path().join("people.csv");
    std::fs::write(&input, "email,Shoe size note\nann@example.org,wide fit\n").unwrap();
    let head = [
        "load",
        "--contacts",
        &input.display().to_string(),
        "--mapping",
        &mapping.display().to_string(),
        "--create-missing-fields",
    ];
    let (code, stderr, d) =
        ghl_stderr(&sb, job(&head, &location, dir.path(), "a", &[]), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(stderr.contains("--custom-fields"), "{d}");
    let flags = ["--custom-fields", &defs.display().to_string()];
    let (code, _, d) = ghl_stderr(
        &sb,
        job(&head, &location, dir.path(), "b", &flags),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    let made: Vec<Value> = sb
        .store()
        .custom_fields(&location)
        .into_iter()
        .filter(|f| f["name"] == "Shoe size note")
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["dataType"], "LARGE_TEXT", "{}", made[0]);
    let contact = &by_email(&sb, &location, "ann@example.org")[0];
    let values: Vec<&Value> = contact["customFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["id"] == made[0]["id"])
        .collect();
    assert_eq!(values.len(), 1, "{contact}");
    assert_eq!(values[0]["value"], "wide fit", "{contact}");
    sb.shutdown().await;
}

/// `export --sandbox --sandbox-locations 3 --sandbox-contacts 4` exports exactly the 12 contacts
/// of the three seeded locations (made here from the same seed).
#[test]
fn sandbox_locations_is_how_many_locations_the_embedded_sandbox_has() {
    let dir = tempfile::tempdir().unwrap();
    let a = [
        "export",
        "--sandbox",
        "--sandbox-locations",
        "3",
        "--sandbox-contacts",
        "4",
        "--out",
        "./out",
        "--format",
        "csv",
        "--with",
        "none",
    ];
    let out = run_bin(&a, &[], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&a, dir.path(), &out)
    );
    let store = Store::new(42, 3, 4);
    let want: BTreeSet<String> = store
        .location_ids()
        .iter()
        .flat_map(|l| store.contact_ids(l))
        .collect();
    assert_eq!(want.len(), 12);
    assert_eq!(csv_ids(&dir.path().join("out")), want);
}
