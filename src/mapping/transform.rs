//! Compiled column transforms and how each changes a value.
//!
//! Everything that can be prepared is prepared at load (regexes, templates, chrono format
//! items, lookup tables), so applying a transform does no parsing. Reading transforms from
//! the file, with their errors, is `compile`'s job.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::format::{Item, Parsed};
use chrono::{NaiveDate, NaiveDateTime};
use regex::Regex;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::cell::{quote, Cur};
use super::path::{Ctx, Path, Template};

/// One transform, with its name (for reject reasons) and its text as written (for
/// `mapping check`).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub transform: Transform,
    pub name: &'static str,
    pub text: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Trim,
    Lower,
    Upper,
    Sha256,
    Default(Json),
    Template(Template),
    Split(String),
    /// `None`: the file's list separator.
    Join(Option<String>),
    Date {
        inputs: Vec<Vec<Item<'static>>>,
        output: Option<Vec<Item<'static>>>,
    },
    PhoneE164 {
        calling_code: &'static str,
    },
    Lookup {
        table: HashMap<String, Json>,
        default: Option<Json>,
    },
    RegexReplace {
        regex: Regex,
        replacement: String,
    },
    Constant(Json),
    Coalesce(Vec<Path>),
}

/// Names accepted in `transform = [...]`, for messages and suggestions.
pub(crate) const TRANSFORM_NAMES: &[&str] = &[
    "trim",
    "lower",
    "upper",
    "default",
    "template",
    "split",
    "join",
    "date",
    "phone_e164",
    "lookup",
    "regex_replace",
    "sha256",
    "constant",
    "coalesce",
];

impl Transform {
    /// Whether the transform produces a value without needing one (so a column may omit
    /// `from`).
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            Transform::Template(_) | Transform::Constant(_) | Transform::Coalesce(_)
        )
    }

    pub fn paths_mut(&mut self) -> Vec<&mut Path> {
        match self {
            Transform::Template(t) => t.paths_mut().collect(),
            Transform::Coalesce(paths) => paths.iter_mut().collect(),
            _ => Vec::new(),
        }
    }

    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Transform::Template(t) => t.paths().collect(),
            Transform::Coalesce(paths) => paths.iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn apply<'a>(
        &'a self,
        cur: Cur<'a>,
        record: &'a Json,
        ctx: &Ctx<'a>,
        sep: &'a str,
    ) -> Result<Cur<'a>, String> {
        match self {
            Transform::Trim => cur.map_text(sep, |t| Ok(trim(t))),
            Transform::Lower => cur.map_text(sep, |t| {
                Ok(if t.chars().any(char::is_uppercase) {
                    Cow::Owned(t.to_lowercase())
                } else {
                    t
                })
            }),
            Transform::Upper => cur.map_text(sep, |t| {
                Ok(if t.chars().any(char::is_lowercase) {
                    Cow::Owned(t.to_uppercase())
                } else {
                    t
                })
            }),
            Transform::Sha256 => cur.map_text(sep, |t| Ok(Cow::Owned(sha256_hex(&t)))),
            Transform::Default(v) => Ok(if cur.is_empty() {
                Cur::from_json(Some(v))
            } else {
                cur
            }),
            Transform::Template(t) => Ok(Cur::Text(Cow::Owned(t.render(record, ctx, &cur, sep)))),
            Transform::Split(by) => Ok(match cur.into_list(sep) {
                None => Cur::Null,
                Some(items) => Cur::List(
                    items
                        .iter()
                        .flat_map(|item| item.split(by.as_str()))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                ),
            }),
            Transform::Join(by) => {
                let by = by.as_deref().unwrap_or(sep);
                Ok(match cur {
                    Cur::List(items) => Cur::Text(Cow::Owned(items.join(by))),
                    Cur::Json(Json::Array(_)) => cur
                        .into_list(by)
                        .map_or(Cur::Null, |items| Cur::Text(Cow::Owned(items.join(by)))),
                    other => other,
                })
            }
            Transform::Date { inputs, output } => cur.map_text(sep, |t| {
                if t.trim().is_empty() {
                    return Ok(t);
                }
                reformat_date(t.trim(), inputs, output.as_deref())
                    .map(Cow::Owned)
                    .ok_or_else(|| format!("{} matches none of the date formats", quote(&t)))
            }),
            Transform::PhoneE164 { calling_code } => cur.map_text(sep, |t| {
                if t.trim().is_empty() {
                    return Ok(t);
                }
                super::phone::to_e164(&t, calling_code).map(Cow::Owned)
            }),
            Transform::Lookup { table, default } => match cur {
                Cur::Null => Ok(default
                    .as_ref()
                    .map_or(Cur::Null, |d| Cur::from_json(Some(d)))),
                Cur::List(_) | Cur::Json(Json::Array(_)) => cur.map_text(sep, |t| {
                    Ok(match table.get(t.as_ref()).or(default.as_ref()) {
                        Some(v) => Cow::Owned(super::cell::json_text(v, sep).into_owned()),
                        None => t,
                    })
                }),
                other => {
                    let hit = match &other {
                        Cur::Json(v) => table.get(super::cell::json_text(v, sep).as_ref()),
                        Cur::Text(t) => table.get(t.as_ref()),
                        _ => None,
                    };
                    Ok(match hit.or(default.as_ref()) {
                        Some(v) => Cur::from_json(Some(v)),
                        None => other,
                    })
                }
            },
            Transform::RegexReplace { regex, replacement } => cur.map_text(sep, |t| {
                Ok(match t {
                    Cow::Borrowed(s) => regex.replace_all(s, replacement.as_str()),
                    Cow::Owned(s) => {
                        Cow::Owned(regex.replace_all(&s, replacement.as_str()).into_owned())
                    }
                })
            }),
            Transform::Constant(v) => Ok(Cur::from_json(Some(v))),
            Transform::Coalesce(paths) => {
                if !cur.is_empty() {
                    return Ok(cur);
                }
                Ok(paths
                    .iter()
                    .map(|p| p.get(record, ctx))
                    .find(|v| !v.is_empty())
                    .unwrap_or(Cur::Null))
            }
        }
    }
}

