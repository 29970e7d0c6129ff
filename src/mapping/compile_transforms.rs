//! The compiler's checks of transforms (every shape, with an example of the right one) and of
//! column types.

use super::*;

impl Cx<'_, '_> {
    pub(super) fn transform(&mut self, node: &Node<'_>, kind: TableKind) -> Option<Step> {
        let span = node.span();
        let text = self
            .src
            .text
            .get(span.clone())
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let step = |transform: Transform, name: &'static str| Step {
            transform,
            name,
            text: text.clone(),
        };
        match node.get_ref() {
            DeValue::String(s) => {
                let name = s.as_ref();
                let t = match name {
                    "trim" => Transform::Trim,
                    "lower" => Transform::Lower,
                    "upper" => Transform::Upper,
                    "sha256" => Transform::Sha256,
                    "join" => Transform::Join(None),
                    _ => {
                        if let Some(known) = TRANSFORM_NAMES.iter().find(|n| **n == name) {
                            self.diag.error(
                                span,
                                format!("transform `{known}` needs a value"),
                                Some(format!("write it as a table: {}", example(known))),
                            );
                        } else {
                            self.diag.error(
                                span,
                                format!(
                                    "unknown transform `{name}`; expected one of: {}",
                                    one_of(TRANSFORM_NAMES)
                                ),
                                did_you_mean(name, TRANSFORM_NAMES.iter().copied()),
                            );
                        }
                        return None;
                    }
                };
                let name = TRANSFORM_NAMES
                    .iter()
                    .copied()
                    .find(|n| *n == name)
                    .unwrap_or("transform");
                Some(Step {
                    transform: t,
                    name,
                    text: s.to_string(),
                })
            }
            DeValue::Table(t) => {
                let keys: Vec<&Spanned<std::borrow::Cow<'_, str>>> =
                    t.iter().map(|(k, _)| k).collect();
                let kinds: Vec<&&Spanned<std::borrow::Cow<'_, str>>> = keys
                    .iter()
                    .filter(|k| TRANSFORM_NAMES.contains(&k.get_ref().as_ref()))
                    .collect();
                // `lookup` takes `default` as its option, so `default` there is not a transform.
                let is_lookup = t.get("lookup").is_some();
                let main = if is_lookup {
                    "lookup"
                } else {
                    match kinds.as_slice() {
                        [one] => TRANSFORM_NAMES
                            .iter()
                            .copied()
                            .find(|n| *n == one.get_ref().as_ref())
                            .unwrap_or("transform"),
                        [] => {
                            for k in &keys {
                                self.diag.error(
                                    k.span(),
                                    format!(
                                        "unknown transform `{}`; expected one of: {}",
                                        k.get_ref(),
                                        one_of(TRANSFORM_NAMES)
                                    ),
                                    did_you_mean(k.get_ref(), TRANSFORM_NAMES.iter().copied()),
                                );
                            }
                            if keys.is_empty() {
                                self.diag.error(
                                    span,
                                    "empty transform table",
                                    Some(format!("expected one of: {}", one_of(TRANSFORM_NAMES))),
                                );
                            }
                            return None;
                        }
                        [_, second, ..] => {
                            self.diag.error(
                                second.span(),
                                "one transform per entry",
                                Some(
                                    "write each transform as its own list entry, applied in order"
                                        .into(),
                                ),
                            );
                            return None;
                        }
                    }
                };
                // Keys besides the transform's own (and lookup's `default`) are unknown.
                let mut ok = true;
                for k in &keys {
                    let key = k.get_ref().as_ref();
                    if key == main || (is_lookup && key == "default") {
                        continue;
                    }
                    let allowed: &[&str] = if is_lookup {
                        &["lookup", "default"]
                    } else {
                        &[]
                    };
                    self.diag.error(
                        k.span(),
                        format!("unexpected key `{key}` in the `{main}` transform"),
                        if allowed.is_empty() {
                            Some("write each transform as its own list entry".into())
                        } else {
                            did_you_mean(key, allowed.iter().copied())
                        },
                    );
                    ok = false;
                }
                let value = t.get(main)?;
                let transform = self.transform_value(main, value, t, kind);
                if !ok {
                    return None;
                }
                Some(step(transform?, main))
            }
            _ => {
                self.diag.error(
                    span,
                    format!("a transform must be a name like \"trim\" or a table like {{ template = \"...\" }}, found {}", node.get_ref().type_str()),
                    None,
                );
                None
            }
        }
    }

    fn transform_value(
        &mut self,
        main: &str,
        value: &Node<'_>,
        table: &DeTable<'_>,
        kind: TableKind,
    ) -> Option<Transform> {
        let span = value.span();
        match main {
            "trim" | "lower" | "upper" | "sha256" => {
                self.diag.error(
                    span,
                    format!("transform `{main}` takes no options"),
                    Some(format!("write it as \"{main}\"")),
                );
                None
            }
            "default" => Some(Transform::Default(self.json(value, "default")?)),
            "constant" => Some(Transform::Constant(self.json(value, "constant")?)),
            "join" => Some(Transform::Join(Some(
                self.string(value, "join")?.to_string(),
            ))),
            "split" => {
                let s = self.string(value, "split")?;
                if s.is_empty() {
                    self.diag
                        .error(span, "`split` needs a non-empty separator", None);
                    return None;
                }
                Some(Transform::Split(s.to_string()))
            }
            "template" => {
                let text = self.string(value, "template")?;
                let src = self.src;
                match parse_template(text, |off| {
                    src.position(src.inner_span(&span, text, off).start)
                }) {
                    Ok(template) => {
                        let mut ok = true;
                        for (p, off) in template.paths().zip(template.path_offsets.iter()) {
                            let at = self.src.inner_span(&span, text, *off);
                            ok &= self.check_root(p, kind, at);
                        }
                        ok.then_some(Transform::Template(template))
                    }
                    Err(e) => {
                        self.path_error(&span, text, e);
                        None
                    }
                }
            }
            "coalesce" => {
                let items = self.array(
                    value,
                    "coalesce",
                    "[\"email\", \"attributionSource.email\"]",
                )?;
                if items.is_empty() {
                    self.diag
                        .error(span, "`coalesce` needs at least one path", None);
                    return None;
                }
                let mut paths = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.path(item, "coalesce", kind) {
                        Some(p) => paths.push(p),
                        None => ok = false,
                    }
                }
                ok.then_some(Transform::Coalesce(paths))
            }
            "phone_e164" => {
                let country_node;
                let country = match value.get_ref() {
                    DeValue::String(s) => {
                        country_node = value;
                        s.as_ref()
                    }
                    DeValue::Table(t) => {
                        self.check_keys(t, &["default_country"], "in `phone_e164`");
                        let Some(c) = t.get("default_country") else {
                            self.diag.error(
                                span,
                                "`phone_e164` needs `default_country`",
                                Some("e.g. { phone_e164 = { default_country = \"GB\" } }".into()),
                            );
                            return None;
                        };
                        country_node = c;
                        self.string(c, "default_country")?
                    }
                    _ => {
                        self.wrong_type(
                            value,
                            "phone_e164",
                            "a table like { default_country = \"GB\" }",
                        );
                        return None;
                    }
                };
                match phone::calling_code(country) {
                    Some(calling_code) => Some(Transform::PhoneE164 { calling_code }),
                    None => {
                        // Two-letter codes are all within an edit or two of each other, so
                        // a "did you mean" would be noise; say what is accepted instead.
                        self.diag.error(
                            country_node.span(),
                            format!("unknown country `{country}` for `phone_e164`"),
                            Some("use an ISO 3166 country code like \"GB\" or \"US\", or a calling code like \"44\"".into()),
                        );
                        None
                    }
                }
            }
            "lookup" => {
                let t = self.table(value, "lookup")?;
                let mut map = HashMap::with_capacity(t.len());
                let mut ok = true;
                for (k, v) in t.iter() {
                    match self.scalar(v, "a lookup value") {
                        Some(j) => {
                            map.insert(k.get_ref().to_string(), j);
                        }
                        None => ok = false,
                    }
                }
                let default = match table.get("default") {
                    Some(d) => Some(self.scalar(d, "default")?),
                    None => None,
                };
                ok.then_some(Transform::Lookup {
                    table: map,
                    default,
                })
            }
            "regex_replace" => {
                let t = self.table(value, "regex_replace")?;
                self.check_keys(t, &["pattern", "replacement"], "in `regex_replace`");
                let Some(p) = t.get("pattern") else {
                    self.diag
                        .error(span, "`regex_replace` needs a `pattern`", None);
                    return None;
                };
                let pattern = self.string(p, "pattern")?;
                let replacement = match t.get("replacement") {
                    Some(r) => self.string(r, "replacement")?.to_string(),
                    None => String::new(),
                };
                match Regex::new(pattern) {
                    Ok(regex) => Some(Transform::RegexReplace { regex, replacement }),
                    Err(e) => {
                        let detail = e.to_string();
                        let last = detail.lines().last().unwrap_or("").trim();
                        let last = last.strip_prefix("error: ").unwrap_or(last);
                        self.diag.error(
                            p.span(),
                            format!("invalid regex `{pattern}`: {last}"),
                            Some("the syntax is Rust's `regex` crate (no look-around or backreferences)".into()),
                        );
                        None
                    }
                }
            }
            "date" => {
                let t = self.table(value, "date")?;
                self.check_keys(t, &["formats", "format"], "in `date`");
                let Some(f) = t.get("formats") else {
                    self.diag.error(
                        span,
                        "`date` needs `formats`, the input formats to try",
                        Some("e.g. { date = { formats = [\"%d/%m/%Y\", \"%Y-%m-%d\"] } }".into()),
                    );
                    return None;
                };
                let items = self.array(f, "formats", "[\"%d/%m/%Y\"]")?;
                if items.is_empty() {
                    self.diag
                        .error(f.span(), "`formats` needs at least one format", None);
                    return None;
                }
                let mut inputs = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.date_format(item, "formats") {
                        Some(i) => inputs.push(i),
                        None => ok = false,
                    }
                }
                let output = match t.get("format") {
                    Some(o) => Some(self.date_format(o, "format")?),
                    None => None,
                };
                ok.then_some(Transform::Date { inputs, output })
            }
            _ => None,
        }
    }

    fn date_format(&mut self, node: &Node<'_>, what: &str) -> Option<Vec<Item<'static>>> {
        let s = self.string(node, what)?;
        match StrftimeItems::new(s).parse_to_owned() {
            Ok(items) if !items.is_empty() => Some(items),
            _ => {
                self.diag.error(
                    node.span(),
                    format!("invalid date format `{s}`"),
                    Some("formats use chrono's strftime syntax, e.g. \"%d/%m/%Y %H:%M\"".into()),
                );
                None
            }
        }
    }
}

