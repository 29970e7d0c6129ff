//! `custom_fields = "all"`: every custom field of the input, carried by name without the
//! mapping naming any. What the input's custom fields are comes from the source location's
//! definitions, which `ghl-etl export` writes beside the data (`_custom_fields/LOC.json`, the
//! answer of `GET /locations/{id}/customFields`), or `--custom-fields PATH` names. A field's
//! value is read from the column a default export gives it (its name, see
//! [`custom_field_columns`]), or from a raw record's `customFields: [{id, value}]` (an NDJSON
//! export without a mapping). Each value is typed by the target field's `dataType`, and a
//! field the target lacks is created (with `--create-missing-fields`) with the source's type
//! and options. A file-upload field is never carried: its files are hosted by the source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::api::model::CustomField;
use crate::exit::{JobError, Result};
use crate::mapping::{custom_field_columns, CustomFieldInfo, TableMapping};
use crate::table::FIELDS_DIR;

/// One custom field of the source location.
#[derive(Debug, Clone)]
pub struct SourceField {
    pub id: String,
    pub name: String,
    pub data_type: String,
    pub options: Vec<String>,
    /// The input column that holds it (CSV, Parquet), if the input has it.
    column: Option<String>,
}

/// The custom fields a load carries without naming them.
#[derive(Debug, Default)]
pub struct Carried {
    pub fields: Vec<SourceField>,
    /// The input is raw API records: values are in each row's `customFields` list.
    raw: bool,
}

impl Carried {
    /// The fields `mapping` carries from an input with `headers`, if it says `all`. Fields the
    /// mapping names as columns are its own; fields the input has no column for are not
    /// carried (and never created).
    pub fn open(
        mapping: &TableMapping,
        definitions: Option<&Path>,
        headers: &BTreeSet<String>,
    ) -> Result<Option<Carried>> {
        if !mapping.all_custom_fields() {
            return Ok(None);
        }
        let Some(path) = definitions else {
            return Err(JobError::usage(format!(
                "the mapping says `custom_fields = \"all\"`, which needs the source's custom-field definitions: `ghl-etl export` writes them in {FIELDS_DIR}/ beside the data, and none was found beside the contacts input; pass --custom-fields PATH (that folder, or a JSON file as GET /locations/{{id}}/customFields answers), or name each field as a column"
            )));
        };
        let defs = read_definitions(path)?;
        let named: BTreeSet<String> = mapping
            .schema()
            .columns
            .iter()
            .filter_map(|c| c.name.strip_prefix("customFields."))
            .map(|n| n.trim_matches('"').to_string())
            .collect();
        let raw = headers.contains("customFields");
        let infos: Vec<CustomFieldInfo> = defs.iter().cloned().map(Into::into).collect();
        let columns = custom_field_columns(&infos);
        let fields = defs
            .into_iter()
            .filter_map(|f| {
                let name = f.name.clone().unwrap_or_else(|| f.id.clone());
                let column = columns
                    .iter()
                    .find(|(id, col)| *id == f.id && headers.contains(col))
                    .map(|(_, col)| col.clone());
                let carried = (column.is_some() || raw) && !named.contains(&name);
                carried.then(|| SourceField {
                    data_type: f.data_type.clone().unwrap_or_else(|| "TEXT".into()),
                    options: f.picklist_options.clone().unwrap_or_default(),
                    id: f.id,
                    name,
                    column,
                })
            })
            .collect();
        Ok(Some(Carried { fields, raw }))
    }

    /// A row's values of the carried fields, `(name, value)`, as the input holds them;
    /// `None` where the row has no value (an empty cell, null, an empty list).
    pub fn values(&self, row: &Map<String, Json>) -> Vec<(String, Option<Json>)> {
        let raw = self
            .raw
            .then(|| row.get("customFields"))
            .flatten()
            .and_then(Json::as_array);
        self.fields
            .iter()
            .map(|f| {
                let cell = f.column.as_ref().and_then(|c| row.get(c));
                let from_raw = || raw.and_then(|list| raw_value(list, &f.id));
                let value = cell.filter(|v| !is_empty(v)).or_else(from_raw).cloned();
                (f.name.clone(), value.filter(|v| !is_empty(v)))
            })
            .collect()
    }
}

