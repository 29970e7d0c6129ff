//! Mapping files: how an exported GHL record (a contact, task, note or appointment, as the
//! raw JSON the API returned) becomes a typed output row.
//!
//! A mapping is loaded once ([`Mapping::from_path`]), checked completely (every problem is
//! reported, each at its `file:line:column`), has its custom-field names resolved against the
//! location ([`Mapping::resolve_custom_fields`]), and is then applied to records
//! ([`TableMapping::apply`]). Without a mapping file, [`Mapping::default_for`] exports every
//! field. This module does not fetch anything and does not write rows: the export pipeline
//! feeds it records and hands its rows to a sink.
//!
//! # File format
//!
//! A mapping is a TOML file. A complete example:
//!
//! ```toml
//! version = 1                # required; the format version
//! csv_safe = true            # CSV output defuses spreadsheet formulas (=, +, -, @)
//! list_separator = ";"       # how list<string> cells are joined in CSV (default ";")
//!
//! [contacts]                 # required: one section per output table
//! filter = [ { field = "dnd", op = "eq", value = false }, { field = "email", op = "exists" } ]
//! on_error = "reject"        # default for the table's columns: "reject" (default) or "null"
//!
//! [[contacts.columns]]       # one block per output column, in output order
//! name = "email"             # the output column name (unique in the table)
//! from = "email"             # where the value comes from (default: the column name)
//! type = "string"            # the output type (default: string)
//! transform = ["trim", "lower"]
//! required = true            # null or empty after transforms rejects the record
//!
//! [[contacts.columns]]
//! name = "full_name"         # no `from`: the template produces the value
//! transform = [{ template = "{firstName} {lastName}" }, "trim"]
//!
//! [[contacts.columns]]
//! name = "lead_score"
//! from = 'custom."Lead Score"'
//! type = "int"
//! on_error = "null"          # an unparseable score becomes null instead of rejecting
//!
//! [tasks]                    # optional: tasks, notes, appointments sections
//! [[tasks.columns]]
//! name = "contact_id"
//! from = "$contact_id"
//! ```
//!
//! ## Sections
//!
//! Top-level keys: `version` (must be `1`), `csv_safe` (bool), `list_separator` (non-empty
//! string), and the table sections `[contacts]` (required), `[tasks]`, `[notes]`,
//! `[appointments]`. A section has `columns` (at least one), an optional `filter` and an
//! optional `on_error`. Unknown keys anywhere are errors, with a suggestion when a known key
//! is close.
//!
//! ## Paths (`from`, `field`, template placeholders, `coalesce`)
//!
//! - `email`, `dndSettings.Email.status`: fields and nested fields of the record.
//! - `attributions[0].utmSource`: an array element by index.
//! - `"field name"`: a quoted name, for names with dots, spaces or brackets. A quoted *first*
//!   field is not checked against the fields the API documents for the table, which is how
//!   to read a field newer than the spec.
//! - `custom."Lead Score"` (or `custom.lead_score`): a contact's custom field by its name or
//!   field key, resolved to an id when the export starts; an unknown name is an error naming
//!   the closest known names. `custom.id.<ID>` reads a custom field by id. Either may be
//!   followed by more path (`custom."Files"[0].url`). Custom fields exist on contacts only.
//! - `$contact_id`, `$location_id`: the parent contact and the location. On contacts,
//!   `$contact_id` is the contact's own id.
//!
//! A path that finds nothing yields null. The first field of an unquoted path must be one the
//! API documents for the table (an error with a suggestion otherwise), so typos are caught
//! at load instead of silently exporting nulls.
//!
//! ## Types
//!
//! | type | accepts |
//! | --- | --- |
//! | `string` (default) | anything: numbers and booleans as JSON spells them, lists joined with `list_separator`, objects as JSON text |
//! | `int` | integers, whole floats (`7.0`), numeric strings |
//! | `float` | numbers, numeric strings |
//! | `decimal(p,s)` | numbers and numeric strings, exactly (no float rounding); rounded half away from zero to `s` places; more than `p` digits is an error. `1 <= p <= 38`, `0 <= s <= p` |
//! | `bool` | `true`/`false`, `1`/`0`, and the strings `true`, `false`, `yes`, `no`, `y`, `n`, `1`, `0` (any case) |
//! | `date` | `YYYY-MM-DD`, or the UTC date of anything `timestamp` accepts |
//! | `timestamp` | RFC 3339 / ISO 8601 (`2021-07-02T05:18:26.704Z`, with or without offset; none means UTC), `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD` (midnight UTC), epoch milliseconds as number or digits |
//! | `list<string>` | arrays (elements as text, nulls dropped); a scalar becomes a one-element list |
//! | `json` | anything, kept as JSON |
//!
//! For every type but `string`, an empty string is null. A value that does not convert is
//! handled by `on_error`: `"reject"` sends the record to the reject file with the column
//! and the reason; `"null"` writes null. A column's `on_error` overrides its table's.
//!
//! ## Transforms
//!
//! `transform` is a list applied in order; each entry is a name or a one-key table:
//!
//! | transform | effect |
//! | --- | --- |
//! | `"trim"`, `"lower"`, `"upper"` | whitespace and case (Unicode-aware); on lists, element-wise |
//! | `"sha256"` | lowercase hex SHA-256 of the text (normalise first: `["trim", "lower", "sha256"]`) |
//! | `{ default = <value> }` | the value when the current one is null or empty |
//! | `{ template = "{firstName} {lastName}" }` | text with `{path}` placeholders (any path, `{}` = the current value, `{{`/`}}` = braces; null renders empty) |
//! | `{ split = "," }` | text to list; pieces are trimmed, empty ones dropped |
//! | `"join"` or `{ join = ", " }` | list to text (bare: `list_separator`) |
//! | `{ date = { formats = ["%d/%m/%Y"], format = "%Y-%m-%d" } }` | parse with the first matching chrono format; print with `format` (default ISO 8601) |
//! | `{ phone_e164 = { default_country = "GB" } }` | normalise a phone number to E.164 (`+447911123456`); the country (ISO code or calling code) is used for national numbers |
//! | `{ lookup = { active = "true" }, default = "false" }` | replace by table; `default` for misses and null (without it, misses pass through) |
//! | `{ regex_replace = { pattern = "\\s+", replacement = " " } }` | replace all matches (`$1` refers to groups) |
//! | `{ constant = <value> }` | a fixed value |
//! | `{ coalesce = ["email", "attributionSource.email"] }` | the current value if not empty, else the first non-empty path |
//!
//! A column without `from` starts from its first transform when that is `template`,
//! `constant` or `coalesce`; otherwise `from` defaults to the column's name. A transform that
//! fails (`date`, `phone_e164`) follows `on_error` like a failed conversion.
//!
//! ## Filters
//!
//! `filter` is a list of `{ field = <path>, op = <op>, value = <value> }`; a record is kept
//! only when all hold. `eq`/`not_eq` compare loosely (`"10"` equals `10`, `"false"` equals
//! `false`; a list equals a value it contains); `exists`/`not_exists` test for a non-empty
//! value and take no `value`; `contains` is substring on text and membership on lists (a
//! tag); `in` takes a list of values.

