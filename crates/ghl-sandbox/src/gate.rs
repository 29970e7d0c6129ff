//! The gate every API request passes before its handler, in GHL's order: bearer token (401),
//! `Version` header (400), the route's scope (401), access to the location (403), burst and
//! daily limits (429), then injected faults and added latency, and last a
//! [hold](super::hold) if a test asked for one. An armed [hostile answer](super::hostile)
//! spoils the handler's answer, or for the paging modes tells the listing handler to step back
//! (a [`Rewind`](super::hostile::Rewind) extension). It also records requests for spec tests,
//! counts answers in [`Stats`](super::Stats) (upserts in flight together included) and stamps
//! the rate-limit headers. Error bodies come from [`super::answers`].
//!
//! Which scope a route needs comes from the specs' `security` lists; where the location of a
//! request comes from (query, path, body or the contact's own location), and whether a write
//! is unsafe to repeat (so that a fault may strike after it), is in [`route_info`].
//! Handlers get the resolved location in a [`Ctx`] extension and stay free of these concerns.

use super::answers::{err_400, err_401, err_403, err_404};
use super::hostile::{Hostile, Listing};
use super::limits::Refusal;
use super::{RecordedRequest, SandboxState, API_VERSION};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body the sandbox reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub const INVALID_TOKEN: &str = "Invalid token: access token is invalid";
pub const SCOPE_DENIED: &str = "The token is not authorized for this scope.";
pub const LOCATION_DENIED: &str = "The token does not have access to this location";

/// Where a route names its location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocFrom {
    /// `?locationId=`
    Query,
    /// `/locations/{locationId}/...`
    Path,
    /// `{"locationId": ...}` in the JSON body
    Body,
    /// `/contacts/{contactId}/...`: the contact's location
    Contact,
    Nowhere,
}

#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    pub scope: Option<&'static str>,
    pub loc: LocFrom,
    /// False for `/oauth/token`, which authenticates with client credentials instead.
    pub bearer: bool,
    /// A write that is not safe to repeat (a create, an upsert, bulk tags): injected faults may
    /// answer it with a 5xx after it was applied.
    pub unsafe_write: bool,
}

const READ: &str = "contacts.readonly";
const WRITE: &str = "contacts.write";

/// Scope and location source of each (method, route template) the sandbox serves.
pub fn route_info(method: &Method, template: &str) -> Option<RouteInfo> {
    use LocFrom::*;
    let r = |scope, loc| {
        Some(RouteInfo {
            scope: Some(scope),
            loc,
            bearer: true,
            unsafe_write: false,
        })
    };
    let create = |scope, loc| {
        r(scope, loc).map(|i| RouteInfo {
            unsafe_write: true,
            ..i
        })
    };
    match (method.as_str(), template) {
        ("GET", "/contacts/" | "/contacts/search/duplicate") => r(READ, Query),
        ("POST", "/contacts/" | "/contacts/upsert") => create(WRITE, Body),
        ("POST", "/contacts/search") => r(READ, Body),
        ("GET", "/contacts/business/{businessId}") => r(READ, Query),
        // The spec lists no security for the bulk routes; GHL requires the write scope.
        ("POST", "/contacts/bulk/tags/update/{type}") => create(WRITE, Body),
        ("POST", "/contacts/bulk/business") => r(WRITE, Body),
        (
            "GET",
            "/contacts/{contactId}"
            | "/contacts/{contactId}/tasks"
            | "/contacts/{contactId}/tasks/{taskId}"
            | "/contacts/{contactId}/notes"
            | "/contacts/{contactId}/notes/{id}"
            | "/contacts/{contactId}/appointments",
        ) => r(READ, Contact),
        ("POST", "/contacts/{contactId}/tasks" | "/contacts/{contactId}/notes") => {
            create(WRITE, Contact)
        }
        ("PUT" | "DELETE", "/contacts/{contactId}")
        | ("POST" | "DELETE", "/contacts/{contactId}/tags")
        | (
            "PUT" | "DELETE",
            "/contacts/{contactId}/tasks/{taskId}" | "/contacts/{contactId}/notes/{id}",
        )
        | ("PUT", "/contacts/{contactId}/tasks/{taskId}/completed")
        | (
            "POST" | "DELETE",
            "/contacts/{contactId}/workflow/{workflowId}"
            | "/contacts/{contactId}/campaigns/{campaignId}"
            | "/contacts/{contactId}/followers",
        )
        | ("DELETE", "/contacts/{contactId}/campaigns/removeAll") => r(WRITE, Contact),
        ("POST", "/locations/{locationId}/tasks/search") => r("locations/tasks.readonly", Path),
        ("GET", "/locations/{locationId}/customFields") => {
            r("locations/customFields.readonly", Path)
        }
        ("POST", "/locations/{locationId}/customFields") => {
            create("locations/customFields.write", Path)
        }
        ("GET", "/businesses/") => r("businesses.readonly", Query),
        // Agency-only routes (the spec's `Agency-Access-Only` security); handlers check that
        // the token is an agency token.
        ("GET", "/oauth/installedLocations") => r("oauth.readonly", Nowhere),
        ("POST", "/oauth/locationToken") => r("oauth.write", Nowhere),
        ("POST", "/oauth/token") => Some(RouteInfo {
            scope: None,
            loc: Nowhere,
            bearer: false,
            unsafe_write: false,
        }),
        _ => None,
    }
}

