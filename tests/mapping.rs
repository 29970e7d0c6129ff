//! Mapping files end to end: the shipped mappings load and shape realistic (and awkward)
//! contacts as intended; every invalid fixture fails with its expected message at its
//! expected position; every valid fixture loads.

use std::path::PathBuf;

use ghl_etl::mapping::{describe, CustomFieldInfo, Mapping, RecordContext, RowOutcome};
use ghl_etl::table::{ColumnType, TableKind, Value};
use serde_json::{json, Value as Json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(name: &str) -> Mapping {
    let path = root().join("mappings").join(format!("{name}.toml"));
    Mapping::from_path(&path).unwrap_or_else(|e| panic!("{name}.toml does not load:\n{e}"))
}

const CTX: RecordContext<'static> = RecordContext {
    location_id: "LOC123",
    contact_id: None,
};

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// The row for `record`, as `(column name, value)` pairs; panics on filter or reject.
fn row(m: &Mapping, table: TableKind, record: &Json, ctx: &RecordContext) -> Vec<(String, Value)> {
    let t = m.table(table).unwrap_or_else(|| panic!("no {table} table"));
    match t.apply(record, ctx) {
        RowOutcome::Row(values) => t
            .schema()
            .columns
            .iter()
            .map(|c| c.name.clone())
            .zip(values)
            .collect(),
        other => panic!("expected a row, got {other:?}\nfor {record:#}"),
    }
}

fn cell(row: &[(String, Value)], name: &str) -> Value {
    row.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}

/// A contact with everything awkward at once: Unicode, padding, a national phone number,
/// a leap-day timestamp, custom fields holding arrays and objects.
fn zoe() -> Json {
    json!({
        "id": "c_zoe",
        "locationId": "LOC123",
        "firstName": " Zoë ",
        "lastName": "Ångström",
        "name": "Zoë Ångström",
        "email": "  ZOË@Example.COM ",
        "phone": "07911 123456",
        "companyName": "Åsa & Co",
        "country": "gb",
        "dnd": false,
        "dndSettings": {"Email": {"status": "inactive", "message": "", "code": ""}, "SMS": {"status": "active"}},
        "tags": ["vip", " newsletter "],
        "dateAdded": "2024-02-29T23:59:59.999Z",
        "dateUpdated": "2024-03-01T08:00:00Z",
        "dateOfBirth": "1990-05-17",
        "attributionSource": {"utmSource": "google", "campaign": "spring", "gclid": "abc"},
        "lastAttributionSource": {"utmSource": "newsletter", "medium": "email"},
        "attributions": [{"utmSource": "google", "isFirst": true}],
        "customFields": [
            {"id": "cf_interests", "value": ["solar", "trees"]},
            {"id": "cf_file", "value": {"url": "https://files/x.pdf", "meta": {"size": 3}}},
            {"id": "cf_score", "value": 42}
        ],
        "someFieldFromTheFuture": {"kept": true}
    })
}

/// Spreadsheet formula bait in every free-text field.
fn formula_bait() -> Json {
    json!({
        "id": "c_bait",
        "firstName": "=HYPERLINK(\"http://evil\",\"x\")",
        "lastName": "+1",
        "companyName": "@SUM(A1:A9)",
        "email": "bait@example.org",
        "tags": ["-2+3", "=cmd"],
        "dnd": false
    })
}

/// Nothing but an id, an email and nulls.
fn sparse() -> Json {
    json!({
        "id": "c_sparse",
        "firstName": null,
        "lastName": null,
        "name": null,
        "companyName": "Only Company Ltd",
        "email": "x@y.io",
        "phone": null,
        "tags": null,
        "dnd": null,
        "dndSettings": null,
        "dateAdded": null,
        "customFields": []
    })
}