/// A field's value in `[{id, value}]` (also `field_value` / `fieldValue`, as some answers say).
fn raw_value<'a>(list: &'a [Json], id: &str) -> Option<&'a Json> {
    let item = list
        .iter()
        .find(|i| i.get("id").and_then(Json::as_str) == Some(id))?;
    ["value", "field_value", "fieldValue"]
        .iter()
        .find_map(|k| item.get(*k))
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Where the definitions are: `--custom-fields`, else `_custom_fields/` in the contacts
/// input's folder or the folder above it (an export's root, when `contacts/` was given).
pub fn find_definitions(explicit: Option<&Path>, contacts: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let start = contacts?;
    let dir = if start.is_dir() {
        start
    } else {
        start.parent()?
    };
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(FIELDS_DIR))
        .find(|d| d.is_dir())
}

/// Every definition in a file or a folder of files (one per source location), by name: the
/// first of a name wins.
fn read_definitions(path: &Path) -> Result<Vec<CustomField>> {
    let files: Vec<PathBuf> = match path.is_dir() {
        true => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| definitions_error(path, &e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            v.sort();
            v
        }
        false => vec![path.to_path_buf()],
    };
    let mut out: Vec<CustomField> = Vec::new();
    for file in files {
        let text = std::fs::read(&file).map_err(|e| definitions_error(&file, &e.to_string()))?;
        let parsed: Definitions =
            serde_json::from_slice(&text).map_err(|e| definitions_error(&file, &e.to_string()))?;
        for f in parsed.into_fields() {
            if !out.iter().any(|o| o.name == f.name) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// The answer of `GET /locations/{id}/customFields`, or its bare list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Definitions {
    Answer {
        #[serde(rename = "customFields")]
        custom_fields: Vec<CustomField>,
    },
    List(Vec<CustomField>),
}

impl Definitions {
    fn into_fields(self) -> Vec<CustomField> {
        match self {
            Definitions::Answer { custom_fields } | Definitions::List(custom_fields) => {
                custom_fields
            }
        }
    }
}

fn definitions_error(path: &Path, why: &str) -> JobError {
    JobError::usage(format!(
        "cannot read custom-field definitions from {}: {why}; it should hold the answer of GET /locations/{{id}}/customFields, as `ghl-etl export` writes it",
        path.display()
    ))
}

/// A value as a field of GHL `dataType` takes it: numbers for NUMERICAL and MONETORY, a list
/// for CHECKBOX and MULTIPLE_OPTIONS (a text cell split on `sep`), epoch milliseconds for
/// DATE (as GHL answers it), text for the rest. Text is never trimmed or altered.
pub fn typed(value: &Json, data_type: &str, sep: &str) -> std::result::Result<Json, String> {
    match (data_type.to_ascii_uppercase().as_str(), value) {
        ("NUMERICAL" | "MONETORY" | "MONETARY", Json::String(s)) => number(s),
        ("CHECKBOX" | "MULTIPLE_OPTIONS", Json::String(s)) => Ok(Json::Array(
            s.split(sep)
                .filter(|p| !p.is_empty())
                .map(|p| Json::String(p.to_string()))
                .collect(),
        )),
        ("DATE", Json::String(s)) => date_ms(s).map(Json::from),
        ("NUMERICAL" | "MONETORY" | "MONETARY" | "DATE", Json::Number(_)) => Ok(value.clone()),
        ("CHECKBOX" | "MULTIPLE_OPTIONS", Json::Array(_)) => Ok(value.clone()),
        (_, Json::String(_)) => Ok(value.clone()),
        (_, Json::Array(items)) => Ok(Json::String(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(sep),
        )),
        (_, other) => Ok(Json::String(other.to_string())),
    }
}

fn number(s: &str) -> std::result::Result<Json, String> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Json::from(i));
    }
    // JSON has one kind of number, and GHL answers a whole one as an integer (`72`, not
    // `72.0`, which a CSV cell may spell): sent the same way, it reads back the same.
    let whole = |f: f64| f.fract() == 0.0 && f.abs() < 9e15;
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(|f| match whole(f) {
            true => Some(serde_json::Number::from(f as i64)),
            false => serde_json::Number::from_f64(f),
        })
        .map(Json::Number)
        .ok_or_else(|| format!("`{s}` is not a number"))
}

