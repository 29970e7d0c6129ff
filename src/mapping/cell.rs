//! The value a column carries between its source path, its transforms and its output type,
//! and the conversion of that value into a typed [`Value`].
//!
//! [`Cur`] borrows from the record (and from the compiled mapping) for as long as it can, so
//! a column that copies a string allocates once: when the final [`Value`] is built. Which
//! conversions exist and how they treat odd input is documented on the file format in
//! `mapping/mod.rs`; what to do when a conversion fails (`on_error`) is decided by the caller.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

use crate::table::{ColumnType, Value};

/// A column's value while it is being computed.
#[derive(Debug, Clone)]
pub(crate) enum Cur<'a> {
    Null,
    /// A JSON value, never `Json::Null` (that is [`Cur::Null`]).
    Json(&'a Json),
    Text(Cow<'a, str>),
    List(Vec<String>),
}

impl<'a> Cur<'a> {
    pub fn from_json(v: Option<&'a Json>) -> Cur<'a> {
        match v {
            None | Some(Json::Null) => Cur::Null,
            Some(v) => Cur::Json(v),
        }
    }

    /// Null, an empty string or an empty list: what `default`, `coalesce`, `exists` and
    /// `required` treat as "no value".
    pub fn is_empty(&self) -> bool {
        match self {
            Cur::Null => true,
            Cur::Json(Json::String(s)) => s.is_empty(),
            Cur::Json(Json::Array(a)) => a.is_empty(),
            Cur::Json(Json::Object(o)) => o.is_empty(),
            Cur::Json(_) => false,
            Cur::Text(t) => t.is_empty(),
            Cur::List(l) => l.is_empty(),
        }
    }

    /// The value as text, if it has one: lists are joined with `sep`, objects are JSON text.
    pub fn into_text(self, sep: &str) -> Option<Cow<'a, str>> {
        match self {
            Cur::Null => None,
            Cur::Json(v) => Some(json_text(v, sep)),
            Cur::Text(t) => Some(t),
            Cur::List(l) => Some(Cow::Owned(l.join(sep))),
        }
    }

    /// Append the value's text (nothing for null) to `out`; used by templates.
    pub fn push_text(&self, out: &mut String, sep: &str) {
        match self {
            Cur::Null => {}
            Cur::Json(Json::String(s)) => out.push_str(s),
            Cur::Json(v) => out.push_str(&json_text(v, sep)),
            Cur::Text(t) => out.push_str(t),
            Cur::List(l) => out.push_str(&l.join(sep)),
        }
    }

    /// Apply a text function to the value, element-wise on lists. Null stays null.
    pub fn map_text<F>(self, sep: &str, mut f: F) -> Result<Cur<'a>, String>
    where
        F: FnMut(Cow<'a, str>) -> Result<Cow<'a, str>, String>,
    {
        match self {
            Cur::Null => Ok(Cur::Null),
            Cur::Json(Json::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if item.is_null() {
                        continue;
                    }
                    out.push(f(json_text(item, sep))?.into_owned());
                }
                Ok(Cur::List(out))
            }
            Cur::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(f(Cow::Owned(item))?.into_owned());
                }
                Ok(Cur::List(out))
            }
            Cur::Json(v) => Ok(Cur::Text(f(json_text(v, sep))?)),
            Cur::Text(t) => Ok(Cur::Text(f(t)?)),
        }
    }

    /// The value as a list of strings: arrays element-wise (nulls dropped), a scalar as a
    /// one-element list.
    pub fn into_list(self, sep: &str) -> Option<Vec<String>> {
        match self {
            Cur::Null => None,
            Cur::List(l) => Some(l),
            Cur::Json(Json::Array(items)) => Some(
                items
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(|v| json_text(v, sep).into_owned())
                    .collect(),
            ),
            Cur::Json(v) => Some(vec![json_text(v, sep).into_owned()]),
            Cur::Text(t) => Some(vec![t.into_owned()]),
        }
    }
}

/// Text of a JSON value: strings as they are, numbers and booleans as JSON spells them,
/// arrays of scalars joined with `sep`, anything else as JSON text.
pub(crate) fn json_text<'a>(v: &'a Json, sep: &str) -> Cow<'a, str> {
    match v {
        Json::String(s) => Cow::Borrowed(s.as_str()),
        Json::Null => Cow::Borrowed(""),
        Json::Bool(true) => Cow::Borrowed("true"),
        Json::Bool(false) => Cow::Borrowed("false"),
        Json::Number(n) => Cow::Owned(n.to_string()),
        Json::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            let mut out = String::new();
            for (i, item) in items.iter().filter(|i| !i.is_null()).enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&json_text(item, sep));
            }
            Cow::Owned(out)
        }
        Json::Array(_) | Json::Object(_) => Cow::Owned(v.to_string()),
    }
}

