//! What a load mapping (`direction = "load"`) may name: its columns are request-body fields, and
//! its paths read input columns.

use super::*;

/// The request-body fields a load mapping may write, per table, from the spec's request
/// schemas (`UpsertContactDto` and `UpdateContactDto`; `CreateTaskParams`; `NotesDTO`), less
/// `locationId` (the command sets it), plus the keys a load joins on: the source record's
/// `id`, and a child's parent `contact_id` (or `contact_email` / `contact_phone` to name an
/// existing contact of the target). Custom fields are written as `customFields."Name"`.
pub(crate) const LOAD_CONTACT_FIELDS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "name",
    "email",
    "gender",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "dnd",
    "dndSettings",
    "inboundDndSettings",
    "tags",
    "source",
    "dateOfBirth",
    "country",
    "companyName",
    "assignedTo",
];
pub(crate) const LOAD_TASK_FIELDS: &[&str] = &[
    "id",
    "contact_id",
    "contact_email",
    "contact_phone",
    "title",
    "body",
    "dueDate",
    "completed",
    "assignedTo",
];
pub(crate) const LOAD_NOTE_FIELDS: &[&str] = &[
    "id",
    "contact_id",
    "contact_email",
    "contact_phone",
    "body",
    "userId",
];

/// The fields a load mapping's columns may name for `kind`.
pub(crate) fn load_fields(kind: TableKind) -> &'static [&'static str] {
    match kind {
        TableKind::Contacts => LOAD_CONTACT_FIELDS,
        TableKind::Tasks => LOAD_TASK_FIELDS,
        TableKind::Notes => LOAD_NOTE_FIELDS,
        TableKind::Appointments | TableKind::Events => &[],
    }
}

impl Cx<'_, '_> {
    /// In a load mapping a path reads the input row: any column name will do, but not a GHL
    /// custom field (those are what the mapping writes).
    pub(super) fn check_load_root(&mut self, path: &Path, at: Range<usize>) -> bool {
        if matches!(path.root, Root::Custom(_)) {
            self.diag.error(
                at,
                "a load mapping reads input columns; `custom.` names a GHL custom field",
                Some("name the input column (quote it if it has spaces: `\"Lead Score\"`), and write the custom field as the column name: `name = 'customFields.\"Lead Score\"'`".into()),
            );
            return false;
        }
        true
    }

    /// A load column's name must be a field of the table's request body, or a custom field.
    pub(super) fn check_load_name(
        &mut self,
        name: &str,
        kind: TableKind,
        at: Range<usize>,
    ) -> bool {
        let fields = load_fields(kind);
        if fields.contains(&name) {
            return true;
        }
        if kind == TableKind::Contacts {
            if let Some(rest) = name.strip_prefix("customFields.") {
                if !rest.trim_matches('"').is_empty() {
                    return true;
                }
            }
        }
        let custom = if kind == TableKind::Contacts {
            ", or `customFields.\"Name\"` for a custom field"
        } else {
            ""
        };
        let help = did_you_mean(name, fields.iter().copied())
            .unwrap_or_else(|| format!("expected one of: {}{custom}", one_of(fields)));
        self.diag.error(
            at,
            format!(
                "`{name}` is not a field a {} can be written with",
                singular(kind)
            ),
            Some(help),
        );
        false
    }
}