/// What the gate learnt about a request, for its handler.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Index of the request's location, when it names one the token may reach.
    pub location: Option<usize>,
    /// `http://host:port` as the client addressed the sandbox, for `nextPageUrl`.
    pub base_url: String,
    /// What the bearer token may do (routes without a bearer token: `None`).
    pub grant: Option<super::auth::Grant>,
}

/// The 404 for routes the sandbox does not serve, naming method and path (NestJS wording).
pub fn unknown_route(method: &Method, uri: &Uri) -> Response {
    err_404(&format!("Cannot {} {}", method, uri.path())).into_response()
}

/// The answer to a path (or method) the sandbox does not serve: recorded like any request,
/// so that the spec tests see it too.
pub async fn not_found(State(st): State<Arc<SandboxState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if st.recording() {
        st.record(recorded(
            &parts.method,
            parts.uri.path(),
            &parts,
            None,
            false,
        ));
    }
    unknown_route(&parts.method, &parts.uri)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A request as the spec tests check it; the credential of an `authorization` header is left
/// out (its scheme is kept).
fn recorded(
    method: &Method,
    route: &str,
    parts: &axum::http::request::Parts,
    body: Option<Value>,
    unreadable_body: bool,
) -> RecordedRequest {
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            let value = if name == header::AUTHORIZATION {
                value.split(' ').next().unwrap_or_default().to_string()
            } else {
                value.into_owned()
            };
            (name.as_str().to_string(), value)
        })
        .collect();
    RecordedRequest {
        method: method.to_string(),
        route: route.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers,
        body,
        unreadable_body,
    }
}

