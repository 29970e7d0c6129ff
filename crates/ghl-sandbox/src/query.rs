//! The query language of `POST /contacts/search`: filters (`{field, operator, value}` and
//! nested `{group, filters}`), sort, text query and the `searchAfter` cursor, parsed from the
//! request body into typed values and evaluated against contacts.
//!
//! Parsing gathers every problem as a GHL-style 422 message; evaluation works on anything that
//! implements [`Record`] (a seeded contact before it becomes JSON, or a stored JSON contact),
//! so a scan over a million seeded contacts never builds their JSON. Paging and caching of
//! results are left to [`super::store`].

use super::data::{parse_date_ms, Contact};
use super::ids::IdCodec;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A contact field that filters and sorts can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    FirstName,
    LastName,
    Email,
    Phone,
    Tags,
    BusinessId,
    Dnd,
    DateAdded,
    DateUpdated,
    CompanyName,
    Source,
    AssignedTo,
    Country,
    City,
    State,
    PostalCode,
    Type,
    Timezone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Date,
    Bool,
    List,
}

const FIELD_NAMES: &[(&str, Field)] = &[
    ("id", Field::Id),
    ("firstName", Field::FirstName),
    ("firstNameLowerCase", Field::FirstName),
    ("lastName", Field::LastName),
    ("lastNameLowerCase", Field::LastName),
    ("email", Field::Email),
    ("emailLowerCase", Field::Email),
    ("phone", Field::Phone),
    ("tags", Field::Tags),
    ("businessId", Field::BusinessId),
    ("dnd", Field::Dnd),
    ("dateAdded", Field::DateAdded),
    ("dateUpdated", Field::DateUpdated),
    ("companyName", Field::CompanyName),
    ("source", Field::Source),
    ("assignedTo", Field::AssignedTo),
    ("country", Field::Country),
    ("city", Field::City),
    ("state", Field::State),
    ("postalCode", Field::PostalCode),
    ("type", Field::Type),
    ("timezone", Field::Timezone),
];

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    pub fn kind(self) -> Kind {
        match self {
            Field::Tags => Kind::List,
            Field::Dnd => Kind::Bool,
            Field::DateAdded | Field::DateUpdated => Kind::Date,
            _ => Kind::Str,
        }
    }

    /// The property of the contact JSON that holds this field.
    pub fn json_key(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::FirstName => "firstName",
            Field::LastName => "lastName",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Tags => "tags",
            Field::BusinessId => "businessId",
            Field::Dnd => "dnd",
            Field::DateAdded => "dateAdded",
            Field::DateUpdated => "dateUpdated",
            Field::CompanyName => "companyName",
            Field::Source => "source",
            Field::AssignedTo => "assignedTo",
            Field::Country => "country",
            Field::City => "city",
            Field::State => "state",
            Field::PostalCode => "postalCode",
            Field::Type => "type",
            Field::Timezone => "timezone",
        }
    }
}

/// A field's value on one contact.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldVal<'a> {
    Null,
    Str(Cow<'a, str>),
    Date(i64),
    Bool(bool),
    List(Vec<&'a str>),
}

/// A contact seen by filters and sorts.
pub trait Record {
    fn field(&self, f: Field) -> FieldVal<'_>;
}

fn opt(s: &Option<String>) -> FieldVal<'_> {
    s.as_deref()
        .map_or(FieldVal::Null, |s| FieldVal::Str(Cow::Borrowed(s)))
}

impl Record for Contact {
    fn field(&self, f: Field) -> FieldVal<'_> {
        match f {
            Field::Id => FieldVal::Str(Cow::Borrowed(&self.id)),
            Field::FirstName => opt(&self.first_name),
            Field::LastName => opt(&self.last_name),
            Field::Email => opt(&self.email),
            Field::Phone => opt(&self.phone),
            Field::Tags => FieldVal::List(self.tags.iter().map(String::as_str).collect()),
            Field::BusinessId => opt(&self.business_id),
            Field::Dnd => FieldVal::Bool(self.dnd),
            Field::DateAdded => FieldVal::Date(self.date_added),
            Field::DateUpdated => FieldVal::Date(self.date_updated),
            Field::CompanyName => opt(&self.company_name),
            Field::Source => opt(&self.source),
            Field::AssignedTo => opt(&self.assigned_to),
            Field::Type => FieldVal::Str(Cow::Borrowed(self.contact_type)),
            // Address fields are drawn with the JSON; filters on them see the JSON record.
            Field::Country | Field::City | Field::State | Field::PostalCode | Field::Timezone => {
                FieldVal::Null
            }
        }
    }
}

