//! Aggregate request rate of an agency export (a bench binary, `harness = false`): the release
//! `ghl-etl` binary exports 1, 5, 20 and 100 locations at once with an agency token (one minted
//! token and one rate budget per location) from a sandbox in this process that enforces a
//! 100/1s window per location, as fast as the budgets allow.
//!
//! Each location has `--contacts` contacts (default 500) with tasks and notes: one search page,
//! the task searches and one notes request per contact, about five windows of requests. The
//! sandbox stamps every request as it arrives; for each location the steady rate is its
//! requests after its first window over the time they span (any client may send the first
//! window at once), and the aggregate is the sum over locations, compared with
//! `locations x 100/s`. Also printed: all requests over the span of all arrivals, 429s, the
//! export's peak RSS and the CPU time of the export and of this process (the sandbox).
//!
//! Run: `cargo bench --bench agency -- [--contacts 500] [--locations 1,5,20,100]`.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use common::{arg, serve_stamped, steady_rate, Stamped};
use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::{SandboxConfig, SandboxState, DEFAULT_AGENCY_TOKEN};

mod common;

/// The allocator the `ghl-etl` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// `/proc/self/stat` and `getrusage`-like fields (Linux).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = 100.0; // USER_HZ
    let f = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / tick
    };
    // Fields after the command: utime 11, stime 12, cutime 13, cstime 14 (0-based from state).
    (f(11) + f(12), f(13) + f(14))
}

/// A request's `Authorization` header.
fn bearer(req: &Request) -> String {
    req.headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn case(locations: usize, contacts: usize, rate: RateSpec) {
    let cfg = SandboxConfig {
        contacts,
        locations,
        rate_limit: Some(rate.into()),
        daily_limit: u64::MAX / 2,
        ..SandboxConfig::default()
    };
    let state = Arc::new(SandboxState::new(cfg).expect("sandbox"));
    // With an agency token each location's requests carry that location's own minted token,
    // so the token tells the location.
    let Stamped { url, log, server } = serve_stamped(state.clone(), bearer).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let company = state.company_id();
    let (cpu_before, child_before) = cpu_seconds();
    let t = Instant::now();
    let rate_s = rate.to_string();
    let concurrency = locations.to_string();
    let status = tokio::task::spawn_blocking({
        let (url, out) = (url.clone(), out.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_ghl-etl"))
                .args([
                    "export",
                    "--all-locations",
                    "--app-id",
                    ghl_etl::sandbox::APP_ID,
                ])
                .args(["--company-id", &company, "--rate", &rate_s])
                .args([
                    "--location-concurrency",
                    &concurrency,
                    "--format",
                    "parquet",
                ])
                .arg("--out")
                .arg(&out)
                .arg("--state")
                .arg(out.with_extension("sqlite"))
                .arg("--quiet")
                .env("GHL_BASE_URL", url)
                .env("GHL_TOKEN", DEFAULT_AGENCY_TOKEN)
                .status()
                .expect("ghl-etl runs")
        }
    })
    .await
    .expect("join");
    let wall = t.elapsed().as_secs_f64();
    let (cpu_after, child_after) = cpu_seconds();
    server.abort();
    assert!(status.success(), "export failed: {status}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).expect("manifest"))
            .expect("json");

    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let agency = format!("Bearer {DEFAULT_AGENCY_TOKEN}");
    let mut by_location: HashMap<String, Vec<Instant>> = HashMap::new();
    for (at, token, status) in &log {
        if *status == 200 && *token != agency {
            by_location.entry(token.clone()).or_default().push(*at);
        }
    }
    assert_eq!(
        by_location.len(),
        locations,
        "one minted token per location"
    );
    let aggregate: f64 = by_location
        .values_mut()
        .filter_map(|s| steady_rate(s, rate))
        .sum();
    let first = log.iter().map(|r| r.0).min().unwrap_or(t);
    let last = log.iter().map(|r| r.0).max().unwrap_or(t);
    let span = (last - first).max(Duration::from_millis(1)).as_secs_f64();
    let allowed = locations as f64 * rate.per_second();
    println!(
        "{locations:>3} location(s) at {rate}: aggregate {aggregate:>7.0} req/s = {:.3} of {allowed:.0} allowed; all {} requests over {span:.1} s = {:.0} req/s; wall {wall:.1} s; 429s {}; export CPU {:.1} s ({:.0}% of one core), sandbox CPU {:.1} s; export peak RSS {:.0} MiB",
        aggregate / allowed,
        log.len(),
        log.len() as f64 / span,
        state.stats().rate_limited,
        child_after - child_before,
        100.0 * (child_after - child_before) / wall,
        cpu_after - cpu_before,
        manifest["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    );
}

#[tokio::main]
async fn main() {
    let contacts: usize = arg("--contacts", 500);
    let rate: RateSpec = "100/1s".parse().expect("rate");
    for n in arg("--locations", "1,5,20,100".to_string()).split(',') {
        let n: usize = n.trim().parse().expect("--locations 1,5,20");
        case(n, contacts, rate).await;
    }
}
