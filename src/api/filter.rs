//! `--where` expressions → the filter objects of `POST /contacts/search`.
//!
//! One expression is one condition; several are combined with AND, as the search combines the
//! entries of `filters`. The grammar is small on purpose, so a shell line reads like the
//! smart-list filter it stands for:
//!
//! | expression              | filter sent                                               |
//! |-------------------------|-----------------------------------------------------------|
//! | `tags=lead`             | `{field: tags, operator: eq, value: "lead"}` (has the tag) |
//! | `tags=a,b`              | `eq` with `["a","b"]`: any of them                         |
//! | `tags!=cold`            | `not_eq`                                                   |
//! | `firstName~jo`          | `contains`; `!~` is `not_contains`                         |
//! | `dateAdded>=2024-01-01` | `range` with `gte` (`>`, `<`, `<=` likewise), ISO 8601 ms  |
//! | `email exists`          | `exists`; `businessId missing` is `not_exists`             |
//!
//! Two comparisons of one date field (`dateAdded>=2024-01-01`, `dateAdded<2025-01-01`) become
//! one `range`, which is how GHL expects a window.

use serde_json::{json, Map, Value};

/// The contact fields the search filters on (the request schema's documented ones).
pub const FIELDS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "email",
    "phone",
    "tags",
    "businessId",
    "dnd",
    "dateAdded",
    "dateUpdated",
    "companyName",
    "source",
    "assignedTo",
    "country",
    "city",
    "state",
    "postalCode",
    "type",
    "timezone",
];

const DATE_FIELDS: &[&str] = &["dateAdded", "dateUpdated"];

/// Operators, longest first so `>=` is not read as `>`.
const OPERATORS: &[(&str, &str)] = &[
    (">=", "gte"),
    ("<=", "lte"),
    ("!=", "not_eq"),
    ("!~", "not_contains"),
    ("=", "eq"),
    ("~", "contains"),
    (">", "gt"),
    ("<", "lt"),
];

/// An instant given as RFC 3339 or `YYYY-MM-DD` (midnight UTC), in epoch milliseconds.
pub fn parse_instant(s: &str) -> Result<i64, &'static str> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| "expected RFC 3339 (2024-05-01T00:00:00Z) or YYYY-MM-DD")?;
    Ok(d.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis())
}

/// Epoch milliseconds as the ISO 8601 string the search compares dates with.
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every expression → the `filters` array, or a message naming the expression and the fix.
pub fn parse_where(exprs: &[String]) -> Result<Vec<Value>, String> {
    let mut filters: Vec<Value> = Vec::new();
    // Index in `filters` of each date field's range, to merge a window into one filter.
    let mut ranges: Map<String, Value> = Map::new();
    for expr in exprs {
        let (field, op, value) = split(expr).map_err(|why| format!("--where `{expr}`: {why}"))?;
        let filter =
            condition(field, op, value).map_err(|why| format!("--where `{expr}`: {why}"))?;
        if op_is_range(op) {
            if let Some(at) = ranges.get(field).and_then(Value::as_u64) {
                let merged = &mut filters[at as usize]["value"];
                if let (Some(m), Some(new)) = (merged.as_object_mut(), filter["value"].as_object())
                {
                    m.extend(new.clone());
                }
                continue;
            }
            ranges.insert(field.to_string(), json!(filters.len()));
        }
        filters.push(filter);
    }
    Ok(filters)
}

fn op_is_range(op: &str) -> bool {
    matches!(op, "gt" | "gte" | "lt" | "lte")
}

/// `field OP value` or `field exists|missing` → (field, GHL operator, value).
fn split(expr: &str) -> Result<(&str, &'static str, &str), String> {
    split_with(expr, check_field)
}

/// [`split`] for any field name `check` lets through: `listen`'s rules test the same
/// expressions against an event's own fields (`completed=true`, `contactId exists`).
pub fn split_with<'e>(
    expr: &'e str,
    check: impl Fn(&'e str) -> Result<&'e str, String>,
) -> Result<(&'e str, &'static str, &'e str), String> {
    let expr = expr.trim();
    for (word, op) in [(" exists", "exists"), (" missing", "not_exists")] {
        if let Some(field) = expr.strip_suffix(word) {
            return Ok((check(field.trim())?, op, ""));
        }
    }
    let (at, sym, op) = OPERATORS
        .iter()
        .filter_map(|(sym, op)| expr.find(sym).map(|at| (at, *sym, *op)))
        .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
        .ok_or("expected `field=value`, `field!=value`, `field~text`, `field!~text`, `field>=date` (or >, <, <=), `field exists` or `field missing`")?;
    let field = check(expr[..at].trim())?;
    let value = expr[at + sym.len()..].trim();
    if value.is_empty() {
        return Err(format!("no value after `{sym}`"));
    }
    Ok((field, op, value))
}

