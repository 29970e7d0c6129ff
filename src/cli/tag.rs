//! `ghl-etl tag` and `ghl-etl bulk` flags, resolved into a [`TagPlan`]. Both name their
//! contacts the same way ([`ContactListArgs`]: a file of ids, emails or phones, or `--where`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::input::InputArgs;
use super::ConnectionArgs;
use crate::api::filter;
use crate::exit::{JobError, Result};
use crate::job::ConnectionPlan;
use crate::tag::{Action, Contacts, KeyColumns, Lookup, TagPlan};

/// How the contacts of a tag or bulk run are named.
#[derive(Args, Debug, Clone)]
pub struct ContactListArgs {
    /// The location (sub-account) id.
    #[arg(long, env = "GHL_LOCATION")]
    pub location: Option<String>,

    /// The list: a CSV/NDJSON/Parquet file (or folder of parts) naming one contact a row.
    #[arg(
        long,
        required_unless_present = "conditions",
        conflicts_with = "conditions"
    )]
    pub input: Option<PathBuf>,

    /// Instead of a file: every contact matching this search condition (repeatable, all must
    /// hold), e.g. `--where tags=lead --where dateAdded>=2024-01-01`.
    #[arg(long = "where", value_name = "COND")]
    pub conditions: Vec<String>,

    /// Column holding the contact id (tried first).
    #[arg(long, default_value = "contact_id")]
    pub id_column: String,

    /// Column holding the email (when the id is blank).
    #[arg(long, default_value = "email")]
    pub email_column: String,

    /// Column holding the phone (when id and email are blank).
    #[arg(long, default_value = "phone")]
    pub phone_column: String,

    /// How emails and phones become contacts: `auto` picks the cheaper of one duplicate search
    /// per key and one scan of the location (500 contacts a request).
    #[arg(long, value_enum, default_value_t = LookupArg::Auto)]
    pub lookup: LookupArg,

    /// Resolve every row and print what would change and what it costs; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Forget what earlier runs of this job recorded and work every row again. (A `--where`
    /// selection that finished starts afresh by itself: it is whatever matches now.)
    #[arg(long)]
    pub restart: bool,

    /// Requests in flight (look-ups, per-contact actions).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    #[command(flatten)]
    pub files: InputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LookupArg {
    Auto,
    PerKey,
    Scan,
}

#[derive(Args, Debug, Clone)]
pub struct TagArgs {
    #[command(flatten)]
    pub list: ContactListArgs,

    /// A tag to add on every row (repeatable).
    #[arg(long = "add", value_name = "TAG")]
    pub add: Vec<String>,

    /// A tag to remove on every row (repeatable).
    #[arg(long = "remove", value_name = "TAG")]
    pub remove: Vec<String>,

    /// Column of `;`-separated tags to add, per row.
    #[arg(long, default_value = "add_tags")]
    pub add_column: String,

    /// Column of `;`-separated tags to remove, per row.
    #[arg(long, default_value = "remove_tags")]
    pub remove_column: String,

    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// What `ghl-etl bulk` does to each contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BulkAction {
    /// Enrol in `--workflow` (sent at most once per contact).
    WorkflowAdd,
    /// Take out of `--workflow`.
    WorkflowRemove,
    /// Enrol in `--campaign` (sent at most once per contact).
    CampaignAdd,
    /// Take out of `--campaign`.
    CampaignRemove,
    /// Add the `--user` ids as followers.
    FollowersAdd,
    /// Remove the `--user` ids from the followers.
    FollowersRemove,
    /// Set the business to `--business` (100 contacts a request).
    BusinessSet,
    /// Clear the business (100 contacts a request).
    BusinessClear,
    /// Delete the contacts; needs `--yes`.
    Delete,
}

#[derive(Args, Debug, Clone)]
pub struct BulkArgs {
    /// The action.
    #[arg(value_enum)]
    pub action: BulkAction,

    #[command(flatten)]
    pub list: ContactListArgs,

    /// The workflow id (workflow-add, workflow-remove).
    #[arg(long)]
    pub workflow: Option<String>,

    /// The campaign id (campaign-add, campaign-remove).
    #[arg(long)]
    pub campaign: Option<String>,

