//! `Client`: one HTTP connection pool, one rate limiter per location, the retry policy, auth.
//!
//! Every call goes through [`Client::call`]: wait for the location's turn, attach the token,
//! send, classify the answer (`api::answer`, a pure function), and retry with exponential
//! backoff and jitter. The decision (which errors, why; see [`Error::is_retryable`]) lives in
//! `api::error`; the mechanics are backon's.
//!
//! Backoff schedule (defaults): 250 ms, 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s, 30 s (each with
//! jitter, capped at `max_delay`), at most `max_attempts` tries and `max_elapsed` in all; a 429
//! waits at least its `Retry-After` (and pauses the whole location, not just the one task).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use chrono::Utc;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::agency::{self, LocationTokens};
use super::answer::{self, Answer, Pause, Tally};
use super::auth::{Auth, AuthConfig};
use super::error::{Error, ErrorKind, Result};
use super::limiter::{LocationLimiter, Permit, RateHeaders};
use super::rate::RateSpec;
use super::transport::{
    describe_transport, read_capped, trace_body, trace_exchange, MAX_BODY_BYTES,
};
use crate::secret::Secret;

pub const DEFAULT_BASE_URL: &str = "https://services.leadconnectorhq.com";
/// The API version every request must name.
pub const API_VERSION: &str = "2021-07-28";

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 10,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub auth: AuthConfig,
    /// Per-location budget; `None` disables client-side pacing (sandbox benchmarks only).
    pub rate: Option<RateSpec>,
    /// Share of `rate`'s average the smoothing uses. 1.0 is safe: the limiter counts a request
    /// until an interval after its answer, so jitter cannot push a window over (see `limiter`).
    pub rate_safety: f64,
    /// Stop cleanly when a location's daily budget falls to this many requests.
    pub daily_reserve: u64,
    pub retry: RetryConfig,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// What token lifetimes are judged by (tests move it; see [`super::clock`]).
    pub clock: super::Clock,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, auth: AuthConfig) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            auth,
            rate: Some(RateSpec::GHL_BURST),
            rate_safety: 1.0,
            daily_reserve: 1_000,
            retry: RetryConfig::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            clock: super::Clock::default(),
        }
    }
}

/// Counters of what a run cost; read by the summary and the benchmarks.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub bad_bodies: AtomicU64,
    pub transport_errors: AtomicU64,
    pub not_found: AtomicU64,
    pub token_refreshes: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub bad_bodies: u64,
    pub transport_errors: u64,
    pub not_found: u64,
    pub token_refreshes: u64,
}

impl ClientStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: g(&self.requests),
            retries: g(&self.retries),
            throttled: g(&self.throttled),
            server_errors: g(&self.server_errors),
            bad_bodies: g(&self.bad_bodies),
            transport_errors: g(&self.transport_errors),
            not_found: g(&self.not_found),
            token_refreshes: g(&self.token_refreshes),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

struct Inner {
    base: String,
    http: reqwest::Client,
    auth: Auth,
    /// With an agency token: the location tokens minted from it.
    agency: Option<LocationTokens>,
    config: ClientConfig,
    /// One limiter per location, created on first use and shared by every task of the run.
    limiters: Mutex<HashMap<String, Arc<LocationLimiter>>>,
    stats: ClientStats,
    /// Requests in flight at most, when a job sets it ([`Client::cap_in_flight`]). Held for
    /// one attempt only: a call sleeping in backoff before its retry holds no place, so a few
    /// slow retries cannot idle the others.
    in_flight: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
}

/// Cheap to clone: every clone shares the pool, the limiters and the counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// One API call, before it is sent.
#[derive(Debug, Clone)]
pub struct Call {
    /// The rate-limit bucket this call counts against.
    pub location: String,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
    /// A form-encoded body instead (the OAuth routes).
    pub form: Option<Vec<(&'static str, String)>>,
    /// False for creates (tasks, notes): a retry after an answer was lost would create a
    /// duplicate, so only a 429 (refused before any work) is retried.
    pub idempotent: bool,
}

impl Call {
    pub fn get(location: &str, path: impl Into<String>) -> Call {
        Call {
            location: location.to_string(),
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            form: None,
            idempotent: true,
        }
    }