#[test]
fn shipped_mappings_load_and_describe() {
    for name in ["analytics", "ecosend", "ecologi", "tagging"] {
        let m = shipped(name);
        assert_eq!(m.tables()[0], TableKind::Contacts, "{name}");
        assert!(
            !m.uses_custom_fields(),
            "{name} must not depend on a location's custom field names"
        );
        let text = describe(&m);
        assert!(text.contains("contacts ("), "{name}: {text}");
    }
    let analytics = shipped("analytics");
    assert_eq!(
        analytics.tables(),
        vec![TableKind::Contacts, TableKind::Tasks, TableKind::Notes]
    );
    assert_eq!(shipped("ecosend").csv_safe_default(), Some(true));
    assert_eq!(shipped("ecologi").csv_safe_default(), Some(true));
    assert_eq!(shipped("ecosend").list_separator().as_deref(), Some(";"));
    assert_eq!(shipped("tagging").csv_safe_default(), None);
}

#[test]
fn ecosend_shapes_an_email_list() {
    let m = shipped("ecosend");
    let r = row(&m, TableKind::Contacts, &zoe(), &CTX);
    assert_eq!(
        r,
        vec![
            ("email".to_string(), s("zoë@example.com")),
            ("first_name".to_string(), s("Zoë")),
            ("last_name".to_string(), s("Ångström")),
            ("phone".to_string(), s("+447911123456")),
            ("company".to_string(), s("Åsa & Co")),
            ("tags".to_string(), s("vip;newsletter")),
            ("email_opt_out".to_string(), Value::Bool(false)),
            ("signup_date".to_string(), Value::Date(19_782)),
            ("ghl_contact_id".to_string(), s("c_zoe")),
        ]
    );
}

#[test]
fn ecosend_opt_out_follows_dnd_and_email_dnd() {
    let m = shipped("ecosend");
    let opt_out = |patch: Json| {
        let mut c = sparse();
        if let (Some(obj), Json::Object(p)) = (c.as_object_mut(), patch) {
            obj.extend(p);
        }
        cell(&row(&m, TableKind::Contacts, &c, &CTX), "email_opt_out")
    };
    assert_eq!(opt_out(json!({})), Value::Bool(false));
    assert_eq!(opt_out(json!({"dnd": true})), Value::Bool(true));
    assert_eq!(
        opt_out(json!({"dndSettings": {"Email": {"status": "active"}}})),
        Value::Bool(true)
    );
    assert_eq!(
        opt_out(json!({"dndSettings": {"Email": {"status": "permanent"}}})),
        Value::Bool(true)
    );
    assert_eq!(
        opt_out(
            json!({"dnd": false, "dndSettings": {"Email": {"status": "inactive"}, "SMS": {"status": "active"}}})
        ),
        Value::Bool(false)
    );
}

#[test]
fn ecosend_filters_rejects_and_tolerates() {
    let m = shipped("ecosend");
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    // No email at all, or null: filtered, not an error.
    assert_eq!(
        t.apply(&json!({"id": "c1", "phone": "+1 555 0100"}), &CTX),
        RowOutcome::Filtered
    );
    assert_eq!(
        t.apply(&json!({"id": "c2", "email": null}), &CTX),
        RowOutcome::Filtered
    );
    assert_eq!(
        t.apply(&json!({"id": "c3", "email": ""}), &CTX),
        RowOutcome::Filtered
    );
    // Whitespace passes the filter but is empty once trimmed: rejected with the reason.
    assert_eq!(
        t.apply(&json!({"id": "c4", "email": "   "}), &CTX),
        RowOutcome::Rejected {
            column: "email".into(),
            reason: "required value is missing".into()
        }
    );
    // A phone that cannot be E.164 is dropped, the contact kept (on_error = "null").
    let r = row(
        &m,
        TableKind::Contacts,
        &json!({"id": "c5", "email": "a@b.c", "phone": "call me maybe"}),
        &CTX,
    );
    assert_eq!(cell(&r, "phone"), Value::Null);
    // A malformed signup date does not hold the contact back either.
    let r = row(
        &m,
        TableKind::Contacts,
        &json!({"id": "c6", "email": "a@b.c", "dateAdded": "soon"}),
        &CTX,
    );
    assert_eq!(cell(&r, "signup_date"), Value::Null);
    // Nulls everywhere else are fine.
    let r = row(&m, TableKind::Contacts, &sparse(), &CTX);
    assert_eq!(cell(&r, "first_name"), Value::Null);
    assert_eq!(cell(&r, "tags"), Value::Null);
    assert_eq!(cell(&r, "phone"), Value::Null);
}

