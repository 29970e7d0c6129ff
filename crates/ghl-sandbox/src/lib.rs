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
//! Writes behave as GHL's do, for the `load` and `tag` commands: upserts follow each
//! location's duplicate rule ([`Sandbox::set_duplicate_rule`]), tags are stored lower-cased
//! and replaced by contact bodies, bulk requests have a batch limit ([`Sandbox::set_bulk_limit`]),
//! and every applied write is counted by kind in [`Stats::writes`], also when an injected
//! fault then spoils its answer.
//!
//! With [`SandboxConfig::webhooks`] set, every applied write also sends the webhooks GHL would
//! (ContactCreate, ContactUpdate, ContactTagUpdate, NoteCreate, TaskComplete…) to a listener,
//! signed both ways and delivered by GHL's rules (a 429 retried, anything else lost), with
//! knobs for duplicates, reordering and a missing `contactId`; see [`webhooks`].
//!
//! Layout: [`ids`] (hashing, reversible ids), [`data`] (seeded records), [`store`] (order
//! index + write overlay), [`catalog`] (created custom fields, workflows, campaigns,
//! duplicate rules), [`query`] (search filters), [`auth`] (tokens, OAuth), [`agency`] (installed
//! locations and location tokens of agency tokens), [`limits`] (rate
//! limits), [`faults`] (flaky answers), [`hostile`] (wrong answers: bad types, endless or
//! huge bodies, HTML, redirects, pages that repeat or go back, a lying total), [`hold`]
//! (requests held for a test), [`gate`] (the per-request
//! middleware), [`answers`] (error bodies), [`validate`] (request bodies), [`handlers`]
//! (contact, task, note and read routes), [`fields`] (custom fields), [`actions`] (bulk
//! actions, workflows, campaigns, followers), [`webhooks`] (events of writes, signed and
//! delivered by GHL's rules: [`WebhookConfig`], [`WebhookKeys`], [`WebhookStats`]), [`stats`],
//! [`foreground`].
//!
//! This crate imports nothing of the `ghl-etl` tool: the client side of the API lives there
//! (`ghl_etl::api`), and the tool converts its own rate type into [`RateLimit`] where it
//! configures a sandbox. The tool re-exports this crate as `ghl_etl::sandbox`.

// The module map above names private modules on purpose; `cargo doc
// --document-private-items` renders those links.
#![allow(rustdoc::private_intra_doc_links)]

pub use fixture::{Fixture, Seeded};

mod actions;
mod agency;
mod answers;
mod auth;
mod catalog;
mod data;
mod faults;
mod fields;
mod fixture;
mod foreground;
mod gate;
mod handlers;
mod hold;
mod hostile;
mod ids;
mod limits;
mod query;
mod stats;
mod store;
pub mod tables;
mod validate;
mod webhooks;

pub use auth::{TokenSpec, TokenSpecError};
pub use catalog::DuplicateRule;
pub use foreground::{run_foreground, ForegroundPlan};
pub use hold::Hold;
pub use hostile::Hostile;
pub use limits::RateLimit;
pub use stats::Stats;
pub use store::{phone_key, Store};
pub use webhooks::{Schemes, WebhookConfig, WebhookKeys, WebhookStats, ED25519_HEADER, RSA_HEADER};

