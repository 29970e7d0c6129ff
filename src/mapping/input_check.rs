//! A load mapping checked against its input before the first write. A column whose `from`
//! names a column the input lacks would be null for every row, silently: a typo such as
//! `from = "Email Adress"` would create contacts without email. So each input column a
//! mapping column reads must be in the input (unless the column says `optional = true`), and
//! the error names the mapping's file, line and column, and the closest input header.

use std::collections::BTreeSet;

use super::error::did_you_mean;
use super::path::{Path, Root};
use super::plan::ColumnPlan;
use super::transform::Transform;
use super::{MappingError, MappingErrors, TableMapping};

/// Headers shown in an error, at most.
const SHOWN: usize = 12;

impl TableMapping {
    /// `custom_fields = "all"`: a load carries every custom field of the input.
    pub fn all_custom_fields(&self) -> bool {
        self.all_custom_fields
    }

    /// The separator of list values held in one text cell (`list_separator`, or `;`).
    pub fn list_separator(&self) -> &str {
        &self.sep
    }

    /// The input columns the column `name` reads, quoted for a message (`` `Email` ``).
    pub fn describe_source(&self, name: &str) -> Option<String> {
        let col = self.columns.iter().find(|c| c.name == name)?;
        let names: Vec<String> = reads(col)
            .into_iter()
            .flatten()
            .map(|c| format!("`{c}`"))
            .collect();
        (!names.is_empty()).then(|| names.join(" or "))
    }

    /// Check that the input (its header, or the keys its first rows have) holds every
    /// column the mapping reads. `file` is the mapping file's name, `input` names the input.
    pub fn check_input_columns(
        &self,
        file: &str,
        input: &str,
        headers: &BTreeSet<String>,
    ) -> Result<(), MappingErrors> {
        let mut errors = Vec::new();
        for col in self.columns.iter().filter(|c| !c.optional) {
            for group in reads(col) {
                if group.iter().any(|c| headers.contains(*c)) {
                    continue;
                }
                errors.push(missing(file, input, col, &group, headers));
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(MappingErrors(errors)),
        }
    }

    /// The names of the mapping's columns whose input columns are all absent (`optional`
    /// ones, once [`TableMapping::check_input_columns`] passed): they carry nothing, so no
    /// custom field is created for them.
    pub fn absent_columns(&self, headers: &BTreeSet<String>) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| {
                let groups = reads(c);
                !groups.is_empty()
                    && groups
                        .iter()
                        .all(|g| g.iter().all(|name| !headers.contains(*name)))
            })
            .map(|c| c.name.clone())
            .collect()
    }
}

/// The input columns a mapping column reads, as groups of which one name must be present: a
/// `from` and the paths of a `coalesce` make one group (any of them will do); each template
/// placeholder is a group of its own.
fn reads(col: &ColumnPlan) -> Vec<Vec<&str>> {
    let mut first: Vec<&str> = col.source.iter().filter_map(input_column).collect();
    let mut groups = Vec::new();
    for step in &col.steps {
        match &step.transform {
            Transform::Coalesce(paths) => first.extend(paths.iter().filter_map(input_column)),
            Transform::Template(t) => {
                groups.extend(t.paths().filter_map(input_column).map(|c| vec![c]));
            }
            _ => {}
        }
    }
    if !first.is_empty() {
        groups.insert(0, first);
    }
    groups
}

/// The input column a path starts at, if it starts at the input row.
fn input_column(path: &Path) -> Option<&str> {
    match path.root {
        Root::Record { .. } => path.root_field().map(|(f, _)| f),
        _ => None,
    }
}

fn missing(
    file: &str,
    input: &str,
    col: &ColumnPlan,
    group: &[&str],
    headers: &BTreeSet<String>,
) -> MappingError {
    let name = group.first().copied().unwrap_or_default();
    let what = match group.len() {
        1 => format!("input column `{name}`"),
        _ => format!("none of the input columns `{}`", group.join("`, `")),
    };
    let suggestion = nearest(name, headers)
        .map(|h| format!("did you mean `{h}`? "))
        .unwrap_or_default();
    let shown: Vec<&str> = headers.iter().take(SHOWN).map(String::as_str).collect();
    let more = match headers.len() > SHOWN {
        true => format!(", … ({} in all)", headers.len()),
        false => String::new(),
    };
    MappingError {
        file: file.to_string(),
        line: col.at.0,
        column: col.at.1,
        message: format!(
            "{what} (read by column `{}`) is not in {input}",
            col.name
        ),
        help: Some(format!(
            "{suggestion}The input's columns: `{}`{more}. If some inputs lack it on purpose, add `optional = true` to the column.",
            shown.join("`, `")
        )),
    }
}

