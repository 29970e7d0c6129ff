//! What the API documents for each table, and the mapping used when no file is given.
//!
//! The field lists come from the Contacts API spec (`GetContectByIdSchema` and
//! `ContactsSearchSchema` for contacts, `TaskSchema`, `GetNoteSchema`, `GetEventSchema`);
//! they serve both as the default export's columns and as the known first fields that
//! mapping paths are checked against. Fields the API sends beyond these are still readable
//! with a quoted path; the default export does not guess at them.

use super::path::{parse_path, CustomRef, Path, Root};
use super::plan::{ColumnPlan, OnError};
use super::{CustomFieldInfo, Mapping, TableMapping};
use crate::table::{ColumnType, TableKind};

use ColumnType::{Bool, Json, ListString, String as Str, Timestamp};

const DND_CHANNELS: [&str; 6] = ["Call", "Email", "SMS", "WhatsApp", "GMB", "FB"];
const DND_FIELDS: [&str; 3] = ["status", "message", "code"];
const ATTRIBUTION_FIELDS: [&str; 18] = [
    "url",
    "campaign",
    "utmSource",
    "utmMedium",
    "utmContent",
    "referrer",
    "campaignId",
    "fbclid",
    "gclid",
    "msclikid",
    "dclid",
    "fbc",
    "fbp",
    "fbEventId",
    "userAgent",
    "ip",
    "medium",
    "mediumId",
];

/// Contact fields in spec order. `None` marks the nested objects expanded below.
const CONTACT_FIELDS: &[(&str, Option<ColumnType>)] = &[
    ("id", Some(Str)),
    ("name", Some(Str)),
    ("locationId", Some(Str)),
    ("firstName", Some(Str)),
    ("lastName", Some(Str)),
    ("email", Some(Str)),
    ("emailLowerCase", Some(Str)),
    ("timezone", Some(Str)),
    ("companyName", Some(Str)),
    ("phone", Some(Str)),
    ("dnd", Some(Bool)),
    ("dndSettings", None),
    ("type", Some(Str)),
    ("source", Some(Str)),
    ("assignedTo", Some(Str)),
    ("address1", Some(Str)),
    ("city", Some(Str)),
    ("state", Some(Str)),
    ("country", Some(Str)),
    ("postalCode", Some(Str)),
    ("website", Some(Str)),
    ("tags", Some(ListString)),
    // Kept as text: the wire sends several date shapes here, and the export must not lose one.
    ("dateOfBirth", Some(Str)),
    ("dateAdded", Some(Timestamp)),
    ("dateUpdated", Some(Timestamp)),
    ("attachments", Some(Str)),
    ("ssn", Some(Str)),
    ("keyword", Some(Str)),
    ("firstNameLowerCase", Some(Str)),
    ("fullNameLowerCase", Some(Str)),
    ("lastNameLowerCase", Some(Str)),
    ("lastActivity", Some(Timestamp)),
    ("businessId", Some(Str)),
    ("attributionSource", None),
    ("lastAttributionSource", None),
    ("visitorId", Some(Str)),
    ("attributions", Some(Json)),
    ("followers", Some(ListString)),
];

/// Contact fields other contact schemas of the spec document (create, update, upsert
/// answers), accepted as path roots but not exported by default.
const CONTACT_EXTRA_ROOTS: &[&str] = &[
    "customFields",
    "gender",
    "inboundDndSettings",
    "deleted",
    "bounceEmail",
    "unsubscribeEmail",
    "birthMonth",
    "birthDay",
    "lastSessionActivityAt",
    "offers",
    "products",
];

const TASK_FIELDS: &[(&str, ColumnType)] = &[
    ("id", Str),
    ("title", Str),
    ("body", Str),
    ("assignedTo", Str),
    ("dueDate", Timestamp),
    ("completed", Bool),
    ("contactId", Str),
];

const NOTE_FIELDS: &[(&str, ColumnType)] = &[
    ("id", Str),
    ("body", Str),
    ("userId", Str),
    ("dateAdded", Timestamp),
    ("contactId", Str),
    ("title", Str),
    ("color", Str),
    ("pinned", Bool),
];

