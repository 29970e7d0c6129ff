//! Route handlers for contacts, their tasks, notes, tags and appointments, location task
//! search, businesses and OAuth: request bodies checked with [`super::validate`] (422 with a
//! list of messages, as GHL's NestJS validation answers), response bodies shaped as the spec's
//! response schemas. A contact, task or note that does not exist (any more) is a 400 "… not
//! found", as GHL answers it, never a 404; the bodies themselves are in [`super::answers`].
//! Custom-field definitions are in [`super::fields`], bulk actions and enrolments in
//! [`super::actions`].
//!
//! Contact writes follow GHL's quirks: `tags` in a create, update or upsert body replaces the
//! contact's tags, stored lower-cased; custom fields are written as `{id | key, field_value}`
//! and read back as `{id, value}`; an upsert matches by the location's duplicate rule (a
//! contact with neither e-mail nor phone is created anew every time), and a create that rule
//! matches is refused, as locations that do not allow duplicates do. Each applied write is
//! counted in the stats by kind, and sends the webhooks GHL would ([`super::webhooks`]):
//! ContactCreate, ContactUpdate (with ContactTagUpdate and ContactDndUpdate when tags or dnd
//! changed), ContactDelete, ContactTagUpdate alone from the tag routes, NoteCreate, NoteUpdate,
//! NoteDelete, TaskCreate, TaskComplete (from `…/completed` with `completed: true`, or an
//! update that completes the task) and TaskDelete. A task update sends nothing else: GHL has
//! no TaskUpdate.
//!
//! Authentication, scopes, location access, limits and faults have already been dealt with by
//! [`super::gate`]; data lives in [`super::store`]. Handlers that may scan a whole location
//! (filtered searches, the first upsert) run on the blocking pool so they never stall the
//! server's event loop.

use super::answers::{contact_not_found, err_400, err_401, err_422, ApiError};
use super::data::iso_ms;
use super::fields::{resolve_custom_fields, Resolved};
use super::gate::Ctx;
use super::hostile::Rewind;
use super::ids::IdCodec;
use super::query::{
    parse_search, text_matches, Field, FieldVal, Record, SearchRequest, Sort, SortVal,
};
use super::stats::Write;
use super::store::{now_ms, Child, DupKey, Hit, PageItem};
use super::validate::{body_object, check, refuse, strings, tag_list, Dto, P};
use super::webhooks::Kind;
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

pub(super) type Answer = Result<Response, ApiError>;
pub(super) type St = State<Arc<SandboxState>>;
type Q = Query<HashMap<String, String>>;

pub(super) fn ok(status: StatusCode, v: Value) -> Answer {
    Ok((status, Json(v)).into_response())
}

/// Runs store work that may scan a whole location off the event loop.
pub(super) async fn blocking<T: Send + 'static>(
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

