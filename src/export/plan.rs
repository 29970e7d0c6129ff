//! What an export does, resolved from flags and the mapping file before any request is made:
//! the [`ExportPlan`] the job runs, and the part of it that makes the job's identity.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::locations::LocationSelection;
use crate::api::Source;
use crate::mapping::MappingFile;
use crate::sink::{OutTarget, SinkOptions};
use crate::table::TableKind;

/// Pages fetched and enriched ahead of the writer, per location.
pub const PREFETCH_PAGES: usize = 2;
/// Contact ids per task-search request.
pub const TASK_SEARCH_IDS: usize = 100;

#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// Empty: the embedded sandbox's location(s). Resolved with `select` when the run starts.
    pub locations: Vec<String>,
    /// `--locations-file`, `--all-locations`, `--shard`.
    pub select: LocationSelection,
    /// Locations exported at once.
    pub location_concurrency: usize,
    pub source: Source,
    /// Contacts per listing request, within the endpoint's maximum.
    pub page_size: usize,
    /// Child tables to fetch with each contact (tasks, notes, appointments), in this order.
    pub children: Vec<TableKind>,
    /// `None`: every field, one column per custom field.
    pub mapping: Option<MappingFile>,
    pub sink: SinkOptions,
    /// A local folder or an object store prefix.
    pub out: OutTarget,
    /// Requests in flight per location for a page's children.
    pub concurrency: usize,
    pub state: PathBuf,
    pub restart: bool,
    /// Write into an output folder that holds files this tool did not write.
    pub force: bool,
    /// Contacts per part file (a commit point).
    pub part_rows: u64,
    /// Also commit after this long, so slow runs checkpoint often.
    pub commit_every: Duration,
    /// Try the location task search before one request per contact.
    pub bulk_tasks: bool,
    /// `--incremental`: runs that write what changed since the last one.
    pub incremental: Option<IncrementalPlan>,
}

/// How an incremental export runs, from its flags.
#[derive(Debug, Clone)]
pub struct IncrementalPlan {
    /// Contacts updated this long before the watermark are candidates again.
    pub overlap: Duration,
    /// Export a location in full when its last full run is this old.
    pub full_every: Option<Duration>,
}

/// What shapes an export's output, and so names it in the state database: a rerun with the
/// same identity resumes; pacing, concurrency and part sizes may change between runs.
#[derive(Serialize)]
struct Identity<'a> {
    out: String,
    locations: &'a [String],
    source: &'a Source,
    children: Vec<&'static str>,
    format: &'static str,
    // CSV formatting shapes the bytes too: a resume must not mix two spellings.
    csv_safe: bool,
    list_separator: &'a str,
    raw_ndjson: bool,
    mapping: Option<&'a str>,
    server: &'a str,
    // Absent for other exports, so their keys stay what they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    incremental: bool,
}

impl ExportPlan {
    /// The job key of this export against `server` (see `ConnectionPlan::server_identity`),
    /// for these locations.
    pub fn job_key(&self, locations: &[String], server: &str) -> String {
        crate::job::job_key(&Identity {
            out: self.out.identity(),
            locations,
            source: &self.source,
            children: self.children.iter().map(|t| t.name()).collect(),
            format: self.sink.format.extension(),
            csv_safe: self.sink.csv_safe,
            list_separator: &self.sink.list_separator,
            raw_ndjson: self.sink.raw_ndjson,
            mapping: self.mapping.as_ref().map(|m| m.text.as_str()),
            server,
            incremental: self.incremental.is_some(),
        })
    }

    /// The key of an incremental export's dataset: its identity without the locations, so
    /// the same folder and state carry on when the agency's list of locations changes (each
    /// location keeps its own baseline).
    pub fn dataset_key(&self, server: &str) -> String {
        self.job_key(&[], server)
    }

    /// Every table this export writes: contacts, then the children.
    pub fn tables(&self) -> Vec<TableKind> {
        std::iter::once(TableKind::Contacts)
            .chain(self.children.iter().copied())
            .collect()
    }
}