mod cell;
mod compile;
mod defaults;
mod describe;
mod error;
mod file;
mod input_check;
mod path;
mod phone;
mod plan;
mod transform;

use std::path::Path as FsPath;

use serde_json::Value as Json;

pub use defaults::custom_field_columns;
pub use describe::describe;
/// Positions and "did you mean" for other files checked the same way (`listen`'s rules).
pub(crate) use error::{did_you_mean, SourceMap};
pub use error::{MappingError, MappingErrors};
pub use file::MappingFile;

use crate::table::{Row, TableKind, TableSchema, Value};
use path::{CustomRef, Path};
use plan::{CellError, ColumnPlan, Filter};

/// A custom field of the location, as `GET /locations/{id}/customFields` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomFieldInfo {
    pub id: String,
    pub name: String,
    /// E.g. `contact.lead_score`.
    pub field_key: Option<String>,
    /// E.g. `TEXT`, `NUMERICAL`, `MULTIPLE_OPTIONS`.
    pub data_type: Option<String>,
}

impl From<crate::api::model::CustomField> for CustomFieldInfo {
    /// A field without a name is known by its id.
    fn from(f: crate::api::model::CustomField) -> CustomFieldInfo {
        CustomFieldInfo {
            name: f.name.unwrap_or_else(|| f.id.clone()),
            id: f.id,
            field_key: f.field_key,
            data_type: f.data_type,
        }
    }
}

