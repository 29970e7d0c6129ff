//! Tests of the mapping compiler: every error with its position and help, both directions.

use super::load::{LOAD_CONTACT_FIELDS, LOAD_NOTE_FIELDS, LOAD_TASK_FIELDS};
use super::*;
use crate::mapping::MappingError;

fn errors(text: &str) -> Vec<MappingError> {
    match compile(text, "m.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

const HEAD: &str = "version = 1\n[contacts]\n[[contacts.columns]]\n";

#[test]
fn unknown_transform_has_position_and_suggestion() {
    let e = errors(&format!(
        "{HEAD}name = \"email\"\ntransform = [\"trim\", \"lowercase\"]\n"
    ));
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (5, 22));
    assert!(e[0]
        .message
        .starts_with("unknown transform `lowercase`; expected one of: trim, lower, upper"));
    assert_eq!(e[0].help.as_deref(), Some("did you mean `lower`?"));
    assert_eq!(
        e[0].to_string(),
        format!(
            "m.toml:5:22: unknown transform `lowercase`; expected one of: {}\n  = help: did you mean `lower`?",
            one_of(TRANSFORM_NAMES)
        )
    );
}

#[test]
fn every_error_is_gathered() {
    let text = r#"version = 1
csv_safe = "yes"
[contacts]
on_error = "skip"
[[contacts.columns]]
name = "email"
type = "strin"
tranform = ["trim"]
[[contacts.columns]]
name = "email"
from = "emial"
[[contacts.columns]]
name = "x"
from = "email"
transform = [{ regex_replace = { pattern = "(" } }, { template = "" }]
[contact]
"#;
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(e.len(), 8, "{got:#?}");
    assert!(e[0]
        .message
        .contains("`csv_safe` must be true or false, found string"));
    assert!(e[1].message.contains("unknown on_error `skip`"));
    assert!(e[2].message.starts_with("unknown type `strin`"));
    assert_eq!(e[2].help.as_deref(), Some("did you mean `string`?"));
    assert!(e[3]
        .message
        .starts_with("unknown key `tranform` in a column"));
    assert_eq!(e[3].help.as_deref(), Some("did you mean `transform`?"));
    assert_eq!(e[4].message, "unknown field `emial` for a contact record");
    assert_eq!(e[4].help.as_deref(), Some("did you mean `email`?"));
    assert!(e[5].message.starts_with("invalid regex `(`"));
    assert_eq!(e[6].message, "empty template");
    assert!(e[7].message.starts_with("unknown table `[contact]`"));
    assert_eq!(e[7].help.as_deref(), Some("did you mean `contacts`?"));
}

#[test]
fn duplicate_column_names_point_at_the_second() {
    let e = errors(&format!(
        "{HEAD}name = \"email\"\n[[contacts.columns]]\nname = \"email\"\n"
    ));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 6);
    assert_eq!(e[0].message, "duplicate column `email` in contacts");
    assert!(e[0].help.as_deref().is_some_and(|h| h.contains("line 4")));
}

#[test]
fn child_tables_check_their_own_fields() {
    let e = errors(
        r#"version = 1
[contacts]
[[contacts.columns]]
name = "id"
[tasks]
[[tasks.columns]]
name = "who"
from = "firstName"
[[tasks.columns]]
name = "score"
from = 'custom."Lead Score"'
[[tasks.columns]]
name = "parent"
from = "$contact"
"#,
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0]
        .message
        .starts_with("unknown field `firstName` for a task record; expected one of: id, title"));
    assert!(e[1]
        .message
        .contains("custom fields exist on contacts only"));
    assert!(e[2].message.starts_with("unknown variable `$contact`"));
}

#[test]
fn quoted_roots_skip_the_known_field_check() {
    let m = compile(
        &format!("{HEAD}name = \"brand_new\"\nfrom = '\"brandNewField\".x'\n"),
        "m.toml",
    );
    assert!(m.is_ok());
}

#[test]
fn syntax_errors_come_with_positions() {
    let e = errors("version = 1\n[contacts\n");
    assert_eq!(e[0].line, 2);
    assert!(!e[0].message.is_empty());
}

#[test]
fn missing_pieces() {
    let e = errors("[tasks]\n[[tasks.columns]]\nname = \"id\"\n");
    let msgs: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["missing `version`", "missing `[contacts]` section"]);
    let e = errors("version = 2\n[contacts]\n");
    let msgs: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "unsupported mapping version 2; expected 1",
            "`[contacts]` has no columns"
        ]
    );
}

#[test]
fn types_parse_and_bad_ones_say_why() {
    assert_eq!(
        parse_type("decimal(12, 2)"),
        Ok(ColumnType::Decimal {
            precision: 12,
            scale: 2
        })
    );
    assert_eq!(parse_type("list<string>"), Ok(ColumnType::ListString));
    assert!(parse_type("decimal(40,2)").is_err());
    assert!(parse_type("decimal(4,5)").is_err());
    assert!(parse_type("decimal").is_err());
    let (_, help) = parse_type("integer").unwrap_err();
    assert_eq!(help.as_deref(), Some("did you mean `int`?"));
}

