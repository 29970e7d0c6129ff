//! `ghl-etl export` flags, resolved into an [`ExportPlan`]: the source and its filters, the
//! child tables, the mapping file (read and checked before any request), sink options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConnectionArgs;
use crate::api::{AuthConfig, Source};
use crate::exit::{JobError, Result};
use crate::export::ExportPlan;
use crate::job::{ConnectionPlan, Endpoint, LocationSelection, Shard};
use crate::mapping::{Mapping, MappingFile};
use crate::sink::{Format, SinkOptions};
use crate::table::TableKind;

/// Locations exported at once by default: enough to reach GHL's per-location budgets on many
/// locations in parallel, few enough that memory (about two pages and a row group in flight per
/// location) stays modest on a small machine.
pub const DEFAULT_LOCATION_CONCURRENCY: usize = 32;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// Location (sub-account) id; repeat or comma-separate for several (exported in parallel).
    #[arg(long = "location", env = "GHL_LOCATION", value_delimiter = ',')]
    pub locations: Vec<String>,

    /// File of location ids: one a line, or CSV with the id and an optional name (a header
    /// naming `id`/`location_id` and `name` may come first); `#` starts a comment.
    #[arg(long)]
    pub locations_file: Option<PathBuf>,

    /// Every location the app is installed on (GET /oauth/installedLocations), with an agency
    /// (company) token; each location is read with its own location token.
    #[arg(long)]
    pub all_locations: bool,

    /// The marketplace app's id, for --all-locations (GHL's token answer does not carry it).
    #[arg(long, env = "GHL_APP_ID")]
    pub app_id: Option<String>,

    /// Take shard I of N (`0/3`): the locations whose id hashes to I, so N machines split one
    /// list without coordination. Output goes to `OUT/shard=I-of-N/`.
    #[arg(long, env = "GHL_SHARD")]
    pub shard: Option<String>,

    /// Locations exported at once (each has its own rate budget, so the total rate grows with
    /// it; each costs a writer thread and about two pages of memory).
    #[arg(long, default_value_t = DEFAULT_LOCATION_CONCURRENCY)]
    pub location_concurrency: usize,

    /// Where contacts come from: `search` (POST /contacts/search, pages of 500: the fewest
    /// requests), `list` (GET /contacts/, pages of 100, deprecated by GHL) or `business:<id>`
    /// (the contacts of one business).
    #[arg(long, default_value = "search")]
    pub source: String,

    /// Only contacts updated at or after this instant (RFC 3339 or YYYY-MM-DD); uses search.
    #[arg(long)]
    pub updated_since: Option<String>,

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

    /// Output folder: one sub-folder per table (`contacts/`, `tasks/`, `notes/`).
    #[arg(long)]
    pub out: PathBuf,

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
        let mut conn = self.conn.resolve()?;
        let select = self.location_selection(&mut conn)?;
        let out = match select.shard {
            Some(s) => self.out.join(s.folder()),
            None => self.out.clone(),
        };
        let source = parse_source(&self.source, self.updated_since.as_deref())?;
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
            locations: self
                .locations
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            select,
            location_concurrency: self.location_concurrency.max(1),
            source,
            page_size: self.page_size.unwrap_or(max).clamp(1, max),
            children,
            mapping,
            sink,
            out,
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

impl ExportArgs {
    /// `--locations-file`, `--all-locations` (which makes the credential an agency token) and
    /// `--shard`.
    fn location_selection(&self, conn: &mut ConnectionPlan) -> Result<LocationSelection> {
        let shard = self
            .shard
            .as_deref()
            .map(|s| s.parse::<Shard>())
            .transpose()
            .map_err(|e| JobError::usage(format!("--shard: {e}")))?;
        if shard.is_some() && matches!(conn.auth, Some(AuthConfig::OAuth(_))) {
            return Err(JobError::usage(
                "--shard cannot use --refresh-token-file: GHL refresh tokens are single-use, so machines refreshing the same one lock each other out; give each shard the agency access token in GHL_TOKEN (or --token-file) instead",
            ));
        }
        let all_for_app = if self.all_locations {
            conn.agency = true;
            let app = match (&self.app_id, &conn.endpoint) {
                (Some(a), _) if !a.trim().is_empty() => a.trim().to_string(),
                (_, Endpoint::EmbeddedSandbox { .. }) => crate::sandbox::APP_ID.to_string(),
                _ => return Err(JobError::usage(
                    "--all-locations needs the app id: pass --app-id or set GHL_APP_ID (the marketplace app's id; GHL's token answer does not carry it)",
                )),
            };
            Some(app)
        } else {
            None
        };
        Ok(LocationSelection {
            file: self.locations_file.clone(),
            all_for_app,
            shard,
            names: Default::default(),
        })
    }
}

pub(crate) fn parse_source(s: &str, updated_since: Option<&str>) -> Result<Source> {
    let mut filters = Vec::new();
    if let Some(since) = updated_since {
        let ms = parse_instant(since)
            .map_err(|e| JobError::usage(format!("--updated-since `{since}`: {e}")))?;
        let iso = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        filters.push(
            serde_json::json!({"field": "dateUpdated", "operator": "range", "value": {"gte": iso}}),
        );
    }
    match s {
        "list" if filters.is_empty() => Ok(Source::List),
        "list" | "search" => Ok(Source::Search { filters }),
        other => match other.strip_prefix("business:") {
            Some(id) if !id.is_empty() && filters.is_empty() => Ok(Source::Business {
                business_id: id.to_string(),
            }),
            Some(_) if !filters.is_empty() => Err(JobError::usage(
                "--updated-since needs --source search (or list); business listings cannot filter",
            )),
            _ => Err(JobError::usage(format!(
                "--source must be `list`, `search` or `business:<id>`, not `{other}`"
            ))),
        },
    }
}

fn parse_instant(s: &str) -> std::result::Result<i64, &'static str> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| "expected RFC 3339 (2024-05-01T00:00:00Z) or YYYY-MM-DD")?;
    Ok(d.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis())
}
