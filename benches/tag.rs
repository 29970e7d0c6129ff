//! Tag benchmark (a bench binary, `harness = false`): the `ghl-etl` binary tags every contact
//! of a sandbox location (10,000 by default) from a list, against the sandbox on loopback.
//!
//! Cases: by id in 5 tag groups, and by email (the location scan resolves the emails). Each
//! prints the requests per tagged contact (the goals: ≤ 0.02 by id, ≤ 0.05 by email), the wall
//! time unlimited, and the time the same requests take at GHL's rate limit (100 per 10 s per
//! location). A last case runs the by-id list against a sandbox enforcing 100/1s, paced at it,
//! to show the pacing holds without 429s.
//!
//! Run: `cargo bench --bench tag -- [--contacts N]`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::{Sandbox, SandboxConfig, DEFAULT_TOKEN};

const GROUPS: usize = 5;

async fn sandbox(contacts: usize, rate: Option<&str>) -> Sandbox {
    Sandbox::start(SandboxConfig {
        contacts,
        seed: 42,
        rate_limit: rate.map(|r| r.parse::<RateSpec>().unwrap().into()),
        fault_rate: 0.0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// A list naming contacts by `column` (`contact_id` or `email`), each in one of 5 groups.
/// Answers the rows written. Emails two contacts share are left out (they must fail).
fn write_list(sb: &Sandbox, location: &str, column: &str, path: &Path) -> usize {
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
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record([column, "add_tags"]).unwrap();
    let mut n = 0;
    for c in &contacts {
        let key = match column {
            "email" => match c["email"].as_str() {
                Some(e) if emails[&e.to_lowercase()] == 1 => e.to_string(),
                _ => continue,
            },
            _ => c["id"].as_str().unwrap().to_string(),
        };
        w.write_record([key, format!("bench-group-{}", n % GROUPS)])
            .unwrap();
        n += 1;
    }
    w.flush().unwrap();
    n
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
    for (label, column, limit) in [
        ("by id, 5 groups", "contact_id", None),
        ("by email, 5 groups", "email", None),
        ("by id, target at 100/1s", "contact_id", Some("100/1s")),
    ] {
        let sb = sandbox(contacts, limit).await;
        let location = sb.location_ids()[0].clone();
        let list = dir.path().join(format!("{column}.csv"));
        let n = write_list(&sb, &location, column, &list);
        let work = dir.path().join("work");
        let wall = tokio::task::block_in_place(|| {
            tag(&sb, &location, &list, &work, limit.unwrap_or("off"))
        });
        let stats = sb.stats();
        let per = stats.requests as f64 / n as f64;
        // GHL allows 100 requests per 10 s per location: 10 a second.
        let at_ghl = stats.requests as f64 / 10.0;
        println!(
            "{label:<26} {n} contacts: {} requests = {per:.4} per tagged contact, {wall:.2} s here, {at_ghl:.0} s at GHL's 100/10s, {} answered 429",
            stats.requests, stats.rate_limited
        );
        sb.shutdown().await;
    }
}
