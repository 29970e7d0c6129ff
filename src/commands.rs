//! One function per subcommand, and the mapping from outcomes to exit codes.
//!
//! Exit codes (documented in the README):
//! 0 success · 1 finished, but some records were rejected or failed (see the reject files) ·
//! 2 usage, configuration or I/O error · 3 authentication/authorisation (token, scope, location) ·
//! 4 the location's daily request budget is spent (rerun later: it resumes) ·
//! 5 the API kept failing after retries (rerun: it resumes) · 6 the API answered pages that
//! cannot be followed (a repeating cursor): rerunning will not help · 130 interrupted (rerun: it resumes).

use std::io::Write;

use reqwest::Method;
use serde_json::json;

use crate::api::{Call, Client, ErrorKind};
use crate::cli::ConnectionArgs;

pub const EXIT_OK: i32 = 0;
pub const EXIT_RECORD_FAILURES: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_AUTH: i32 = 3;
pub const EXIT_BUDGET: i32 = 4;
pub const EXIT_API: i32 = 5;
pub const EXIT_PAGING: i32 = 6;
pub const EXIT_INTERRUPTED: i32 = 130;

/// Marks an error as an interruption (Ctrl-C), for the exit code.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; rerun the same command to resume")]
pub struct Interrupted;

/// The first API error in an error's chain, if any.
pub fn api_error(err: &anyhow::Error) -> Option<&crate::api::Error> {
    err.chain()
        .find_map(|c| c.downcast_ref::<crate::api::Error>())
}

/// The exit code for a fatal error: looks for an API error anywhere in the chain.
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<Interrupted>().is_some() {
            return EXIT_INTERRUPTED;
        }
        if let Some(e) = cause.downcast_ref::<crate::api::Error>() {
            return match e.kind {
                ErrorKind::Unauthorized | ErrorKind::Forbidden => EXIT_AUTH,
                ErrorKind::DailyBudgetExhausted { .. } => EXIT_BUDGET,
                ErrorKind::Config => EXIT_USAGE,
                ErrorKind::CursorLoop => EXIT_PAGING,
                ErrorKind::Cancelled => EXIT_INTERRUPTED,
                _ => EXIT_API,
            };
        }
    }
    EXIT_USAGE
}

/// One scope probe of `auth check`.
struct Probe {
    scope: &'static str,
    call: Call,
    /// Statuses that prove the scope works although the call "failed" (the write probe).
    accepted: &'static [u16],
}

/// `ghl-etl auth check`: which scopes does this token have for this location?
pub async fn auth_check(
    conn: &ConnectionArgs,
    location: &str,
    write: bool,
    default_token: Option<&str>,
) -> anyhow::Result<i32> {
    let mut cfg = conn.client_config(default_token)?;
    cfg.retry.max_attempts = cfg.retry.max_attempts.min(4);
    let client = Client::new(cfg)?;
    let mut probes = vec![
        Probe {
            scope: "contacts.readonly",
            call: Call::get(location, "/contacts/")
                .query("locationId", location)
                .query("limit", 1),
            accepted: &[],
        },
        Probe {
            scope: "locations/customFields.readonly",
            call: Call::get(location, format!("/locations/{location}/customFields"))
                .query("model", "contact"),
            accepted: &[],
        },
        Probe {
            scope: "locations/tasks.readonly",
            call: Call::with_body(
                location,
                Method::POST,
                format!("/locations/{location}/tasks/search"),
                json!({"contactId": [], "limit": 1, "skip": 0}),
            ),
            accepted: &[],
        },
        Probe {
            scope: "businesses.readonly",
            call: Call::get(location, "/businesses/").query("locationId", location),
            accepted: &[],
        },
    ];
    if write {
        // An update of an id that cannot exist: with the scope the API answers 404 (or 400/422)
        // and changes nothing; without it, 401.
        probes.push(Probe {
            scope: "contacts.write",
            call: Call::with_body(
                location,
                Method::PUT,
                "/contacts/ghl-etl-write-probe-0",
                json!({}),
            ),
            accepted: &[400, 404, 422],
        });
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Token check for location {location} at {}:",
        client.base_url()
    )?;
    let mut essential_ok = true;
    let mut write_ok = true;
    for probe in probes {
        let result = client.call_bytes(&probe.call).await;
        let (ok, detail) = match result {
            Ok(_) => (true, "ok".to_string()),
            Err(e) if e.status.is_some_and(|s| probe.accepted.contains(&s)) => {
                (true, "ok (probe changed nothing)".to_string())
            }
            Err(e) if e.is_scope_error() => (
                false,
                "missing: the token is not authorised for this scope".to_string(),
            ),
            Err(e) if e.is_auth() => {
                writeln!(out, "  {:<34} refused", probe.scope)?;
                return Err(
                    anyhow::Error::new(e).context("the token does not work for this location")
                );
            }
            Err(e) => (false, format!("failed: {e}")),
        };
        writeln!(out, "  {:<34} {}", probe.scope, detail)?;
        if !ok && probe.scope == "contacts.readonly" {
            essential_ok = false;
        }
        if !ok && probe.scope == "contacts.write" {
            write_ok = false;
        }
    }
    let stats = client.stats();
    writeln!(
        out,
        "{} requests, {} retries.",
        stats.requests, stats.retries
    )?;
    if !essential_ok {
        writeln!(
            out,
            "The token cannot read contacts: exports need `contacts.readonly`."
        )?;
        return Ok(EXIT_AUTH);
    }
    if !write_ok {
        writeln!(
            out,
            "The token cannot write contacts: imports and tagging need `contacts.write`."
        )?;
        return Ok(EXIT_AUTH);
    }
    Ok(EXIT_OK)
}