fn example(transform: &str) -> &'static str {
    match transform {
        "default" => "{ default = \"unknown\" }",
        "template" => "{ template = \"{firstName} {lastName}\" }",
        "split" => "{ split = \",\" }",
        "date" => "{ date = { formats = [\"%d/%m/%Y\"], format = \"%Y-%m-%d\" } }",
        "phone_e164" => "{ phone_e164 = { default_country = \"GB\" } }",
        "lookup" => "{ lookup = { active = \"true\" }, default = \"false\" }",
        "regex_replace" => "{ regex_replace = { pattern = \"\\\\s+\", replacement = \" \" } }",
        "constant" => "{ constant = \"value\" }",
        "coalesce" => "{ coalesce = [\"email\", \"attributionSource.email\"] }",
        _ => "{ name = value }",
    }
}

/// A column type as spelled in the file.
pub(crate) fn parse_type(s: &str) -> Result<ColumnType, (String, Option<String>)> {
    let t = s.trim();
    Ok(match t {
        "string" => ColumnType::String,
        "int" => ColumnType::Int,
        "float" => ColumnType::Float,
        "bool" => ColumnType::Bool,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        "list<string>" => ColumnType::ListString,
        "json" => ColumnType::Json,
        _ if t.starts_with("decimal") => {
            let args = t
                .strip_prefix("decimal")
                .map(str::trim)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'));
            let parsed = args.and_then(|a| {
                let (p, s) = a.split_once(',')?;
                Some((p.trim().parse::<u8>().ok()?, s.trim().parse::<i8>().ok()?))
            });
            match parsed {
                Some((p, s)) if (1..=38).contains(&p) && s >= 0 && (s as u8) <= p => {
                    ColumnType::Decimal {
                        precision: p,
                        scale: s,
                    }
                }
                Some((p, s)) => {
                    return Err((
                        format!("invalid `decimal({p},{s})`: precision must be 1 to 38 and scale 0 to the precision"),
                        None,
                    ))
                }
                None => {
                    return Err((
                        format!("invalid type `{t}`; decimal needs a precision and a scale"),
                        Some("e.g. `decimal(12,2)`".into()),
                    ))
                }
            }
        }
        _ => {
            let aliases = [
                ("integer", "int"),
                ("str", "string"),
                ("text", "string"),
                ("boolean", "bool"),
                ("double", "float"),
                ("datetime", "timestamp"),
                ("list", "list<string>"),
                ("array", "list<string>"),
            ];
            let help = aliases
                .iter()
                .find(|(a, _)| t.eq_ignore_ascii_case(a))
                .map(|(_, real)| format!("did you mean `{real}`?"))
                .or_else(|| did_you_mean(t, TYPE_NAMES.iter().copied()));
            return Err((
                format!(
                    "unknown type `{t}`; expected one of: {}",
                    one_of(TYPE_NAMES)
                ),
                help,
            ));
        }
    })
}

impl Cx<'_, '_> {
    /// A type clash caught before any data: `split` makes a list (unless a later `join` makes
    /// it text again), which only `list<string>` holds; every value would fail otherwise.
    pub(super) fn check_list_type(&mut self, ty: &ColumnType, steps: &[Step], at: Range<usize>) {
        let makes_list = steps.iter().fold(false, |list, s| match &s.transform {
            Transform::Split(_) => true,
            Transform::Join(_) => false,
            _ => list,
        });
        if makes_list && *ty != ColumnType::ListString {
            self.diag.error(
                at,
                format!(
                    "type `{}` cannot hold the list `split` makes",
                    ty.spelling()
                ),
                Some("use type = \"list<string>\", or add \"join\" after `split`".into()),
            );
        }
    }
}
