//! Mapping text → validated [`Mapping`], gathering every problem before reporting.
//!
//! The file is parsed with toml's spanned document tree (`toml::de::DeTable`, whose keys and
//! values are `serde_spanned::Spanned`) and walked by hand rather than through
//! `#[derive(Deserialize)]`: serde stops at its first error, while this walk keeps going,
//! so one run reports every unknown key, bad type, bad transform and bad path, each at its
//! `file:line:column` with what was expected and a suggestion. Unknown keys are rejected
//! everywhere, as `deny_unknown_fields` would. Custom-field names are resolved later
//! (`Mapping::resolve_custom_fields`), since that needs the location's fields.
//!
//! Transforms and column types are checked in `compile_transforms.rs`; what a load mapping
//! may name (request-body fields) in `compile_load.rs`; the typed value readers (`string`,
//! `int`, `table`, ...) are in `compile_values.rs`.

use std::collections::HashMap;
use std::ops::Range;

use chrono::format::{Item, StrftimeItems};
use regex::Regex;
use serde_json::Value as Json;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::defaults::known_roots;
use super::error::{did_you_mean, one_of, Diag, MappingErrors, SourceMap};
use super::path::{parse_path, parse_template, Path, PathError, Root};
use super::phone;
use super::plan::{ColumnPlan, Filter, FilterOp, OnError, FILTER_OPS};
use super::transform::{Step, Transform, TRANSFORM_NAMES};
use super::{Direction, Mapping, TableMapping};
use crate::table::{ColumnType, TableKind};

type Node<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &[
    "version",
    "direction",
    "csv_safe",
    "list_separator",
    "contacts",
    "tasks",
    "notes",
    "appointments",
];
const TABLE_NAMES: &[&str] = &["contacts", "tasks", "notes", "appointments"];
const SECTION_KEYS: &[&str] = &["columns", "filter", "on_error", "custom_fields"];
const COLUMN_KEYS: &[&str] = &[
    "name",
    "from",
    "type",
    "transform",
    "required",
    "optional",
    "on_error",
];
const FILTER_KEYS: &[&str] = &["field", "op", "value"];
const TYPE_NAMES: &[&str] = &[
    "string",
    "int",
    "float",
    "decimal(p,s)",
    "bool",
    "date",
    "timestamp",
    "list<string>",
    "json",
];
const ON_ERROR: &[&str] = &["reject", "null"];
const DIRECTIONS: &[&str] = &["export", "load"];

