//! Custom fields: the location's field definitions (`GET` and `POST
//! /locations/{locationId}/customFields`), and resolving the `customFields` of a contact write
//! (`[{id | key, field_value}]`) to the field ids values are stored under.
//!
//! A field can be named by id, by its `fieldKey` (`contact.lead_score`) or by the key without
//! the model prefix (`lead_score`), as the spec's field input schemas allow. A name the
//! location lacks is not silently dropped: the sandbox answers a 422 naming it, so a client's
//! per-record error path gets tested (what GHL itself does with unknown ids is undocumented;
//! `POST /contacts/` still creates the contact first, see [`super::handlers::create_contact`]).
//! Field definitions live in the store's catalog; the contact writes themselves are
//! [`super::handlers`]'.

use super::answers::{err_400, err_422, ApiError};
use super::gate::Ctx;
use super::handlers::{need_location, ok, Answer, St};
use super::stats::Write;
use super::validate::{body_object, check, refuse, strings, Dto, P};
use super::SandboxState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Extension;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// `CreateCustomFieldsDTO`, plus what GHL accepts without documenting it: `fieldKey`,
/// `description`, `parentId` and `showInForms` (highlevel-api-docs#300) and `options`, the
/// picklist values (named as in the v1 API and the custom-fields API's DTO).
pub(crate) const CREATE_FIELD: Dto = &[
    ("name", P::Str),
    ("dataType", P::Str),
    ("placeholder", P::Str),
    ("acceptedFormat", P::StrArr),
    ("isMultipleFile", P::Bool),
    ("maxNumberOfFiles", P::Num),
    ("textBoxListOptions", P::Arr),
    ("position", P::Num),
    ("model", P::OneOf(&["contact", "opportunity"])),
    ("fieldKey", P::Str),
    ("description", P::Str),
    ("parentId", P::Str),
    ("showInForms", P::Bool),
    ("options", P::StrArr),
];

/// The data types the customFields API knows.
const DATA_TYPES: &[&str] = &[
    "TEXT",
    "LARGE_TEXT",
    "NUMERICAL",
    "PHONE",
    "MONETORY",
    "CHECKBOX",
    "SINGLE_OPTIONS",
    "MULTIPLE_OPTIONS",
    "FLOAT",
    "TIME",
    "DATE",
    "TEXTBOX_LIST",
    "FILE_UPLOAD",
    "SIGNATURE",
    "RADIO",
    "EMAIL",
];

/// The custom fields of a contact write, resolved.
#[derive(Debug, Default)]
pub struct Resolved {
    /// `(field id, value)` of each field the location has.
    pub fields: Vec<(String, Value)>,
    /// One 422 message per field it lacks.
    pub unknown: Vec<String>,
}

impl Resolved {
    /// The fields, or a 422 naming every unknown one.
    pub fn known(self) -> Result<Vec<(String, Value)>, ApiError> {
        refuse(self.unknown).map(|()| self.fields)
    }
}

/// Resolves `customFields: [{id | key, field_value}]` (already checked for shape) against the
/// location's fields.
pub fn resolve_custom_fields(st: &SandboxState, li: usize, body: &Map<String, Value>) -> Resolved {
    let mut r = Resolved::default();
    let items = body.get("customFields").and_then(Value::as_array);
    for (i, item) in items.into_iter().flatten().enumerate() {
        let Some(name) = item
            .get("id")
            .or_else(|| item.get("key"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        match st.store.field_id(li, name) {
            Some(id) => {
                let value = item.get("field_value").cloned().unwrap_or(Value::Null);
                r.fields.push((id, value));
            }
            None => r.unknown.push(format!(
                "customFields.{i} names `{name}`, which is not a custom field of this location"
            )),
        }
    }
    r
}

/// `GET /locations/{locationId}/customFields?model=contact|opportunity|all` (default contact).
pub async fn custom_fields(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let li = need_location(&ctx)?;
    let model = match q.get("model").map(String::as_str) {
        None | Some("contact") => Some("contact"),
        Some("opportunity") => Some("opportunity"),
        Some("all") => None,
        Some(other) => {
            return Err(err_422(vec![format!(
                "model {other} must be one of the following values: contact, opportunity, all"
            )]))
        }
    };
    let fields = st.store.custom_fields_of(li, model);
    ok(StatusCode::OK, json!({"customFields": fields}))
}

/// `POST /locations/{locationId}/customFields`: 201 `{customField}`. The key is `fieldKey` if
/// given, else the name in snake case, prefixed with the model; a key the location already has
/// is a 400 (GHL's behaviour there is undocumented).
pub async fn create_custom_field(
    State(st): St,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let mut errs = check(&body, &[CREATE_FIELD], &["name", "dataType"]);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if !text("dataType").is_empty() && !DATA_TYPES.contains(&text("dataType")) {
        errs.push(format!(
            "dataType must be one of the following values: {}",
            DATA_TYPES.join(", ")
        ));
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("contact");
    refuse(errs)?;
    let li = need_location(&ctx)?;
    let key = field_key(model, text("fieldKey"), text("name"));
    let location_id = st.store.location(li).id.clone();
    let field = st
        .store
        .create_custom_field(li, &key, |id| {
            field_json(id, &key, &location_id, model, &body)
        })
        .ok_or_else(|| err_400(&format!("A custom field with the key {key} already exists")))?;
    st.count_write(Write::CustomFieldCreate);
    ok(StatusCode::CREATED, json!({"customField": field}))
}

/// `contact.shoe_size` from a given key (`shoe_size` or `contact.shoe_size`) or the name.
fn field_key(model: &str, given: &str, name: &str) -> String {
    let base = if given.is_empty() { name } else { given };
    let base = base
        .strip_prefix(&format!("{model}."))
        .unwrap_or(base)
        .to_lowercase();
    let mut slug = String::new();
    for c in base.chars() {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    format!("{model}.{}", slug.trim_matches('_'))
}

/// The definition as the customFields endpoint lists it (`CustomFieldSchema`).
fn field_json(
    id: String,
    key: &str,
    location: &str,
    model: &str,
    body: &Map<String, Value>,
) -> Value {
    let name = body.get("name").cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), name.clone());
    m.insert("fieldKey".into(), json!(key));
    m.insert(
        "placeholder".into(),
        body.get("placeholder").cloned().unwrap_or(name),
    );
    m.insert("dataType".into(), body["dataType"].clone());
    m.insert(
        "position".into(),
        body.get("position").cloned().unwrap_or(json!(0)),
    );
    let options = strings(body.get("options"));
    if !options.is_empty() {
        m.insert("picklistOptions".into(), json!(options));
    }
    if body["dataType"] == "FILE_UPLOAD" {
        let multi = body.get("isMultipleFile").and_then(Value::as_bool);
        m.insert("isMultiFileAllowed".into(), json!(multi.unwrap_or(false)));
        let max = body.get("maxNumberOfFiles").cloned();
        m.insert("maxFileLimit".into(), max.unwrap_or(json!(1)));
    }
    m.insert("locationId".into(), json!(location));
    m.insert("model".into(), json!(model));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_given_key_or_the_name() {
        assert_eq!(
            field_key("contact", "", "Shoe Size (EU)"),
            "contact.shoe_size_eu"
        );
        assert_eq!(field_key("contact", "contact.shoe", "x"), "contact.shoe");
        assert_eq!(field_key("opportunity", "Deal", ""), "opportunity.deal");
        assert_eq!(field_key("contact", "", "Größe"), "contact.größe");
    }
}
