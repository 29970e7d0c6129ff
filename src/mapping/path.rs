//! Paths into a record (`dndSettings.Email.status`, `attributions[0].utmSource`,
//! `custom."Lead Score"`, `$contact_id`) and `{path}` templates, parsed once at load and
//! evaluated per record without allocating.
//!
//! Whether a path's first field exists for its table is checked by `compile`; turning a
//! custom-field name into an id is done by `Mapping::resolve_custom_fields`.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::cell::Cur;
use crate::table::TableKind;

/// A syntax error at a byte offset of the path (or template) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError {
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(Box<str>),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Root {
    /// Fields of the record itself; `quoted` when the first field was written in quotes,
    /// which skips the known-field check (for fields newer than the spec).
    Record {
        quoted: bool,
    },
    Custom(CustomRef),
    ContactId,
    LocationId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CustomRef {
    Id(String),
    /// By name (or field key) until `resolve_custom_fields` fills `id`. `line`/`column` are
    /// kept for the error an unknown name gives then, when the source text is gone.
    Name {
        name: String,
        id: Option<String>,
        line: usize,
        column: usize,
    },
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    pub text: String,
    pub root: Root,
    pub segs: Vec<Seg>,
}

/// What a path can reach besides the record: the parent ids of a child record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub location_id: &'a str,
    pub contact_id: Option<&'a str>,
}

impl Path {
    /// The first field name, when the path starts at the record.
    pub fn root_field(&self) -> Option<(&str, bool)> {
        match (&self.root, self.segs.first()) {
            (Root::Record { quoted }, Some(Seg::Key(k))) => Some((k, *quoted)),
            _ => None,
        }
    }

    pub fn get<'a>(&'a self, record: &'a Json, ctx: &Ctx<'a>) -> Cur<'a> {
        let start = match &self.root {
            Root::Record { .. } => Some(record),
            Root::ContactId => return ctx.contact_id.map_or(Cur::Null, text),
            Root::LocationId => return text(ctx.location_id),
            Root::Custom(c) => {
                let id = match c {
                    CustomRef::Id(id) => id.as_str(),
                    CustomRef::Name { id: Some(id), .. } => id.as_str(),
                    CustomRef::Name { id: None, .. } => return Cur::Null,
                };
                custom_value(record, id)
            }
        };
        let mut at = start;
        for seg in &self.segs {
            at = match (at, seg) {
                (Some(Json::Object(o)), Seg::Key(k)) => o.get(&**k),
                (Some(Json::Array(a)), Seg::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        Cur::from_json(at)
    }

    pub fn custom_ref_mut(&mut self) -> Option<&mut CustomRef> {
        match &mut self.root {
            Root::Custom(c) => Some(c),
            _ => None,
        }
    }
}

fn text(s: &str) -> Cur<'_> {
    Cur::Text(Cow::Borrowed(s))
}

/// The value of custom field `id` in a contact: `customFields` as read is `[{id, value}]`;
/// some answers use `field_value`/`fieldValue` or a map `{id: value}`.
fn custom_value<'a>(record: &'a Json, id: &str) -> Option<&'a Json> {
    match record.get("customFields")? {
        Json::Array(items) => items
            .iter()
            .find(|f| f.get("id").and_then(Json::as_str) == Some(id))
            .and_then(|f| {
                f.get("value")
                    .or_else(|| f.get("field_value"))
                    .or_else(|| f.get("fieldValue"))
            }),
        Json::Object(map) => map.get(id),
        _ => None,
    }
}

/// The parent contact id as `$contact_id` sees it: the context's, else the record's own id
/// (contacts) or its `contactId` (child records).
pub(crate) fn contact_id<'a>(
    table: TableKind,
    record: &'a Json,
    given: Option<&'a str>,
) -> Option<&'a str> {
    given.or_else(|| {
        let key = if table == TableKind::Contacts {
            "id"
        } else {
            "contactId"
        };
        record.get(key).and_then(Json::as_str)
    })
}