pub(crate) fn compile(text: &str, file: &str) -> Result<Mapping, MappingErrors> {
    let src = SourceMap::new(file, text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut cx = Cx {
        diag: Diag::new(&src),
        src: &src,
        sep: ";".to_string(),
        direction: Direction::Export,
    };
    if !syntax.is_empty() {
        // A broken document would only produce follow-on noise: report the syntax alone.
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            cx.diag.error(span, e.message().to_string(), None);
        }
        return Err(cx.finish_err());
    }
    let top = doc.get_ref();

    for (key, value) in top.iter() {
        if TOP_KEYS.contains(&key.get_ref().as_ref()) {
            continue;
        }
        if matches!(value.get_ref(), DeValue::Table(_)) {
            cx.diag.error(
                key.span(),
                format!(
                    "unknown table `[{}]`; expected one of: {}",
                    key.get_ref(),
                    one_of(TABLE_NAMES)
                ),
                did_you_mean(key.get_ref(), TABLE_NAMES.iter().copied()),
            );
        } else {
            cx.unknown_key(key, TOP_KEYS, "at the top level");
        }
    }

    match top.get("version") {
        None => cx.diag.error(
            0..0,
            "missing `version`",
            Some("start the file with `version = 1`".into()),
        ),
        Some(v) => {
            if let Some(n) = cx.int(v, "version") {
                if n != 1 {
                    cx.diag.error(
                        v.span(),
                        format!("unsupported mapping version {n}; expected 1"),
                        None,
                    );
                }
            }
        }
    }
    if let Some(v) = top.get("direction") {
        match cx.string(v, "direction") {
            Some("export") => {}
            Some("load") => cx.direction = Direction::Load,
            Some(other) => cx.diag.error(
                v.span(),
                format!(
                    "unknown direction `{other}`; expected one of: {}",
                    one_of(DIRECTIONS)
                ),
                did_you_mean(other, DIRECTIONS.iter().copied()),
            ),
            None => {}
        }
    }
    let csv_safe = top.get("csv_safe").and_then(|v| cx.boolean(v, "csv_safe"));
    let list_separator = top.get("list_separator").and_then(|v| {
        let s = cx.string(v, "list_separator")?;
        if s.is_empty() {
            cx.diag
                .error(v.span(), "`list_separator` must not be empty", None);
            return None;
        }
        Some(s.to_string())
    });
    if let Some(sep) = &list_separator {
        cx.sep = sep.clone();
    }

    let mut tables = Vec::new();
    for kind in TableKind::ALL {
        match top.get(kind.name()) {
            Some(node) if cx.direction == Direction::Load && kind == TableKind::Appointments => {
                cx.diag.error(
                    node.span(),
                    "a load mapping writes contacts, tasks and notes; appointments cannot be loaded",
                    Some("remove the `[appointments]` section".into()),
                )
            }
            Some(node) => {
                if let Some(t) = cx.section(kind, node) {
                    tables.push(t);
                }
            }
            None if kind == TableKind::Contacts && cx.direction == Direction::Export => cx.diag.error(
                text.len()..text.len(),
                "missing `[contacts]` section",
                Some("every mapping says how contacts are exported: add `[contacts]` and `[[contacts.columns]]` blocks".into()),
            ),
            None => {}
        }
    }

    if !cx.diag.errors.is_empty() {
        return Err(cx.finish_err());
    }
    Ok(Mapping {
        file: file.to_string(),
        direction: cx.direction,
        csv_safe,
        list_separator,
        tables,
    })
}

struct Cx<'s, 't> {
    diag: Diag<'s, 't>,
    src: &'s SourceMap<'t>,
    /// The file's list separator, used by `join` when written bare.
    sep: String,
    /// Export paths read API records (checked against the spec's fields); load paths read
    /// input columns (anything goes) and column names are request-body fields.
    direction: Direction,
}

impl<'s, 't> Cx<'s, 't> {
    fn finish_err(self) -> MappingErrors {
        match self.diag.finish() {
            Err(e) => e,
            Ok(()) => MappingErrors(Vec::new()),
        }
    }

    fn unknown_key(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        allowed: &[&str],
        place: &str,
    ) {
        self.diag.error(
            key.span(),
            format!(
                "unknown key `{}` {place}; expected one of: {}",
                key.get_ref(),
                one_of(allowed)
            ),
            did_you_mean(key.get_ref(), allowed.iter().copied()),
        );
    }

