//! The GHL sandbox: a real HTTP server (axum) that answers like GoHighLevel's Contacts API v2
//! as the official OpenAPI specs describe it, with seeded, messy data, GHL's rate limits,
//! OAuth refresh-token rotation, and injected faults.
//!
//! It serves tests and benchmarks in-process on an ephemeral port ([`Sandbox::start`]), the
//! `export --sandbox` demo, and the `ghl-etl sandbox` command ([`run_foreground`]). Contacts are a
//! pure function of (seed, location, index), so a million of them cost a sorted index and
//! nothing more; writes live in an overlay. Counters and knobs are reachable without auth
//! under `/_sandbox/` so a benchmark in another process can read and turn them.
//!
//! Layout: [`ids`] (hashing, reversible ids), [`data`] (seeded records), [`store`] (order
//! index + write overlay), [`query`] (search filters), [`auth`] (tokens, OAuth), [`limits`]
//! (rate limits), [`faults`], [`hold`] (requests held for a test), [`gate`] (the per-request
//! middleware), [`answers`] (error bodies), [`handlers`] (routes), [`stats`], [`cli`]. The
//! client side of the API is not here: see [`crate::api`].

mod answers;
mod auth;
mod data;
mod faults;
mod foreground;
mod gate;
mod handlers;
mod hold;
mod ids;
mod limits;
mod query;
mod stats;
mod store;

pub use auth::{TokenSpec, TokenSpecError};
pub use foreground::{run_foreground, ForegroundPlan};
pub use hold::Hold;
pub use stats::Stats;
pub use store::Store;

use crate::api::RateSpec;
use auth::{Auth, Grant};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put, MethodRouter};
use axum::{Json, Router};
use faults::Fault;
use limits::{Limiter, Refusal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The token that always exists: every scope, every location.
pub const DEFAULT_TOKEN: &str = "sandbox-token";
/// OAuth client credentials `POST /oauth/token` accepts.
pub const OAUTH_CLIENT_ID: &str = "sandbox-client-id";
pub const OAUTH_CLIENT_SECRET: &str = "sandbox-client-secret";
/// The only `Version` header value the API accepts.
pub const API_VERSION: &str = "2021-07-28";

/// How the sandbox is seeded and how it misbehaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seeded contacts per location.
    pub contacts: usize,
    pub locations: usize,
    pub seed: u64,
    /// Burst limit per (token, location); `None` turns it off.
    pub rate_limit: Option<RateSpec>,
    /// Requests per (token, location) and UTC day.
    pub daily_limit: u64,
    /// Share (0.0..=1.0) of API requests answered with an injected fault.
    pub fault_rate: f64,
    /// Added before every API answer.
    pub latency: Duration,
    /// Tokens besides [`DEFAULT_TOKEN`].
    pub tokens: Vec<TokenSpec>,
    /// Keep (method, route template, JSON body) of each API request.
    pub record_requests: bool,
    /// Lifetime of the OAuth access tokens the sandbox issues.
    pub access_token_ttl: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            contacts: 1000,
            locations: 1,
            seed: 42,
            rate_limit: Some(RateSpec::GHL_BURST),
            daily_limit: 200_000,
            fault_rate: 0.0,
            latency: Duration::ZERO,
            tokens: Vec::new(),
            record_requests: false,
            access_token_ttl: Duration::from_secs(86_399),
        }
    }
}

/// One API request as the sandbox saw it, for checking request bodies against the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The axum route template, e.g. `/contacts/{contactId}/tasks`.
    pub route: String,
    /// The JSON body, if there was one and it parsed.
    pub body: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("token `{token}` names location `{location}`, which is neither a location id nor an index below {count}")]
    UnknownLocation {
        token: String,
        location: String,
        count: usize,
    },
    #[error("fault rate {0} is outside 0.0..=1.0")]
    FaultRate(f64),
    #[error("the sandbox needs at least one location")]
    NoLocation,
    #[error("could not build the sandbox data: {0}")]
    Build(String),
}

