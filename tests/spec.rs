//! Contract tests: the sandbox's answers validated against the response schemas of GHL's
//! official OpenAPI specs (copied unchanged under `tests/spec/`, CC0; `tests/spec/SOURCE.md`
//! names the upstream commit), and the request side that `traffic.rs` checks every test's
//! recorded requests with.
//!
//! The specs are not strictly valid, and GHL is known to differ from them in places; a copy is
//! patched in memory. This is the one list of patches, each small, keeping the meaning, with
//! the section of `../shared/ghl-api/NOTES.md` it rests on ("Disagree" is "Where the spec and
//! the wire disagree", "Quirks" is "Quirks seen in the field"):
//!
//! Both directions
//! - P1. `../common/common-schemas.json#/...` references are inlined into each app's
//!   `components` (same schemas, one document). Disagree: "keep that relative layout or inline
//!   them".
//! - P2. OpenAPI 3.0 `nullable: true` becomes `type: [T, "null"]`, its JSON Schema spelling.
//!   Disagree: "not strictly valid OpenAPI 3.0".
//! - P3. Properties typed `object` whose example is a scalar (`dateOfBirth` in the contact
//!   DTOs, `NumericField`/`MonetoryField.field_value`) are typed as their example. Disagree:
//!   "some properties are `type: object` although their values are scalars".
//!
//! Requests
//! - Q1. Request DTOs are closed (`additionalProperties: false`): GHL's whitelist validation
//!   refuses unknown properties ("property X should not exist"). Writing: "422 answers ...
//!   naming the invalid fields".
//! - Q2. `SearchBodyV2DTO` is empty in the spec; it gets the documented body (`locationId`,
//!   `pageLimit` <= 500, `page`, `searchAfter`, `filters`, `sort`, `query`; the first two
//!   required). Disagree: "`POST /contacts/search` has an empty request schema"; Quirks: "422
//!   without `locationId` and `pageLimit`".
//! - Q3. A custom-field input may name its field by `id` or by `key` (the spec's own
//!   `customFieldsInputStringSchema` says "Pass either `id` or `key`"), where the typed field
//!   schemas require `id`. Quirks: "written as `[{id | key, field_value}]`".
//! - Q4. `CreateCustomFieldsDTO` also takes `fieldKey`, `description`, `parentId` and
//!   `showInForms`, which GHL accepts without documenting them (highlevel-api-docs#300), and
//!   `options`, the picklist values (the name the v1 API and the custom-fields API use): a
//!   migration creates picklist fields with their options. Quirks: "Unknown fields appear over
//!   time" (Reading contacts); the spec's DTO has no way to give a picklist its values.
//!
//! Responses
//! - R1. Every property also accepts `null`: the wire sends null where the spec says string.
//!   Disagree: "absent values often come as `null`".
//! - R2. A contact custom field's `value` is any JSON (numbers, arrays, objects on the wire).
//!   Disagree: "custom-field `value`s can be numbers, arrays ... or objects".
//! - R3. `LocationTaskListSuccessfulResponseDto.tasks` holds task objects, not arrays.
//!   Disagree: "the location task search answer is typed as a list of lists".
//! - R4. `UpdateTagsResponseDTO.responses` holds objects (as its own example shows). Quirks:
//!   "read each contact's `responses` entry".
//! - R5. `POST /contacts/search` declares no 200 body; it is `{contacts: [ContactsSearchSchema],
//!   total}`. Reading contacts (the search answer).
//! - R6. `GET /contacts/search/duplicate` declares no 200 body; it is `{contact}`, the contact
//!   as `GetContectByIdSchema` or null. Writing (upsert matches by the duplicate settings).

