//! What a client sent, checked against GHL's official OpenAPI specs (`tests/spec/`, patched as
//! `spec.rs` lists): every request the sandbox recorded, method, path, query string, headers
//! and body. [`crate::util::sandbox`] records every test's traffic and checks it when the
//! sandbox is shut down (or dropped), so any test that runs the binary against it fails on a
//! request the spec does not allow, naming the request.
//!
//! Also here: the sandbox's own request-body tables (what its handlers accept) held against
//! the spec's schemas, so that a property the spec does not have cannot be accepted silently.

use ghl_etl::sandbox::tables::{body_tables, P};
use ghl_etl::sandbox::RecordedRequest;
use jsonschema::error::ValidationErrorKind;
use serde_json::{json, Value};

use crate::spec::{request_body_validator, request_operation, validate_request_value};

/// Checks one recorded request; answers every way it breaks the spec.
pub fn check_request(r: &RecordedRequest) -> Result<(), Vec<String>> {
    let Some((doc, op)) = request_operation(&r.method, &r.route) else {
        return Err(vec![format!(
            "the spec has no operation {} {}",
            r.method, r.route
        )]);
    };
    let mut errors = Vec::new();
    let params: Vec<&Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let declared = |place: &str, name: &str| {
        params.iter().copied().find(|p| {
            p["in"] == place
                && p["name"].as_str().is_some_and(|n| {
                    n.eq_ignore_ascii_case(name) && (place == "header" || n == name)
                })
        })
    };
    for (name, value) in &r.query {
        match declared("query", name) {
            None => errors.push(format!("query parameter `{name}` is not in the spec")),
            Some(p) => errors.extend(check_param(doc, p, value)),
        }
    }
    for (name, value) in path_params(&r.route, &r.path) {
        if let Some(p) = declared("path", &name) {
            errors.extend(check_param(doc, p, &value));
        }
    }
    for p in &params {
        let (Some(name), Some(place)) = (p["name"].as_str(), p["in"].as_str()) else {
            continue;
        };
        if p["required"] != true {
            continue;
        }
        match place {
            "query" if !r.query.iter().any(|(k, _)| k == name) => {
                errors.push(format!("required query parameter `{name}` is missing"));
            }
            "header" => match header(r, name) {
                None => errors.push(format!("required header `{name}` is missing")),
                Some(v) => errors.extend(check_param(doc, p, v)),
            },
            _ => {}
        }
    }
    errors.extend(check_auth(r, op));
    errors.extend(check_body(r, op));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn header<'a>(r: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parameter's text as the JSON value its schema types it, then checked by the schema.
fn check_param(doc: usize, p: &Value, text: &str) -> Vec<String> {
    let name = p["name"].as_str().unwrap_or("?");
    let schema = &p["schema"];
    let value = match schema["type"].as_str() {
        Some("number") => text.parse::<f64>().ok().map(|n| json!(n)),
        Some("integer") => text.parse::<i64>().ok().map(|n| json!(n)),
        Some("boolean") => text.parse::<bool>().ok().map(|b| json!(b)),
        _ => Some(json!(text)),
    };
    let Some(value) = value else {
        return vec![format!(
            "parameter `{name}` = {text:?} is not a {}",
            schema["type"]
        )];
    };
    match validate_request_value(doc, schema, &value) {
        Ok(()) => Vec::new(),
        Err(e) => e
            .into_iter()
            .map(|e| format!("parameter `{name}` = {text:?}: {e}"))
            .collect(),
    }
}

/// The path's segments where the template has `{name}`.
fn path_params(route: &str, path: &str) -> Vec<(String, String)> {
    let (t, p): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), path.split('/').collect());
    t.iter()
        .zip(&p)
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_string(), p.to_string()))
        })
        .collect()
}

/// An operation with a security requirement needs a bearer token (every scheme the specs
/// declare is HTTP bearer).
fn check_auth(r: &RecordedRequest, op: &Value) -> Option<String> {
    let needs = op["security"].as_array().is_some_and(|s| !s.is_empty());
    let scheme = header(r, "authorization");
    match (needs, scheme) {
        (true, Some(s)) if s.eq_ignore_ascii_case("bearer") => None,
        (true, _) => Some(format!("needs `Authorization: Bearer …`, sent {scheme:?}")),
        (false, _) => None,
    }
}

fn check_body(r: &RecordedRequest, op: &Value) -> Vec<String> {
    let content = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object);
    if r.unreadable_body {
        return vec!["the body is neither JSON nor a form".into()];
    }
    let Some(body) = &r.body else {
        return match content {
            Some(_) if op.pointer("/requestBody/required") == Some(&json!(true)) => {
                vec!["the spec requires a body; none was sent".into()]
            }
            _ => Vec::new(),
        };
    };
    let mut errors = Vec::new();
    if let Some(content) = content {
        let sent = header(r, "content-type").unwrap_or("");
        let media = sent.split(';').next().unwrap_or("").trim();
        if !content.contains_key(media) {
            let want: Vec<&String> = content.keys().collect();
            errors.push(format!("content-type `{sent}`, the spec takes {want:?}"));
        }
    }
    if let Err(e) = crate::spec::validate_request_body(&r.method, &r.route, body) {
        errors.extend(e.into_iter().map(|e| format!("body {e}")));
    }
    errors
}

