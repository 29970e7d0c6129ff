//! Rule actions, each sent at most once per event: planned with the event (in the same
//! transaction), marked `sending` before its request, settled after. An action a killed
//! listener left `sending` may have acted: a task or a note is looked for on the contact
//! (same title and due date, or same body) before it is sent again; tags are sent again (adding
//! or removing a tag twice changes nothing); an enrolment, which cannot be looked for, is
//! reported failed rather than resent.

use std::time::Duration;

use serde_json::{json, Value};

use super::dataset::contact_of;
use super::rules::{render, Action, Due, Rules};
use crate::api::endpoints::TagAction;
use crate::api::Client;
use crate::exit::Result;
use crate::state::{ActionRow, ActionStatus, StateDb};

/// What happened to one action.
enum Outcome {
    Done(Option<String>),
    Failed(String),
    /// The API cannot take it now (a refused token, a spent budget): left for later.
    Later(String),
}

/// Settle every open action; answers how many were settled. Stops early (leaving the rest
/// planned) when the API cannot take actions now.
pub async fn run_open(db: &mut StateDb, rules: &Rules, client: &Client) -> Result<u64> {
    let mut settled = 0;
    loop {
        let open = db.open_actions(64)?;
        if open.is_empty() {
            return Ok(settled);
        }
        for a in open {
            let Some(event) = db.event(&a.webhook_id)? else {
                continue;
            };
            let payload: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
            let Some(action) = rules.action(&a.rule, a.action) else {
                let why = "the rule or action is no longer in the rules file";
                db.set_action(&a, ActionStatus::Failed, None, Some(why))?;
                continue;
            };
            let outcome = act(
                db,
                &a,
                action,
                client,
                &event.event_type,
                &event.location,
                &payload,
            )
            .await?;
            match outcome {
                Outcome::Done(detail) => {
                    db.set_action(&a, ActionStatus::Done, None, detail.as_deref())?
                }
                Outcome::Failed(why) => {
                    tracing::warn!(rule = %a.rule, webhook_id = %a.webhook_id, "A rule action failed: {why}");
                    db.set_action(&a, ActionStatus::Failed, None, Some(&why))?
                }
                Outcome::Later(why) => {
                    tracing::warn!(rule = %a.rule, "Rule actions wait: {why}");
                    return Ok(settled);
                }
            }
            db.release_event_body(&a.webhook_id)?;
            settled += 1;
        }
    }
}

async fn act(
    db: &mut StateDb,
    a: &ActionRow,
    action: &Action,
    client: &Client,
    event_type: &str,
    location: &str,
    payload: &Value,
) -> Result<Outcome> {
    let Some(contact) = contact_of(event_type, payload) else {
        return Ok(Outcome::Failed(format!(
            "the {event_type} event names no contact (no contactId): nothing to act on"
        )));
    };
    if location.is_empty() {
        return Ok(Outcome::Failed("the event names no locationId".into()));
    }
    let resent = a.status == ActionStatus::Sending;
    if resent {
        if let Some(found) = look(action, client, location, &contact, payload).await {
            return Ok(found);
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    db.set_action(a, ActionStatus::Sending, Some(now), None)?;
    let sent = match action {
        Action::AddTags(tags) => client
            .update_tags(location, &contact, TagAction::Add, tags)
            .await
            .map(|_| None),
        Action::RemoveTags(tags) => client
            .update_tags(location, &contact, TagAction::Remove, tags)
            .await
            .map(|_| None),
        Action::CreateTask { title, body, due } => {
            let body = task_body(title, body.as_deref(), due, payload, now);
            client
                .create_task(location, &contact, body)
                .await
                .map(id_of)
        }
        Action::AddNote { body } => client
            .create_note(location, &contact, json!({"body": render(body, payload)}))
            .await
            .map(id_of),
        Action::AddToWorkflow { workflow_id } => client
            .enrol(
                location,
                &contact,
                crate::api::actions::Program::Workflow,
                workflow_id,
                false,
            )
            .await
            .map(|_| None),
    };
    Ok(match sent {
        Ok(id) => Outcome::Done(id),
        // A workflow id the location does not have fails this action, not every other one.
        Err(e) if matches!(e.kind, crate::api::ErrorKind::UnknownId { .. }) => {
            Outcome::Failed(e.to_string())
        }
        Err(e) if e.stops_the_job() => {
            // Not sent: back to planned, for the next round.
            db.set_action(a, ActionStatus::Planned, None, None)?;
            Outcome::Later(e.to_string())
        }
        Err(e) if e.outcome_unknown() => {
            // Left `sending`: the next round looks for it before sending again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok(Outcome::Later(format!(
                "the answer was lost ({e}); it is looked for before it is sent again"
            )));
        }
        Err(e) => Outcome::Failed(e.to_string()),
    })
}

fn id_of(v: Value) -> Option<String> {
    let record = v.get("task").or_else(|| v.get("note")).unwrap_or(&v);
    record.get("id").and_then(Value::as_str).map(str::to_string)
}

fn task_body(title: &str, body: Option<&str>, due: &Due, payload: &Value, now: i64) -> Value {
    let due_ms = match due {
        Due::InHours(h) => {
            let from = payload
                .get("timestamp")
                .and_then(crate::api::pages::epoch_ms)
                .unwrap_or(now);
            from + (h * 3_600_000.0) as i64
        }
        Due::At(t) => crate::api::filter::parse_instant(&render(t, payload)).unwrap_or(now),
    };
    let mut b = json!({
        "title": render(title, payload),
        "dueDate": crate::api::filter::iso_millis(due_ms),
        "completed": false,
    });
    if let Some(text) = body {
        b["body"] = json!(render(text, payload));
    }
    b
}

/// A lost write looked for on the contact: `Some` settles the action without sending.
async fn look(
    action: &Action,
    client: &Client,
    location: &str,
    contact: &str,
    payload: &Value,
) -> Option<Outcome> {
    let (existing, wanted) = match action {
        Action::CreateTask { title, .. } => (
            client.contact_tasks(location, contact).await,
            ("title", render(title, payload)),
        ),
        Action::AddNote { body } => (
            client.contact_notes(location, contact).await,
            ("body", render(body, payload)),
        ),
        Action::AddToWorkflow { .. } => {
            return Some(Outcome::Failed(crate::job::once::LOST_ANSWER.to_string()))
        }
        Action::AddTags(_) | Action::RemoveTags(_) => return None,
    };
    let records = existing.ok()??;
    let found = records
        .iter()
        .find(|r| r.get(wanted.0).and_then(Value::as_str) == Some(wanted.1.as_str()))?;
    let id = found.get("id").and_then(Value::as_str).map(str::to_string);
    Some(Outcome::Done(
        id.map(|id| format!("{id} (made by an earlier attempt)")),
    ))
}