impl From<SandboxError> for std::io::Error {
    fn from(e: SandboxError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Everything the server shares between requests.
#[derive(Debug)]
pub struct SandboxState {
    store: Store,
    auth: Auth,
    limiter: Limiter,
    seed: u64,
    /// Changed at run time through [`Sandbox::set_rate_limit`].
    rate_limit: RwLock<Option<RateSpec>>,
    daily_limit: u64,
    /// `f64` bits of the fault rate, changed through the admin route or [`Sandbox::set_fault_rate`].
    fault_rate: AtomicU64,
    latency_us: AtomicU64,
    /// Sequence number of fault draws, so fault choice is a pure function of it.
    fault_seq: AtomicU64,
    /// Counts limiter refusals, to leave out `Retry-After` on some of them.
    refusals: AtomicU64,
    stats: Mutex<Stats>,
    record: bool,
    recorded: Mutex<Vec<RecordedRequest>>,
    /// Routes whose requests wait at the gate for a test; see [`Sandbox::hold`].
    holds: hold::Holds,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SandboxState {
    /// Seeds the data (about a second per million contacts) and sets up tokens.
    pub fn new(cfg: SandboxConfig) -> Result<SandboxState, SandboxError> {
        if cfg.locations == 0 {
            return Err(SandboxError::NoLocation);
        }
        if !(0.0..=1.0).contains(&cfg.fault_rate) {
            return Err(SandboxError::FaultRate(cfg.fault_rate));
        }
        let store = Store::new(cfg.seed, cfg.locations, cfg.contacts);
        let ids = store.location_ids();
        let mut extra = Vec::new();
        for t in &cfg.tokens {
            let locations = match &t.locations {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|l| {
                            if ids.contains(l) {
                                Ok(l.clone())
                            } else {
                                l.parse::<usize>()
                                    .ok()
                                    .and_then(|i| ids.get(i).cloned())
                                    .ok_or_else(|| SandboxError::UnknownLocation {
                                        token: t.token.clone(),
                                        location: l.clone(),
                                        count: ids.len(),
                                    })
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            extra.push((
                t.token.clone(),
                Grant {
                    scopes: Some(t.scopes.clone()),
                    locations,
                    expires_at: None,
                },
            ));
        }
        Ok(SandboxState {
            store,
            auth: Auth::new(cfg.seed, DEFAULT_TOKEN, extra, cfg.access_token_ttl),
            limiter: Limiter::default(),
            seed: cfg.seed,
            rate_limit: RwLock::new(cfg.rate_limit),
            daily_limit: cfg.daily_limit,
            fault_rate: AtomicU64::new(cfg.fault_rate.to_bits()),
            latency_us: AtomicU64::new(cfg.latency.as_micros() as u64),
            fault_seq: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
            record: cfg.record_requests,
            recorded: Mutex::new(Vec::new()),
            holds: hold::Holds::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }

    /// Clamped to 0.0..=1.0.
    pub fn set_fault_rate(&self, p: f64) {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.fault_rate.store(p.to_bits(), Ordering::Relaxed);
    }

    pub fn fault_rate(&self) -> f64 {
        f64::from_bits(self.fault_rate.load(Ordering::Relaxed))
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    pub fn set_rate_limit(&self, r: Option<RateSpec>) {
        *self
            .rate_limit
            .write()
            .unwrap_or_else(PoisonError::into_inner) = r;
    }

    pub fn rate_limit(&self) -> Option<RateSpec> {
        *self
            .rate_limit
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn daily_limit(&self) -> u64 {
        self.daily_limit
    }

    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).clone()
    }

    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        self.auth.issue_refresh(scopes)
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn recording(&self) -> bool {
        self.record
    }

    fn record(&self, r: RecordedRequest) {
        lock(&self.recorded).push(r);
    }

    fn next_fault(&self) -> Option<Fault> {
        let p = self.fault_rate();
        if p <= 0.0 {
            return None;
        }
        Fault::pick(self.seed, self.fault_seq.fetch_add(1, Ordering::Relaxed), p)
    }

    /// Seven limiter refusals in eight carry `Retry-After`.
    fn limiter_refusal_sends_retry_after(&self) -> bool {
        self.refusals.fetch_add(1, Ordering::Relaxed) % 8 != 7
    }

    fn count(&self, route: &str, status: StatusCode, location: Option<&str>) {
        let mut s = lock(&self.stats);
        s.requests += 1;
        *s.by_route
            .entry(route.to_string())
            .or_default()
            .entry(status.as_u16())
            .or_default() += 1;
        if let Some(l) = location {
            *s.by_location.entry(l.to_string()).or_default() += 1;
        }
    }

    fn count_refusal(&self, r: Refusal) {
        let mut s = lock(&self.stats);
        match r {
            Refusal::Burst => s.rate_limited += 1,
            Refusal::Daily => s.daily_limited += 1,
        }
    }

    fn count_fault(&self, f: Fault) {
        *lock(&self.stats)
            .faults
            .entry(f.name().to_string())
            .or_default() += 1;
    }

    fn count_served(&self, n: usize) {
        lock(&self.stats).contacts_served += n as u64;
    }
}

/// A running sandbox server. Dropping it stops the server too; [`Sandbox::shutdown`] also
/// waits for it to finish.
#[derive(Debug)]
pub struct Sandbox {
    state: Arc<SandboxState>,
    addr: SocketAddr,
    /// Dropping or firing this stops the server's accept loop.
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sandbox {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: SandboxConfig, addr: SocketAddr) -> std::io::Result<Sandbox> {
        // Seeding a million contacts takes about a second: keep it off the event loop.
        let state = tokio::task::spawn_blocking(move || SandboxState::new(cfg))
            .await
            .map_err(|e| std::io::Error::other(SandboxError::Build(e.to_string())))??;
        let state = Arc::new(state);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        tracing::info!(url = %format!("http://{addr}"), "Sandbox listening.");
        Ok(Sandbox {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn location_ids(&self) -> Vec<String> {
        self.state.store.location_ids()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn state(&self) -> &Arc<SandboxState> {
        &self.state
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    pub fn reset_stats(&self) {
        self.state.reset_stats()
    }

    pub fn set_fault_rate(&self, p: f64) {
        self.state.set_fault_rate(p)
    }

    pub fn set_latency(&self, d: Duration) {
        self.state.set_latency(d)
    }

    pub fn set_rate_limit(&self, r: Option<RateSpec>) {
        self.state.set_rate_limit(r)
    }

    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.state.recorded_requests()
    }

    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        self.state.issue_refresh_token(scopes)
    }

    /// Holds every request to `routes` (method and template, `"GET /contacts/{contactId}/notes"`)
    /// at the gate, after its checks and before its handler, until the [`Hold`] is released
    /// or dropped. For tests that must act between two requests of a client; see [`hold`].
    pub fn hold(&self, routes: &[&str]) -> Hold {
        Hold::new(self.state.clone(), routes)
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "Sandbox server ended with an error."),
                Err(e) => tracing::warn!(error = %e, "Sandbox server task failed."),
            }
        }
    }
}

/// The router: API routes behind the [`gate`](gate::gate), admin routes under `/_sandbox/`
/// without it, and a 404 naming method and path for everything else.
pub fn app(state: Arc<SandboxState>) -> Router {
    use handlers as h;
    let routes: Vec<(&'static str, MethodRouter<Arc<SandboxState>>)> = vec![
        ("/contacts/", get(h::list_contacts).post(h::create_contact)),
        ("/contacts/search", post(h::search_contacts)),
        ("/contacts/upsert", post(h::upsert_contact)),
        ("/contacts/business/{businessId}", get(h::business_contacts)),
        ("/contacts/bulk/tags/update/{type}", post(h::bulk_tags)),
        (
            "/contacts/{contactId}",
            get(h::get_contact)
                .put(h::update_contact)
                .delete(h::delete_contact),
        ),
        (
            "/contacts/{contactId}/tags",
            post(h::add_tags).delete(h::remove_tags),
        ),
        (
            "/contacts/{contactId}/tasks",
            get(h::list_tasks).post(h::create_task),
        ),
        (
            "/contacts/{contactId}/tasks/{taskId}",
            get(h::get_task).put(h::update_task).delete(h::delete_task),
        ),
        (
            "/contacts/{contactId}/tasks/{taskId}/completed",
            put(h::complete_task),
        ),
        (
            "/contacts/{contactId}/notes",
            get(h::list_notes).post(h::create_note),
        ),
        (
            "/contacts/{contactId}/notes/{id}",
            get(h::get_note).put(h::update_note).delete(h::delete_note),
        ),
        ("/contacts/{contactId}/appointments", get(h::appointments)),
        (
            "/locations/{locationId}/tasks/search",
            post(h::search_tasks),
        ),
        (
            "/locations/{locationId}/customFields",
            get(h::custom_fields),
        ),
        ("/businesses/", get(h::businesses)),
        ("/oauth/token", post(h::oauth_token)),
    ];
    let mut api = Router::new();
    for (template, route) in routes {
        let guard = gate::Guard {
            st: state.clone(),
            template,
        };
        api = api.route(
            template,
            route.route_layer(axum::middleware::from_fn_with_state(guard, gate::gate)),
        );
    }
    let api = api.method_not_allowed_fallback(gate::not_found);
    let admin = Router::new()
        .route("/_sandbox/stats", get(admin_stats))
        .route("/_sandbox/stats/reset", post(admin_reset))
        .route("/_sandbox/faults", post(admin_faults))
        .route("/_sandbox/locations", get(admin_locations));
    api.merge(admin).fallback(gate::not_found).with_state(state)
}

async fn admin_stats(State(st): State<Arc<SandboxState>>) -> Json<Stats> {
    Json(st.stats())
}

async fn admin_reset(State(st): State<Arc<SandboxState>>) -> Json<Stats> {
    st.reset_stats();
    Json(st.stats())
}

/// Body of `POST /_sandbox/faults`; absent fields keep their value.
#[derive(Debug, Deserialize)]
struct FaultSettings {
    fault_rate: Option<f64>,
    latency_ms: Option<u64>,
}

async fn admin_faults(
    State(st): State<Arc<SandboxState>>,
    Json(f): Json<FaultSettings>,
) -> Json<Value> {
    if let Some(p) = f.fault_rate {
        st.set_fault_rate(p);
    }
    if let Some(ms) = f.latency_ms {
        st.set_latency(Duration::from_millis(ms));
    }
    Json(json!({"fault_rate": st.fault_rate(), "latency_ms": st.latency().as_millis() as u64}))
}

async fn admin_locations(State(st): State<Arc<SandboxState>>) -> Json<Vec<String>> {
    Json(st.store.location_ids())
}

/// Serves `app(state)` on a bound listener until `shutdown` resolves, like mini-redis
/// `server::run`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<SandboxState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