const APPOINTMENT_FIELDS: &[(&str, ColumnType)] = &[
    ("id", Str),
    ("calendarId", Str),
    ("status", Str),
    ("title", Str),
    ("assignedUserId", Str),
    ("notes", Str),
    ("startTime", Timestamp),
    ("endTime", Timestamp),
    ("address", Str),
    ("locationId", Str),
    ("contactId", Str),
    ("groupId", Str),
    ("appointmentStatus", Str),
    ("users", ListString),
    ("dateAdded", Timestamp),
    ("dateUpdated", Timestamp),
    ("assignedResources", ListString),
];

/// The first path fields the API documents for a table.
pub(crate) fn known_roots(kind: TableKind) -> Vec<&'static str> {
    match kind {
        TableKind::Contacts => CONTACT_FIELDS
            .iter()
            .map(|(f, _)| *f)
            .chain(CONTACT_EXTRA_ROOTS.iter().copied())
            .collect(),
        TableKind::Tasks => TASK_FIELDS.iter().map(|(f, _)| *f).collect(),
        TableKind::Notes => NOTE_FIELDS.iter().map(|(f, _)| *f).collect(),
        TableKind::Appointments => APPOINTMENT_FIELDS.iter().map(|(f, _)| *f).collect(),
        // Not a mapping table: `listen` writes its events with columns of its own.
        TableKind::Events => Vec::new(),
    }
}

/// Every documented contact field as `(dotted path, type)`, nested objects flattened.
fn contact_columns() -> Vec<(String, ColumnType)> {
    let mut out = Vec::new();
    for (field, ty) in CONTACT_FIELDS {
        match (field, ty) {
            (_, Some(ty)) => out.push((field.to_string(), *ty)),
            (&"dndSettings", None) => {
                for ch in DND_CHANNELS {
                    for leaf in DND_FIELDS {
                        out.push((format!("dndSettings.{ch}.{leaf}"), Str));
                    }
                }
            }
            (_, None) => {
                for leaf in ATTRIBUTION_FIELDS {
                    out.push((format!("{field}.{leaf}"), Str));
                }
            }
        }
    }
    out
}

/// The column type for a custom field's `dataType`.
fn custom_type(data_type: Option<&str>) -> ColumnType {
    match data_type.map(str::to_ascii_uppercase).as_deref() {
        Some("NUMERICAL") => ColumnType::Float,
        // Money is exact: a decimal with cents, not a float that turns 0.1 + 0.2 into 0.30000000000000004.
        Some("MONETORY" | "MONETARY") => ColumnType::Decimal {
            precision: 18,
            scale: 2,
        },
        Some("CHECKBOX" | "MULTIPLE_OPTIONS") => ListString,
        // GHL answers a date field in epoch milliseconds, time of day included: a timestamp
        // keeps it, so a migration writes back the instant it read.
        Some("DATE") => ColumnType::Timestamp,
        Some("FILE_UPLOAD" | "TEXTBOX_LIST") => Json,
        _ => Str,
    }
}

fn column(name: String, ty: ColumnType, source: Path) -> ColumnPlan {
    ColumnPlan {
        name,
        ty,
        source: Some(source),
        steps: Vec::new(),
        required: false,
        on_error: OnError::Null,
        optional: false,
        at: (0, 0),
    }
}

fn field_column(name: &str, ty: ColumnType) -> Option<ColumnPlan> {
    // The field lists above are constants of valid paths; a failure here would be a typo in
    // them, caught by the tests, so skipping is never reached at run time.
    parse_path(name, (0, 0))
        .ok()
        .map(|p| column(name.to_string(), ty, p))
}

fn table(kind: TableKind, columns: Vec<ColumnPlan>) -> TableMapping {
    TableMapping::new(kind, columns, Vec::new(), ";".to_string(), OnError::Null)
}

