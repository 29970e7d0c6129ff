//! What a location holds besides contacts that writes can name or change: the custom fields
//! created through the API, the seeded workflows and campaigns contacts can be enrolled in, the
//! enrolments, and the location's duplicate rule, which decides whom an upsert updates.
//!
//! Workflows and campaigns are seeded (a few per location, ids a pure function of the seed) and
//! never created: the API only enrols contacts in them. Their enrolments are not part of the
//! contact JSON, as in GHL. The [`super::store`] owns one catalog and answers for it; HTTP
//! concerns stay in the handlers.

use super::ids::{hash, hashed_id};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Which field an upsert (and the duplicate search) matches first: the location's
/// "Allow Duplicate Contact" priority in GHL's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DuplicateRule {
    #[default]
    EmailThenPhone,
    PhoneThenEmail,
}

impl DuplicateRule {
    pub fn name(self) -> &'static str {
        match self {
            DuplicateRule::EmailThenPhone => "email_then_phone",
            DuplicateRule::PhoneThenEmail => "phone_then_email",
        }
    }
}

impl FromStr for DuplicateRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email_then_phone" => Ok(DuplicateRule::EmailThenPhone),
            "phone_then_email" => Ok(DuplicateRule::PhoneThenEmail),
            _ => Err(format!(
                "duplicate rule `{s}` is neither email_then_phone nor phone_then_email"
            )),
        }
    }
}

/// Something contacts are enrolled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Program {
    Workflow,
    Campaign,
}

/// A seeded workflow or campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: &'static str,
}

const WORKFLOWS: &[&str] = &[
    "New lead nurture",
    "Appointment reminder",
    "Re-engagement, 90 days",
    "Webinar follow-up",
];
const CAMPAIGNS: &[&str] = &["Spring promo", "Newsletter drip", "Win-back"];

/// A workflow id shaped as GHL's (a UUID), from a hash.
fn uuid_like(h: u64) -> String {
    let g = hash(&[h]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | ((g >> 48) & 0x3fff),
        g & 0xffff_ffff_ffff
    )
}

#[derive(Debug, Default)]
struct Inner {
    rules: Vec<DuplicateRule>,
    /// Created custom-field definitions per location, as the customFields endpoint lists them.
    fields: Vec<Vec<Value>>,
    /// Enrolments by (program kind, contact raw id).
    enrolled: HashMap<(Program, u64), BTreeSet<String>>,
}

#[derive(Debug)]
pub struct Catalog {
    workflows: Vec<Vec<Named>>,
    campaigns: Vec<Vec<Named>>,
    inner: RwLock<Inner>,
}

