//! The write endpoints a migration needs beyond upsert, tags, tasks and notes (`endpoints`):
//! create, update and delete a contact, create a custom field, and the look-ups a load makes
//! before it writes (duplicate search, free-text search).
//!
//! Creates are not idempotent: only a 429 (refused before any work) is retried, and after any
//! other failure the caller checks whether the record exists before trying again.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Call, Client};
use super::error::Result;
use super::model::{Contact, CustomField};

#[derive(Deserialize)]
struct ContactAnswer {
    contact: Contact,
}

#[derive(Deserialize)]
struct MaybeContact {
    #[serde(default)]
    contact: Option<Contact>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomFieldAnswer {
    custom_field: CustomField,
}

#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    contacts: Vec<Contact>,
}

impl Client {
    /// `POST /contacts/` (201). Not idempotent.
    pub async fn create_contact(&self, location: &str, body: Value) -> Result<Contact> {
        let mut body = body;
        body["locationId"] = Value::String(location.to_string());
        let call = Call::with_body(location, Method::POST, "/contacts/", body);
        Ok(self
            .call::<ContactAnswer>(&call.not_idempotent())
            .await?
            .contact)
    }

    /// `PUT /contacts/{id}` (idempotent: the same body twice leaves the same contact).
    pub async fn update_contact(&self, location: &str, id: &str, body: Value) -> Result<Contact> {
        let call = Call::with_body(location, Method::PUT, format!("/contacts/{id}"), body);
        Ok(self.call::<ContactAnswer>(&call).await?.contact)
    }

    /// `DELETE /contacts/{id}`; `false` when it was already gone.
    pub async fn delete_contact(&self, location: &str, id: &str) -> Result<bool> {
        let call = Call::with_body(
            location,
            Method::DELETE,
            format!("/contacts/{id}"),
            json!({}),
        );
        match self.call::<Value>(&call).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_contact_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /locations/{id}/customFields`: a contact custom field. Not idempotent. The
    /// options of a picklist field (`SINGLE_OPTIONS`, `MULTIPLE_OPTIONS`, `RADIO`,
    /// `CHECKBOX`) go as `options`, as GHL's field form sends them; the answer lists them as
    /// `picklistOptions`.
    pub async fn create_custom_field(
        &self,
        location: &str,
        name: &str,
        data_type: &str,
        options: &[String],
    ) -> Result<CustomField> {
        let mut body = json!({ "name": name, "dataType": data_type, "model": "contact" });
        if !options.is_empty() {
            body["options"] = json!(options);
        }
        let call = Call::with_body(
            location,
            Method::POST,
            format!("/locations/{location}/customFields"),
            body,
        );
        Ok(self
            .call::<CustomFieldAnswer>(&call.not_idempotent())
            .await?
            .custom_field)
    }

    /// `GET /contacts/search/duplicate`: the contact the location's duplicate rule would
    /// match for this email or phone, if any.
    pub async fn find_duplicate(
        &self,
        location: &str,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Option<Contact>> {
        let mut call =
            Call::get(location, "/contacts/search/duplicate").query("locationId", location);
        if let Some(e) = email {
            call = call.query("email", e);
        }
        if let Some(p) = phone {
            call = call.query("number", p);
        }
        Ok(self.call::<MaybeContact>(&call).await?.contact)
    }

    /// `POST /contacts/search` with a free-text `query` (name, email, phone, company), newest
    /// first, only contacts added at or after `since_ms` (epoch ms) when given: where a create
    /// whose answer was lost shows, however many older contacts share its name.
    pub async fn search_recent_by_query(
        &self,
        location: &str,
        query: &str,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Contact>> {
        let mut body = json!({
            "locationId": location,
            "pageLimit": limit,
            "page": 1,
            "query": query,
            "sort": [{"field": "dateAdded", "direction": "desc"}],
        });
        if let Some(ms) = since_ms {
            body["filters"] = json!([{
                "field": "dateAdded",
                "operator": "range",
                "value": {"gte": super::filter::iso_millis(ms)},
            }]);
        }
        let call = Call::with_body(location, Method::POST, "/contacts/search", body);
        Ok(self.call::<SearchAnswer>(&call).await?.contacts)
    }

    /// `POST /contacts/search` with `filters`, first page of at most `limit` contacts.
    pub async fn search_contacts_where(
        &self,
        location: &str,
        filters: Value,
        limit: usize,
    ) -> Result<Vec<Contact>> {
        let body = json!({
            "locationId": location,
            "pageLimit": limit,
            "page": 1,
            "filters": filters,
        });
        let call = Call::with_body(location, Method::POST, "/contacts/search", body);
        Ok(self.call::<SearchAnswer>(&call).await?.contacts)
    }

    /// `PUT /contacts/{id}/tasks/{taskId}` or `.../notes/{noteId}` (idempotent).
    pub async fn update_child(
        &self,
        location: &str,
        contact_id: &str,
        child: &str,
        id: &str,
        body: Value,
    ) -> Result<Value> {
        let path = format!("/contacts/{contact_id}/{child}/{id}");
        self.call(&Call::with_body(location, Method::PUT, path, body))
            .await
    }
}