/// Convert a column's final value to its output type. The error is the reject reason.
pub(crate) fn convert(cur: Cur<'_>, ty: ColumnType, sep: &str) -> Result<Value, String> {
    match ty {
        ColumnType::String => Ok(cur
            .into_text(sep)
            .map_or(Value::Null, |t| Value::String(t.into_owned()))),
        ColumnType::Json => Ok(match cur {
            Cur::Null => Value::Null,
            Cur::Json(v) => Value::Json(v.clone()),
            Cur::Text(t) => Value::Json(Json::String(t.into_owned())),
            Cur::List(l) => Value::Json(Json::Array(l.into_iter().map(Json::String).collect())),
        }),
        ColumnType::ListString => {
            let empty_text = match &cur {
                Cur::Json(Json::String(s)) => s.is_empty(),
                Cur::Text(t) => t.is_empty(),
                _ => false,
            };
            if empty_text {
                return Ok(Value::Null);
            }
            Ok(cur.into_list(sep).map_or(Value::Null, Value::List))
        }
        ColumnType::Bool => scalar(
            cur,
            ty,
            |v| match v {
                Json::Bool(b) => Some(*b),
                Json::Number(n) => match n.as_f64() {
                    Some(1.0) => Some(true),
                    Some(0.0) => Some(false),
                    _ => None,
                },
                _ => None,
            },
            parse_bool,
        )
        .map(|b| b.map_or(Value::Null, Value::Bool)),
        ColumnType::Int => scalar(
            cur,
            ty,
            |v| match v {
                Json::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
                _ => None,
            },
            |s| {
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(whole))
            },
        )
        .map(|i| i.map_or(Value::Null, Value::Int)),
        ColumnType::Float => scalar(
            cur,
            ty,
            |v| match v {
                Json::Number(n) => n.as_f64(),
                _ => None,
            },
            |s| s.parse::<f64>().ok().filter(|f| f.is_finite()),
        )
        .map(|f| f.map_or(Value::Null, Value::Float)),
        ColumnType::Decimal { precision, scale } => {
            let text = match cur.clone() {
                Cur::Json(Json::Number(n)) => Some(Cow::Owned(n.to_string())),
                Cur::Json(Json::String(s)) => Some(Cow::Borrowed(s.trim())),
                Cur::Text(t) => Some(t),
                Cur::Null => return Ok(Value::Null),
                _ => None,
            };
            let Some(text) = text else {
                return Err(cannot(&cur, ty, sep));
            };
            let text = text.trim();
            if text.is_empty() {
                return Ok(Value::Null);
            }
            parse_decimal(text, precision, scale)
                .map(Value::Decimal)
                .map_err(|why| format!("{}: {why}", cannot(&cur, ty, sep)))
        }
        ColumnType::Timestamp => scalar(
            cur,
            ty,
            |v| match v {
                Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
                _ => None,
            },
            parse_timestamp_ms,
        )
        .map(|t| t.map_or(Value::Null, Value::Timestamp)),
        ColumnType::Date => scalar(
            cur,
            ty,
            |v| match v {
                Json::Number(n) => n.as_i64().map(|ms| ms.div_euclid(86_400_000) as i32),
                _ => None,
            },
            parse_date_days,
        )
        .map(|d| d.map_or(Value::Null, Value::Date)),
    }
}

/// Shared shape of the scalar conversions: JSON numbers/booleans through `from_json`,
/// text (trimmed; empty means null) through `from_text`.
fn scalar<'a, T>(
    cur: Cur<'a>,
    ty: ColumnType,
    from_json: impl Fn(&Json) -> Option<T>,
    from_text: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    let got = match &cur {
        Cur::Null => return Ok(None),
        Cur::Json(Json::String(s)) => text_or_null(s, &from_text),
        Cur::Text(t) => text_or_null(t, &from_text),
        Cur::Json(v) => from_json(v).map(Some),
        Cur::List(_) => None,
    };
    got.ok_or_else(|| cannot(&cur, ty, ";"))
}

fn text_or_null<T>(s: &str, from_text: impl Fn(&str) -> Option<T>) -> Option<Option<T>> {
    let s = s.trim();
    if s.is_empty() {
        Some(None)
    } else {
        from_text(s).map(Some)
    }
}

