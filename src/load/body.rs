//! A mapped input row → the parts of a request: the keys a load joins on (`id`, a child's
//! `contact_id` / `contact_email` / `contact_phone`), the body fields, custom fields by name
//! (resolved against the target later), and tags (sent through the tags endpoints, not the
//! body, unless `--tags replace`).
//!
//! A null or empty value is left out of the body, as GHL's own CSV import does by default
//! ("don't overwrite with empty values"): a migration fills fields, it never blanks what the
//! target already holds. `--empty clear` sends an empty text field or custom field as `""`
//! instead, which clears it; the match keys (`email`, `phone`, ids) and tags are never cleared.

use serde_json::{Map, Value as Json};

use crate::table::{ColumnType, Row, TableSchema, Value};

/// The join keys of a row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    /// The source record's id (or, in `update`/`delete` mode, the target contact's id).
    pub id: Option<String>,
    /// A task's or note's contact: its source id (through the id map), or its email or phone
    /// in the target.
    pub contact_id: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
}

/// One row, split by where each value goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    pub keys: Keys,
    pub fields: Map<String, Json>,
    /// `customFields."Name"` columns: (name, value).
    pub custom: Vec<(String, Json)>,
    /// The custom fields `custom_fields = "all"` carries: (name, value as the input holds it).
    pub carried: Vec<(String, Option<Json>)>,
    pub tags: Option<Vec<String>>,
}

impl Body {
    pub fn email(&self) -> Option<&str> {
        self.fields.get("email").and_then(Json::as_str)
    }

    pub fn phone(&self) -> Option<&str> {
        self.fields.get("phone").and_then(Json::as_str)
    }

    /// The body to send, with custom fields given as `(id, value)` pairs.
    pub fn request(&self, custom: &[(String, Json)], with_tags: bool) -> Json {
        let mut body = self.fields.clone();
        if !custom.is_empty() {
            let list: Vec<Json> = custom
                .iter()
                .map(|(id, v)| serde_json::json!({"id": id, "field_value": v}))
                .collect();
            body.insert("customFields".into(), Json::Array(list));
        }
        if with_tags {
            if let Some(tags) = &self.tags {
                body.insert("tags".into(), serde_json::json!(tags));
            }
        }
        Json::Object(body)
    }
}

/// Split a mapped row by column name. `clears`: an empty cell clears its field
/// (`--empty clear`) instead of leaving it alone.
pub fn body_of(schema: &TableSchema, row: Row, clears: bool) -> Body {
    let mut body = Body::default();
    for (col, value) in schema.columns.iter().zip(row) {
        let Some(json) = json_of(value, col.ty) else {
            if clears && clearable(&col.name, col.ty) {
                body.set(&col.name, Json::String(String::new()));
            }
            continue;
        };
        let text = || {
            json.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| json.to_string())
        };
        match col.name.as_str() {
            "id" => body.keys.id = Some(text()),
            "contact_id" => body.keys.contact_id = Some(text()),
            "contact_email" => body.keys.contact_email = Some(text()),
            "contact_phone" => body.keys.contact_phone = Some(text()),
            "tags" => body.tags = Some(tags_of(&json)),
            name => body.set(name, json),
        }
    }
    body
}

impl Body {
    /// A body field or, for `customFields."Name"`, a custom value.
    fn set(&mut self, name: &str, json: Json) {
        match name.strip_prefix("customFields.") {
            Some(field) => self
                .custom
                .push((field.trim_matches('"').to_string(), json)),
            None => {
                self.fields.insert(name.to_string(), json);
            }
        }
    }
}

/// Whether `--empty clear` sends an empty value for the column: text fields and custom
/// fields, never a key a row is matched or joined by, nor tags.
fn clearable(name: &str, ty: ColumnType) -> bool {
    let key = matches!(
        name,
        "id" | "contact_id" | "contact_email" | "contact_phone" | "email" | "phone" | "tags"
    );
    !key && (name.starts_with("customFields.") || ty == ColumnType::String)
}

/// Tags from a list, or from one cell of `;`- or `,`-separated names.
fn tags_of(v: &Json) -> Vec<String> {
    let mut tags: Vec<String> = match v {
        Json::Array(items) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        Json::String(s) => s.split([';', ',']).map(str::to_string).collect(),
        other => vec![other.to_string()],
    };
    for t in &mut tags {
        *t = t.trim().to_string();
    }
    tags.retain(|t| !t.is_empty());
    tags
}