use auth::{Auth, Grant};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use faults::Fault;
use limits::{Limiter, Refusal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use stats::Write;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webhooks::{Kind, Webhooks};

/// The token that always exists: every scope, every location.
pub const DEFAULT_TOKEN: &str = "sandbox-token";
/// The agency (company) token that always exists: every scope and location, and it lists the
/// app's installed locations and mints their tokens (`/oauth/installedLocations`,
/// `/oauth/locationToken`).
pub const DEFAULT_AGENCY_TOKEN: &str = "sandbox-agency-token";
/// The id of the marketplace app the sandbox plays, for `GET /oauth/installedLocations`.
pub const APP_ID: &str = "6578278e879ad2646715ba9c";
/// OAuth client credentials `POST /oauth/token` accepts.
pub const OAUTH_CLIENT_ID: &str = "sandbox-client-id";
pub const OAUTH_CLIENT_SECRET: &str = "sandbox-client-secret";
/// The only `Version` header value the API accepts.
pub const API_VERSION: &str = "2021-07-28";
/// Contacts per bulk request (`contacts` of bulk tags, `ids` of bulk business) the sandbox
/// accepts until [`Sandbox::set_bulk_limit`] changes it. GHL does not document its limit.
pub const DEFAULT_BULK_LIMIT: usize = 100;

/// How the sandbox is seeded and how it misbehaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seeded contacts per location.
    pub contacts: usize,
    pub locations: usize,
    pub seed: u64,
    /// Burst limit per (token, location); `None` turns it off.
    pub rate_limit: Option<RateLimit>,
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
    /// Requests an issued access token may make before it is refused as expired (`None`: no
    /// limit): an expiry mid-run that does not depend on the machine's speed.
    pub access_token_uses: Option<u64>,
    /// Seed each location's custom fields. Off gives locations with none, as a fresh migration
    /// target has; it needs `contacts = 0` (seeded contacts carry values for those fields).
    pub custom_fields: bool,
    /// Seed the first location from a fixture folder (see [`Fixture`]); the others stay
    /// empty. Needs `contacts = 0`.
    pub fixture: Option<Fixture>,
    /// Send GHL's webhooks for every applied write, and where (`None`: nothing is sent).
    pub webhooks: Option<WebhookConfig>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            contacts: 1000,
            locations: 1,
            seed: 42,
            rate_limit: Some(RateLimit::GHL_BURST),
            daily_limit: 200_000,
            fault_rate: 0.0,
            latency: Duration::ZERO,
            tokens: Vec::new(),
            record_requests: false,
            access_token_ttl: Duration::from_secs(86_399),
            access_token_uses: None,
            custom_fields: true,
            fixture: None,
            webhooks: None,
        }
    }
}

/// One API request as the sandbox saw it, for checking request bodies against the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The axum route template, e.g. `/contacts/{contactId}/tasks`; for a route the sandbox
    /// does not serve, the path as sent.
    pub route: String,
    /// The path as sent, without the query string.
    pub path: String,
    /// The query string's parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case, in order. An `authorization` value keeps only its
    /// scheme (`Bearer`, `Basic`): the credential itself is never recorded.
    pub headers: Vec<(String, String)>,
    /// The JSON body (or a form body as an object of strings), if there was one and it parsed.
    pub body: Option<Value>,
    /// Whether the body was there but could not be read as JSON or a form.
    pub unreadable_body: bool,
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
    #[error("locations without custom fields must start without contacts (contacts = 0)")]
    CustomFieldsNeedNoContacts,
    #[error("could not build the sandbox data: {0}")]
    Build(String),
    #[error("{0}")]
    Webhooks(String),
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
    rate_limit: RwLock<Option<RateLimit>>,
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
    /// Largest batch of a bulk request; see [`Sandbox::set_bulk_limit`].
    bulk_limit: AtomicUsize,
    /// The armed hostile answer and how many API answers it still spoils; see
    /// [`Sandbox::set_hostile`].
    hostile: Mutex<Option<(Hostile, u64)>>,
    /// Match keys (email, phone) of the upserts in flight, with how many carry each.
    upserts_in_flight: Mutex<HashMap<String, u32>>,
    /// Events of applied writes, queued for the delivery task [`serve`] starts.
    webhooks: Webhooks,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An upsert in flight (see [`SandboxState::upsert_in_flight`]); dropping it lands it.