impl Catalog {
    pub fn new(seed: u64, locations: usize) -> Catalog {
        let seeded = |names: &'static [&'static str], tag: u64, id: fn(u64) -> String| {
            (0..locations as u64)
                .map(|li| {
                    (0..names.len() as u64)
                        .map(|n| Named {
                            id: id(hash(&[seed, tag, li, n])),
                            name: names[n as usize],
                        })
                        .collect()
                })
                .collect()
        };
        Catalog {
            workflows: seeded(WORKFLOWS, 0x3F10, uuid_like),
            campaigns: seeded(CAMPAIGNS, 0xCA4B, |h| hashed_id(&[h])),
            inner: RwLock::new(Inner {
                rules: vec![DuplicateRule::default(); locations],
                fields: vec![Vec::new(); locations],
                enrolled: HashMap::new(),
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn programs(&self, li: usize, p: Program) -> &[Named] {
        match p {
            Program::Workflow => &self.workflows[li],
            Program::Campaign => &self.campaigns[li],
        }
    }

    pub fn has_program(&self, li: usize, p: Program, id: &str) -> bool {
        self.programs(li, p).iter().any(|n| n.id == id)
    }

    /// Enrols a contact; false if it already was.
    pub fn enrol(&self, p: Program, raw: u64, id: &str) -> bool {
        self.write()
            .enrolled
            .entry((p, raw))
            .or_default()
            .insert(id.to_string())
    }

    /// Takes a contact out of one program (`Some(id)`) or all of its kind; returns how many.
    pub fn leave(&self, p: Program, raw: u64, id: Option<&str>) -> usize {
        let mut inner = self.write();
        let Some(set) = inner.enrolled.get_mut(&(p, raw)) else {
            return 0;
        };
        match id {
            Some(id) => usize::from(set.remove(id)),
            None => std::mem::take(set).len(),
        }
    }

    pub fn enrolled(&self, p: Program, raw: u64) -> Vec<String> {
        self.read()
            .enrolled
            .get(&(p, raw))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn rule(&self, li: usize) -> DuplicateRule {
        self.read().rules[li]
    }

    pub fn set_rule(&self, li: usize, rule: DuplicateRule) {
        self.write().rules[li] = rule;
    }

    /// Created fields of a location.
    pub fn fields(&self, li: usize) -> Vec<Value> {
        self.read().fields[li].clone()
    }

    /// The id of a created field of `model` named by id, by `fieldKey` (`contact.x`) or by
    /// the key alone.
    pub fn field_id(&self, li: usize, model: &str, id_or_key: &str) -> Option<String> {
        self.read().fields[li].iter().find_map(|f| {
            if f.get("model")?.as_str()? != model {
                return None;
            }
            let key = f.get("fieldKey")?.as_str()?;
            let id = f.get("id")?.as_str()?;
            let short = key.split_once('.').map_or(key, |(_, k)| k);
            (id == id_or_key || key == id_or_key || short == id_or_key).then(|| id.to_string())
        })
    }

    /// Adds a field unless one with its `fieldKey` exists (`taken` also checks the seeded
    /// ones); `make` gets the number of fields created so far, for a fresh id.
    pub fn add_field(
        &self,
        li: usize,
        key: &str,
        taken: impl Fn(&str) -> bool,
        make: impl FnOnce(u64) -> Value,
    ) -> Option<Value> {
        let mut inner = self.write();
        let exists = inner.fields[li]
            .iter()
            .any(|f| f.get("fieldKey").and_then(Value::as_str) == Some(key));
        if exists || taken(key) {
            return None;
        }
        let n = inner.fields.iter().map(Vec::len).sum::<usize>() as u64;
        let f = make(n);
        inner.fields[li].push(f.clone());
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seeded_programs_enrolments_and_rules() {
        let c = Catalog::new(7, 2);
        let w = &c.programs(1, Program::Workflow)[0];
        assert_eq!(w.id.len(), 36, "{}", w.id);
        assert_eq!(&w.id[14..15], "4");
        assert_ne!(c.programs(0, Program::Workflow)[0], *w);
        assert_eq!(Catalog::new(7, 2).programs(1, Program::Workflow)[0], *w);
        assert!(c.has_program(1, Program::Workflow, &w.id));
        assert!(!c.has_program(0, Program::Workflow, &w.id));
        let camp = c.programs(0, Program::Campaign)[1].id.clone();
        assert!(c.enrol(Program::Campaign, 5, &camp));
        assert!(!c.enrol(Program::Campaign, 5, &camp));
        assert!(c.enrol(Program::Campaign, 5, "other"));
        assert_eq!(c.leave(Program::Campaign, 5, Some(&camp)), 1);
        assert_eq!(c.leave(Program::Campaign, 5, None), 1);
        assert!(c.enrolled(Program::Campaign, 5).is_empty());
        assert_eq!(c.rule(1), DuplicateRule::EmailThenPhone);
        c.set_rule(1, "phone_then_email".parse().unwrap());
        assert_eq!(c.rule(1), DuplicateRule::PhoneThenEmail);
        assert!("phone".parse::<DuplicateRule>().is_err());
    }

    #[test]
    fn created_fields_are_found_by_id_and_key() {
        let c = Catalog::new(1, 1);
        let make =
            |n| json!({"id": format!("F{n}"), "fieldKey": "contact.shoe_size", "model": "contact"});
        assert!(c
            .add_field(0, "contact.shoe_size", |_| false, make)
            .is_some());
        assert!(c
            .add_field(0, "contact.shoe_size", |_| false, make)
            .is_none());
        assert!(c.add_field(0, "contact.lead", |_| true, make).is_none());
        for name in ["F0", "contact.shoe_size", "shoe_size"] {
            assert_eq!(
                c.field_id(0, "contact", name).as_deref(),
                Some("F0"),
                "{name}"
            );
        }
        assert_eq!(c.field_id(0, "contact", "size"), None);
        assert_eq!(c.field_id(0, "opportunity", "F0"), None);
    }
}