use ghl_etl::sandbox::{
    Sandbox, SandboxConfig, TokenSpec, DEFAULT_TOKEN, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const APPS: &[(&str, &str)] = &[
    ("contacts", include_str!("spec/apps/contacts.json")),
    ("locations", include_str!("spec/apps/locations.json")),
    ("businesses", include_str!("spec/apps/businesses.json")),
    ("oauth", include_str!("spec/apps/oauth.json")),
];
const COMMON: &str = include_str!("spec/common/common-schemas.json");
const COMMON_REF: &str = "../common/common-schemas.json#/components/schemas/";

/// The patched spec documents, one set for requests and one for responses.
struct Specs {
    requests: Vec<Value>,
    responses: Vec<Value>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn each_object(v: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(m) => {
            f(m);
            for (_, child) in m.iter_mut() {
                each_object(child, f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| each_object(c, f)),
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn schemas(doc: &mut Value) -> &mut Map<String, Value> {
    doc.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("spec has components.schemas")
}

/// P1, P2, P3.
fn patch_common(mut doc: Value, common: &Value) -> Value {
    let common_schemas = common["components"]["schemas"]
        .as_object()
        .expect("common schemas")
        .clone();
    for (k, v) in common_schemas {
        schemas(&mut doc).entry(k).or_insert(v);
    }
    each_object(&mut doc, &mut |m| {
        if let Some(Value::String(r)) = m.get("$ref") {
            if let Some(name) = r.strip_prefix(COMMON_REF) {
                m.insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
            }
        }
        if m.get("type") == Some(&json!("object")) {
            if let Some(ex) = m.get("example") {
                if !ex.is_object() {
                    let t = json_type(ex);
                    m.insert("type".into(), json!(t));
                }
            }
        }
        if m.get("nullable") == Some(&json!(true)) {
            match m.get("type").cloned() {
                Some(Value::String(t)) => {
                    m.insert("type".into(), json!([t, "null"]));
                }
                _ => {
                    let inner = Value::Object(std::mem::take(m));
                    m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
        }
    });
    doc
}

fn request_body_refs(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for ops in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for op in ops.as_object().into_iter().flat_map(|o| o.values()) {
            for content in op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|c| c.values())
            {
                if let Some(r) = content.pointer("/schema/$ref").and_then(Value::as_str) {
                    out.push(r.trim_start_matches("#/components/schemas/").to_string());
                }
            }
        }
    }
    out
}

/// Q1, Q2, Q3.
fn patch_requests(mut doc: Value) -> Value {
    for (_, s) in schemas(&mut doc).iter_mut() {
        let is_field_input = s.get("required") == Some(&json!(["id"]))
            && s.pointer("/properties/field_value").is_some()
            && s.pointer("/properties/key").is_some();
        let Some(m) = s.as_object_mut() else { continue };
        if is_field_input {
            m.remove("required");
            m.insert(
                "anyOf".into(),
                json!([{"required": ["id"]}, {"required": ["key"]}]),
            );
        }
    }
    for name in request_body_refs(&doc) {
        if let Some(Value::Object(s)) = schemas(&mut doc).get_mut(&name) {
            if s.contains_key("properties") {
                s.insert("additionalProperties".into(), json!(false));
            }
        }
    }
    if let Some(Value::Object(props)) = schemas(&mut doc)
        .get_mut("CreateCustomFieldsDTO")
        .and_then(|s| s.get_mut("properties"))
    {
        for k in ["fieldKey", "description", "parentId"] {
            props.insert(k.into(), json!({"type": "string"}));
        }
        props.insert("showInForms".into(), json!({"type": "boolean"}));
        props.insert(
            "options".into(),
            json!({"type": "array", "items": {"type": "string"}}),
        );
    }
    if let Some(s) = schemas(&mut doc).get_mut("SearchBodyV2DTO") {
        *s = json!({
            "type": "object",
            "properties": {
                "locationId": {"type": "string"},
                "pageLimit": {"type": "integer", "minimum": 1, "maximum": 500},
                "page": {"type": "integer", "minimum": 1},
                "searchAfter": {"type": "array"},
                "filters": {"type": "array", "items": {"type": "object"}},
                "sort": {"type": "array", "items": {"type": "object",
                    "properties": {"field": {"type": "string"}, "direction": {"enum": ["asc", "desc"]}}}},
                "query": {"type": "string"}
            },
            "required": ["locationId", "pageLimit"],
            "additionalProperties": false
        });
    }
    doc
}

/// R1-R6.
fn patch_responses(mut doc: Value) -> Value {
    // R6 first, so that R1 lets its contact be null.
    if let Some(op) = doc.pointer_mut("/paths/~1contacts~1search~1duplicate/get/responses/200") {
        op["content"] = json!({"application/json": {"schema": {"type": "object", "properties": {
            "contact": {"$ref": "#/components/schemas/GetContectByIdSchema"}}}}});
    }
    each_object(&mut doc, &mut |m| {
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            for (_, p) in props.iter_mut() {
                let Some(pm) = p.as_object_mut() else {
                    continue;
                };
                match pm.get("type").cloned() {
                    Some(Value::String(t)) => {
                        pm.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(mut ts)) => {
                        if !ts.contains(&json!("null")) {
                            ts.push(json!("null"));
                        }
                        pm.insert("type".into(), Value::Array(ts));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(pm));
                        pm.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
    });
    let s = schemas(&mut doc);
    if s.contains_key("ContactsSearchSchema") {
        if let Some(v) = s
            .get_mut("CustomFieldSchema")
            .and_then(|c| c.pointer_mut("/properties/value"))
        {
            *v = json!({});
        }
        if let Some(items) = s
            .get_mut("UpdateTagsResponseDTO")
            .and_then(|c| c.pointer_mut("/properties/responses/items"))
        {
            *items = json!({"type": "object"});
        }
        s.insert(
            "SearchContactsResponse".into(),
            json!({"type": "object", "properties": {
                "contacts": {"type": "array", "items": {"$ref": "#/components/schemas/ContactsSearchSchema"}},
                "total": {"type": "number"}}}),
        );
        if let Some(op) = doc.pointer_mut("/paths/~1contacts~1search/post/responses/200") {
            op["content"] = json!({"application/json": {"schema": {"$ref": "#/components/schemas/SearchContactsResponse"}}});
        }
    }
    if let Some(items) = schemas(&mut doc)
        .get_mut("LocationTaskListSuccessfulResponseDto")
        .and_then(|c| c.pointer_mut("/properties/tasks/items"))
    {
        *items = json!({"type": "object"});
    }
    doc
}

fn specs() -> &'static Specs {
    static SPECS: OnceLock<Specs> = OnceLock::new();
    SPECS.get_or_init(|| {
        let common: Value = serde_json::from_str(COMMON).expect("common schemas parse");
        let base: Vec<Value> = APPS
            .iter()
            .map(|(name, src)| {
                let doc: Value =
                    serde_json::from_str(src).unwrap_or_else(|e| panic!("spec {name}: {e}"));
                patch_common(doc, &common)
            })
            .collect();
        Specs {
            requests: base.iter().cloned().map(patch_requests).collect(),
            responses: base.into_iter().map(patch_responses).collect(),
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// The spec's operation `method route`, in the patched request documents: which document, and
/// the operation object.
pub(crate) fn request_operation(method: &str, route: &str) -> Option<(usize, &'static Value)> {
    operation(&specs().requests, method, route)
}

/// Checks `value` against `schema` of the patched request document `doc_index`.
pub(crate) fn validate_request_value(
    doc_index: usize,
    schema: &Value,
    value: &Value,
) -> Result<(), Vec<String>> {
    validate("req", doc_index, &specs().requests, schema, value)
}

/// The validator of `method route`'s request body schema, if the operation has one.
pub(crate) fn request_body_validator(
    method: &str,
    route: &str,
) -> Option<Arc<jsonschema::Validator>> {
    let docs = &specs().requests;
    let (i, op) = operation(docs, method, route)?;
    let schema = body_schema(op)?;
    validator("req", i, docs, schema).ok()
}

fn body_schema(op: &Value) -> Option<&Value> {
    op.pointer("/requestBody/content")
        .and_then(Value::as_object)
        .and_then(|c| c.get("application/json").or_else(|| c.values().next()))
        .and_then(|c| c.get("schema"))
}

fn operation<'a>(docs: &'a [Value], method: &str, route: &str) -> Option<(usize, &'a Value)> {
    docs.iter().enumerate().find_map(|(i, d)| {
        let op = d
            .get("paths")?
            .get(route)?
            .get(method.to_ascii_lowercase())?;
        Some((i, op))
    })
}

fn validator(
    which: &str,
    doc_index: usize,
    docs: &[Value],
    schema: &Value,
) -> Result<Arc<jsonschema::Validator>, Vec<String>> {
    let key = format!("{which}|{doc_index}|{schema}");
    let mut cache = specs().validators.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(&key) {
        return Ok(v.clone());
    }
    let root = json!({"allOf": [schema], "components": docs[doc_index]["components"]});
    let v = Arc::new(
        jsonschema::validator_for(&root)
            .map_err(|e| vec![format!("schema does not compile: {e}")])?,
    );
    cache.insert(key, v.clone());
    Ok(v)
}

fn validate(
    which: &str,
    doc_index: usize,
    docs: &[Value],
    schema: &Value,
    body: &Value,
) -> Result<(), Vec<String>> {
    let validator = validator(which, doc_index, docs, schema)?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("at {}: {e}", e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks a request body against the spec's request schema of `method route` (`route` as an
/// axum template, e.g. `/contacts/{contactId}/tasks`, as `RecordedRequest::route` holds it).
/// A route the spec does not know, or a body on an operation without one, is an error.
pub fn validate_request_body(method: &str, route: &str, body: &Value) -> Result<(), Vec<String>> {
    let docs = &specs().requests;
    let Some((i, op)) = operation(docs, method, route) else {
        return Err(vec![format!("the spec has no operation {method} {route}")]);
    };
    match body_schema(op) {
        Some(s) => validate("req", i, docs, s, body),
        None if body.is_null() || body == &json!({}) => Ok(()),
        None => Err(vec![format!("{method} {route} takes no request body")]),
    }
}

/// Checks an answer against the spec's response schema for its status. `Ok(false)` when the
/// spec declares no schema for that status.
pub fn validate_response(
    method: &str,
    route: &str,
    status: u16,
    body: &Value,
) -> Result<bool, Vec<String>> {
    let docs = &specs().responses;
    let Some((i, op)) = operation(docs, method, route) else {
        return Err(vec![format!("the spec has no operation {method} {route}")]);
    };
    let Some(schema) = op.pointer(&format!(
        "/responses/{status}/content/application~1json/schema"
    )) else {
        return Ok(false);
    };
    validate("resp", i, docs, schema, body).map(|()| true)
}

/// Checks a value against a named response-side component schema of an app.
fn validate_component(app: &str, name: &str, body: &Value) -> Result<(), Vec<String>> {
    let i = APPS.iter().position(|(n, _)| *n == app).expect("known app");
    let docs = &specs().responses;
    validate(
        "resp",
        i,
        docs,
        &json!({"$ref": format!("#/components/schemas/{name}")}),
        body,
    )
}

/// Sends a request to the sandbox and checks the answer's status and shape.
struct Probe {
    sb: Sandbox,
    http: reqwest::Client,
    checked: Vec<String>,
}

impl Probe {
    async fn call(
        &mut self,
        method: Method,
        route: &str,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{}", self.sb.url(), path))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Version", "2021-07-28");
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        self.finish(method.as_str(), route, rb, want).await
    }

    async fn finish(
        &mut self,
        method: &str,
        route: &str,
        rb: reqwest::RequestBuilder,
        want: u16,
    ) -> Value {
        let resp = rb.send().await.expect("request completes");
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.expect("JSON answer");
        assert_eq!(status, want, "{method} {route}: {v}");
        match validate_response(method, route, status, &v) {
            Ok(true) => self.checked.push(format!("{method} {route} {status}")),
            Ok(false) => panic!("the spec has no {status} schema for {method} {route}"),
            Err(errs) => panic!(
                "{method} {route} {status} breaks the spec:\n{}\n{v:#}",
                errs.join("\n")
            ),
        }
        v
    }
}

#[tokio::test]
async fn every_endpoint_answers_in_the_spec_shape() {
    let cfg = SandboxConfig {
        contacts: 400,
        rate_limit: None,
        record_requests: true,
        tokens: vec!["reader=contacts.readonly".parse::<TokenSpec>().unwrap()],
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(cfg).await.unwrap();
    let mut p = Probe {
        sb,
        http: reqwest::Client::new(),
        checked: Vec::new(),
    };
    let loc = p.sb.location_ids()[0].clone();
    let ids = p.sb.store().contact_ids(&loc);

    // Listing: several pages of messy contacts, and the meta block.
    let mut path = format!("/contacts/?locationId={loc}&limit=100");
    for _ in 0..4 {
        let page = p.call(Method::GET, "/contacts/", &path, None, 200).await;
        if let Err(e) = validate_component("contacts", "ContactsMetaSchema", &page["meta"]) {
            panic!("meta breaks ContactsMetaSchema: {e:?}\n{}", page["meta"]);
        }
        match page["meta"]["nextPageUrl"].as_str() {
            Some(next) => path = next.trim_start_matches(&p.sb.url()).to_string(),
            None => break,
        }
    }
    for id in ids.iter().take(150) {
        p.call(
            Method::GET,
            "/contacts/{contactId}",
            &format!("/contacts/{id}"),
            None,
            200,
        )
        .await;
    }
    p.call(
        Method::POST,
        "/contacts/search",
        "/contacts/search",
        Some(json!({"locationId": loc, "pageLimit": 200})),
        200,
    )
    .await;
    p.call(
        Method::POST,
        "/contacts/search",
        "/contacts/search",
        Some(json!({"locationId": loc, "pageLimit": 50, "page": 2,
            "filters": [{"group": "OR", "filters": [
                {"field": "dnd", "operator": "eq", "value": true},
                {"field": "dateUpdated", "operator": "range", "value": {"gte": "2020-01-01"}}]}],
            "sort": [{"field": "dateUpdated", "direction": "desc"}]})),
        200,
    )
    .await;
    let biz = p
        .call(
            Method::GET,
            "/businesses/",
            &format!("/businesses/?locationId={loc}"),
            None,
            200,
        )
        .await;
    let biz_id = biz["businesses"][0]["id"].as_str().unwrap().to_string();
    p.call(
        Method::GET,
        "/contacts/business/{businessId}",
        &format!("/contacts/business/{biz_id}?locationId={loc}&limit=10"),
        None,
        200,
    )
    .await;
    p.call(
        Method::GET,
        "/locations/{locationId}/customFields",
        &format!("/locations/{loc}/customFields"),
        None,
        200,
    )
    .await;

    // Related records of the busiest contacts, and appointments.
    let busy: Vec<&String> = ids
        .iter()
        .filter(|id| p.sb.store().notes(id).len() >= 2)
        .take(20)
        .collect();
    for id in &busy {
        p.call(
            Method::GET,
            "/contacts/{contactId}/tasks",
            &format!("/contacts/{id}/tasks"),
            None,
            200,
        )
        .await;
        p.call(
            Method::GET,
            "/contacts/{contactId}/notes",
            &format!("/contacts/{id}/notes"),
            None,
            200,
        )
        .await;
    }
    let with_events = ids
        .iter()
        .find(|id| !p.sb.store().appointments(id).is_empty())
        .unwrap()
        .clone();
    p.call(
        Method::GET,
        "/contacts/{contactId}/appointments",
        &format!("/contacts/{with_events}/appointments"),
        None,
        200,
    )
    .await;
    let some: Vec<&String> = ids.iter().take(30).collect();
    p.call(
        Method::POST,
        "/locations/{locationId}/tasks/search",
        &format!("/locations/{loc}/tasks/search"),
        Some(json!({"contactId": some, "limit": 50})),
        200,
    )
    .await;

    // Writes.
    let created = p
        .call(
            Method::POST,
            "/contacts/",
            "/contacts/",
            Some(json!({"locationId": loc, "firstName": "Zoë", "lastName": "O'Brien", "email": "zoe@example.com",
                "phone": "+1 888-888-8888", "tags": ["a"], "dateOfBirth": "1990-09-25",
                "customFields": [{"key": "lead_score", "field_value": 12}]})),
            201,
        )
        .await;
    let id = created["contact"]["id"].as_str().unwrap().to_string();
    let cid = format!("/contacts/{id}");
    p.call(
        Method::PUT,
        "/contacts/{contactId}",
        &cid,
        Some(json!({"city": "Dolomite", "dnd": true})),
        200,
    )
    .await;
    p.call(
        Method::POST,
        "/contacts/upsert",
        "/contacts/upsert",
        Some(json!({"locationId": loc, "email": "ZOE@example.com", "companyName": "Acme, Inc."})),
        200,
    )
    .await;
    p.call(
        Method::POST,
        "/contacts/{contactId}/tags",
        &format!("{cid}/tags"),
        Some(json!({"tags": ["b"]})),
        201,
    )
    .await;
    p.call(
        Method::DELETE,
        "/contacts/{contactId}/tags",
        &format!("{cid}/tags"),
        Some(json!({"tags": ["a"]})),
        200,
    )
    .await;
    p.call(
        Method::POST,
        "/contacts/bulk/tags/update/{type}",
        "/contacts/bulk/tags/update/add",
        Some(json!({"locationId": loc, "contacts": [id, ids[0]], "tags": ["bulk"]})),
        201,
    )
    .await;
    let task = p
        .call(
            Method::POST,
            "/contacts/{contactId}/tasks",
            &format!("{cid}/tasks"),
            Some(json!({"title": "Call", "body": "x", "dueDate": "2030-01-01T10:00:00Z", "completed": false})),
            201,
        )
        .await;
    let tid = format!("{cid}/tasks/{}", task["task"]["id"].as_str().unwrap());
    p.call(
        Method::GET,
        "/contacts/{contactId}/tasks/{taskId}",
        &tid,
        None,
        200,
    )
    .await;
    p.call(
        Method::PUT,
        "/contacts/{contactId}/tasks/{taskId}",
        &tid,
        Some(json!({"title": "Call again"})),
        200,
    )
    .await;
    p.call(
        Method::PUT,
        "/contacts/{contactId}/tasks/{taskId}/completed",
        &format!("{tid}/completed"),
        Some(json!({"completed": true})),
        200,
    )
    .await;
    p.call(
        Method::DELETE,
        "/contacts/{contactId}/tasks/{taskId}",
        &tid,
        None,
        200,
    )
    .await;
    let note = p
        .call(
            Method::POST,
            "/contacts/{contactId}/notes",
            &format!("{cid}/notes"),
            Some(json!({"body": "a\nb"})),
            201,
        )
        .await;
    let nid = format!("{cid}/notes/{}", note["note"]["id"].as_str().unwrap());
    p.call(
        Method::GET,
        "/contacts/{contactId}/notes/{id}",
        &nid,
        None,
        200,
    )
    .await;
    p.call(
        Method::PUT,
        "/contacts/{contactId}/notes/{id}",
        &nid,
        Some(json!({"body": "c", "pinned": true})),
        200,
    )
    .await;
    p.call(
        Method::DELETE,
        "/contacts/{contactId}/notes/{id}",
        &nid,
        None,
        200,
    )
    .await;
    probe_bulk_actions(&mut p, &loc, &id, &ids).await;
    p.call(Method::DELETE, "/contacts/{contactId}", &cid, None, 200)
        .await;
    // A contact that is gone: GHL's 400 "Contact not found", in the BadRequestDTO shape.
    for (method, route, path) in [
        (Method::GET, "/contacts/{contactId}", cid.clone()),
        (
            Method::GET,
            "/contacts/{contactId}/notes",
            format!("{cid}/notes"),
        ),
        (
            Method::GET,
            "/contacts/{contactId}/tasks",
            format!("{cid}/tasks"),
        ),
        (
            Method::GET,
            "/contacts/{contactId}/appointments",
            format!("{cid}/appointments"),
        ),
        (Method::DELETE, "/contacts/{contactId}", cid.clone()),
        (Method::GET, "/contacts/{contactId}/notes/{id}", nid.clone()),
    ] {
        let v = p.call(method, route, &path, None, 400).await;
        assert_eq!(v["message"], "Contact not found", "{route}");
    }

    // OAuth.
    let rt =
        p.sb.issue_refresh_token(&["contacts.readonly", "contacts.write"]);
    let form = [
        ("client_id", OAUTH_CLIENT_ID),
        ("client_secret", OAUTH_CLIENT_SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let rb = p
        .http
        .post(format!("{}/oauth/token", p.sb.url()))
        .form(&form);
    p.finish("POST", "/oauth/token", rb, 200).await;

    // Every request this test sent is valid by the spec's request schemas.
    for r in p.sb.recorded_requests() {
        if let Some(body) = &r.body {
            if let Err(e) = validate_request_body(&r.method, &r.route, body) {
                panic!(
                    "request {} {} breaks the spec: {e:?}\n{body}",
                    r.method, r.route
                );
            }
        }
    }

    // Error answers use the common schemas.
    let bad_token = p
        .http
        .get(format!("{}/contacts/{}", p.sb.url(), ids[1]))
        .bearer_auth("nope")
        .header("Version", "2021-07-28");
    p.finish("GET", "/contacts/{contactId}", bad_token, 401)
        .await;
    let no_scope = p
        .http
        .post(format!("{}/contacts/", p.sb.url()))
        .bearer_auth("reader")
        .header("Version", "2021-07-28")
        .json(&json!({"locationId": loc}));
    p.finish("POST", "/contacts/", no_scope, 401).await;
    let no_version = p
        .http
        .get(format!("{}/contacts/{}/tasks", p.sb.url(), ids[1]))
        .bearer_auth(DEFAULT_TOKEN);
    p.finish("GET", "/contacts/{contactId}/tasks", no_version, 400)
        .await;
    p.call(
        Method::POST,
        "/contacts/",
        "/contacts/",
        Some(json!({"locationId": loc, "emails": []})),
        422,
    )
    .await;
    p.call(
        Method::GET,
        "/contacts/",
        &format!("/contacts/?locationId={loc}&limit=1000"),
        None,
        422,
    )
    .await;
    p.call(
        Method::POST,
        "/contacts/{contactId}/notes",
        &format!("/contacts/{}/notes", ids[2]),
        Some(json!({})),
        422,
    )
    .await;

    p.call(
        Method::POST,
        "/locations/{locationId}/customFields",
        &format!("/locations/{loc}/customFields"),
        Some(json!({"dataType": "TEXT"})),
        422,
    )
    .await;

    let covered: std::collections::HashSet<&str> = p
        .checked
        .iter()
        .map(|c| c.rsplit_once(' ').map_or(c.as_str(), |(r, _)| r))
        .collect();
    assert!(
        covered.len() >= 34,
        "only {} operations checked: {covered:?}",
        covered.len()
    );
    p.sb.shutdown().await;
}

/// Duplicate search, custom-field creation, enrolments, followers and the bulk routes, for
/// contact `id` (which has the e-mail `zoe@example.com`) and seeded contacts `ids`.
async fn probe_bulk_actions(p: &mut Probe, loc: &str, id: &str, ids: &[String]) {
    let dup = "/contacts/search/duplicate";
    let found = p
        .call(
            Method::GET,
            dup,
            &format!("{dup}?locationId={loc}&email=ZOE%40example.com"),
            None,
            200,
        )
        .await;
    assert_eq!(found["contact"]["id"], json!(id));
    let none = p
        .call(
            Method::GET,
            dup,
            &format!("{dup}?locationId={loc}&number=%2B15550000000"),
            None,
            200,
        )
        .await;
    assert_eq!(none, json!({"contact": null}));
    let neither = format!("{dup}?locationId={loc}");
    p.call(Method::GET, dup, &neither, None, 400).await;
    let again = json!({"locationId": loc, "email": "zoe@EXAMPLE.com"});
    let refused = p
        .call(Method::POST, "/contacts/", "/contacts/", Some(again), 400)
        .await;
    assert_eq!(refused["meta"]["contactId"], json!(id));
    let fields = format!("/locations/{loc}/customFields");
    let route = "/locations/{locationId}/customFields";
    for body in [
        json!({"name": "Shoe Size", "dataType": "NUMERICAL", "placeholder": "EU", "position": 10, "model": "contact"}),
        json!({"name": "Tier", "dataType": "SINGLE_OPTIONS", "fieldKey": "tier", "options": ["Gold", "Silver"]}),
        json!({"name": "Signed NDA", "dataType": "FILE_UPLOAD", "isMultipleFile": true, "maxNumberOfFiles": 2}),
    ] {
        p.call(Method::POST, route, &fields, Some(body), 201).await;
    }
    let store = p.sb.store();
    let (wid, camp) = (
        store.workflow_ids(loc)[0].clone(),
        store.campaign_ids(loc)[0].clone(),
    );
    let users = store.user_ids(loc);
    let biz = store.business_ids(loc)[0].clone();
    let wf = "/contacts/{contactId}/workflow/{workflowId}";
    let wf_path = format!("/contacts/{id}/workflow/{wid}");
    let start = json!({"eventStartTime": "2030-06-23T03:30:00+01:00"});
    p.call(Method::POST, wf, &wf_path, Some(start.clone()), 200)
        .await;
    p.call(Method::DELETE, wf, &wf_path, Some(json!({})), 200)
        .await;
    let unknown = p
        .call(
            Method::POST,
            wf,
            &format!("/contacts/{id}/workflow/nope"),
            Some(start),
            400,
        )
        .await;
    assert_eq!(unknown["message"], "Workflow not found");
    let cp = "/contacts/{contactId}/campaigns/{campaignId}";
    let cp_path = format!("/contacts/{id}/campaigns/{camp}");
    p.call(Method::POST, cp, &cp_path, Some(json!({})), 201)
        .await;
    p.call(Method::DELETE, cp, &cp_path, None, 200).await;
    let all = "/contacts/{contactId}/campaigns/removeAll";
    p.call(
        Method::DELETE,
        all,
        &format!("/contacts/{id}/campaigns/removeAll"),
        None,
        200,
    )
    .await;
    let fl = "/contacts/{contactId}/followers";
    let fl_path = format!("/contacts/{id}/followers");
    p.call(
        Method::POST,
        fl,
        &fl_path,
        Some(json!({"followers": users[..2]})),
        201,
    )
    .await;
    p.call(
        Method::DELETE,
        fl,
        &fl_path,
        Some(json!({"followers": [users[0]]})),
        200,
    )
    .await;

    let business = "/contacts/bulk/business";
    let moved = p
        .call(
            Method::POST,
            business,
            business,
            Some(json!({"locationId": loc, "ids": [id, ids[3]], "businessId": biz})),
            200,
        )
        .await;
    assert_eq!(moved["ids"], json!([id, ids[3]]));
    p.call(
        Method::POST,
        business,
        business,
        Some(json!({"locationId": loc, "ids": [ids[3]], "businessId": null})),
        200,
    )
    .await;
    p.sb.set_bulk_limit(1);
    let bulk = "/contacts/bulk/tags/update/{type}";
    let too_many = json!({"locationId": loc, "contacts": [id, ids[0]], "tags": ["x"]});
    p.call(
        Method::POST,
        bulk,
        "/contacts/bulk/tags/update/add",
        Some(too_many),
        422,
    )
    .await;
    p.sb.set_bulk_limit(100);
}

#[test]
fn request_validation_accepts_valid_and_names_what_is_wrong() {
    let ok = [
        (
            "POST",
            "/contacts/",
            json!({"locationId": "L", "firstName": null, "email": "a@b.co",
            "dateOfBirth": "1990-09-25", "customFields": [{"id": "x", "field_value": 5}]}),
        ),
        (
            "POST",
            "/contacts/upsert",
            json!({"locationId": "L", "phone": "+1 555", "tags": ["a"]}),
        ),
        (
            "PUT",
            "/contacts/{contactId}",
            json!({"tags": [], "customFields": [{"key": "k", "field_value": ["a", "b"]}]}),
        ),
        (
            "POST",
            "/contacts/search",
            json!({"locationId": "L", "pageLimit": 500, "searchAfter": [1, "x"],
            "filters": [{"field": "dateUpdated", "operator": "range", "value": {"gte": "2024-01-01"}}]}),
        ),
        (
            "POST",
            "/contacts/{contactId}/tasks",
            json!({"title": "t", "dueDate": "2030-01-01T00:00:00Z", "completed": false}),
        ),
        ("POST", "/contacts/{contactId}/notes", json!({"body": "b"})),
        (
            "POST",
            "/contacts/bulk/tags/update/{type}",
            json!({"contacts": ["a"], "tags": ["t"], "locationId": "L"}),
        ),
        (
            "POST",
            "/locations/{locationId}/tasks/search",
            json!({"contactId": ["a"], "limit": 100, "skip": 0}),
        ),
        ("GET", "/contacts/{contactId}", Value::Null),
        (
            "POST",
            "/locations/{locationId}/customFields",
            json!({"name": "Tier", "dataType": "SINGLE_OPTIONS", "fieldKey": "tier", "options": ["a"]}),
        ),
        (
            "POST",
            "/contacts/{contactId}/followers",
            json!({"followers": ["u1"]}),
        ),
        (
            "POST",
            "/contacts/bulk/business",
            json!({"locationId": "L", "ids": ["a"], "businessId": null}),
        ),
        (
            "DELETE",
            "/contacts/{contactId}/workflow/{workflowId}",
            json!({"eventStartTime": "2030-01-01T00:00:00Z"}),
        ),
    ];
    for (m, r, b) in ok {
        assert_eq!(validate_request_body(m, r, &b), Ok(()), "{m} {r} {b}");
    }
    let bad = [
        (
            "POST",
            "/contacts/",
            json!({"firstName": "A"}),
            "locationId",
        ),
        (
            "POST",
            "/contacts/",
            json!({"locationId": "L", "nickname": "x"}),
            "nickname",
        ),
        (
            "PUT",
            "/contacts/{contactId}",
            json!({"companyName": "X"}),
            "companyName",
        ),
        (
            "PUT",
            "/contacts/{contactId}",
            json!({"tags": "a,b"}),
            "tags",
        ),
        (
            "POST",
            "/contacts/search",
            json!({"locationId": "L"}),
            "pageLimit",
        ),
        (
            "POST",
            "/contacts/search",
            json!({"locationId": "L", "pageLimit": 501}),
            "500",
        ),
        (
            "POST",
            "/contacts/{contactId}/tasks",
            json!({"title": "t", "completed": "no"}),
            "dueDate",
        ),
        (
            "POST",
            "/contacts/{contactId}/notes",
            json!({"text": "b"}),
            "body",
        ),
        ("POST", "/contacts/nowhere", json!({}), "no operation"),
        (
            "POST",
            "/contacts/{contactId}/campaigns/{campaignId}",
            json!({"when": 1}),
            "when",
        ),
        (
            "POST",
            "/contacts/bulk/business",
            json!({"locationId": "L", "ids": ["a"]}),
            "businessId",
        ),
        (
            "POST",
            "/locations/{locationId}/customFields",
            json!({"name": "X", "dataType": "TEXT", "colour": "red"}),
            "colour",
        ),
        (
            "GET",
            "/contacts/{contactId}",
            json!({"x": 1}),
            "no request body",
        ),
    ];
    for (m, r, b, needle) in bad {
        let errs =
            validate_request_body(m, r, &b).expect_err(&format!("{m} {r} {b} should be refused"));
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{m} {r} {b}: {errs:?} lacks {needle}"
        );
    }
}

#[test]
fn response_patches_keep_the_spec_strict_where_it_is_clear() {
    // R1 lets null through, but a wrong type still fails.
    let contact = json!({"contact": {"id": "x", "email": null, "tags": ["a"], "customFields": [{"id": "f", "value": [1, 2]}]}});
    assert_eq!(
        validate_response("GET", "/contacts/{contactId}", 200, &contact),
        Ok(true)
    );
    let wrong = json!({"contact": {"id": 5}});
    assert!(validate_response("GET", "/contacts/{contactId}", 200, &wrong).is_err());
    let wrong = json!({"contact": {"dnd": "yes"}});
    assert!(validate_response("GET", "/contacts/{contactId}", 200, &wrong).is_err());
    let dnd = json!({"contact": {"dndSettings": {"SMS": {"status": "sometimes"}}}});
    assert!(
        validate_response("GET", "/contacts/{contactId}", 200, &dnd).is_err(),
        "enums still hold"
    );
    let unprocessable =
        json!({"statusCode": 422, "message": "not a list", "error": "Unprocessable Entity"});
    assert!(validate_response("POST", "/contacts/", 422, &unprocessable).is_err());
    assert_eq!(
        validate_response("GET", "/contacts/{contactId}", 404, &json!({})),
        Ok(false)
    );
    // R6: the duplicate search answers a contact or null, and nothing else.
    let dup = "/contacts/search/duplicate";
    assert_eq!(
        validate_response("GET", dup, 200, &json!({"contact": null})),
        Ok(true)
    );
    assert!(validate_response("GET", dup, 200, &json!({"contact": "x"})).is_err());
}