impl Record for Value {
    fn field(&self, f: Field) -> FieldVal<'_> {
        let v = match self.get(f.json_key()) {
            None | Some(Value::Null) => return FieldVal::Null,
            Some(v) => v,
        };
        match (f.kind(), v) {
            (Kind::List, Value::Array(a)) => {
                FieldVal::List(a.iter().filter_map(Value::as_str).collect())
            }
            (Kind::Bool, Value::Bool(b)) => FieldVal::Bool(*b),
            (Kind::Date, Value::String(s)) => {
                parse_date_ms(s).map_or(FieldVal::Null, FieldVal::Date)
            }
            (Kind::Date, Value::Number(n)) => n.as_i64().map_or(FieldVal::Null, FieldVal::Date),
            (_, Value::String(s)) => FieldVal::Str(Cow::Borrowed(s)),
            (_, Value::Number(n)) => FieldVal::Str(Cow::Owned(n.to_string())),
            (_, Value::Bool(b)) => FieldVal::Str(Cow::Owned(b.to_string())),
            _ => FieldVal::Null,
        }
    }
}

/// A filter operand, already in the field's kind. Strings are lower-cased: GHL matches
/// text case-insensitively.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Date(i64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Eq(Vec<Scalar>),
    NotEq(Vec<Scalar>),
    Contains(String),
    NotContains(String),
    Exists,
    NotExists,
    Range {
        gt: Option<Scalar>,
        gte: Option<Scalar>,
        lt: Option<Scalar>,
        lte: Option<Scalar>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Leaf { field: Field, cond: Cond },
    Group { any: bool, filters: Vec<Filter> },
}

const OPERATORS: &str = "eq, not_eq, contains, not_contains, exists, not_exists, range";

fn scalar(kind: Kind, v: &Value, path: &str, errs: &mut Vec<String>) -> Option<Scalar> {
    let s = match (kind, v) {
        (Kind::Date, Value::Number(n)) => n.as_f64().map(|f| Scalar::Date(f as i64)),
        (Kind::Date, Value::String(s)) => parse_date_ms(s)
            .or_else(|| s.trim().parse::<i64>().ok())
            .map(Scalar::Date),
        (Kind::Bool, Value::Bool(b)) => Some(Scalar::Bool(*b)),
        (Kind::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Some(Scalar::Bool(s == "true"))
        }
        (Kind::Str | Kind::List, Value::String(s)) => Some(Scalar::Str(s.to_lowercase())),
        (Kind::Str | Kind::List, Value::Number(n)) => Some(Scalar::Str(n.to_string())),
        _ => None,
    };
    if s.is_none() {
        let want = match kind {
            Kind::Date => "a date (ISO 8601 string or epoch milliseconds)",
            Kind::Bool => "a boolean",
            Kind::Str | Kind::List => "a string",
        };
        errs.push(format!("{path} must be {want}"));
    }
    s
}

fn scalars(kind: Kind, v: &Value, path: &str, errs: &mut Vec<String>) -> Vec<Scalar> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, x)| scalar(kind, x, &format!("{path}.{i}"), errs))
            .collect(),
        _ => scalar(kind, v, path, errs).into_iter().collect(),
    }
}

/// Parses `filters` (an array, combined with AND). Every problem goes to `errs`.
pub fn parse_filters(v: &Value, path: &str, errs: &mut Vec<String>) -> Vec<Filter> {
    let Some(items) = v.as_array() else {
        errs.push(format!("{path} must be an array"));
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, f)| parse_filter(f, &format!("{path}.{i}"), errs))
        .collect()
}

