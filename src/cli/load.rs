//! `ghl-etl load` flags, resolved into a [`LoadPlan`]: the input files (an export's root folder
//! stands for its `contacts/`, `tasks/` and `notes/`), a load mapping checked before any request,
//! the write mode and its safety switches.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::input::InputArgs;
use super::ConnectionArgs;
use crate::exit::{JobError, Result};
use crate::input::export_tables;
use crate::job::ConnectionPlan;
use crate::load::{EmptyCells, LoadPlan, Mode, TagsMode};
use crate::mapping::{Direction, MappingFile};
use crate::table::TableKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Upsert,
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmptyArg {
    Keep,
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagsArg {
    Add,
    Replace,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The target location (sub-account) id.
    #[arg(long, env = "GHL_LOCATION")]
    pub location: Option<String>,

    /// Contacts to load: a file, a folder of part files, or the root folder of a `ghl-etl
    /// export` (its `tasks/` and `notes/` are loaded too, unless --tasks / --notes say otherwise).
    #[arg(long)]
    pub contacts: Option<PathBuf>,

    /// Tasks to load (a file or a folder of part files); joined to contacts on `contact_id`.
    #[arg(long)]
    pub tasks: Option<PathBuf>,

    /// Notes to load (a file or a folder of part files); joined to contacts on `contact_id`.
    #[arg(long)]
    pub notes: Option<PathBuf>,

    /// The load mapping (TOML with `direction = "load"`): input columns → request fields.
    #[arg(long)]
    pub mapping: PathBuf,

    /// How contacts are written: `upsert` (matched by the location's duplicate rule), `create`,
    /// `update` (by the `id` column, or email/phone looked up), `delete` (needs --yes).
    #[arg(long, value_enum, default_value_t = ModeArg::Upsert)]
    pub mode: ModeArg,

    /// Tags: `add` them after the contact is written (keeps the contact's other tags), or
    /// `replace` the contact's tags by sending them in the body.
    #[arg(long, value_enum, default_value_t = TagsArg::Add)]
    pub tags: TagsArg,

    /// Read, map and check everything; print what would be written and what it costs; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Forget what earlier runs of this load recorded and work every row again (a task or
    /// note already on its contact is still found there, not created twice).
    #[arg(long)]
    pub restart: bool,

    /// Read each written contact back (one more request each) and report, in succeeded.csv,
    /// fields that did not stick.
    #[arg(long)]
    pub verify: bool,

    /// Confirm a `--mode delete`.
    #[arg(long)]
    pub yes: bool,

    /// Create custom fields the target lacks (type from the mapping column), once, before the
    /// first row.
    #[arg(long)]
    pub create_missing_fields: bool,

    /// Custom field (by name) that keeps each contact's source id; searched before a create,
    /// so contacts without email or phone are never made twice.
    #[arg(long, value_name = "FIELD NAME")]
    pub external_id: Option<String>,

    /// Writes in flight (the rate limit is the real bound).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// The source's custom-field definitions, for a mapping with `custom_fields = "all"`: an
    /// export's `_custom_fields/` folder, or a JSON file as GET /locations/{id}/customFields
    /// answers (default: `_custom_fields/` of the export the contacts come from).
    #[arg(long, value_name = "PATH")]
    pub custom_fields: Option<PathBuf>,

    /// What an empty input cell does to an existing contact's field: `keep` it (as GHL's own
    /// CSV import does), or `clear` it. Match keys (email, phone) and tags are never cleared.
    #[arg(long, value_enum, default_value_t = EmptyArg::Keep)]
    pub empty: EmptyArg,

    /// Go on although most contacts would carry no email, no phone and no external id (each
    /// such row creates a new contact, never matching one the location holds).
    #[arg(long)]
    pub allow_no_identity: bool,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub conn: ConnectionArgs,
}

impl LoadArgs {
    pub fn resolve(&self) -> Result<(ConnectionPlan, LoadPlan)> {
        let conn = self.conn.resolve()?;
        let mapping = MappingFile::read(&self.mapping)?;
        if mapping.mapping.direction() != Direction::Load {
            return Err(JobError::usage(format!(
                "{} is an export mapping; a load needs `direction = \"load\"` at its top (column names are then request fields)",
                self.mapping.display()
            )));
        }
        if self.mode == ModeArg::Delete && !self.yes && !self.dry_run {
            return Err(JobError::usage(
                "--mode delete deletes contacts in the target: add --yes, or see what would go with --dry-run",
            ));
        }
        let (contacts, tasks, notes) = self.inputs()?;
        if contacts.is_none() && tasks.is_none() && notes.is_none() {
            return Err(JobError::usage(
                "nothing to load: pass --contacts, --tasks or --notes",
            ));
        }
        let inputs: Vec<&std::path::Path> = [&contacts, &tasks, &notes]
            .into_iter()
            .flatten()
            .map(|p| p.as_path())
            .collect();
        let report_dir = self.input.report_dir_apart_from("load-report", &inputs)?;
        let plan = LoadPlan {
            location: self.location.clone().unwrap_or_default(),
            contacts,
            tasks,
            notes,
            input_format: self.input.format()?,
            mapping,
            mode: match self.mode {
                ModeArg::Upsert => Mode::Upsert,
                ModeArg::Create => Mode::Create,
                ModeArg::Update => Mode::Update,
                ModeArg::Delete => Mode::Delete,
            },
            tags: match self.tags {
                TagsArg::Add => TagsMode::Add,
                TagsArg::Replace => TagsMode::Replace,
            },
            dry_run: self.dry_run,
            restart: self.restart,
            verify: self.verify,
            create_missing_fields: self.create_missing_fields,
            external_id: self.external_id.clone(),
            concurrency: self.concurrency.max(1),
            state: self.input.state.clone(),
            report_dir,
            custom_fields: self.custom_fields.clone(),
            empty: match self.empty {
                EmptyArg::Keep => EmptyCells::Keep,
                EmptyArg::Clear => EmptyCells::Clear,
            },
            allow_no_identity: self.allow_no_identity,
        };
        if plan.location.is_empty() && !self.conn.sandbox {
            return Err(JobError::usage(
                "no location: pass --location (or set GHL_LOCATION)",
            ));
        }
        Ok((conn, plan))
    }

    /// The input paths: an export's root folder given as `--contacts` stands for its tables.
    #[allow(clippy::type_complexity)]
    fn inputs(&self) -> Result<(Option<PathBuf>, Option<PathBuf>, Option<PathBuf>)> {
        let (mut contacts, mut tasks, mut notes) = (
            self.contacts.clone(),
            self.tasks.clone(),
            self.notes.clone(),
        );
        if let Some(root) = self
            .contacts
            .as_ref()
            .filter(|p| p.join(crate::table::MANIFEST).is_file())
        {
            let tables = export_tables(root)?;
            let of = |t: TableKind| tables.iter().find(|(k, _)| *k == t).map(|(_, p)| p.clone());
            contacts = of(TableKind::Contacts);
            tasks = tasks.or_else(|| of(TableKind::Tasks));
            notes = notes.or_else(|| of(TableKind::Notes));
        }
        Ok((contacts, tasks, notes))
    }
}
