//! What every job (export, load, tag) shares, and only that; what the export job alone uses
//! (which locations, the fan-out over them, their outcomes, the output folder) is `export`'s,
//! and where output goes (`--out`, object stores) is `sink`'s. One concern a file:
//!
//! - `connect`: the resolved connection ([`ConnectionPlan`]) and what it opens: the client,
//!   and the embedded sandbox for `--sandbox`.
//! - `identity`: a job's key, a hash of its resolved plan, under which the state database
//!   keeps its progress for resume.
//! - `progress`: counters and the progress bar; [`Ui`], how a command talks to people.
//! - `summary`: the cost lines of the end-of-run summary, peak memory.
//! - `rows`: the row-job runner load, tag and bulk plug into: the state database's ledger of
//!   rows, inputs in chunks, settled rows skipped, bad rows failed, one transaction a chunk,
//!   signals, reports, and the one stop policy.
//! - `once`: the one exactly-once primitive for writes whose answer may be lost.
//! - `signal`: Ctrl-C, SIGTERM and SIGHUP, which stop every job alike (exit 128 + signal).

mod connect;
mod identity;
pub mod once;
mod progress;
pub mod rows;
pub mod signal;
mod summary;

pub use connect::{Connection, ConnectionPlan, Endpoint, RateChoice};
pub use identity::job_key;
pub use progress::{Progress, Ui};
pub use summary::{peak_rss_mb, planned_requests_line, row_job_tail, Cost};
