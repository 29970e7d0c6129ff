//! The tag benchmark's goals, asserted on a smaller realistic case so that a regression fails
//! CI (the figures themselves are `benches/tag.rs`'s): tagging by id from a list with varied
//! remove sets, and from one with per-row random subsets of eight tags, under 5% faults, costs
//! at most 0.02 requests per contact (0.05 by email), and every contact ends with exactly its
//! tags.

#[path = "../benches/common/tag_lists.rs"]
mod tag_lists;

use std::collections::BTreeSet;

use tag_lists::{write_tag_list, Shape};

use crate::util::{ghl_on as ghl, quiet_config, read_csv, sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_by_id_costs_at_most_two_requests_per_hundred_contacts() {
    for shape in [Shape::VariedRemoves, Shape::RandomSubsets] {
        tag_list_costs(shape, "contact_id", 0.02).await;
    }
}

/// By email, the location scan that resolves the emails is part of the cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_by_email_costs_at_most_five_requests_per_hundred_contacts() {
    tag_list_costs(Shape::VariedRemoves, "email", 0.05).await;
}

/// Tag 10,000 contacts (those with a unique email, by email) from a list of `shape` under 5%
/// faults: at most `goal` requests per contact, and every contact ends with exactly its tags.
async fn tag_list_costs(shape: Shape, column: &str, goal: f64) {
    let mut cfg = quiet_config(10_000);
    cfg.fault_rate = 0.05;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let (ids, keys) = keys(&sb, &location, column);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let n = write_tag_list(&keys, column, shape, &list);
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
    assert_eq!(code, Some(0), "{shape:?} by {column}: {d}");
    let requests = sb.stats().requests;
    let per = requests as f64 / n as f64;
    eprintln!("{shape:?} by {column}: {requests} requests for {n} contacts = {per:.4} per contact");
    assert!(
        per <= goal,
        "{shape:?} by {column}: {requests} requests for {n} contacts = {per:.4}"
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

/// The contacts a list names, and their keys in `column`: every contact by id; by email,
/// those whose email no other contact shares.
fn keys(
    sb: &ghl_etl::sandbox::Sandbox,
    location: &str,
    column: &str,
) -> (Vec<String>, Vec<String>) {
    let ids = sb.store().contact_ids(location);
    if column == "contact_id" {
        return (ids.clone(), ids);
    }
    let contacts: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| sb.store().contact(id).unwrap())
        .collect();
    let email = |c: &serde_json::Value| c["email"].as_str().map(str::to_lowercase);
    let mut seen = std::collections::HashMap::new();
    for e in contacts.iter().filter_map(email) {
        *seen.entry(e).or_insert(0) += 1;
    }
    contacts
        .iter()
        .filter(|c| email(c).is_some_and(|e| seen[&e] == 1))
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_string();
            (id, c["email"].as_str().unwrap().to_string())
        })
        .unzip()
}

fn tags_of(sb: &ghl_etl::sandbox::Sandbox, id: &str) -> BTreeSet<String> {
    let contact = sb.store().contact(id).unwrap();
    let tags = contact["tags"].as_array().unwrap();
    tags.iter()
        .filter_map(|t| t.as_str())
        .map(str::to_string)
        .collect()
}
