//! Custom fields in the target location: each `customFields."Name"` column of the mapping (and
//! the `--external-id` field) resolved by name to the target's field id, or created once before
//! the first row with `--create-missing-fields` (its type from the mapping column's type).
//! A name the target lacks otherwise fails the rows that carry a value for it.
//!
//! File-upload fields hold links to files GHL hosts for the source location: such a value is
//! never written (it would dangle); the row's report says it was not carried.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::carry::{typed, Carried};
use super::plan::LoadPlan;
use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::mapping::{custom_field_id, CustomFieldInfo, Mapping};
use crate::table::{ColumnType, TableKind};

/// Target custom fields by the names the mapping uses.
#[derive(Debug, Default)]
pub struct TargetFields {
    /// Name → id, for names the target has.
    ids: HashMap<String, String>,
    /// Name → the target field's `dataType` (carried values are typed by it).
    types: HashMap<String, String>,
    /// Name → why it cannot be written.
    missing: HashMap<String, String>,
    /// Names of file-upload fields (never carried).
    files: Vec<String>,
    /// Fields created by this run.
    pub created: Vec<String>,
}

/// What the rows' custom values become.
pub struct Resolved {
    pub pairs: Vec<(String, Json)>,
    /// Values that could not be written, and why: the row fails.
    pub errors: Vec<String>,
    /// Values left out on purpose (file uploads), for the report.
    pub notes: Vec<String>,
}

/// GHL `dataType` for a field created from a mapping column of type `ty`.
fn data_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Int | ColumnType::Float => "NUMERICAL",
        ColumnType::Decimal { .. } => "MONETORY",
        ColumnType::Date | ColumnType::Timestamp => "DATE",
        ColumnType::ListString => "MULTIPLE_OPTIONS",
        ColumnType::Bool => "CHECKBOX",
        ColumnType::String | ColumnType::Json => "TEXT",
    }
}

/// A custom field the load writes: its name, and the type and options to create it with.
struct Wanted {
    name: String,
    data_type: String,
    options: Vec<String>,
    /// The source field holds files (never carried, never created).
    files: bool,
}

/// The custom fields the mapping writes (less the columns the input lacks), then those
/// `custom_fields = "all"` carries.
fn wanted(mapping: &Mapping, absent: &[String], carried: Option<&Carried>) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    if let Some(t) = mapping.table(TableKind::Contacts) {
        for c in t
            .schema()
            .columns
            .iter()
            .filter(|c| !absent.contains(&c.name))
        {
            let Some(name) = c.name.strip_prefix("customFields.") else {
                continue;
            };
            out.push(Wanted {
                name: name.trim_matches('"').to_string(),
                data_type: data_type(c.ty).to_string(),
                options: Vec::new(),
                files: false,
            });
        }
    }
    for f in carried.map(|c| c.fields.as_slice()).unwrap_or_default() {
        out.push(Wanted {
            name: f.name.clone(),
            data_type: f.data_type.clone(),
            options: f.options.clone(),
            files: f.data_type.eq_ignore_ascii_case("FILE_UPLOAD"),
        });
    }
    out
}