fn whole(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// The reject reason for a value that does not convert.
pub(crate) fn cannot(cur: &Cur<'_>, ty: ColumnType, sep: &str) -> String {
    let shown = match cur {
        Cur::Null => "null".to_string(),
        Cur::Json(Json::String(s)) => quote(s),
        Cur::Text(t) => quote(t),
        Cur::Json(v) => truncate(&v.to_string()),
        Cur::List(l) => truncate(&format!("{:?}", l.join(sep))),
    };
    format!("cannot convert {shown} to {}", ty.spelling())
}

/// A value quoted for a message, cut at 60 characters.
pub(crate) fn quote(s: &str) -> String {
    truncate(&format!("{s:?}"))
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "yes", "y", "1"];
    const FALSE: [&str; 4] = ["false", "no", "n", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// Milliseconds since the epoch (UTC) from RFC 3339 / ISO 8601 text (an offset is honoured;
/// none means UTC), a plain date (midnight UTC) or an integer of epoch milliseconds.
pub(crate) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.timestamp_millis());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|dt| dt.and_utc().timestamp_millis());
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

/// Days since 1970-01-01 from a plain date, or the UTC date of anything
/// [`parse_timestamp_ms`] accepts.
pub(crate) fn parse_date_days(s: &str) -> Option<i32> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(days_since_epoch(d));
    }
    parse_timestamp_ms(s).and_then(|ms| i32::try_from(ms.div_euclid(86_400_000)).ok())
}

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as i32
}

