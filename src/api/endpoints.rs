//! One method per endpoint the project uses (besides the listings in `pages`).
//!
//! Child reads answer `Ok(None)` on 404: the contact was deleted between listing it and
//! fetching its tasks or notes, which is not a failure of the run. Bodies the project sends are
//! shaped as the spec's request schemas (a test validates them against the spec).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Call, Client};
use super::error::Result;
use super::model::{Contact, CustomField};

/// How many task-search results to ask for per request.
pub const TASK_SEARCH_PAGE: usize = 100;

#[derive(Deserialize)]
struct TasksAnswer {
    #[serde(default)]
    tasks: Vec<Value>,
}

#[derive(Deserialize)]
struct NotesAnswer {
    #[serde(default)]
    notes: Vec<Value>,
}

#[derive(Deserialize)]
struct EventsAnswer {
    #[serde(default)]
    events: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomFieldsAnswer {
    #[serde(default)]
    custom_fields: Vec<CustomField>,
}

#[derive(Deserialize)]
struct ContactAnswer {
    contact: Contact,
}

/// `POST /contacts/upsert` answer.
#[derive(Debug, Deserialize)]
pub struct UpsertAnswer {
    pub new: bool,
    pub contact: Contact,
}

/// `POST /contacts/bulk/tags/update/{type}` answer (the API spells it `succeded`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkTagsAnswer {
    #[serde(rename = "succeded", alias = "succeeded", default)]
    pub succeeded: bool,
    #[serde(default)]
    pub error_count: f64,
    #[serde(default)]
    pub responses: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    Add,
    Remove,
}

