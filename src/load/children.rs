//! Task and note rows: find the contact in the target, then create the record exactly once
//! (or, with `--mode update`, rewrite the task or note the row's `id` names).
//!
//! The contact: the source `contact_id` through the id map a contact load left (so a later run
//! with only `--notes` still lands them right), else that id taken as a target id, else the
//! `contact_email` / `contact_phone` looked up once (`GET /contacts/search/duplicate`, cached).
//!
//! Creates are POSTs, not idempotent, and GHL has been seen to act and then answer an error.
//! So the row is recorded as `sending`, with a fingerprint (title, body and due date; a note's
//! body), before the request; after an answer that leaves the outcome unknown, or on a rerun
//! that finds the row `sending`, the contact's existing tasks or notes are read and a record
//! with the same fingerprint settles the row instead of a second POST.

use serde_json::Value as Json;
use sha2::Digest;

use super::body::Body;
use super::done::RowDone;
use super::plan::Mode;
use super::Load;
use crate::exit::Result;
use crate::job::once::{self, exactly_once, Write};
use crate::job::rows::{row_failure as api_failure, Row};
use crate::state::{RowRecord, RowStatus};
use crate::table::TableKind;

pub async fn load_child(load: &Load, cx: &Row, body: Body) -> Result<RowDone> {
    let table = match cx.table {
        "tasks" => TableKind::Tasks,
        _ => TableKind::Notes,
    };
    let key = body
        .keys
        .id
        .clone()
        .or_else(|| body.keys.contact_id.clone())
        .unwrap_or_default();
    let Some(contact) = contact_of(load, &body).await? else {
        let why =
            "no contact in the target for the row's contact_id, contact_email or contact_phone";
        return Ok(RowDone::new(cx.failed(&key, why)));
    };
    let mut request = body.request(&[], false);
    if table == TableKind::Tasks && load.plan.mode != Mode::Update {
        // GHL requires `completed`; a task without the column is an open one.
        request
            .as_object_mut()
            .map(|o| o.entry("completed").or_insert(Json::Bool(false)));
    }
    if load.plan.mode != Mode::Update {
        if let Some(missing) = missing_required(table, &request) {
            return Ok(RowDone::new(cx.failed(&key, missing)));
        }
    }
    if load.plan.dry_run {
        load.planned
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok(RowDone::new(cx.record(RowStatus::Created, &key)));
    }
    let record = match (load.plan.mode, &body.keys.id) {
        (Mode::Update, Some(id)) => update(load, cx, &key, &contact, id, request).await?,
        (Mode::Update, None) => cx.failed(
            &key,
            format!(
                "--mode update needs the {} id in an `id` column",
                singular(table)
            ),
        ),
        _ => create_once(load, cx, table, &key, &contact, request).await?,
    };
    Ok(RowDone::new(record))
}

/// The fields the spec requires of a create (`CreateTaskParams`: title, dueDate, completed;
/// `NotesDTO`: body) that the row lacks: caught before the request, in a dry run too.
fn missing_required(table: TableKind, request: &Json) -> Option<String> {
    let required: &[&str] = match table {
        TableKind::Tasks => &["title", "dueDate", "completed"],
        _ => &["body"],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| request.get(f).is_none_or(Json::is_null))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "a {} needs {} (the API requires it)",
            singular(table),
            missing.join(", ")
        )
    })
}

fn singular(table: TableKind) -> &'static str {
    if table == TableKind::Tasks {
        "task"
    } else {
        "note"
    }
}

/// `--mode update`: the row's task or note, by its id in the target, rewritten.
async fn update(
    load: &Load,
    cx: &Row,
    key: &str,
    contact: &str,
    id: &str,
    request: Json,
) -> Result<RowRecord> {
    let answer = load
        .client
        .update_child(&load.plan.location, contact, cx.table, id, request)
        .await;
    match answer {
        Ok(_) => Ok(cx.done(RowStatus::Updated, key, id)),
        Err(e) => Ok(cx.failed(key, api_failure(e)?)),
    }
}

