//! Request-body validation the way GHL's NestJS whitelist validation answers it: a body is
//! checked against the property list of its DTO, unknown properties are "property X should not
//! exist", and every problem is collected into one 422 `message: [...]` list with
//! class-validator's wording. Also the small helpers every write handler shares: reading a
//! JSON object body, string lists, and tags as GHL stores them (trimmed, lower-cased, unique).
//!
//! Which DTO a route takes, and what happens once a body passes, is left to the handlers
//! ([`super::handlers`], [`super::fields`], [`super::actions`]).

use super::answers::{err_400, err_422, ApiError};
use axum::body::Bytes;
use serde_json::{Map, Value};

/// A request body as a JSON object; an empty body is an empty object.
pub fn body_object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err_422(vec!["body must be a JSON object".into()])),
        Err(e) => Err(err_400(&format!(
            "Unexpected token in JSON at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// Property kinds of the spec's request DTOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P {
    Str,
    /// string or null (`nullable: true` in the spec)
    StrN,
    Email,
    Bool,
    Num,
    StrArr,
    /// An array of anything (`textBoxListOptions`).
    Arr,
    Obj,
    CustomFields,
    /// `dateOfBirth`: typed `object` in the spec but sent as a string on the wire.
    Any,
    /// One of these strings (an `enum` in the spec).
    OneOf(&'static [&'static str]),
}

/// A DTO: property names and kinds.
pub type Dto = &'static [(&'static str, P)];

pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// Checks a body against DTO property lists, as class-validator would; `required` properties
/// must be present and not null.
pub fn check(body: &Map<String, Value>, props: &[Dto], required: &[&str]) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, v) in body {
        match props.iter().flat_map(|p| p.iter()).find(|(n, _)| n == k) {
            None => errs.push(format!("property {k} should not exist")),
            Some((_, kind)) => check_value(k, *kind, v, &mut errs),
        }
    }
    for r in required {
        if body.get(*r).is_none_or_null() {
            errs.push(format!("{r} should not be empty"));
        }
    }
    errs
}

fn check_value(k: &str, kind: P, v: &Value, errs: &mut Vec<String>) {
    let fine = match (kind, v) {
        (P::Any, _) => true,
        (P::StrN | P::Email, Value::Null) => true,
        (P::Str | P::StrN, Value::String(_)) => true,
        (P::Email, Value::String(s)) => {
            if !is_email(s) {
                errs.push(format!("{k} must be an email"));
            }
            true
        }
        (P::Bool, Value::Bool(_)) => true,
        (P::Num, Value::Number(_)) => true,
        (P::Obj, Value::Object(_)) => true,
        (P::Arr, Value::Array(_)) => true,
        (P::StrArr, Value::Array(a)) => {
            if !a.iter().all(Value::is_string) {
                errs.push(format!("each value in {k} must be a string"));
            }
            true
        }
        (P::CustomFields, Value::Array(a)) => {
            check_custom_fields(k, a, errs);
            true
        }
        (P::OneOf(values), Value::String(s)) => {
            if !values.contains(&s.as_str()) {
                errs.push(format!(
                    "{k} must be one of the following values: {}",
                    values.join(", ")
                ));
            }
            true
        }
        _ => false,
    };
    if !fine {
        let want = match kind {
            P::Str | P::StrN | P::Email | P::OneOf(_) => "must be a string",
            P::Bool => "must be a boolean value",
            P::Num => "must be a number conforming to the specified constraints",
            P::StrArr | P::Arr | P::CustomFields => "must be an array",
            P::Obj => "must be an object",
            P::Any => "is invalid",
        };
        errs.push(format!("{k} {want}"));
    }
}

/// `customFields: [{id | key, field_value}]`: the write shape (reads say `value`).
fn check_custom_fields(k: &str, items: &[Value], errs: &mut Vec<String>) {
    for (i, item) in items.iter().enumerate() {
        let Some(o) = item.as_object() else {
            errs.push(format!("{k}.{i} must be an object"));
            continue;
        };
        for key in o.keys() {
            if !["id", "key", "field_value"].contains(&key.as_str()) {
                errs.push(format!("{k}.{i}.property {key} should not exist"));
            }
        }
        if !o
            .get("id")
            .or_else(|| o.get("key"))
            .is_some_and(Value::is_string)
        {
            errs.push(format!("{k}.{i}.id or {k}.{i}.key must be a string"));
        }
    }
}

/// class-validator's `ArrayMaxSize` answer, for bulk requests over the batch limit.
pub fn too_many(name: &str, len: usize, max: usize) -> Option<String> {
    (len > max).then(|| format!("{name} must contain no more than {max} elements"))
}

/// A 422 when there are messages, else nothing.
pub fn refuse(errs: Vec<String>) -> Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(err_422(errs))
    }
}

pub trait NullOrMissing {
    fn is_none_or_null(&self) -> bool;
}

impl NullOrMissing for Option<&Value> {
    fn is_none_or_null(&self) -> bool {
        matches!(self, None | Some(Value::Null))
    }
}

/// The strings of a JSON array (other items and non-arrays give nothing).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Tags as GHL stores them: trimmed, lower-cased, empty ones dropped, each once, in order.
pub fn tag_list(tags: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CREATE: Dto = &[
        ("locationId", P::Str),
        ("email", P::Email),
        ("tags", P::StrArr),
        ("dnd", P::Bool),
        ("customFields", P::CustomFields),
    ];

    #[test]
    fn class_validator_style_messages() {
        let body = json!({"locationId": "L", "email": "not-an-email", "tags": ["a", 1], "bogus": true,
            "dnd": "yes", "customFields": [{"field_value": 1, "value": 2}]});
        let errs = check(body.as_object().unwrap(), &[CREATE], &["locationId"]);
        for want in [
            "email must be an email",
            "each value in tags must be a string",
            "property bogus should not exist",
            "dnd must be a boolean value",
            "customFields.0.property value should not exist",
            "customFields.0.id or customFields.0.key must be a string",
        ] {
            assert!(errs.contains(&want.to_string()), "{want}: {errs:?}");
        }
        let errs = check(&Map::new(), &[CREATE], &["locationId"]);
        assert_eq!(errs, vec!["locationId should not be empty".to_string()]);
        assert_eq!(
            too_many("contacts", 101, 100).as_deref(),
            Some("contacts must contain no more than 100 elements")
        );
        assert_eq!(too_many("contacts", 100, 100), None);
    }

    #[test]
    fn tags_are_lower_cased_trimmed_and_unique() {
        let tags = ["VIP", " vip ", "Ünïcode", "", "b", "B"].map(String::from);
        assert_eq!(tag_list(tags), vec!["vip", "ünïcode", "b"]);
    }
}
