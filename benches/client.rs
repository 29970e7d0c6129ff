//! Client benchmark against the sandbox over loopback (a bench binary, `harness = false`):
//!
//! 1. Listing throughput with the limiter off: pages/s and contacts/s through `GET /contacts/`
//!    (pages of 100) and `POST /contacts/search` (pages of 500).
//! 2. Rate-limit adherence: requests/s achieved against a rate-limited sandbox, as a fraction
//!    of the allowed rate, and 429s per 10,000 requests. The budget is GHL's shape scaled up
//!    (`--rate`, default 1000/1s) so 10,000+ requests take seconds, not a quarter of an hour;
//!    `--rate 100/10s` measures the real budget (slow).
//!
//! Run: `cargo bench --bench client -- [--contacts N] [--rate 1000/1s] [--requests N]`

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use ghl_etl::api::{AuthConfig, Client, ClientConfig, Cursor, RateSpec, Source};
use ghl_etl::sandbox::{Sandbox, SandboxConfig, DEFAULT_TOKEN};
use ghl_etl::secret::Secret;

/// The allocator the `ghl-etl` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(url: String, rate: Option<RateSpec>) -> Client {
    let mut cfg = ClientConfig::new(url, AuthConfig::Static(Secret::new(DEFAULT_TOKEN)));
    cfg.rate = rate;
    Client::new(cfg).expect("client")
}

async fn listing(sb: &Sandbox, source: Source, page: usize) {
    let location = sb.location_ids()[0].clone();
    let c = client(sb.url(), None);
    let label = source.label();
    let t = Instant::now();
    let (pages, contacts) = c
        .contact_pages(&location, source, page, Cursor::Start)
        .try_fold((0u64, 0u64), |(p, n), page| async move {
            Ok((p + 1, n + page.records.len() as u64))
        })
        .await
        .expect("listing");
    let s = t.elapsed().as_secs_f64();
    println!(
        "listing {label:<7} page {page:>3}: {contacts} contacts, {pages} pages in {s:.2} s = {:.0} pages/s, {:.0} contacts/s",
        pages as f64 / s,
        contacts as f64 / s
    );
}

async fn adherence(rate: RateSpec, requests: usize) {
    let cfg = SandboxConfig {
        contacts: 2_000,
        rate_limit: Some(rate),
        daily_limit: u64::MAX / 2,
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(cfg).await.expect("sandbox");
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let c = client(sb.url(), Some(rate));
    // Warm up one request so connection set-up is not measured.
    let _ = c.contact_notes(&location, &ids[0]).await;
    sb.reset_stats();
    let t = Instant::now();
    let done = futures::stream::iter(0..requests)
        .map(|i| {
            let c = c.clone();
            let location = location.clone();
            let id = ids[i % ids.len()].clone();
            async move { c.contact_notes(&location, &id).await.is_ok() }
        })
        .buffer_unordered(32)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    let s = t.elapsed().as_secs_f64();
    let stats = c.stats();
    let achieved = stats.requests as f64 / s;
    println!(
        "rate {rate}: {done}/{requests} ok, {} requests in {s:.1} s = {achieved:.1}/s of {:.1}/s allowed = {:.3} of the limit; {} answered 429 ({:.2} per 10,000)",
        stats.requests,
        rate.per_second(),
        achieved / rate.per_second(),
        stats.throttled,
        stats.throttled as f64 * 10_000.0 / stats.requests.max(1) as f64
    );
    sb.shutdown().await;
}

#[tokio::main]
async fn main() {
    let contacts: usize = arg("--contacts", 100_000);
    let rate: RateSpec = arg("--rate", "1000/1s".parse().expect("rate"));
    let requests: usize = arg("--requests", 12_000);
    let cfg = SandboxConfig {
        contacts,
        rate_limit: None,
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(cfg).await.expect("sandbox");
    listing(&sb, Source::List, 100).await;
    listing(&sb, Source::Search { filters: vec![] }, 500).await;
    sb.shutdown().await;
    adherence(rate, requests).await;
}
