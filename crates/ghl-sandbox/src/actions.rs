//! Bulk actions and enrolments, for `ghl-etl tag` and `ghl-etl bulk`: tags on many contacts
//! (`POST /contacts/bulk/tags/update/{add|remove}`), the business of many contacts
//! (`POST /contacts/bulk/business`), a contact's workflows, campaigns and followers.
//!
//! Bulk requests answer per contact and never all-or-nothing, and refuse more than the
//! sandbox's batch limit with class-validator's 422 ("contacts must contain no more than 100
//! elements"): GHL does not document its limit, so the sandbox makes one up that a client's
//! batch size can be tested against. Workflows and campaigns are seeded per location (see
//! [`super::catalog`]); an id the contact's location lacks is a 400 "Workflow not found" /
//! "Campaign not found", in the shape of GHL's "Contact not found". Enrolling twice or leaving
//! something the contact is not in succeeds. Followers must be users of the location.
//! Validation helpers are [`super::validate`]'s; routing and faults are [`super::gate`]'s.
//!
//! Webhooks: a bulk tag change sends ContactTagUpdate for each contact whose tags changed, a
//! bulk business change ContactUpdate for each contact whose business changed; enrolments and
//! followers send none (GHL's contact payload has neither).

use super::answers::{contact_not_found, err_400, ApiError};
use super::catalog::Program;
use super::gate::Ctx;
use super::handlers::{contact_raw, need_location, ok, Answer, St};
use super::stats::Write;
use super::validate::{body_object, check, refuse, strings, tag_list, too_many, Dto, P};
use super::webhooks::Kind;
use super::SandboxState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use serde_json::{json, Map, Value};

pub(crate) const BULK_TAGS: Dto = &[
    ("contacts", P::StrArr),
    ("tags", P::StrArr),
    ("locationId", P::Str),
    ("removeAllTags", P::Bool),
];
pub(crate) const BULK_BUSINESS: Dto = &[
    ("locationId", P::Str),
    ("ids", P::StrArr),
    ("businessId", P::StrN),
];
pub(crate) const WORKFLOW: Dto = &[("eventStartTime", P::Str)];
/// `AddContactToCampaignDto` has no properties.
pub(crate) const CAMPAIGN: Dto = &[];
pub(crate) const FOLLOWERS: Dto = &[("followers", P::StrArr)];

/// The per-contact error entry of a bulk answer.
fn failed(cid: &str, msg: &str) -> Value {
    json!({"contactId": cid, "message": msg, "type": "error"})
}

/// `POST /contacts/bulk/tags/update/{type}`: tags compared case-insensitively and stored
/// lower-cased; each contact's entry in `responses`, errors counted in `errorCount`, and
/// `succeded` (GHL's spelling) true only when none failed.
pub async fn bulk_tags(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let (add, remove_all) = check_bulk_tags(&st, &body, &kind)?;
    let li = need_location(&ctx)?;
    let tags = tag_list(strings(body.get("tags")));
    let write = if add {
        Write::BulkTagsAdd
    } else {
        Write::BulkTagsRemove
    };
    let mut responses = Vec::new();
    let mut errors = 0u64;
    for cid in strings(body.get("contacts")) {
        let entry = match in_location(&st, li, &cid) {
            Err(msg) => Err(failed(&cid, msg)),
            Ok(raw) => retag(&st, raw, &cid, |old| match (add, remove_all) {
                (true, _) => tag_list(old.iter().chain(&tags).cloned()),
                (false, true) => Vec::new(),
                (false, false) => old
                    .iter()
                    .filter(|t| !tags.contains(&t.to_lowercase()))
                    .cloned()
                    .collect(),
            }),
        };
        match entry {
            Ok(r) => {
                st.count_write(write);
                responses.push(r);
            }
            Err(r) => {
                errors += 1;
                responses.push(r);
            }
        }
    }
    let answer = json!({"succeded": errors == 0, "errorCount": errors, "responses": responses});
    ok(StatusCode::CREATED, answer)
}

/// The 422s of a bulk tags request; `(add, removeAllTags)` when it is fine.
fn check_bulk_tags(
    st: &SandboxState,
    body: &Map<String, Value>,
    kind: &str,
) -> Result<(bool, bool), ApiError> {
    let mut errs = check(body, &[BULK_TAGS], &["contacts", "tags", "locationId"]);
    let count = body.get("contacts").and_then(Value::as_array).map(Vec::len);
    errs.extend(too_many("contacts", count.unwrap_or(0), st.bulk_limit()));
    let add = match kind {
        "add" => true,
        "remove" => false,
        other => {
            errs.push(format!(
                "type {other} must be one of the following values: add, remove"
            ));
            true
        }
    };
    let remove_all = body.get("removeAllTags").and_then(Value::as_bool) == Some(true);
    if remove_all && add {
        errs.push("removeAllTags can only be used with the remove type".into());
    }
    refuse(errs).map(|()| (add, remove_all))
}