/// Create a custom field exactly once: a create whose answer was lost (a 5xx, a dropped
/// connection) may have acted, so the location's fields are read again before another try.
async fn create_once(
    client: &Client,
    location: &str,
    want: &Wanted,
) -> Result<crate::api::model::CustomField> {
    let name = want.name.as_str();
    use crate::api::ErrorKind;
    let mut attempt = 0u32;
    loop {
        let created = client
            .create_custom_field(location, name, &want.data_type, &want.options)
            .await;
        match created {
            Ok(f) => return Ok(f),
            Err(e)
                if attempt < 5
                    && matches!(
                        e.kind,
                        ErrorKind::Server | ErrorKind::Transport | ErrorKind::Decode { .. }
                    ) =>
            {
                let existing = client.custom_fields(location).await?;
                if let Some(f) = existing
                    .into_iter()
                    .find(|f| f.name.as_deref() == Some(name))
                {
                    return Ok(f);
                }
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl TargetFields {
    /// Read the target's fields and settle every name: found, created, or missing. `absent`:
    /// the mapping's columns the input lacks (optional ones), which create nothing.
    pub async fn resolve(
        client: &Client,
        plan: &LoadPlan,
        absent: &[String],
        carried: Option<&Carried>,
    ) -> Result<TargetFields> {
        let location = plan.location.as_str();
        let mut names = wanted(&plan.mapping.mapping, absent, carried);
        if let Some(x) = &plan.external_id {
            names.push(Wanted {
                name: x.clone(),
                data_type: "TEXT".into(),
                options: Vec::new(),
                files: false,
            });
        }
        let mut out = TargetFields::default();
        if names.is_empty() {
            return Ok(out);
        }
        let mut fields: Vec<CustomFieldInfo> = client
            .custom_fields(location)
            .await?
            .into_iter()
            .map(CustomFieldInfo::from)
            .collect();
        let create = plan.create_missing_fields;
        for want in names {
            let name = want.name.clone();
            match custom_field_id(&name, &fields) {
                _ if want.files => out.files.push(name),
                Ok(id) => {
                    let info = fields.iter().find(|f| f.id == id);
                    let ty = info.and_then(|f| f.data_type.clone()).unwrap_or_default();
                    if ty == "FILE_UPLOAD" {
                        out.files.push(name.clone());
                    }
                    out.types.insert(name.clone(), ty);
                    out.ids.insert(name, id.to_string());
                }
                Err(_) if create && !plan.dry_run => {
                    let f = create_once(client, location, &want).await?;
                    tracing::info!(field = %name, id = %f.id, "Created a custom field in the target location.");
                    out.ids.insert(name.clone(), f.id.clone());
                    out.types.insert(name.clone(), want.data_type.clone());
                    out.created.push(name);
                    fields.push(CustomFieldInfo::from(f));
                }
                Err(why) => {
                    let fix = if plan.dry_run && create {
                        "it would be created (--create-missing-fields)".to_string()
                    } else {
                        format!("{why}; pass --create-missing-fields to create it")
                    };
                    out.missing.insert(name, fix);
                }
            }
        }
        if let Some(x) = &plan.external_id {
            if let Some(why) = out.missing.get(x) {
                return Err(JobError::usage(format!(
                    "--external-id: custom field `{x}` is not in location {location}: {why}"
                )));
            }
        }
        Ok(out)
    }

    /// The id of a field by the name the mapping (or `--external-id`) uses.
    pub fn id(&self, name: &str) -> Option<&str> {
        self.ids.get(name).map(String::as_str)
    }

    /// A row's custom values as `(id, value)` pairs: the mapping's columns as they are, the
    /// carried ones typed by the target field. `clears`: a carried field without a value is
    /// sent empty (`--empty clear`).
    pub fn pairs(
        &self,
        custom: &[(String, Json)],
        carried: &[(String, Option<Json>)],
        sep: &str,
        clears: bool,
    ) -> Resolved {
        let mut r = Resolved {
            pairs: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        };
        for (name, value) in custom {
            self.pair(&mut r, name, || Ok(value.clone()));
        }
        for (name, value) in carried {
            let ty = self.types.get(name).map_or("TEXT", String::as_str);
            match value {
                Some(v) => self.pair(&mut r, name, || typed(v, ty, sep)),
                None if clears && !self.files.contains(name) => {
                    self.pair(&mut r, name, || Ok(Json::String(String::new())));
                }
                None => {}
            }
        }
        r
    }

    fn pair(
        &self,
        r: &mut Resolved,
        name: &str,
        value: impl FnOnce() -> std::result::Result<Json, String>,
    ) {
        if self.files.iter().any(|f| f == name) {
            r.notes.push(format!(
                "file-upload field `{name}` not carried (its files are hosted by the source location)"
            ));
        } else if let Some(id) = self.ids.get(name) {
            match value() {
                Ok(v) => r.pairs.push((id.clone(), v)),
                Err(why) => r.errors.push(format!("custom field `{name}`: {why}")),
            }
        } else if let Some(why) = self.missing.get(name) {
            r.errors.push(format!("custom field `{name}`: {why}"));
        }
    }
}