struct Parser<'s> {
    s: &'s str,
    at: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, PathError> {
        Err(PathError {
            offset: at,
            message: message.into(),
            help: None,
        })
    }

    /// A field name: bare (`firstName`) or quoted (`"Lead Score"`, with `\"` and `\\`).
    fn name(&mut self) -> Result<(String, bool), PathError> {
        let start = self.at;
        if self.peek() == Some('"') {
            self.at += 1;
            let mut out = String::new();
            loop {
                let Some(c) = self.peek() else {
                    return self.err(start, "unclosed quote in path");
                };
                self.at += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(e) = self.peek() else {
                            return self.err(start, "unclosed quote in path");
                        };
                        self.at += e.len_utf8();
                        out.push(e);
                    }
                    c => out.push(c),
                }
            }
            if out.is_empty() {
                return self.err(start, "empty field name in path");
            }
            return Ok((out, true));
        }
        while let Some(c) = self.peek() {
            if matches!(c, '.' | '[' | ']' | '"' | '{' | '}') || c.is_whitespace() {
                break;
            }
            self.at += c.len_utf8();
        }
        if self.at == start {
            return match self.peek() {
                None => self.err(start, "path ends where a field name was expected"),
                Some(c) => self.err(start, format!("expected a field name, found `{c}`")),
            };
        }
        Ok((self.s[start..self.at].to_string(), false))
    }

    fn rest(&mut self, segs: &mut Vec<Seg>) -> Result<(), PathError> {
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.at += 1;
                    let (name, _) = self.name()?;
                    segs.push(Seg::Key(name.into()));
                }
                '[' => {
                    let open = self.at;
                    self.at += 1;
                    let digits_start = self.at;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.at += 1;
                    }
                    let digits = &self.s[digits_start..self.at];
                    if self.peek() != Some(']') || digits.is_empty() {
                        return self.err(open, "expected an array index like `[0]`");
                    }
                    self.at += 1;
                    let Ok(i) = digits.parse() else {
                        return self.err(open, "array index too large");
                    };
                    segs.push(Seg::Index(i));
                }
                c => return self.err(self.at, format!("unexpected `{c}` in path")),
            }
        }
        Ok(())
    }
}

/// Parse a path. `pos` is the (line, column) recorded for custom-field names.
pub(crate) fn parse_path(s: &str, pos: (usize, usize)) -> Result<Path, PathError> {
    let mut p = Parser { s, at: 0 };
    if s.trim().is_empty() {
        return p.err(0, "empty path");
    }
    if let Some(var) = s.strip_prefix('$') {
        let root = match var {
            "contact_id" => Root::ContactId,
            "location_id" => Root::LocationId,
            _ => {
                return Err(PathError {
                    offset: 0,
                    message: format!(
                        "unknown variable `{s}`; expected `$contact_id` or `$location_id`"
                    ),
                    help: super::error::did_you_mean(s, ["$contact_id", "$location_id"]),
                })
            }
        };
        return Ok(Path {
            text: s.to_string(),
            root,
            segs: Vec::new(),
        });
    }
    let (first, quoted) = p.name()?;
    let mut segs = Vec::new();
    let root = if first == "custom" && !quoted {
        if p.peek() != Some('.') {
            return Err(PathError {
                offset: 0,
                message: "`custom` needs a field".into(),
                help: Some("write `custom.\"Field Name\"` or `custom.id.<ID>`".into()),
            });
        }
        p.at += 1;
        let (name, name_quoted) = p.name()?;
        if name == "id" && !name_quoted && p.peek() == Some('.') {
            p.at += 1;
            let (id, _) = p.name()?;
            Root::Custom(CustomRef::Id(id))
        } else {
            Root::Custom(CustomRef::Name {
                name,
                id: None,
                line: pos.0,
                column: pos.1,
            })
        }
    } else {
        segs.push(Seg::Key(first.into()));
        Root::Record { quoted }
    };
    p.rest(&mut segs)?;
    Ok(Path {
        text: s.to_string(),
        root,
        segs,
    })
}

