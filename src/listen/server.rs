//! The HTTP side of `listen`: `POST /webhooks/ghl` (the path is configurable) and
//! `GET /healthz`.
//!
//! A delivery is read whole (up to the size limit: 413; within the read timeout: 408, so a
//! sender that drips bytes cannot hold a connection), verified over its raw bytes (401), its
//! `timestamp` checked against the clock (401 when stale), then stored (see [`super::journal`])
//! before the 200. A repeated `webhookId` is answered 200 and stored once. Anything that keeps
//! the event from being stored is answered 429, never 5xx: GHL retries only a 429.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::journal::{Journal, Unavailable};
use super::verify::{Keys, Refusal, ED25519_HEADER, RSA_HEADER};
use crate::state::NewEvent;

/// What the listener was told to accept.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest body accepted.
    pub max_body: usize,
    /// Events whose `timestamp` is further from now than this are refused.
    pub max_age: Duration,
    /// The whole body must arrive within this.
    pub read_timeout: Duration,
}

/// Counters of what the listener answered.
#[derive(Debug, Default)]
pub struct Counters {
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub unsigned: AtomicU64,
    pub stale: AtomicU64,
    pub too_large: AtomicU64,
    pub too_slow: AtomicU64,
    pub malformed: AtomicU64,
    pub refused_429: AtomicU64,
}

pub struct Shared {
    pub journal: Journal,
    pub keys: Keys,
    pub limits: Limits,
    pub counters: Counters,
}

pub fn router(shared: Arc<Shared>, path: &str) -> Router {
    Router::new()
        .route(path, post(receive))
        .route("/healthz", get(health))
        .with_state(shared)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    answer(status, json!({"error": why}))
}

async fn receive(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let c = &s.counters;
    let bytes = match read_body(body, &s.limits).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            c.too_large.fetch_add(1, Ordering::Relaxed);
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than the limit",
            );
        }
        Err(BodyError::TooSlow) => {
            c.too_slow.fetch_add(1, Ordering::Relaxed);
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            );
        }
    };
    if let Err(r) = verify(&s.keys, &parts.headers, &bytes) {
        c.unsigned.fetch_add(1, Ordering::Relaxed);
        let why = match r {
            Refusal::Missing => {
                "no signature this listener has a key for (x-ghl-signature, x-wh-signature)"
            }
            Refusal::Invalid => "the signature does not verify",
        };
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let event = match read_event(&bytes, now, &s.limits) {
        Ok(e) => e,
        Err(EventError::Stale) => {
            c.stale.fetch_add(1, Ordering::Relaxed);
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the timestamp is too old (or too far ahead)",
            );
        }
        Err(EventError::Malformed(why)) => {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            return refuse(StatusCode::BAD_REQUEST, &why);
        }
    };
    match s.journal.append(event).await {
        Ok(true) => {
            c.stored.fetch_add(1, Ordering::Relaxed);
            answer(StatusCode::OK, json!({"stored": true}))
        }
        Ok(false) => {
            c.duplicates.fetch_add(1, Ordering::Relaxed);
            answer(StatusCode::OK, json!({"stored": false, "duplicate": true}))
        }
        Err(why) => {
            c.refused_429.fetch_add(1, Ordering::Relaxed);
            let text = match why {
                Unavailable::Busy => "busy: send again",
                Unavailable::ShuttingDown => "shutting down: send again",
                Unavailable::Failed(_) => "cannot store events now: send again",
            };
            let mut r = refuse(StatusCode::TOO_MANY_REQUESTS, text);
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("60"));
            r
        }
    }
}

enum BodyError {
    TooLarge,
    TooSlow,
}

async fn read_body(body: Body, limits: &Limits) -> Result<axum::body::Bytes, BodyError> {
    match tokio::time::timeout(limits.read_timeout, to_bytes(body, limits.max_body)).await {
        Err(_) => Err(BodyError::TooSlow),
        // `to_bytes` fails on a body over the limit (and on a broken connection, which no
        // one reads the answer of).
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Ok(Ok(b)) => Ok(b),
    }
}

fn verify(keys: &Keys, headers: &HeaderMap, body: &[u8]) -> Result<&'static str, Refusal> {
    let h = |name: &str| headers.get(name).map(|v| v.as_bytes());
    keys.verify(body, h(ED25519_HEADER), h(RSA_HEADER))
}

enum EventError {
    Stale,
    Malformed(String),
}

/// The stored form of a verified body. Every field is kept (the body as received); only
/// `webhookId`, `type`, `locationId` and `timestamp` are read. A body without a `webhookId`
/// gets one from its bytes' SHA-256, so a repeat of it is still stored once.
fn read_event(bytes: &[u8], now_ms: i64, limits: &Limits) -> Result<NewEvent, EventError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| EventError::Malformed(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(EventError::Malformed(
            "the body is not a JSON object".into(),
        ));
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(ts) = v.get("timestamp").and_then(crate::api::pages::epoch_ms) {
        if (now_ms - ts).unsigned_abs() > limits.max_age.as_millis() as u64 {
            return Err(EventError::Stale);
        }
    }
    let webhook_id = match text("webhookId") {
        id if !id.is_empty() => id,
        _ => {
            let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
    };
    Ok(NewEvent {
        webhook_id,
        event_type: text("type"),
        location: text("locationId"),
        received_ms: now_ms,
        body: bytes.to_vec(),
    })
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let c = &s.counters;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    answer(
        StatusCode::OK,
        json!({"status": "ok", "stored": n(&c.stored), "duplicates": n(&c.duplicates),
               "refused_429": n(&c.refused_429)}),
    )
}