/// Which way a mapping moves data: `export` maps API records to output rows; `load` maps
/// input rows to API request bodies (column names are body fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Export,
    Load,
}

/// A validated, compiled plan for every table it maps. Cheap to share in an `Arc`.
#[derive(Debug, Clone)]
pub struct Mapping {
    file: String,
    direction: Direction,
    csv_safe: Option<bool>,
    list_separator: Option<String>,
    /// In [`TableKind::ALL`] order; contacts always first.
    tables: Vec<TableMapping>,
}

/// The plan for one output table.
#[derive(Debug, Clone)]
pub struct TableMapping {
    kind: TableKind,
    schema: TableSchema,
    columns: Vec<ColumnPlan>,
    filters: Vec<Filter>,
    /// The file's list separator (or `;`), for joins and list-to-text conversions.
    sep: String,
    /// The section's `on_error`, shown by `describe`.
    on_error: plan::OnError,
    /// `custom_fields = "all"` (load mappings, contacts): every custom field of the input.
    all_custom_fields: bool,
}

impl TableMapping {
    /// A table from its compiled columns; the output schema is derived from them, so the two
    /// can never disagree.
    fn new(
        kind: TableKind,
        columns: Vec<ColumnPlan>,
        filters: Vec<Filter>,
        sep: String,
        on_error: plan::OnError,
    ) -> TableMapping {
        let schema = TableSchema {
            table: kind,
            columns: columns
                .iter()
                .map(|c| crate::table::Column {
                    name: c.name.clone(),
                    ty: c.ty,
                })
                .collect(),
        };
        TableMapping {
            kind,
            schema,
            columns,
            filters,
            sep,
            on_error,
            all_custom_fields: false,
        }
    }
}

/// What a child record's path can reach besides the record itself.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    pub location_id: &'a str,
    /// The parent contact of a task, note or appointment; `None` for contacts.
    pub contact_id: Option<&'a str>,
}

/// The result of applying a table mapping to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Row(Row),
    /// A filter did not hold: not an error, the record is just not exported.
    Filtered,
    /// A column could not be computed; the record belongs in the reject file.
    Rejected {
        column: String,
        reason: String,
    },
}

