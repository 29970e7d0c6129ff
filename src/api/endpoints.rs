//! One method per endpoint the project uses (besides the listings in `pages`).
//!
//! Child reads answer `Ok(None)` when the contact is gone: it was deleted between listing it
//! and fetching its tasks or notes, which is not a failure of the run. GHL usually says so with
//! a 400 "Contact not found", sometimes with a 404; any other 400 is ambiguous and settled by
//! asking `GET /contacts/{id}` (see [`Gone`]). Bodies the project sends are shaped as the
//! spec's request schemas (a test validates them against the spec).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Call, Client};
use super::error::{Error, Result};
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

/// `None` for an answer that says the contact does not exist (a 404 or a 400 "Contact not
/// found"); other errors stand.
fn or_deleted<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_contact_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a failed read under `/contacts/{id}/` says about the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// A 404, or a 400 that says the contact was not found.
    Yes,
    /// Another 400: GHL's 400s also cover malformed requests and inactive locations, so only
    /// `GET /contacts/{id}` can tell a deleted contact from a broken request.
    Ask,
    /// Anything else is not about the contact's existence.
    No,
}

fn gone(e: &Error) -> Gone {
    if e.is_contact_not_found() {
        Gone::Yes
    } else if e.is_bad_request() {
        Gone::Ask
    } else {
        Gone::No
    }
}

/// Settles an ambiguous 400 (`original`) with the answer of `GET /contacts/{id}`: the contact
/// is deleted only if that answer says it does not exist; otherwise the original error stands,
/// also when the confirmation itself failed (its error would hide the one that matters).
fn settle<T>(
    original: Error,
    confirmation: Result<Option<super::model::Contact>>,
) -> Result<Option<T>> {
    match confirmation {
        Ok(None) => Ok(None),
        Ok(Some(_)) => Err(original),
        Err(e) => {
            tracing::debug!(error = %e, "Could not tell whether the contact still exists.");
            Err(original)
        }
    }
}

impl Client {
    /// `GET /contacts/{id}/{child}`, the answer's list picked by `pick`; `None` if the contact
    /// is gone (deleted after it was listed). An ambiguous 400 costs one more request.
    async fn contact_children<A: serde::de::DeserializeOwned>(
        &self,
        location: &str,
        contact_id: &str,
        child: &str,
        pick: fn(A) -> Vec<Value>,
    ) -> Result<Option<Vec<Value>>> {
        let call = Call::get(location, format!("/contacts/{contact_id}/{child}"));
        let e = match self.call::<A>(&call).await {
            Ok(a) => return Ok(Some(pick(a))),
            Err(e) => e,
        };
        match gone(&e) {
            Gone::Yes => Ok(None),
            Gone::No => Err(e),
            Gone::Ask => settle(e, self.contact(location, contact_id).await),
        }
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

    /// `POST /locations/{id}/tasks/search` without a contact filter: one page (`skip`,
    /// [`TASK_SEARCH_PAGE`] at most) of every task of the location. Needs
    /// `locations/tasks.readonly`.
    pub async fn location_tasks_page(&self, location: &str, skip: usize) -> Result<Vec<Value>> {
        let path = format!("/locations/{location}/tasks/search");
        let body = json!({ "limit": TASK_SEARCH_PAGE, "skip": skip });
        let call = Call::with_body(location, Method::POST, path, body);
        let answer: TasksAnswer = self.call(&call).await?;
        Ok(answer.tasks)
    }

    /// `GET /locations/{id}/customFields?model=contact`.
    pub async fn custom_fields(&self, location: &str) -> Result<Vec<CustomField>> {
        let call = Call::get(location, format!("/locations/{location}/customFields"))
            .query("model", "contact");
        Ok(self.call::<CustomFieldsAnswer>(&call).await?.custom_fields)
    }

    /// `GET /contacts/{id}`; `None` if it does not exist (a 404 or a 400 "Contact not found").
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

#[cfg(test)]
mod tests {
    use super::super::error::ErrorKind;
    use super::super::model::Contact;
    use super::*;

    fn err(kind: ErrorKind, status: u16, message: &str) -> Error {
        Error::new(kind, "GET", "/contacts/c1/notes")
            .with_status(status)
            .with_message(message)
    }

    #[test]
    fn which_answers_say_the_contact_is_gone() {
        let cases = [
            (
                err(ErrorKind::NotFound, 404, "Contact not found"),
                Gone::Yes,
            ),
            (
                err(ErrorKind::NotFound, 404, "Cannot GET /contacts/c1/notes"),
                Gone::Yes,
            ),
            (
                err(ErrorKind::BadRequest, 400, "Contact not found"),
                Gone::Yes,
            ),
            (
                err(ErrorKind::BadRequest, 400, "contact with id c1 not found"),
                Gone::Yes,
            ),
            (err(ErrorKind::BadRequest, 400, "Bad Request"), Gone::Ask),
            (
                err(ErrorKind::BadRequest, 400, "Location is not active"),
                Gone::Ask,
            ),
            (err(ErrorKind::BadRequest, 400, "Task not found"), Gone::Ask),
            (
                err(ErrorKind::Unprocessable, 422, "Contact not found"),
                Gone::No,
            ),
            (err(ErrorKind::Server, 500, "Contact not found"), Gone::No),
            (err(ErrorKind::Forbidden, 403, "no access"), Gone::No),
        ];
        for (e, want) in cases {
            assert_eq!(gone(&e), want, "{e}");
        }
        assert_eq!(
            gone(&Error::new(
                ErrorKind::BadRequest,
                "GET",
                "/contacts/c1/notes"
            )),
            Gone::Ask,
            "a 400 without a message"
        );
    }

    #[test]
    fn an_ambiguous_400_is_deleted_only_if_the_contact_read_says_so() {
        let original = || err(ErrorKind::BadRequest, 400, "Bad Request");
        let gone: Result<Option<Vec<Value>>> = settle(original(), Ok(None));
        assert_eq!(gone.unwrap(), None);
        let alive: Result<Option<Vec<Value>>> = settle(original(), Ok(Some(Contact::default())));
        let e = alive.unwrap_err();
        assert_eq!(e.path, "/contacts/c1/notes");
        assert_eq!(e.messages, vec!["Bad Request".to_string()]);
        let unknown: Result<Option<Vec<Value>>> = settle(
            original(),
            Err(Error::new(ErrorKind::Server, "GET", "/contacts/c1").with_status(503)),
        );
        let e = unknown.unwrap_err();
        assert_eq!((e.kind, e.status), (ErrorKind::BadRequest, Some(400)));
    }

    #[test]
    fn or_deleted_takes_400_and_404_contact_not_found() {
        let r: Result<()> = Err(err(ErrorKind::BadRequest, 400, "Contact not found"));
        assert_eq!(or_deleted(r).unwrap(), None);
        let r: Result<()> = Err(err(ErrorKind::NotFound, 404, "Contact not found"));
        assert_eq!(or_deleted(r).unwrap(), None);
        let r: Result<()> = Err(err(ErrorKind::BadRequest, 400, "Bad Request"));
        assert!(or_deleted(r).is_err());
        assert_eq!(or_deleted(Ok(7)).unwrap(), Some(7));
    }
}
