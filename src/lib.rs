//! ghl-etl: move CRM data out of and into GoHighLevel (LeadConnector) through its Contacts API v2.
//!
//! # Layout
//! Data flows one way: API pages (or input files) → mapping → sinks (or API writes), with the
//! state database beside. Jobs use the shared parts and never each other; nothing imports `cli`.
//!
//! Shared parts:
//! - [`exit`]: exit codes and [`exit::JobError`], the typed error every command returns.
//! - [`secret`]: the wrapper that keeps tokens out of every message.
//! - [`private`]: the umask that makes every file a run creates owner-only.
//! - [`api`]: the typed GHL client: auth (agency tokens and the location tokens minted from
//!   them included), rate limiting, retries, pagination streams.
//! - [`table`]: typed rows and the tables, the contract between mapping and sinks; the
//!   names of an export folder's tables and manifest, which `input` reads.
//! - [`mapping`]: mapping files → validated plan → rows (export) or request bodies (load).
//! - [`input`]: CSV, NDJSON and Parquet input files or folders, streamed as numbered rows.
//! - [`sink`]: CSV, Parquet and NDJSON encoders; part files; where output goes (`--out`: a
//!   local folder or an object store).
//! - [`state`]: the SQLite state database (jobs, export cursors and committed parts, per-row
//!   outcomes of writing jobs, source → target contact ids).
//! - [`lease`]: one job at a time per state database, per output and per location written:
//!   OS locks, and a lease object with a heartbeat in an object store.
//! - [`report`]: per-record outcome files (export's rejects; `succeeded.csv`, `failed.csv`).
//! - [`job`]: what every job shares: connection, identity (the key resume goes by),
//!   progress, summary; the row-job runner load, tag and bulk plug into ([`job::rows`]: state,
//!   chunks, settled rows, bad rows, reports, signals, one stop policy) and the one
//!   exactly-once primitive for writes whose answer may be lost ([`job::once`]).
//!
//! Jobs and commands:
//! - [`export`]: the pipelined export job: which locations (a file, an agency's installed
//!   locations, a shard), per-location fan-out with Ctrl-C and every location's outcome, the
//!   output folder.
//! - [`load`]: the load job: input files into a location, each row exactly once.
//! - [`tag`]: the tag job: tags added to and removed from a list of contacts (or the contacts a
//!   search matches), batched across the whole file; `bulk` runs it with another action
//!   (workflows, campaigns, followers, business, delete).
//! - [`listen`]: `ghl-etl listen`: GHL's webhooks, verified and stored once each, into the
//!   export's dataset; rules that turn events into actions, each sent at most once.
//! - [`check`]: `auth check` and `mapping check`.
//! - [`sandbox`]: a GHL-compatible HTTP server with seeded data, rate limits and faults: the
//!   crate `crates/ghl-sandbox` (`ghl_sandbox`), re-exported here. It imports nothing of this
//!   crate; `job::connect` converts the tool's [`api::RateSpec`] into its rate type.
//!
//! - [`cli`]: the flags of every command, resolved into the plans the jobs take; only
//!   `main.rs` uses it.

// Module docs are maps for readers of the code and name private modules and items on
// purpose; `cargo doc --document-private-items` renders those links.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub mod check;
pub mod cli;
pub mod exit;
pub mod export;
pub mod input;
pub mod job;
pub mod lease;
pub mod listen;
pub mod load;
pub mod mapping;
pub mod private;
pub mod report;
pub mod secret;
pub mod sink;
pub mod state;
pub mod table;
pub mod tag;

pub use ghl_sandbox as sandbox;
