//! Flags no other test passes, each run through the binary as a user would, each test failing
//! if its flag were ignored: `--csv-safe` / `--no-csv-safe`, `--list-separator`,
//! `--updated-since`, `--token-file`, and `ghl-etl sandbox` started as a process with
//! `--contacts` and `--seed`, the README's export run against it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::export::parts;
use crate::util::{bin, describe, ghl_stderr, quiet_config, read_csv, run_bin, sandbox};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `export --format csv` of the sandbox's first location into `dir/out` with `extra` flags.
fn csv_export(location: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let d = dir.display();
    let mut a = strings(&[
        "export",
        "--location",
        location,
        "--out",
        &format!("{d}/out"),
        "--state",
        &format!("{d}/state.sqlite"),
        "--format",
        "csv",
        "--with",
        "none",
        "--rate",
        "off",
    ]);
    a.extend(strings(extra));
    a
}

/// Every row of the contacts CSV files, as (header, rows).
fn contact_rows(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for p in parts(&dir.join("out"), "contacts", "csv") {
        let (h, r) = read_csv(&p);
        header = h;
        rows.extend(r);
    }
    (header, rows)
}

fn cell<'r>(header: &[String], row: &'r [String], name: &str) -> &'r str {
    let at = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no {name}"));
    &row[at]
}

/// A first name that a spreadsheet would run as a formula: defused (`'=1+1`) with
/// `--csv-safe`, written as it is with `--no-csv-safe`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_safe_defuses_formulas_and_no_csv_safe_keeps_them() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let id = sb.store().contact_ids(&location)[0].clone();
    sb.store().edit_contact(&id, |c| {
        c.insert("firstName".into(), json!("=1+1"));
    });
    for (flag, want) in [("--csv-safe", "'=1+1"), ("--no-csv-safe", "=1+1")] {
        let dir = tempfile::tempdir().unwrap();
        let (code, _, d) =
            ghl_stderr(&sb, csv_export(&location, dir.path(), &[flag]), dir.path()).await;
        assert_eq!(code, Some(0), "{d}");
        let (h, rows) = contact_rows(dir.path());
        let row = rows
            .iter()
            .find(|r| cell(&h, r, "id") == id)
            .expect("the contact");
        assert_eq!(cell(&h, row, "firstName"), want, "{flag}");
    }
    sb.shutdown().await;
}

/// `--list-separator '|'` joins a contact's tags with `|`, the default with `;`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_separator_joins_the_tags_cell() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let id = sb.store().contact_ids(&location)[0].clone();
    sb.store().edit_contact(&id, |c| {
        c.insert("tags".into(), json!(["alpha", "beta"]));
    });
    for (extra, want) in [
        (vec!["--list-separator", "|"], "alpha|beta"),
        (vec![], "alpha;beta"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let args = csv_export(&location, dir.path(), &extra);
        let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
        assert_eq!(code, Some(0), "{d}");
        let (h, rows) = contact_rows(dir.path());
        let row = rows
            .iter()
            .find(|r| cell(&h, r, "id") == id)
            .expect("the contact");
        assert_eq!(cell(&h, row, "tags"), want, "{extra:?}");
    }
    sb.shutdown().await;
}

/// `--updated-since` exports exactly the contacts updated at or after the instant: three
/// edited now, none of the others (seeded with past dates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_since_exports_exactly_the_contacts_updated_since() {
    let sb = sandbox(quiet_config(40)).await;
    let location = sb.location_ids()[0].clone();
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let edited: BTreeSet<String> = sb.store().contact_ids(&location)[..3]
        .iter()
        .cloned()
        .collect();
    for id in &edited {
        sb.store().edit_contact(id, |c| {
            c.insert("city".into(), json!("Edited"));
        });
    }
    let want: BTreeSet<String> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter(|id| {
            let c = sb.store().contact(id).unwrap();
            ghl_etl::api::pages::epoch_ms(&c["dateUpdated"]).unwrap() >= since.timestamp_millis()
        })
        .collect();
    assert_eq!(want, edited, "only the edited contacts are that recent");
    let dir = tempfile::tempdir().unwrap();
    let stamp = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let args = csv_export(&location, dir.path(), &["--updated-since", &stamp]);
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let (h, rows) = contact_rows(dir.path());
    let got: BTreeSet<String> = rows.iter().map(|r| cell(&h, r, "id").to_string()).collect();
    assert_eq!(got, edited);
    sb.shutdown().await;
}

