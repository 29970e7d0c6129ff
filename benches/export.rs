//! End-to-end export benchmark (a bench binary, `harness = false`): the release `ghl-etl`
//! binary exports from a sandbox running in this process over loopback, with the limiter off
//! so the figures show the tool's own cost, not GHL's budget.
//!
//! Cases: 100,000 contacts (contacts only; with tasks and notes) and 1,000,000 contacts
//! (contacts only) to show memory stays flat. Reports contacts/s, requests/s and the export
//! process's peak RSS (from its `_manifest.json`).
//!
//! Run: `cargo bench --bench export -- [--quick]` (`--quick`: 20,000 and 100,000 contacts).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ghl_etl::sandbox::{Sandbox, SandboxConfig, DEFAULT_TOKEN};

/// The sandbox serves from this process: give it the allocator the `ghl-etl` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn export(sb: &Sandbox, out: &Path, with: &str, source: &str) -> serde_json::Value {
    let _ = std::fs::remove_dir_all(out);
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_ghl-etl"))
        .args(["export", "--location", &sb.location_ids()[0], "--out"])
        .arg(out)
        .arg("--state")
        .arg(out.join(".state.sqlite"))
        .args([
            "--with",
            with,
            "--source",
            source,
            "--rate",
            "off",
            "--concurrency",
            "64",
            "--quiet",
        ])
        .env("GHL_BASE_URL", sb.url())
        .env("GHL_TOKEN", DEFAULT_TOKEN)
        .status()
        .expect("ghl-etl runs");
    assert!(status.success(), "export failed: {status}");
    let wall = t.elapsed().as_secs_f64();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).expect("manifest"))
            .expect("json");
    m["wall_s"] = wall.into();
    m
}

fn report(label: &str, m: &serde_json::Value) {
    let contacts = m["contacts"].as_f64().unwrap_or(0.0);
    let requests = m["requests"].as_f64().unwrap_or(0.0);
    let wall = m["wall_s"].as_f64().unwrap_or(1.0);
    println!(
        "{label:<44} {contacts:>9.0} contacts in {wall:>6.1} s = {:>7.0} contacts/s, {:>6.0} requests/s, peak RSS {:>5.0} MiB",
        contacts / wall,
        requests / wall,
        m["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (small, large) = if quick {
        (20_000, 100_000)
    } else {
        (100_000, 1_000_000)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = Sandbox::start(SandboxConfig {
        contacts: small,
        rate_limit: None,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let out = dir.path().join("small");
    let sbr = &sb;
    let (a, b, c) = tokio::task::block_in_place(|| {
        (
            export(sbr, &out, "none", "list"),
            export(sbr, &out, "none", "search"),
            export(sbr, &out, "tasks,notes", "search"),
        )
    });
    report(
        &format!("{small} contacts, contacts only (list, 100/page)"),
        &a,
    );
    report(
        &format!("{small} contacts, contacts only (search, 500/page)"),
        &b,
    );
    report(&format!("{small} contacts, with tasks and notes"), &c);
    sb.shutdown().await;

    let sb = Sandbox::start(SandboxConfig {
        contacts: large,
        rate_limit: None,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let out = dir.path().join("large");
    let sbr = &sb;
    let d = tokio::task::block_in_place(|| export(sbr, &out, "none", "search"));
    report(&format!("{large} contacts, contacts only (search)"), &d);
    sb.shutdown().await;
}