    fn check_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], place: &str) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.unknown_key(key, allowed, place);
            }
        }
    }

    fn path_error(&mut self, span: &Range<usize>, text: &str, e: PathError) {
        let at = self.src.inner_span(span, text, e.offset);
        self.diag.error(at, e.message, e.help);
    }

    /// A path written as the string `node`, checked against the table's known fields.
    fn path(&mut self, node: &Node<'_>, what: &str, kind: TableKind) -> Option<Path> {
        let text = self.string(node, what)?;
        let span = node.span();
        let pos = self.src.position(self.src.inner_span(&span, text, 0).start);
        // A load mapping's `from` is an input column's name as written in the file's header,
        // spaces and dots included: one quoted field.
        let quoted;
        let text = if self.direction == Direction::Load && what == "from" {
            quoted = format!("{text:?}");
            quoted.as_str()
        } else {
            text
        };
        match parse_path(text, pos) {
            Ok(path) => {
                let at = self.src.inner_span(&span, text, 0);
                self.check_root(&path, kind, at).then_some(path)
            }
            Err(e) => {
                self.path_error(&span, text, e);
                None
            }
        }
    }

    /// Whether a path's start exists for the table; reports why not.
    fn check_root(&mut self, path: &Path, kind: TableKind, at: Range<usize>) -> bool {
        if self.direction == Direction::Load {
            return self.check_load_root(path, at);
        }
        match &path.root {
            Root::Custom(_) if kind != TableKind::Contacts => {
                self.diag.error(
                    at,
                    format!("custom fields exist on contacts only, not on {kind}"),
                    Some("read the parent contact's id with `$contact_id` and join on it".into()),
                );
                false
            }
            Root::Record { quoted: false } => {
                let Some((field, _)) = path.root_field() else {
                    return true;
                };
                let known = known_roots(kind);
                if known.contains(&field) {
                    return true;
                }
                let mut candidates = known.clone();
                candidates.extend(["$contact_id", "$location_id"]);
                let help = match did_you_mean(field, candidates.iter().copied()) {
                    Some(d) => d,
                    None => format!(
                        "to read a field the API does not document, quote it: `\"{field}\"`"
                    ),
                };
                let expected = if kind == TableKind::Contacts {
                    String::new()
                } else {
                    format!(
                        "; expected one of: {}, $contact_id, $location_id",
                        one_of(&known)
                    )
                };
                self.diag.error(
                    at,
                    format!(
                        "unknown field `{field}` for a {} record{expected}",
                        singular(kind)
                    ),
                    Some(help),
                );
                false
            }
            _ => true,
        }
    }

    fn section(&mut self, kind: TableKind, node: &Node<'_>) -> Option<TableMapping> {
        let section_name = format!("[{}]", kind.name());
        let t = self.table(node, &section_name)?;
        self.check_keys(t, SECTION_KEYS, &format!("in `{section_name}`"));

        let on_error = match t.get("on_error") {
            Some(v) => self.on_error(v).unwrap_or(OnError::Reject),
            None => OnError::Reject,
        };

        let mut filters = Vec::new();
        if let Some(f) = t.get("filter") {
            if let Some(items) = self.array(f, "filter", "[{ field = \"email\", op = \"exists\" }]")
            {
                for item in items {
                    if let Some(filter) = self.filter(item, kind) {
                        filters.push(filter);
                    }
                }
            }
        }

        let mut columns: Vec<ColumnPlan> = Vec::new();
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        match t.get("columns") {
            None => self.diag.error(
                node.span(),
                format!("`{section_name}` has no columns"),
                Some(format!(
                    "add `[[{}.columns]]` blocks with at least a `name`",
                    kind.name()
                )),
            ),
            Some(cols) => {
                if matches!(cols.get_ref(), DeValue::Table(_)) {
                    self.diag.error(
                        cols.span(),
                        "`columns` must be a list of column blocks",
                        Some(format!(
                            "write each column under its own `[[{}.columns]]` header (two brackets)",
                            kind.name()
                        )),
                    );
                } else if let Some(items) = self.array(cols, "columns", "[{ name = \"email\" }]") {
                    if items.is_empty() {
                        self.diag.error(
                            cols.span(),
                            format!("`{section_name}` has no columns"),
                            None,
                        );
                    }
                    for item in items {
                        if let Some((col, name_span)) = self.column(item, kind, on_error) {
                            if let Some(first) = seen.get(&col.name) {
                                let (line, _) = self.src.position(first.start);
                                self.diag.error(
                                    name_span,
                                    format!("duplicate column `{}` in {}", col.name, kind),
                                    Some(format!("the first `{}` is on line {line}; column names must be unique", col.name)),
                                );
                                continue;
                            }
                            seen.insert(col.name.clone(), name_span);
                            columns.push(col);
                        }
                    }
                }
            }
        }
        let all_custom = t
            .get("custom_fields")
            .is_some_and(|v| self.custom_fields(v, kind));
        let mut table = TableMapping::new(kind, columns, filters, self.sep.clone(), on_error);
        table.all_custom_fields = all_custom;
        Some(table)
    }

    /// `custom_fields = "all"`: a load of contacts carries every custom field of the input.
    fn custom_fields(&mut self, node: &Node<'_>, kind: TableKind) -> bool {
        let Some(value) = self.string(node, "custom_fields") else {
            return false;
        };
        let fits = kind == TableKind::Contacts && self.direction == Direction::Load;
        if value == "all" && fits {
            return true;
        }
        let help = if fits {
            "the one value is \"all\"; to carry some fields only, name each as a column: `name = 'customFields.\"Lead Score\"'`"
        } else {
            "`custom_fields = \"all\"` belongs in the [contacts] section of a load mapping; an export names custom fields as columns (`from = 'custom.\"Lead Score\"'`), or leaves out --mapping to export them all"
        };
        self.diag.error(
            node.span(),
            format!("`custom_fields = {value:?}` is not understood here"),
            Some(help.into()),
        );
        false
    }

    fn on_error(&mut self, node: &Node<'_>) -> Option<OnError> {
        match self.string(node, "on_error")? {
            "reject" => Some(OnError::Reject),
            "null" => Some(OnError::Null),
            other => {
                self.diag.error(
                    node.span(),
                    format!(
                        "unknown on_error `{other}`; expected one of: {}",
                        one_of(ON_ERROR)
                    ),
                    did_you_mean(other, ON_ERROR.iter().copied()),
                );
                None
            }
        }
    }

    fn filter(&mut self, node: &Node<'_>, kind: TableKind) -> Option<Filter> {
        let t = self.table(node, "a filter")?;
        self.check_keys(t, FILTER_KEYS, "in a filter");
        let path = match t.get("field") {
            Some(f) => self.path(f, "field", kind),
            None => {
                self.diag.error(
                    node.span(),
                    "filter has no `field`",
                    Some("e.g. { field = \"email\", op = \"exists\" }".into()),
                );
                None
            }
        };
        let op_node = match t.get("op") {
            Some(op) => op,
            None => {
                self.diag.error(
                    node.span(),
                    "filter has no `op`",
                    Some(format!("expected one of: {}", one_of(FILTER_OPS))),
                );
                return None;
            }
        };
        let op_name = self.string(op_node, "op")?;
        let value = t.get("value");
        let op = match op_name {
            "exists" | "not_exists" => {
                if let Some(v) = value {
                    self.diag
                        .error(v.span(), format!("`{op_name}` takes no `value`"), None);
                }
                if op_name == "exists" {
                    FilterOp::Exists
                } else {
                    FilterOp::NotExists
                }
            }
            "eq" | "not_eq" | "contains" => {
                let Some(v) = value else {
                    self.diag
                        .error(node.span(), format!("`{op_name}` needs a `value`"), None);
                    return None;
                };
                let v = self.scalar(v, "value")?;
                match op_name {
                    "eq" => FilterOp::Eq(v),
                    "not_eq" => FilterOp::NotEq(v),
                    _ => FilterOp::Contains(v),
                }
            }
            "in" => {
                let Some(v) = value else {
                    self.diag
                        .error(node.span(), "`in` needs a `value` list", None);
                    return None;
                };
                let items = self.array(v, "value", "[\"a\", \"b\"]")?;
                let mut set = Vec::with_capacity(items.len());
                for item in items {
                    set.push(self.scalar(item, "value")?);
                }
                FilterOp::In(set)
            }
            other => {
                self.diag.error(
                    op_node.span(),
                    format!(
                        "unknown filter op `{other}`; expected one of: {}",
                        one_of(FILTER_OPS)
                    ),
                    did_you_mean(other, FILTER_OPS.iter().copied()),
                );
                return None;
            }
        };
        Some(Filter { path: path?, op })
    }

    /// One `[[<table>.columns]]` block; also returns the span of its name.
    fn column(
        &mut self,
        node: &Node<'_>,
        kind: TableKind,
        table_on_error: OnError,
    ) -> Option<(ColumnPlan, Range<usize>)> {
        let t = self.table(node, "a column")?;
        self.check_keys(t, COLUMN_KEYS, "in a column");

        let name_node = t.get("name");
        let name = match name_node {
            None => {
                self.diag.error(
                    node.span(),
                    "column has no `name`",
                    Some("every column needs `name = \"...\"`".into()),
                );
                None
            }
            Some(n) => match self.string(n, "name") {
                Some("") => {
                    self.diag
                        .error(n.span(), "column `name` must not be empty", None);
                    None
                }
                other => other,
            },
        };

        let ty = match t.get("type") {
            None => Some(ColumnType::String),
            Some(v) => self.string(v, "type").and_then(|s| {
                parse_type(s)
                    .map_err(|(msg, help)| self.diag.error(v.span(), msg, help))
                    .ok()
            }),
        };

        let mut steps = Vec::new();
        let mut steps_ok = true;
        if let Some(tr) = t.get("transform") {
            match self.array(tr, "transform", "[\"trim\", \"lower\"]") {
                Some(items) => {
                    for item in items {
                        match self.transform(item, kind) {
                            Some(s) => steps.push(s),
                            None => steps_ok = false,
                        }
                    }
                }
                None => steps_ok = false,
            }
        }

        if let (Some(ty), Some(tnode)) = (&ty, t.get("type")) {
            self.check_list_type(ty, &steps, tnode.span());
        }

        let on_error = match t.get("on_error") {
            Some(v) => self.on_error(v),
            None => Some(table_on_error),
        };
        let required = match t.get("required") {
            Some(v) => self.boolean(v, "required"),
            None => Some(false),
        };
        let optional = match t.get("optional") {
            Some(v) => self.boolean(v, "optional"),
            None => Some(false),
        };

        let name_ok = match (self.direction, name, name_node) {
            (Direction::Load, Some(n), Some(node)) => self.check_load_name(n, kind, node.span()),
            _ => true,
        };
        let starts_from_transform = steps
            .first()
            .is_some_and(|s: &Step| s.transform.is_source());
        let source = match t.get("from") {
            Some(f) => self.path(f, "from", kind).map(Some),
            None if starts_from_transform || !steps_ok => Some(None),
            None => match (name, name_node) {
                (Some(name), Some(n)) => self.implicit_from(name, n, kind).map(Some),
                _ => None,
            },
        };

        if !steps_ok || !name_ok {
            return None;
        }
        let name_span = name_node.map_or(node.span(), Spanned::span);
        let at = self
            .src
            .position(t.get("from").map_or(name_span.clone(), Spanned::span).start);
        Some((
            ColumnPlan {
                name: name?.to_string(),
                ty: ty?,
                source: source?,
                steps,
                required: required?,
                on_error: on_error?,
                optional: optional?,
                at,
            },
            name_span,
        ))
    }

    /// `from` defaults to the column's name, which must then be a field of the table.
    fn implicit_from(&mut self, name: &str, name_node: &Node<'_>, kind: TableKind) -> Option<Path> {
        let span = name_node.span();
        let pos = self.src.position(span.start);
        if self.direction == Direction::Load {
            // The input column of the same name.
            let quoted = format!("{name:?}");
            return match parse_path(&quoted, pos) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.diag.error(
                        span,
                        format!("column `{name}` has no `from`"),
                        Some("set `from = \"<input column>\"`".into()),
                    );
                    None
                }
            };
        }
        let ok = parse_path(name, pos).ok().filter(|p| {
            !matches!(p.root, Root::Custom(_))
                && p.root_field()
                    .is_none_or(|(f, quoted)| quoted || known_roots(kind).contains(&f))
        });
        if ok.is_some() {
            return ok;
        }
        let field = name.split(['.', '[']).next().unwrap_or(name);
        let mut help = String::from(
            "set `from = \"...\"`, or start `transform` with `template`, `constant` or `coalesce`",
        );
        if let Some(d) = did_you_mean(field, known_roots(kind)) {
            help = format!("{d} Otherwise {help}");
        }
        self.diag.error(
            span,
            format!(
                "column `{name}` has no `from`, and `{name}` is not a field of a {} record",
                singular(kind)
            ),
            Some(help),
        );
        None
    }
}

fn singular(kind: TableKind) -> &'static str {
    match kind {
        TableKind::Contacts => "contact",
        TableKind::Tasks => "task",
        TableKind::Notes => "note",
        TableKind::Appointments => "appointment",
        TableKind::Events => "event",
    }
}

#[path = "compile_transforms.rs"]
mod transforms;

#[path = "compile_load.rs"]
mod load;

#[path = "compile_values.rs"]
mod values;
pub(crate) use transforms::parse_type;

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
