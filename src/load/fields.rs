//! Custom fields in the target location: each `customFields."Name"` column of the mapping (and
//! the `--external-id` field) resolved by name to the target's field id, or created once before
//! the first row with `--create-missing-fields` (its type from the mapping column's type).
//! A name the target lacks otherwise fails the rows that carry a value for it.
//!
//! File-upload fields hold links to files GHL hosts for the source location: such a value is
//! never written (it would dangle); the row's report says it was not carried.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::api::Client;
use crate::exit::{JobError, Result};
use crate::mapping::{custom_field_id, CustomFieldInfo, Mapping};
use crate::table::{ColumnType, TableKind};

/// Target custom fields by the names the mapping uses.
#[derive(Debug, Default)]
pub struct TargetFields {
    /// Name → id, for names the target has.
    ids: HashMap<String, String>,
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

/// The custom-field names the mapping writes, with their column types.
fn wanted(mapping: &Mapping) -> Vec<(String, ColumnType)> {
    let Some(t) = mapping.table(TableKind::Contacts) else {
        return Vec::new();
    };
    t.schema()
        .columns
        .iter()
        .filter_map(|c| {
            let name = c.name.strip_prefix("customFields.")?;
            Some((name.trim_matches('"').to_string(), c.ty))
        })
        .collect()
}

/// Create a custom field exactly once: a create whose answer was lost (a 5xx, a dropped
/// connection) may have acted, so the location's fields are read again before another try.
async fn create_once(
    client: &Client,
    location: &str,
    name: &str,
    data_type: &str,
) -> Result<crate::api::model::CustomField> {
    use crate::api::ErrorKind;
    let mut attempt = 0u32;
    loop {
        match client.create_custom_field(location, name, data_type).await {
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
    /// Read the target's fields and settle every name: found, created, or missing.
    pub async fn resolve(
        client: &Client,
        location: &str,
        mapping: &Mapping,
        external_id: Option<&str>,
        create_missing: bool,
        dry_run: bool,
    ) -> Result<TargetFields> {
        let mut names = wanted(mapping);
        if let Some(x) = external_id {
            names.push((x.to_string(), ColumnType::String));
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
        for (name, ty) in names {
            match custom_field_id(&name, &fields) {
                Ok(id) => {
                    let info = fields.iter().find(|f| f.id == id);
                    if info.and_then(|f| f.data_type.as_deref()) == Some("FILE_UPLOAD") {
                        out.files.push(name.clone());
                    }
                    out.ids.insert(name, id.to_string());
                }
                Err(_) if create_missing && !dry_run => {
                    let f = create_once(client, location, &name, data_type(ty)).await?;
                    tracing::info!(field = %name, id = %f.id, "Created a custom field in the target location.");
                    out.ids.insert(name.clone(), f.id.clone());
                    out.created.push(name);
                    fields.push(CustomFieldInfo::from(f));
                }
                Err(why) => {
                    let fix = if dry_run && create_missing {
                        "it would be created (--create-missing-fields)".to_string()
                    } else {
                        format!("{why}; pass --create-missing-fields to create it")
                    };
                    out.missing.insert(name, fix);
                }
            }
        }
        if let Some(x) = external_id {
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

    /// A row's custom values as `(id, value)` pairs.
    pub fn pairs(&self, custom: &[(String, Json)]) -> Resolved {
        let mut r = Resolved {
            pairs: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        };
        for (name, value) in custom {
            if self.files.contains(name) {
                r.notes.push(format!(
                    "file-upload field `{name}` not carried (its files are hosted by the source location)"
                ));
            } else if let Some(id) = self.ids.get(name) {
                r.pairs.push((id.clone(), value.clone()));
            } else if let Some(why) = self.missing.get(name) {
                r.errors.push(format!("custom field `{name}`: {why}"));
            }
        }
        r
    }
}