/// A form-encoded body as a JSON object of strings, so recorded OAuth requests can be checked
/// against the spec like JSON ones.
fn form_as_json(headers: &HeaderMap, bytes: &[u8]) -> Option<Value> {
    let form = headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .starts_with("application/x-www-form-urlencoded");
    form.then(|| {
        let pairs = url::form_urlencoded::parse(bytes).into_owned();
        Value::Object(pairs.map(|(k, v)| (k, Value::String(v))).collect())
    })
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The keys an upsert body could match a contact on (see `Stats::overlapping_upserts`).
fn upsert_keys(json: Option<&Value>) -> Vec<String> {
    let text = |k: &str| json.and_then(|j| j.get(k)?.as_str());
    let email = text("email")
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty());
    let phone = text("phone").and_then(super::store::phone_key);
    [
        email.map(|e| format!("email:{e}")),
        phone.map(|p| format!("phone:{p}")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Whether a request lists contacts, and whether it asks for a page after a cursor.
fn listing(method: &Method, template: &str, uri: &Uri, json: Option<&Value>) -> Listing {
    let after = match (method.as_str(), template) {
        ("GET", "/contacts/") => query_param(uri, "startAfterId").is_some(),
        ("POST", "/contacts/search") => json.is_some_and(|j| {
            j.get("searchAfter").is_some_and(|v| !v.is_null())
                || j.get("page").and_then(Value::as_u64).is_some_and(|p| p > 1)
        }),
        ("GET", "/contacts/business/{businessId}") => {
            query_param(uri, "skip").is_some_and(|s| s.trim() != "0")
        }
        _ => return Listing::No,
    };
    if after {
        Listing::AfterCursor
    } else {
        Listing::FirstPage
    }
}

fn path_segment(uri: &Uri, n: usize) -> Option<&str> {
    uri.path().split('/').nth(n).filter(|s| !s.is_empty())
}

fn utc_day_and_secs_left() -> (i64, u64) {
    let now = super::store::now_ms().max(0) / 1000;
    (now / 86_400, (86_400 - now % 86_400) as u64)
}

fn set(headers: &mut HeaderMap, name: &'static str, v: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
        headers.insert(name, v);
    }
}

/// The gate's state: the shared sandbox state and the route template it guards (one gate
/// layer per route, so the template is known without axum's `matched-path` feature).
#[derive(Debug, Clone)]
pub struct Guard {
    pub st: Arc<SandboxState>,
    pub template: &'static str,
}

/// The middleware: see the module documentation for the order of checks.
pub async fn gate(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let Guard { st, template } = guard;
    let method = req.method().clone();
    let latency = st.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (resp, location) = admit_and_run(&st, &method, template, req, next).await;
    st.count(
        &format!("{method} {template}"),
        resp.status(),
        location.as_deref(),
    );
    resp
}

async fn admit_and_run(
    st: &Arc<SandboxState>,
    method: &Method,
    template: &str,
    req: Request,
    next: Next,
) -> (Response, Option<String>) {
    let Some(info) = route_info(method, template) else {
        if st.recording() {
            let (parts, _) = req.into_parts();
            st.record(recorded(method, parts.uri.path(), &parts, None, false));
            return (unknown_route(method, &parts.uri), None);
        }
        return (unknown_route(method, req.uri()), None);
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (
            err_400("Request body is unreadable or larger than 16 MiB").into_response(),
            None,
        );
    };
    let json: Option<Value> = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    // Held from here to the answer, holds and latency included.
    let _in_flight = (method == Method::POST && template == "/contacts/upsert")
        .then(|| st.upsert_in_flight(upsert_keys(json.as_ref())));
    if st.recording() {
        let body = json
            .clone()
            .or_else(|| form_as_json(&parts.headers, &bytes));
        let unreadable = body.is_none() && !bytes.is_empty();
        st.record(recorded(method, template, &parts, body, unreadable));
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut ctx = Ctx {
        location: None,
        base_url: format!("http://{host}"),
        grant: None,
    };
    let mut loc_id: Option<String> = None;
    let mut verdict = None;
    if info.bearer {
        let Some(token) = bearer(&parts.headers).map(str::to_owned) else {
            return (err_401(INVALID_TOKEN).into_response(), None);
        };
        let Some(grant) = st.auth.lookup(&token) else {
            return (err_401(INVALID_TOKEN).into_response(), None);
        };
        ctx.grant = Some(grant.clone());
        let version = parts.headers.get("version").and_then(|v| v.to_str().ok());
        if version != Some(API_VERSION) {
            let msg = match version {
                None => format!("Version header is missing: send Version: {API_VERSION}"),
                Some(v) => {
                    format!("Version header `{v}` is not supported: send Version: {API_VERSION}")
                }
            };
            return (err_400(&msg).into_response(), None);
        }
        if let Some(scope) = info.scope {
            if !grant.allows(scope) {
                return (err_401(SCOPE_DENIED).into_response(), None);
            }
        }
        loc_id = match info.loc {
            LocFrom::Query => query_param(&parts.uri, "locationId"),
            LocFrom::Path => path_segment(&parts.uri, 2).map(str::to_owned),
            LocFrom::Body => json
                .as_ref()
                .and_then(|j| j.get("locationId")?.as_str().map(str::to_owned)),
            LocFrom::Contact => path_segment(&parts.uri, 2)
                .and_then(|cid| st.store.decode(cid))
                .map(|(li, _)| st.store.location(li).id.clone()),
            LocFrom::Nowhere => None,
        }
        .filter(|l| !l.is_empty());
        if let Some(id) = &loc_id {
            match st.store.loc_index(id) {
                Some(li) if grant.reaches(id) => ctx.location = Some(li),
                _ => return (err_403(LOCATION_DENIED).into_response(), None),
            }
        }
        let (day, secs_left) = utc_day_and_secs_left();
        let v = st.limiter.check(
            &token,
            loc_id.as_deref().unwrap_or("-"),
            st.rate_limit(),
            st.daily_limit(),
            tokio::time::Instant::now(),
            day,
        );
        if let Some(refusal) = v.refused {
            let mut resp = match refusal {
                Refusal::Burst => {
                    let spec = st.rate_limit().map(|s| s.to_string()).unwrap_or_default();
                    let mut r = (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({"statusCode": 429,
                            "message": format!("Too many requests: the limit is {spec} per location and app. Try again later.")})),
                    )
                        .into_response();
                    // GHL usually, but not always, says when to come back.
                    if st.limiter_refusal_sends_retry_after() {
                        let secs = v
                            .retry_after
                            .unwrap_or(Duration::ZERO)
                            .as_millis()
                            .div_ceil(1000);
                        set(r.headers_mut(), "retry-after", secs);
                    }
                    r
                }
                Refusal::Daily => {
                    let mut r = (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({"statusCode": 429,
                            "message": format!("Daily rate limit exhausted: {} requests per day for this location and app. It resets at midnight UTC.", st.daily_limit())})),
                    )
                        .into_response();
                    set(r.headers_mut(), "retry-after", secs_left);
                    r
                }
            };
            st.count_refusal(refusal);
            rate_headers(st, &mut resp, &v);
            return (resp, loc_id);
        }
        verdict = Some(v);
    }
    let fault = st
        .next_fault(info.unsafe_write)
        .filter(|f| info.bearer || f.is_status());
    if let Some(f) = fault.filter(|f| f.is_status()) {
        st.count_fault(f);
        let mut resp = f.status_response();
        if let Some(v) = &verdict {
            rate_headers(st, &mut resp, v);
        }
        return (resp, loc_id);
    }
    if let Some(released) = st.holds.enter(&format!("{method} {template}")) {
        super::hold::wait(released).await;
    }
    let hostile = info
        .bearer
        .then(|| st.take_hostile(|| listing(method, template, &parts.uri, json.as_ref())))
        .flatten();
    if let Some(rewind) = hostile.as_ref().and_then(Hostile::rewind) {
        parts.extensions.insert(rewind);
    }
    let grows = hostile.as_ref().map_or(0, Hostile::grows);
    if let (Some(li), true) = (ctx.location, grows > 0) {
        for _ in 0..grows {
            st.store.create_contact(li, |c| {
                let id = c["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                c.insert("email".into(), json!(format!("grown.{id}@example.com")));
            });
        }
    }
    parts.extensions.insert(ctx);
    let instead = hostile.as_ref().and_then(|h| {
        let asked = query_param(&parts.uri, "limit")
            .and_then(|l| l.parse().ok())
            .or_else(|| json.as_ref()?.get("pageLimit")?.as_u64());
        let size = asked.unwrap_or(100).clamp(1, 500) as usize;
        h.answer_instead(method == Method::POST, size)
    });
    let mut resp = match instead {
        Some(r) => r,
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    if let Some(f) = fault {
        st.count_fault(f);
        let (p, b) = resp.into_parts();
        let bytes = to_bytes(b, usize::MAX).await.unwrap_or_default();
        resp = f.spoil(p, bytes);
    }
    if let Some(h) = hostile.filter(|h| !h.acts_before()) {
        let (p, b) = resp.into_parts();
        let bytes = to_bytes(b, usize::MAX).await.unwrap_or_default();
        resp = h.spoil(p, bytes);
    }
    if let Some(v) = &verdict {
        rate_headers(st, &mut resp, v);
    }
    (resp, loc_id)
}

fn rate_headers(st: &SandboxState, resp: &mut Response, v: &super::limits::Verdict) {
    let h = resp.headers_mut();
    if let (Some(spec), Some(rem)) = (st.rate_limit(), v.remaining) {
        set(h, "x-ratelimit-max", spec.max);
        set(h, "x-ratelimit-remaining", rem);
        set(
            h,
            "x-ratelimit-interval-milliseconds",
            spec.interval.as_millis(),
        );
    }
    set(h, "x-ratelimit-limit-daily", st.daily_limit());
    set(h, "x-ratelimit-daily-remaining", v.daily_remaining);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_route_has_a_scope_and_location_source() {
        let get = Method::GET;
        let info = route_info(&get, "/contacts/{contactId}/tasks").unwrap();
        assert_eq!(info.scope, Some("contacts.readonly"));
        assert_eq!(info.loc, LocFrom::Contact);
        let info = route_info(&Method::POST, "/locations/{locationId}/tasks/search").unwrap();
        assert_eq!(info.scope, Some("locations/tasks.readonly"));
        assert_eq!(info.loc, LocFrom::Path);
        assert!(!route_info(&Method::POST, "/oauth/token").unwrap().bearer);
        let notes = route_info(&Method::POST, "/contacts/{contactId}/notes").unwrap();
        assert!(notes.unsafe_write);
        let tags = route_info(&Method::POST, "/contacts/{contactId}/tags").unwrap();
        assert!(!tags.unsafe_write, "adding tags twice is harmless");
        let field = route_info(&Method::POST, "/locations/{locationId}/customFields").unwrap();
        assert_eq!(field.scope, Some("locations/customFields.write"));
        assert!(route_info(&Method::PATCH, "/contacts/{contactId}").is_none());
    }

    #[test]
    fn parses_bearer_and_query() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        let uri: Uri = "/contacts/?limit=5&locationId=L%201".parse().unwrap();
        assert_eq!(query_param(&uri, "locationId").as_deref(), Some("L 1"));
        let uri: Uri = "/locations/LOC/tasks/search".parse().unwrap();
        assert_eq!(path_segment(&uri, 2), Some("LOC"));
    }
}