#[test]
fn formula_bait_passes_through_unchanged_for_the_sink_to_defuse() {
    // Defusing is the CSV sink's job (told by csv_safe); the mapping must not alter values,
    // or Parquet and NDJSON output would be corrupted too.
    let m = shipped("ecosend");
    let r = row(&m, TableKind::Contacts, &formula_bait(), &CTX);
    assert_eq!(
        cell(&r, "first_name"),
        s("=HYPERLINK(\"http://evil\",\"x\")")
    );
    assert_eq!(cell(&r, "last_name"), s("+1"));
    assert_eq!(cell(&r, "company"), s("@SUM(A1:A9)"));
    assert_eq!(cell(&r, "tags"), s("-2+3;=cmd"));
}

#[test]
fn ecologi_links_back_to_the_contact() {
    let m = shipped("ecologi");
    let r = row(&m, TableKind::Contacts, &zoe(), &CTX);
    assert_eq!(
        r,
        vec![
            ("name".to_string(), s("Zoë  Ångström")),
            ("email".to_string(), s("zoë@example.com")),
            ("company".to_string(), s("Åsa & Co")),
            (
                "ghl_url".to_string(),
                s("https://app.gohighlevel.com/v2/location/LOC123/contacts/detail/c_zoe")
            ),
        ]
    );
    // No first or last name: the contact's name, else its company.
    let r = row(&m, TableKind::Contacts, &sparse(), &CTX);
    assert_eq!(cell(&r, "name"), s("Only Company Ltd"));
    let mut named = sparse();
    named["name"] = json!("Full Name Only");
    let r = row(&m, TableKind::Contacts, &named, &CTX);
    assert_eq!(cell(&r, "name"), s("Full Name Only"));
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    assert_eq!(t.apply(&json!({"id": "c"}), &CTX), RowOutcome::Filtered);
}

#[test]
fn analytics_types_every_field() {
    let m = shipped("analytics");
    let r = row(&m, TableKind::Contacts, &zoe(), &CTX);
    assert_eq!(cell(&r, "contact_id"), s("c_zoe"));
    assert_eq!(cell(&r, "location_id"), s("LOC123"));
    assert_eq!(cell(&r, "full_name"), s("Zoë  Ångström"));
    assert_eq!(cell(&r, "email"), s("zoë@example.com"));
    assert_eq!(
        cell(&r, "email_sha256"),
        s("5418899f7aabe5f45dd3350fe8edcf89e1763a9e64c85e529b1f68cbf5144767")
    );
    assert_eq!(cell(&r, "country"), s("GB"));
    assert_eq!(cell(&r, "date_of_birth"), Value::Date(7_441));
    assert_eq!(cell(&r, "dnd"), Value::Bool(false));
    assert_eq!(cell(&r, "dnd_email"), Value::Bool(false));
    assert_eq!(cell(&r, "dnd_sms"), Value::Bool(true));
    assert_eq!(cell(&r, "dnd_call"), Value::Null);
    assert_eq!(
        cell(&r, "tags"),
        Value::List(vec!["vip".into(), "newsletter".into()])
    );
    assert_eq!(cell(&r, "date_added"), Value::Timestamp(1_709_251_199_999));
    assert_eq!(
        cell(&r, "date_updated"),
        Value::Timestamp(1_709_280_000_000)
    );
    assert_eq!(cell(&r, "first_utm_source"), s("google"));
    assert_eq!(cell(&r, "first_utm_campaign"), s("spring"));
    assert_eq!(cell(&r, "first_gclid"), s("abc"));
    assert_eq!(cell(&r, "last_utm_source"), s("newsletter"));
    assert_eq!(cell(&r, "last_medium"), s("email"));
    assert_eq!(
        cell(&r, "attributions"),
        Value::Json(json!([{"utmSource": "google", "isFirst": true}]))
    );

    // The same phone written two ways pseudonymises to the same value.
    let a = row(
        &m,
        TableKind::Contacts,
        &json!({"id": "a", "phone": "+44 7911 123456"}),
        &CTX,
    );
    let b = row(
        &m,
        TableKind::Contacts,
        &json!({"id": "b", "phone": "+447911123456"}),
        &CTX,
    );
    assert_eq!(
        cell(&a, "phone_sha256"),
        s("20b18ac9de7b3aad174961827d8e451c410af9aedfd1d699927f4b29b81aa1fa")
    );
    assert_eq!(cell(&a, "phone_sha256"), cell(&b, "phone_sha256"));

    // Odd values become null instead of losing the contact.
    let odd = json!({"id": "c_odd", "dateOfBirth": "1990-13-45", "dnd": "sometimes", "dateAdded": 1709251199999i64});
    let r = row(&m, TableKind::Contacts, &odd, &CTX);
    assert_eq!(cell(&r, "date_of_birth"), Value::Null);
    assert_eq!(cell(&r, "dnd"), Value::Null);
    assert_eq!(cell(&r, "date_added"), Value::Timestamp(1_709_251_199_999));
    assert_eq!(cell(&r, "email_sha256"), Value::Null);

    // Without an id the contact is rejected: the warehouse key is required.
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    assert_eq!(
        t.apply(&json!({"email": "a@b.c"}), &CTX),
        RowOutcome::Rejected {
            column: "contact_id".into(),
            reason: "required value is missing".into()
        }
    );
}