/// The raw id of a contact of location `li`, or the bulk answer's message for it.
fn in_location(st: &SandboxState, li: usize, cid: &str) -> Result<u64, &'static str> {
    match st.store.decode(cid) {
        None => Err("contact id is not a valid firebase id"),
        Some((other, _)) if other != li => Err("contact does not belong to location"),
        Some((_, raw)) => Ok(raw),
    }
}

/// Sets a contact's tags to `new(old)`; the success entry of a bulk answer, or its error.
fn retag(
    st: &SandboxState,
    raw: u64,
    cid: &str,
    new: impl FnOnce(&[String]) -> Vec<String>,
) -> Result<Value, Value> {
    let mut report = None;
    let changed = st.store.change_contact(raw, |m| {
        let old = strings(m.get("tags"));
        let now = new(&old);
        let added: Vec<&String> = now.iter().filter(|t| !old.contains(t)).collect();
        let removed: Vec<&String> = old.iter().filter(|t| !now.contains(t)).collect();
        report = Some(
            json!({"contactId": cid, "message": "Tags updated", "type": "success",
            "oldTags": old, "tagsAdded": added, "tagsRemoved": removed}),
        );
        m.insert("tags".into(), json!(now));
    });
    if let Some((old, new)) = changed {
        st.emit_contact_change(&old, &new, false);
    }
    report.ok_or_else(|| failed(cid, "contact is deleted"))
}

/// `POST /contacts/bulk/business`: sets (or, with `businessId: null`, clears) the business of
/// many contacts; 200 `{success, ids}` listing the contacts changed. Ids that are unknown,
/// deleted or of another location are left out; an unknown business is a 400.
pub async fn bulk_business(State(st): St, Extension(ctx): Extension<Ctx>, body: Bytes) -> Answer {
    let body = body_object(&body)?;
    let mut errs = check(&body, &[BULK_BUSINESS], &["locationId", "ids"]);
    if !body.contains_key("businessId") {
        errs.push("businessId must be a string".into());
    }
    let ids = strings(body.get("ids"));
    errs.extend(too_many("ids", ids.len(), st.bulk_limit()));
    refuse(errs)?;
    let li = need_location(&ctx)?;
    let business = body.get("businessId").cloned().unwrap_or(Value::Null);
    if let Some(b) = business.as_str() {
        if !st
            .store
            .business_ids(&st.store.location(li).id)
            .iter()
            .any(|x| x == b)
        {
            return Err(err_400("Business not found"));
        }
    }
    let mut done = Vec::new();
    for id in ids {
        let Ok(raw) = in_location(&st, li, &id) else {
            continue;
        };
        let set = |m: &mut Map<String, Value>| {
            m.insert("businessId".into(), business.clone());
        };
        if let Some((old, new)) = st.store.change_contact(raw, set) {
            st.count_write(Write::BulkBusiness);
            if old.get("businessId") != new.get("businessId") {
                st.emit_contact(Kind::ContactUpdate, &new);
            }
            done.push(id);
        }
    }
    ok(StatusCode::OK, json!({"success": true, "ids": done}))
}

/// The contact's raw id and the checked body of an enrolment request.
fn enrolment(st: &SandboxState, cid: &str, body: &Bytes, dto: Dto) -> Result<u64, ApiError> {
    let raw = contact_raw(st, cid)?;
    refuse(check(&body_object(body)?, &[dto], &[]))?;
    Ok(raw)
}

/// Checks that the program exists in the contact's location.
fn program(st: &SandboxState, raw: u64, p: Program, id: &str) -> Result<(), ApiError> {
    if st.store.catalog().has_program((raw >> 32) as usize, p, id) {
        return Ok(());
    }
    Err(err_400(match p {
        Program::Workflow => "Workflow not found",
        Program::Campaign => "Campaign not found",
    }))
}