/// Epoch milliseconds of a timestamp, a `YYYY-MM-DD` date (midnight UTC) or digits.
fn date_ms(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        return Ok(dt.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .ok_or_else(|| format!("`{s}` is not a date"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_take_the_target_type_and_keep_text_as_it_is() {
        let t = |v: Json, ty: &str| typed(&v, ty, ";");
        assert_eq!(t(json!("72"), "NUMERICAL"), Ok(json!(72)));
        assert_eq!(t(json!("72.0"), "NUMERICAL"), Ok(json!(72)));
        assert_eq!(t(json!("133.518"), "NUMERICAL"), Ok(json!(133.518)));
        assert_eq!(t(json!("25755.41"), "MONETORY"), Ok(json!(25755.41)));
        assert!(t(json!("lots"), "NUMERICAL").is_err());
        assert_eq!(
            t(json!("Sports;Food & Drink"), "MULTIPLE_OPTIONS"),
            Ok(json!(["Sports", "Food & Drink"]))
        );
        assert_eq!(t(json!(["Sales"]), "CHECKBOX"), Ok(json!(["Sales"])));
        assert_eq!(
            t(json!("2023-03-14T01:04:00.000Z"), "DATE"),
            Ok(json!(1_678_755_840_000i64))
        );
        assert_eq!(
            t(json!(1_678_755_840_000i64), "DATE"),
            Ok(json!(1_678_755_840_000i64))
        );
        assert_eq!(t(json!("1970-01-02"), "DATE"), Ok(json!(86_400_000)));
        let bell = json!("bell\u{7} and vtab\u{b}  ");
        assert_eq!(t(bell.clone(), "LARGE_TEXT"), Ok(bell));
        assert_eq!(t(json!(["a", "b"]), "TEXT"), Ok(json!("a;b")));
        assert_eq!(t(json!(12), "PHONE"), Ok(json!("12")));
    }

    fn field(id: &str, name: &str, ty: &str) -> CustomField {
        CustomField {
            id: id.into(),
            name: Some(name.into()),
            data_type: Some(ty.into()),
            ..Default::default()
        }
    }

    fn carried(mapping: &str, headers: &[&str]) -> Carried {
        let dir = tempfile::tempdir().unwrap();
        let defs = dir.path().join("defs.json");
        let answer = json!({"customFields": [
            field("f1", "Lead Score", "NUMERICAL"),
            field("f2", "Company size", "TEXT"),
            field("f3", "Contract", "FILE_UPLOAD"),
        ]});
        std::fs::write(&defs, answer.to_string()).unwrap();
        let text = format!(
            "version = 1\ndirection = \"load\"\n[contacts]\ncustom_fields = \"all\"\n{mapping}"
        );
        let m = crate::mapping::Mapping::from_str(&text, "m.toml").unwrap();
        let t = m.table(crate::table::TableKind::Contacts).unwrap();
        let h = headers.iter().map(|s| s.to_string()).collect();
        Carried::open(t, Some(&defs), &h).unwrap().unwrap()
    }

    #[test]
    fn export_columns_and_raw_records_both_carry_every_field() {
        let c = carried(
            "[[contacts.columns]]\nname = \"email\"\n",
            &["email", "Lead Score"],
        );
        let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["Lead Score"],
            "only the fields the input has a column for"
        );
        let row = json!({"email": "a@b.c", "Lead Score": "7"});
        let values = c.values(row.as_object().unwrap());
        assert_eq!(values, vec![("Lead Score".to_string(), Some(json!("7")))]);

        let named =
            "[[contacts.columns]]\nname = 'customFields.\"Company size\"'\nfrom = \"size\"\n";
        let c = carried(named, &["customFields", "size"]);
        let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["Lead Score", "Contract"],
            "the mapping's own field is its own"
        );
        let row =
            json!({"customFields": [{"id": "f3", "value": {"u": 1}}, {"id": "f1", "value": 8}]});
        let values = c.values(row.as_object().unwrap());
        assert_eq!(values[0], ("Lead Score".to_string(), Some(json!(8))));
        assert_eq!(values[1], ("Contract".to_string(), Some(json!({"u": 1}))));
    }
}
