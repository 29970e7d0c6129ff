//! Load benchmark (a bench binary, `harness = false`): the release `ghl-etl` binary exports a
//! sandbox location to CSV, then loads it with `mappings/migrate.toml` into an empty sandbox
//! location, both sandboxes in this process on loopback.
//!
//! Cases: the target unlimited (what the tool itself costs: rows/s, requests per contact), and
//! the target enforcing a 100/1s sliding window with the client paced at it (how close a load
//! runs to the limit: achieved / allowed rate, 429s). Then the pace of a migration of the
//! foreign fixture (`../shared/fixtures/foreign-location`, a location this project did not
//! generate) at 100/1s with the default concurrency, with no faults and under 5% and 20% faults of
//! every kind (429s without Retry-After among them).
//!
//! Run: `cargo bench --bench load -- [--contacts N]` (default 2,000; the limited case uses a
//! quarter of them).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::{Sandbox, SandboxConfig, DEFAULT_TOKEN};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ghl(sb: &Sandbox, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_ghl-etl"))
        .args(args)
        .env("GHL_BASE_URL", sb.url())
        .env("GHL_TOKEN", DEFAULT_TOKEN)
        .status()
        .expect("ghl-etl runs");
    assert!(status.success(), "ghl-etl {args:?} failed: {status}");
}

fn rows(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| {
                let mut r = csv::Reader::from_path(e.unwrap().path()).unwrap();
                r.records().count() as u64
            })
            .sum()
        })
        .unwrap_or(0)
}

async fn sandbox(contacts: usize, seed: u64) -> Sandbox {
    Sandbox::start(SandboxConfig {
        contacts,
        seed,
        rate_limit: None,
        fault_rate: 0.0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// Load `export` into a fresh target; returns (wall seconds, requests, 429s served).
async fn load(export: &Path, work: &Path, rate: Option<&str>) -> (f64, u64, u64) {
    let b = sandbox(0, 7).await;
    if let Some(r) = rate {
        b.set_rate_limit(Some(r.parse::<RateSpec>().unwrap().into()));
    }
    let location = b.location_ids()[0].clone();
    let _ = std::fs::remove_dir_all(work);
    let (state, report) = (work.join("state.sqlite"), work.join("report"));
    let mapping = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/migrate.toml");
    let t = Instant::now();
    let args = [
        "load",
        "--location",
        &location,
        "--contacts",
        export.to_str().unwrap(),
        "--mapping",
        mapping,
        "--state",
        state.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--rate",
        rate.unwrap_or("off"),
        "--concurrency",
        "32",
        "--quiet",
    ];
    tokio::task::block_in_place(|| ghl(&b, &args));
    let wall = t.elapsed().as_secs_f64();
    let stats = b.stats();
    if std::env::var_os("LOAD_BENCH_ROUTES").is_some() {
        eprintln!("{:?}", stats.by_route);
    }
    b.shutdown().await;
    (wall, stats.requests, stats.rate_limited)
}

/// Export the fixture's location to CSV, then load it into the sandbox's empty second location
/// at 100/1s under `fault_rate`; prints the pace.
async fn foreign_case(dir: &Path, fault_rate: f64) {
    let fixture_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/foreign-location"
    );
    let fixture = ghl_etl::sandbox::Fixture::read(Path::new(fixture_dir)).expect("the fixture");
    let sb = Sandbox::start(SandboxConfig {
        contacts: 0,
        locations: 2,
        rate_limit: None,
        fixture: Some(fixture),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let ids = sb.location_ids();
    let work = dir.join(format!("foreign-{fault_rate}"));
    let export = work.join("a");
    let (out, state) = (export.to_str().unwrap(), work.join("a.sqlite"));
    let state = state.to_str().unwrap();
    tokio::task::block_in_place(|| {
        let flags = ["--format", "csv", "--rate", "off", "--quiet"];
        let args = [
            "export",
            "--location",
            &ids[0],
            "--out",
            out,
            "--state",
            state,
        ];
        ghl(&sb, &[&args[..], &flags[..]].concat());
    });
    sb.set_rate_limit(Some("100/1s".parse::<RateSpec>().unwrap().into()));
    sb.set_fault_rate(fault_rate);
    let before = sb.stats();
    let mapping = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/migrate.toml");
    let (lstate, report) = (work.join("load.sqlite"), work.join("report"));
    let t = Instant::now();
    tokio::task::block_in_place(|| {
        ghl(
            &sb,
            &[
                "load",
                "--location",
                &ids[1],
                "--contacts",
                out,
                "--mapping",
                mapping,
                "--create-missing-fields",
                "--rate",
                "100/1s",
                "--quiet",
                "--state",
                lstate.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ],
        )
    });
    let wall = t.elapsed().as_secs_f64();
    let stats = sb.stats();
    let requests = stats.requests - before.requests;
    let injected = stats.faults.get("status_429").copied().unwrap_or(0);
    println!(
        "foreign location at 100/1s, {:.0}% faults: {requests} requests in {wall:.1} s = {:.1} requests/s = {:.3} of the allowed rate, {} 429s beyond the {injected} injected",
        fault_rate * 100.0,
        requests as f64 / wall,
        requests as f64 / wall / 100.0,
        stats.rate_limited - before.rate_limited,
    );
    sb.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let contacts: usize = args
        .iter()
        .position(|a| a == "--contacts")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    for (label, n, rate) in [
        ("unlimited target", contacts, None),
        ("target limited to 100/1s", contacts / 4, Some("100/1s")),
    ] {
        let a = sandbox(n, 42).await;
        let export = dir.path().join(format!("export-{n}"));
        let out = export.to_str().unwrap().to_string();
        let state = export.join(".state.sqlite");
        tokio::task::block_in_place(|| {
            ghl(
                &a,
                &[
                    "export",
                    "--location",
                    &a.location_ids()[0],
                    "--out",
                    &out,
                    "--state",
                    state.to_str().unwrap(),
                    "--format",
                    "csv",
                    "--rate",
                    "off",
                    "--quiet",
                ],
            )
        });
        a.shutdown().await;
        let (c, t, nt) = (
            rows(&export.join("contacts")),
            rows(&export.join("tasks")),
            rows(&export.join("notes")),
        );
        let (wall, requests, throttled) = load(&export, &dir.path().join("work"), rate).await;
        let per_contact = requests as f64 / c as f64;
        let floor = 1.0 + (t + nt) as f64 / c as f64;
        print!(
            "{label:<26} {c} contacts, {t} tasks, {nt} notes in {wall:.1} s: {:.0} rows/s, {requests} requests = {per_contact:.3} per contact (floor 1 + tasks + notes = {floor:.3}), {throttled} answered 429",
            (c + t + nt) as f64 / wall
        );
        match rate {
            Some(r) => {
                let allowed: ghl_etl::api::RateSpec = r.parse().unwrap();
                let achieved = requests as f64 / wall;
                println!(
                    ", {achieved:.1} requests/s = {:.3} of the allowed rate",
                    achieved / allowed.per_second()
                );
            }
            None => println!(", {:.0} requests/s", requests as f64 / wall),
        }
    }
    for fault_rate in [0.0, 0.05, 0.2] {
        foreign_case(dir.path(), fault_rate).await;
    }
}