#[test]
fn analytics_child_tables_carry_their_contact() {
    let m = shipped("analytics");
    let ctx = RecordContext {
        location_id: "LOC123",
        contact_id: Some("c_zoe"),
    };
    let task = json!({
        "id": "t1", "title": "Call back", "body": null, "assignedTo": "u1",
        "dueDate": "2021-07-08T02:30:00.000Z", "completed": true, "contactId": "c_zoe"
    });
    let r = row(&m, TableKind::Tasks, &task, &ctx);
    assert_eq!(
        r.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        vec![
            s("c_zoe"),
            s("LOC123"),
            s("t1"),
            s("Call back"),
            Value::Null,
            s("u1"),
            Value::Timestamp(1_625_711_400_000),
            Value::Bool(true),
        ]
    );
    let note = json!({"id": "n1", "body": "Prefers email 📧", "userId": "u2", "dateAdded": "2021-07-08T12:02:11.285Z", "pinned": false});
    let r = row(&m, TableKind::Notes, &note, &ctx);
    assert_eq!(cell(&r, "contact_id"), s("c_zoe"));
    assert_eq!(cell(&r, "body"), s("Prefers email 📧"));
    assert_eq!(cell(&r, "pinned"), Value::Bool(false));
    // Without a context id, the note's own contactId stands in.
    let orphan_ctx = RecordContext {
        location_id: "LOC123",
        contact_id: None,
    };
    let r = row(
        &m,
        TableKind::Notes,
        &json!({"id": "n2", "contactId": "c_other"}),
        &orphan_ctx,
    );
    assert_eq!(cell(&r, "contact_id"), s("c_other"));
}

#[test]
fn tagging_writes_the_bulk_tagging_header() {
    let m = shipped("tagging");
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    let header: Vec<&str> = t.schema().columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        header,
        ["contact_id", "email", "phone", "add_tags", "remove_tags"]
    );
    let r = row(&m, TableKind::Contacts, &zoe(), &CTX);
    assert_eq!(cell(&r, "contact_id"), s("c_zoe"));
    assert_eq!(cell(&r, "add_tags"), Value::List(vec![]));
    assert_eq!(cell(&r, "remove_tags"), Value::List(vec![]));
}

