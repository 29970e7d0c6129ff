//! The check commands: `auth check` (which scopes a token has for a location) and `mapping
//! check` (is a mapping file valid, and what does it produce).

use std::io::Write;
use std::path::Path;

use reqwest::Method;
use serde_json::json;

use crate::api::{Call, Client, ErrorKind};
use crate::exit::{self, JobError, Result};
use crate::job::{Connection, ConnectionPlan};
use crate::mapping::{CustomFieldInfo, Mapping};

/// The only I/O of `auth check` is its report on stdout.
fn stdout_error(e: std::io::Error) -> JobError {
    JobError::io("write to", "stdout", e)
}

/// One scope probe of `auth check`.
struct Probe {
    scope: &'static str,
    call: Call,
    /// Statuses that prove the scope works although the call "failed" (the write probe).
    accepted: &'static [u16],
}

/// `ghl-etl auth check`: which scopes does this token have for this location?
pub async fn auth_check(conn: &ConnectionPlan, location: &str, write: bool) -> Result<i32> {
    let mut conn = conn.clone();
    conn.retry.max_attempts = conn.retry.max_attempts.min(4);
    let connection = Connection::open(&conn, true).await?;
    let result = probe_scopes(&connection.client, location, write).await;
    connection.close().await;
    result
}

async fn probe_scopes(client: &Client, location: &str, write: bool) -> Result<i32> {
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
    )
    .map_err(stdout_error)?;
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
                writeln!(out, "  {:<34} refused", probe.scope).map_err(stdout_error)?;
                return Err(e.into());
            }
            // Nothing is known of the token when the API cannot be reached at all.
            Err(e) if e.kind == ErrorKind::Transport => {
                writeln!(
                    out,
                    "  {:<34} not checked: the API at {} cannot be reached (check --base-url, the network and any proxy)",
                    probe.scope,
                    client.base_url()
                )
                .map_err(stdout_error)?;
                return Err(e.into());
            }
            Err(e) => (false, format!("failed: {e}")),
        };
        writeln!(out, "  {:<34} {}", probe.scope, detail).map_err(stdout_error)?;
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
    )
    .map_err(stdout_error)?;
    if !essential_ok {
        writeln!(
            out,
            "The token cannot read contacts: exports need `contacts.readonly`."
        )
        .map_err(stdout_error)?;
        return Ok(exit::AUTH);
    }
    if !write_ok {
        writeln!(
            out,
            "The token cannot write contacts: imports and tagging need `contacts.write`."
        )
        .map_err(stdout_error)?;
        return Ok(exit::AUTH);
    }
    Ok(exit::OK)
}

/// `ghl-etl mapping check FILE [--location L]`: every problem with file:line:col, or the
/// tables and columns the mapping produces.
pub async fn mapping_check(
    file: &Path,
    location: Option<&str>,
    conn: &ConnectionPlan,
) -> Result<i32> {
    let mut mapping = match Mapping::from_path(file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return Ok(exit::USAGE);
        }
    };
    if let Some(location) = location {
        let connection = Connection::open(conn, true).await?;
        let fields = connection.client.custom_fields(location).await;
        connection.close().await;
        let fields: Vec<CustomFieldInfo> = fields?.into_iter().map(CustomFieldInfo::from).collect();
        if let Err(e) = mapping.resolve_custom_fields(&fields) {
            eprintln!("{e}");
            return Ok(exit::USAGE);
        }
    }
    print!("{}", crate::mapping::describe(&mapping));
    println!("{}: ok", file.display());
    Ok(exit::OK)
}
