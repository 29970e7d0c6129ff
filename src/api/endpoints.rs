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
    /// `GET /contacts/{id}/tasks`; `None` if the contact is gone.
    pub async fn contact_tasks(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        let call = Call::get(location, format!("/contacts/{contact_id}/tasks"));
        Ok(or_deleted(self.call::<TasksAnswer>(&call).await)?.map(|a| a.tasks))
    }

    /// `GET /contacts/{id}/notes`; `None` if the contact is gone.
    pub async fn contact_notes(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        let call = Call::get(location, format!("/contacts/{contact_id}/notes"));
        Ok(or_deleted(self.call::<NotesAnswer>(&call).await)?.map(|a| a.notes))
    }

    /// `GET /contacts/{id}/appointments`; `None` if the contact is gone.
    pub async fn contact_appointments(
        &self,
        location: &str,
        contact_id: &str,
    ) -> Result<Option<Vec<Value>>> {
        let call = Call::get(location, format!("/contacts/{contact_id}/appointments"));
        Ok(or_deleted(self.call::<EventsAnswer>(&call).await)?.map(|a| a.events))
    }

    /// `POST /locations/{id}/tasks/search`: the tasks of many contacts, all pages of them.
    /// Needs `locations/tasks.readonly`.
    pub async fn search_tasks(&self, location: &str, contact_ids: &[String]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut skip = 0usize;
        loop {
            let body = json!({ "contactId": contact_ids, "limit": TASK_SEARCH_PAGE, "skip": skip });
            let call = Call::with_body(
                location,
                Method::POST,
                format!("/locations/{location}/tasks/search"),
                body,
            );
            let answer: TasksAnswer = self.call(&call).await?;
            let n = answer.tasks.len();
            out.extend(answer.tasks);
            if n < TASK_SEARCH_PAGE {
                return Ok(out);
            }
            skip += n;
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

    /// `POST /contacts/{id}/tasks` (not idempotent: callers check before retrying a lost answer).
    pub async fn create_task(
        &self,
        location: &str,
        contact_id: &str,
        body: Value,
    ) -> Result<Value> {
        self.call(&Call::with_body(
            location,
            Method::POST,
            format!("/contacts/{contact_id}/tasks"),
            body,
        ))
        .await
    }

    /// `POST /contacts/{id}/notes` (not idempotent, as above).
    pub async fn create_note(
        &self,
        location: &str,
        contact_id: &str,
        body: Value,
    ) -> Result<Value> {
        self.call(&Call::with_body(
            location,
            Method::POST,
            format!("/contacts/{contact_id}/notes"),
            body,
        ))
        .await
    }
}
