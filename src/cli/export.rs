//! `ghl-etl export` flags, resolved into an [`ExportPlan`]: the source and its filters, the
//! child tables, the mapping file (read and checked before any request), sink options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConnectionArgs;
use crate::api::{filter, AuthConfig, Source};
use crate::exit::{JobError, Result};
use crate::export::{ExportPlan, IncrementalPlan, LocationSelection, Shard};
use crate::job::{ConnectionPlan, Endpoint};
use crate::mapping::{Mapping, MappingFile};
use crate::sink::{Format, OutTarget, SinkOptions};
use crate::table::TableKind;

/// Locations exported at once by default: enough to reach GHL's per-location budgets on many
/// locations in parallel, few enough that memory (about two pages and a row group in flight per
/// location) stays modest on a small machine.
pub const DEFAULT_LOCATION_CONCURRENCY: usize = 32;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
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

    /// Write into an --out folder that already holds files this tool did not write (they are
    /// left alone; part files go beside them).
    #[arg(long)]
    pub force: bool,

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

    /// Write only what changed since the last run of this export (per-location watermark in
    /// the state database), plus a `deleted` table, into Hive-style partitions
    /// `table=<t>/location_id=<L>/run=<R>/`. The first run of a location is a full snapshot.
    #[arg(long)]
    pub incremental: bool,

    /// With --incremental: contacts updated this long before the last run started are looked
    /// at again (search indexing lags). A number with s, m or h.
    #[arg(long, default_value = "10m", requires = "incremental")]
    pub overlap: String,

    /// With --incremental: export a location in full again when its last full run is N days
    /// old, to bound what deltas can miss (notes added to otherwise unchanged contacts).
    #[arg(long, value_name = "DAYS", requires = "incremental")]
    pub full_every: Option<f64>,

    #[command(flatten)]
    pub conn: ConnectionArgs,
}

impl ExportArgs {
    /// Resolve the flags into the connection and the export plan; the mapping file is read and
    /// checked here, so a bad one stops the run before any request.
    pub fn resolve(&self) -> Result<(ConnectionPlan, ExportPlan)> {
        let mut conn = self.conn.resolve()?;
        let select = self.location_selection(&mut conn)?;
        let out = OutTarget::parse(&self.out).map_err(JobError::usage)?;
        let out = match select.shard {
            Some(s) => out.join(&s.folder()),
            None => out,
        };
        let source = parse_source(
            &self.source,
            self.updated_since.as_deref(),
            &self.conditions,
        )?;
        let incremental = self.incremental_plan(&source)?;
        let max = source.max_page_size();
        let mapping = self
            .mapping
            .as_deref()
            .map(|p| MappingFile::read(p).map_err(JobError::from))
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
            force: self.force,
            part_rows: self.part_rows.max(1),
            commit_every: Duration::from_secs(self.commit_seconds.max(1)),
            bulk_tasks: !self.tasks_per_contact,
            incremental,
        };
        Ok((conn, plan))
    }

    /// `--incremental` and its flags; it lists every contact through search each run.
    fn incremental_plan(&self, source: &Source) -> Result<Option<IncrementalPlan>> {
        if !self.incremental {
            return Ok(None);
        }
        if self.updated_since.is_some() {
            return Err(JobError::usage(
                "--incremental keeps its own watermark per location; drop --updated-since",
            ));
        }
        if !matches!(source, Source::Search { .. }) {
            return Err(JobError::usage(
                "--incremental lists contacts through search; drop --source or pass --source search",
            ));
        }
        let overlap = parse_duration(&self.overlap)
            .map_err(|e| JobError::usage(format!("--overlap `{}`: {e}", self.overlap)))?;
        let full_every = match self.full_every {
            Some(d) if !(d > 0.0 && d.is_finite()) => {
                return Err(JobError::usage(format!(
                    "--full-every must be a positive number of days, not {d}"
                )))
            }
            Some(d) => Some(Duration::from_secs_f64(d * 86_400.0)),
            None => None,
        };
        Ok(Some(IncrementalPlan {
            overlap,
            full_every,
        }))
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

/// `90s`, `10m`, `2h` (a bare number is seconds).
fn parse_duration(s: &str) -> std::result::Result<Duration, &'static str> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| "expected a number with s, m or h, such as 10m")?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        _ => return Err("expected a number with s, m or h, such as 10m"),
    };
    Ok(Duration::from_secs(secs))
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        for bad in ["", "m", "10 m", "1d", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