#[test]
fn custom_fields_by_name_resolve_and_ties_are_errors() {
    let path = root().join("tests/fixtures/mappings/valid/every_transform.toml");
    let mut m = Mapping::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.uses_custom_fields());
    let fields = vec![
        CustomFieldInfo {
            id: "cf_interests".into(),
            name: "Interests".into(),
            field_key: Some("contact.interests".into()),
            data_type: Some("TEXT".into()),
        },
        CustomFieldInfo {
            id: "cf_twin_a".into(),
            name: "Twin".into(),
            field_key: None,
            data_type: None,
        },
    ];
    m.resolve_custom_fields(&fields)
        .unwrap_or_else(|e| panic!("{e}"));

    // Two fields with the same name: the reference is ambiguous, said at its position.
    let mut tied = fields.clone();
    tied.push(CustomFieldInfo {
        id: "cf_interests_2".into(),
        name: "Interests".into(),
        field_key: None,
        data_type: None,
    });
    let mut m2 = Mapping::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    let err = m2.resolve_custom_fields(&tied).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!((err.0[0].line, err.0[0].column), (40, 9));
    assert!(err.0[0].message.contains("ambiguous"), "{err}");
    assert!(
        err.to_string().contains("`cf_interests`, `cf_interests_2`"),
        "{err}"
    );

    // An unknown name names its neighbours.
    let mut m3 = Mapping::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    let err = m3
        .resolve_custom_fields(&[CustomFieldInfo {
            id: "x".into(),
            name: "Interest".into(),
            field_key: None,
            data_type: None,
        }])
        .unwrap_err();
    assert_eq!(err.0[0].message, "unknown custom field `Interests`");
    assert_eq!(
        err.0[0].help.as_deref(),
        Some("closest known names: `Interest`")
    );

    let record = json!({
        "id": "c1", "email": " VIP@X.org ", "emailLowerCase": "vip@x.org", "lastName": "lee",
        "firstName": "Ann", "dnd": false, "type": "lead", "country": "IE",
        "tags": ["vip", "b"], "phone": "(087) 123-4567",
        "dateOfBirth": "17/05/1990",
        "dndSettings": {"Email": {"status": "active"}},
        "attributions": [{"utmSource": "fb"}],
        "customFields": [
            {"id": "cf_interests", "value": "solar, trees,"},
            {"id": "cf_score", "value": "12.345"}
        ]
    });
    let r = row(&m, TableKind::Contacts, &record, &CTX);
    assert_eq!(cell(&r, "email"), s("vip@x.org"));
    assert_eq!(cell(&r, "shout"), s("LEE"));
    assert_eq!(cell(&r, "source"), s("unknown"));
    assert_eq!(cell(&r, "greeting"), s("Dear Ann {lee}"));
    assert_eq!(
        cell(&r, "interests"),
        Value::List(vec!["solar".into(), "trees".into()])
    );
    assert_eq!(cell(&r, "tags"), s("vip, b"));
    assert_eq!(cell(&r, "tags_bare_join"), s("vip|b"));
    assert_eq!(cell(&r, "born"), Value::Date(7_441));
    assert_eq!(cell(&r, "phone"), s("+44871234567"));
    assert_eq!(cell(&r, "email_opt_out"), Value::Bool(true));
    assert_eq!(cell(&r, "digits"), s("0871234567"));
    assert_eq!(cell(&r, "origin"), s("ghl"));
    assert_eq!(cell(&r, "best_email"), s(" VIP@X.org "));
    assert_eq!(cell(&r, "score"), Value::Decimal(1_235));
    assert_eq!(cell(&r, "first_utm"), s("fb"));
    // Filters: each of the six must hold.
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    for patch in [
        json!({"email": null}),
        json!({"dnd": true}),
        json!({"tags": ["b"]}),
        json!({"country": "FR"}),
        json!({"deleted": true}),
        json!({"type": "customer"}),
    ] {
        let mut rec = record.clone();
        if let (Some(obj), Json::Object(p)) = (rec.as_object_mut(), patch.clone()) {
            obj.extend(p);
        }
        assert_eq!(t.apply(&rec, &CTX), RowOutcome::Filtered, "{patch}");
    }
}