pub(crate) const CONTACT_COMMON: Dto = &[
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
pub(crate) const CONTACT_CREATE: Dto = &[
    ("locationId", P::Str),
    ("gender", P::Str),
    ("source", P::Str),
    ("companyName", P::StrN),
    ("assignedTo", P::Str),
];
/// UpdateContactDto: no locationId, gender or companyName; source and assignedTo nullable.
pub(crate) const CONTACT_UPDATE: Dto = &[("source", P::StrN), ("assignedTo", P::StrN)];
pub(crate) const CONTACT_UPSERT: Dto = &[("createNewIfDuplicateAllowed", P::Bool)];
pub(crate) const TASK_PROPS: Dto = &[
    ("title", P::Str),
    ("body", P::Str),
    ("dueDate", P::Str),
    ("completed", P::Bool),
    ("assignedTo", P::Str),
];
pub(crate) const NOTE_PROPS: Dto = &[
    ("userId", P::Str),
    ("body", P::Str),
    ("title", P::Str),
    ("color", P::Str),
    ("pinned", P::Bool),
];
pub(crate) const TAGS_PROPS: Dto = &[("tags", P::StrArr)];
pub(crate) const TASK_SEARCH_PROPS: Dto = &[
    ("contactId", P::StrArr),
    ("completed", P::Bool),
    ("assignedTo", P::StrArr),
    ("query", P::Str),
    ("limit", P::Num),
    ("skip", P::Num),
    ("businessId", P::Str),
];

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

/// Writes a create/update/upsert body onto a stored contact: `fields` are its custom fields,
/// already resolved to ids, kept as `{id, value}`; `tags` replaces the contact's tags; the
/// derived lower-case fields follow.
fn apply_contact(
    body: &Map<String, Value>,
    fields: &[(String, Value)],
    m: &mut Map<String, Value>,
) {
    for (k, v) in body {
        match k.as_str() {
            "locationId" | "createNewIfDuplicateAllowed" => {}
            "name" if !body.contains_key("firstName") && !body.contains_key("lastName") => {
                apply_name(v, m)
            }
            "name" => {}
            "tags" => {
                m.insert("tags".into(), json!(tag_list(strings(Some(v)))));
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
            "customFields" => apply_fields(fields, m),
            _ => {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    derive_lower_case(m);
}

/// `name` alone is split into first and last name at the first space.
fn apply_name(v: &Value, m: &mut Map<String, Value>) {
    let Some(n) = v.as_str() else { return };
    let (f, l) = n.trim().split_once(' ').unwrap_or((n.trim(), ""));
    m.insert("firstName".into(), json!(f));
    let last = if l.is_empty() {
        Value::Null
    } else {
        json!(l.trim())
    };
    m.insert("lastName".into(), last);
}

/// Sets each written field's value; an empty or null value clears the field.
fn apply_fields(fields: &[(String, Value)], m: &mut Map<String, Value>) {
    let mut current: Vec<Value> = m
        .get("customFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (id, value) in fields {
        current.retain(|c| c.get("id").and_then(Value::as_str) != Some(id.as_str()));
        if !value.is_null() && *value != json!("") {
            current.push(json!({"id": id, "value": value}));
        }
    }
    m.insert("customFields".into(), Value::Array(current));
}

fn derive_lower_case(m: &mut Map<String, Value>) {
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

pub(super) fn contact_raw(st: &SandboxState, id: &str) -> Result<u64, ApiError> {
    match st.store.decode(id) {
        Some((_, raw)) if st.store.contact_by_raw(raw).is_some() => Ok(raw),
        _ => Err(contact_not_found()),
    }
}

pub(super) fn need_location(ctx: &Ctx) -> Result<usize, ApiError> {
    ctx.location.ok_or_else(|| {
        err_422(vec![
            "locationId should not be empty".into(),
            "locationId must be a string".into(),
        ])
    })
}

pub(super) fn parse_count(
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

/// How many records a hostile listing steps back before its cursor (0: none armed).
fn rewound(rewind: &Option<Extension<Rewind>>, limit: usize) -> usize {
    rewind.as_ref().map_or(0, |Extension(r)| r.records(limit))
}

/// `GET /contacts/`: cursor pagination by (startAfter, startAfterId).
pub async fn list_contacts(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    rewind: Option<Extension<Rewind>>,
    Query(q): Q,
) -> Answer {
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
            let position = st.store.position(li, cursor);
            let (page, more) = match rewound(&rewind, limit) {
                0 => st.store.list_page(li, cursor, 0, limit),
                // Hostile: start before the cursor (deleted contacts count in `position`,
                // so the step back is approximate where there are any).
                back => st
                    .store
                    .list_page(li, None, position.saturating_sub(back), limit),
            };
            (page, more, st.store.live_count(li), position)
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
            let start = start.saturating_sub(rewound(&rewind, limit));
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
pub async fn search_contacts(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    rewind: Option<Extension<Rewind>>,
    body: Bytes,
) -> Answer {
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
        let (cursor, skip) = match rewound(&rewind, limit) {
            0 => (cursor, skip),
            back => (
                None,
                (st.store.position(li, cursor) + skip).saturating_sub(back),
            ),
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
        let start = start.saturating_sub(rewound(&rewind, limit));
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
    rewind: Option<Extension<Rewind>>,
    Query(q): Q,
) -> Answer {
    let li = need_location(&ctx)?;
    let limit = parse_count(&q, "limit", 25, None)?;
    let skip = parse_count(&q, "skip", 0, None)?.saturating_sub(rewound(&rewind, limit));
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

/// `POST /contacts/`. Sandbox locations do not allow duplicates: a contact the duplicate rule
/// finds is a 400 naming it (GHL refuses such creates, highlevel-api-docs#64). A custom field
/// the location lacks gets a 422 naming it, but only after the contact has been created
/// without it: GHL has been seen to answer 422 and create the contact all the same (same
/// issue), which is why clients should prefer upsert.
pub async fn create_contact(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    refuse(check(
        &body,
        &[CONTACT_COMMON, CONTACT_CREATE],
        &["locationId"],
    ))?;
    let li = need_location(&ctx)?;
    refuse_duplicate(&st, li, &body).await?;
    let Resolved { fields, unknown } = resolve_custom_fields(&st, li, &body);
    let c = st
        .store
        .create_contact(li, |m| apply_contact(&body, &fields, m));
    st.count_write(Write::ContactCreate);
    st.emit_contact(Kind::ContactCreate, &c);
    refuse(unknown)?;
    ok(StatusCode::CREATED, json!({"contact": c}))
}

/// A 400 naming the contact a create would duplicate, in GHL's words.
async fn refuse_duplicate(
    st: &Arc<SandboxState>,
    li: usize,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (email, phone) = (text("email"), text("phone"));
    let found = blocking(st, move |st| {
        let (raw, key) = st
            .store
            .find_duplicate(li, email.as_deref(), phone.as_deref())?;
        Some((st.store.contact_by_raw(raw)?, key))
    })
    .await?;
    let Some((c, key)) = found else {
        return Ok(());
    };
    Err(ApiError(
        StatusCode::BAD_REQUEST,
        json!({"statusCode": 400, "message": "This location does not allow duplicated contacts.",
            "meta": {"contactName": c.get("contactName"), "contactId": c["id"],
                     "matchingField": key.field()}}),
    ))
}

/// `PUT /contacts/{contactId}`: a custom field the location lacks is a 422 and nothing is
/// written.
pub async fn update_contact(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let raw = contact_raw(&st, &id)?;
    refuse(check(&body, &[CONTACT_COMMON, CONTACT_UPDATE], &[]))?;
    let fields = resolve_custom_fields(&st, (raw >> 32) as usize, &body).known()?;
    let (old, c) = st
        .store
        .change_contact(raw, |m| apply_contact(&body, &fields, m))
        .ok_or_else(contact_not_found)?;
    st.count_write(Write::ContactUpdate);
    st.emit_contact_change(&old, &c, true);
    ok(StatusCode::OK, json!({"succeded": true, "contact": c}))
}

/// `POST /_sandbox/contacts/{contactId}` (no token): changes a contact as `PUT
/// /contacts/{contactId}` would, with the same checks, and sends the same webhooks, so a demo
/// can make a change a listener hears. Not counted as an API write. 404 for an unknown or
/// deleted contact.
pub async fn sandbox_edit_contact(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let Some((_, raw)) = st.store.decode(&id) else {
        return Err(super::answers::err_404(&format!("no contact {id}")));
    };
    refuse(check(&body, &[CONTACT_COMMON, CONTACT_UPDATE], &[]))?;
    let fields = resolve_custom_fields(&st, (raw >> 32) as usize, &body).known()?;
    let (old, c) = st
        .store
        .change_contact(raw, |m| apply_contact(&body, &fields, m))
        .ok_or_else(|| super::answers::err_404(&format!("no contact {id}")))?;
    st.emit_contact_change(&old, &c, true);
    ok(StatusCode::OK, json!({"contact": c}))
}

/// `POST /contacts/upsert`: updates the contact the location's duplicate rule finds (see
/// [`upsert_target`]), else creates one; a body with neither e-mail nor phone always creates.
/// `createNewIfDuplicateAllowed` is accepted and ignored: sandbox locations do not allow
/// duplicates.
pub async fn upsert_contact(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let mut body = body_object(&body)?;
    let dto = [CONTACT_COMMON, CONTACT_CREATE, CONTACT_UPSERT];
    refuse(check(&body, &dto, &["locationId"]))?;
    let li = need_location(&ctx)?;
    let fields = resolve_custom_fields(&st, li, &body).known()?;
    let (old, c) = blocking(&st, move |st| {
        let updated = upsert_target(st, li, &mut body).and_then(|raw| {
            st.store
                .change_contact(raw, |m| apply_contact(&body, &fields, m))
        });
        match updated {
            Some((old, c)) => (Some(old), c),
            None => (
                None,
                st.store
                    .create_contact(li, |m| apply_contact(&body, &fields, m)),
            ),
        }
    })
    .await?;
    st.count_write(Write::ContactUpsert);
    match &old {
        Some(old) => st.emit_contact_change(old, &c, true),
        None => st.emit_contact(Kind::ContactCreate, &c),
    }
    let is_new = old.is_none();
    let trace = super::ids::hashed_id(&[now_ms() as u64, li as u64]);
    ok(
        StatusCode::OK,
        json!({"new": is_new, "contact": c, "traceId": trace}),
    )
}

/// The contact an upsert updates, by the location's duplicate rule, with the body trimmed
/// as GHL trims it: when one field matched and the other belongs to a different contact, the
/// other is left out rather than duplicated (highlevel-api-docs#37); `gender` is dropped, as
/// GHL silently ignores it on an existing contact (highlevel-api-docs#313).
fn upsert_target(st: &SandboxState, li: usize, body: &mut Map<String, Value>) -> Option<u64> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (email, phone) = (text("email"), text("phone"));
    let (raw, _) = st
        .store
        .find_duplicate(li, email.as_deref(), phone.as_deref())?;
    for (key, value) in [(DupKey::Email, email), (DupKey::Phone, phone)] {
        let owner = value.and_then(|v| st.store.find_by(li, key, &v));
        if owner.is_some_and(|o| o != raw) {
            body.remove(key.field());
        }
    }
    body.remove("gender");
    Some(raw)
}

/// `GET /contacts/search/duplicate?locationId=&email=&number=`: the contact an upsert with
/// this e-mail and phone would update (same rule, same matching), or `{"contact": null}`.
/// Neither parameter is GHL's 400 "Pass at least one of number, email query parameter".
pub async fn duplicate_contact(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Query(q): Q,
) -> Answer {
    let li = need_location(&ctx)?;
    let given = |k: &str| q.get(k).is_some_and(|v| !v.trim().is_empty());
    if !given("email") && !given("number") {
        return Err(err_400(
            "Pass at least one of number, email query parameter",
        ));
    }
    let found = blocking(&st, move |st| {
        let email = q.get("email").map(String::as_str);
        let number = q.get("number").map(String::as_str);
        let (raw, _) = st.store.find_duplicate(li, email, number)?;
        st.store.contact_by_raw(raw)
    })
    .await?;
    ok(StatusCode::OK, json!({"contact": found}))
}

pub async fn delete_contact(State(st): St, Path(id): Path<String>) -> Answer {
    let old = st.store.remove_contact(&id).ok_or_else(contact_not_found)?;
    st.count_write(Write::ContactDelete);
    st.emit_contact(Kind::ContactDelete, &old);
    ok(StatusCode::OK, json!({"succeded": true}))
}

fn tags_body(bytes: &Bytes) -> Result<Vec<String>, ApiError> {
    let body = body_object(bytes)?;
    refuse(check(&body, &[TAGS_PROPS], &["tags"]))?;
    Ok(tag_list(strings(body.get("tags"))))
}

fn contact_tags(c: &Value) -> Vec<String> {
    strings(c.get("tags"))
}

/// `POST /contacts/{contactId}/tags`: adds, lower-cased, keeping the tags it has.
pub async fn add_tags(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &id)?;
    let add = tags_body(&body)?;
    let (old, c) = st
        .store
        .change_contact(raw, |m| {
            let now = tag_list(strings(m.get("tags")).into_iter().chain(add));
            m.insert("tags".into(), json!(now));
        })
        .ok_or_else(contact_not_found)?;
    st.count_write(Write::TagsAdd);
    st.emit_contact_change(&old, &c, false);
    ok(StatusCode::CREATED, json!({"tags": contact_tags(&c)}))
}

/// `DELETE /contacts/{contactId}/tags`: removes, comparing case-insensitively.
pub async fn remove_tags(State(st): St, Path(id): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &id)?;
    let remove = tags_body(&body)?;
    let (old, c) = st
        .store
        .change_contact(raw, |m| {
            let mut now = strings(m.get("tags"));
            now.retain(|t| !remove.contains(&t.to_lowercase()));
            m.insert("tags".into(), json!(now));
        })
        .ok_or_else(contact_not_found)?;
    st.count_write(Write::TagsRemove);
    st.emit_contact_change(&old, &c, false);
    ok(StatusCode::OK, json!({"tags": contact_tags(&c)}))
}

fn child_path(kind: Child) -> (&'static str, &'static str, &'static str) {
    match kind {
        Child::Tasks => ("tasks", "task", "Task not found"),
        Child::Notes => ("notes", "note", "Note not found"),
    }
}

/// The write kinds of a child: create, update, delete.
fn child_writes(kind: Child) -> (Write, Write, Write) {
    match kind {
        Child::Tasks => (Write::TaskCreate, Write::TaskUpdate, Write::TaskDelete),
        Child::Notes => (Write::NoteCreate, Write::NoteUpdate, Write::NoteDelete),
    }
}

/// The webhooks of a child's create and delete.
fn child_events(kind: Child) -> (Kind, Kind) {
    match kind {
        Child::Tasks => (Kind::TaskCreate, Kind::TaskDelete),
        Child::Notes => (Kind::NoteCreate, Kind::NoteDelete),
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
    refuse(match kind {
        Child::Tasks => check(&body, &[TASK_PROPS], &["title", "dueDate", "completed"]),
        Child::Notes => check(&body, &[NOTE_PROPS], &["body"]),
    })?;
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
    st.count_write(child_writes(kind).0);
    // A stored task has no dateAdded; the webhook of its creation carries one, as GHL's does.
    let mut event = item.clone();
    if let Some(m) = event.as_object_mut() {
        m.entry("dateAdded")
            .or_insert_with(|| json!(iso_ms(now_ms())));
    }
    st.emit(child_events(kind).0, raw, &event);
    ok(StatusCode::CREATED, json!({ child_path(kind).1: item }))
}

/// Updates a child; `event` names the webhook, if any, of its (before, after).
async fn update_child(
    st: &SandboxState,
    (id, child): (&str, &str),
    kind: Child,
    write: Write,
    body: Map<String, Value>,
    event: impl FnOnce(&Value, &Value) -> Option<Kind>,
) -> Answer {
    let raw = contact_raw(st, id)?;
    let (_, one, missing) = child_path(kind);
    let (before, updated) = st
        .store
        .with_children(raw, kind, |list| {
            let item = list
                .iter_mut()
                .find(|t| t.get("id").and_then(Value::as_str) == Some(child))?;
            let before = item.clone();
            if let Some(m) = item.as_object_mut() {
                m.extend(body);
            }
            Some((before, item.clone()))
        })
        .ok_or_else(contact_not_found)?
        .ok_or_else(|| err_400(missing))?;
    st.count_write(write);
    if let Some(k) = event(&before, &updated) {
        st.emit(k, raw, &updated);
    }
    ok(StatusCode::OK, json!({ one: updated }))
}

fn completed(task: &Value) -> bool {
    task.get("completed").and_then(Value::as_bool) == Some(true)
}

async fn delete_child(st: &SandboxState, id: &str, child: &str, kind: Child) -> Answer {
    let raw = contact_raw(st, id)?;
    let removed = st
        .store
        .with_children(raw, kind, |list| {
            let at = list
                .iter()
                .position(|t| t.get("id").and_then(Value::as_str) == Some(child))?;
            Some(list.remove(at))
        })
        .ok_or_else(contact_not_found)?;
    let Some(removed) = removed else {
        return Err(err_400(child_path(kind).2));
    };
    st.count_write(child_writes(kind).2);
    st.emit(child_events(kind).1, raw, &removed);
    ok(StatusCode::OK, json!({"succeded": true}))
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
    refuse(check(&body, &[TASK_PROPS], &[]))?;
    // An update that completes the task is a completion, to GHL as to its webhooks.
    let event = |before: &Value, after: &Value| {
        (!completed(before) && completed(after)).then_some(Kind::TaskComplete)
    };
    update_child(
        &st,
        (&id, &task),
        Child::Tasks,
        Write::TaskUpdate,
        body,
        event,
    )
    .await
}

pub async fn complete_task(
    State(st): St,
    Path((id, task)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    refuse(check(&body, &[super::tables::COMPLETED], &["completed"]))?;
    let event = |_: &Value, after: &Value| completed(after).then_some(Kind::TaskComplete);
    update_child(
        &st,
        (&id, &task),
        Child::Tasks,
        Write::TaskComplete,
        body,
        event,
    )
    .await
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
    refuse(check(&body, &[NOTE_PROPS], &[]))?;
    let event = |_: &Value, _: &Value| Some(Kind::NoteUpdate);
    update_child(
        &st,
        (&id, &note),
        Child::Notes,
        Write::NoteUpdate,
        body,
        event,
    )
    .await
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
    refuse(check(&body, &[TASK_SEARCH_PROPS], &[]))?;
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
    let mut answer = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in.as_secs(),
        "refresh_token": issued.refresh_token,
        "scope": issued.grant.scope_string(),
        "userType": "Location",
        "companyId": st.auth.company_id(),
        "userId": super::ids::hashed_id(&[st.seed(), 0x05E4]),
        "isBulkInstallation": false,
    });
    // An agency (company) token names no location; a location token names its own.
    if issued.grant.company.is_some() {
        answer["userType"] = json!("Company");
        answer["isBulkInstallation"] = json!(true);
    } else {
        let first = st.store.location_ids().into_iter().next();
        answer["locationId"] = json!(first.unwrap_or_default());
    }
    ok(StatusCode::OK, answer)
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
    fn contact_dtos_follow_the_spec() {
        let update = json!({"companyName": "X", "source": null});
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
        let body = json!({"name": "Zoë van Dijk", "email": "Z@Example.com", "tags": ["a", "A", "VIP"],
            "dateOfBirth": "12/31/1990", "customFields": [{"id": "ignored", "field_value": 1}]});
        let fields = vec![("F1".to_string(), json!(7)), ("F2".to_string(), json!(""))];
        let mut m = Map::new();
        m.insert(
            "customFields".into(),
            json!([{"id": "F2", "value": "old"}, {"id": "F3", "value": 1}]),
        );
        apply_contact(body.as_object().unwrap(), &fields, &mut m);
        assert_eq!(m["firstName"], "Zoë");
        assert_eq!(m["lastName"], "van Dijk");
        assert_eq!(m["emailLowerCase"], "z@example.com");
        assert_eq!(m["tags"], json!(["a", "vip"]));
        assert_eq!(m["dateOfBirth"], "1990-12-31T00:00:00.000Z");
        assert_eq!(
            m["customFields"],
            json!([{"id": "F3", "value": 1}, {"id": "F1", "value": 7}]),
            "written fields replace, empty ones clear, others stay"
        );
        let mut m2 = Map::new();
        let odd = json!({"dateOfBirth": "the 5th of May"});
        apply_contact(odd.as_object().unwrap(), &[], &mut m2);
        assert!(
            !m2.contains_key("dateOfBirth"),
            "odd formats are ignored silently"
        );
    }
}
