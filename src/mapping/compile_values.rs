//! The typed readers of a mapping's values: each checks a node's TOML type and, when it is
//! not the one expected, records the error at the node's place and answers `None`, so the
//! walk goes on and reports every problem in one run.

use super::*;

impl Cx<'_, '_> {
    pub(super) fn wrong_type(&mut self, node: &Node<'_>, what: &str, expected: &str) {
        self.diag.error(
            node.span(),
            format!(
                "`{what}` must be {expected}, found {}",
                node.get_ref().type_str()
            ),
            None,
        );
    }

    pub(super) fn string<'n>(&mut self, node: &'n Node<'_>, what: &str) -> Option<&'n str> {
        match node.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node<'_>, what: &str) -> Option<bool> {
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    pub(super) fn int(&mut self, node: &Node<'_>, what: &str) -> Option<i64> {
        match node.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let parsed = i64::from_str_radix(
                    digits
                        .trim_start_matches("0x")
                        .trim_start_matches("0o")
                        .trim_start_matches("0b"),
                    i.radix(),
                );
                match parsed {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.diag
                            .error(node.span(), format!("`{what}` is out of range"), None);
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(node, what, "an integer");
                None
            }
        }
    }

    pub(super) fn table<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        what: &str,
    ) -> Option<&'n DeTable<'i>> {
        match node.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(node, what, "a table");
                None
            }
        }
    }

    pub(super) fn array<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        what: &str,
        example: &str,
    ) -> Option<&'n [Node<'i>]> {
        match node.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.diag.error(
                    node.span(),
                    format!(
                        "`{what}` must be a list, found {}",
                        node.get_ref().type_str()
                    ),
                    Some(format!("for example: {what} = {example}")),
                );
                None
            }
        }
    }

    /// A TOML value as JSON (datetimes as their text); floats that JSON cannot hold are
    /// errors.
    pub(super) fn json(&mut self, node: &Node<'_>, what: &str) -> Option<Json> {
        Some(match node.get_ref() {
            DeValue::String(s) => Json::String(s.to_string()),
            DeValue::Integer(_) => Json::from(self.int(node, what)?),
            DeValue::Float(f) => {
                let parsed = f.as_str().replace('_', "").parse::<f64>().ok();
                match parsed.and_then(serde_json::Number::from_f64) {
                    Some(n) => Json::Number(n),
                    None => {
                        self.diag.error(
                            node.span(),
                            format!("`{what}` must be a finite number"),
                            None,
                        );
                        return None;
                    }
                }
            }
            DeValue::Boolean(b) => Json::Bool(*b),
            DeValue::Datetime(d) => Json::String(d.to_string()),
            DeValue::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.json(item, what)?);
                }
                Json::Array(out)
            }
            DeValue::Table(t) => {
                let mut out = serde_json::Map::new();
                for (k, v) in t.iter() {
                    out.insert(k.get_ref().to_string(), self.json(v, what)?);
                }
                Json::Object(out)
            }
        })
    }

    pub(super) fn scalar(&mut self, node: &Node<'_>, what: &str) -> Option<Json> {
        if matches!(node.get_ref(), DeValue::Array(_) | DeValue::Table(_)) {
            self.wrong_type(node, what, "a string, number or boolean");
            return None;
        }
        self.json(node, what)
    }
}
