//! What every job (export, load, tag) shares, one concern a file:
//!
//! - `connect`: the resolved connection ([`ConnectionPlan`]) and what it opens: the client,
//!   and the embedded sandbox for `--sandbox`.
//! - `identity`: a job's key, a hash of its resolved plan, under which the state database
//!   keeps its progress for resume.
//! - `locations`: which locations a job covers: ids, a locations file, an agency's installed
//!   locations, a shard of them.
//! - `fanout`: one task per location (a bounded number at once), Ctrl-C, and which failures
//!   stop the others.
//! - `outcomes`: every location's outcome, printed and written as `_locations.json`.
//! - `progress`: counters and the progress bar; [`Ui`], how a command talks to people.
//! - `summary`: the cost lines of the end-of-run summary, peak memory.
//! - `output`: the output folder: owner marker, part numbering, sweep, manifest.
//! - `rows`: the row-job runner load, tag and bulk plug into: the state database's ledger of
//!   rows, inputs in chunks, settled rows skipped, bad rows failed, one transaction a chunk,
//!   signals, reports, and the one stop policy.
//! - `once`: the one exactly-once primitive for writes whose answer may be lost.
//! - `store`: where the output goes: `--out` parsed, a local folder or an object store
//!   (`s3://`, `gs://`, `az://`) behind put/get/list/delete.

mod connect;
mod fanout;
mod identity;
mod locations;
pub mod once;
mod outcomes;
mod output;
mod progress;
pub mod rows;
mod store;
mod summary;

pub use connect::{Connection, ConnectionPlan, Endpoint, RateChoice};
pub use fanout::{for_each_location, FanOut, Outcome};
pub use identity::job_key;
pub use locations::{read_locations_file, shard_of, LocationSelection, Shard};
pub use outcomes::{location_reports, print_location_reports, LocationReport, LOCATIONS_FILE};
pub use output::{part_number, Layout, OutputDir, PartFolder, MANIFEST};
pub use progress::{Progress, Ui};
pub use store::{staging_dir, OutTarget, Store, UPLOAD_CHUNK, WRITABLE};
pub use summary::{peak_rss_mb, planned_requests_line, row_job_tail, Cost};