pub(crate) struct InFlight {
    state: Arc<SandboxState>,
    keys: Vec<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut flying = lock(&self.state.upserts_in_flight);
        for k in &self.keys {
            if let Some(n) = flying.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    flying.remove(k);
                }
            }
        }
    }
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
        let webhooks = Webhooks::new(cfg.webhooks.clone()).map_err(SandboxError::Webhooks)?;
        let mut store = Store::new(cfg.seed, cfg.locations, cfg.contacts);
        if cfg.fixture.is_some() && cfg.contacts > 0 {
            return Err(SandboxError::Build(
                "a sandbox seeded from a fixture generates no contacts (contacts = 0)".into(),
            ));
        }
        if !cfg.custom_fields || cfg.fixture.is_some() {
            if cfg.contacts > 0 {
                return Err(SandboxError::CustomFieldsNeedNoContacts);
            }
            store.drop_seeded_fields();
        }
        let ids = store.location_ids();
        if let Some(fx) = &cfg.fixture {
            store
                .seed_fixture(&ids[0], fx)
                .map_err(SandboxError::Build)?;
        }
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
                    ..Grant::unlimited(None)
                },
            ));
        }
        let auth = Auth::new(
            cfg.seed,
            (DEFAULT_TOKEN, DEFAULT_AGENCY_TOKEN),
            extra,
            cfg.access_token_ttl,
        );
        auth.limit_uses(cfg.access_token_uses);
        Ok(SandboxState {
            store,
            auth,
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
            bulk_limit: AtomicUsize::new(DEFAULT_BULK_LIMIT),
            hostile: Mutex::new(None),
            upserts_in_flight: Mutex::new(HashMap::new()),
            webhooks,
        })
    }

    /// The hostile answer for this API answer, if one is armed and applies to it (counting
    /// it down).
    fn take_hostile(&self, listing: impl FnOnce() -> hostile::Listing) -> Option<Hostile> {
        let mut h = lock(&self.hostile);
        let (kind, left) = h.as_mut()?;
        if !kind.applies_to(listing()) {
            return None;
        }
        let kind = kind.clone();
        *left -= 1;
        if *left == 0 {
            *h = None;
        }
        Some(kind)
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

    pub fn set_rate_limit(&self, r: Option<RateLimit>) {
        *self
            .rate_limit
            .write()
            .unwrap_or_else(PoisonError::into_inner) = r;
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        *self
            .rate_limit
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn daily_limit(&self) -> u64 {
        self.daily_limit
    }

    /// At least 1.
    /// Spoil the next `times` API answers with `hostile` (`None` disarms).
    pub fn set_hostile(&self, hostile: Option<Hostile>, times: u64) {
        *lock(&self.hostile) = hostile.filter(|_| times > 0).map(|h| (h, times));
    }

    pub fn set_bulk_limit(&self, n: usize) {
        self.bulk_limit.store(n.max(1), Ordering::Relaxed);
    }

    pub fn bulk_limit(&self) -> usize {
        self.bulk_limit.load(Ordering::Relaxed)
    }

    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).clone()
    }

    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        self.auth.issue_refresh(scopes, false)
    }

    /// The company of the agency tokens.
    pub fn company_id(&self) -> String {
        self.auth.company_id().to_string()
    }

    /// A refresh token whose access tokens are agency (company) tokens.
    pub fn issue_company_refresh_token(&self, scopes: &[&str]) -> String {
        self.auth.issue_refresh(scopes, true)
    }

    /// Uninstall the app from a location (or install it again): see [`Sandbox::set_installed`].
    pub fn set_installed(&self, location: &str, installed: bool) {
        self.auth.set_installed(location, installed)
    }

    /// Move the clock of token lifetimes forward: every token issued so far is `by` older.
    pub fn advance_clock(&self, by: Duration) {
        self.auth.advance_clock(by)
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

    /// The fault for the next request, if any; `unsafe_write` admits the faults that strike
    /// after the write.
    fn next_fault(&self, unsafe_write: bool) -> Option<Fault> {
        let p = self.fault_rate();
        if p <= 0.0 {
            return None;
        }
        let n = self.fault_seq.fetch_add(1, Ordering::Relaxed);
        Fault::pick(self.seed, n, p, unsafe_write)
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

    /// Registers an upsert with these match keys as in flight until the guard drops,
    /// counting it in `overlapping_upserts` if one with a shared key already is.
    fn upsert_in_flight(self: &Arc<Self>, keys: Vec<String>) -> InFlight {
        let mut flying = lock(&self.upserts_in_flight);
        if keys.iter().any(|k| flying.contains_key(k)) {
            lock(&self.stats).overlapping_upserts += 1;
        }
        for k in &keys {
            *flying.entry(k.clone()).or_default() += 1;
        }
        InFlight {
            state: self.clone(),
            keys,
        }
    }

    /// The public keys webhooks are signed with.
    pub fn webhook_public_keys(&self) -> WebhookKeys {
        self.webhooks.keys()
    }

    pub fn webhook_stats(&self) -> WebhookStats {
        self.webhooks.stats()
    }

    /// The `webhookId` of every delivery answered 2xx, in the order of the answers (a
    /// duplicate delivered twice is listed twice).
    pub fn delivered_ids(&self) -> Vec<String> {
        self.webhooks.delivered_ids()
    }

    /// Waits until every webhook emitted so far has been delivered or lost (retries
    /// included); for tests, under a timeout.
    pub async fn webhooks_settled(&self) {
        self.webhooks.settled().await
    }

    /// Emits an event of the record of contact `raw` (the contact, its task or its note).
    pub(crate) fn emit(&self, kind: Kind, raw: u64, record: &Value) {
        if self.webhooks.config().is_none() {
            return;
        }
        let location = &self.store.location((raw >> 32) as usize).id;
        self.webhooks.emit(kind, location, record);
    }

    /// Emits an event of a stored contact.
    pub(crate) fn emit_contact(&self, kind: Kind, contact: &Value) {
        if self.webhooks.config().is_none() {
            return;
        }
        let raw = contact
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| self.store.decode(id));
        let (_, raw) = raw.expect("a stored contact has an id the store handed out");
        self.emit(kind, raw, contact);
    }

    /// The events of a contact changed from `old` to `new`: ContactUpdate when `update`, then
    /// ContactTagUpdate if its tags changed and ContactDndUpdate if `dnd` or `dndSettings` did.
    pub(crate) fn emit_contact_change(&self, old: &Value, new: &Value, update: bool) {
        if update {
            self.emit_contact(Kind::ContactUpdate, new);
        }
        let tags = |c: &Value| -> BTreeSet<String> {
            c.get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        if tags(old) != tags(new) {
            self.emit_contact(Kind::ContactTagUpdate, new);
        }
        let dnd = |c: &Value| (c.get("dnd").cloned(), c.get("dndSettings").cloned());
        if dnd(old) != dnd(new) {
            self.emit_contact(Kind::ContactDndUpdate, new);
        }
    }

    fn count_served(&self, n: usize) {
        lock(&self.stats).contacts_served += n as u64;
    }

    /// Counts one applied write.
    fn count_write(&self, w: Write) {
        *lock(&self.stats)
            .writes
            .entry(w.name().to_string())
            .or_default() += 1;
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

    pub fn set_rate_limit(&self, r: Option<RateLimit>) {
        self.state.set_rate_limit(r)
    }

    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.state.recorded_requests()
    }

    /// The public keys of the webhooks' signatures, as PEM: the Ed25519 one is new at every
    /// start, the RSA one is the committed test key.
    pub fn webhook_public_keys(&self) -> WebhookKeys {
        self.state.webhook_public_keys()
    }

    /// Webhook counters (all zero when webhooks are off).
    pub fn webhook_stats(&self) -> WebhookStats {
        self.state.webhook_stats()
    }

    /// See [`SandboxState::delivered_ids`].
    pub fn delivered_ids(&self) -> Vec<String> {
        self.state.delivered_ids()
    }

    /// See [`SandboxState::webhooks_settled`].
    pub async fn webhooks_settled(&self) {
        self.state.webhooks_settled().await
    }

    /// Spoil the next `times` API answers with `hostile` (`None` disarms).
    pub fn set_hostile(&self, hostile: Option<Hostile>, times: u64) {
        self.state.set_hostile(hostile, times)
    }

    /// Largest batch a bulk request may carry (default [`DEFAULT_BULK_LIMIT`], at least 1).
    pub fn set_bulk_limit(&self, n: usize) {
        self.state.set_bulk_limit(n)
    }

    /// Which field upserts in a location match first; false for an unknown location id.
    pub fn set_duplicate_rule(&self, location: &str, rule: DuplicateRule) -> bool {
        self.state.store.set_duplicate_rule(location, rule)
    }

    pub fn issue_refresh_token(&self, scopes: &[&str]) -> String {
        self.state.issue_refresh_token(scopes)
    }

    /// See [`SandboxState::advance_clock`].
    pub fn advance_clock(&self, by: Duration) {
        self.state.advance_clock(by)
    }

    pub fn issue_company_refresh_token(&self, scopes: &[&str]) -> String {
        self.state.issue_company_refresh_token(scopes)
    }

    /// The company of the agency tokens.
    pub fn company_id(&self) -> String {
        self.state.company_id()
    }

    /// Uninstall the app from a location, or install it again. Uninstalled, the location
    /// tokens minted for it answer 401, `POST /oauth/locationToken` refuses it (400) and
    /// `GET /oauth/installedLocations` reports it not installed; other tokens are unaffected.
    /// Also `POST /_sandbox/locations/{id}` with `{"installed": false}`.
    pub fn set_installed(&self, location: &str, installed: bool) {
        self.state.set_installed(location, installed)
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
    use actions as a;
    use fields as f;
    use handlers as h;
    let routes: Vec<(&'static str, MethodRouter<Arc<SandboxState>>)> = vec![
        ("/contacts/", get(h::list_contacts).post(h::create_contact)),
        ("/contacts/search", post(h::search_contacts)),
        ("/contacts/search/duplicate", get(h::duplicate_contact)),
        ("/contacts/upsert", post(h::upsert_contact)),
        ("/contacts/business/{businessId}", get(h::business_contacts)),
        ("/contacts/bulk/tags/update/{type}", post(a::bulk_tags)),
        ("/contacts/bulk/business", post(a::bulk_business)),
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
            "/contacts/{contactId}/workflow/{workflowId}",
            post(a::add_to_workflow).delete(a::remove_from_workflow),
        ),
        (
            "/contacts/{contactId}/campaigns/{campaignId}",
            post(a::add_to_campaign).delete(a::remove_from_campaign),
        ),
        (
            "/contacts/{contactId}/campaigns/removeAll",
            delete(a::remove_from_all_campaigns),
        ),
        (
            "/contacts/{contactId}/followers",
            post(a::add_followers).delete(a::remove_followers),
        ),
        (
            "/locations/{locationId}/tasks/search",
            post(h::search_tasks),
        ),
        (
            "/locations/{locationId}/customFields",
            get(f::custom_fields).post(f::create_custom_field),
        ),
        ("/businesses/", get(h::businesses)),
        ("/oauth/token", post(h::oauth_token)),
        (
            "/oauth/installedLocations",
            get(agency::installed_locations),
        ),
        ("/oauth/locationToken", post(agency::location_token)),
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
        .route("/_sandbox/locations", get(admin_locations))
        .route(
            "/_sandbox/locations/{locationId}",
            get(admin_location).post(admin_set_location),
        )
        .route("/_sandbox/settings", post(admin_settings))
        .route("/_sandbox/webhooks", get(admin_webhooks))
        .route(
            "/_sandbox/contacts/{contactId}",
            post(h::sandbox_edit_contact),
        );
    api.merge(admin).fallback(gate::not_found).with_state(state)
}

async fn admin_stats(State(st): State<Arc<SandboxState>>) -> Json<Stats> {
    Json(st.stats())
}

/// `GET /_sandbox/webhooks`: the webhook counters, with `pending` (not yet delivered or lost).
async fn admin_webhooks(State(st): State<Arc<SandboxState>>) -> Json<Value> {
    let mut v = json!(st.webhook_stats());
    v["pending"] = json!(st.webhooks.pending());
    Json(v)
}

async fn admin_reset(State(st): State<Arc<SandboxState>>) -> Json<Stats> {
    st.reset_stats();
    Json(st.stats())
}

/// Body of `POST /_sandbox/faults`; absent fields keep their value. `hostile` is a mode as
/// `ghl-etl sandbox --hostile` takes it, or `"off"`; `hostile_answers` how many answers it
/// spoils (default: all).
#[derive(Debug, Deserialize)]
struct FaultSettings {
    fault_rate: Option<f64>,
    latency_ms: Option<u64>,
    hostile: Option<String>,
    hostile_answers: Option<u64>,
}

async fn admin_faults(
    State(st): State<Arc<SandboxState>>,
    Json(f): Json<FaultSettings>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let hostile = match f.hostile.as_deref().map(str::trim) {
        None => None,
        Some("off") => Some(None),
        Some(mode) => {
            Some(Some(mode.parse::<Hostile>().map_err(|e| {
                (StatusCode::BAD_REQUEST, Json(json!({"message": e})))
            })?))
        }
    };
    if let Some(p) = f.fault_rate {
        st.set_fault_rate(p);
    }
    if let Some(ms) = f.latency_ms {
        st.set_latency(Duration::from_millis(ms));
    }
    if let Some(h) = hostile {
        st.set_hostile(h, f.hostile_answers.unwrap_or(u64::MAX));
    }
    let armed = lock(&st.hostile)
        .as_ref()
        .map(|(h, n)| json!({"mode": h.name(), "answers_left": n}));
    Ok(Json(json!({
        "fault_rate": st.fault_rate(),
        "latency_ms": st.latency().as_millis() as u64,
        "hostile": armed,
    })))
}

async fn admin_locations(State(st): State<Arc<SandboxState>>) -> Json<Vec<String>> {
    Json(st.store.location_ids())
}

/// `GET /_sandbox/locations/{id}`: what a write may name in a location (workflows, campaigns,
/// users, businesses) and its duplicate rule.
async fn admin_location(
    State(st): State<Arc<SandboxState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let s = &st.store;
    let rule = s.duplicate_rule(&id).ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!({
        "id": id,
        "duplicate_rule": rule.name(),
        "workflows": s.workflow_ids(&id),
        "campaigns": s.campaign_ids(&id),
        "users": s.user_ids(&id),
        "businesses": s.business_ids(&id),
        "installed": st.auth.installed(&id),
    })))
}

