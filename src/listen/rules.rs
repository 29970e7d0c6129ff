//! The rules file of `listen --rules FILE`: on an event type, when conditions hold, do actions.
//!
//! ```toml
//! version = 1
//!
//! [[rules]]
//! name = "follow up new contacts"
//! on = "ContactCreate"              # or a list of event types
//! when = ["source exists"]           # the `--where` language, on the event's own fields
//!
//! [[rules.actions]]
//! do = "create-task"                 # add-tags | remove-tags | create-task | add-note | add-to-workflow
//! title = "Call {{firstName}} {{lastName}}"
//! due_in_hours = 48                  # or due = "{{dueDate}}"
//! ```
//!
//! Templates put an event field in place of `{{field}}` (`{{a.b}}` reaches into objects; a
//! field the event lacks is empty). Every problem is reported at file:line:col with the fix,
//! as for mapping files, before the listener starts.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::mapping::{did_you_mean, MappingError, MappingErrors, SourceMap};

/// The event types rules can name (GHL's contact, note and task webhooks).
pub const EVENT_TYPES: &[&str] = &[
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
    "ContactDndUpdate",
    "ContactTagUpdate",
    "NoteCreate",
    "NoteUpdate",
    "NoteDelete",
    "TaskCreate",
    "TaskComplete",
    "TaskDelete",
];

const ACTIONS: &str = "add-tags, remove-tags, create-task, add-note, add-to-workflow";

#[derive(Debug, Clone)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub on: Vec<String>,
    pub when: Vec<Condition>,
    pub actions: Vec<Action>,
}

/// One `--where` expression, read for local evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    /// `eq`, `not_eq`, `contains`, `not_contains`, `gt`, `gte`, `lt`, `lte`, `exists`,
    /// `not_exists`.
    pub op: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    CreateTask {
        title: String,
        body: Option<String>,
        due: Due,
    },
    AddNote {
        body: String,
    },
    AddToWorkflow {
        workflow_id: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Hours after the event's timestamp.
    InHours(f64),
    /// A template giving an ISO-8601 instant.
    At(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    version: Spanned<i64>,
    #[serde(default)]
    rules: Vec<Spanned<RuleFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Spanned<String>,
    on: Spanned<OneOrMany>,
    #[serde(default)]
    when: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    actions: Vec<Spanned<ActionFile>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFile {
    #[serde(rename = "do")]
    kind: Spanned<String>,
    tags: Option<Vec<String>>,
    title: Option<String>,
    body: Option<String>,
    due: Option<String>,
    due_in_hours: Option<f64>,
    workflow_id: Option<String>,
}

impl Rules {
    pub fn read(path: &Path) -> Result<Rules, MappingErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            MappingErrors(vec![MappingError {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read the rules file: {e}"),
                help: None,
            }])
        })?;
        Rules::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Rules, MappingErrors> {
        let src = SourceMap::new(file, text);
        let at = |offset: usize, message: String, help: Option<String>| {
            let (line, column) = src.position(offset);
            MappingError {
                file: file.to_string(),
                line,
                column,
                message,
                help,
            }
        };
        let parsed: RulesFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            MappingErrors(vec![at(offset, e.message().trim().to_string(), None)])
        })?;
        let mut errors = Vec::new();
        if *parsed.version.get_ref() != 1 {
            errors.push(at(
                parsed.version.span().start,
                format!("unknown version {}", parsed.version.get_ref()),
                Some("write `version = 1`".into()),
            ));
        }
        let mut rules = Vec::new();
        for r in parsed.rules {
            let r = r.into_inner();
            let mut rule = Rule {
                name: r.name.get_ref().clone(),
                on: r.on.get_ref().items(),
                when: Vec::new(),
                actions: Vec::new(),
            };
            if rules.iter().any(|x: &Rule| x.name == rule.name) {
                errors.push(at(
                    r.name.span().start,
                    format!("a second rule named `{}`", rule.name),
                    Some("give each rule its own name: actions are recorded by it".into()),
                ));
            }
            for t in &rule.on {
                if !EVENT_TYPES.contains(&t.as_str()) {
                    let hint = did_you_mean(t, EVENT_TYPES.iter().copied())
                        .map_or(String::new(), |h| format!("{h} "));
                    errors.push(at(
                        r.on.span().start,
                        format!("unknown event type `{t}`"),
                        Some(format!("{hint}one of {}", EVENT_TYPES.join(", "))),
                    ));
                }
            }
            for expr in r
                .when
                .as_ref()
                .map(|w| w.get_ref().items())
                .unwrap_or_default()
            {
                match parse_condition(&expr) {
                    Ok(c) => rule.when.push(c),
                    Err(why) => errors.push(at(
                        r.when.as_ref().map_or(0, |w| w.span().start),
                        format!("condition `{expr}`: {why}"),
                        None,
                    )),
                }
            }
            if r.actions.is_empty() {
                errors.push(at(
                    r.name.span().start,
                    format!("rule `{}` has no actions", rule.name),
                    Some(format!(
                        "add [[rules.actions]] with `do` = one of {ACTIONS}"
                    )),
                ));
            }
            for a in r.actions {
                let span = a.span().start;
                match action(a.into_inner()) {
                    Ok(a) => rule.actions.push(a),
                    Err((why, help)) => errors.push(at(span, why, Some(help))),
                }
            }
            rules.push(rule);
        }
        if errors.is_empty() {
            Ok(Rules { rules })
        } else {
            Err(MappingErrors(errors))
        }
    }

    /// The (rule, action index) pairs `payload` of type `event_type` calls for.
    pub fn plan(&self, event_type: &str, payload: &Value) -> Vec<(String, i64)> {
        self.rules
            .iter()
            .filter(|r| r.on.iter().any(|t| t == event_type))
            .filter(|r| r.when.iter().all(|c| c.holds(payload)))
            .flat_map(|r| (0..r.actions.len() as i64).map(|i| (r.name.clone(), i)))
            .collect()
    }

    pub fn action(&self, rule: &str, index: i64) -> Option<&Action> {
        let r = self.rules.iter().find(|r| r.name == rule)?;
        r.actions.get(usize::try_from(index).ok()?)
    }
}

