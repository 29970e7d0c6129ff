//! Bad input files, tried systematically (issue 10): each case is a file under
//! `tests/fixtures/inputs/` (or one generated here: a 10 MB cell, Parquet of the wrong types)
//! loaded by the binary into a sandbox. A case names the exact error it must give, with the
//! row and column for a bad row, and how many of its other rows must land. A file that cannot
//! be read at all must fail before any write, naming the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, Time64MicrosecondArray};

use crate::util::{ghl_stderr, quiet_config, read_csv, sandbox};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inputs")
}

/// What loading one file must give.
pub struct Case {
    pub file: &'static str,
    /// A file that cannot be read: the text the error must contain (after `<path>: `).
    pub fatal: Option<&'static str>,
    /// Bad rows: (row, reason) as failed.csv gives them.
    pub bad: &'static [(u64, &'static str)],
    /// Rows that must land.
    pub landed: usize,
}

/// Every input case: committed fixtures, then generated ones (named `generated/...`).
pub const LOAD_CASES: &[Case] = &[
    Case { file: "valid/bom.csv", fatal: None, bad: &[], landed: 2 },
    Case { file: "invalid/latin1.csv", fatal: None, bad: &[(3, "invalid UTF-8 in column 2 (`first_name`); is the file Latin-1 or Windows-1252? Save it as UTF-8")], landed: 2 },
    Case { file: "invalid/utf16.csv", fatal: Some("file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"), bad: &[], landed: 0 },
    Case { file: "invalid/ragged.csv", fatal: None, bad: &[(3, "row has 4 fields but the header has 3"), (4, "row has 2 fields but the header has 3")], landed: 2 },
    // A NUL fails its row; a bell (U+0007) is text GHL stores, and lands as it is.
    Case { file: "invalid/control_chars.csv", fatal: None, bad: &[(3, "embedded NUL byte in column `first_name`")], landed: 3 },
    Case { file: "invalid/duplicate_header.csv", fatal: Some("header has `email` twice (columns 1 and 3)"), bad: &[], landed: 0 },
    Case { file: "invalid/empty_header_name.csv", fatal: Some("header column 2 has no name"), bad: &[], landed: 0 },
    Case { file: "invalid/no_header.csv", fatal: Some("none of the columns `email`, `first_name`, `last_name` is in the file, whose columns are `ok1@example.org`, `Ada`, `Lovelace`; is the header row missing?"), bad: &[], landed: 0 },
    Case { file: "invalid/empty.csv", fatal: Some("file is empty: no header row"), bad: &[], landed: 0 },
    // An NDJSON file needs no header: empty, it is zero rows, loaded cleanly.
    Case { file: "invalid/empty.ndjson", fatal: None, bad: &[], landed: 0 },
    Case { file: "invalid/not_object.ndjson", fatal: None, bad: &[(2, "line is not a JSON object (it is an array)"), (3, "line is not a JSON object (it is a string)"), (5, "invalid JSON at column")], landed: 3 },
    Case { file: "invalid/unclosed_quote.csv", fatal: None, bad: &[(2, "row has 2 fields but the header has 3; a quote opened in this row is never closed, so it runs to the end of the file")], landed: 0 },
    Case { file: "generated/big_cell.csv", fatal: None, bad: &[(3, "cell of 10485760 bytes in column `first_name` is over the 1048576-byte limit")], landed: 2 },
    Case { file: "generated/wrong_types.parquet", fatal: Some("column `email` has type Time64(µs), which cannot be read as input"), bad: &[], landed: 0 },
];

