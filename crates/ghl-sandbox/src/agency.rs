//! What an agency (company) token can do besides reading: list the locations the app is
//! installed on (`GET /oauth/installedLocations`) and mint a token for one of them
//! (`POST /oauth/locationToken`), as the spec's `Agency-Access-Only` routes describe.
//!
//! Every sandbox location belongs to the one company of the sandbox's agency tokens; a
//! location the app was uninstalled from ([`super::Sandbox::set_installed`]) is listed with
//! `isInstalled: false` and gets no token. Scope and token checks happened in the gate.

use super::answers::{err_400, err_401, err_422, ApiError};
use super::auth::Grant;
use super::data::iso_ms;
use super::gate::Ctx;
use super::handlers::{ok, parse_count, Answer, St};
use super::APP_ID;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Extension;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Every seeded location was installed this long before the sandbox's fixed epoch.
const INSTALLED_AT_MS: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

/// The agency grant of the request, or GHL's answer to a location token on an agency route.
fn agency(ctx: &Ctx) -> Result<(&Grant, &str), ApiError> {
    let grant = ctx
        .grant
        .as_ref()
        .ok_or_else(|| err_401("Invalid token: access token is invalid"))?;
    match grant.company.as_deref() {
        Some(company) => Ok((grant, company)),
        None => Err(err_401(
            "This route is only for agency (company) tokens; this is a location token",
        )),
    }
}

/// The request's `companyId` must be the token's own company.
fn same_company(given: Option<&String>, company: &str) -> Result<(), ApiError> {
    match given.map(String::as_str) {
        None | Some("") => Err(err_422(vec!["companyId should not be empty".into()])),
        Some(c) if c == company => Ok(()),
        Some(_) => Err(err_401("The token does not have access to this company")),
    }
}

/// `GET /oauth/installedLocations?companyId=&appId=&skip=&limit=&isInstalled=&query=`.
pub async fn installed_locations(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let (_, company) = agency(&ctx)?;
    same_company(q.get("companyId"), company)?;
    match q.get("appId").map(String::as_str) {
        None | Some("") => return Err(err_422(vec!["appId should not be empty".into()])),
        Some(APP_ID) => {}
        Some(other) => return Err(err_400(&format!("App {other} not found"))),
    }
    // The spec types skip and limit as strings; GHL reads them as numbers.
    let skip = parse_count(&q, "skip", 0, None)?;
    let limit = parse_count(&q, "limit", 20, Some(500))?;
    let only = match q.get("isInstalled").map(String::as_str) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(err_422(vec!["isInstalled must be a boolean value".into()])),
    };
    let name_query = q.get("query").map(|s| s.to_lowercase());
    let matching: Vec<Value> = st
        .store
        .location_ids()
        .into_iter()
        .enumerate()
        .filter(|(_, id)| q.get("locationId").is_none_or(|l| l == id))
        .map(|(i, id)| {
            let installed = st.auth.installed(&id);
            json!({
                "_id": id,
                "name": location_name(i),
                "address": format!("{} Market Street, Springfield", 100 + i),
                "isInstalled": installed,
                "installedAt": iso_ms(INSTALLED_AT_MS + i as i64 * 86_400_000),
            })
        })
        .filter(|l| only.is_none_or(|want| l["isInstalled"] == json!(want)))
        .filter(|l| {
            name_query.as_deref().is_none_or(|nq| {
                l["name"]
                    .as_str()
                    .is_some_and(|n| n.to_lowercase().contains(nq))
            })
        })
        .collect();
    let count = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(skip).take(limit).collect();
    ok(
        StatusCode::OK,
        json!({"locations": page, "count": count, "installToFutureLocations": false}),
    )
}

/// `POST /oauth/locationToken` (form-encoded `companyId`, `locationId`).
pub async fn location_token(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let (grant, company) = agency(&ctx)?;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let location = form.get("locationId").filter(|s| !s.is_empty());
    if location.is_none() {
        let mut errs = vec!["locationId should not be empty".to_string()];
        if form.get("companyId").is_none_or(|s| s.is_empty()) {
            errs.insert(0, "companyId should not be empty".into());
        }
        return Err(err_422(errs));
    }
    same_company(form.get("companyId"), company)?;
    let location = location.map(String::as_str).unwrap_or_default();
    if st.store.loc_index(location).is_none() {
        return Err(err_400(&format!("Location {location} not found")));
    }
    if !st.auth.installed(location) {
        return Err(err_400(&format!(
            "The app is not installed on location {location}"
        )));
    }
    let issued = st.auth.mint_location_token(grant, location);
    ok(
        StatusCode::OK,
        json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in.as_secs(),
            "scope": issued.grant.scope_string(),
            "locationId": location,
            "userId": super::ids::hashed_id(&[st.seed(), 0x05E4]),
            "appId": APP_ID,
        }),
    )
}

/// A readable, stable name for the `i`-th location.
fn location_name(i: usize) -> String {
    const TRADES: &[&str] = &[
        "Dental",
        "Roofing",
        "Yoga",
        "Law",
        "Bakery",
        "Auto Repair",
        "Realty",
        "Pilates",
    ];
    format!("{} Co. #{}", TRADES[i % TRADES.len()], i + 1)
}