fn action(a: ActionFile) -> Result<Action, (String, String)> {
    let kind = a.kind.get_ref().as_str();
    let need = |v: Option<String>, what: &str| {
        v.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            (
                format!("`{kind}` needs `{what}`"),
                format!("add `{what} = \"…\"`"),
            )
        })
    };
    let tags = |v: Option<Vec<String>>| {
        v.filter(|t| !t.is_empty()).ok_or_else(|| {
            (
                format!("`{kind}` needs `tags`"),
                "add `tags = [\"…\"]`".to_string(),
            )
        })
    };
    Ok(match kind {
        "add-tags" => Action::AddTags(tags(a.tags)?),
        "remove-tags" => Action::RemoveTags(tags(a.tags)?),
        "create-task" => Action::CreateTask {
            title: need(a.title, "title")?,
            body: a.body,
            due: match (a.due, a.due_in_hours) {
                (Some(t), None) => Due::At(t),
                (None, Some(h)) if h.is_finite() && h >= 0.0 => Due::InHours(h),
                (None, None) => Due::InHours(24.0),
                _ => {
                    return Err((
                        "`create-task`: give `due` (a template) or `due_in_hours` (a number of hours, >= 0), not both".into(),
                        "for example `due_in_hours = 48`".into(),
                    ))
                }
            },
        },
        "add-note" => Action::AddNote {
            body: need(a.body, "body")?,
        },
        "add-to-workflow" => Action::AddToWorkflow {
            workflow_id: need(a.workflow_id, "workflow_id")?,
        },
        other => {
            let hint = did_you_mean(other, ACTIONS.split(", "))
                .map_or(String::new(), |h| format!("{h} "));
            return Err((format!("unknown action `{other}`"), format!("{hint}`do` is one of {ACTIONS}")));
        }
    })
}

/// One expression of the `--where` language, on any field of the event.
pub fn parse_condition(expr: &str) -> Result<Condition, String> {
    fn field_ok(f: &str) -> Result<&str, String> {
        let good = !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if good {
            Ok(f)
        } else {
            Err(format!(
                "`{f}` is not a field name (letters, digits, `_` and `.`)"
            ))
        }
    }
    let (field, op, value) = crate::api::filter::split_with(expr, field_ok)?;
    if matches!(op, "gt" | "gte" | "lt" | "lte") && as_number(value).is_none() {
        return Err(format!("`{value}` is neither a number nor a date"));
    }
    Ok(Condition {
        field: field.to_string(),
        op,
        value: value.to_string(),
    })
}

