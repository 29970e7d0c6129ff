//! Tag benchmark (a bench binary, `harness = false`): the `ghl-etl` binary tags every contact
//! of a sandbox location (10,000 by default) from a list, against the sandbox on loopback.
//!
//! Cases, on realistic lists (`common/tag_lists.rs`) under 5% faults: by id with five tags to
//! add and forty different remove sets, by id with per-row random subsets of eight tags, and
//! by email (the location scan resolves the emails). Each prints the requests per tagged
//! contact (the goals: ≤ 0.02 by id, ≤ 0.05 by email), the wall time unlimited, and the time
//! the same requests take at GHL's rate limit (100 per 10 s per location). A last case runs the
//! by-id list against a sandbox enforcing 100/1s, paced at it, to show the pacing holds without
//! 429s.
//!
//! Run: `cargo bench --bench tag -- [--contacts N]`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::{Sandbox, SandboxConfig, DEFAULT_TOKEN};

#[path = "common/tag_lists.rs"]
mod tag_lists;

use tag_lists::{write_tag_list, Shape};

async fn sandbox(contacts: usize, fault_rate: f64, rate: Option<&str>) -> Sandbox {
    Sandbox::start(SandboxConfig {
        contacts,
        seed: 42,
        rate_limit: rate.map(|r| r.parse::<RateSpec>().unwrap().into()),
        fault_rate,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The keys of the location's contacts in `column` (`contact_id` or `email`). Emails two
/// contacts share are left out (they must fail).
fn keys(sb: &Sandbox, location: &str, column: &str) -> Vec<String> {
    let contacts: Vec<serde_json::Value> = sb
        .store()
        .contact_ids(location)
        .iter()
        .map(|id| sb.store().contact(id).unwrap())
        .collect();
    let mut emails: HashMap<String, usize> = HashMap::new();
    for c in &contacts {
        if let Some(e) = c["email"].as_str() {
            *emails.entry(e.to_lowercase()).or_default() += 1;
        }
    }
    let key = |c: &serde_json::Value| match column {
        "email" => c["email"]
            .as_str()
            .filter(|e| emails[&e.to_lowercase()] == 1)
            .map(str::to_string),
        _ => c["id"].as_str().map(str::to_string),
    };
    contacts.iter().filter_map(key).collect()
}

fn tag(sb: &Sandbox, location: &str, list: &Path, work: &Path, rate: &str) -> f64 {
    let _ = std::fs::remove_dir_all(work);
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_ghl-etl"))
        .args([
            "tag",
            "--location",
            location,
            "--input",
            list.to_str().unwrap(),
            "--state",
            work.join("state.sqlite").to_str().unwrap(),
            "--report",
            work.join("report").to_str().unwrap(),
            "--rate",
            rate,
            "--quiet",
        ])
        .env("GHL_BASE_URL", sb.url())
        .env("GHL_TOKEN", DEFAULT_TOKEN)
        .status()
        .expect("ghl-etl runs");
    assert!(status.success(), "ghl-etl tag failed: {status}");
    t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let contacts: usize = args
        .iter()
        .position(|a| a == "--contacts")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    for (label, column, shape, faults, limit) in [
        (
            "by id, varied removes",
            "contact_id",
            Shape::VariedRemoves,
            0.05,
            None,
        ),
        (
            "by id, random subsets of 8",
            "contact_id",
            Shape::RandomSubsets,
            0.05,
            None,
        ),
        (
            "by email, varied removes",
            "email",
            Shape::VariedRemoves,
            0.05,
            None,
        ),
        (
            "by id, target at 100/1s",
            "contact_id",
            Shape::VariedRemoves,
            0.0,
            Some("100/1s"),
        ),
    ] {
        let sb = sandbox(contacts, faults, limit).await;
        let location = sb.location_ids()[0].clone();
        let list = dir.path().join(format!("{column}.csv"));
        let n = write_tag_list(&keys(&sb, &location, column), column, shape, &list);
        let work = dir.path().join("work");
        let wall = tokio::task::block_in_place(|| {
            tag(&sb, &location, &list, &work, limit.unwrap_or("off"))
        });
        let stats = sb.stats();
        let per = stats.requests as f64 / n as f64;
        // GHL allows 100 requests per 10 s per location: 10 a second.
        let at_ghl = stats.requests as f64 / 10.0;
        println!(
            "{label:<28} {n} contacts, {:.0}% faults: {} requests = {per:.4} per tagged contact, {wall:.2} s here, {at_ghl:.0} s at GHL's 100/10s, {} answered 429",
            faults * 100.0,
            stats.requests,
            stats.rate_limited
        );
        sb.shutdown().await;
    }
}
