//! One contact row: upsert, create, update or delete, and the source → target id it leaves.
//!
//! Upsert is idempotent when the contact has an email or a phone (the location's duplicate
//! rule matches it again), provided two upserts that could match the same contact do not run
//! at once: they take turns by email and phone key. A contact with neither is created anew by every upsert, so it is
//! created exactly once instead: the intent is recorded before the request, and a row found
//! with an unknown outcome (a lost answer, a kill) is looked for in the target before it is
//! sent again — by `--external-id` (the source id in a custom field, searched before every
//! create), else by its name and company among the newest contacts of that name that no
//! other row of the load has settled with. Rows with the same name and company take turns.

use serde_json::Value as Json;
use sha2::Digest;

use super::body::Body;
use super::done::RowDone;
use super::plan::{Mode, TagsMode};
use super::Load;
use crate::api::model::Contact;
use crate::exit::Result;
use crate::job::once::{self, exactly_once, Write};
use crate::job::rows::{row_failure as api_failure, Row};
use crate::state::{RowRecord, RowStatus};

pub async fn load_contact(load: &Load, cx: &Row, mut body: Body) -> Result<RowDone> {
    let key = body
        .keys
        .id
        .clone()
        .or_else(|| body.email().map(str::to_string))
        .or_else(|| body.phone().map(str::to_string))
        .unwrap_or_default();
    let sep = load.mapping("contacts").list_separator().to_string();
    let clears = load.plan.empty == super::plan::EmptyCells::Clear;
    let custom = load.fields.pairs(&body.custom, &body.carried, &sep, clears);
    if !custom.errors.is_empty() {
        return Ok(RowDone::new(cx.failed(&key, custom.errors.join("; "))));
    }
    let mut pairs = custom.pairs;
    if let (Some(x), Some(id)) = (&load.plan.external_id, &body.keys.id) {
        if let Some(field) = load.fields.id(x) {
            pairs.push((field.to_string(), Json::String(id.clone())));
        }
    }
    let with_tags = load.plan.tags == TagsMode::Replace;
    let request = body.request(&pairs, with_tags);
    let sent = request.clone();
    let tags = body.tags.take().filter(|t| !t.is_empty() && !with_tags);
    if load.plan.dry_run {
        if load.plan.mode != Mode::Delete {
            load.would_write(body.email(), body.phone());
        }
        let keyless = body.email().is_none() && body.phone().is_none();
        if keyless && load.plan.mode != Mode::Delete && load.plan.external_id.is_none() {
            load.keyless_created
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut done = RowDone::new(dry_run(load, cx, &key));
        // Tags are counted by the chunk's tag step, as they would be sent.
        done.tags = tags.map(|t| (String::new(), t));
        return Ok(done);
    }
    let mut record = match load.plan.mode {
        Mode::Upsert if body.email().is_some() || body.phone().is_some() => {
            let _turns = load.match_turns(body.email(), body.phone()).await;
            upsert(load, cx, &key, request).await?
        }
        Mode::Upsert | Mode::Create => {
            create_once(load, cx, &key, &body, request, tags.is_some()).await?
        }
        Mode::Update => update(load, cx, &key, &body, request).await?,
        Mode::Delete => delete(load, cx, &key, &body).await?,
    };
    let mut notes = custom.notes;
    let written = matches!(record.status, RowStatus::Created | RowStatus::Updated);
    if let (true, true, Some(target)) = (load.plan.verify, written, &record.target_id) {
        notes.extend(super::verify::verify(load, target, &sent).await?);
    }
    if !notes.is_empty() && record.status != RowStatus::Failed {
        record.detail = Some(notes.join("; "));
    }
    if let (Some(source), Some(target)) = (&body.keys.id, &record.target_id) {
        if matches!(load.plan.mode, Mode::Upsert | Mode::Create) {
            load.ledger
                .db()
                .map_id(&load.plan.location, source, target)?;
        }
    }
    let tags = match (&record.target_id, tags) {
        (Some(t), Some(tags)) if record.status != RowStatus::Failed => Some((t.clone(), tags)),
        _ => None,
    };
    Ok(RowDone { record, tags })
}

/// What a dry run says of the row: it would be written (or deleted), or why it would fail.
fn dry_run(load: &Load, cx: &Row, key: &str) -> RowRecord {
    load.planned
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match load.plan.mode {
        Mode::Delete => cx.record(RowStatus::Deleted, key),
        _ => cx.record(RowStatus::Created, key),
    }
}

async fn upsert(load: &Load, cx: &Row, key: &str, request: Json) -> Result<RowRecord> {
    match load
        .client
        .upsert_contact(&load.plan.location, request)
        .await
    {
        Ok(a) => {
            let status = if a.new {
                RowStatus::Created
            } else {
                RowStatus::Updated
            };
            Ok(cx.done(status, key, &a.contact.id))
        }
        Err(e) => Ok(cx.failed(key, api_failure(e)?)),
    }
}

/// What a created contact looks like in the target: its names and company. Rows alike in
/// this take turns, and a contact another row settled with it is never taken for a lost one.
fn fingerprint(body: &Body) -> String {
    let field = |k: &str| body.fields.get(k).and_then(Json::as_str).unwrap_or("");
    let text = [
        field("firstName"),
        field("lastName"),
        field("name"),
        field("companyName"),
    ]
    .join("\u{1f}");
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A contact create, made exactly once ([`crate::job::once`]): a lost one is looked for in
/// the search index, which can lag.
struct ContactCreate<'a> {
    load: &'a Load,
    body: &'a Body,
    fingerprint: &'a str,
    request: Json,
}

impl Write for ContactCreate<'_> {
    async fn send(&self) -> std::result::Result<String, crate::api::Error> {
        let location = &self.load.plan.location;
        let made = self
            .load
            .client
            .create_contact(location, self.request.clone());
        made.await.map(|c| c.id)
    }

    async fn look(&self, since_ms: i64) -> Result<Option<String>> {
        let found = find_created(self.load, self.body, self.fingerprint, Some(since_ms)).await?;
        Ok(found.map(|c| c.id))
    }

    fn look_again_ms(&self) -> &'static [u64] {
        once::INDEX_LAG_MS
    }
}

