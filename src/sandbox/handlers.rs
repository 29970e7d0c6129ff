//! Route handlers: request validation the way GHL's NestJS validation answers it (422 with a
//! list of messages, "property X should not exist" for unknown properties), and response
//! bodies shaped as the spec's response schemas. A contact, task or note that does not exist
//! (any more) is a 400 "… not found", as GHL answers it, never a 404; the bodies themselves are
//! in [`super::answers`].
//!
//! Authentication, scopes, location access, limits and faults have already been dealt with by
//! [`super::gate`]; data lives in [`super::store`]. Handlers that may scan a whole location
//! (filtered searches, the first upsert) run on the blocking pool so they never stall the
//! server's event loop.

use super::answers::{contact_not_found, err_400, err_401, err_422, ApiError};
use super::data::{iso_ms, Location};
use super::gate::Ctx;
use super::ids::IdCodec;
use super::query::{
    parse_search, text_matches, Field, FieldVal, Record, SearchRequest, Sort, SortVal,
};
use super::store::{now_ms, Child, Hit, PageItem};
use super::{SandboxState, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Answer = Result<Response, ApiError>;
type St = State<Arc<SandboxState>>;
type Q = Query<HashMap<String, String>>;

fn ok(status: StatusCode, v: Value) -> Answer {
    Ok((status, Json(v)).into_response())
}

/// Runs store work that may scan a whole location off the event loop.
async fn blocking<T: Send + 'static>(
    st: &Arc<SandboxState>,
    f: impl FnOnce(&SandboxState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"statusCode": 500, "message": "Internal server error"}),
            )
        })
}

