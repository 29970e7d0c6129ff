//! Runs that cannot collide: a second run of a job, or another job on the same state
//! database, output or location, refuses at once naming the holder (or waits, `--wait`); on an
//! object store a lease object does what an OS lock does on a folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;

use ghl_etl::sandbox::Sandbox;

use crate::util::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Start the binary against the sandbox, stderr piped.
fn start(sb: &Sandbox, args: &[String], cwd: &Path) -> Child {
    spawn_against(sb, &bin(), args, cwd)
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export_args(location: &str, out: &Path, state: &Path, rate: &str) -> Vec<String> {
    strings(&[
        "export",
        "--location",
        location,
        "--out",
        &out.display().to_string(),
        "--state",
        &state.display().to_string(),
        "--format",
        "ndjson",
        "--rate",
        rate,
    ])
}

/// Every contact id of an NDJSON export, with repeats counted.
fn exported_ids(out: &Path) -> (usize, BTreeSet<String>) {
    let mut ids = BTreeSet::new();
    let mut rows = 0;
    for entry in std::fs::read_dir(out.join("contacts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.insert(v["id"].as_str().unwrap().to_string());
            rows += 1;
        }
    }
    (rows, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_export_of_one_output_refuses_or_waits_and_the_data_is_one_runs() {
    let contacts = 100;
    let sb = sandbox(quiet_config(contacts)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state.sqlite"));
    let first = export_args(&location, &out, &state, "20/1s");
    tokio::task::block_in_place(|| {
        let a = start(&sb, &first, dir.path());
        wait_for_stats(&sb, |s| s.requests >= 3);
        // The same command again (an overlapping cron run): the state database is held.
        let (code, d) = finish(start(&sb, &first, dir.path()));
        assert_eq!(code, Some(2), "{d}");
        assert!(
            d.contains("state database") && d.contains("is in use by `ghl-etl export` (pid"),
            "{d}"
        );
        // Another state database, the same output: the output is held.
        let other = export_args(&location, &out, &dir.path().join("other.sqlite"), "off");
        let (code, d) = finish(start(&sb, &other, dir.path()));
        assert_eq!(code, Some(2), "{d}");
        assert!(
            d.contains("the output folder") && d.contains("is in use by"),
            "{d}"
        );
        // With --wait, the same command waits for the first and finds it finished.
        let mut waiting = first.clone();
        waiting.push("--wait".into());
        let b = start(&sb, &waiting, dir.path());
        let (code, d) = finish(a);
        assert_eq!(code, Some(0), "{d}");
        let (code, d) = finish(b);
        assert_eq!(code, Some(0), "{d}");
        assert!(d.contains("waiting for it"), "{d}");
        assert!(d.contains("already finished"), "{d}");
    });
    let (rows, ids) = exported_ids(&out);
    assert_eq!(
        (rows, ids.len()),
        (contacts, contacts),
        "every contact once"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    let text = manifest.to_string();
    assert!(
        text.contains(&format!("{contacts}")),
        "the manifest counts them: {text}"
    );
    sb.shutdown().await;
}

fn people_csv(path: &PathBuf, n: usize) {
    let mut w = csv::Writer::from_path(path).unwrap();
    let header = [
        "Email Address",
        "First Name",
        "Last Name",
        "Mobile",
        "Organisation",
        "Tags",
        "Subscribed On",
    ];
    w.write_record(header).unwrap();
    for i in 0..n {
        let (email, first) = (format!("p{i}@example.org"), format!("P{i}"));
        let row = [&email, &first, "Person", "", "", "newsletter", "01/02/2024"];
        w.write_record(row).unwrap();
    }
    w.flush().unwrap();
}

fn load_args(location: &str, input: &Path, state: &Path, rate: &str) -> Vec<String> {
    let mapping = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/from-ecosend.toml");
    let report = state.with_extension("report");
    strings(&[
        "load",
        "--location",
        location,
        "--contacts",
        &input.display().to_string(),
        "--mapping",
        mapping,
        "--state",
        &state.display().to_string(),
        "--report",
        &report.display().to_string(),
        "--rate",
        rate,
        "--create-missing-fields",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_load_into_one_location_refuses_with_the_same_or_another_state() {
    let sb = sandbox(quiet_config(0)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("people.csv");
    people_csv(&input, 100);
    let state = dir.path().join("state.sqlite");
    let first = load_args(&location, &input, &state, "20/1s");
    tokio::task::block_in_place(|| {
        let a = start(&sb, &first, dir.path());
        wait_for_stats(&sb, |s| s.requests >= 3);
        let (code, d) = finish(start(&sb, &first, dir.path()));
        assert_eq!(code, Some(2), "{d}");
        assert!(
            d.contains("state database") && d.contains("`ghl-etl load`"),
            "{d}"
        );
        let other = load_args(&location, &input, &dir.path().join("other.sqlite"), "off");
        let (code, d) = finish(start(&sb, &other, dir.path()));
        assert_eq!(code, Some(2), "{d}");
        assert!(
            d.contains(&format!("location {location} is in use by `ghl-etl load`")),
            "{d}"
        );
        let (code, d) = finish(a);
        assert_eq!(code, Some(0), "{d}");
    });
    let stored = sb.store().contact_ids(&location).len();
    assert_eq!(stored, 100, "one load's contacts, once");
    sb.shutdown().await;
}