/// Create a contact exactly once (see the module comment).
async fn create_once(
    load: &Load,
    cx: &Row,
    key: &str,
    body: &Body,
    request: Json,
    tags_to_add: bool,
) -> Result<RowRecord> {
    let fp = fingerprint(body);
    // Rows that look alike in the target take turns, and each settles before the next looks.
    let turn = load.contact_turn(&format!("name:{fp}"));
    let _turn = turn.lock().await;
    if load.plan.external_id.is_some() && !cx.was_sending() {
        // A contact an earlier load (maybe with another state database) made from the same
        // source row.
        if let Some(found) = find_created(load, body, &fp, None).await? {
            return Ok(RowRecord {
                detail: Some("already in the target (found by --external-id)".into()),
                ..cx.done(RowStatus::Unchanged, key, &found.id)
            });
        }
    }
    let write = ContactCreate {
        load,
        body,
        fingerprint: &fp,
        request,
    };
    // With tags still to add, the contact is recorded made but not settled (`sending` with its
    // id): a run killed before the chunk's tags reruns the row, which finds the contact by
    // that id instead of making it again, and adds the tags.
    let made = |r: &Row, id: &str| {
        let status = if tags_to_add {
            RowStatus::Sending
        } else {
            RowStatus::Created
        };
        r.done(status, key, id)
    };
    let mut records = exactly_once(&load.ledger, &[cx], key, Some(&fp), &write, made).await?;
    let mut record = records.pop().expect("one record for the one row");
    if record.status == RowStatus::Sending && record.target_id.is_some() {
        record.status = RowStatus::Created;
    }
    let keyless = body.email().is_none() && body.phone().is_none();
    if record.status == RowStatus::Created && keyless && load.plan.external_id.is_none() {
        load.keyless_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(record)
}

/// A contact this load may already have created for `body`: by the external id when there is
/// one, else by name and company, newest first among those added since `since_ms`, and never
/// one that another row of this load settled with the same fingerprint.
async fn find_created(
    load: &Load,
    body: &Body,
    fp: &str,
    since_ms: Option<i64>,
) -> Result<Option<Contact>> {
    let field = |k: &str| {
        body.fields
            .get(k)
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let query = [field("firstName"), field("lastName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let query = if query.trim().is_empty() {
        field("name")
            .or_else(|| field("companyName"))
            .unwrap_or_default()
    } else {
        query
    };
    if query.trim().is_empty() {
        return Ok(None);
    }
    let found = load
        .client
        .search_recent_by_query(&load.plan.location, &query, since_ms, 100)
        .await
        .map_err(crate::exit::JobError::from)?;
    let taken = load
        .ledger
        .db()
        .claimed(load.ledger.key(), "contacts", fp)?;
    let external = load
        .plan
        .external_id
        .as_deref()
        .and_then(|x| load.fields.id(x))
        .zip(body.keys.id.as_deref());
    Ok(found.into_iter().find(|c| {
        let same = |mine: Option<String>, theirs: &Option<String>| {
            mine.as_deref().unwrap_or("") == theirs.as_deref().unwrap_or("")
        };
        let named = same(field("firstName"), &c.first_name)
            && same(field("lastName"), &c.last_name)
            && same(field("companyName"), &c.company_name);
        match external {
            Some((fid, source)) => c
                .custom_fields
                .iter()
                .any(|v| v.id == fid && v.value.as_str() == Some(source)),
            None => named && !taken.contains(&c.id),
        }
    }))
}

/// The target contact a row names: its `id` column, else a look-up by email or phone.
async fn target_of(load: &Load, body: &Body) -> Result<Option<String>> {
    if let Some(id) = &body.keys.id {
        return Ok(Some(id.clone()));
    }
    super::children::lookup(load, body.email(), body.phone()).await
}

async fn update(load: &Load, cx: &Row, key: &str, body: &Body, request: Json) -> Result<RowRecord> {
    let Some(id) = target_of(load, body).await? else {
        return Ok(cx.failed(
            key,
            "no contact in the target matches the row's id, email or phone",
        ));
    };
    match load
        .client
        .update_contact(&load.plan.location, &id, request)
        .await
    {
        Ok(c) => Ok(cx.done(RowStatus::Updated, key, &c.id)),
        Err(e) => Ok(cx.failed(key, api_failure(e)?)),
    }
}

async fn delete(load: &Load, cx: &Row, key: &str, body: &Body) -> Result<RowRecord> {
    let Some(id) = target_of(load, body).await? else {
        return Ok(cx.failed(
            key,
            "no contact in the target matches the row's id, email or phone",
        ));
    };
    match load.client.delete_contact(&load.plan.location, &id).await {
        Ok(true) => Ok(cx.done(RowStatus::Deleted, key, &id)),
        Ok(false) => Ok(RowRecord {
            detail: Some("already deleted".into()),
            ..cx.done(RowStatus::Unchanged, key, &id)
        }),
        Err(e) => Ok(cx.failed(key, api_failure(e)?)),
    }
}