/// `POST /contacts/{contactId}/workflow/{workflowId}`: 200 `{succeded: true}`.
pub async fn add_to_workflow(
    State(st): St,
    Path((cid, wid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let raw = enrolment(&st, &cid, &body, WORKFLOW)?;
    program(&st, raw, Program::Workflow, &wid)?;
    st.store.catalog().enrol(Program::Workflow, raw, &wid);
    st.count_write(Write::WorkflowAdd);
    ok(StatusCode::OK, json!({"succeded": true}))
}

/// `DELETE /contacts/{contactId}/workflow/{workflowId}`: 200 `{succeded: true}`.
pub async fn remove_from_workflow(
    State(st): St,
    Path((cid, wid)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let raw = enrolment(&st, &cid, &body, WORKFLOW)?;
    program(&st, raw, Program::Workflow, &wid)?;
    st.store.catalog().leave(Program::Workflow, raw, Some(&wid));
    st.count_write(Write::WorkflowRemove);
    ok(StatusCode::OK, json!({"succeded": true}))
}

/// `POST /contacts/{contactId}/campaigns/{campaignId}`: 201 `{succeded: true}`.
pub async fn add_to_campaign(
    State(st): St,
    Path((cid, camp)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let raw = enrolment(&st, &cid, &body, CAMPAIGN)?;
    program(&st, raw, Program::Campaign, &camp)?;
    st.store.catalog().enrol(Program::Campaign, raw, &camp);
    st.count_write(Write::CampaignAdd);
    ok(StatusCode::CREATED, json!({"succeded": true}))
}

/// `DELETE /contacts/{contactId}/campaigns/{campaignId}`: 200 `{succeded: true}`.
pub async fn remove_from_campaign(
    State(st): St,
    Path((cid, camp)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let raw = enrolment(&st, &cid, &body, CAMPAIGN)?;
    program(&st, raw, Program::Campaign, &camp)?;
    st.store
        .catalog()
        .leave(Program::Campaign, raw, Some(&camp));
    st.count_write(Write::CampaignRemove);
    ok(StatusCode::OK, json!({"succeded": true}))
}

/// `DELETE /contacts/{contactId}/campaigns/removeAll`: 200 `{succeded: true}`.
pub async fn remove_from_all_campaigns(
    State(st): St,
    Path(cid): Path<String>,
    body: Bytes,
) -> Answer {
    let raw = enrolment(&st, &cid, &body, CAMPAIGN)?;
    st.store.catalog().leave(Program::Campaign, raw, None);
    st.count_write(Write::CampaignRemoveAll);
    ok(StatusCode::OK, json!({"succeded": true}))
}

/// The followers named by a followers body, all users of the contact's location.
fn followers_body(st: &SandboxState, raw: u64, body: &Bytes) -> Result<Vec<String>, ApiError> {
    let body = body_object(body)?;
    refuse(check(&body, &[FOLLOWERS], &["followers"]))?;
    let users = &st.store.location((raw >> 32) as usize).users;
    let named = strings(body.get("followers"));
    let unknown: Vec<&str> = named
        .iter()
        .filter(|f| !users.contains(f))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(err_400(&format!("User not found: {}", unknown.join(", "))));
    }
    Ok(named)
}

/// Sets a contact's followers to `new(old)`; returns (all, changed).
fn refollow(
    st: &SandboxState,
    raw: u64,
    new: impl FnOnce(&[String]) -> Vec<String>,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let mut out = None;
    st.store
        .update_contact(raw, |m| {
            let old = strings(m.get("followers"));
            let now = new(&old);
            let changed = old
                .iter()
                .chain(&now)
                .filter(|f| old.contains(f) != now.contains(f))
                .cloned()
                .collect();
            m.insert("followers".into(), json!(now));
            out = Some((now, changed));
        })
        .ok_or_else(contact_not_found)?;
    out.ok_or_else(contact_not_found)
}

/// `POST /contacts/{contactId}/followers`: 201 `{followers, followersAdded}`.
pub async fn add_followers(State(st): St, Path(cid): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &cid)?;
    let add = followers_body(&st, raw, &body)?;
    let (all, added) = refollow(&st, raw, |old| {
        let mut now = old.to_vec();
        for f in add {
            if !now.contains(&f) {
                now.push(f);
            }
        }
        now
    })?;
    st.count_write(Write::FollowersAdd);
    let answer = json!({"followers": all, "followersAdded": added});
    ok(StatusCode::CREATED, answer)
}

/// `DELETE /contacts/{contactId}/followers`: 200 `{followers, followersRemoved}`.
pub async fn remove_followers(State(st): St, Path(cid): Path<String>, body: Bytes) -> Answer {
    let raw = contact_raw(&st, &cid)?;
    let remove = followers_body(&st, raw, &body)?;
    let (all, removed) = refollow(&st, raw, |old| {
        old.iter()
            .filter(|f| !remove.contains(f))
            .cloned()
            .collect()
    })?;
    st.count_write(Write::FollowersRemove);
    let answer = json!({"followers": all, "followersRemoved": removed});
    ok(StatusCode::OK, answer)
}