#[test]
fn default_mapping_names_custom_columns_and_breaks_name_ties() {
    let fields = vec![
        CustomFieldInfo {
            id: "cf_a".into(),
            name: "Budget".into(),
            field_key: None,
            data_type: Some("MONETORY".into()),
        },
        CustomFieldInfo {
            id: "cf_b".into(),
            name: "Budget".into(),
            field_key: None,
            data_type: Some("TEXT".into()),
        },
        CustomFieldInfo {
            id: "cf_c".into(),
            name: "Files".into(),
            field_key: None,
            data_type: Some("FILE_UPLOAD".into()),
        },
    ];
    let m = Mapping::default_for(&fields);
    let t = m
        .table(TableKind::Contacts)
        .unwrap_or_else(|| panic!("contacts"));
    let cols = &t.schema().columns;
    let ty = |n: &str| cols.iter().find(|c| c.name == n).map(|c| c.ty);
    assert_eq!(
        ty("Budget"),
        Some(ColumnType::Decimal {
            precision: 18,
            scale: 2
        })
    );
    assert_eq!(ty("custom.Budget"), Some(ColumnType::String));
    assert_eq!(ty("Files"), Some(ColumnType::Json));
    assert_eq!(ty("tags"), Some(ColumnType::ListString));
    assert_eq!(ty("dateAdded"), Some(ColumnType::Timestamp));
    assert_eq!(ty("dnd"), Some(ColumnType::Bool));
    let r = row(
        &m,
        TableKind::Contacts,
        &json!({
            "id": "c1",
            "customFields": [
                {"id": "cf_a", "value": "1500.50"},
                {"id": "cf_b", "value": "about 2k"},
                {"id": "cf_c", "value": [{"url": "https://f/1"}]}
            ]
        }),
        &CTX,
    );
    assert_eq!(cell(&r, "Budget"), Value::Decimal(150050));
    assert_eq!(cell(&r, "custom.Budget"), s("about 2k"));
    assert_eq!(
        cell(&r, "Files"),
        Value::Json(json!([{"url": "https://f/1"}]))
    );
    assert_eq!(
        m.tables(),
        vec![
            TableKind::Contacts,
            TableKind::Tasks,
            TableKind::Notes,
            TableKind::Appointments
        ]
    );
}

/// (fixture, line, column, message substring, help substring)
#[rustfmt::skip]
const INVALID: &[(&str, usize, usize, &str, Option<&str>)] = &[
    ("bad_date_format", 7, 48, "invalid date format `%Q`", None),
    ("bad_decimal", 7, 8, "invalid `decimal(50,2)`", None),
    ("bad_on_error", 4, 12, "unknown on_error `skip`; expected one of: reject, null", None),
    ("bad_path", 6, 21, "expected an array index like `[0]`", None),
    ("bad_regex", 6, 44, "invalid regex `[0-9`: unclosed character class", None),
    ("child_unknown_root", 10, 9, "unknown field `firstName` for a task record", Some("quote it")),
    ("columns_not_a_list", 3, 1, "`columns` must be a list of column blocks", Some("two brackets")),
    ("custom_in_child", 10, 9, "custom fields exist on contacts only, not on notes", None),
    ("duplicate_column", 8, 8, "duplicate column `email` in contacts", Some("line 5")),
    ("empty_template", 6, 28, "empty template", None),
    ("exists_with_value", 4, 53, "`exists` takes no `value`", None),
    ("implicit_from", 5, 8, "column `full_name` has no `from`", Some("did you mean `name`?")),
    ("load_unknown_body_field", 6, 8, "`emailAddress` is not a field a contact can be written with", Some("did you mean `email`?")),
    ("missing_version", 1, 1, "missing `version`", Some("version = 1")),
    ("no_columns", 3, 1, "`[contacts]` has no columns", Some("[[contacts.columns]]")),
    ("syntax_error", 3, 10, "unclosed table", None),
    ("template_missing_field", 6, 41, "unknown field `lastNmae` for a contact record", Some("did you mean `lastName`?")),
    ("transform_needs_value", 6, 14, "transform `template` needs a value", Some("{ template =")),
    ("type_clash", 7, 8, "type `bool` cannot hold the list `split` makes", Some("list<string>")),
    ("unclosed_template", 6, 40, "unclosed `{` in template", None),
    ("unknown_contact_field", 6, 9, "unknown field `emial` for a contact record", Some("did you mean `email`?")),
    ("unknown_country", 6, 49, "unknown country `Britain`", None),
    ("unknown_filter_op", 4, 35, "unknown filter op `exist`", Some("did you mean `exists`?")),
    ("unknown_key", 6, 1, "unknown key `tranform` in a column", Some("did you mean `transform`?")),
    ("unknown_table", 7, 2, "unknown table `[task]`", Some("did you mean `tasks`?")),
    ("unknown_transform", 8, 22, "unknown transform `lowercase`; expected one of: trim, lower, upper", Some("did you mean `lower`?")),
    ("unknown_type", 8, 8, "unknown type `integer`", Some("did you mean `int`?")),
    ("unknown_variable", 10, 9, "unknown variable `$contact`", Some("did you mean `$contact_id`?")),
    ("wrong_value_type", 2, 12, "`csv_safe` must be true or false, found string", None),
];