/// Every recorded request checked; the violations, each naming its request (at most 20).
pub fn check_traffic(recorded: &[RecordedRequest]) -> Result<(), String> {
    let mut out = Vec::new();
    let mut bad = 0;
    for r in recorded {
        if let Err(errors) = check_request(r) {
            bad += 1;
            if out.len() < 20 {
                let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push(format!(
                    "{} {}?{} (route {}):\n  {}",
                    r.method,
                    r.path,
                    query.join("&"),
                    r.route,
                    errors.join("\n  ")
                ));
            }
        }
    }
    if bad == 0 {
        return Ok(());
    }
    Err(format!(
        "{bad} of {} requests break the official spec:\n{}",
        recorded.len(),
        out.join("\n")
    ))
}

/// A value of each kind the sandbox's tables accept.
fn samples(kind: P) -> Vec<Value> {
    match kind {
        P::Str => vec![json!("x")],
        P::StrN => vec![json!("x"), Value::Null],
        P::Email => vec![json!("a@example.com")],
        P::Bool => vec![json!(true)],
        P::Num => vec![json!(1)],
        P::StrArr => vec![json!(["a"])],
        P::Arr => vec![json!([])],
        P::Obj => vec![json!({})],
        P::CustomFields => vec![json!([{"id": "f1", "field_value": "x"}])],
        P::Any => vec![json!("1990-01-31")],
        P::OneOf(values) => values.iter().map(|v| json!(v)).collect(),
    }
}

/// Each table's properties, each with a value of its kind, are allowed by the spec's schema
/// of that route (patches included), and each table requires what the spec requires.
#[test]
fn the_sandboxs_body_tables_accept_only_what_the_spec_allows() {
    let mut wrong = Vec::new();
    for t in body_tables() {
        let accepts_nothing = t.dtos.iter().all(|d| d.is_empty());
        let Some(v) = request_body_validator(t.method, t.route) else {
            if !accepts_nothing {
                wrong.push(format!(
                    "{} {}: the spec has no body schema",
                    t.method, t.route
                ));
            }
            continue;
        };
        for (name, kind) in t.dtos.iter().flat_map(|d| d.iter()) {
            for sample in samples(*kind) {
                let body = json!({ *name: sample });
                let errs: Vec<String> = v
                    .iter_errors(&body)
                    .filter(|e| !matches!(e.kind, ValidationErrorKind::Required { .. }))
                    .map(|e| format!("at {}: {e}", e.instance_path))
                    .collect();
                if !errs.is_empty() {
                    wrong.push(format!(
                        "{} {}: the sandbox accepts `{name}` = {sample}, the spec does not: {}",
                        t.method,
                        t.route,
                        errs.join("; ")
                    ));
                }
            }
        }
        let mut full = serde_json::Map::new();
        for (name, kind) in t.dtos.iter().flat_map(|d| d.iter()) {
            if t.required.contains(name) {
                full.insert(name.to_string(), samples(*kind).remove(0));
            }
        }
        for e in v.iter_errors(&Value::Object(full)) {
            if let ValidationErrorKind::Required { property } = &e.kind {
                wrong.push(format!(
                    "{} {}: the spec requires {property}; the sandbox does not",
                    t.method, t.route
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The check fires: a request of each kind of fault is named with what is wrong.
#[test]
fn the_traffic_check_names_each_kind_of_violation() {
    let req =
        |method: &str, route: &str, path: &str, query: &[(&str, &str)], body: Option<Value>| {
            RecordedRequest {
                method: method.into(),
                route: route.into(),
                path: path.into(),
                query: query
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                headers: vec![
                    ("authorization".into(), "Bearer".into()),
                    ("version".into(), "2021-07-28".into()),
                    ("content-type".into(), "application/json".into()),
                ],
                body,
                unreadable_body: false,
            }
        };
    let good = req(
        "GET",
        "/contacts/",
        "/contacts/",
        &[("locationId", "L"), ("limit", "100")],
        None,
    );
    assert_eq!(check_request(&good), Ok(()));
    let cases = [
        (
            req("GET", "/nope", "/nope", &[], None),
            "the spec has no operation GET /nope",
        ),
        (
            req(
                "GET",
                "/contacts/",
                "/contacts/",
                &[("locationId", "L"), ("pageSize", "5")],
                None,
            ),
            "query parameter `pageSize` is not in the spec",
        ),
        (
            req("GET", "/contacts/", "/contacts/", &[], None),
            "required query parameter `locationId` is missing",
        ),
        (
            req(
                "GET",
                "/contacts/",
                "/contacts/",
                &[("locationId", "L"), ("limit", "ten")],
                None,
            ),
            "parameter `limit` = \"ten\" is not a \"number\"",
        ),
        (
            req(
                "POST",
                "/contacts/upsert",
                "/contacts/upsert",
                &[],
                Some(json!({"locationId": "L", "nickname": "x"})),
            ),
            "body at : Additional properties are not allowed ('nickname' was unexpected)",
        ),
        (
            req("POST", "/contacts/upsert", "/contacts/upsert", &[], None),
            "the spec requires a body; none was sent",
        ),
    ];
    for (r, says) in cases {
        let errs = check_request(&r).expect_err(&format!("{r:?} should break the spec"));
        assert!(
            errs.iter().any(|e| e.contains(says)),
            "{says:?} not in {errs:?}"
        );
    }
    let mut no_version = good.clone();
    no_version.headers.retain(|(k, _)| k != "version");
    let errs = check_request(&no_version).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("required header `Version` is missing")),
        "{errs:?}"
    );
    let mut old_version = good.clone();
    old_version.headers[1].1 = "2021-04-15".into();
    assert!(check_request(&old_version).is_err());
    let mut no_token = good;
    no_token.headers.retain(|(k, _)| k != "authorization");
    let errs = check_request(&no_token).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("needs `Authorization: Bearer")),
        "{errs:?}"
    );
}
