//! `ghl-etl export` flags, resolved into an [`ExportPlan`]: the source and its filters, the
//! child tables, the mapping file (read and checked before any request), sink options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConnectionArgs;
use crate::api::{filter, Source};
use crate::exit::{JobError, Result};
use crate::export::ExportPlan;
use crate::job::{ConnectionPlan, OutTarget};
use crate::mapping::{Mapping, MappingFile};
use crate::sink::{Format, SinkOptions};
use crate::table::TableKind;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// Location (sub-account) id; repeat or comma-separate for several (exported in parallel).
    #[arg(long = "location", env = "GHL_LOCATION", value_delimiter = ',')]
    pub locations: Vec<String>,

    /// Where contacts come from: `search` (POST /contacts/search, pages of 500: the fewest
    /// requests), `list` (GET /contacts/, pages of 100, deprecated by GHL) or `business:<id>`
    /// (the contacts of one business).
    #[arg(long, default_value = "search")]
    pub source: String,

    /// Only contacts updated at or after this instant (RFC 3339 or YYYY-MM-DD); uses search.
    #[arg(long)]
    pub updated_since: Option<String>,

    /// Only contacts matching this search condition (repeatable, all must hold): `tags=lead`,
    /// `dateAdded>=2024-01-01`, `firstName~jo`, `email exists`; see "Search conditions".
    #[arg(long = "where", value_name = "COND")]
    pub conditions: Vec<String>,

    /// Related records to export with each contact: tasks, notes, appointments, or none.
    #[arg(
        long = "with",
        value_delimiter = ',',
        default_value = "tasks,notes",
        value_parser = ["tasks", "notes", "appointments", "none"]
    )]
    pub with: Vec<String>,

    /// Mapping file (TOML); without it every field is exported, one column per custom field.
    #[arg(long)]
    pub mapping: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    pub format: Format,

    /// Output folder (one sub-folder per table: `contacts/`, `tasks/`, `notes/`), or an object
    /// store prefix: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX (credentials
    /// from the environment), or file:///PATH.
    #[arg(long)]
    pub out: String,

    /// Requests in flight per location for tasks/notes (the rate limit is the real bound).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,

    /// Contacts per listing request (default: the endpoint's maximum, 100 or 500).
    #[arg(long)]
    pub page_size: Option<usize>,

    /// State database (cursors and committed part files), for resume.
    #[arg(long, default_value = ".ghl-etl/state.sqlite")]
    pub state: PathBuf,

    /// Forget earlier progress of this export and start over: every part file in the output
    /// folder is deleted.
    #[arg(long)]
    pub restart: bool,

    /// Contacts per part file (a commit point: a killed run redoes at most one part).
    #[arg(long, default_value_t = 100_000)]
    pub part_rows: u64,

    /// Also commit a part after this many seconds, so slow (rate-limited) runs checkpoint often.
    #[arg(long, default_value_t = 300)]
    pub commit_seconds: u64,

    /// CSV: defuse spreadsheet formulas (cells starting with = + - @). Default: the mapping's
    /// `csv_safe`, else off.
    #[arg(long, overrides_with = "no_csv_safe")]
    pub csv_safe: bool,
    /// CSV: write cells exactly as they are.
    #[arg(long)]
    pub no_csv_safe: bool,

    /// CSV: separator for list cells such as tags (default: the mapping's, else `;`).
    #[arg(long)]
    pub list_separator: Option<String>,

    /// Fetch tasks with one request per contact even when the token can search tasks in bulk.
    #[arg(long)]
    pub tasks_per_contact: bool,
}

impl ExportArgs {
    /// Resolve the flags into the connection and the export plan; the mapping file is read and
    /// checked here, so a bad one stops the run before any request.
    pub fn resolve(&self) -> Result<(ConnectionPlan, ExportPlan)> {
        let conn = self.conn.resolve()?;
        let source = parse_source(
            &self.source,
            self.updated_since.as_deref(),
            &self.conditions,
        )?;
        let max = source.max_page_size();
        let mapping = self
            .mapping
            .as_deref()
            .map(|p| MappingFile::read(p).map_err(|e| JobError::usage(e.to_string())))
            .transpose()?;
        let from_mapping = mapping.as_ref().map(|m| &m.mapping);
        let csv_safe = if self.csv_safe {
            true
        } else if self.no_csv_safe {
            false
        } else {
            from_mapping
                .and_then(Mapping::csv_safe_default)
                .unwrap_or(false)
        };
        let list_separator = self
            .list_separator
            .clone()
            .or_else(|| from_mapping.and_then(Mapping::list_separator))
            .unwrap_or_else(|| ";".into());
        let sink = SinkOptions {
            format: self.format,
            csv_safe,
            list_separator,
            raw_ndjson: self.format == Format::Ndjson && mapping.is_none(),
            ..SinkOptions::default()
        };
        let mut children: Vec<TableKind> = self
            .with
            .iter()
            .filter_map(|w| TableKind::from_name(w))
            .collect();
        children.sort();
        children.dedup();
        let plan = ExportPlan {
            locations: self.locations.clone(),
            source,
            page_size: self.page_size.unwrap_or(max).clamp(1, max),
            children,
            mapping,
            sink,
            out: OutTarget::parse(&self.out).map_err(JobError::usage)?,
            concurrency: self.concurrency.max(1),
            state: self.state.clone(),
            restart: self.restart,
            part_rows: self.part_rows.max(1),
            commit_every: Duration::from_secs(self.commit_seconds.max(1)),
            bulk_tasks: !self.tasks_per_contact,
        };
        Ok((conn, plan))
    }
}

pub(crate) fn parse_source(
    s: &str,
    updated_since: Option<&str>,
    conditions: &[String],
) -> Result<Source> {
    let mut filters = Vec::new();
    if let Some(since) = updated_since {
        let ms = filter::parse_instant(since)
            .map_err(|e| JobError::usage(format!("--updated-since `{since}`: {e}")))?;
        filters.push(serde_json::json!({
            "field": "dateUpdated",
            "operator": "range",
            "value": {"gte": filter::iso_millis(ms)}
        }));
    }
    filters.extend(filter::parse_where(conditions).map_err(JobError::usage)?);
    match s {
        "list" if filters.is_empty() => Ok(Source::List),
        "list" | "search" => Ok(Source::Search { filters }),
        other => match other.strip_prefix("business:") {
            Some(id) if !id.is_empty() && filters.is_empty() => Ok(Source::Business {
                business_id: id.to_string(),
            }),
            Some(_) if !filters.is_empty() => Err(JobError::usage(
                "--updated-since and --where need --source search (or list); business listings cannot filter",
            )),
            _ => Err(JobError::usage(format!(
                "--source must be `list`, `search` or `business:<id>`, not `{other}`"
            ))),
        },
    }
}
