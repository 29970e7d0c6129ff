//! The compiled form of a table section: columns (source path, transforms, type, error
//! policy) and row filters, and their evaluation against one record.
//!
//! These types are built by `compile` (from a file) and `defaults` (the no-mapping export);
//! `TableMapping::apply` in `mod.rs` drives them.

use serde_json::Value as Json;

use super::cell::{convert, json_text, Cur};
use super::path::{Ctx, Path};
use super::transform::Step;
use crate::table::{ColumnType, Value};

/// What a failed conversion or transform does to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// The record goes to the reject file with the column and the reason.
    Reject,
    /// The cell becomes null and the row is kept.
    Null,
}

impl OnError {
    pub fn spelling(self) -> &'static str {
        match self {
            OnError::Reject => "reject",
            OnError::Null => "null",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnPlan {
    pub name: String,
    pub ty: ColumnType,
    pub source: Option<Path>,
    pub steps: Vec<Step>,
    pub required: bool,
    pub on_error: OnError,
    /// Load mappings: an input that lacks the column it reads is not an error (the value is
    /// then null for every row).
    pub optional: bool,
    /// Where the column reads from in the mapping file (`from`, or `name` when `from` is
    /// implied), 1-based line and column: for errors found once the input is open.
    pub at: (usize, usize),
}

/// Why a column could not produce a value.
pub(crate) enum CellError {
    /// A transform or conversion failed; `on_error` decides.
    Failed(String),
    /// `required` and nothing there; always rejects.
    Missing(Option<String>),
}

impl ColumnPlan {
    pub fn eval(&self, record: &Json, ctx: &Ctx<'_>, sep: &str) -> Result<Value, CellError> {
        match self.compute(record, ctx, sep) {
            Ok(Value::Null) if self.required => Err(CellError::Missing(None)),
            Ok(Value::String(s)) if self.required && s.is_empty() => Err(CellError::Missing(None)),
            Ok(v) => Ok(v),
            Err(reason) if self.on_error == OnError::Null => {
                if self.required {
                    Err(CellError::Missing(Some(reason)))
                } else {
                    Ok(Value::Null)
                }
            }
            Err(reason) => Err(CellError::Failed(reason)),
        }
    }

    fn compute(&self, record: &Json, ctx: &Ctx<'_>, sep: &str) -> Result<Value, String> {
        let mut cur = match &self.source {
            Some(p) => p.get(record, ctx),
            None => Cur::Null,
        };
        for step in &self.steps {
            cur = step
                .transform
                .apply(cur, record, ctx, sep)
                .map_err(|e| format!("{}: {e}", step.name))?;
        }
        convert(cur, self.ty, sep)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum FilterOp {
    Eq(Json),
    NotEq(Json),
    Exists,
    NotExists,
    Contains(Json),
    In(Vec<Json>),
}

pub(crate) const FILTER_OPS: &[&str] = &["eq", "not_eq", "exists", "not_exists", "contains", "in"];

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub path: Path,
    pub op: FilterOp,
}

impl Filter {
    pub fn matches(&self, record: &Json, ctx: &Ctx<'_>) -> bool {
        let v = self.path.get(record, ctx);
        match &self.op {
            FilterOp::Eq(want) => loose_eq(&v, want),
            FilterOp::NotEq(want) => !loose_eq(&v, want),
            FilterOp::Exists => !v.is_empty(),
            FilterOp::NotExists => v.is_empty(),
            FilterOp::Contains(want) => contains(&v, want),
            FilterOp::In(set) => set.iter().any(|w| loose_eq(&v, w)),
        }
    }

    pub fn describe(&self) -> String {
        let p = &self.path.text;
        match &self.op {
            FilterOp::Eq(v) => format!("{p} == {v}"),
            FilterOp::NotEq(v) => format!("{p} != {v}"),
            FilterOp::Exists => format!("{p} exists"),
            FilterOp::NotExists => format!("{p} does not exist"),
            FilterOp::Contains(v) => format!("{p} contains {v}"),
            FilterOp::In(vs) => format!("{p} in {}", Json::Array(vs.clone())),
        }
    }
}

/// Equality that forgives representation: numbers compare numerically, and a string
/// compares with a number or boolean by its text (`"false"` equals `false`). A list equals
/// a value when one of its elements does. Null equals nothing.
fn loose_eq(v: &Cur<'_>, want: &Json) -> bool {
    match v {
        Cur::Null => false,
        Cur::Json(Json::Array(items)) => items.iter().any(|i| scalar_eq(i, want)),
        Cur::List(items) => items.iter().any(|i| text_eq(i, want)),
        Cur::Json(v) => scalar_eq(v, want),
        Cur::Text(t) => text_eq(t, want),
    }
}

fn scalar_eq(v: &Json, want: &Json) -> bool {
    match (v, want) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::String(s), w) => text_eq(s, w),
        (a, b) => a == b,
    }
}

fn text_eq(s: &str, want: &Json) -> bool {
    match want {
        Json::String(w) => s == w,
        Json::Number(n) => s.trim().parse::<f64>().ok() == n.as_f64(),
        Json::Bool(b) => super::cell::parse_bool(s.trim()) == Some(*b),
        _ => false,
    }
}

/// Substring for text, membership for lists (`tags contains "vip"`).
fn contains(v: &Cur<'_>, want: &Json) -> bool {
    match v {
        Cur::Null => false,
        Cur::Json(Json::Array(_)) | Cur::List(_) => loose_eq(v, want),
        Cur::Json(j) => json_text(j, ";").contains(json_text(want, ";").as_ref()),
        Cur::Text(t) => t.contains(json_text(want, ";").as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::path::parse_path;
    use serde_json::json;

    fn filter(path: &str, op: FilterOp) -> Filter {
        Filter {
            path: parse_path(path, (1, 1)).unwrap_or_else(|e| panic!("{e:?}")),
            op,
        }
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            location_id: "L",
            contact_id: None,
        }
    }

    #[test]
    fn filter_ops() {
        let r = json!({
            "dnd": false, "email": "a@b.c", "blank": "", "score": "10",
            "tags": ["vip", "lead"], "name": "Ann Lee", "n": 3
        });
        let c = ctx();
        let yes = |f: Filter| assert!(f.matches(&r, &c), "{}", f.describe());
        let no = |f: Filter| assert!(!f.matches(&r, &c), "{}", f.describe());
        yes(filter("dnd", FilterOp::Eq(json!(false))));
        no(filter("dnd", FilterOp::Eq(json!(true))));
        yes(filter("dnd", FilterOp::NotEq(json!(true))));
        yes(filter("score", FilterOp::Eq(json!(10))));
        yes(filter("n", FilterOp::Eq(json!(3.0))));
        yes(filter("email", FilterOp::Exists));
        no(filter("blank", FilterOp::Exists));
        no(filter("missing", FilterOp::Exists));
        yes(filter("missing", FilterOp::NotExists));
        yes(filter("blank", FilterOp::NotExists));
        yes(filter("tags", FilterOp::Contains(json!("vip"))));
        no(filter("tags", FilterOp::Contains(json!("vi"))));
        yes(filter("name", FilterOp::Contains(json!("Lee"))));
        yes(filter(
            "tags",
            FilterOp::In(vec![json!("cold"), json!("lead")]),
        ));
        yes(filter("email", FilterOp::In(vec![json!("a@b.c")])));
        no(filter("missing", FilterOp::In(vec![json!("a@b.c")])));
        no(filter("missing", FilterOp::Eq(json!(""))));
        yes(filter("missing", FilterOp::NotEq(json!("x"))));
    }
}