/// A cell as request JSON; `None` for null and empty text. Text of spaces is text: GHL
/// stores it, and a migration carries it back as it was.
pub fn json_of(value: Value, ty: ColumnType) -> Option<Json> {
    Some(match value {
        Value::Null => return None,
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) => Json::String(s),
        Value::Int(i) => Json::from(i),
        // JSON has one kind of number: a whole float is written as an integer (`72`, not
        // `72.0`), as the API itself answers it.
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Json::from(f as i64),
        Value::Float(f) => serde_json::Number::from_f64(f).map(Json::Number)?,
        Value::Decimal(d) => {
            let scale = match ty {
                ColumnType::Decimal { scale, .. } => scale as i32,
                _ => 0,
            };
            let v = d as f64 / 10f64.powi(scale);
            serde_json::Number::from_f64(v).map(Json::Number)?
        }
        Value::Bool(b) => Json::Bool(b),
        Value::Date(days) => {
            let d = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)?;
            Json::String(d.format("%Y-%m-%d").to_string())
        }
        Value::Timestamp(ms) => Json::String(
            chrono::DateTime::from_timestamp_millis(ms)?
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        Value::List(items) if items.is_empty() => return None,
        Value::List(items) => serde_json::json!(items),
        Value::Json(Json::Null) => return None,
        Value::Json(j) => j,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, TableKind};

    fn schema(cols: &[(&str, ColumnType)]) -> TableSchema {
        TableSchema {
            table: TableKind::Contacts,
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    ty: *t,
                })
                .collect(),
        }
    }

    #[test]
    fn rows_split_into_keys_fields_custom_fields_and_tags() {
        let s = schema(&[
            ("id", ColumnType::String),
            ("email", ColumnType::String),
            ("firstName", ColumnType::String),
            ("customFields.\"Lead Score\"", ColumnType::Int),
            ("tags", ColumnType::String),
            ("dateOfBirth", ColumnType::Date),
        ]);
        let b = body_of(
            &s,
            vec![
                Value::String("src-1".into()),
                Value::String("a@b.co".into()),
                Value::String("  ".into()),
                Value::Int(7),
                Value::String("vip; lead ;".into()),
                Value::Date(0),
            ],
            false,
        );
        assert_eq!(b.keys.id.as_deref(), Some("src-1"));
        assert_eq!(b.email(), Some("a@b.co"));
        assert_eq!(b.fields["firstName"], "  ", "text of spaces is text");
        assert_eq!(b.fields["dateOfBirth"], "1970-01-01");
        assert_eq!(b.custom, vec![("Lead Score".to_string(), Json::from(7))]);
        assert_eq!(b.tags, Some(vec!["vip".to_string(), "lead".to_string()]));
        let req = b.request(&[("cf1".into(), Json::from(7))], false);
        assert_eq!(req["customFields"][0]["field_value"], 7);
        assert!(
            req.get("tags").is_none(),
            "tags stay out of the body by default"
        );
        assert_eq!(b.request(&[], true)["tags"][1], "lead");
    }

    #[test]
    fn empty_cells_clear_text_and_custom_fields_only_when_asked() {
        let s = schema(&[
            ("email", ColumnType::String),
            ("firstName", ColumnType::String),
            ("customFields.\"Lead Score\"", ColumnType::Int),
            ("dnd", ColumnType::Bool),
            ("tags", ColumnType::String),
        ]);
        let row = || {
            vec![
                Value::Null,
                Value::String(String::new()),
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        };
        let kept = body_of(&s, row(), false);
        assert!(kept.fields.is_empty() && kept.custom.is_empty());
        let cleared = body_of(&s, row(), true);
        assert_eq!(cleared.fields.len(), 1, "{:?}", cleared.fields);
        assert_eq!(cleared.fields["firstName"], "");
        assert_eq!(
            cleared.custom,
            vec![("Lead Score".to_string(), Json::from(""))]
        );
        assert_eq!(cleared.tags, None);
    }

    #[test]
    fn typed_cells_become_request_json() {
        let dec = ColumnType::Decimal {
            precision: 18,
            scale: 2,
        };
        assert_eq!(
            json_of(Value::Decimal(12345), dec),
            Some(Json::from(123.45))
        );
        assert_eq!(
            json_of(Value::Timestamp(86_400_000), ColumnType::Timestamp),
            Some(Json::String("1970-01-02T00:00:00.000Z".into()))
        );
        assert_eq!(json_of(Value::Null, ColumnType::String), None);
        assert_eq!(json_of(Value::List(vec![]), ColumnType::ListString), None);
    }
}