    /// A follower's user id (followers-add, followers-remove; repeatable).
    #[arg(long = "user", value_name = "USER_ID")]
    pub users: Vec<String>,

    /// The business id (business-set).
    #[arg(long)]
    pub business: Option<String>,

    /// Confirm `delete`: the contacts are gone for good.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub conn: ConnectionArgs,
}

impl ContactListArgs {
    /// The plan's parts these flags fix; `action` and the tags are the caller's.
    fn plan(&self, sandbox: bool, action: Action, report: &str) -> Result<TagPlan> {
        let location = self.location.clone().unwrap_or_default();
        if location.is_empty() && !sandbox {
            return Err(JobError::usage(
                "no location: pass --location (or set GHL_LOCATION)",
            ));
        }
        let contacts = match &self.input {
            Some(path) => Contacts::File {
                path: path.clone(),
                format: self.files.format()?,
            },
            None => {
                Contacts::Where(filter::parse_where(&self.conditions).map_err(JobError::usage)?)
            }
        };
        Ok(TagPlan {
            location,
            contacts,
            action,
            add: Vec::new(),
            remove: Vec::new(),
            add_column: String::new(),
            remove_column: String::new(),
            keys: KeyColumns {
                id: self.id_column.clone(),
                email: self.email_column.clone(),
                phone: self.phone_column.clone(),
            },
            lookup: match self.lookup {
                LookupArg::Auto => Lookup::Auto,
                LookupArg::PerKey => Lookup::PerKey,
                LookupArg::Scan => Lookup::Scan,
            },
            dry_run: self.dry_run,
            restart: self.restart,
            concurrency: self.concurrency.max(1),
            state: self.files.state.clone(),
            report_dir: match &self.input {
                Some(path) => self
                    .files
                    .report_dir_apart_from(report, &[path.as_path()])?,
                None => self.files.report_dir(report, "search"),
            },
        })
    }
}

impl TagArgs {
    pub fn resolve(&self) -> Result<(ConnectionPlan, TagPlan)> {
        let conn = self.conn.resolve()?;
        let mut plan = self
            .list
            .plan(self.conn.sandbox, Action::Tags, "tag-report")?;
        if matches!(plan.contacts, Contacts::Where(_))
            && self.add.is_empty()
            && self.remove.is_empty()
        {
            return Err(JobError::usage(
                "--where lists contacts, not tags: say what to do with --add TAG and/or --remove TAG",
            ));
        }
        plan.add = self.add.clone();
        plan.remove = self.remove.clone();
        plan.add_column = self.add_column.clone();
        plan.remove_column = self.remove_column.clone();
        Ok((conn, plan))
    }
}

impl BulkArgs {
    pub fn resolve(&self) -> Result<(ConnectionPlan, TagPlan)> {
        let conn = self.conn.resolve()?;
        let action = self.action()?;
        let plan = self.list.plan(self.conn.sandbox, action, "bulk-report")?;
        Ok((conn, plan))
    }

    fn action(&self) -> Result<Action> {
        let need = |v: &Option<String>, flag: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| JobError::usage(format!("this action needs --{flag} ID")))
        };
        let users = || {
            if self.users.is_empty() {
                return Err(JobError::usage(
                    "this action needs --user USER_ID (repeatable)",
                ));
            }
            Ok(self.users.clone())
        };
        use BulkAction as B;
        Ok(match self.action {
            B::WorkflowAdd | B::WorkflowRemove => Action::Workflow {
                id: need(&self.workflow, "workflow")?,
                remove: self.action == B::WorkflowRemove,
            },
            B::CampaignAdd | B::CampaignRemove => Action::Campaign {
                id: need(&self.campaign, "campaign")?,
                remove: self.action == B::CampaignRemove,
            },
            B::FollowersAdd | B::FollowersRemove => Action::Followers {
                users: users()?,
                remove: self.action == B::FollowersRemove,
            },
            B::BusinessSet => Action::Business {
                id: Some(need(&self.business, "business")?),
            },
            B::BusinessClear => Action::Business { id: None },
            B::Delete if !self.yes && !self.list.dry_run => {
                return Err(JobError::usage(
                    "delete removes the contacts for good: add --yes to confirm (or try --dry-run first)",
                ))
            }
            B::Delete => Action::Delete,
        })
    }
}