fn trim(t: Cow<'_, str>) -> Cow<'_, str> {
    match t {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => {
            let trimmed = s.trim();
            if trimmed.len() == s.len() {
                Cow::Owned(s)
            } else {
                Cow::Owned(trimmed.to_string())
            }
        }
    }
}

pub(crate) fn sha256_hex(s: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Parse `s` with the first matching input format and print it with `output`, or as ISO
/// 8601 (`2024-03-01`, or `2024-03-01T09:30:00.000Z` when the input had a time).
fn reformat_date(
    s: &str,
    inputs: &[Vec<Item<'static>>],
    output: Option<&[Item<'static>]>,
) -> Option<String> {
    for items in inputs {
        let mut parsed = Parsed::new();
        if chrono::format::parse(&mut parsed, s, items.iter()).is_err() {
            continue;
        }
        let when = if let Ok(dt) = parsed.to_datetime() {
            Some((dt.naive_utc(), true))
        } else if let Ok(dt) = parsed.to_naive_datetime_with_offset(0) {
            Some((dt, true))
        } else {
            parsed
                .to_naive_date()
                .ok()
                .and_then(|d: NaiveDate| d.and_hms_opt(0, 0, 0))
                .map(|dt| (dt, false))
        };
        let Some((dt, has_time)) = when else {
            continue;
        };
        return Some(format_date(dt, has_time, output));
    }
    None
}

fn format_date(dt: NaiveDateTime, has_time: bool, output: Option<&[Item<'static>]>) -> String {
    match output {
        Some(items) => dt.format_with_items(items.iter()).to_string(),
        None if has_time => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => dt.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::format::StrftimeItems;
    use serde_json::json;

    fn ctx() -> Ctx<'static> {
        Ctx {
            location_id: "L",
            contact_id: Some("C"),
        }
    }

    fn run(t: &Transform, v: Json) -> Result<Json, String> {
        let record = json!({"firstName": "Ann", "alt": "x@y.z", "blank": ""});
        let c = ctx();
        let out = t.apply(Cur::from_json(Some(&v)), &record, &c, ";")?;
        Ok(match out {
            Cur::Null => Json::Null,
            Cur::Json(v) => v.clone(),
            Cur::Text(t) => Json::String(t.into_owned()),
            Cur::List(l) => json!(l),
        })
    }

    fn items(f: &str) -> Vec<Item<'static>> {
        StrftimeItems::new(f)
            .parse_to_owned()
            .unwrap_or_else(|e| panic!("{f}: {e}"))
    }

    #[test]
    fn case_and_whitespace() {
        assert_eq!(run(&Transform::Trim, json!("  Ann  ")), Ok(json!("Ann")));
        assert_eq!(
            run(&Transform::Lower, json!("ÉMILE@X.COM")),
            Ok(json!("émile@x.com"))
        );
        assert_eq!(
            run(&Transform::Upper, json!("straße")),
            Ok(json!("STRASSE"))
        );
        assert_eq!(
            run(&Transform::Trim, json!([" a ", "b "])),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(run(&Transform::Trim, json!(null)), Ok(json!(null)));
        assert_eq!(run(&Transform::Lower, json!(12)), Ok(json!("12")));
    }

    #[test]
    fn sha256_is_lower_hex() {
        assert_eq!(
            run(&Transform::Sha256, json!("abc")),
            Ok(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert_eq!(run(&Transform::Sha256, json!(null)), Ok(json!(null)));
    }

    #[test]
    fn default_fills_null_and_empty_only() {
        let t = Transform::Default(json!("n/a"));
        assert_eq!(run(&t, json!(null)), Ok(json!("n/a")));
        assert_eq!(run(&t, json!("")), Ok(json!("n/a")));
        assert_eq!(run(&t, json!("x")), Ok(json!("x")));
        assert_eq!(run(&t, json!(false)), Ok(json!(false)));
    }

    #[test]
    fn split_and_join() {
        let split = Transform::Split(",".into());
        assert_eq!(run(&split, json!("a, b,,c ")), Ok(json!(["a", "b", "c"])));
        assert_eq!(run(&split, json!(null)), Ok(json!(null)));
        assert_eq!(
            run(&Transform::Join(Some("|".into())), json!(["a", "b"])),
            Ok(json!("a|b"))
        );
        assert_eq!(
            run(&Transform::Join(None), json!(["a", "b"])),
            Ok(json!("a;b"))
        );
        assert_eq!(
            run(&Transform::Join(None), json!("solo")),
            Ok(json!("solo"))
        );
    }

    #[test]
    fn dates_try_each_format() {
        let t = Transform::Date {
            inputs: vec![items("%d/%m/%Y"), items("%Y-%m-%dT%H:%M:%S%.f%:z")],
            output: None,
        };
        assert_eq!(run(&t, json!("02/07/2021")), Ok(json!("2021-07-02")));
        assert_eq!(
            run(&t, json!("2021-07-02T07:00:00+02:00")),
            Ok(json!("2021-07-02T05:00:00.000Z"))
        );
        let err = run(&t, json!("July 2nd")).unwrap_err();
        assert_eq!(err, "\"July 2nd\" matches none of the date formats");
        assert_eq!(run(&t, json!("")), Ok(json!("")));
        let out = Transform::Date {
            inputs: vec![items("%Y-%m-%d")],
            output: Some(items("%d.%m.%Y")),
        };
        assert_eq!(run(&out, json!("2021-07-02")), Ok(json!("02.07.2021")));
    }

    #[test]
    fn phone_e164() {
        let t = Transform::PhoneE164 { calling_code: "44" };
        assert_eq!(run(&t, json!("07911 123456")), Ok(json!("+447911123456")));
        assert!(run(&t, json!("n/a")).is_err());
        assert_eq!(run(&t, json!(null)), Ok(json!(null)));
    }

    #[test]
    fn lookup_with_and_without_default() {
        let table: HashMap<String, Json> = [
            ("active".to_string(), json!("true")),
            ("1".to_string(), json!("one")),
        ]
        .into();
        let with = Transform::Lookup {
            table: table.clone(),
            default: Some(json!("false")),
        };
        assert_eq!(run(&with, json!("active")), Ok(json!("true")));
        assert_eq!(run(&with, json!("inactive")), Ok(json!("false")));
        assert_eq!(run(&with, json!(null)), Ok(json!("false")));
        assert_eq!(run(&with, json!(1)), Ok(json!("one")));
        let without = Transform::Lookup {
            table,
            default: None,
        };
        assert_eq!(run(&without, json!("other")), Ok(json!("other")));
        assert_eq!(run(&without, json!(null)), Ok(json!(null)));
        assert_eq!(
            run(&without, json!(["active", "x"])),
            Ok(json!(["true", "x"]))
        );
    }

    #[test]
    fn regex_replace_all_matches() {
        let t = Transform::RegexReplace {
            regex: Regex::new(r"\s+").unwrap_or_else(|e| panic!("{e}")),
            replacement: " ".into(),
        };
        assert_eq!(run(&t, json!("a   b\t c")), Ok(json!("a b c")));
        let groups = Transform::RegexReplace {
            regex: Regex::new(r"^(\w+)@(.*)$").unwrap_or_else(|e| panic!("{e}")),
            replacement: "$2/$1".into(),
        };
        assert_eq!(run(&groups, json!("ann@x.org")), Ok(json!("x.org/ann")));
    }

    #[test]
    fn constant_and_coalesce() {
        assert_eq!(
            run(&Transform::Constant(json!(5)), json!("ignored")),
            Ok(json!(5))
        );
        let paths = ["blank", "alt"]
            .iter()
            .map(|p| super::super::path::parse_path(p, (1, 1)).unwrap_or_else(|e| panic!("{e:?}")))
            .collect();
        let t = Transform::Coalesce(paths);
        assert_eq!(run(&t, json!(null)), Ok(json!("x@y.z")));
        assert_eq!(run(&t, json!("mine")), Ok(json!("mine")));
    }

    #[test]
    fn template_uses_record_and_current_value() {
        let t = Transform::Template(
            super::super::path::parse_template("{firstName}<{}>", |_| (1, 1))
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert_eq!(run(&t, json!("v")), Ok(json!("Ann<v>")));
    }
}