/// The header a name most likely meant: the same letters and digits in another case or
/// spacing first ("Favourite Colour" → "Favourite colour"), else the closest spelling.
fn nearest<'h>(name: &str, headers: &'h BTreeSet<String>) -> Option<&'h str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let folded = fold(name);
    if let Some(h) = headers.iter().find(|h| fold(h) == folded) {
        return Some(h);
    }
    let hint = did_you_mean(name, headers.iter().map(String::as_str))?;
    headers
        .iter()
        .find(|h| hint == format!("did you mean `{h}`?"))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use crate::mapping::Mapping;
    use std::collections::BTreeSet;

    fn load(columns: &str) -> Mapping {
        let text = format!("version = 1\ndirection = \"load\"\n[contacts]\n{columns}");
        Mapping::from_str(&text, "m.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_from_the_input_lacks_names_the_place_and_the_closest_header() {
        let m = load(
            "[[contacts.columns]]\nname = \"email\"\nfrom = \"Email Adress\"\n\
             [[contacts.columns]]\nname = 'customFields.\"Favourite Colour\"'\nfrom = \"Favourite Colour\"\n",
        );
        let t = m.table(crate::table::TableKind::Contacts).unwrap();
        let h = headers(&["Email Address", "Favourite colour", "First Name"]);
        let errs = t
            .check_input_columns("m.toml", "contacts.csv", &h)
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].column), (6, 8));
        assert!(
            errs[0].message.contains("`Email Adress`"),
            "{}",
            errs[0].message
        );
        let help = errs[0].help.clone().unwrap_or_default();
        assert!(help.starts_with("did you mean `Email Address`?"), "{help}");
        let help = errs[1].help.clone().unwrap_or_default();
        assert!(
            help.starts_with("did you mean `Favourite colour`?"),
            "{help}"
        );
    }

    #[test]
    fn optional_columns_and_any_of_a_coalesce_pass() {
        let m = load(
            "[[contacts.columns]]\nname = \"email\"\n\
             [[contacts.columns]]\nname = \"phone\"\noptional = true\n\
             [[contacts.columns]]\nname = \"id\"\ntransform = [{ coalesce = [\"id\", \"contactId\"] }]\n",
        );
        let t = m.table(crate::table::TableKind::Contacts).unwrap();
        let h = headers(&["email", "contactId"]);
        assert!(t.check_input_columns("m.toml", "x", &h).is_ok());
        assert_eq!(t.absent_columns(&h), vec!["phone".to_string()]);
        let h = headers(&["phone"]);
        let errs = t.check_input_columns("m.toml", "x", &h).unwrap_err().0;
        assert_eq!(errs.len(), 2, "email and the id's coalesce: {errs:?}");
        assert!(errs[1]
            .message
            .contains("none of the input columns `id`, `contactId`"));
    }

    #[test]
    fn custom_fields_all_is_a_load_contacts_setting() {
        let m = load("custom_fields = \"all\"\n[[contacts.columns]]\nname = \"email\"\n");
        let t = m.table(crate::table::TableKind::Contacts).unwrap();
        assert!(t.all_custom_fields());
        let text = "version = 1\ndirection = \"load\"\n[contacts]\ncustom_fields = \"some\"\n[[contacts.columns]]\nname = \"email\"\n";
        let err = Mapping::from_str(text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("m.toml:4:17"), "{err}");
        let text = "version = 1\n[contacts]\ncustom_fields = \"all\"\n[[contacts.columns]]\nname = \"email\"\n";
        let err = Mapping::from_str(text, "m.toml").unwrap_err().to_string();
        assert!(
            err.contains("belongs in the [contacts] section of a load mapping"),
            "{err}"
        );
    }
}