#[test]
fn invalid_fixtures_fail_where_and_how_expected() {
    let dir = root().join("tests/fixtures/mappings/invalid");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".toml"))
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = INVALID.iter().map(|c| c.0).collect();
    assert_eq!(
        on_disk, listed,
        "every fixture needs a row in INVALID, and every row a fixture"
    );

    for (name, line, column, message, help) in INVALID {
        let path = dir.join(format!("{name}.toml"));
        let errs = match Mapping::from_path(&path) {
            Ok(_) => panic!("{name}.toml loaded but should not"),
            Err(e) => e,
        };
        let first = &errs.0[0];
        assert!(
            first.message.contains(message),
            "{name}: message\n  {}\ndoes not contain\n  {message}",
            first.message
        );
        assert_eq!(
            (first.line, first.column),
            (*line, *column),
            "{name}: {first}"
        );
        assert!(
            first.file.ends_with(&format!("{name}.toml")),
            "{name}: {}",
            first.file
        );
        if let Some(help) = help {
            let got = first.help.as_deref().unwrap_or("");
            assert!(
                got.contains(help),
                "{name}: help {got:?} does not contain {help:?}"
            );
        }
        let rendered = errs.to_string();
        assert!(
            rendered.starts_with(&format!("error: {}:{line}:{column}: ", first.file)),
            "{name}: {rendered}"
        );
    }
}

#[test]
fn all_problems_in_a_file_are_reported_together() {
    let errs =
        Mapping::from_path(&root().join("tests/fixtures/mappings/invalid/wrong_value_type.toml"))
            .unwrap_err();
    let lines: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(lines, [(2, 12), (7, 12)]);
    assert!(errs.to_string().ends_with("2 errors"));
}

#[test]
fn valid_fixtures_load() {
    let dir = root().join("tests/fixtures/mappings/valid");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if let Err(e) = Mapping::from_path(&path) {
            panic!("{} does not load:\n{e}", path.display());
        }
        n += 1;
    }
    assert!(n >= 4, "only {n} valid fixtures");
    let all = Mapping::from_path(&dir.join("all_tables.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.tables(), TableKind::ALL.to_vec());
}

#[test]
fn quoted_paths_reach_undocumented_fields() {
    let m = Mapping::from_path(&root().join("tests/fixtures/mappings/valid/quoted_paths.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let rec = json!({"brandNewField": 5, "meta": {"a.b": [0, 1, "two"]}});
    let r = row(&m, TableKind::Contacts, &rec, &CTX);
    assert_eq!(cell(&r, "new_field"), s("5"));
    assert_eq!(cell(&r, "dotted"), s("two"));
    // Unresolved custom names read as null rather than guessing.
    assert_eq!(cell(&r, "by_key"), Value::Null);
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let errs = Mapping::from_path(&root().join("tests/fixtures/mappings/nope.toml")).unwrap_err();
    assert_eq!(errs.0[0].line, 0);
    assert!(errs.0[0].message.contains("cannot read the mapping file"));
}