fn check_field(field: &str) -> Result<&str, String> {
    if FIELDS.contains(&field) {
        return Ok(field);
    }
    let hint = closest_field(field).map_or(String::new(), |f| format!("did you mean `{f}`? "));
    Err(format!(
        "unknown field `{field}`; {hint}the search filters on {}",
        FIELDS.join(", ")
    ))
}

/// The filter field a mistyped one most likely meant: the same but for case, a plural, or
/// one or two letters off.
fn closest_field(field: &str) -> Option<&'static str> {
    let want = field.to_lowercase();
    let distance = |a: &str, b: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    FIELDS
        .iter()
        .map(|f| (distance(&want, &f.to_lowercase()), *f))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, f)| f)
}

fn condition(field: &str, op: &str, value: &str) -> Result<Value, String> {
    let is_date = DATE_FIELDS.contains(&field);
    if matches!(op, "exists" | "not_exists") {
        return Ok(json!({"field": field, "operator": op}));
    }
    if op_is_range(op) {
        if !is_date {
            return Err(format!(
                "`{field}` is not a date; comparisons work on {}",
                DATE_FIELDS.join(" and ")
            ));
        }
        let ms = parse_instant(value).map_err(|e| format!("`{value}`: {e}"))?;
        return Ok(json!({"field": field, "operator": "range", "value": {op: iso_millis(ms)}}));
    }
    if is_date {
        return Err(format!(
            "compare dates with >, >=, < or <= (a day is `{field}>=D` and `{field}<D+1`)"
        ));
    }
    if matches!(op, "contains" | "not_contains") {
        return Ok(json!({"field": field, "operator": op, "value": value}));
    }
    let value = match field {
        "dnd" => match value {
            "true" | "false" => json!(value == "true"),
            other => return Err(format!("`dnd` is true or false, not `{other}`")),
        },
        _ if value.contains(',') => Value::Array(
            value
                .split(',')
                .map(|v| json!(v.trim()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        ),
        _ => json!(value),
    };
    Ok(json!({"field": field, "operator": op, "value": value}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(e: &str) -> Value {
        parse_where(&[e.to_string()]).unwrap().remove(0)
    }

    #[test]
    fn each_operator_becomes_its_filter() {
        assert_eq!(
            one("tags=lead"),
            json!({"field":"tags","operator":"eq","value":"lead"})
        );
        assert_eq!(one("tags = a, b")["value"], json!(["a", "b"]));
        assert_eq!(one("tags!=cold")["operator"], "not_eq");
        assert_eq!(one("firstName~jo")["operator"], "contains");
        assert_eq!(one("firstName!~jo")["operator"], "not_contains");
        assert_eq!(
            one("dateAdded>=2024-01-01"),
            json!({"field":"dateAdded","operator":"range","value":{"gte":"2024-01-01T00:00:00.000Z"}})
        );
        assert_eq!(
            one("dateUpdated<2024-01-01")["value"],
            json!({"lt": "2024-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            one("email exists"),
            json!({"field":"email","operator":"exists"})
        );
        assert_eq!(one("businessId missing")["operator"], "not_exists");
        assert_eq!(one("dnd=true")["value"], json!(true));
    }

    #[test]
    fn a_date_window_is_one_range() {
        let f = parse_where(&[
            "dateAdded>=2024-01-01".into(),
            "tags=lead".into(),
            "dateAdded<2025-01-01".into(),
        ])
        .unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0]["value"],
            json!({"gte":"2024-01-01T00:00:00.000Z","lt":"2025-01-01T00:00:00.000Z"})
        );
    }

    #[test]
    fn mistakes_name_the_expression_and_the_fix() {
        let err = |e: &str| parse_where(&[e.to_string()]).unwrap_err();
        assert!(
            err("tag=lead").contains("unknown field `tag`; did you mean `tags`?"),
            "{}",
            err("tag=lead")
        );
        assert!(err("dateAdded=2024-01-01").contains("compare dates with"));
        assert!(err("dateAdded>=yesterday").contains("YYYY-MM-DD"));
        assert!(err("firstName>=a").contains("not a date"));
        assert!(err("tags").contains("expected `field=value`"));
        assert!(err("tags=").contains("no value"));
        assert!(err("dnd=maybe").contains("true or false"));
    }
}