/// The target contact of a task or note row.
async fn contact_of(load: &Load, body: &Body) -> Result<Option<String>> {
    if let Some(source) = &body.keys.contact_id {
        let mapped = load.ledger.db().mapped_id(&load.plan.location, source)?;
        return Ok(Some(mapped.unwrap_or_else(|| source.clone())));
    }
    lookup(
        load,
        body.keys.contact_email.as_deref(),
        body.keys.contact_phone.as_deref(),
    )
    .await
}

/// The target contact with this email or phone, looked up once per value.
pub async fn lookup(
    load: &Load,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<Option<String>> {
    let cache_key = match (email, phone) {
        (Some(e), _) => format!("email:{}", e.to_lowercase()),
        (None, Some(p)) => format!("phone:{p}"),
        (None, None) => return Ok(None),
    };
    // A dry run writes no contact, so one the same load would create is not there to find.
    if load.would_be_written(&cache_key) {
        return Ok(Some(String::new()));
    }
    if let Some(hit) = load
        .lookups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cache_key)
    {
        return Ok(hit.clone());
    }
    let found = load
        .client
        .find_duplicate(&load.plan.location, email, phone)
        .await?
        .map(|c| c.id);
    load.lookups
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cache_key, found.clone());
    Ok(found)
}

/// What names a created task or note among its contact's.
fn fingerprint(table: TableKind, record: &Json) -> String {
    let text = |k: &str| {
        record
            .get(k)
            .and_then(Json::as_str)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let due = record
        .get("dueDate")
        .and_then(Json::as_str)
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map_or(String::new(), |d| d.timestamp_millis().to_string());
    let parts = match table {
        TableKind::Tasks => vec![text("title"), text("body"), due],
        _ => vec![text("body")],
    };
    sha2::Sha256::digest(parts.join("\u{1f}").as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A task or note of `contact` with this fingerprint that no settled row has claimed: what a
/// create whose answer was lost made. Claims matter when a contact has identical notes: each
/// row may take only one of them.
async fn find_unclaimed(
    load: &Load,
    table: TableKind,
    contact: &str,
    fp: &str,
) -> Result<Option<String>> {
    let location = &load.plan.location;
    let existing = match table {
        TableKind::Tasks => load.client.contact_tasks(location, contact).await?,
        _ => load.client.contact_notes(location, contact).await?,
    };
    let claimed = load
        .ledger
        .db()
        .claimed(load.ledger.key(), table.name(), fp)?;
    let ours = |r: &Json| format!("{contact}:{}", fingerprint(table, r)) == fp;
    Ok(existing
        .into_iter()
        .flatten()
        .filter(|r| ours(r))
        .filter_map(|r| r.get("id").and_then(Json::as_str).map(str::to_string))
        .find(|id| !claimed.contains(id)))
}

/// A task or note create, made exactly once ([`crate::job::once`]): a lost one is looked
/// for among its contact's own tasks or notes, which show it at once.
struct ChildCreate<'a> {
    load: &'a Load,
    table: TableKind,
    contact: &'a str,
    fingerprint: &'a str,
    request: Json,
}

impl Write for ChildCreate<'_> {
    async fn send(&self) -> std::result::Result<String, crate::api::Error> {
        let (client, location) = (&self.load.client, &self.load.plan.location);
        let request = self.request.clone();
        let answer = match self.table {
            TableKind::Tasks => client.create_task(location, self.contact, request).await?,
            _ => client.create_note(location, self.contact, request).await?,
        };
        // A 2xx without an id: the record was made, but which one cannot be told from the
        // answer. As an answer that was not the JSON promised, it is looked for.
        created_id(&answer).ok_or_else(|| {
            let path = format!("/contacts/{}/{}", self.contact, self.table.name());
            let id_path = format!("{}.id", singular(self.table));
            crate::api::Error::new(
                crate::api::ErrorKind::Decode { json_path: id_path },
                "POST",
                &path,
            )
        })
    }

    async fn look(&self, _since_ms: i64) -> Result<Option<String>> {
        find_unclaimed(self.load, self.table, self.contact, self.fingerprint).await
    }

    fn look_again_ms(&self) -> &'static [u64] {
        once::DIRECT_MS
    }
}