fn body_object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err_422(vec!["body must be a JSON object".into()])),
        Err(e) => Err(err_400(&format!(
            "Unexpected token in JSON at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// Property kinds of the spec's request DTOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum P {
    Str,
    /// string or null (`nullable: true` in the spec)
    StrN,
    Email,
    Bool,
    Num,
    StrArr,
    Obj,
    CustomFields,
    /// `dateOfBirth`: typed `object` in the spec but sent as a string on the wire.
    Any,
}

const CONTACT_COMMON: &[(&str, P)] = &[
    ("firstName", P::StrN),
    ("lastName", P::StrN),
    ("name", P::StrN),
    ("email", P::Email),
    ("phone", P::StrN),
    ("address1", P::StrN),
    ("city", P::StrN),
    ("state", P::StrN),
    ("postalCode", P::Str),
    ("website", P::StrN),
    ("timezone", P::StrN),
    ("dnd", P::Bool),
    ("dndSettings", P::Obj),
    ("inboundDndSettings", P::Obj),
    ("tags", P::StrArr),
    ("customFields", P::CustomFields),
    ("dateOfBirth", P::Any),
    ("country", P::Str),
];
/// CreateContactDto adds these to the common ones.
const CONTACT_CREATE: &[(&str, P)] = &[
    ("locationId", P::Str),
    ("gender", P::Str),
    ("source", P::Str),
    ("companyName", P::StrN),
    ("assignedTo", P::Str),
];
/// UpdateContactDto: no locationId, gender or companyName; source and assignedTo nullable.
const CONTACT_UPDATE: &[(&str, P)] = &[("source", P::StrN), ("assignedTo", P::StrN)];
const CONTACT_UPSERT: &[(&str, P)] = &[("createNewIfDuplicateAllowed", P::Bool)];
const TASK_PROPS: &[(&str, P)] = &[
    ("title", P::Str),
    ("body", P::Str),
    ("dueDate", P::Str),
    ("completed", P::Bool),
    ("assignedTo", P::Str),
];
const NOTE_PROPS: &[(&str, P)] = &[
    ("userId", P::Str),
    ("body", P::Str),
    ("title", P::Str),
    ("color", P::Str),
    ("pinned", P::Bool),
];
const TAGS_PROPS: &[(&str, P)] = &[("tags", P::StrArr)];
const BULK_TAGS_PROPS: &[(&str, P)] = &[
    ("contacts", P::StrArr),
    ("tags", P::StrArr),
    ("locationId", P::Str),
    ("removeAllTags", P::Bool),
];
const TASK_SEARCH_PROPS: &[(&str, P)] = &[
    ("contactId", P::StrArr),
    ("completed", P::Bool),
    ("assignedTo", P::StrArr),
    ("query", P::Str),
    ("limit", P::Num),
    ("skip", P::Num),
    ("businessId", P::Str),
];

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// Checks a body against DTO property lists, as class-validator would.
fn check(body: &Map<String, Value>, props: &[&[(&str, P)]], required: &[&str]) -> Vec<String> {
    let mut errs = Vec::new();
    let find = |k: &str| {
        props
            .iter()
            .flat_map(|p| p.iter())
            .find(|(n, _)| *n == k)
            .map(|(_, p)| *p)
    };
    for (k, v) in body {
        let Some(kind) = find(k) else {
            errs.push(format!("property {k} should not exist"));
            continue;
        };
        let fine = match (kind, v) {
            (P::Any, _) => true,
            (P::StrN | P::Email, Value::Null) => true,
            (P::Str | P::StrN, Value::String(_)) => true,
            (P::Email, Value::String(s)) => {
                if !is_email(s) {
                    errs.push(format!("{k} must be an email"));
                }
                true
            }
            (P::Bool, Value::Bool(_)) => true,
            (P::Num, Value::Number(_)) => true,
            (P::Obj, Value::Object(_)) => true,
            (P::StrArr, Value::Array(a)) => {
                if !a.iter().all(Value::is_string) {
                    errs.push(format!("each value in {k} must be a string"));
                }
                true
            }
            (P::CustomFields, Value::Array(a)) => {
                for (i, item) in a.iter().enumerate() {
                    let Some(o) = item.as_object() else {
                        errs.push(format!("{k}.{i} must be an object"));
                        continue;
                    };
                    for key in o.keys() {
                        if !["id", "key", "field_value"].contains(&key.as_str()) {
                            errs.push(format!("{k}.{i}.property {key} should not exist"));
                        }
                    }
                    if !o
                        .get("id")
                        .or_else(|| o.get("key"))
                        .is_some_and(Value::is_string)
                    {
                        errs.push(format!("{k}.{i}.id or {k}.{i}.key must be a string"));
                    }
                }
                true
            }
            _ => false,
        };
        if !fine {
            let want = match kind {
                P::Str | P::StrN | P::Email => "must be a string",
                P::Bool => "must be a boolean value",
                P::Num => "must be a number conforming to the specified constraints",
                P::StrArr | P::CustomFields => "must be an array",
                P::Obj => "must be an object",
                P::Any => "is invalid",
            };
            errs.push(format!("{k} {want}"));
        }
    }
    for r in required {
        if body.get(*r).is_none_or_null() {
            errs.push(format!("{r} should not be empty"));
        }
    }
    errs
}

trait NullOrMissing {
    fn is_none_or_null(&self) -> bool;
}

impl NullOrMissing for Option<&Value> {
    fn is_none_or_null(&self) -> bool {
        matches!(self, None | Some(Value::Null))
    }
}

/// `dateOfBirth` in one of the documented formats -> `YYYY-MM-DDT00:00:00.000Z`; anything
/// else is silently ignored, as GHL does.
fn parse_dob(s: &str) -> Option<String> {
    let norm: String = s
        .trim()
        .chars()
        .map(|c| if "/._".contains(c) { '-' } else { c })
        .collect();
    let d = NaiveDate::parse_from_str(&norm, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&norm, "%m-%d-%Y"))
        .ok()?;
    Some(iso_ms(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()))
}

fn dedup(tags: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_string();
        if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&t)) {
            out.push(t);
        }
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a create/update/upsert body onto a stored contact: custom fields arrive as
/// `{id|key, field_value}` and are kept as `{id, value}`; `tags` replaces; derived
/// lower-case fields follow.
fn apply_contact(loc: &Location, body: &Map<String, Value>, m: &mut Map<String, Value>) {
    for (k, v) in body {
        match k.as_str() {
            "locationId" | "createNewIfDuplicateAllowed" => {}
            "name" => {
                if !body.contains_key("firstName") && !body.contains_key("lastName") {
                    if let Some(n) = v.as_str() {
                        let (f, l) = n.trim().split_once(' ').unwrap_or((n.trim(), ""));
                        m.insert("firstName".into(), json!(f));
                        m.insert(
                            "lastName".into(),
                            if l.is_empty() {
                                Value::Null
                            } else {
                                json!(l.trim())
                            },
                        );
                    }
                }
            }
            "tags" => {
                m.insert("tags".into(), json!(dedup(strings(Some(v)))));
            }
            "dateOfBirth" => match v {
                Value::Null => {
                    m.insert(k.clone(), Value::Null);
                }
                Value::String(s) => {
                    if let Some(d) = parse_dob(s) {
                        m.insert(k.clone(), json!(d));
                    }
                }
                _ => {}
            },
            "customFields" => {
                let mut current: Vec<Value> = m
                    .get("customFields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in v.as_array().into_iter().flatten() {
                    let key = item
                        .get("id")
                        .or_else(|| item.get("key"))
                        .and_then(Value::as_str);
                    // Unknown ids and keys are dropped without a word, as GHL does.
                    let Some(def) = key.and_then(|k| loc.field_by_id_or_key(k)) else {
                        continue;
                    };
                    let value = item.get("field_value").cloned().unwrap_or(Value::Null);
                    current
                        .retain(|c| c.get("id").and_then(Value::as_str) != Some(def.id.as_str()));
                    if !value.is_null() && value != json!("") {
                        current.push(json!({"id": def.id, "value": value}));
                    }
                }
                m.insert("customFields".into(), Value::Array(current));
            }
            _ => {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let low =
        |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_lowercase);
    let (first, last, email) = (low(m, "firstName"), low(m, "lastName"), low(m, "email"));
    let full = [first.clone(), last.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let opt = |v: Option<String>| v.map_or(Value::Null, Value::String);
    m.insert("firstNameLowerCase".into(), opt(first));
    m.insert("lastNameLowerCase".into(), opt(last));
    m.insert("emailLowerCase".into(), opt(email));
    let full = (!full.is_empty()).then_some(full);
    m.insert("fullNameLowerCase".into(), opt(full.clone()));
    m.insert("contactName".into(), opt(full));
}

fn contact_raw(st: &SandboxState, id: &str) -> Result<u64, ApiError> {
    match st.store.decode(id) {
        Some((_, raw)) if st.store.contact_by_raw(raw).is_some() => Ok(raw),
        _ => Err(contact_not_found()),
    }
}

fn need_location(ctx: &Ctx) -> Result<usize, ApiError> {
    ctx.location.ok_or_else(|| {
        err_422(vec![
            "locationId should not be empty".into(),
            "locationId must be a string".into(),
        ])
    })
}

fn parse_count(
    q: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    let Some(s) = q.get(name) else {
        return Ok(default);
    };
    match s.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 && n.fract() == 0.0 => {
            let n = n as usize;
            match max {
                Some(m) if n > m => Err(err_422(vec![format!(
                    "{name} must not be greater than {m}"
                )])),
                _ => Ok(n),
            }
        }
        _ => Err(err_422(vec![format!(
            "{name} must be a non-negative integer"
        )])),
    }
}

/// Appends `"searchAfter": [sort, id]` to a contact's JSON text.
fn with_search_after(mut text: Vec<u8>, sort: &Value, id: &str) -> Vec<u8> {
    if text.last() == Some(&b'}') {
        text.pop();
        let tail = json!([sort, id]);
        text.extend_from_slice(if text.len() > 1 {
            b",\"searchAfter\":"
        } else {
            b"\"searchAfter\":"
        });
        text.extend(serde_json::to_vec(&tail).unwrap_or_default());
        text.push(b'}');
    }
    text
}

fn hits_page(
    st: &SandboxState,
    hits: &[Hit],
    start: usize,
    limit: usize,
) -> Vec<(SortVal, u64, Vec<u8>)> {
    hits.iter()
        .skip(start)
        .take(limit)
        .filter_map(|h| Some((h.sort.clone(), h.raw, st.store.contact_text(h.raw)?)))
        .collect()
}

/// `{"contacts": [...], <tail>}` assembled from the contacts' JSON text.
fn contacts_answer(contacts: &[Vec<u8>], tail: &[(&str, Value)]) -> Answer {
    let mut body = Vec::with_capacity(contacts.iter().map(Vec::len).sum::<usize>() + 256);
    body.extend_from_slice(b"{\"contacts\":[");
    for (i, c) in contacts.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(c);
    }
    body.push(b']');
    for (k, v) in tail {
        body.extend_from_slice(format!(",\"{k}\":").as_bytes());
        body.extend(serde_json::to_vec(v).unwrap_or_default());
    }
    body.push(b'}');
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `GET /contacts/`: cursor pagination by (startAfter, startAfterId).
pub async fn list_contacts(State(st): St, Extension(ctx): Extension<Ctx>, Query(q): Q) -> Answer {
    let li = need_location(&ctx)?;
    let limit = parse_count(&q, "limit", 20, Some(100))?.max(1);
    let start_after = match q.get("startAfter") {
        None => None,
        Some(s) => Some(s.trim().parse::<f64>().map(|f| f as i64).map_err(|_| {
            err_422(vec![
                "startAfter must be a number conforming to the specified constraints".into(),
            ])
        })?),
    };
    let start_after_id = q.get("startAfterId").filter(|s| !s.is_empty());
    // GHL's quirk: the cursor moves only when both halves are given; startAfter alone
    // answers the first page again.
    let cursor = match (start_after, start_after_id) {
        (Some(t), Some(id)) => Some((
            t,
            IdCodec::sort_key_of(id)
                .ok_or_else(|| err_422(vec!["startAfterId must be a valid id".into()]))?,
        )),
        _ => None,
    };
    let query = q
        .get("query")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let (page, more, total, position): (Vec<PageItem>, bool, u64, usize) = match query.clone() {
        None => {
            let (page, more) = st.store.list_page(li, cursor, 0, limit);
            (
                page,
                more,
                st.store.live_count(li),
                st.store.position(li, cursor),
            )
        }
        Some(text) => {
            let key = format!("list|{text}");
            let hits = blocking(&st, move |st| {
                st.store
                    .hits_by(li, &key, Sort::default(), &|r: &dyn Record| {
                        text_matches(r, &text)
                    })
            })
            .await?;
            let sort = Sort::default();
            let start = cursor.map_or(0, |(d, k)| {
                let c = SortVal::Num(d);
                hits.partition_point(|h| {
                    sort.cmp((&h.sort, h.key), (&c, k)) != std::cmp::Ordering::Greater
                })
            });
            let page: Vec<PageItem> = hits_page(&st, &hits, start, limit)
                .into_iter()
                .map(|(s, raw, c)| (if let SortVal::Num(d) = s { d } else { 0 }, raw, c))
                .collect();
            (page, start + limit < hits.len(), hits.len() as u64, start)
        }
    };
    st.count_served(page.len());
    let last = page.last().map(|(d, raw, _)| (*d, st.store.id_of(*raw)));
    let current = position / limit + 1;
    let loc_id = &st.store.location(li).id;
    let next_url = match (&last, more) {
        (Some((d, id)), true) => {
            let mut url = format!(
                "{}/contacts/?locationId={loc_id}&limit={limit}&startAfter={d}&startAfterId={id}",
                ctx.base_url
            );
            if let Some(text) = q.get("query") {
                url.push_str("&query=");
                url.extend(url::form_urlencoded::byte_serialize(text.as_bytes()));
            }
            json!(url)
        }
        _ => Value::Null,
    };
    let meta = json!({
        "total": total,
        "nextPageUrl": next_url,
        "startAfterId": last.as_ref().map(|l| l.1.clone()),
        "startAfter": last.as_ref().map(|l| l.0),
        "currentPage": current,
        "nextPage": if more { json!(current + 1) } else { Value::Null },
        "prevPage": if current > 1 { json!(current - 1) } else { Value::Null },
    });
    let contacts: Vec<Vec<u8>> = page.into_iter().map(|(_, _, c)| c).collect();
    contacts_answer(&contacts, &[("meta", meta)])
}

/// `POST /contacts/search`.
pub async fn search_contacts(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = Value::Object(body_object(&body)?);
    let req: SearchRequest = parse_search(&body).map_err(err_422)?;
    let li = need_location(&ctx)?;
    let limit = req.page_limit;
    let (contacts, total): (Vec<Vec<u8>>, u64) = if req.is_plain() {
        let (cursor, skip) = match (&req.page, &req.search_after) {
            (Some(p), _) => (None, (*p as usize - 1) * limit),
            (None, Some((SortVal::Num(d), k))) => (Some((*d, *k)), 0),
            _ => (None, 0),
        };
        let (page, _) = st.store.list_page(li, cursor, skip, limit);
        let contacts = page
            .into_iter()
            .map(|(d, raw, c)| with_search_after(c, &json!(d), &st.store.id_of(raw)))
            .collect();
        (contacts, st.store.live_count(li))
    } else {
        let r = req.clone();
        let hits = blocking(&st, move |st| st.store.hits(li, &r)).await?;
        let start = match (&req.page, &req.search_after) {
            (Some(p), _) => (*p as usize - 1) * limit,
            (None, Some((v, k))) => hits.partition_point(|h| {
                req.sort.cmp((&h.sort, h.key), (v, *k)) != std::cmp::Ordering::Greater
            }),
            _ => 0,
        };
        let contacts = hits_page(&st, &hits, start, limit)
            .into_iter()
            .map(|(s, raw, c)| with_search_after(c, &s.to_json(), &st.store.id_of(raw)))
            .collect();
        (contacts, hits.len() as u64)
    };
    st.count_served(contacts.len());
    contacts_answer(&contacts, &[("total", json!(total))])
}

/// `GET /contacts/business/{businessId}`: offset pagination.
pub async fn business_contacts(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Path(business_id): Path<String>,
    Query(q): Q,
) -> Answer {
    let li = need_location(&ctx)?;
    let limit = parse_count(&q, "limit", 25, None)?;
    let skip = parse_count(&q, "skip", 0, None)?;
    let text = q
        .get("query")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let key = format!("business|{business_id}|{text}");
    let hits = blocking(&st, move |st| {
        st.store
            .hits_by(li, &key, Sort::default(), &|r: &dyn Record| {
                matches!(r.field(Field::BusinessId), FieldVal::Str(s) if s == business_id.as_str())
                    && text_matches(r, &text)
            })
    })
    .await?;
    let contacts: Vec<Vec<u8>> = hits_page(&st, &hits, skip, limit)
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    st.count_served(contacts.len());
    contacts_answer(&contacts, &[("count", json!(hits.len()))])
}

pub async fn get_contact(State(st): St, Path(id): Path<String>) -> Answer {
    let c = st.store.contact(&id).ok_or_else(contact_not_found)?;
    ok(StatusCode::OK, json!({"contact": c}))
}

pub async fn create_contact(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let errs = check(&body, &[CONTACT_COMMON, CONTACT_CREATE], &["locationId"]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let li = need_location(&ctx)?;
    let loc = st.store.location(li);
    let c = st
        .store
        .create_contact(li, |m| apply_contact(loc, &body, m));
    ok(StatusCode::CREATED, json!({"contact": c}))
}

pub async fn update_contact(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let raw = contact_raw(&st, &id)?;
    let errs = check(&body, &[CONTACT_COMMON, CONTACT_UPDATE], &[]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let loc = st.store.location((raw >> 32) as usize);
    let c = st
        .store
        .update_contact(raw, |m| apply_contact(loc, &body, m))
        .ok_or_else(contact_not_found)?;
    ok(StatusCode::OK, json!({"succeded": true, "contact": c}))
}

pub async fn upsert_contact(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let errs = check(
        &body,
        &[CONTACT_COMMON, CONTACT_CREATE, CONTACT_UPSERT],
        &["locationId"],
    );
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let li = need_location(&ctx)?;
    let (is_new, c) = blocking(&st, move |st| {
        let loc = st.store.location(li);
        let email = body.get("email").and_then(Value::as_str);
        let phone = body.get("phone").and_then(Value::as_str);
        let found = st.store.find_duplicate(li, email, phone);
        match found.and_then(|raw| {
            st.store
                .update_contact(raw, |m| apply_contact(loc, &body, m))
        }) {
            Some(c) => (false, c),
            None => (
                true,
                st.store
                    .create_contact(li, |m| apply_contact(loc, &body, m)),
            ),
        }
    })
    .await?;
    let trace = super::ids::hashed_id(&[now_ms() as u64, li as u64]);
    ok(
        StatusCode::OK,
        json!({"new": is_new, "contact": c, "traceId": trace}),
    )
}

pub async fn delete_contact(State(st): St, Path(id): Path<String>) -> Answer {
    if st.store.delete_contact(&id) {
        ok(StatusCode::OK, json!({"succeded": true}))
    } else {
        Err(contact_not_found())
    }
}

fn tags_body(bytes: &Bytes) -> Result<Vec<String>, ApiError> {
    let body = body_object(bytes)?;
    let errs = check(&body, &[TAGS_PROPS], &["tags"]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    Ok(dedup(strings(body.get("tags"))))
}

fn contact_tags(c: &Value) -> Vec<String> {
    strings(c.get("tags"))
}

pub async fn add_tags(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &id)?;
    let add = tags_body(&body)?;
    let c = st
        .store
        .update_contact(raw, |m| {
            let now = dedup(strings(m.get("tags")).into_iter().chain(add));
            m.insert("tags".into(), json!(now));
        })
        .ok_or_else(contact_not_found)?;
    ok(StatusCode::CREATED, json!({"tags": contact_tags(&c)}))
}

pub async fn remove_tags(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &id)?;
    let remove = tags_body(&body)?;
    let c = st
        .store
        .update_contact(raw, |m| {
            let mut now = strings(m.get("tags"));
            now.retain(|t| !remove.iter().any(|r| r.eq_ignore_ascii_case(t)));
            m.insert("tags".into(), json!(now));
        })
        .ok_or_else(contact_not_found)?;
    ok(StatusCode::OK, json!({"tags": contact_tags(&c)}))
}

/// `POST /contacts/bulk/tags/update/{type}`: per-contact outcome, never all-or-nothing.
pub async fn bulk_tags(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let mut errs = check(
        &body,
        &[BULK_TAGS_PROPS],
        &["contacts", "tags", "locationId"],
    );
    let add = match kind.as_str() {
        "add" => true,
        "remove" => false,
        other => {
            errs.push(format!(
                "type {other} must be one of the following values: add, remove"
            ));
            true
        }
    };
    let remove_all = body
        .get("removeAllTags")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if remove_all && add {
        errs.push("removeAllTags can only be used with the remove type".into());
    }
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let li = need_location(&ctx)?;
    let tags = dedup(strings(body.get("tags")));
    let mut responses = Vec::new();
    let mut errors = 0u64;
    for cid in strings(body.get("contacts")) {
        let fail = |msg: &str| json!({"contactId": cid, "message": msg, "type": "error"});
        let outcome = match st.store.decode(&cid) {
            None => Err(fail("contact id is not a valid id")),
            Some((other, _)) if other != li => Err(fail("contact does not belong to location")),
            Some((_, raw)) => {
                let mut report = None;
                let updated = st.store.update_contact(raw, |m| {
                    let old = strings(m.get("tags"));
                    let new: Vec<String> = if add {
                        dedup(old.iter().cloned().chain(tags.iter().cloned()))
                    } else if remove_all {
                        Vec::new()
                    } else {
                        old.iter()
                            .filter(|t| !tags.iter().any(|r| r.eq_ignore_ascii_case(t)))
                            .cloned()
                            .collect()
                    };
                    let added: Vec<&String> = new.iter().filter(|t| !old.contains(t)).collect();
                    let removed: Vec<&String> = old.iter().filter(|t| !new.contains(t)).collect();
                    report = Some(
                        json!({"contactId": cid, "message": "Tags updated", "type": "success",
                        "oldTags": old, "tagsAdded": added, "tagsRemoved": removed}),
                    );
                    m.insert("tags".into(), json!(new));
                });
                match (updated, report) {
                    (Some(_), Some(r)) => Ok(r),
                    _ => Err(fail("contact is deleted")),
                }
            }
        };
        match outcome {
            Ok(r) => responses.push(r),
            Err(r) => {
                errors += 1;
                responses.push(r);
            }
        }
    }
    ok(
        StatusCode::CREATED,
        json!({"succeded": errors == 0, "errorCount": errors, "responses": responses}),
    )
}

fn child_path(kind: Child) -> (&'static str, &'static str, &'static str) {
    match kind {
        Child::Tasks => ("tasks", "task", "Task not found"),
        Child::Notes => ("notes", "note", "Note not found"),
    }
}

async fn list_children(st: &SandboxState, id: &str, kind: Child) -> Answer {
    let raw = contact_raw(st, id)?;
    let list = st.store.children(raw, kind).ok_or_else(contact_not_found)?;
    ok(StatusCode::OK, json!({ child_path(kind).0: list }))
}

async fn get_child(st: &SandboxState, id: &str, child: &str, kind: Child) -> Answer {
    let raw = contact_raw(st, id)?;
    let list = st.store.children(raw, kind).ok_or_else(contact_not_found)?;
    let (_, one, missing) = child_path(kind);
    let item = list
        .into_iter()
        .find(|t| t.get("id").and_then(Value::as_str) == Some(child));
    let item = item.ok_or_else(|| err_400(missing))?;
    ok(StatusCode::OK, json!({ one: item }))
}

async fn create_child(st: &SandboxState, id: &str, kind: Child, bytes: &Bytes) -> Answer {
    let raw = contact_raw(st, id)?;
    let body = body_object(bytes)?;
    let errs = match kind {
        Child::Tasks => check(&body, &[TASK_PROPS], &["title", "dueDate", "completed"]),
        Child::Notes => check(&body, &[NOTE_PROPS], &["body"]),
    };
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(st.store.new_child_id()));
    m.extend(body);
    m.insert("contactId".into(), json!(id));
    if kind == Child::Notes {
        m.insert("dateAdded".into(), json!(iso_ms(now_ms())));
    }
    let item = Value::Object(m);
    let stored = item.clone();
    st.store
        .with_children(raw, kind, move |list| list.push(stored))
        .ok_or_else(contact_not_found)?;
    ok(StatusCode::CREATED, json!({ child_path(kind).1: item }))
}

async fn update_child(
    st: &SandboxState,
    id: &str,
    child: &str,
    kind: Child,
    body: Map<String, Value>,
) -> Answer {
    let raw = contact_raw(st, id)?;
    let (_, one, missing) = child_path(kind);
    let updated = st
        .store
        .with_children(raw, kind, |list| {
            let item = list
                .iter_mut()
                .find(|t| t.get("id").and_then(Value::as_str) == Some(child))?;
            if let Some(m) = item.as_object_mut() {
                m.extend(body);
            }
            Some(item.clone())
        })
        .ok_or_else(contact_not_found)?
        .ok_or_else(|| err_400(missing))?;
    ok(StatusCode::OK, json!({ one: updated }))
}

async fn delete_child(st: &SandboxState, id: &str, child: &str, kind: Child) -> Answer {
    let raw = contact_raw(st, id)?;
    let removed = st
        .store
        .with_children(raw, kind, |list| {
            let before = list.len();
            list.retain(|t| t.get("id").and_then(Value::as_str) != Some(child));
            before != list.len()
        })
        .ok_or_else(contact_not_found)?;
    if removed {
        ok(StatusCode::OK, json!({"succeded": true}))
    } else {
        Err(err_400(child_path(kind).2))
    }
}

pub async fn list_tasks(State(st): St, Path(id): Path<String>) -> Answer {
    list_children(&st, &id, Child::Tasks).await
}

pub async fn create_task(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    create_child(&st, &id, Child::Tasks, &body).await
}

pub async fn get_task(State(st): St, Path((id, task)): Path<(String, String)>) -> Answer {
    get_child(&st, &id, &task, Child::Tasks).await
}

pub async fn update_task(
    State(st): St,
    Path((id, task)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let errs = check(&body, &[TASK_PROPS], &[]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    update_child(&st, &id, &task, Child::Tasks, body).await
}

pub async fn complete_task(
    State(st): St,
    Path((id, task)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let errs = check(&body, &[&[("completed", P::Bool)]], &["completed"]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    update_child(&st, &id, &task, Child::Tasks, body).await
}

pub async fn delete_task(State(st): St, Path((id, task)): Path<(String, String)>) -> Answer {
    delete_child(&st, &id, &task, Child::Tasks).await
}

pub async fn list_notes(State(st): St, Path(id): Path<String>) -> Answer {
    list_children(&st, &id, Child::Notes).await
}

pub async fn create_note(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    create_child(&st, &id, Child::Notes, &body).await
}

pub async fn get_note(State(st): St, Path((id, note)): Path<(String, String)>) -> Answer {
    get_child(&st, &id, &note, Child::Notes).await
}

pub async fn update_note(
    State(st): St,
    Path((id, note)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let errs = check(&body, &[NOTE_PROPS], &[]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    update_child(&st, &id, &note, Child::Notes, body).await
}

pub async fn delete_note(State(st): St, Path((id, note)): Path<(String, String)>) -> Answer {
    delete_child(&st, &id, &note, Child::Notes).await
}

pub async fn appointments(State(st): St, Path(id): Path<String>) -> Answer {
    contact_raw(&st, &id)?;
    ok(
        StatusCode::OK,
        json!({"events": st.store.appointments(&id)}),
    )
}

/// `POST /locations/{locationId}/tasks/search`: tasks of many contacts, offset-paged.
pub async fn search_tasks(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let errs = check(&body, &[TASK_SEARCH_PROPS], &[]);
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    let li = need_location(&ctx)?;
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(25) as usize;
    let skip = body.get("skip").and_then(Value::as_u64).unwrap_or(0) as usize;
    let completed = body.get("completed").and_then(Value::as_bool);
    let assigned = strings(body.get("assignedTo"));
    let text = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .unwrap_or_default();
    let business = body
        .get("businessId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let contact_ids: Option<Vec<String>> = body.get("contactId").map(|v| strings(Some(v)));
    let tasks = blocking(&st, move |st| {
        let keep = |t: &Value| {
            completed.is_none_or(|c| t.get("completed").and_then(Value::as_bool) == Some(c))
                && (assigned.is_empty()
                    || t.get("assignedTo")
                        .and_then(Value::as_str)
                        .is_some_and(|a| assigned.iter().any(|x| x == a)))
                && (text.is_empty()
                    || t.get("title")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.to_lowercase().contains(&text))
                    || t.get("body")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.to_lowercase().contains(&text)))
        };
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut visit = |raw: u64| -> bool {
            if let Some(b) = &business {
                let c = st.store.contact_by_raw(raw);
                if c.as_ref().and_then(|c| c.get("businessId")?.as_str()) != Some(b.as_str()) {
                    return true;
                }
            }
            for t in st.store.children(raw, Child::Tasks).unwrap_or_default() {
                if !keep(&t) {
                    continue;
                }
                if skipped < skip {
                    skipped += 1;
                    continue;
                }
                if out.len() == limit {
                    return false;
                }
                out.push(t);
            }
            true
        };
        match contact_ids {
            Some(ids) => {
                for id in ids {
                    if let Some((l, raw)) = st.store.decode(&id) {
                        if l == li && !visit(raw) {
                            break;
                        }
                    }
                }
            }
            None => st.store.for_each_live(li, &mut visit),
        }
        out
    })
    .await?;
    ok(StatusCode::OK, json!({"tasks": tasks}))
}

pub async fn custom_fields(State(st): St, Extension(ctx): Extension<Ctx>, Query(q): Q) -> Answer {
    let li = need_location(&ctx)?;
    let fields = match q.get("model").map(String::as_str) {
        None | Some("contact") | Some("all") => st.store.custom_fields(&st.store.location(li).id),
        Some("opportunity") => Vec::new(),
        Some(other) => {
            return Err(err_422(vec![format!(
                "model {other} must be one of the following values: contact, opportunity, all"
            )]))
        }
    };
    ok(StatusCode::OK, json!({"customFields": fields}))
}

pub async fn businesses(State(st): St, Extension(ctx): Extension<Ctx>, Query(q): Q) -> Answer {
    let li = need_location(&ctx)?;
    let limit = parse_count(&q, "limit", 100, None)?;
    let skip = parse_count(&q, "skip", 0, None)?;
    let list: Vec<Value> = st
        .store
        .businesses(li)
        .into_iter()
        .skip(skip)
        .take(limit)
        .collect();
    ok(StatusCode::OK, json!({"businesses": list}))
}

/// `POST /oauth/token` (form-encoded): only `grant_type=refresh_token` is served.
pub async fn oauth_token(State(st): St, body: Bytes) -> Answer {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut errs = Vec::new();
    for k in ["client_id", "client_secret", "grant_type"] {
        if form.get(k).is_none_or_empty() {
            errs.push(format!("{k} should not be empty"));
        }
    }
    if !errs.is_empty() {
        return Err(err_422(errs));
    }
    if form.get("client_id").map(String::as_str) != Some(OAUTH_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(OAUTH_CLIENT_SECRET)
    {
        return Err(err_401("Invalid client credentials"));
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {}
        Some(g @ ("authorization_code" | "client_credentials")) => {
            return Err(err_400(&format!("grant_type {g} is not available in the sandbox: use refresh_token")))
        }
        Some(g) => {
            return Err(err_422(vec![format!(
                "grant_type {g} must be one of the following values: authorization_code, refresh_token, client_credentials"
            )]))
        }
        None => return Err(err_422(vec!["grant_type should not be empty".into()])),
    }
    let Some(rt) = form.get("refresh_token").filter(|s| !s.is_empty()) else {
        return Err(err_422(vec!["refresh_token should not be empty".into()]));
    };
    let Some(issued) = st.auth.refresh(rt) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            json!({"statusCode": 400, "message": "Invalid grant: refresh token is invalid, expired or already used", "error": "invalid_grant"}),
        ));
    };
    let first = st
        .store
        .location_ids()
        .into_iter()
        .next()
        .unwrap_or_default();
    ok(
        StatusCode::OK,
        json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in.as_secs(),
            "refresh_token": issued.refresh_token,
            "scope": issued.grant.scope_string(),
            "userType": "Location",
            "locationId": first,
            "companyId": super::ids::hashed_id(&[st.seed(), 0xC0C0]),
            "userId": super::ids::hashed_id(&[st.seed(), 0x05E4]),
            "isBulkInstallation": false,
        }),
    )
}

trait EmptyOrMissing {
    fn is_none_or_empty(&self) -> bool;
}

impl EmptyOrMissing for Option<&String> {
    fn is_none_or_empty(&self) -> bool {
        self.is_none_or(|s| s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_validator_style_messages() {
        let body = json!({"locationId": "L", "email": "not-an-email", "tags": ["a", 1], "bogus": true, "dnd": "yes"});
        let errs = check(
            body.as_object().unwrap(),
            &[CONTACT_COMMON, CONTACT_CREATE],
            &["locationId"],
        );
        assert!(
            errs.contains(&"email must be an email".to_string()),
            "{errs:?}"
        );
        assert!(errs.contains(&"each value in tags must be a string".to_string()));
        assert!(errs.contains(&"property bogus should not exist".to_string()));
        assert!(errs.contains(&"dnd must be a boolean value".to_string()));
        let errs = check(
            &Map::new(),
            &[CONTACT_COMMON, CONTACT_CREATE],
            &["locationId"],
        );
        assert_eq!(errs, vec!["locationId should not be empty".to_string()]);
        let update = json!({"companyName": "X"});
        let errs = check(
            update.as_object().unwrap(),
            &[CONTACT_COMMON, CONTACT_UPDATE],
            &[],
        );
        assert_eq!(
            errs,
            vec!["property companyName should not exist".to_string()]
        );
    }

    #[test]
    fn contact_bodies_are_stored_in_wire_shape() {
        let loc = Location::new(1, 0, 10);
        let lead = loc.fields[0].id.clone();
        let body = json!({"name": "Zoë van Dijk", "email": "Z@Example.com", "tags": ["a", "A", "b"],
            "dateOfBirth": "12/31/1990",
            "customFields": [{"id": lead, "field_value": 7}, {"key": "favourite_colour", "field_value": "Red"},
                             {"id": "unknown", "field_value": "x"}]});
        let mut m = Map::new();
        apply_contact(&loc, body.as_object().unwrap(), &mut m);
        assert_eq!(m["firstName"], "Zoë");
        assert_eq!(m["lastName"], "van Dijk");
        assert_eq!(m["emailLowerCase"], "z@example.com");
        assert_eq!(m["tags"], json!(["a", "b"]));
        assert_eq!(m["dateOfBirth"], "1990-12-31T00:00:00.000Z");
        let cf = m["customFields"].as_array().unwrap();
        assert_eq!(cf.len(), 2);
        assert_eq!(cf[0], json!({"id": lead, "value": 7}));
        let mut m2 = Map::new();
        apply_contact(
            &loc,
            json!({"dateOfBirth": "the 5th of May"})
                .as_object()
                .unwrap(),
            &mut m2,
        );
        assert!(
            !m2.contains_key("dateOfBirth"),
            "odd formats are ignored silently"
        );
    }
}
