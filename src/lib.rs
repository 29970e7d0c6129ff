//! ghl-etl: move CRM data out of and into GoHighLevel (LeadConnector) through its Contacts API v2.
//!
//! # Layout
//! Data flows one way, from the API to the files:
//! - [`cli`]: command-line flags (runtime settings only).
//! - [`secret`]: the wrapper that keeps tokens out of every message.
//! - [`api`]: the typed GHL client: auth, rate limiting, retries, pagination streams.
//! - [`sandbox`]: a GHL-compatible HTTP server with seeded data, rate limits and faults.
//! - [`table`]: typed rows, the contract between mapping and sinks.
//! - [`mapping`]: mapping files -> validated plan -> rows.
//! - [`sink`]: CSV, Parquet and NDJSON writers.
//! - [`state`]: the SQLite state database (cursors, committed part files).
//! - [`export`]: the pipelined export job.
//! - [`commands`]: one function per subcommand.

pub mod api;
pub mod cli;
pub mod commands;
pub mod export;
pub mod mapping;
pub mod sandbox;
pub mod secret;
pub mod sink;
pub mod state;
pub mod table;