fn parse_filter(v: &Value, path: &str, errs: &mut Vec<String>) -> Option<Filter> {
    let Some(obj) = v.as_object() else {
        errs.push(format!("{path} must be an object"));
        return None;
    };
    if let Some(group) = obj.get("group") {
        for k in obj.keys() {
            if k != "group" && k != "filters" {
                errs.push(format!("{path}.property {k} should not exist"));
            }
        }
        let any = match group.as_str() {
            Some("AND") => false,
            Some("OR") => true,
            _ => {
                errs.push(format!(
                    "{path}.group must be one of the following values: AND, OR"
                ));
                false
            }
        };
        let filters = match obj.get("filters") {
            Some(f) => parse_filters(f, &format!("{path}.filters"), errs),
            None => {
                errs.push(format!("{path}.filters should not be empty"));
                Vec::new()
            }
        };
        return Some(Filter::Group { any, filters });
    }
    for k in obj.keys() {
        if k != "field" && k != "operator" && k != "value" {
            errs.push(format!("{path}.property {k} should not exist"));
        }
    }
    let field = match obj.get("field").and_then(Value::as_str) {
        Some(name) => match Field::parse(name) {
            Some(f) => Some(f),
            None => {
                errs.push(format!("{path}.field {name} is not supported"));
                None
            }
        },
        None => {
            errs.push(format!("{path}.field must be a string"));
            None
        }
    };
    let op = obj.get("operator").and_then(Value::as_str);
    let value = obj.get("value");
    let field = field?;
    let kind = field.kind();
    let need = |errs: &mut Vec<String>| {
        if value.is_none() {
            errs.push(format!("{path}.value should not be empty"));
        }
        value
    };
    let cond = match op {
        Some("eq") => Cond::Eq(scalars(kind, need(errs)?, &format!("{path}.value"), errs)),
        Some("not_eq") => Cond::NotEq(scalars(kind, need(errs)?, &format!("{path}.value"), errs)),
        Some(o @ ("contains" | "not_contains")) => {
            let s = match need(errs)? {
                Value::String(s) => s.to_lowercase(),
                _ => {
                    errs.push(format!("{path}.value must be a string"));
                    return None;
                }
            };
            if kind == Kind::Date || kind == Kind::Bool {
                errs.push(format!(
                    "{path}.operator {o} is not supported for field {}",
                    field.json_key()
                ));
            }
            if o == "contains" {
                Cond::Contains(s)
            } else {
                Cond::NotContains(s)
            }
        }
        Some("exists") => Cond::Exists,
        Some("not_exists") => Cond::NotExists,
        Some("range") => {
            let Some(r) = need(errs)?.as_object() else {
                errs.push(format!(
                    "{path}.value must be an object with gt, gte, lt or lte"
                ));
                return None;
            };
            let mut get = |k: &str| {
                r.get(k)
                    .and_then(|x| scalar(kind, x, &format!("{path}.value.{k}"), errs))
            };
            let (gt, gte, lt, lte) = (get("gt"), get("gte"), get("lt"), get("lte"));
            for k in r.keys() {
                if !["gt", "gte", "lt", "lte"].contains(&k.as_str()) {
                    errs.push(format!("{path}.value.property {k} should not exist"));
                }
            }
            if gt.is_none() && gte.is_none() && lt.is_none() && lte.is_none() {
                errs.push(format!(
                    "{path}.value must name at least one of gt, gte, lt, lte"
                ));
            }
            Cond::Range { gt, gte, lt, lte }
        }
        Some(other) => {
            errs.push(format!(
                "{path}.operator {other} must be one of the following values: {OPERATORS}"
            ));
            return None;
        }
        None => {
            errs.push(format!(
                "{path}.operator must be one of the following values: {OPERATORS}"
            ));
            return None;
        }
    };
    Some(Filter::Leaf { field, cond })
}