    pub fn form(
        location: &str,
        method: Method,
        path: impl Into<String>,
        form: Vec<(&'static str, String)>,
    ) -> Call {
        Call {
            form: Some(form),
            ..Call::get(location, path).with_method(method)
        }
    }

    fn with_method(mut self, method: Method) -> Call {
        self.method = method;
        self
    }

    pub fn with_body(
        location: &str,
        method: Method,
        path: impl Into<String>,
        body: serde_json::Value,
    ) -> Call {
        Call {
            location: location.to_string(),
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            form: None,
            idempotent: true,
        }
    }

    /// Mark a call that must not be repeated once the server may have acted on it.
    pub fn not_idempotent(mut self) -> Call {
        self.idempotent = false;
        self
    }

    pub fn query(mut self, key: &'static str, value: impl ToString) -> Call {
        self.query.push((key, value.to_string()));
        self
    }
}

/// Refuse `http://` except to loopback: a token must not cross a network in clear text.
pub fn check_base_url(base: &str) -> Result<String> {
    let config_err = |m: String| Error::new(ErrorKind::Config, "-", "-").with_message(m);
    let url =
        url::Url::parse(base).map_err(|e| config_err(format!("invalid base URL `{base}`: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(config_err(format!(
                    "refusing plain http:// to `{}`: tokens would travel unencrypted; use https:// (http:// is allowed only for loopback such as the sandbox)",
                    url.host_str().unwrap_or("")
                )));
            }
        }
        other => {
            return Err(config_err(format!(
                "unsupported URL scheme `{other}` in base URL; use https://"
            )))
        }
    }
    Ok(base.trim_end_matches('/').to_string())
}