fn or_deleted<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Client {
    /// `GET /contacts/{id}/{child}`, the answer's list picked by `pick`; `None` if the contact
    /// is gone (deleted after it was listed).
    async fn contact_children<A: serde::de::DeserializeOwned>(
        &self,
        location: &str,
        contact_id: &str,
        child: &str,
        pick: fn(A) -> Vec<Value>,
    ) -> Result<Option<Vec<Value>>> {
        let call = Call::get(location, format!("/contacts/{contact_id}/{child}"));
        Ok(or_deleted(self.call::<A>(&call).await)?.map(pick))
    }

    /// `GET /contacts/{id}/tasks`.
    pub async fn contact_tasks(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        self.contact_children(location, contact_id, "tasks", |a: TasksAnswer| a.tasks)
            .await
    }

    /// `GET /contacts/{id}/notes`.
    pub async fn contact_notes(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        self.contact_children(location, contact_id, "notes", |a: NotesAnswer| a.notes)
            .await
    }

    /// `GET /contacts/{id}/appointments` (the answer calls them `events`).
    pub async fn contact_appointments(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        self.contact_children(location, contact_id, "appointments", |a: EventsAnswer| {
            a.events
        })
        .await
    }

    /// `POST /locations/{id}/tasks/search`: the tasks of many contacts, all pages of them.
    /// Needs `locations/tasks.readonly`.
    ///
    /// The largest `limit` the API honours is undocumented (its default is 25), so a short
    /// page only ends the search when it is shorter than a page already seen; a first short
    /// page costs one more request to confirm. A page of tasks already answered (a server that
    /// ignores `skip`) stops with an error instead of looping.
    pub async fn search_tasks(&self, location: &str, contact_ids: &[String]) -> Result<Vec<Value>> {
        let path = format!("/locations/{location}/tasks/search");
        let mut out: Vec<Value> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut largest = 0usize;
        loop {
            let body =
                json!({ "contactId": contact_ids, "limit": TASK_SEARCH_PAGE, "skip": out.len() });
            let call = Call::with_body(location, Method::POST, path.clone(), body);
            let answer: TasksAnswer = self.call(&call).await?;
            let n = answer.tasks.len();
            if n == 0 {
                return Ok(out);
            }
            let fresh = answer
                .tasks
                .iter()
                .filter(|t| {
                    t.get("id")
                        .and_then(Value::as_str)
                        .is_none_or(|id| seen.insert(id.to_string()))
                })
                .count();
            if fresh == 0 {
                return Err(super::error::Error::new(
                    super::error::ErrorKind::CursorLoop,
                    "POST",
                    &path,
                )
                .with_message(format!(
                    "the task search answered only tasks already listed (skip {})",
                    out.len()
                )));
            }
            out.extend(answer.tasks);
            if n < TASK_SEARCH_PAGE && n < largest {
                return Ok(out);
            }
            largest = largest.max(n);
        }
    }

    /// `GET /locations/{id}/customFields?model=contact`.
    pub async fn custom_fields(&self, location: &str) -> Result<Vec<CustomField>> {
        let call = Call::get(location, format!("/locations/{location}/customFields"))
            .query("model", "contact");
        Ok(self.call::<CustomFieldsAnswer>(&call).await?.custom_fields)
    }

    /// `GET /contacts/{id}`; `None` if it does not exist.
    pub async fn contact(&self, location: &str, contact_id: &str) -> Result<Option<Contact>> {
        let call = Call::get(location, format!("/contacts/{contact_id}"));
        Ok(or_deleted(self.call::<ContactAnswer>(&call).await)?.map(|a| a.contact))
    }

    /// `POST /contacts/upsert` (idempotent: matches on the location's duplicate settings).
    pub async fn upsert_contact(&self, location: &str, body: Value) -> Result<UpsertAnswer> {
        let mut body = body;
        body["locationId"] = Value::String(location.to_string());
        self.call(&Call::with_body(
            location,
            Method::POST,
            "/contacts/upsert",
            body,
        ))
        .await
    }

    /// `POST|DELETE /contacts/{id}/tags`; answers the contact's tags.
    pub async fn update_tags(
        &self,
        location: &str,
        contact_id: &str,
        action: TagAction,
        tags: &[String],
    ) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct TagsAnswer {
            #[serde(default)]
            tags: Vec<String>,
        }
        let method = match action {
            TagAction::Add => Method::POST,
            TagAction::Remove => Method::DELETE,
        };
        let call = Call::with_body(
            location,
            method,
            format!("/contacts/{contact_id}/tags"),
            json!({ "tags": tags }),
        );
        Ok(self.call::<TagsAnswer>(&call).await?.tags)
    }

    /// `POST /contacts/bulk/tags/update/{add|remove}`: one request for many contacts.
    pub async fn bulk_update_tags(
        &self,
        location: &str,
        action: TagAction,
        contact_ids: &[String],
        tags: &[String],
    ) -> Result<BulkTagsAnswer> {
        let kind = match action {
            TagAction::Add => "add",
            TagAction::Remove => "remove",
        };
        let body = json!({ "contacts": contact_ids, "tags": tags, "locationId": location });
        self.call(&Call::with_body(
            location,
            Method::POST,
            format!("/contacts/bulk/tags/update/{kind}"),
            body,
        ))
        .await
    }

    /// `POST /contacts/{id}/tasks`. Not idempotent: only a 429 is retried; after any other
    /// failure the caller checks whether the task exists before trying again.
    pub async fn create_task(
        &self,
        location: &str,
        contact_id: &str,
        body: Value,
    ) -> Result<Value> {
        let call = Call::with_body(
            location,
            Method::POST,
            format!("/contacts/{contact_id}/tasks"),
            body,
        );
        self.call(&call.not_idempotent()).await
    }

    /// `POST /contacts/{id}/notes`. Not idempotent, as above.
    pub async fn create_note(
        &self,
        location: &str,
        contact_id: &str,
        body: Value,
    ) -> Result<Value> {
        let call = Call::with_body(
            location,
            Method::POST,
            format!("/contacts/{contact_id}/notes"),
            body,
        );
        self.call(&call.not_idempotent()).await
    }
}