fn cmp_scalar(v: &FieldVal<'_>, s: &Scalar) -> Option<Ordering> {
    match (v, s) {
        (FieldVal::Date(d), Scalar::Date(x)) => Some(d.cmp(x)),
        (FieldVal::Str(a), Scalar::Str(b)) => Some(a.to_lowercase().as_str().cmp(b.as_str())),
        (FieldVal::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn eq_any(v: &FieldVal<'_>, values: &[Scalar]) -> bool {
    match v {
        FieldVal::List(items) => items.iter().any(|t| {
            let t = t.to_lowercase();
            values
                .iter()
                .any(|s| matches!(s, Scalar::Str(x) if *x == t))
        }),
        _ => values
            .iter()
            .any(|s| cmp_scalar(v, s) == Some(Ordering::Equal)),
    }
}

fn present(v: &FieldVal<'_>) -> bool {
    match v {
        FieldVal::Null => false,
        FieldVal::Str(s) => !s.is_empty(),
        FieldVal::List(l) => !l.is_empty(),
        FieldVal::Date(_) | FieldVal::Bool(_) => true,
    }
}

fn contains(v: &FieldVal<'_>, needle: &str) -> bool {
    match v {
        FieldVal::Str(s) => s.to_lowercase().contains(needle),
        // On tags, `contains` means "has this tag", as in GHL's smart lists.
        FieldVal::List(items) => items.iter().any(|t| t.to_lowercase() == needle),
        _ => false,
    }
}

impl Filter {
    pub fn matches(&self, r: &dyn Record) -> bool {
        match self {
            Filter::Group { any: true, filters } => filters.iter().any(|f| f.matches(r)),
            Filter::Group {
                any: false,
                filters,
            } => filters.iter().all(|f| f.matches(r)),
            Filter::Leaf { field, cond } => {
                let v = r.field(*field);
                match cond {
                    Cond::Eq(values) => eq_any(&v, values),
                    Cond::NotEq(values) => !eq_any(&v, values),
                    Cond::Contains(s) => contains(&v, s),
                    Cond::NotContains(s) => !contains(&v, s),
                    Cond::Exists => present(&v),
                    Cond::NotExists => !present(&v),
                    Cond::Range { gt, gte, lt, lte } => {
                        let test = |bound: &Option<Scalar>, ok: &dyn Fn(Ordering) -> bool| {
                            bound
                                .as_ref()
                                .is_none_or(|b| cmp_scalar(&v, b).is_some_and(ok))
                        };
                        present(&v)
                            && test(gt, &|o| o == Ordering::Greater)
                            && test(gte, &|o| o != Ordering::Less)
                            && test(lt, &|o| o == Ordering::Less)
                            && test(lte, &|o| o != Ordering::Greater)
                    }
                }
            }
        }
    }
}

/// Free-text query: a case-insensitive substring of name, e-mail, phone or company.
pub fn text_matches(r: &dyn Record, q_lower: &str) -> bool {
    if q_lower.is_empty() {
        return true;
    }
    let hit =
        |f: Field| matches!(r.field(f), FieldVal::Str(s) if s.to_lowercase().contains(q_lower));
    if hit(Field::FirstName) || hit(Field::LastName) || hit(Field::Email) || hit(Field::CompanyName)
    {
        return true;
    }
    let full = match (r.field(Field::FirstName), r.field(Field::LastName)) {
        (FieldVal::Str(a), FieldVal::Str(b)) => format!("{a} {b}").to_lowercase(),
        _ => String::new(),
    };
    if full.contains(q_lower) {
        return true;
    }
    let digits: String = q_lower.chars().filter(char::is_ascii_digit).collect();
    digits.len() >= 3
        && matches!(r.field(Field::Phone), FieldVal::Str(p)
            if p.chars().filter(char::is_ascii_digit).collect::<String>().contains(&digits))
}

/// A sort value: a date for date fields, lower-cased text otherwise (`""` when absent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SortVal {
    Num(i64),
    Str(String),
}

impl SortVal {
    pub fn to_json(&self) -> Value {
        match self {
            SortVal::Num(n) => Value::from(*n),
            SortVal::Str(s) => Value::from(s.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub field: Field,
    pub desc: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: Field::DateAdded,
            desc: false,
        }
    }
}

const SORT_FIELDS: &str = "dateAdded, dateUpdated, firstName, lastName, email, businessId";

impl Sort {
    pub fn value(&self, r: &dyn Record) -> SortVal {
        match r.field(self.field) {
            FieldVal::Date(d) => SortVal::Num(d),
            FieldVal::Str(s) => SortVal::Str(s.to_lowercase()),
            _ if self.field.kind() == Kind::Date => SortVal::Num(0),
            _ => SortVal::Str(String::new()),
        }
    }

    /// Hit order: the sort value in the asked direction, then the id ascending.
    pub fn cmp(&self, a: (&SortVal, u64), b: (&SortVal, u64)) -> Ordering {
        let by_value = if self.desc {
            b.0.cmp(a.0)
        } else {
            a.0.cmp(b.0)
        };
        by_value.then(a.1.cmp(&b.1))
    }

    fn parse_value(&self, v: &Value) -> Option<SortVal> {
        match (self.field.kind(), v) {
            (Kind::Date, Value::Number(n)) => n.as_f64().map(|f| SortVal::Num(f as i64)),
            (Kind::Date, Value::String(s)) => parse_date_ms(s)
                .or_else(|| s.parse().ok())
                .map(SortVal::Num),
            (_, Value::String(s)) => Some(SortVal::Str(s.to_lowercase())),
            _ => None,
        }
    }
}

/// A parsed `POST /contacts/search` body.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub page_limit: usize,
    pub page: Option<u64>,
    pub search_after: Option<(SortVal, u64)>,
    pub filters: Vec<Filter>,
    pub sort: Sort,
    pub query: Option<String>,
    /// Canonical text of what selects and orders the hits, for caching them.
    pub cache_key: String,
}

/// Largest `pageLimit`; larger asks are a 422.
pub const MAX_PAGE_LIMIT: u64 = 500;
/// `page` paging reaches at most this many records; past it only `searchAfter` works.
pub const PAGE_WINDOW: u64 = 10_000;

const SEARCH_PROPS: &[&str] = &[
    "locationId",
    "pageLimit",
    "page",
    "searchAfter",
    "filters",
    "sort",
    "query",
];

pub fn parse_search(body: &Value) -> Result<SearchRequest, Vec<String>> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec!["body must be a JSON object".into()]);
    };
    for k in obj.keys() {
        if !SEARCH_PROPS.contains(&k.as_str()) {
            errs.push(format!("property {k} should not exist"));
        }
    }
    let location_id = match obj.get("locationId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            errs.push("locationId should not be empty".into());
            errs.push("locationId must be a string".into());
            String::new()
        }
    };
    let page_limit = match obj.get("pageLimit").and_then(Value::as_u64) {
        Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n as usize,
        Some(_) => {
            errs.push(format!(
                "pageLimit must not be greater than {MAX_PAGE_LIMIT}"
            ));
            0
        }
        None => {
            errs.push("pageLimit should not be empty".into());
            errs.push(format!(
                "pageLimit must be an integer between 1 and {MAX_PAGE_LIMIT}"
            ));
            0
        }
    };
    let page = match obj.get("page") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                errs.push("page must be a positive integer".into());
                None
            }
        },
    };
    let mut sort = Sort::default();
    match obj.get("sort") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.len() > 1 {
                errs.push("sort supports one field".into());
            }
            if let Some(s) = items.first() {
                match s
                    .get("field")
                    .and_then(Value::as_str)
                    .map(|n| (n, Field::parse(n)))
                {
                    Some((_, Some(f)))
                        if matches!(
                            f,
                            Field::DateAdded
                                | Field::DateUpdated
                                | Field::FirstName
                                | Field::LastName
                                | Field::Email
                                | Field::BusinessId
                        ) =>
                    {
                        sort.field = f
                    }
                    Some((n, _)) => {
                        errs.push(format!("sort.0.field {n} must be one of: {SORT_FIELDS}"))
                    }
                    None => errs.push("sort.0.field must be a string".into()),
                }
                match s.get("direction").and_then(Value::as_str) {
                    Some("asc") | None => {}
                    Some("desc") => sort.desc = true,
                    Some(d) => errs.push(format!("sort.0.direction {d} must be one of: asc, desc")),
                }
            }
        }
        Some(_) => errs.push("sort must be an array".into()),
    }
    let search_after = match obj.get("searchAfter") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() == 2 => {
            let v = sort.parse_value(&a[0]);
            let id = a[1].as_str().and_then(IdCodec::sort_key_of);
            match (v, id) {
                (Some(v), Some(id)) => Some((v, id)),
                _ => {
                    errs.push(
                        "searchAfter must be [sortValue, contactId] as returned with each contact"
                            .into(),
                    );
                    None
                }
            }
        }
        Some(_) => {
            errs.push("searchAfter must be an array of 2 elements".into());
            None
        }
    };
    if page.is_some() && obj.get("searchAfter").is_some_and(|v| !v.is_null()) {
        errs.push("page and searchAfter cannot be used together".into());
    }
    if let (Some(p), true) = (page, page_limit > 0) {
        if p.saturating_mul(page_limit as u64) > PAGE_WINDOW {
            errs.push(format!(
                "page * pageLimit must not exceed {PAGE_WINDOW}: use searchAfter to read past the first {PAGE_WINDOW} records"
            ));
        }
    }
    let filters = match obj.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(f) => parse_filters(f, "filters", &mut errs),
    };
    let query = match obj.get("query") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_lowercase()).filter(|s| !s.is_empty()),
        Some(_) => {
            errs.push("query must be a string".into());
            None
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let cache_key = format!(
        "{}|{:?}|{}|{}",
        obj.get("filters")
            .map(|f| f.to_string())
            .unwrap_or_default(),
        sort,
        query.as_deref().unwrap_or(""),
        location_id
    );
    Ok(SearchRequest {
        page_limit,
        page,
        search_after,
        filters,
        sort,
        query,
        cache_key,
    })
}