/// The generated cases, written into `dir`.
fn generate(dir: &Path) {
    let gen = dir.join("generated");
    std::fs::create_dir_all(&gen).unwrap();
    // 10 MB in one cell, in the middle of good rows; never committed.
    let mut text =
        b"email,first_name,last_name\nok1@example.org,Ada,Lovelace\nbig@example.org,".to_vec();
    text.extend(std::iter::repeat_n(b'x', 10 << 20));
    text.extend(b",Big\nok2@example.org,Alan,Turing\n");
    std::fs::write(gen.join("big_cell.csv"), text).unwrap();
    // An email column of times of day: a type no input reader accepts.
    let email: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![1_000_000, 2_000_000]));
    let name: ArrayRef = Arc::new(StringArray::from(vec!["Ada", "Alan"]));
    let batch = RecordBatch::try_from_iter([("email", email), ("first_name", name)]).unwrap();
    let file = std::fs::File::create(gen.join("wrong_types.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The rows of a report (empty when the report was not written).
fn report_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    if path.exists() {
        read_csv(path)
    } else {
        (Vec::new(), Vec::new())
    }
}

/// A load or tag command with its state database and reports in `work`, unpaced.
fn job_args(command: &[&str], work: &Path) -> Vec<String> {
    let state = work.join("state.sqlite").display().to_string();
    let report = work.join("report").display().to_string();
    let tail = ["--state", &state, "--report", &report, "--rate", "off"];
    command.iter().chain(&tail).map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_file_gives_its_exact_error_and_the_other_rows_land() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let mapping = fixtures().join("load.toml");
    for (i, case) in LOAD_CASES.iter().enumerate() {
        let input = match case.file.strip_prefix("generated/") {
            Some(_) => tmp.path().join(case.file),
            None => fixtures().join(case.file),
        };
        let work = tmp.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let report = work.join("report");
        let (input_s, mapping_s) = (input.display().to_string(), mapping.display().to_string());
        let args = job_args(
            &[
                "load",
                "--location",
                &location,
                "--contacts",
                &input_s,
                "--mapping",
                &mapping_s,
            ],
            &work,
        );
        let requests_before = sb.stats().requests;
        let (code, stderr, d) = ghl_stderr(&sb, args, &work).await;
        let (_, ok) = report_rows(&report.join("succeeded.csv"));
        let (h, failed) = report_rows(&report.join("failed.csv"));
        if let Some(want) = case.fatal {
            assert_eq!(
                code,
                Some(2),
                "{}: a file that cannot be read is fatal\n{d}",
                case.file
            );
            let line = format!("error: {}: {want}", input.display());
            assert!(
                stderr.contains(&line),
                "{}: stderr lacks\n  {line}\n{d}",
                case.file
            );
            assert!(
                ok.is_empty() && failed.is_empty(),
                "{}: rows written\n{d}",
                case.file
            );
            assert_eq!(
                sb.stats().requests,
                requests_before,
                "{}: no request before the file is read\n{d}",
                case.file
            );
            continue;
        }
        let want_code = if case.bad.is_empty() { 0 } else { 1 };
        assert_eq!(code, Some(want_code), "{}\n{d}", case.file);
        assert_eq!(ok.len(), case.landed, "{}: rows landed\n{d}", case.file);
        let got: Vec<(u64, String)> = failed
            .iter()
            .map(|r| (r[h.len() - 2].parse().unwrap(), r[h.len() - 1].clone()))
            .collect();
        assert_eq!(
            got.len(),
            case.bad.len(),
            "{}: failed rows {got:?}\n{d}",
            case.file
        );
        for ((row, reason), (want_row, want)) in got.iter().zip(case.bad) {
            assert_eq!(row, want_row, "{}: {got:?}", case.file);
            assert!(
                reason.contains(want),
                "{}: row {row}: {reason:?} lacks {want:?}",
                case.file
            );
        }
    }
    sb.shutdown().await;
}

/// A mapping that is valid on its own but names a custom field the location lacks: `mapping
/// check --location` names the file, line and column, and the closest real names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_field_the_location_lacks_is_named_with_its_place() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mappings/invalid_for_location/unknown_custom_field.toml");
    let tmp = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "mapping",
        "check",
        &file.display().to_string(),
        "--location",
        &location,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, stderr, d) = ghl_stderr(&sb, args, tmp.path()).await;
    assert_eq!(code, Some(2), "{d}");
    let want = format!("{}:7:9: unknown custom field `Lead Scroe`", file.display());
    assert!(stderr.contains(&want), "stderr lacks {want}\n{d}");
    assert!(stderr.contains("closest known names: `Lead Score`"), "{d}");
    sb.shutdown().await;
}

/// (name, contents, fatal error, bad rows, rows tagged)
type TagCase = (
    &'static str,
    String,
    Option<&'static str>,
    Vec<(u64, &'static str)>,
    usize,
);

/// `tag` reads its list through the same readers: a bad row fails alone (the others are
/// tagged), a file it cannot use fails before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tag_lists_fail_row_by_row_or_before_any_request() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let emails: Vec<String> = sb
        .store()
        .contact_ids(&location)
        .iter()
        .filter_map(|id| {
            sb.store().contact(id)?["email"]
                .as_str()
                .map(str::to_string)
        })
        .take(2)
        .collect();
    assert_eq!(emails.len(), 2);
    let (a, b) = (&emails[0], &emails[1]);
    let cases: Vec<TagCase> = vec![
        (
            "ragged.csv",
            format!("email,add_tags\n{a},vip\nx,y,z\n{b},vip\n"),
            None,
            vec![(3, "row has 3 fields but the header has 2")],
            2,
        ),
        (
            "control.csv",
            format!("email,add_tags\n{a},vip\n{b},v\u{0}ip\n"),
            None,
            vec![(3, "embedded NUL byte in column `add_tags`")],
            1,
        ),
        (
            "empty.csv",
            String::new(),
            Some("file is empty: no header row"),
            vec![],
            0,
        ),
        (
            "no_header.csv",
            format!("{a},vip\n{b},vip\n"),
            Some("none of the columns `contact_id`, `email`, `phone` is in the file"),
            vec![],
            0,
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (name, text, fatal, bad, tagged)) in cases.into_iter().enumerate() {
        let work = tmp.path().join(format!("tag-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let input = work.join(name);
        std::fs::write(&input, text).unwrap();
        let report = work.join("report");
        let input_s = input.display().to_string();
        let args = job_args(
            &["tag", "--location", &location, "--input", &input_s],
            &work,
        );
        let before = sb.stats().requests;
        let (code, stderr, d) = ghl_stderr(&sb, args, &work).await;
        if let Some(want) = fatal {
            assert_eq!(code, Some(2), "{name}\n{d}");
            let line = format!("error: {}: {want}", input.display());
            assert!(stderr.contains(&line), "{name}: stderr lacks {line}\n{d}");
            assert_eq!(sb.stats().requests, before, "{name}: no request\n{d}");
            continue;
        }
        assert_eq!(code, Some(1), "{name}\n{d}");
        let (_, ok) = report_rows(&report.join("succeeded.csv"));
        let (h, failed) = report_rows(&report.join("failed.csv"));
        assert_eq!(ok.len(), tagged, "{name}: tagged\n{d}");
        let got: Vec<(u64, String)> = failed
            .iter()
            .map(|r| (r[h.len() - 2].parse().unwrap(), r[h.len() - 1].clone()))
            .collect();
        assert_eq!(got.len(), bad.len(), "{name}: {got:?}\n{d}");
        for ((row, reason), (want_row, want)) in got.iter().zip(&bad) {
            assert_eq!(row, want_row, "{name}: {got:?}");
            assert!(reason.contains(want), "{name}: {reason:?} lacks {want:?}");
        }
    }
    sb.shutdown().await;
}