/// Exact decimal parsing (no float round trip): `-12.345`, `1e3`, `+.5`. Extra fractional
/// digits are rounded half away from zero; too many integer digits is an error.
pub(crate) fn parse_decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (
            &body[..i],
            body[i + 1..]
                .parse::<i32>()
                .map_err(|_| "not a number".to_string())?,
        ),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err("not a number".into());
    }
    // All digits, with the point `point` digits from the left.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    if exp.abs() > 1_000 {
        return Err("exponent out of range".into());
    }
    let point = int_part.len() as i64 + i64::from(exp);
    // Keep digits up to `scale` places after the point, then round on the next one.
    let keep = point + i64::from(scale);
    let mut unscaled: i128 = 0;
    let mut significant = 0u32;
    for i in 0..keep.max(0) {
        let d = if (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        };
        if significant > 0 || d != 0 {
            significant += 1;
        }
        if significant > u32::from(precision) {
            return Err(format!("more than {precision} significant digits"));
        }
        unscaled = unscaled * 10 + i128::from(d);
    }
    let next = if keep >= 0 {
        digits.get(keep as usize).copied().unwrap_or(0)
    } else {
        0
    };
    if next >= 5 {
        unscaled += 1;
        if unscaled >= 10i128.pow(u32::from(precision)) {
            return Err(format!("more than {precision} significant digits"));
        }
    }
    Ok(if neg { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Json, ty: ColumnType) -> Result<Value, String> {
        convert(Cur::from_json(Some(&v)), ty, ";")
    }

    #[test]
    fn strings_from_any_json() {
        assert_eq!(
            conv(json!("a"), ColumnType::String),
            Ok(Value::String("a".into()))
        );
        assert_eq!(
            conv(json!(12.5), ColumnType::String),
            Ok(Value::String("12.5".into()))
        );
        assert_eq!(
            conv(json!(true), ColumnType::String),
            Ok(Value::String("true".into()))
        );
        assert_eq!(
            conv(json!(["a", "b"]), ColumnType::String),
            Ok(Value::String("a;b".into()))
        );
        assert_eq!(
            conv(json!({"url": "x"}), ColumnType::String),
            Ok(Value::String(r#"{"url":"x"}"#.into()))
        );
        assert_eq!(conv(json!(null), ColumnType::String), Ok(Value::Null));
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            (json!(true), true),
            (json!("yes"), true),
            (json!("TRUE"), true),
            (json!(1), true),
            (json!("0"), false),
            (json!("No"), false),
            (json!(0), false),
        ] {
            assert_eq!(
                conv(v.clone(), ColumnType::Bool),
                Ok(Value::Bool(want)),
                "{v}"
            );
        }
        assert_eq!(conv(json!(""), ColumnType::Bool), Ok(Value::Null));
        let err = conv(json!("maybe"), ColumnType::Bool).unwrap_err();
        assert_eq!(err, "cannot convert \"maybe\" to bool");
        assert!(conv(json!(2), ColumnType::Bool).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(conv(json!("42"), ColumnType::Int), Ok(Value::Int(42)));
        assert_eq!(conv(json!(" 42 "), ColumnType::Int), Ok(Value::Int(42)));
        assert_eq!(conv(json!(42.0), ColumnType::Int), Ok(Value::Int(42)));
        assert_eq!(conv(json!("7.0"), ColumnType::Int), Ok(Value::Int(7)));
        assert!(conv(json!(42.5), ColumnType::Int).is_err());
        assert!(conv(json!("forty"), ColumnType::Int).is_err());
        assert_eq!(conv(json!("2.5"), ColumnType::Float), Ok(Value::Float(2.5)));
        assert_eq!(conv(json!(3), ColumnType::Float), Ok(Value::Float(3.0)));
        assert!(conv(json!("NaN"), ColumnType::Float).is_err());
        assert_eq!(conv(json!(""), ColumnType::Float), Ok(Value::Null));
    }

    #[test]
    fn decimals_are_exact_and_rounded_half_away_from_zero() {
        let d = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(conv(json!("12.345"), d), Ok(Value::Decimal(1235)));
        assert_eq!(conv(json!("-12.344"), d), Ok(Value::Decimal(-1234)));
        assert_eq!(conv(json!(0.1), d), Ok(Value::Decimal(10)));
        assert_eq!(conv(json!("1e3"), d), Ok(Value::Decimal(100_000)));
        assert_eq!(conv(json!(".5"), d), Ok(Value::Decimal(50)));
        assert_eq!(
            conv(json!("99999999.99"), d),
            Ok(Value::Decimal(9_999_999_999))
        );
        let err = conv(json!("123456789.1"), d).unwrap_err();
        assert!(err.contains("more than 10 significant digits"), "{err}");
        assert!(conv(json!("12,5"), d).is_err());
        assert!(conv(json!("99999999.995"), d).is_err());
    }

    #[test]
    fn timestamps_and_dates() {
        let ts = ColumnType::Timestamp;
        assert_eq!(
            conv(json!("2021-07-02T05:18:26.704Z"), ts),
            Ok(Value::Timestamp(1_625_203_106_704))
        );
        assert_eq!(
            conv(json!("2021-07-02T07:18:26.704+02:00"), ts),
            Ok(Value::Timestamp(1_625_203_106_704))
        );
        assert_eq!(
            conv(json!("2021-07-16 11:00:00"), ts),
            Ok(Value::Timestamp(1_626_433_200_000))
        );
        assert_eq!(
            conv(json!(1_625_203_106_704i64), ts),
            Ok(Value::Timestamp(1_625_203_106_704))
        );
        assert_eq!(
            conv(json!("1625203106704"), ts),
            Ok(Value::Timestamp(1_625_203_106_704))
        );
        assert_eq!(
            conv(json!("1970-01-02"), ts),
            Ok(Value::Timestamp(86_400_000))
        );
        assert!(conv(json!("yesterday"), ts).is_err());

        let d = ColumnType::Date;
        assert_eq!(conv(json!("1970-01-11"), d), Ok(Value::Date(10)));
        assert_eq!(conv(json!("1969-12-31"), d), Ok(Value::Date(-1)));
        assert_eq!(
            conv(json!("2021-07-02T23:59:59Z"), d),
            Ok(Value::Date(18_810))
        );
        assert_eq!(conv(json!(86_400_000), d), Ok(Value::Date(1)));
        assert!(conv(json!("02/07/2021"), d).is_err());
    }

    #[test]
    fn lists() {
        let l = ColumnType::ListString;
        assert_eq!(
            conv(json!(["vip", 3, null, "lead"]), l),
            Ok(Value::List(vec!["vip".into(), "3".into(), "lead".into()]))
        );
        assert_eq!(conv(json!("one"), l), Ok(Value::List(vec!["one".into()])));
        assert_eq!(conv(json!(""), l), Ok(Value::Null));
        assert_eq!(
            convert(Cur::Text(Cow::Borrowed("")), l, ";"),
            Ok(Value::Null)
        );
        assert_eq!(conv(json!([]), l), Ok(Value::List(vec![])));
    }

    #[test]
    fn json_keeps_the_value() {
        let v = json!({"a": [1, 2]});
        assert_eq!(conv(v.clone(), ColumnType::Json), Ok(Value::Json(v)));
    }

    #[test]
    fn long_values_are_cut_in_reasons() {
        let long = "x".repeat(200);
        let err = conv(json!(long), ColumnType::Int).unwrap_err();
        assert!(err.len() < 100, "{err}");
        assert!(err.contains("..."));
    }
}