/// A `{path}` template. `{}` is the column's current value; `{{` and `}}` are literal braces.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub parts: Vec<Part>,
    /// Byte offset in the template text of each path placeholder, in order (for errors).
    pub path_offsets: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Lit(String),
    Path(Path),
    Current,
}

impl Template {
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().filter_map(|p| match p {
            Part::Path(p) => Some(p),
            _ => None,
        })
    }

    pub fn paths_mut(&mut self) -> impl Iterator<Item = &mut Path> {
        self.parts.iter_mut().filter_map(|p| match p {
            Part::Path(p) => Some(p),
            _ => None,
        })
    }

    pub fn render(&self, record: &Json, ctx: &Ctx<'_>, current: &Cur<'_>, sep: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Current => current.push_text(&mut out, sep),
                Part::Path(p) => p.get(record, ctx).push_text(&mut out, sep),
            }
        }
        out
    }
}

/// Parse a template; offsets in errors are into `s`. `pos_of` gives the (line, column) of
/// a byte offset of `s`, recorded for custom-field names.
pub(crate) fn parse_template(
    s: &str,
    pos_of: impl Fn(usize) -> (usize, usize),
) -> Result<Template, PathError> {
    if s.is_empty() {
        return Err(PathError {
            offset: 0,
            message: "empty template".into(),
            help: Some(
                "write text with `{field}` placeholders, e.g. \"{firstName} {lastName}\"".into(),
            ),
        });
    }
    let mut parts = Vec::new();
    let mut path_offsets = Vec::new();
    let mut lit = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '}' => {
                return Err(PathError {
                    offset: i,
                    message: "unmatched `}` in template".into(),
                    help: Some("write `}}` for a literal brace".into()),
                })
            }
            '{' => {
                // Find the closing brace, skipping quoted names (which may contain braces).
                let start = i + 1;
                let mut in_quote = false;
                let mut escaped = false;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' if in_quote => escaped = true,
                        '"' => in_quote = !in_quote,
                        '}' if !in_quote => {
                            end = Some(j);
                            break;
                        }
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    return Err(PathError {
                        offset: i,
                        message: "unclosed `{` in template".into(),
                        help: Some("write `{{` for a literal brace".into()),
                    });
                };
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                let raw = &s[start..end];
                let start = start + (raw.len() - raw.trim_start().len());
                let inner = raw.trim();
                if inner.is_empty() {
                    parts.push(Part::Current);
                } else {
                    let path = parse_path(inner, pos_of(start)).map_err(|e| PathError {
                        offset: start + e.offset,
                        ..e
                    })?;
                    parts.push(Part::Path(path));
                    path_offsets.push(start);
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(Template {
        parts,
        path_offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> Path {
        parse_path(s, (1, 1)).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn get(s: &str, record: &Json) -> Option<Json> {
        let ctx = Ctx {
            location_id: "loc1",
            contact_id: Some("c1"),
        };
        let p = path(s);
        match p.get(record, &ctx) {
            Cur::Null => None,
            Cur::Json(v) => Some(v.clone()),
            Cur::Text(t) => Some(Json::String(t.into_owned())),
            Cur::List(l) => Some(json!(l)),
        }
    }

    #[test]
    fn paths_reach_nested_fields_indexes_and_context() {
        let r = json!({
            "email": "a@b.c",
            "dndSettings": {"Email": {"status": "active"}},
            "attributions": [{"utmSource": "google"}, {"utmSource": "fb"}],
            "weird key": {"x.y": 1},
            "customFields": [{"id": "cf1", "value": 7}, {"id": "cf2", "value": ["a", "b"]}]
        });
        assert_eq!(get("email", &r), Some(json!("a@b.c")));
        assert_eq!(get("dndSettings.Email.status", &r), Some(json!("active")));
        assert_eq!(get("attributions[1].utmSource", &r), Some(json!("fb")));
        assert_eq!(get("attributions[5].utmSource", &r), None);
        assert_eq!(get("\"weird key\".\"x.y\"", &r), Some(json!(1)));
        assert_eq!(get("email.nothing", &r), None);
        assert_eq!(get("custom.id.cf2", &r), Some(json!(["a", "b"])));
        assert_eq!(get("custom.id.cf2[0]", &r), Some(json!("a")));
        assert_eq!(get("custom.id.missing", &r), None);
        assert_eq!(get("$contact_id", &r), Some(json!("c1")));
        assert_eq!(get("$location_id", &r), Some(json!("loc1")));
    }

    #[test]
    fn custom_names_read_nothing_until_resolved() {
        let r = json!({"customFields": [{"id": "cf1", "value": 7}]});
        let mut p = path("custom.\"Lead Score\"");
        let ctx = Ctx {
            location_id: "l",
            contact_id: None,
        };
        assert!(matches!(p.get(&r, &ctx), Cur::Null));
        if let Some(CustomRef::Name { id, name, .. }) = p.custom_ref_mut() {
            assert_eq!(name, "Lead Score");
            *id = Some("cf1".into());
        }
        assert!(matches!(p.get(&r, &ctx), Cur::Json(v) if v == &json!(7)));
    }

    #[test]
    fn custom_id_and_a_field_named_id_are_told_apart() {
        assert_eq!(
            path("custom.id.abc").root,
            Root::Custom(CustomRef::Id("abc".into()))
        );
        assert!(matches!(
            path("custom.id").root,
            Root::Custom(CustomRef::Name { ref name, .. }) if name == "id"
        ));
        assert!(matches!(
            path("custom.\"id\"").root,
            Root::Custom(CustomRef::Name { ref name, .. }) if name == "id"
        ));
    }

    #[test]
    fn path_syntax_errors_point_at_the_problem() {
        let e = parse_path("a..b", (1, 1)).unwrap_err();
        assert_eq!(e.offset, 2);
        let e = parse_path("tags[x]", (1, 1)).unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (4, "expected an array index like `[0]`")
        );
        let e = parse_path("\"open", (1, 1)).unwrap_err();
        assert_eq!(e.message, "unclosed quote in path");
        let e = parse_path("$contactid", (1, 1)).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean `$contact_id`?"));
        assert!(parse_path("custom", (1, 1)).is_err());
        assert!(parse_path("", (1, 1)).is_err());
        assert!(parse_path("a b", (1, 1)).is_err());
    }

    #[test]
    fn templates_render_paths_current_value_and_braces() {
        let r = json!({"id": "c9", "firstName": "Zoë", "lastName": null, "tags": ["a", "b"]});
        let ctx = Ctx {
            location_id: "L1",
            contact_id: None,
        };
        let t = parse_template(
            "{firstName} {lastName}|{tags}|{{x}}|{$location_id}/{id}|{}",
            |_| (1, 1),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let cur = Cur::Text(Cow::Borrowed("now"));
        assert_eq!(t.render(&r, &ctx, &cur, ";"), "Zoë |a;b|{x}|L1/c9|now");
    }

    #[test]
    fn template_errors() {
        assert_eq!(
            parse_template("", |_| (1, 1)).unwrap_err().message,
            "empty template"
        );
        let e = parse_template("ab {first", |_| (1, 1)).unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (3, "unclosed `{` in template")
        );
        let e = parse_template("ab }", |_| (1, 1)).unwrap_err();
        assert_eq!(e.offset, 3);
        let e = parse_template("x {a..b}", |_| (1, 1)).unwrap_err();
        assert_eq!(e.offset, 5);
    }

    #[test]
    fn contact_id_falls_back_to_the_record() {
        let c = json!({"id": "c1"});
        let t = json!({"id": "t1", "contactId": "c2"});
        assert_eq!(contact_id(TableKind::Contacts, &c, None), Some("c1"));
        assert_eq!(contact_id(TableKind::Tasks, &t, None), Some("c2"));
        assert_eq!(contact_id(TableKind::Tasks, &t, Some("c3")), Some("c3"));
    }
}