/// Body of `POST /_sandbox/locations/{id}`; absent fields keep their value.
#[derive(Debug, Deserialize)]
struct LocationSettings {
    duplicate_rule: Option<String>,
    /// False uninstalls the app from the location (its minted tokens stop working).
    installed: Option<bool>,
}

async fn admin_set_location(
    State(st): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    Json(b): Json<LocationSettings>,
) -> Result<Json<Value>, (StatusCode, String)> {
    if st.store.duplicate_rule(&id).is_none() {
        return Err((StatusCode::NOT_FOUND, format!("no location {id}")));
    }
    if let Some(installed) = b.installed {
        st.set_installed(&id, installed);
    }
    if let Some(r) = b.duplicate_rule {
        let rule = r.parse().map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        if !st.store.set_duplicate_rule(&id, rule) {
            return Err((StatusCode::NOT_FOUND, format!("no location {id}")));
        }
    }
    admin_location(State(st), Path(id))
        .await
        .map_err(|s| (s, String::new()))
}

/// Body of `POST /_sandbox/settings`; absent fields keep their value.
#[derive(Debug, Deserialize)]
struct Settings {
    bulk_limit: Option<usize>,
}

async fn admin_settings(
    State(st): State<Arc<SandboxState>>,
    Json(s): Json<Settings>,
) -> Json<Value> {
    if let Some(n) = s.bulk_limit {
        st.set_bulk_limit(n);
    }
    Json(json!({"bulk_limit": st.bulk_limit()}))
}

/// Serves `app(state)` on a bound listener until `shutdown` resolves, like mini-redis
/// `server::run`, and delivers the state's webhooks meanwhile (the first `serve` of a state
/// only): delivery stops with the server.
pub async fn serve(
    listener: TcpListener,
    state: Arc<SandboxState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _delivery = state.webhooks.start().map(AbortOnDrop);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Aborts a task when dropped, so that delivery stops however `serve` ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
