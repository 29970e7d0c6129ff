//! What the rate benchmarks (`client`, `agency`) share: their flags, a sandbox served on
//! loopback that stamps every request as it arrives, and the steady rate read from the stamps.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::SandboxState;

/// The value after `name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (arrival, what `Stamped::key` read from the request, status) of every request served.
pub type Log = Arc<Mutex<Vec<(Instant, String, u16)>>>;

/// The sandbox on an ephemeral loopback port, stamping every request.
pub struct Stamped {
    pub url: String,
    pub log: Log,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

type Key = fn(&Request) -> String;

async fn stamp(State((log, key)): State<(Log, Key)>, req: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let what = key(&req);
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((arrived, what, status));
    resp
}

/// Serve `state`, logging each request under `key(request)` (its path, its token, ...).
pub async fn serve_stamped(state: Arc<SandboxState>, key: Key) -> Stamped {
    let log: Log = Arc::default();
    let app = ghl_etl::sandbox::app(state).layer(axum::middleware::from_fn_with_state(
        (log.clone(), key),
        stamp,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Stamped { url, log, server }
}

/// Requests per second after the first window (which any client may send at once) over the
/// time they span; `None` with too few stamps to tell.
pub fn steady_rate(stamps: &mut [Instant], rate: RateSpec) -> Option<f64> {
    stamps.sort();
    let max = rate.max as usize;
    if stamps.len() <= max + 1 {
        return None;
    }
    let n = stamps.len();
    let span = (stamps[n - 1] - stamps[max]).as_secs_f64();
    Some((n - 1 - max) as f64 / span)
}