fn child(kind: TableKind, fields: &[(&str, ColumnType)]) -> TableMapping {
    let mut columns: Vec<ColumnPlan> = ["$contact_id", "$location_id"]
        .iter()
        .zip(["contact_id", "location_id"])
        .filter_map(|(path, name)| {
            parse_path(path, (0, 0))
                .ok()
                .map(|p| column(name.to_string(), Str, p))
        })
        .collect();
    columns.extend(fields.iter().filter_map(|(f, ty)| field_column(f, *ty)));
    table(kind, columns)
}

/// The column each custom field gets in a default export, by field id: its name, or
/// `custom.NAME` (`custom.NAME.ID`) where that would clash. A load that carries every custom
/// field of an export finds their values under these names.
pub fn custom_field_columns(custom_fields: &[CustomFieldInfo]) -> Vec<(String, String)> {
    let m = default_for(custom_fields);
    let Some(contacts) = m.table(TableKind::Contacts) else {
        return Vec::new();
    };
    contacts
        .columns
        .iter()
        .filter_map(|c| match &c.source.as_ref()?.root {
            Root::Custom(CustomRef::Id(id)) => Some((id.clone(), c.name.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn default_for(custom_fields: &[CustomFieldInfo]) -> Mapping {
    let mut contacts: Vec<ColumnPlan> = contact_columns()
        .into_iter()
        .filter_map(|(name, ty)| field_column(&name, ty))
        .collect();
    if custom_fields.is_empty() {
        // Without the location's field list (none exist, or the token may not read them)
        // the values still leave, raw, rather than being dropped.
        contacts.extend(field_column("customFields", Json));
    }
    for cf in custom_fields {
        let taken = |n: &str| contacts.iter().any(|c| c.name == n);
        let mut name = cf.name.clone();
        if name.trim().is_empty() || taken(&name) {
            name = format!("custom.{}", cf.name);
        }
        if taken(&name) {
            name = format!("custom.{}.{}", cf.name, cf.id);
        }
        let source = Path {
            text: format!("custom.id.{}", cf.id),
            root: Root::Custom(CustomRef::Id(cf.id.clone())),
            segs: Vec::new(),
        };
        contacts.push(column(name, custom_type(cf.data_type.as_deref()), source));
    }
    Mapping {
        direction: super::Direction::Export,
        file: "(default mapping)".to_string(),
        csv_safe: None,
        list_separator: None,
        tables: vec![
            table(TableKind::Contacts, contacts),
            child(TableKind::Tasks, TASK_FIELDS),
            child(TableKind::Notes, NOTE_FIELDS),
            child(TableKind::Appointments, APPOINTMENT_FIELDS),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{RecordContext, RowOutcome};
    use crate::table::Value;
    use serde_json::json;

    fn info(id: &str, name: &str, ty: &str) -> CustomFieldInfo {
        CustomFieldInfo {
            id: id.into(),
            name: name.into(),
            field_key: None,
            data_type: Some(ty.into()),
        }
    }

    #[test]
    fn every_default_path_parses() {
        let m = default_for(&[]);
        let contacts = m
            .table(TableKind::Contacts)
            .unwrap_or_else(|| panic!("contacts"));
        // 36 top-level fields (3 nested ones expanded): 18 dnd + 2 * 18 attribution columns.
        // Plus the raw `customFields` column, as no custom fields were given.
        assert_eq!(
            contacts.schema().columns.len(),
            CONTACT_FIELDS.len() - 3 + 18 + 36 + 1
        );
        let last = contacts
            .schema()
            .columns
            .last()
            .map(|c| (c.name.as_str(), c.ty));
        assert_eq!(last, Some(("customFields", Json)));
        for (kind, n) in [
            (TableKind::Tasks, TASK_FIELDS.len()),
            (TableKind::Notes, NOTE_FIELDS.len()),
            (TableKind::Appointments, APPOINTMENT_FIELDS.len()),
        ] {
            let t = m.table(kind).unwrap_or_else(|| panic!("{kind}"));
            assert_eq!(t.schema().columns.len(), n + 2);
            assert_eq!(t.schema().columns[0].name, "contact_id");
            assert_eq!(t.schema().columns[1].name, "location_id");
        }
    }

    #[test]
    fn custom_fields_become_typed_columns_named_after_them() {
        let m = default_for(&[
            info("cf1", "Lead Score", "NUMERICAL"),
            info("cf2", "Interests", "MULTIPLE_OPTIONS"),
            info("cf3", "email", "TEXT"),
            info("cf4", "Contract", "FILE_UPLOAD"),
            info("cf5", "Signup date", "DATE"),
        ]);
        let t = m
            .table(TableKind::Contacts)
            .unwrap_or_else(|| panic!("contacts"));
        let cols = &t.schema().columns;
        let find = |n: &str| cols.iter().find(|c| c.name == n).map(|c| c.ty);
        assert_eq!(find("Lead Score"), Some(ColumnType::Float));
        assert_eq!(find("Interests"), Some(ListString));
        assert_eq!(find("custom.email"), Some(Str));
        assert_eq!(find("Contract"), Some(Json));
        assert_eq!(find("Signup date"), Some(ColumnType::Timestamp));
        assert_eq!(find("customFields"), None);
        assert!(!m.uses_custom_fields());

        let rec = json!({
            "id": "c1", "email": "a@b.c", "dnd": true, "tags": ["x"],
            "dateAdded": "2021-07-02T05:18:26.704Z",
            "dndSettings": {"Email": {"status": "active"}},
            "customFields": [
                {"id": "cf1", "value": 7.5},
                {"id": "cf2", "value": ["a", "b"]},
                {"id": "cf3", "value": "other@x.y"},
                {"id": "cf4", "value": {"url": "https://f"}}
            ]
        });
        let ctx = RecordContext {
            location_id: "L",
            contact_id: None,
        };
        let RowOutcome::Row(row) = t.apply(&rec, &ctx) else {
            panic!("not a row")
        };
        let cell = |n: &str| {
            let i = cols
                .iter()
                .position(|c| c.name == n)
                .unwrap_or_else(|| panic!("{n}"));
            row[i].clone()
        };
        assert_eq!(cell("dnd"), Value::Bool(true));
        assert_eq!(cell("tags"), Value::List(vec!["x".into()]));
        assert_eq!(cell("dateAdded"), Value::Timestamp(1_625_203_106_704));
        assert_eq!(
            cell("dndSettings.Email.status"),
            Value::String("active".into())
        );
        assert_eq!(cell("Lead Score"), Value::Float(7.5));
        assert_eq!(cell("Interests"), Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(cell("custom.email"), Value::String("other@x.y".into()));
        assert_eq!(cell("Contract"), Value::Json(json!({"url": "https://f"})));
        assert_eq!(cell("city"), Value::Null);
    }

    #[test]
    fn default_never_rejects_odd_values() {
        let m = default_for(&[]);
        let t = m
            .table(TableKind::Contacts)
            .unwrap_or_else(|| panic!("contacts"));
        let rec = json!({"id": "c1", "dnd": "perhaps", "dateAdded": "soon"});
        let ctx = RecordContext {
            location_id: "L",
            contact_id: None,
        };
        assert!(matches!(t.apply(&rec, &ctx), RowOutcome::Row(_)));
    }

    #[test]
    fn child_tables_carry_parent_ids() {
        let m = default_for(&[]);
        let t = m.table(TableKind::Tasks).unwrap_or_else(|| panic!("tasks"));
        let rec = json!({"id": "t1", "title": "Call", "completed": false, "dueDate": "2021-07-08T02:30:00.000Z"});
        let ctx = RecordContext {
            location_id: "L",
            contact_id: Some("c9"),
        };
        let RowOutcome::Row(row) = t.apply(&rec, &ctx) else {
            panic!("not a row")
        };
        assert_eq!(row[0], Value::String("c9".into()));
        assert_eq!(row[1], Value::String("L".into()));
        assert_eq!(row[2], Value::String("t1".into()));
    }
}
