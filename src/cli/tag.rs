//! `ghl-etl tag` flags, resolved into a [`TagPlan`].

use std::path::PathBuf;

use clap::Args;

use super::input::InputArgs;
use super::ConnectionArgs;
use crate::exit::{JobError, Result};
use crate::job::ConnectionPlan;
use crate::tag::{KeyColumns, TagPlan};

#[derive(Args, Debug, Clone)]
pub struct TagArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// The location (sub-account) id.
    #[arg(long, env = "GHL_LOCATION")]
    pub location: Option<String>,

    /// The list: a CSV/NDJSON/Parquet file (or folder of parts) naming one contact a row.
    #[arg(long)]
    pub input: PathBuf,

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

    /// Column holding the contact id (tried first).
    #[arg(long, default_value = "contact_id")]
    pub id_column: String,

    /// Column holding the email (when the id is blank).
    #[arg(long, default_value = "email")]
    pub email_column: String,

    /// Column holding the phone (when id and email are blank).
    #[arg(long, default_value = "phone")]
    pub phone_column: String,

    /// Resolve every row and print what would change and what it costs; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Look-ups in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    #[command(flatten)]
    pub files: InputArgs,
}

impl TagArgs {
    pub fn resolve(&self) -> Result<(ConnectionPlan, TagPlan)> {
        let conn = self.conn.resolve()?;
        let location = self.location.clone().unwrap_or_default();
        if location.is_empty() && !self.conn.sandbox {
            return Err(JobError::usage(
                "no location: pass --location (or set GHL_LOCATION)",
            ));
        }
        let report_dir = self.files.report_dir("tag-report");
        let plan = TagPlan {
            location,
            input: self.input.clone(),
            input_format: self.files.format()?,
            add: self.add.clone(),
            remove: self.remove.clone(),
            add_column: self.add_column.clone(),
            remove_column: self.remove_column.clone(),
            keys: KeyColumns {
                id: self.id_column.clone(),
                email: self.email_column.clone(),
                phone: self.phone_column.clone(),
            },
            dry_run: self.dry_run,
            concurrency: self.concurrency.max(1),
            state: self.files.state.clone(),
            report_dir,
        };
        Ok((conn, plan))
    }
}