/// GHL does not redirect API calls; a redirect off the base host (a hijacked DNS name, a
/// captive portal, a misconfigured proxy) must not take the token with it. reqwest already
/// drops `Authorization` on a cross-host hop, but a hop to another host is refused outright:
/// its answer would not be GHL's either. Same-host hops (at most 3) are followed.
fn same_host_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same = first.is_some_and(|f| {
            f.scheme() == attempt.url().scheme()
                && f.host_str() == attempt.url().host_str()
                && f.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if !same {
            attempt.stop()
        } else if attempt.previous().len() > 3 {
            attempt.error("more than 3 redirects")
        } else {
            attempt.follow()
        }
    })
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let base = check_base_url(&config.base_url)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .gzip(true)
            .http1_only()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("ghl-etl/", env!("CARGO_PKG_VERSION")))
            .redirect(same_host_redirects())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "-", "-").with_message(describe_transport(&e))
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                http,
                auth: Auth::new(config.auth.clone(), config.clock.clone()),
                agency: config
                    .auth
                    .clone()
                    .split_agency()
                    .1
                    .map(|company| LocationTokens::new(company, config.clock.clone())),
                config,
                limiters: Mutex::new(HashMap::new()),
                stats: ClientStats::default(),
                in_flight: std::sync::OnceLock::new(),
            }),
        })
    }

    /// At most `n` requests in flight from now on (the first cap set wins; every clone shares
    /// it). A job then keeps more calls under way than `n`, so that calls waiting for a retry
    /// or for an index to catch up leave the slots to the others.
    pub fn cap_in_flight(&self, n: usize) {
        let _ = self
            .inner
            .in_flight
            .set(Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Whether requests of a location carry location tokens minted from an agency token.
    pub fn is_agency(&self) -> bool {
        self.inner.agency.is_some()
    }

    /// The agency token's company: from the configuration, else from its OAuth answer.
    pub(crate) async fn company_id(&self) -> Result<String> {
        let configured = self.inner.agency.as_ref().and_then(|a| a.company_id());
        if let Some(c) = configured {
            return Ok(c.to_string());
        }
        if self.inner.auth.is_oauth() {
            // The first refresh learns it.
            self.inner
                .auth
                .access_token(&self.inner.http, &self.inner.base)
                .await?;
            if let Some(c) = self.inner.auth.company_id().await {
                return Ok(c);
            }
        }
        Err(Error::new(ErrorKind::Config, "-", "-").with_message(
            "the company id of the agency token is unknown: pass --company-id (or set GHL_COMPANY_ID)",
        ))
    }

    /// The token for a call of `location`: its minted location token with an agency token
    /// (the agency token itself for company-level calls), else the one token. Boxed because
    /// minting is itself a call.
    fn token_for<'a>(
        &'a self,
        location: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret>> + Send + 'a>> {
        Box::pin(async move {
            match &self.inner.agency {
                Some(tokens) if location != agency::COMPANY => tokens.get(self, location).await,
                _ => {
                    self.inner
                        .auth
                        .access_token(&self.inner.http, &self.inner.base)
                        .await
                }
            }
        })
    }

    /// After a 401 that was not about a scope: drop the token that was refused.
    async fn forget_token(&self, location: &str, used: &Secret) {
        match &self.inner.agency {
            Some(tokens) if location != agency::COMPANY => tokens.forget(location, used).await,
            _ => self.inner.auth.invalidate(used).await,
        }
    }

    /// Whether a refused token can be replaced: an OAuth token is refreshed, a location token
    /// minted again.
    fn renewable(&self, location: &str) -> bool {
        self.inner.auth.is_oauth() || (self.is_agency() && location != agency::COMPANY)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The rate this client paces each location at, if any.
    pub fn rate(&self, location: &str) -> Option<RateSpec> {
        self.inner.config.rate?;
        Some(self.limiter(location).spec())
    }

    /// The location's limiter: pacing at the configured rate, or (`--rate off`) keeping only
    /// the daily reserve.
    fn limiter(&self, location: &str) -> Arc<LocationLimiter> {
        let config = &self.inner.config;
        let mut map = self
            .inner
            .limiters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(location.to_string())
            .or_insert_with(|| {
                Arc::new(match config.rate {
                    Some(spec) => {
                        LocationLimiter::new(spec, config.rate_safety, config.daily_reserve)
                    }
                    None => LocationLimiter::unpaced(config.daily_reserve),
                })
            })
            .clone()
    }

    /// Send `call` (with retries) and decode its answer.
    pub async fn call<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let bytes = self.call_bytes(call).await?;
        decode(&bytes, call)
    }

    /// Send `call` with retries; on a 401 with OAuth, refresh the token once and try again
    /// (with an agency token, mint the location's token again).
    pub async fn call_bytes(&self, call: &Call) -> Result<Bytes> {
        match self.call_with_retries(call).await {
            // A missing scope is not an expired token: refreshing (which rotates the single-use
            // refresh token) cannot help.
            Err(e)
                if e.kind == ErrorKind::Unauthorized
                    && self.renewable(&call.location)
                    && !e.is_scope_error() =>
            {
                bump(&self.inner.stats.token_refreshes);
                match self.call_with_retries(call).await {
                    // A fresh location token refused too: that location's access is gone, the
                    // agency token and the other locations are fine.
                    Err(e)
                        if e.kind == ErrorKind::Unauthorized
                            && !e.is_scope_error()
                            && self.is_agency()
                            && call.location != agency::COMPANY =>
                    {
                        Err(agency::revoked(&call.location, e))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn call_with_retries(&self, call: &Call) -> Result<Bytes> {
        let r = &self.inner.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(r.min_delay)
            .with_max_delay(r.max_delay)
            .with_max_times(r.max_attempts.saturating_sub(1))
            .with_total_delay(Some(r.max_elapsed))
            .with_jitter();
        (|| self.attempt(call))
            .retry(backoff)
            .when(|e: &Error| {
                e.is_retryable()
                    && (call.idempotent || matches!(e.kind, ErrorKind::RateLimited { .. }))
            })
            .adjust(|e, delay| match (&e.kind, delay) {
                // Honour Retry-After, never less than the backoff (Retry-After: 0 exists).
                (
                    ErrorKind::RateLimited {
                        retry_after: Some(ra),
                    },
                    Some(d),
                ) => Some(d.max(*ra)),
                (_, d) => d,
            })
            .notify(|e, delay| {
                bump(&self.inner.stats.retries);
                tracing::debug!(error = %e, delay_ms = delay.as_millis() as u64, "Retrying.");
            })
            .await
    }

    /// One try: pace, authorise, send, classify ([`answer::classify`]), then do what the answer
    /// asks of the client ([`Client::heed`]).
    async fn attempt(&self, call: &Call) -> Result<Bytes> {
        let method = call.method.as_str();
        // The token first: a refresh must not hold one of the location's places in the window.
        let token = self.token_for(&call.location).await?;
        // The secrets test injects a panic with a token in hand: what it prints must not show it.
        // Every request checks the name against the one list of failpoints, so an unknown one
        // stops any command that talks to the API.
        #[cfg(feature = "failpoints")]
        if crate::armed_failpoint!().as_deref() == Some("panic-in-request") {
            panic!(
                "injected panic (GHL_ETL_FAILPOINT=panic-in-request) in {method} {}",
                call.path
            );
        }
        // A place among the requests in flight before one in the window, so that a request
        // never holds the window's place while it waits for a slot.
        let _slot = match self.inner.in_flight.get() {
            Some(s) => Some(s.clone().acquire_owned().await.expect("never closed")),
            None => None,
        };
        let limiter = self.limiter(&call.location);
        let permit = self.place(&limiter, call).await?;
        let req = self.request(call, &token);
        bump(&self.inner.stats.requests);
        let started = std::time::Instant::now();
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                drop(permit);
                trace_exchange(method, &call.path, None, started.elapsed());
                bump(&self.inner.stats.transport_errors);
                return Err(Error::new(ErrorKind::Transport, method, &call.path)
                    .with_message(describe_transport(&e)));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        permit.answered(&RateHeaders::parse(&headers));
        let read = read_capped(response, MAX_BODY_BYTES).await;
        trace_exchange(method, &call.path, Some(status.as_u16()), started.elapsed());
        if let Ok(bytes) = &read {
            trace_body("answer", &call.path, bytes, token.expose());
        }
        let answer = answer::classify(method, &call.path, status, &headers, read, Utc::now());
        self.heed(&answer, &call.location, &limiter, &token).await;
        answer.result
    }

    /// A place in the location's window, or the error that its daily budget is down to the
    /// reserve.
    async fn place<'l>(&self, limiter: &'l LocationLimiter, call: &Call) -> Result<Permit<'l>> {
        limiter.acquire().await.ok_or_else(|| {
            let resets_in = answer::until_utc_midnight(Utc::now());
            Error::new(
                ErrorKind::DailyBudgetExhausted { resets_in },
                call.method.as_str(),
                &call.path,
            )
            .with_message(format!(
                "location {} has at most {} requests left today",
                call.location, self.inner.config.daily_reserve
            ))
        })
    }

    /// The request of `call`, authorised with `token`; a JSON body is traced (redacted).
    fn request(&self, call: &Call, token: &Secret) -> reqwest::RequestBuilder {
        let mut req = self
            .inner
            .http
            .request(
                call.method.clone(),
                format!("{}{}", self.inner.base, call.path),
            )
            .bearer_auth(token.expose())
            .header("Version", API_VERSION)
            .header(reqwest::header::ACCEPT, "application/json");
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = &call.body {
            let text = body.to_string();
            trace_body("request", &call.path, text.as_bytes(), token.expose());
            req = req.json(body);
        }
        if let Some(form) = &call.form {
            let mut text = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                text.append_pair(k, v);
            }
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(text.finish());
        }
        req
    }

    /// What an answer asks of the client besides its result: a counter, a pause of the whole
    /// location after a 429, a refused token forgotten.
    async fn heed(
        &self,
        answer: &Answer,
        location: &str,
        limiter: &LocationLimiter,
        token: &Secret,
    ) {
        let stats = &self.inner.stats;
        if let Some(tally) = answer.tally {
            bump(match tally {
                Tally::Throttled => &stats.throttled,
                Tally::NotFound => &stats.not_found,
                Tally::ServerError => &stats.server_errors,
                Tally::BadBody => &stats.bad_bodies,
                Tally::TransportError => &stats.transport_errors,
            });
        }
        if let Some(pause) = answer.pause.filter(|_| limiter.paces()) {
            limiter.pause(match pause {
                Pause::RetryAfter(d) => d,
                Pause::Window => limiter.throttle_pause(),
            });
        }
        if answer.forget_token {
            self.forget_token(location, token).await;
        }
    }
}

/// Decode an answer, naming the JSON path of the first field that does not fit.
///
/// The fast path is plain serde_json; only an answer that fails is decoded again with path
/// tracking, which costs a few percent on every page otherwise.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], call: &Call) -> Result<T> {
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::new(
            ErrorKind::Decode { json_path: path },
            call.method.as_str(),
            &call.path,
        )
        .with_message(e.inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_base_url("http://127.0.0.1:8787").is_ok());
        assert!(check_base_url("http://localhost:1/").is_ok());
        assert!(check_base_url("http://[::1]:80").is_ok());
        assert!(check_base_url("https://services.leadconnectorhq.com").is_ok());
        let e = check_base_url("http://services.leadconnectorhq.com").unwrap_err();
        assert!(e.to_string().contains("refusing plain http://"), "{e}");
        assert!(check_base_url("ftp://x").is_err());
    }

    #[test]
    fn decode_names_the_json_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Page {
            contacts: Vec<super::super::model::Contact>,
        }
        let call = Call::get("L", "/contacts/");
        let e = decode::<Page>(
            br#"{"contacts":[{"id":"a"},{"id":"b","tags":"oops"}]}"#,
            &call,
        )
        .unwrap_err();
        match &e.kind {
            ErrorKind::Decode { json_path } => assert_eq!(json_path, "contacts[1].tags"),
            other => panic!("{other:?}"),
        }
    }
}
