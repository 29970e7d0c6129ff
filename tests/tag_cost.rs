//! The tag benchmark's goals, asserted on a smaller realistic case so that a regression fails
//! CI (the figures themselves are `benches/tag.rs`'s): tagging by id from a list with varied
//! remove sets, and from one with per-row random subsets of eight tags, under 5% faults, costs
//! at most 0.02 requests per contact, and every contact ends with exactly its tags.

#[path = "../benches/common/tag_lists.rs"]
mod tag_lists;

use std::collections::BTreeSet;

use tag_lists::{write_tag_list, Shape};

use crate::util::{ghl_on as ghl, quiet_config, read_csv, sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_by_id_costs_at_most_two_requests_per_hundred_contacts() {
    for shape in [Shape::VariedRemoves, Shape::RandomSubsets] {
        let mut cfg = quiet_config(10_000);
        cfg.fault_rate = 0.05;
        let sb = sandbox(cfg).await;
        let location = sb.location_ids()[0].clone();
        let ids = sb.store().contact_ids(&location);
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.csv");
        let n = write_tag_list(&ids, "contact_id", shape, &list);
        // What each contact had before, to check exactly what changed.
        let before: Vec<BTreeSet<String>> = ids.iter().map(|id| tags_of(&sb, id)).collect();
        let state = dir.path().join("s.sqlite").display().to_string();
        let args = [
            "tag",
            "--location",
            &location,
            "--input",
            &list.display().to_string(),
            "--state",
            &state,
            "--report",
            &dir.path().join("r").display().to_string(),
            "--retry-max-delay",
            "0.2",
            "--rate",
            "off",
        ];
        let (code, d) = ghl(
            &sb,
            args.iter().map(|s| s.to_string()).collect(),
            dir.path(),
        )
        .await;
        assert_eq!(code, Some(0), "{shape:?}: {d}");
        let requests = sb.stats().requests;
        let per = requests as f64 / n as f64;
        eprintln!("{shape:?}: {requests} requests for {n} contacts = {per:.4} per contact");
        assert!(
            per <= 0.02,
            "{shape:?}: {requests} requests for {n} contacts = {per:.4}"
        );
        let (_, rows) = read_csv(&list);
        for ((id, row), had) in ids.iter().zip(&rows).zip(before) {
            let split = |s: &str| -> BTreeSet<String> {
                s.split(';')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let (add, remove) = (split(&row[1]), split(&row[2]));
            let want: BTreeSet<String> = had.difference(&remove).cloned().chain(add).collect();
            assert_eq!(tags_of(&sb, id), want, "{shape:?}: contact {id}");
        }
    }
}

fn tags_of(sb: &ghl_etl::sandbox::Sandbox, id: &str) -> BTreeSet<String> {
    let contact = sb.store().contact(id).unwrap();
    let tags = contact["tags"].as_array().unwrap();
    tags.iter()
        .filter_map(|t| t.as_str())
        .map(str::to_string)
        .collect()
}
