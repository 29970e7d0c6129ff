//! The tag job end to end: the shipped sample list against a sandbox with faults and a rate
//! limit, by id, email and phone, adding and removing; then a rerun that changes nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ghl_etl::sandbox::{Sandbox, DEFAULT_TOKEN};

use crate::util::{describe, quiet_config, run_bin, sandbox};

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
    cfg.rate_limit = Some("200/1s".parse().unwrap());
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
    let run = |args: Vec<String>| {
        let url = sb.url();
        let cwd = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_bin(
                &a,
                &[("GHL_BASE_URL", url.as_str()), ("GHL_TOKEN", DEFAULT_TOKEN)],
                &cwd,
            );
            let d = describe(&a, &cwd, &out);
            (out.status.code(), d)
        })
    };
    let (code, d) = run(args.clone()).await.unwrap();
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
    let (code, d) = run(args).await.unwrap();
    assert_eq!(code, Some(1), "{d}");
    check(&sb);
    assert_eq!(read("succeeded.csv").len() + read("failed.csv").len(), 8);
    sb.shutdown().await;
}
