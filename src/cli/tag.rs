//! `ghl-etl tag` flags, resolved into a [`TagPlan`].

use std::path::{Path, PathBuf};

use clap::Args;

use super::load::FormatArg;
use super::ConnectionArgs;
use crate::exit::{JobError, Result};
use crate::input::InputFormat;
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

    /// Input format (default: from the file's extension).
    #[arg(long, value_enum)]
    pub input_format: Option<FormatArg>,

    /// CSV field separator.
    #[arg(long, default_value = ",")]
    pub delimiter: char,

    /// Look-ups in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// State database (each row's outcome), for resume.
    #[arg(long, default_value = ".ghl-etl/state.sqlite")]
    pub state: PathBuf,

    /// Folder of `succeeded.csv` and `failed.csv` (default: `tag-report/` beside the state).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl TagArgs {
    pub fn resolve(&self) -> Result<(ConnectionPlan, TagPlan)> {
        let conn = self.conn.resolve()?;
        let delimiter = u8::try_from(self.delimiter)
            .map_err(|_| JobError::usage("--delimiter must be one ASCII character"))?;
        let location = self.location.clone().unwrap_or_default();
        if location.is_empty() && !self.conn.sandbox {
            return Err(JobError::usage(
                "no location: pass --location (or set GHL_LOCATION)",
            ));
        }
        let report_dir = self.report.clone().unwrap_or_else(|| {
            self.state
                .parent()
                .unwrap_or(Path::new("."))
                .join("tag-report")
        });
        let plan = TagPlan {
            location,
            input: self.input.clone(),
            input_format: self.input_format.map(|f| f.format(delimiter)),
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
            state: self.state.clone(),
            report_dir,
        };
        Ok((conn, plan))
    }
}

impl FormatArg {
    pub(crate) fn format(self, delimiter: u8) -> InputFormat {
        match self {
            FormatArg::Csv => InputFormat::Csv { delimiter },
            FormatArg::Ndjson => InputFormat::Ndjson,
            FormatArg::Parquet => InputFormat::Parquet,
        }
    }
}