/// Create the row's task or note exactly once. Rows of one contact take turns (a lock per
/// contact), and each settles in the state database before the next looks, so claims are
/// always current.
async fn create_once(
    load: &Load,
    cx: &Row,
    table: TableKind,
    key: &str,
    contact: &str,
    request: Json,
) -> Result<RowRecord> {
    let turn = load.contact_turn(contact);
    let _turn = turn.lock().await;
    let fp = format!("{contact}:{}", fingerprint(table, &request));
    if let Some(record) = already_there(load, cx, table, key, contact, &fp).await? {
        return Ok(record);
    }
    let write = ChildCreate {
        load,
        table,
        contact,
        fingerprint: &fp,
        request,
    };
    let made = |r: &Row, id: &str| r.done(RowStatus::Created, key, id);
    let mut records = exactly_once(&load.ledger, &[cx], key, Some(&fp), &write, made).await?;
    Ok(records.pop().expect("one record for the one row"))
}

/// A contact may already hold the row's task or note: made by an earlier load whose state
/// database was lost or replaced by an older copy, or by another tool. One of its records with
/// the same fingerprint that no row of this job has claimed settles the row as unchanged, so a
/// load is idempotent without its state, at one read of the contact's tasks or notes per row.
/// Only a contact this very run created is spared the read: it holds nothing but what this
/// run's rows made, each recorded as it was made. (A contact an earlier run created is not:
/// the state that says so may be an older copy.)
async fn already_there(
    load: &Load,
    cx: &Row,
    table: TableKind,
    key: &str,
    contact: &str,
    fp: &str,
) -> Result<Option<RowRecord>> {
    let created_here = {
        let db = load.ledger.db();
        db.created_contact_since(load.ledger.key(), contact, &load.run_started)?
    };
    if created_here || cx.was_sending() {
        return Ok(None);
    }
    let Some(id) = find_unclaimed(load, table, contact, fp).await? else {
        return Ok(None);
    };
    let mut record = cx.done(RowStatus::Unchanged, key, &id);
    record.fingerprint = Some(fp.to_string());
    record.detail = Some(format!("already in the target as {} {id}", singular(table)));
    // Recorded now, so the contact's next row (it waits for this one's turn) sees the claim.
    load.ledger.record_all(std::slice::from_ref(&record))?;
    Ok(Some(record))
}

/// The id in a create answer: `{task: {id}}`, `{note: {id}}` or `{id}`.
fn created_id(answer: &Json) -> Option<String> {
    ["task", "note"]
        .iter()
        .find_map(|k| answer.get(k))
        .unwrap_or(answer)
        .get("id")
        .and_then(Json::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_spelling_of_the_same_due_date_and_ids() {
        let sent = json!({"title": "Call", "body": "re: quote ", "dueDate": "2024-05-01T09:00:00.000Z", "completed": false});
        let stored = json!({"id": "t1", "title": "Call", "body": "re: quote", "dueDate": "2024-05-01T09:00:00Z", "contactId": "c1"});
        assert_eq!(
            fingerprint(TableKind::Tasks, &sent),
            fingerprint(TableKind::Tasks, &stored)
        );
        let other =
            json!({"title": "Call", "body": "re: quote", "dueDate": "2024-05-02T09:00:00Z"});
        assert_ne!(
            fingerprint(TableKind::Tasks, &sent),
            fingerprint(TableKind::Tasks, &other)
        );
        assert_eq!(
            fingerprint(TableKind::Notes, &json!({"body": "hello"})),
            fingerprint(
                TableKind::Notes,
                &json!({"id": "n1", "body": "hello", "dateAdded": "x"})
            )
        );
        assert_eq!(
            created_id(&json!({"task": {"id": "t9"}})).as_deref(),
            Some("t9")
        );
        assert_eq!(created_id(&json!({"id": "n9"})).as_deref(), Some("n9"));
        assert_eq!(
            missing_required(TableKind::Tasks, &json!({"title": "x", "completed": false}))
                .as_deref(),
            Some("a task needs dueDate (the API requires it)")
        );
        assert_eq!(
            missing_required(TableKind::Notes, &json!({"body": "hi"})),
            None
        );
    }
}
