//! What a load does, resolved before any request: the target location, the input files, the
//! mapping (a `direction = "load"` file), the write mode and the safety switches.

use std::path::PathBuf;

use serde::Serialize;

use crate::input::InputFormat;
use crate::mapping::MappingFile;

/// How contacts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// `POST /contacts/upsert`, matched by the location's duplicate rule (email, then phone).
    Upsert,
    /// `POST /contacts/`: every row a new contact.
    Create,
    /// `PUT /contacts/{id}`, by the `id` column or an email/phone looked up first.
    Update,
    /// `DELETE /contacts/{id}` (only with `--yes`).
    Delete,
}

/// Where tags go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TagsMode {
    /// Added through the tags endpoints after the contact is written: nothing is removed.
    Add,
    /// In the upsert/update body, which replaces all the contact's tags.
    Replace,
}

/// What an empty input cell does to the field it maps to in an existing contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum EmptyCells {
    /// Leave the field as the target holds it (GHL's own CSV import does the same).
    #[default]
    Keep,
    /// Clear it (send it empty).
    Clear,
}

impl EmptyCells {
    fn is_keep(&self) -> bool {
        *self == EmptyCells::Keep
    }
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub location: String,
    pub contacts: Option<PathBuf>,
    pub tasks: Option<PathBuf>,
    pub notes: Option<PathBuf>,
    /// `None`: from each file's extension.
    pub input_format: Option<InputFormat>,
    pub mapping: MappingFile,
    pub mode: Mode,
    pub tags: TagsMode,
    pub dry_run: bool,
    /// `--restart`: forget earlier runs' outcomes.
    pub restart: bool,
    /// Read each written contact back and report fields that did not stick.
    pub verify: bool,
    pub create_missing_fields: bool,
    /// The custom field (by name) that holds the source id, searched before a create.
    pub external_id: Option<String>,
    /// Writes in flight (the rate limit is the real bound).
    pub concurrency: usize,
    pub state: PathBuf,
    pub report_dir: PathBuf,
    /// `--custom-fields`: the source's custom-field definitions, for `custom_fields = "all"`
    /// (default: `_custom_fields/` of the export the contacts come from).
    pub custom_fields: Option<PathBuf>,
    pub empty: EmptyCells,
    /// Go on although most contacts would have no email, phone or external id.
    pub allow_no_identity: bool,
}

/// What shapes a load's effect: a rerun with the same identity resumes it.
#[derive(Serialize)]
struct Identity<'a> {
    location: &'a str,
    inputs: Vec<String>,
    mapping: &'a str,
    mode: Mode,
    tags: TagsMode,
    external_id: Option<&'a str>,
    /// Left out when `Keep`, so that loads begun before the flag existed keep their key.
    #[serde(skip_serializing_if = "EmptyCells::is_keep")]
    empty: EmptyCells,
    server: &'a str,
}

impl LoadPlan {
    pub fn job_key(&self, server: &str) -> String {
        let abs = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        crate::job::job_key(&Identity {
            location: &self.location,
            inputs: vec![abs(&self.contacts), abs(&self.tasks), abs(&self.notes)],
            mapping: &self.mapping.text,
            mode: self.mode,
            tags: self.tags,
            external_id: self.external_id.as_deref(),
            empty: self.empty,
            server,
        })
    }
}