impl SearchRequest {
    /// True when the hits are simply the location's listing order.
    pub fn is_plain(&self) -> bool {
        self.filters.is_empty() && self.query.is_none() && self.sort == Sort::default()
    }

    pub fn matches(&self, r: &dyn Record) -> bool {
        self.filters.iter().all(|f| f.matches(r))
            && self.query.as_deref().is_none_or(|q| text_matches(r, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact() -> Value {
        json!({"id": "abc", "firstName": "José", "lastName": "García", "email": "Jose@Example.com",
               "tags": ["VIP", "lead"], "dnd": false, "businessId": null,
               "dateAdded": "2021-01-01T00:00:00.000Z", "dateUpdated": "2022-06-01T12:00:00.000Z"})
    }

    fn filters(v: Value) -> Vec<Filter> {
        let mut errs = Vec::new();
        let f = parse_filters(&v, "filters", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        f
    }

    fn all(fs: &[Filter], r: &dyn Record) -> bool {
        fs.iter().all(|f| f.matches(r))
    }

    #[test]
    fn operators_match_as_documented() {
        let c = contact();
        let yes = [
            json!([{"field": "email", "operator": "eq", "value": "jose@example.com"}]),
            json!([{"field": "tags", "operator": "contains", "value": "vip"}]),
            json!([{"field": "tags", "operator": "eq", "value": ["x", "lead"]}]),
            json!([{"field": "firstName", "operator": "contains", "value": "JOS"}]),
            json!([{"field": "lastName", "operator": "not_contains", "value": "smith"}]),
            json!([{"field": "businessId", "operator": "not_exists"}]),
            json!([{"field": "email", "operator": "exists"}]),
            json!([{"field": "dnd", "operator": "eq", "value": false}]),
            json!([{"field": "dateUpdated", "operator": "range", "value": {"gte": "2022-06-01T12:00:00.000Z"}}]),
            json!([{"field": "dateAdded", "operator": "range", "value": {"gt": 1_500_000_000_000i64, "lt": "2021-01-02"}}]),
            json!([{"group": "OR", "filters": [
                {"field": "email", "operator": "eq", "value": "nobody@x"},
                {"field": "tags", "operator": "contains", "value": "lead"}]}]),
        ];
        for f in yes {
            assert!(all(&filters(f.clone()), &c), "should match: {f}");
        }
        let no = [
            json!([{"field": "email", "operator": "not_eq", "value": "JOSE@example.com"}]),
            json!([{"field": "tags", "operator": "contains", "value": "vi"}]),
            json!([{"field": "businessId", "operator": "exists"}]),
            json!([{"field": "dateUpdated", "operator": "range", "value": {"gt": "2022-06-01T12:00:00.000Z"}}]),
            json!([{"group": "AND", "filters": [
                {"field": "email", "operator": "exists"},
                {"field": "dnd", "operator": "eq", "value": true}]}]),
        ];
        for f in no {
            assert!(!all(&filters(f.clone()), &c), "should not match: {f}");
        }
    }

    #[test]
    fn bad_filters_are_reported_with_paths() {
        let mut errs = Vec::new();
        parse_filters(
            &json!([{"field": "nope", "operator": "eq", "value": 1},
                    {"field": "email", "operator": "like", "value": "x"},
                    {"field": "dateAdded", "operator": "range", "value": {"gt": "soon"}}]),
            "filters",
            &mut errs,
        );
        assert!(
            errs.iter().any(|e| e.starts_with("filters.0.field")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("filters.1.operator")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("filters.2.value.gt")),
            "{errs:?}"
        );
    }

    #[test]
    fn search_body_rules() {
        let err = parse_search(&json!({"pageLimit": 10})).unwrap_err();
        assert!(err.iter().any(|e| e.contains("locationId")));
        let err = parse_search(&json!({"locationId": "L"})).unwrap_err();
        assert!(err.iter().any(|e| e.contains("pageLimit")));
        let err = parse_search(&json!({"locationId": "L", "pageLimit": 501})).unwrap_err();
        assert!(err.iter().any(|e| e.contains("500")));
        let err =
            parse_search(&json!({"locationId": "L", "pageLimit": 100, "page": 101})).unwrap_err();
        assert!(err.iter().any(|e| e.contains("10000")));
        assert!(parse_search(&json!({"locationId": "L", "pageLimit": 100, "page": 100})).is_ok());
        let err = parse_search(&json!({"locationId": "L", "pageLimit": 10, "page": 1,
            "searchAfter": [1, "AAAAAAAAAAAAAAAAAAAA"]}))
        .unwrap_err();
        assert!(err.iter().any(|e| e.contains("together")));
        let err =
            parse_search(&json!({"locationId": "L", "pageLimit": 10, "bogus": 1})).unwrap_err();
        assert_eq!(err, vec!["property bogus should not exist".to_string()]);
        let ok = parse_search(&json!({"locationId": "L", "pageLimit": 10,
            "sort": [{"field": "dateUpdated", "direction": "desc"}],
            "searchAfter": ["2021-01-01T00:00:00Z", "0000000000AAAAAAAAAA"]}))
        .unwrap();
        assert_eq!(
            ok.sort,
            Sort {
                field: Field::DateUpdated,
                desc: true
            }
        );
        assert_eq!(
            ok.search_after.clone().map(|s| s.0),
            Some(SortVal::Num(1_609_459_200_000))
        );
        assert!(!ok.is_plain());
    }

    #[test]
    fn sort_order_breaks_ties_by_id() {
        let asc = Sort::default();
        let desc = Sort {
            field: Field::DateAdded,
            desc: true,
        };
        let (a, b) = (SortVal::Num(1), SortVal::Num(2));
        assert_eq!(asc.cmp((&a, 9), (&b, 1)), Ordering::Less);
        assert_eq!(desc.cmp((&a, 9), (&b, 1)), Ordering::Greater);
        assert_eq!(desc.cmp((&a, 1), (&a, 2)), Ordering::Less);
    }

    #[test]
    fn text_query() {
        let c = contact();
        assert!(text_matches(&c, "garcía"));
        assert!(text_matches(&c, "josé garcía"));
        assert!(!text_matches(&c, "smith"));
    }
}