impl Condition {
    /// Whether the condition holds of `payload`. Text compares without regard to case (as
    /// GHL's tags do); a list (tags) matches `=` when it holds any of the `,`-separated values.
    pub fn holds(&self, payload: &Value) -> bool {
        let got = field(payload, &self.field);
        let present = !matches!(got, None | Some(Value::Null))
            && got.and_then(Value::as_str) != Some("")
            && got.and_then(Value::as_array).is_none_or(|a| !a.is_empty());
        let wanted: Vec<String> = self
            .value
            .split(',')
            .map(|v| v.trim().to_lowercase())
            .collect();
        let texts: Vec<String> = match got {
            Some(Value::Array(items)) => items.iter().map(text).collect(),
            Some(v) => vec![text(v)],
            None => Vec::new(),
        };
        match self.op {
            "exists" => present,
            "not_exists" => !present,
            "eq" => texts.iter().any(|t| wanted.contains(t)),
            "not_eq" => !texts.iter().any(|t| wanted.contains(t)),
            "contains" => texts.iter().any(|t| t.contains(&self.value.to_lowercase())),
            "not_contains" => !texts.iter().any(|t| t.contains(&self.value.to_lowercase())),
            op => {
                let (Some(a), Some(b)) = (got.and_then(number_of), as_number(&self.value)) else {
                    return false;
                };
                match op {
                    "gt" => a > b,
                    "gte" => a >= b,
                    "lt" => a < b,
                    _ => a <= b,
                }
            }
        }
    }
}

/// A field of the event: `a.b` reaches into objects.
pub fn field<'v>(payload: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(payload, |v, k| v.get(k))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

/// A number, or an instant (ISO-8601 or a date) as epoch milliseconds.
fn as_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().or_else(|| {
        crate::api::filter::parse_instant(s)
            .ok()
            .map(|ms| ms as f64)
    })
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => as_number(s),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// `template` with each `{{field}}` replaced by the event's value (empty when absent).
pub fn render(template: &str, payload: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + len].trim();
        match field(payload, name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect();
                out.push_str(&parts.join(", "));
            }
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = include_str!("../../samples/rules.toml");

    #[test]
    fn the_sample_rules_read_and_plan_the_three_patterns() {
        let rules = Rules::parse("samples/rules.toml", SAMPLE).unwrap();
        let new =
            json!({"type": "ContactCreate", "id": "c1", "firstName": "Ann", "source": "Website"});
        let planned = rules.plan("ContactCreate", &new);
        assert!(
            planned.iter().any(|(r, _)| r.contains("follow-up")),
            "{planned:?}"
        );
        assert!(
            planned.iter().any(|(r, _)| r.contains("source")),
            "{planned:?}"
        );
        let no_source = json!({"type": "ContactCreate", "id": "c1"});
        assert!(!rules
            .plan("ContactCreate", &no_source)
            .iter()
            .any(|(r, _)| r.contains("source")));
        let done = json!({"type": "TaskComplete", "id": "t1", "contactId": "c1", "title": "Call"});
        assert_eq!(rules.plan("TaskComplete", &done).len(), 1);
        assert!(rules.plan("NoteCreate", &done).is_empty());
    }

    #[test]
    fn conditions_hold_as_the_where_language_reads() {
        let p = json!({"tags": ["VIP", "lead"], "source": "Web", "completed": true,
                       "dateAdded": "2026-01-02T00:00:00Z", "n": 5});
        let holds = |e: &str| parse_condition(e).unwrap().holds(&p);
        assert!(holds("tags=vip"));
        assert!(holds("tags=cold,lead"));
        assert!(!holds("tags!=lead"));
        assert!(holds("source~we"));
        assert!(holds("completed=true"));
        assert!(holds("dateAdded>=2026-01-01"));
        assert!(!holds("dateAdded<2026-01-01"));
        assert!(holds("n>4") && !holds("n>5"));
        assert!(holds("source exists") && holds("email missing"));
        assert!(parse_condition("n>soon").is_err());
    }

    #[test]
    fn templates_fill_fields_and_leave_missing_ones_empty() {
        let p = json!({"firstName": "Ann", "tags": ["a", "b"], "x": {"y": 2}});
        assert_eq!(render("Call {{firstName}} {{lastName}}!", &p), "Call Ann !");
        assert_eq!(render("{{tags}} / {{ x.y }}", &p), "a, b / 2");
        assert_eq!(render("no {{ end", &p), "no {{ end");
    }

    #[test]
    fn every_problem_is_named_at_its_line_and_column() {
        let text = "version = 1\n\n[[rules]]\nname = \"a\"\non = \"ContactCreat\"\nwhen = \"x ?? y\"\n\n[[rules.actions]]\ndo = \"add-tag\"\n";
        let e = Rules::parse("r.toml", text).unwrap_err();
        let all = e.to_string();
        assert!(
            all.contains("r.toml:5:6: unknown event type `ContactCreat`"),
            "{all}"
        );
        assert!(all.contains("did you mean `ContactCreate`?"), "{all}");
        assert!(all.contains("r.toml:6:8: condition `x ?? y`"), "{all}");
        assert!(
            all.contains("r.toml:8:1: unknown action `add-tag`"),
            "{all}"
        );
        assert!(all.contains("did you mean `add-tags`?"), "{all}");
        let e = Rules::parse("r.toml", "version = 1\n[[rules]]\nnme = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("r.toml:3:1"), "{e}");
    }
}