/// `--token-file` is where the token comes from (no GHL_TOKEN): the right one exports, a
/// wrong one in the file is refused with exit 3 and never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_token_file() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let url = sb.url();
    for (token, want) in [
        (ghl_etl::sandbox::DEFAULT_TOKEN, 0),
        ("wrong-token-in-a-file-123", 3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let mut a = csv_export(&location, dir.path(), &[]);
        a.extend(strings(&["--token-file", &file.display().to_string()]));
        let (url, cwd) = (url.clone(), dir.path().to_path_buf());
        let (code, stderr, d) = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let out = run_bin(&a, &[("GHL_BASE_URL", url.as_str())], &cwd);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code(), stderr, describe(&a, &cwd, &out))
        })
        .await
        .unwrap();
        assert_eq!(code, Some(want), "{d}");
        assert!(!stderr.contains(token) || want == 0, "{d}");
        if want == 0 {
            assert_eq!(contact_rows(dir.path()).1.len(), 5, "{d}");
        }
    }
    sb.shutdown().await;
}

/// A `ghl-etl sandbox` process; killed when dropped.
struct SandboxProcess(std::process::Child);

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ghl-etl sandbox` as a process on a free port with `args`; answers it, its URL and the
/// first location id it prints, once it listens.
fn start_sandbox(args: &[&str]) -> (SandboxProcess, String, String) {
    let (p, url, mut all) = start_sandbox_all(args);
    (p, url, all.remove(0))
}

/// [`start_sandbox`], answering every location id it prints.
fn start_sandbox_all(args: &[&str]) -> (SandboxProcess, String, Vec<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin())
        .args(["sandbox", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    // Its printout: "Locations:", then one id a line.
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the sandbox prints its locations")
            .unwrap();
        if line.trim() == "Locations:" {
            break;
        }
    }
    let mut locations = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            break;
        }
        locations.push(line.trim().to_string());
    }
    std::thread::spawn(move || lines.for_each(drop));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ghl-etl sandbox ended: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox never listened"
        );
        std::thread::sleep(Duration::from_millis(10)); // poll interval
    }
    (SandboxProcess(child), url, locations)
}

/// `ghl-etl sandbox --contacts 37 --seed S` as a process, and the README's export against it
/// (with the URL and token it prints): 37 contacts; the same seed gives the same contacts, another
/// seed others.
#[test]
fn the_sandbox_command_honours_contacts_and_seed_and_the_readme_export_runs_against_it() {
    let export_ids = |seed: &str| -> BTreeSet<String> {
        let flags = ["--contacts", "37", "--seed", seed, "--rate-limit", "off"];
        let (_sb, url, location) = start_sandbox(&flags);
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("GHL_BASE_URL", url.as_str()),
            ("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN),
        ];
        let a = [
            "export",
            "--location",
            &location,
            "--out",
            "./export",
            "--format",
            "csv",
        ];
        let out = run_bin(&a, &env, dir.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            describe(&a, dir.path(), &out)
        );
        let mut ids = BTreeSet::new();
        for p in parts(&dir.path().join("export"), "contacts", "csv") {
            let (h, rows) = read_csv(&p);
            ids.extend(rows.iter().map(|r| cell(&h, r, "id").to_string()));
        }
        ids
    };
    let a = export_ids("7");
    assert_eq!(a.len(), 37);
    assert_eq!(export_ids("7"), a, "the same seed, the same contacts");
    assert!(
        export_ids("8").is_disjoint(&a),
        "another seed, other contacts"
    );
}

/// `bulk campaign-add --campaign C` enrols exactly the listed contacts in C (the sandbox's
/// store says so), `campaign-remove` takes them out again, and `business-clear` clears the
/// business of exactly the listed contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_add_remove_and_business_clear_change_exactly_the_listed_contacts() {
    let sb = sandbox(quiet_config(12)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let (listed, others) = ids.split_at(5);
    let campaign = sb.store().campaign_ids(&location)[0].clone();
    let business = sb.store().business_ids(&location)[0].clone();
    for id in &ids {
        sb.store().edit_contact(id, |c| {
            c.insert("businessId".into(), json!(business));
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    crate::bulk::id_list(&list, listed);
    let run = |action: &str, extra: &[&str], name: &str| {
        let d = dir.path().display();
        let mut a = strings(&["bulk", action, "--location", &location, "--input"]);
        a.push(list.display().to_string());
        a.extend(strings(extra));
        a.extend(strings(&[
            "--state",
            &format!("{d}/{name}.sqlite"),
            "--report",
        ]));
        a.push(format!("{d}/{name}"));
        a.extend(strings(&["--rate", "off"]));
        a
    };
    let in_campaign = |sb: &crate::util::CheckedSandbox| -> BTreeSet<String> {
        ids.iter()
            .filter(|id| sb.store().campaigns_of(id).contains(&campaign))
            .cloned()
            .collect()
    };
    let want: BTreeSet<String> = listed.iter().cloned().collect();
    let args = run("campaign-add", &["--campaign", &campaign], "add");
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(in_campaign(&sb), want);
    let args = run("campaign-remove", &["--campaign", &campaign], "remove");
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(in_campaign(&sb).is_empty());
    let (code, _, d) = ghl_stderr(&sb, run("business-clear", &[], "clear"), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let business_of = |id: &String| sb.store().contact(id).unwrap()["businessId"].clone();
    assert!(listed.iter().all(|id| business_of(id).is_null()), "cleared");
    assert!(
        others.iter().all(|id| business_of(id) == json!(business)),
        "others kept"
    );
    sb.shutdown().await;
}

/// `--tasks-per-contact` reads tasks with one request per contact (the sandbox counts them);
/// without it, through the bulk task search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_per_contact_reads_each_contacts_tasks() {
    let sb = sandbox(quiet_config(8)).await;
    let location = sb.location_ids()[0].clone();
    for (extra, per_contact) in [(vec!["--tasks-per-contact"], 8), (vec![], 0)] {
        sb.reset_stats();
        let dir = tempfile::tempdir().unwrap();
        let mut args = csv_export(&location, dir.path(), &extra);
        let at = args.iter().position(|a| a == "none").unwrap();
        args[at] = "tasks".into();
        let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
        assert_eq!(code, Some(0), "{d}");
        let by_route = sb.stats().by_route;
        let n = |route: &str| by_route.get(route).map_or(0, |m| m.values().sum::<u64>());
        assert_eq!(
            n("GET /contacts/{contactId}/tasks"),
            per_contact,
            "{extra:?}: {by_route:?}"
        );
        assert_eq!(
            n("POST /locations/{locationId}/tasks/search") > 0,
            per_contact == 0
        );
    }
    sb.shutdown().await;
}

/// `export --sandbox --sandbox-contacts 23`: the embedded sandbox holds 23 contacts, all
/// exported.
#[test]
fn sandbox_contacts_sizes_the_embedded_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let a = [
        "export",
        "--sandbox",
        "--sandbox-contacts",
        "23",
        "--out",
        "./x",
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
    let rows: usize = parts(&dir.path().join("x"), "contacts", "csv")
        .iter()
        .map(|p| read_csv(p).1.len())
        .sum();
    assert_eq!(rows, 23);
}

/// Tag column flags: a list whose columns are named `Record`, `Mail` and `Mobile` tags exactly
/// its contacts by id, email and phone with `--id-column`, `--email-column` and
/// `--phone-column`, with the per-row tags of `--add-column`; without the flags nothing matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_column_flags_name_the_lists_own_columns() {
    let sb = sandbox(quiet_config(10)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let field = |id: &String, k: &str| {
        sb.store().contact(id).unwrap()[k]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let mut text = String::from("Record,Mail,Mobile,Labels\n");
    text.push_str(&format!("{},,,by-id\n", ids[0]));
    text.push_str(&format!(",{},,by-email\n", field(&ids[1], "email")));
    text.push_str(&format!(",,{},by-phone\n", field(&ids[2], "phone")));
    std::fs::write(&list, text).unwrap();
    let args = |name: &str, cols: &[&str]| {
        let d = dir.path().display();
        let mut a = strings(&["tag", "--location", &location, "--input"]);
        a.push(list.display().to_string());
        a.extend(strings(cols));
        a.extend(strings(&[
            "--state",
            &format!("{d}/{name}.sqlite"),
            "--report",
        ]));
        a.push(format!("{d}/{name}"));
        a.extend(strings(&["--rate", "off"]));
        a
    };
    let (code, _, d) =
        ghl_stderr(&sb, args("plain", &["--add-column", "Labels"]), dir.path()).await;
    assert_eq!(
        code,
        Some(2),
        "no column to match on without the flags: {d}"
    );
    let cols = [
        "--id-column",
        "Record",
        "--email-column",
        "Mail",
        "--phone-column",
        "Mobile",
        "--add-column",
        "Labels",
    ];
    let (code, _, d) = ghl_stderr(&sb, args("named", &cols), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let tags = |id: &String| sb.store().contact(id).unwrap()["tags"].clone();
    for (id, tag) in [
        (&ids[0], "by-id"),
        (&ids[1], "by-email"),
        (&ids[2], "by-phone"),
    ] {
        assert!(
            tags(id).as_array().unwrap().iter().any(|t| t == tag),
            "{id}: {}",
            tags(id)
        );
    }
    for id in &ids[3..] {
        let t = tags(id);
        assert!(
            !t.as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().is_some_and(|s| s.starts_with("by-"))),
            "{id}: {t}"
        );
    }
    sb.shutdown().await;
}

/// `load --input-format csv` reads a CSV saved as `.txt`; `--tags replace` sends the row's
/// tags in the body (the contact keeps only those), `--tags add` (the default) adds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_format_and_tags_mode_are_honoured() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "version = 1\ndirection = \"load\"\n\n[contacts]\n\n[[contacts.columns]]\nname = \"email\"\nfrom = \"email\"\n\n[[contacts.columns]]\nname = \"tags\"\nfrom = \"tags\"\n",
    )
    .unwrap();
    let load = |file: &Path, extra: &[&str], name: &str| {
        let d = dir.path().display();
        let mut a = strings(&["load", "--location", &location, "--contacts"]);
        a.push(file.display().to_string());
        a.extend(strings(&["--mapping", &mapping.display().to_string()]));
        a.extend(strings(extra));
        a.extend(strings(&[
            "--state",
            &format!("{d}/{name}.sqlite"),
            "--report",
        ]));
        a.push(format!("{d}/{name}"));
        a.extend(strings(&["--rate", "off"]));
        a
    };
    let first = dir.path().join("people.txt");
    std::fs::write(&first, "email,tags\nann@example.org,one\n").unwrap();
    let (code, _, d) = ghl_stderr(
        &sb,
        load(&first, &["--input-format", "csv"], "a"),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    let id = sb.store().contact_ids(&location)[0].clone();
    let tags = || -> BTreeSet<String> {
        let c = sb.store().contact(&id).unwrap();
        c["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tags(), BTreeSet::from(["one".to_string()]));
    let second = dir.path().join("second.txt");
    std::fs::write(&second, "email,tags\nann@example.org,two\n").unwrap();
    let (code, _, d) = ghl_stderr(
        &sb,
        load(&second, &["--input-format", "csv"], "b"),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(
        tags(),
        BTreeSet::from(["one".to_string(), "two".to_string()]),
        "added"
    );
    let third = dir.path().join("third.txt");
    std::fs::write(&third, "email,tags\nann@example.org,three\n").unwrap();
    let replace = ["--input-format", "csv", "--tags", "replace"];
    let (code, _, d) = ghl_stderr(&sb, load(&third, &replace, "c"), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(tags(), BTreeSet::from(["three".to_string()]), "replaced");
    sb.shutdown().await;
}

/// Sandbox flags, export flags, token, exit code, and a word stderr must hold.
type Case = (
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    i32,
    &'static str,
);

/// `ghl-etl sandbox` flags, each on its own sandbox process, each seen through an export that
/// would end otherwise if the flag were ignored: `--token NAME=scope` (a token without
/// contacts.readonly: exit 3), `--rate-limit 5/1s` (an unpaced export meets 429s), `--daily-limit`
/// (exit 4), `--hostile page-repeats` (exit 6), `--fault-rate 1` (exit 5), `--locations 2`
/// (two locations printed and exported).
#[test]
fn the_sandbox_commands_flags_each_have_their_effect() {
    let cases: [Case; 5] = [
        (
            &["--token", "reader=businesses.readonly"],
            &[],
            "reader",
            3,
            "contacts.readonly",
        ),
        (
            &["--rate-limit", "5/1s"],
            &["--rate", "off", "--page-size", "1"],
            "sandbox-token",
            0,
            "answered 429",
        ),
        (
            &["--daily-limit", "3"],
            &["--daily-reserve", "0", "--page-size", "1"],
            "sandbox-token",
            4,
            "daily",
        ),
        (
            &["--hostile", "page-repeats"],
            &["--page-size", "10"],
            "sandbox-token",
            6,
            "already listed",
        ),
        (
            &["--fault-rate", "1"],
            &["--max-attempts", "2"],
            "sandbox-token",
            5,
            "rerun",
        ),
    ];
    for (flags, extra, token, want, says) in cases {
        let mut all = vec!["--contacts", "30"];
        all.extend_from_slice(flags);
        let (_sb, url, location) = start_sandbox(&all);
        let dir = tempfile::tempdir().unwrap();
        let mut a = vec![
            "export",
            "--location",
            &location,
            "--out",
            "./x",
            "--with",
            "none",
        ];
        a.extend_from_slice(extra);
        let out = run_bin(
            &a,
            &[("GHL_BASE_URL", url.as_str()), ("GHL_TOKEN", token)],
            dir.path(),
        );
        let d = describe(&a, dir.path(), &out);
        assert_eq!(out.status.code(), Some(want), "{flags:?}: {d}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            stderr.contains(&says.to_lowercase()),
            "{flags:?}: stderr lacks {says:?}: {d}"
        );
        if want == 0 {
            let n = stderr
                .split(" answered 429")
                .next()
                .and_then(|s| s.rsplit(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok());
            assert!(n.is_some_and(|n| n > 0), "{flags:?}: 429s met: {d}");
        }
    }
    let (_sb, url, locations) = start_sandbox_all(&["--contacts", "4", "--locations", "2"]);
    assert_eq!(locations.len(), 2, "{locations:?}");
    let dir = tempfile::tempdir().unwrap();
    let a = [
        "export",
        "--location",
        &locations[1],
        "--out",
        "./x",
        "--with",
        "none",
        "--format",
        "csv",
    ];
    let env = [
        ("GHL_BASE_URL", url.as_str()),
        ("GHL_TOKEN", "sandbox-token"),
    ];
    let out = run_bin(&a, &env, dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&a, dir.path(), &out)
    );
    let rows: usize = parts(&dir.path().join("x"), "contacts", "csv")
        .iter()
        .map(|p| read_csv(p).1.len())
        .sum();
    assert_eq!(rows, 4, "the second location's contacts");
}

/// OAuth with `--client-secret-file` (no GHL_CLIENT_SECRET): the secret is read from the file
/// (the export runs and the refresh token file is rotated); a wrong secret in the file is
/// refused with exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_secret_comes_from_client_secret_file() {
    use ghl_etl::sandbox::{OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let url = sb.url();
    for (secret, want) in [(OAUTH_CLIENT_SECRET, 0), ("not-the-secret", 3)] {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, secret).unwrap();
        let refresh_file = dir.path().join("refresh");
        let refresh = sb.issue_refresh_token(&["contacts.readonly"]);
        std::fs::write(&refresh_file, &refresh).unwrap();
        let mut a = csv_export(&location, dir.path(), &[]);
        a.extend(strings(&[
            "--client-id",
            OAUTH_CLIENT_ID,
            "--client-secret-file",
        ]));
        a.push(secret_file.display().to_string());
        a.push("--refresh-token-file".into());
        a.push(refresh_file.display().to_string());
        let (url, cwd) = (url.clone(), dir.path().to_path_buf());
        let (code, d) = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let out = run_bin(&a, &[("GHL_BASE_URL", url.as_str())], &cwd);
            (out.status.code(), describe(&a, &cwd, &out))
        })
        .await
        .unwrap();
        assert_eq!(code, Some(want), "{d}");
        let rotated = std::fs::read_to_string(&refresh_file).unwrap() != refresh;
        assert_eq!(
            rotated,
            want == 0,
            "the refresh token was used only with the right secret"
        );
    }
    sb.shutdown().await;
}
