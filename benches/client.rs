//! Client benchmark against the sandbox over loopback (a bench binary, `harness = false`, so
//! `cargo test` never runs it):
//!
//! 1. Listing throughput with the limiter off: pages/s and contacts/s through `GET /contacts/`
//!    (pages of 100) and `POST /contacts/search` (pages of 500).
//! 2. Rate-limit adherence: how close the client runs to a sliding-window limit without a 429,
//!    at GHL's 100/10s and at 100/1s, for one location and for five at once (each with its own
//!    budget, one client for all, as an export of several locations runs). Every location sends
//!    `windows * 100 + 1` notes requests, 32 at a time. The sandbox is wrapped in a layer that
//!    stamps each request as it arrives, and the achieved rate is read from those stamps:
//!    admitted requests after the first window divided by the time they span (the first window
//!    is left out because any client may send it at once). Also printed: the most requests in
//!    any one window (at most 100, or the sandbox would have refused), and the 429s.
//!
//! Run: `cargo bench --bench client -- [--contacts N] [--slow-windows 6] [--fast-windows 30]
//! [--skip-listing]`. With the defaults the adherence part takes about three minutes (6 windows
//! of 10 s twice, 30 windows of 1 s twice).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use common::{arg, serve_stamped, steady_rate, Stamped};
use futures::{StreamExt, TryStreamExt};
use ghl_etl::api::{AuthConfig, Client, ClientConfig, Cursor, RateSpec, Source};
use ghl_etl::sandbox::{Sandbox, SandboxConfig, SandboxState, DEFAULT_TOKEN};
use ghl_etl::secret::Secret;

mod common;

/// The allocator the `ghl-etl` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// A request's path: the notes route names the contact, and so the location.
fn path(req: &Request) -> String {
    req.uri().path().to_string()
}

/// What one location achieved, read from the sandbox's arrival stamps.
struct Achieved {
    /// Requests per second after the first window, as a share of `max / interval`.
    ratio: f64,
    /// The most admitted requests in any window of `interval`.
    busiest: usize,
    admitted: usize,
}

fn achieved(stamps: &mut [Instant], rate: RateSpec) -> Achieved {
    let steady = steady_rate(stamps, rate).expect("more than one window of requests");
    let ratio = steady / rate.per_second();
    let mut busiest = 0;
    for (i, t) in stamps.iter().enumerate() {
        let in_window = stamps[i..]
            .iter()
            .take_while(|u| **u < *t + rate.interval)
            .count();
        busiest = busiest.max(in_window);
    }
    Achieved {
        ratio,
        busiest,
        admitted: stamps.len(),
    }
}

async fn adherence(rate: RateSpec, locations: usize, windows: usize) {
    let cfg = SandboxConfig {
        contacts: 2_000,
        locations,
        rate_limit: Some(rate.into()),
        daily_limit: u64::MAX / 2,
        ..SandboxConfig::default()
    };
    let state = Arc::new(SandboxState::new(cfg).expect("sandbox"));
    let Stamped { url, log, server } = serve_stamped(state.clone(), path).await;

    let ids: Vec<(String, Vec<String>)> = state
        .store()
        .location_ids()
        .into_iter()
        .map(|l| {
            let ids = state.store().contact_ids(&l);
            (l, ids)
        })
        .collect();
    let owner: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, (_, cs))| cs.iter().map(move |c| (format!("/contacts/{c}/notes"), i)))
        .collect();
    let c = client(url, Some(rate));
    let per_location = windows * rate.max as usize + 1;
    let t = Instant::now();
    let runs = ids.iter().map(|(location, contacts)| {
        let c = c.clone();
        async move {
            futures::stream::iter(0..per_location)
                .map(|i| {
                    let c = c.clone();
                    let id = contacts[i % contacts.len()].clone();
                    async move { c.contact_notes(location, &id).await.is_ok() }
                })
                .buffer_unordered(32)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await
        }
    });
    let done: usize = futures::future::join_all(runs).await.into_iter().sum();
    let took = t.elapsed();
    server.abort();

    let mut stamps: Vec<Vec<Instant>> = vec![Vec::new(); locations];
    for (at, path, status) in log.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        if let (Some(&i), 200) = (owner.get(path), status) {
            stamps[i].push(*at);
        }
    }
    let results: Vec<Achieved> = stamps.iter_mut().map(|s| achieved(s, rate)).collect();
    let server_429 = state.stats().rate_limited;
    let client_429 = c.stats().throttled;
    let min = results.iter().map(|r| r.ratio).fold(f64::MAX, f64::min);
    let mean = results.iter().map(|r| r.ratio).sum::<f64>() / results.len() as f64;
    let busiest = results.iter().map(|r| r.busiest).max().unwrap_or(0);
    let admitted: usize = results.iter().map(|r| r.admitted).sum();
    println!(
        "rate {rate} x {locations} location(s): {done}/{} ok, {admitted} admitted in {:.1} s; achieved/allowed per location: min {min:.4}, mean {mean:.4}; busiest window {busiest}/{}; 429s: {server_429} (sandbox), {client_429} (client)",
        per_location * locations,
        took.as_secs_f64(),
        rate.max,
    );
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let contacts: usize = arg("--contacts", 100_000);
    let slow_windows: usize = arg("--slow-windows", 6);
    let fast_windows: usize = arg("--fast-windows", 30);
    if !std::env::args().any(|a| a == "--skip-listing") {
        let cfg = SandboxConfig {
            contacts,
            rate_limit: None,
            ..SandboxConfig::default()
        };
        let sb = Sandbox::start(cfg).await.expect("sandbox");
        listing(&sb, Source::List, 100).await;
        listing(&sb, Source::Search { filters: vec![] }, 500).await;
        sb.shutdown().await;
    }
    for (rate, windows) in [
        (RateSpec::GHL_BURST, slow_windows),
        ("100/1s".parse().expect("rate"), fast_windows),
    ] {
        for locations in [1, 5] {
            adherence(rate, locations, windows).await;
        }
    }
    println!("bench took {:.0} s", started.elapsed().as_secs_f64());
}
