//! A location seeded from a fixture folder: data as GHL's API answers for one location, made
//! by something other than this sandbox's generator (`custom-fields.json`, the answer of
//! `GET /locations/{id}/customFields`; `contacts.ndjson`, `tasks.ndjson`, `notes.ndjson`, one
//! record per line as `GET /contacts/{id}`, `/tasks` and `/notes` answer). Every field of
//! every record is kept as given, unknown ones included; what the sandbox assigns anew is
//! the ids of contacts and custom fields (its ids encode the location), the location id, and
//! the references to them (`contactId`, `customFields[].id`, `locationId`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::store::{Child, Store};

/// The records of a fixture folder.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub custom_fields: Vec<Value>,
    pub contacts: Vec<Value>,
    pub tasks: Vec<Value>,
    pub notes: Vec<Value>,
}

/// What seeding made of the fixture's ids.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Fixture contact id → sandbox contact id.
    pub contacts: HashMap<String, String>,
    /// Fixture custom-field id → sandbox custom-field id.
    pub fields: HashMap<String, String>,
}

impl Fixture {
    /// Read a fixture folder; every file is optional but `contacts.ndjson`.
    pub fn read(dir: &Path) -> Result<Fixture, String> {
        let lines = |name: &str| -> Result<Vec<Value>, String> {
            let path = dir.join(name);
            if !path.exists() && name != "contacts.ndjson" {
                return Ok(Vec::new());
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
                })
                .collect()
        };
        let fields_path = dir.join("custom-fields.json");
        let custom_fields = match std::fs::read_to_string(&fields_path) {
            Ok(text) => {
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: {e}", fields_path.display()))?;
                v.get("customFields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        Ok(Fixture {
            custom_fields,
            contacts: lines("contacts.ndjson")?,
            tasks: lines("tasks.ndjson")?,
            notes: lines("notes.ndjson")?,
        })
    }
}

impl Store {
    /// Seed `location` (created without contacts or custom fields) with a fixture.
    pub fn seed_fixture(&self, location: &str, fx: &Fixture) -> Result<Seeded, String> {
        let li = self
            .loc_index(location)
            .ok_or_else(|| format!("no location {location}"))?;
        let mut seeded = Seeded::default();
        for f in &fx.custom_fields {
            let old = f["id"].as_str().unwrap_or_default().to_string();
            let key = f["fieldKey"].as_str().unwrap_or(&old).to_string();
            let made = self.create_custom_field(li, &key, |id| {
                let mut v = f.clone();
                v["id"] = json!(id);
                v["locationId"] = json!(location);
                v
            });
            let made = made.ok_or_else(|| format!("custom field key {key} twice"))?;
            seeded
                .fields
                .insert(old, made["id"].as_str().unwrap_or_default().into());
        }
        for c in &fx.contacts {
            let Value::Object(record) = c else {
                return Err("a contact is not a JSON object".into());
            };
            let made = self.create_contact(li, |m| fill(m, record, location, &seeded.fields));
            let old = record.get("id").and_then(Value::as_str).unwrap_or_default();
            seeded
                .contacts
                .insert(old.into(), made["id"].as_str().unwrap_or_default().into());
        }
        self.seed_children(Child::Tasks, &fx.tasks, &seeded)?;
        self.seed_children(Child::Notes, &fx.notes, &seeded)?;
        Ok(seeded)
    }

    fn seed_children(&self, kind: Child, records: &[Value], seeded: &Seeded) -> Result<(), String> {
        for r in records {
            let old = r["contactId"].as_str().unwrap_or_default();
            let Some(id) = seeded.contacts.get(old) else {
                return Err(format!(
                    "a child names contact {old}, which the fixture lacks"
                ));
            };
            let (_, raw) = self
                .decode(id)
                .ok_or("a seeded contact id does not decode")?;
            let mut child = r.clone();
            child["contactId"] = json!(id);
            self.with_children(raw, kind, |list| list.push(child));
        }
        Ok(())
    }
}

/// A fixture contact's fields onto a new record: all of them, but the ids it refers to.
fn fill(
    m: &mut Map<String, Value>,
    record: &Map<String, Value>,
    location: &str,
    fields: &HashMap<String, String>,
) {
    let id = m.get("id").cloned();
    for (k, v) in record {
        m.insert(k.clone(), v.clone());
    }
    if let Some(id) = id {
        m.insert("id".into(), id);
    }
    m.insert("locationId".into(), json!(location));
    if let Some(Value::Array(values)) = m.get_mut("customFields") {
        for v in values {
            let old = v["id"].as_str().unwrap_or_default();
            if let Some(new) = fields.get(old) {
                v["id"] = json!(new);
            }
        }
    }
}