impl Mapping {
    /// Parse and validate a mapping file. Errors: all problems gathered, each naming the file,
    /// line and column, what was expected and (when one is close) a suggestion.
    pub fn from_path(path: &FsPath) -> Result<Mapping, MappingErrors> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Mapping::from_str(&text, &file),
            Err(e) => Err(MappingErrors(vec![MappingError {
                file,
                line: 0,
                column: 0,
                message: format!("cannot read the mapping file: {e}"),
                help: None,
            }])),
        }
    }

    /// Parse and validate mapping text; `file_name` is used in error positions.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, file_name: &str) -> Result<Mapping, MappingErrors> {
        compile::compile(text, file_name)
    }

    /// The mapping used without `--mapping`: every field the spec documents for each table as
    /// a column (nested objects flattened with dotted names, arrays of objects as json), one
    /// column per custom field named after it and typed from its `dataType`, tags as
    /// `list<string>`. With no custom fields given (none exist, or they could not be read),
    /// the raw `customFields` array is kept as a json column instead. Child tables start with
    /// `contact_id` and `location_id`. Values that do not convert become null rather than
    /// rejecting the record.
    pub fn default_for(custom_fields: &[CustomFieldInfo]) -> Mapping {
        defaults::default_for(custom_fields)
    }

    /// Resolve `custom."Name"` references to ids. A name matches a custom field's name
    /// exactly, else case-insensitively, else its field key (`contact.<key>` or `<key>`). An
    /// unknown or ambiguous name is an error at the reference's position, naming the closest
    /// known names.
    pub fn resolve_custom_fields(
        &mut self,
        custom_fields: &[CustomFieldInfo],
    ) -> Result<(), MappingErrors> {
        let mut errors = Vec::new();
        for table in &mut self.tables {
            for path in table.paths_mut() {
                let Some(CustomRef::Name {
                    name,
                    id,
                    line,
                    column,
                }) = path.custom_ref_mut()
                else {
                    continue;
                };
                match resolve_name(name, custom_fields) {
                    Ok(found) => *id = Some(found.to_string()),
                    Err((message, help)) => {
                        *id = None;
                        errors.push(MappingError {
                            file: self.file.clone(),
                            line: *line,
                            column: *column,
                            message,
                            help,
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        Err(MappingErrors(errors))
    }

    /// The tables this mapping produces, contacts first.
    pub fn tables(&self) -> Vec<TableKind> {
        self.tables.iter().map(|t| t.kind).collect()
    }

    pub fn table(&self, t: TableKind) -> Option<&TableMapping> {
        self.tables.iter().find(|m| m.kind == t)
    }

    /// The file-level `csv_safe` setting, if the file sets it.
    pub fn csv_safe_default(&self) -> Option<bool> {
        self.csv_safe
    }

    /// The file-level `list_separator`, if the file sets it.
    pub fn list_separator(&self) -> Option<String> {
        self.list_separator.clone()
    }

    /// Whether any path names a custom field by name, so the export must fetch the
    /// location's custom fields and call [`Mapping::resolve_custom_fields`].
    pub fn uses_custom_fields(&self) -> bool {
        self.tables.iter().any(|t| {
            t.paths()
                .iter()
                .any(|p| matches!(p.root, path::Root::Custom(CustomRef::Name { .. })))
        })
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The file name errors are reported against.
    pub fn file_name(&self) -> &str {
        &self.file
    }
}

/// The id of the custom field `name` (by name, then case-insensitively, then field key), or
/// why there is none (unknown, with the closest names; or ambiguous).
pub fn custom_field_id<'c>(name: &str, fields: &'c [CustomFieldInfo]) -> Result<&'c str, String> {
    resolve_name(name, fields).map_err(|(message, help)| match help {
        Some(h) => format!("{message} ({h})"),
        None => message,
    })
}

fn resolve_name<'c>(
    name: &str,
    fields: &'c [CustomFieldInfo],
) -> Result<&'c str, (String, Option<String>)> {
    let key_matches = |f: &CustomFieldInfo| {
        f.field_key
            .as_deref()
            .is_some_and(|k| k == name || k.strip_prefix("contact.") == Some(name))
    };
    let rules: [&dyn Fn(&CustomFieldInfo) -> bool; 3] = [
        &|f| f.name == name,
        &|f| f.name.to_lowercase() == name.to_lowercase(),
        &key_matches,
    ];
    for rule in rules {
        let hits: Vec<&CustomFieldInfo> = fields.iter().filter(|f| rule(f)).collect();
        match hits.as_slice() {
            [] => continue,
            [one] => return Ok(&one.id),
            many => {
                let ids: Vec<String> = many.iter().map(|f| format!("`{}`", f.id)).collect();
                return Err((
                    format!(
                        "custom field name `{name}` is ambiguous: it matches {} fields ({})",
                        many.len(),
                        ids.join(", ")
                    ),
                    Some("refer to one by id: `custom.id.<ID>`".into()),
                ));
            }
        }
    }
    let near = error::closest(name, fields.iter().map(|f| f.name.as_str()), 3);
    let help = if near.is_empty() {
        if fields.is_empty() {
            Some("the location has no custom fields".to_string())
        } else {
            Some(format!(
                "the location has {} custom fields; `mapping check` with credentials lists them",
                fields.len()
            ))
        }
    } else {
        let names: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
        Some(format!("closest known names: {}", names.join(", ")))
    };
    Err((format!("unknown custom field `{name}`"), help))
}

impl TableMapping {
    /// The output columns, in the mapping's order.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The input columns the `from`s of a load mapping read (first path segment), in order.
    pub fn source_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.columns {
            if let Some((name, _)) = c.source.as_ref().and_then(|p| p.root_field()) {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Apply the mapping to one record: filters first, then every column in order. The first
    /// column that fails with `on_error = "reject"` (or is `required` and empty) rejects the
    /// record.
    pub fn apply(&self, record: &Json, ctx: &RecordContext) -> RowOutcome {
        let cx = path::Ctx {
            location_id: ctx.location_id,
            contact_id: path::contact_id(self.kind, record, ctx.contact_id),
        };
        if !self.filters.iter().all(|f| f.matches(record, &cx)) {
            return RowOutcome::Filtered;
        }
        let mut row: Vec<Value> = Vec::with_capacity(self.columns.len());
        for col in &self.columns {
            match col.eval(record, &cx, &self.sep) {
                Ok(v) => row.push(v),
                Err(CellError::Failed(reason)) => {
                    return RowOutcome::Rejected {
                        column: col.name.clone(),
                        reason,
                    }
                }
                Err(CellError::Missing(why)) => {
                    return RowOutcome::Rejected {
                        column: col.name.clone(),
                        reason: match why {
                            None => "required value is missing".into(),
                            Some(why) => format!("required value is missing ({why})"),
                        },
                    }
                }
            }
        }
        RowOutcome::Row(row)
    }

    fn paths(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for col in &self.columns {
            out.extend(col.source.iter());
            for step in &col.steps {
                out.extend(step.transform.paths());
            }
        }
        out.extend(self.filters.iter().map(|f| &f.path));
        out
    }

    fn paths_mut(&mut self) -> Vec<&mut Path> {
        let mut out: Vec<&mut Path> = Vec::new();
        for col in &mut self.columns {
            out.extend(col.source.iter_mut());
            for step in &mut col.steps {
                out.extend(step.transform.paths_mut());
            }
        }
        out.extend(self.filters.iter_mut().map(|f| &mut f.path));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Mapping {
        Mapping::from_str(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn fields() -> Vec<CustomFieldInfo> {
        vec![
            CustomFieldInfo {
                id: "cf_score".into(),
                name: "Lead Score".into(),
                field_key: Some("contact.lead_score".into()),
                data_type: Some("NUMERICAL".into()),
            },
            CustomFieldInfo {
                id: "cf_src".into(),
                name: "Lead Source".into(),
                field_key: Some("contact.lead_source".into()),
                data_type: Some("TEXT".into()),
            },
            CustomFieldInfo {
                id: "cf_dup1".into(),
                name: "Twin".into(),
                field_key: None,
                data_type: None,
            },
            CustomFieldInfo {
                id: "cf_dup2".into(),
                name: "Twin".into(),
                field_key: None,
                data_type: None,
            },
        ]
    }

    const CTX: RecordContext<'static> = RecordContext {
        location_id: "loc1",
        contact_id: None,
    };

    #[test]
    fn applies_columns_in_order() {
        let m = load(
            r#"
version = 1
[contacts]
[[contacts.columns]]
name = "email"
transform = ["trim", "lower"]
required = true
[[contacts.columns]]
name = "full_name"
transform = [{ template = "{firstName} {lastName}" }, "trim"]
[[contacts.columns]]
name = "score"
from = 'custom."Lead Score"'
type = "int"
on_error = "null"
"#,
        );
        assert!(m.uses_custom_fields());
        let mut m = m;
        m.resolve_custom_fields(&fields())
            .unwrap_or_else(|e| panic!("{e}"));
        let t = m
            .table(TableKind::Contacts)
            .unwrap_or_else(|| panic!("no contacts"));
        let names: Vec<&str> = t.schema().columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["email", "full_name", "score"]);
        let rec = json!({
            "email": " Ann@X.ORG ", "firstName": "Ann", "lastName": null,
            "customFields": [{"id": "cf_score", "value": "12"}]
        });
        assert_eq!(
            t.apply(&rec, &CTX),
            RowOutcome::Row(vec![
                Value::String("ann@x.org".into()),
                Value::String("Ann".into()),
                Value::Int(12),
            ])
        );
        let bad_score =
            json!({"email": "a@b.c", "customFields": [{"id": "cf_score", "value": "high"}]});
        assert!(matches!(
            t.apply(&bad_score, &CTX),
            RowOutcome::Row(ref r) if r[2] == Value::Null
        ));
        assert_eq!(
            t.apply(&json!({"email": "  "}), &CTX),
            RowOutcome::Rejected {
                column: "email".into(),
                reason: "required value is missing".into()
            }
        );
    }

    #[test]
    fn rejects_with_column_and_reason_and_filters() {
        let m = load(
            r#"
version = 1
[contacts]
filter = [{ field = "tags", op = "contains", value = "vip" }]
[[contacts.columns]]
name = "added"
from = "dateAdded"
type = "timestamp"
"#,
        );
        let t = m
            .table(TableKind::Contacts)
            .unwrap_or_else(|| panic!("no contacts"));
        assert_eq!(t.apply(&json!({"tags": ["x"]}), &CTX), RowOutcome::Filtered);
        assert_eq!(
            t.apply(&json!({"tags": ["vip"], "dateAdded": "last week"}), &CTX),
            RowOutcome::Rejected {
                column: "added".into(),
                reason: "cannot convert \"last week\" to timestamp".into()
            }
        );
    }

    #[test]
    fn custom_field_resolution_errors_name_position_and_neighbours() {
        let mut m = load(
            r#"version = 1
[contacts]
[[contacts.columns]]
name = "a"
from = 'custom."Lead Scor"'
[[contacts.columns]]
name = "b"
from = "custom.Twin"
[[contacts.columns]]
name = "c"
from = "custom.lead_source"
"#,
        );
        let errs = m.resolve_custom_fields(&fields()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs}");
        assert_eq!((errs.0[0].line, errs.0[0].column), (5, 9));
        assert_eq!(errs.0[0].message, "unknown custom field `Lead Scor`");
        assert_eq!(
            errs.0[0].help.as_deref(),
            Some("closest known names: `Lead Score`")
        );
        assert!(errs.0[1].message.contains("ambiguous"), "{}", errs.0[1]);
        // Field keys resolve too.
        let c = &m.tables[0].columns[2];
        assert!(matches!(
            c.source.as_ref().map(|p| &p.root),
            Some(path::Root::Custom(CustomRef::Name { id: Some(id), .. })) if id == "cf_src"
        ));
    }

    #[test]
    fn describe_lists_every_column() {
        let m = load(
            r#"
version = 1
csv_safe = true
[contacts]
filter = [{ field = "email", op = "exists" }]
[[contacts.columns]]
name = "email"
transform = ["trim", "lower"]
required = true
[tasks]
[[tasks.columns]]
name = "contact_id"
from = "$contact_id"
"#,
        );
        let text = describe(&m);
        assert!(
            text.contains("contacts (1 columns, on_error = reject)"),
            "{text}"
        );
        assert!(text.contains("keep records where email exists"), "{text}");
        assert!(
            text.contains("email  string  email | trim | lower  [required]"),
            "{text}"
        );
        assert!(
            text.contains("tasks (1 columns, on_error = reject)"),
            "{text}"
        );
        assert!(text.contains("csv_safe: true"), "{text}");
        assert_eq!(m.tables(), vec![TableKind::Contacts, TableKind::Tasks]);
    }

    #[test]
    fn mapping_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Mapping>();
        check::<TableMapping>();
    }
}
