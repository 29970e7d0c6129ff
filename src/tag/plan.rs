//! What a tag (or bulk action) run does, resolved before any request.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::input::InputFormat;

/// The input columns that name a contact, tried in this order on each row.
#[derive(Debug, Clone, Serialize)]
pub struct KeyColumns {
    pub id: String,
    pub email: String,
    pub phone: String,
}

/// What is done to each contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Tags added and removed: the plan's `add`/`remove` plus the per-row columns.
    Tags,
    /// `POST|DELETE /contacts/{id}/workflow/{workflowId}`.
    Workflow { id: String, remove: bool },
    /// `POST|DELETE /contacts/{id}/campaigns/{campaignId}`.
    Campaign { id: String, remove: bool },
    /// `POST|DELETE /contacts/{id}/followers` with these user ids.
    Followers { users: Vec<String>, remove: bool },
    /// `POST /contacts/bulk/business`: set (or with `None`, clear) the business.
    Business { id: Option<String> },
    /// `DELETE /contacts/{id}`.
    Delete,
}

impl Action {
    /// Does sending it twice risk a second effect GHL cannot be asked about? Enrolling a
    /// contact in a workflow or campaign can start it again, so those are sent at most once:
    /// the row is recorded as sending first, and a rerun never resends a row left sending.
    pub fn at_most_once(&self) -> bool {
        matches!(
            self,
            Action::Workflow { remove: false, .. } | Action::Campaign { remove: false, .. }
        )
    }

    /// What the summary and the reports call a contact this action changed.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Tags => "tagged",
            Action::Workflow { remove: false, .. } => "added to the workflow",
            Action::Workflow { remove: true, .. } => "removed from the workflow",
            Action::Campaign { remove: false, .. } => "added to the campaign",
            Action::Campaign { remove: true, .. } => "removed from the campaign",
            Action::Followers { remove: false, .. } => "given the followers",
            Action::Followers { remove: true, .. } => "rid of the followers",
            Action::Business { id: Some(_) } => "moved to the business",
            Action::Business { id: None } => "taken out of their business",
            Action::Delete => "deleted",
        }
    }
}

/// Where the contacts come from.
#[derive(Debug, Clone)]
pub enum Contacts {
    /// An input file (or folder of parts), one contact a row.
    File {
        path: PathBuf,
        format: Option<InputFormat>,
    },
    /// Every contact matching these search filters, paged through `POST /contacts/search`.
    Where(Vec<Value>),
}

/// How emails and phones become contact ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// Whichever costs fewer requests, estimated from the file and the location's size.
    Auto,
    /// `GET /contacts/search/duplicate` once per distinct email or phone.
    PerKey,
    /// The location's contacts paged once through search (500 a request), matched locally.
    Scan,
}

#[derive(Debug, Clone)]
pub struct TagPlan {
    pub location: String,
    pub contacts: Contacts,
    pub action: Action,
    /// Tags added on every row.
    pub add: Vec<String>,
    /// Tags removed on every row.
    pub remove: Vec<String>,
    /// Per-row tags to add / remove (`;`-separated), if the file has the column.
    pub add_column: String,
    pub remove_column: String,
    pub keys: KeyColumns,
    pub lookup: Lookup,
    pub dry_run: bool,
    /// `--restart`: forget earlier runs' outcomes.
    pub restart: bool,
    /// Requests in flight (look-ups, per-contact actions).
    pub concurrency: usize,
    pub state: PathBuf,
    pub report_dir: PathBuf,
}

#[derive(Serialize)]
struct Identity<'a> {
    location: &'a str,
    input: String,
    action: &'a Action,
    add: &'a [String],
    remove: &'a [String],
    add_column: &'a str,
    remove_column: &'a str,
    keys: &'a KeyColumns,
    server: &'a str,
}

impl TagPlan {
    pub fn job_key(&self, server: &str) -> String {
        let input = match &self.contacts {
            Contacts::File { path, .. } => {
                let p = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                p.display().to_string()
            }
            Contacts::Where(filters) => format!("where {}", Value::Array(filters.clone())),
        };
        crate::job::job_key(&Identity {
            location: &self.location,
            input,
            action: &self.action,
            add: &self.add,
            remove: &self.remove,
            add_column: &self.add_column,
            remove_column: &self.remove_column,
            keys: &self.keys,
            server,
        })
    }

    /// Does the run add or remove tags (rather than another action)?
    pub fn uses_tags(&self) -> bool {
        self.action == Action::Tags
    }
}