#[test]
fn transform_shapes() {
    let e = errors(&format!(
        "{HEAD}name = \"email\"\ntransform = [\"template\", {{ trim = true }}, {{ split = \",\", join = \";\" }}, {{ phone_e164 = {{ default_country = \"XK\" }} }}, {{ date = {{ formats = [] }} }}, 5]\n"
    ));
    let msgs: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "transform `template` needs a value",
            "transform `trim` takes no options",
            "one transform per entry",
            "unknown country `XK` for `phone_e164`",
            "`formats` needs at least one format",
            "a transform must be a name like \"trim\" or a table like { template = \"...\" }, found integer",
        ]
    );
}

#[test]
fn filters_validate_ops_and_values() {
    let e = errors(
        "version = 1\n[contacts]\nfilter = [{ field = \"email\", op = \"exist\" }, { field = \"dnd\", op = \"eq\" }, { field = \"email\", op = \"exists\", value = 1 }, { field = \"tags\", op = \"in\", value = \"vip\" }]\n[[contacts.columns]]\nname = \"email\"\n"
    );
    let msgs: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert!(msgs[0].starts_with("unknown filter op `exist`"));
    assert_eq!(e[0].help.as_deref(), Some("did you mean `exists`?"));
    assert_eq!(msgs[1], "`eq` needs a `value`");
    assert_eq!(msgs[2], "`exists` takes no `value`");
    assert_eq!(msgs[3], "`value` must be a list, found string");
}

#[test]
fn implicit_from_needs_a_known_field() {
    let e = errors(&format!("{HEAD}name = \"full_name\"\n"));
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].message,
        "column `full_name` has no `from`, and `full_name` is not a field of a contact record"
    );
}

const LOAD: &str = "version = 1\ndirection = \"load\"\n";

#[test]
fn a_load_mapping_reads_any_input_column_and_writes_body_fields() {
    let m = compile(
        &format!(
            "{LOAD}[contacts]\n[[contacts.columns]]\nname = \"email\"\nfrom = \"E-mail Address\"\n\
             [[contacts.columns]]\nname = 'customFields.\"Lead Score\"'\nfrom = \"score\"\ntype = \"int\"\n\
             [[contacts.columns]]\nname = \"firstName\"\n\
             [tasks]\n[[tasks.columns]]\nname = \"contact_id\"\n[[tasks.columns]]\nname = \"title\"\n"
        ),
        "m.toml",
    )
    .unwrap();
    assert_eq!(m.direction(), Direction::Load);
    let names: Vec<&str> = m
        .table(TableKind::Contacts)
        .unwrap()
        .schema()
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["email", "customFields.\"Lead Score\"", "firstName"]);
}

#[test]
fn a_load_column_must_name_a_request_field() {
    let e = errors(&format!(
        "{LOAD}[contacts]\n[[contacts.columns]]\nname = \"emial\"\nfrom = \"email\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (5, 8));
    assert_eq!(
        e[0].message,
        "`emial` is not a field a contact can be written with"
    );
    assert!(
        e[0].help.as_deref().unwrap_or("").contains("`email`"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{LOAD}[notes]\n[[notes.columns]]\nname = \"dateAdded\"\n"
    ));
    assert!(
        e[0].help.as_deref().unwrap_or("").contains("contact_id"),
        "{e:?}"
    );
}

#[test]
fn a_load_mapping_refuses_custom_filters_appointments_and_unknown_directions() {
    let e = errors(&format!(
        "{LOAD}[contacts]\nfilter = [{{ field = 'custom.\"Email 2\"', op = \"exists\" }}]\n[[contacts.columns]]\nname = \"email\"\n"
    ));
    assert!(e[0].message.contains("reads input columns"), "{e:?}");
    let e = errors(&format!(
        "{LOAD}[contacts]\n[[contacts.columns]]\nname = \"email\"\n[appointments]\n[[appointments.columns]]\nname = \"id\"\n"
    ));
    assert!(
        e[0].message.contains("appointments cannot be loaded"),
        "{e:?}"
    );
    let e = errors(
        "version = 1\ndirection = \"lode\"\n[contacts]\n[[contacts.columns]]\nname = \"email\"\n",
    );
    assert_eq!(e[0].line, 2);
    assert!(e[0].message.contains("unknown direction `lode`"), "{e:?}");
}

/// The load field lists are the spec's request schemas: a field the spec drops, or a typo
/// here, fails this test instead of a user's load.
#[test]
fn load_fields_are_fields_of_the_spec_request_bodies() {
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/spec/apps/contacts.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let props = |schema: &str| -> Vec<String> {
        spec["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let keys = ["id", "contact_id", "contact_email", "contact_phone"];
    for (fields, schemas) in [
        (
            LOAD_CONTACT_FIELDS,
            &["UpsertContactDto", "UpdateContactDto"][..],
        ),
        (LOAD_TASK_FIELDS, &["CreateTaskParams"][..]),
        (LOAD_NOTE_FIELDS, &["NotesDTO"][..]),
    ] {
        let known: Vec<String> = schemas.iter().flat_map(|s| props(s)).collect();
        for f in fields.iter().filter(|f| !keys.contains(f)) {
            assert!(known.iter().any(|k| k == f), "{f} is not in {schemas:?}");
        }
    }
}
