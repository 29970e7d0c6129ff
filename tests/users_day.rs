//! The migrating user's day, as people save files and rerun commands: each case runs the binary
//! as a user would.

use std::path::Path;

use serde_json::Value;

use crate::util::{ghl_stderr, quiet_config, sandbox};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mapping() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/from-ecosend.toml").to_string()
}

fn load(location: &str, dir: &Path, input: &Path, extra: &[&str]) -> Vec<String> {
    let d = dir.display();
    let mut a = strings(&[
        "load",
        "--location",
        location,
        "--contacts",
        &input.display().to_string(),
        "--mapping",
        &mapping(),
        "--create-missing-fields",
        "--state",
        &format!("{d}/state.sqlite"),
        "--rate",
        "off",
    ]);
    a.extend(strings(extra));
    a
}

/// A CSV as Excel saves it where `,` is the decimal mark: `;`-separated, CRLF, a BOM.
fn excel_csv(path: &Path, people: usize) {
    let mut text = String::from(
        "\u{feff}Email Address;First Name;Last Name;Mobile;Organisation;Tags;Subscribed On\r\n",
    );
    for i in 0..people {
        text.push_str(&format!(
            "p{i}@example.org;P{i};Person;;Firma, GmbH;newsletter;01/02/2024\r\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// Every contact of the location with an email, by email.
fn emails(sb: &ghl_etl::sandbox::Sandbox, location: &str) -> Vec<(String, Value)> {
    let store = sb.store();
    let mut out: Vec<(String, Value)> = store
        .contact_ids(location)
        .iter()
        .filter_map(|id| store.contact(id))
        .filter_map(|c| Some((c.get("email")?.as_str()?.to_string(), c)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A `;`-separated file loads field for field with `--delimiter ';'` alone, and with no flag
/// at all (the separator is told from its header line); never as one column of blank contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_separated_file_loads_with_delimiter_alone_or_no_flag() {
    for extra in [&["--delimiter", ";"][..], &[][..]] {
        let sb = sandbox(quiet_config(0)).await;
        let location = sb.location_ids()[0].clone();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("export.csv");
        excel_csv(&input, 30);
        let (code, _, d) =
            ghl_stderr(&sb, load(&location, dir.path(), &input, extra), dir.path()).await;
        assert_eq!(code, Some(0), "{extra:?}: {d}");
        let got = emails(&sb, &location);
        assert_eq!(
            got.len(),
            30,
            "{extra:?}: one contact a row, each with its email\n{d}"
        );
        assert_eq!(
            sb.store().contact_ids(&location).len(),
            30,
            "no blank contacts"
        );
        let (email, c) = &got[0];
        assert_eq!(email, "p0@example.org");
        assert_eq!(c["firstName"], "P0", "{c}");
        assert_eq!(c["companyName"], "Firma, GmbH", "{c}");
        sb.shutdown().await;
    }
}

/// A `failed.csv` fixed in place and fed back: refused before anything is written, the file
/// left as the user saved it, and the way out said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_fed_back_from_its_own_folder_is_never_overwritten() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    std::fs::create_dir_all(&report).unwrap();
    let fixed = report.join("failed.csv");
    excel_csv(&fixed, 3);
    let before = std::fs::read(&fixed).unwrap();
    let args = load(
        &location,
        dir.path(),
        &fixed,
        &["--report", &report.display().to_string()],
    );
    let (code, stderr, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(
        stderr.contains("which holds the input") && stderr.contains("--report"),
        "{d}"
    );
    assert_eq!(
        std::fs::read(&fixed).unwrap(),
        before,
        "the user's file is untouched"
    );
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        0,
        "nothing written"
    );
    sb.shutdown().await;
}

/// `--out` a folder that holds the user's own files: refused before any part is written, the
/// files named; `--force` writes beside them and leaves them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_folder_with_the_users_own_files_is_refused_unless_forced() {
    let sb = sandbox(quiet_config(50)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("contacts")).unwrap();
    let mine = out.join("contacts/mine.csv");
    std::fs::write(&mine, "my,own\n1,2\n").unwrap();
    let export = |extra: &[&str]| {
        let mut a = strings(&[
            "export",
            "--location",
            &location,
            "--out",
            &out.display().to_string(),
            "--state",
            &dir.path().join("s.sqlite").display().to_string(),
            "--format",
            "csv",
            "--rate",
            "off",
        ]);
        a.extend(strings(extra));
        a
    };
    let (code, stderr, d) = ghl_stderr(&sb, export(&[]), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(
        stderr.contains("holds files this tool did not write") && stderr.contains("mine.csv"),
        "{d}"
    );
    assert!(stderr.contains("--force"), "{d}");
    let parts = |dir: &Path| -> usize {
        std::fs::read_dir(dir.join("contacts"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("part-")
            })
            .count()
    };
    assert_eq!(parts(&out), 0, "nothing written beside the user's file");
    let (code, _, d) = ghl_stderr(&sb, export(&["--force"]), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(parts(&out) > 0, "{d}");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "my,own\n1,2\n",
        "left alone"
    );
    sb.shutdown().await;
}

/// `load --restart` works every row again, and creates nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_restarted_works_every_row_again_and_creates_nothing_twice() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    excel_csv(&input, 12);
    let report = dir.path().join("report").display().to_string();
    let run = |extra: &[&str]| {
        let mut a = load(&location, dir.path(), &input, &["--report", &report]);
        a.extend(strings(extra));
        a
    };
    let (code, _, d) = ghl_stderr(&sb, run(&[]), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let before = sb.stats().requests;
    // A plain rerun: every row was settled, nothing is sent.
    let (code, stderr, d) = ghl_stderr(&sb, run(&[]), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(
        stderr.contains("every row was settled by an earlier run"),
        "{d}"
    );
    let plain = sb.stats().requests - before;
    // --restart: every row upserted again, matched, nothing created.
    let (code, stderr, d) = ghl_stderr(&sb, run(&["--restart"]), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(stderr.contains("12 updated"), "{d}");
    assert!(sb.stats().requests - before - plain >= 12, "{d}");
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        12,
        "nothing created twice"
    );
    sb.shutdown().await;
}

/// A tag list as a person saves it, headers `Email` and `Add Tags`: read as the email and add
/// columns, every contact tagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_list_with_headers_in_another_case_tags_every_contact() {
    let sb = sandbox(quiet_config(20)).await;
    let location = sb.location_ids()[0].clone();
    let store = sb.store();
    let people: Vec<(String, String)> = store
        .contact_ids(&location)
        .into_iter()
        .filter_map(|id| {
            let c = store.contact(&id)?;
            Some((id, c.get("email")?.as_str()?.to_string()))
        })
        .take(10)
        .collect();
    assert_eq!(people.len(), 10);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let mut text = String::from("Email,Add Tags\n");
    for (_, email) in &people {
        text.push_str(&format!("{email},vip\n"));
    }
    std::fs::write(&list, text).unwrap();
    let d = dir.path().display();
    let args = strings(&[
        "tag",
        "--location",
        &location,
        "--input",
        &list.display().to_string(),
        "--state",
        &format!("{d}/s.sqlite"),
        "--report",
        &format!("{d}/report"),
        "--rate",
        "off",
    ]);
    let (code, stderr, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(
        stderr.contains("Reading the column `Email` as --email-column email"),
        "{d}"
    );
    for (id, _) in &people {
        let c = sb.store().contact(id).unwrap();
        let tags: Vec<&str> = c["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(tags.contains(&"vip"), "{id}: {tags:?}\n{d}");
    }
    sb.shutdown().await;
}

/// A folder the user cannot write: the error names the folder they gave and says "permission
/// denied". Run as an unprivileged user (`setpriv`), since root writes anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_folder_says_permission_denied_in_the_users_terms() {
    use std::os::unix::fs::PermissionsExt;
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok();
    if !(as_root && setpriv) {
        // As an ordinary user the folder's mode already applies.
        eprintln!("SKIPPED: needs root and setpriv to run the binary as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.path().join("ghl-etl");
    std::fs::copy(crate::util::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // The other user must be able to run the copy (a private TMPDIR's parents may forbid it).
    let runs = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        eprintln!("SKIPPED: an unprivileged user cannot run {}", bin.display());
        return;
    }
    let cases = [
        (
            locked.join("out"),
            dir.path().join("s.sqlite"),
            "the output folder",
        ),
        (
            dir.path().join("out"),
            locked.join("s.sqlite"),
            "the state database",
        ),
    ];
    for (out, state, what) in cases {
        let o = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["export", "--sandbox", "--quiet", "--out"])
            .arg(&out)
            .arg("--state")
            .arg(&state)
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write in {what}")),
            "{stderr}"
        );
        assert!(stderr.contains("Permission denied"), "{stderr}");
    }
}

/// The dry run predicts the load: notes whose contact the same load creates count as
/// would-write, the rows that would fail are in `would-fail.csv` with their reasons, and the
/// counts equal the real run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_predicts_the_loads_counts_and_lists_the_rows_that_would_fail() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        r#"version = 1
direction = "load"

[contacts]
[[contacts.columns]]
name = "email"
from = "Email"
[[contacts.columns]]
name = "firstName"
from = "First Name"

[notes]
[[notes.columns]]
name = "contact_email"
from = "Email"
[[notes.columns]]
name = "body"
from = "Note"
"#,
    )
    .unwrap();
    let people = dir.path().join("people.csv");
    let mut text = String::from("Email,First Name,Note\n");
    for i in 0..20 {
        text.push_str(&format!("p{i}@example.org,P{i},Met at the fair {i}\n"));
    }
    std::fs::write(&people, text).unwrap();
    let d = dir.path().display().to_string();
    let notes_input = dir.path().join("notes.csv");
    // The same people's notes, and two of people the file does not hold: those fail.
    let mut notes = std::fs::read_to_string(&people).unwrap();
    notes.push_str("x1@example.org,X,lost\nx2@example.org,Y,lost\n");
    std::fs::write(&notes_input, notes).unwrap();
    let run = |extra: &[&str]| {
        let mut a = strings(&[
            "load",
            "--location",
            &location,
            "--contacts",
            &people.display().to_string(),
            "--notes",
            &notes_input.display().to_string(),
            "--mapping",
            &mapping.display().to_string(),
            "--state",
            &format!("{d}/s.sqlite"),
            "--report",
            &format!("{d}/report"),
            "--rate",
            "off",
        ]);
        a.extend(strings(extra));
        a
    };
    let (code, dry, d1) = ghl_stderr(&sb, run(&["--dry-run"]), dir.path()).await;
    assert_eq!(code, Some(1), "rows would fail: {d1}");
    assert!(
        dry.contains("would write          40"),
        "20 contacts and their 20 notes: {d1}"
    );
    assert!(dry.contains("would fail            2"), "{d1}");
    let per_table = |t: &str| dry.lines().any(|l| l.trim_start().starts_with(t));
    assert!(
        per_table("contacts           20 rows: 20 would write, 0 would fail"),
        "{d1}"
    );
    assert!(
        per_table("notes              22 rows: 20 would write, 2 would fail"),
        "{d1}"
    );
    let (header, rows) = crate::util::read_csv(&dir.path().join("report/would-fail.csv"));
    assert_eq!(header.first().map(String::as_str), Some("table"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r[0] == "notes" && r.last().unwrap().contains("no contact")),
        "{rows:?}"
    );
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        0,
        "a dry run writes nothing"
    );
    let (code, real, d2) = ghl_stderr(&sb, run(&[]), dir.path()).await;
    assert_eq!(code, Some(1), "{d2}");
    assert!(
        real.contains("= 40 created + 0 updated + 0 deleted + 0 unchanged + 2 failed"),
        "{d2}"
    );
    assert!(
        real.contains(
            "notes              22 = 20 created + 0 updated + 0 deleted + 0 unchanged + 2 failed"
        ),
        "per table: {d2}"
    );
    sb.shutdown().await;
}

/// With stderr a pipe (a cron log) no bar is drawn, and a progress line is logged every
/// `--progress-every` seconds. The run is paced to last over three seconds, so the lines must
/// come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_progress_is_a_line_every_few_seconds() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    excel_csv(&input, 60);
    let mut args = load(&location, dir.path(), &input, &["--progress-every", "1"]);
    // 60 upserts at 15 a second: four seconds at least.
    let rate = args.iter().position(|a| a == "--rate").unwrap() + 1;
    args[rate] = "15/1s".into();
    let (code, stderr, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let lines = stderr.lines().filter(|l| l.contains("Progress: ")).count();
    assert!(
        lines >= 2,
        "a line a second over four seconds: {lines}\n{d}"
    );
    assert!(!stderr.contains('\u{1b}'), "no bar, no escape codes: {d}");
    sb.shutdown().await;
}

/// A removal-only tag run says "untagged", and a list that names a contact twice says how
/// many distinct contacts it reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_summary_says_removals_and_distinct_contacts() {
    let sb = sandbox(quiet_config(20)).await;
    let location = sb.location_ids()[0].clone();
    let ids: Vec<String> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .take(10)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    let mut text = String::from("contact_id\n");
    for id in ids.iter().chain(ids.iter().take(2)) {
        text.push_str(&format!("{id}\n"));
    }
    std::fs::write(&list, text).unwrap();
    let d = dir.path().display();
    let args = strings(&[
        "tag",
        "--location",
        &location,
        "--input",
        &list.display().to_string(),
        "--remove",
        "lead",
        "--state",
        &format!("{d}/s.sqlite"),
        "--report",
        &format!("{d}/report"),
        "--rate",
        "off",
    ]);
    let (code, stderr, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(stderr.contains("untagged"), "{d}");
    assert!(!stderr.contains(" tagged +"), "{d}");
    assert!(stderr.contains("10 distinct"), "{d}");
    sb.shutdown().await;
}

/// A failed.csv fixed and fed back settles the original rows: the first job's rerun lists them
/// as fixed, with the row that fixed them, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_fixed_through_a_fed_back_failed_csv_are_fixed_in_the_first_job_too() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    let mut text =
        String::from("Email Address,First Name,Last Name,Mobile,Organisation,Tags,Subscribed On\n");
    for i in 0..10 {
        let email = if i % 4 == 0 {
            format!("broken{i}.example.org")
        } else {
            format!("p{i}@example.org")
        };
        text.push_str(&format!("{email},P{i},Person,,,,01/02/2024\n"));
    }
    std::fs::write(&input, text).unwrap();
    let report = dir.path().join("report");
    let first = load(
        &location,
        dir.path(),
        &input,
        &["--report", &report.display().to_string()],
    );
    let (code, _, d) = ghl_stderr(&sb, first.clone(), dir.path()).await;
    assert_eq!(code, Some(1), "3 rows fail: {d}");
    // The user copies failed.csv out of the report folder and fixes the emails.
    let failed = std::fs::read_to_string(report.join("failed.csv")).unwrap();
    let fixed_text = failed.replace(".example.org", "@example.org");
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(&fixed, fixed_text).unwrap();
    let second_report = dir.path().join("fixed-report").display().to_string();
    let (code, _, d) = ghl_stderr(
        &sb,
        load(&location, dir.path(), &fixed, &["--report", &second_report]),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(sb.store().contact_ids(&location).len(), 10);
    // The first job, run again: nothing left to fail.
    let (code, stderr, d) = ghl_stderr(&sb, first, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert!(stderr.contains("3 fixed later"), "{d}");
    let (_, rows) = crate::util::read_csv(&report.join("succeeded.csv"));
    let fixed_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[5] == "fixed").collect();
    assert_eq!(fixed_rows.len(), 3, "{rows:?}");
    assert!(
        fixed_rows.iter().all(|r| r[6].starts_with("fixed by ")),
        "{fixed_rows:?}"
    );
    let (_, still) = crate::util::read_csv(&report.join("failed.csv"));
    assert!(still.is_empty(), "{still:?}");
    sb.shutdown().await;
}

/// At a terminal the bar is drawn, and its clock moves between the job's updates. `script`
/// (util-linux) gives the binary a pseudo-terminal; the load (90 rows at 15 a second) is
/// paced to last over five seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_terminal_the_bar_is_drawn_and_its_clock_moves() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `script` (util-linux) is not installed");
        return;
    }
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    excel_csv(&input, 90);
    let mut args = load(&location, dir.path(), &input, &[]);
    let rate = args.iter().position(|a| a == "--rate").unwrap() + 1;
    args[rate] = "15/1s".into();
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let command = std::iter::once(crate::util::bin().display().to_string())
        .chain(args)
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let (url, cwd) = (sb.url(), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(cwd)
            .env("GHL_BASE_URL", url)
            .env("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN)
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // The bar's clock, redrawn at least once a second while the rows trickle in.
    let ticks: std::collections::BTreeSet<&str> = ["00:00:01", "00:00:02", "00:00:03"]
        .into_iter()
        .filter(|t| screen.contains(t))
        .collect();
    assert_eq!(ticks.len(), 3, "the clock moved: {screen}");
    assert!(
        screen.contains("/90 rows "),
        "the total is known from the start: {screen}"
    );
    assert!(
        !screen.contains("Progress: "),
        "a bar, not progress lines: {screen}"
    );
    sb.shutdown().await;
}

/// A row holding only `""`, and the `;;;;;;` rows a spreadsheet pads a sheet with, are in a
/// report like every other row: succeeded.csv, as blank, with nothing written for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_rows_are_reported_as_blank_and_write_nothing() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    excel_csv(&input, 3);
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("\"\"\r\n;;;;;;\r\n\r\n;;;;;;\r\n");
    std::fs::write(&input, text).unwrap();
    let report = dir.path().join("report");
    let args = load(
        &location,
        dir.path(),
        &input,
        &["--report", &report.display().to_string()],
    );
    let (code, _, d) = ghl_stderr(&sb, args, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let (_, ok) = crate::util::read_csv(&report.join("succeeded.csv"));
    let mut lines: Vec<&str> = ok.iter().map(|r| r[2].as_str()).collect();
    lines.sort_by_key(|l| l.parse::<u64>().unwrap());
    assert_eq!(lines, ["2", "3", "4", "5", "6", "8"], "{ok:?}");
    let blank: Vec<&Vec<String>> = ok.iter().filter(|r| r[6].contains("blank row")).collect();
    assert_eq!(blank.len(), 3, "{ok:?}");
    assert!(blank.iter().all(|r| r[5] == "unchanged"), "{blank:?}");
    let failed = report.join("failed.csv");
    assert!(!failed.exists() || crate::util::read_csv(&failed).1.is_empty());
    assert_eq!(sb.store().contact_ids(&location).len(), 3);
    sb.shutdown().await;
}
