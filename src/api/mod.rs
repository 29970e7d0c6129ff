//! The typed GHL client: auth, rate limiting, retries and pagination streams.
//!
//! - `client`: the HTTP pool, the per-location limiters, the retry loop, counters.
//! - `answer`: one answer (status, headers, body) classified: the body, or which error, and
//!   what the client must do about it (count it, pause the location, forget the token). Pure.
//! - `auth`: static tokens and OAuth refresh-token rotation; `clock`: the clock token
//!   lifetimes are judged by (tests move it forward).
//! - `agency`: agency (company) tokens: installed locations, per-location tokens minted from it.
//! - `limiter`: per-location pacing from the rate-limit budget and answer headers.
//! - `pages`: contact listings as streams of pages with resumable cursors.
//! - `endpoints`: the other reads (tasks, notes, custom fields) and upsert, tags, task and note creates.
//! - `writes`: contact create/update/delete, custom-field create, look-ups before writing.
//! - `filter`: `--where` expressions → search filters.
//! - `matching`: the keys an email or a phone matches a contact on.
//! - `actions`: workflows, campaigns, followers and the business of many contacts.
//! - `model`: typed records that keep unknown fields; `error`: what failed and whether to retry.
//! - `transport`: reading answers (error messages, transport errors) for `client` and `auth`.

pub mod actions;
pub mod agency;
mod answer;
pub mod auth;
pub mod client;
pub mod clock;
pub mod endpoints;
pub mod error;
pub mod filter;
pub mod limiter;
pub mod matching;
pub mod model;
pub mod pages;
pub mod rate;
mod transport;
pub mod writes;

pub use agency::InstalledLocation;
pub use auth::{AgencyConfig, AuthConfig, OAuthConfig};
pub use client::{
    Call, Client, ClientConfig, RetryConfig, StatsSnapshot, API_VERSION, DEFAULT_BASE_URL,
};
pub use clock::Clock;
pub use error::{Error, ErrorKind};
pub use pages::{ContactPage, Cursor, Source};
pub use rate::RateSpec;
pub use transport::{set_trace_bodies, MAX_BODY_BYTES};
