//! Command-line flags (clap derive) of every command, and their resolution into the plans the
//! jobs take (ripgrep's low args → high args): flags are parsed here, files and environment
//! read, defaults applied once, and a job receives a plan it cannot misread. Nothing outside
//! `main.rs` imports this module. *What* to move lives in mapping files, *how hard* to push
//! lives in flags.
//!
//! - `connection`: how to reach the API (every command that calls it).
//! - `export`: `ghl-etl export`.
//! - `input`: the input-file flags `load` and `tag` share.
//! - `listen`: `ghl-etl listen`.
//! - `load`: `ghl-etl load`.
//! - `sandbox`: `ghl-etl sandbox`.
//! - `tag`: `ghl-etl tag` and `ghl-etl bulk`.
//!
//! Secrets are never flags: tokens come from `GHL_TOKEN` / `GHL_CLIENT_SECRET` in the
//! environment or from files (`--token-file`, `--refresh-token-file`), so they stay out of
//! shell history, `ps` and `--help`.

mod connection;
mod export;
mod input;
mod listen;
mod load;
mod sandbox;
mod tag;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use connection::ConnectionArgs;
pub use export::ExportArgs;
pub use listen::ListenArgs;
pub use load::LoadArgs;
pub use sandbox::SandboxArgs;
pub use tag::{BulkArgs, TagArgs};

#[derive(Parser, Debug)]
#[command(
    name = "ghl-etl",
    version,
    about = "Move CRM data out of and into GoHighLevel (LeadConnector) through its Contacts API v2."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GHL_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Only errors on stderr: no progress bar, no summary (for cron).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// When another run holds this run's state database, output or location, wait for it
    /// to finish instead of refusing (exit 2).
    #[arg(long, global = true)]
    pub wait: bool,

    /// Where no progress bar is drawn (stderr not a terminal, or JSON logs), log a progress
    /// line every this many seconds; 0 for none.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub progress_every: u64,

    /// More detail in logs (-v: debug, -vv: trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Umask for every file and folder a run creates (outputs, reports, the state database), in
    /// octal. The default 077 makes them owner-only (0600 files, 0700 folders): they hold
    /// personal data. 027 lets the owner's group read them.
    #[arg(long, global = true, env = "GHL_UMASK", default_value = "077", value_parser = crate::private::parse_umask)]
    pub umask: u32,

    /// With -vv, also log each request and answer body (tokens, secrets and the Authorization
    /// header removed). Bodies hold personal data: use it to debug, not in production logs.
    #[arg(long, global = true)]
    pub trace_bodies: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Export contacts (with tasks, notes, appointments) to Parquet, CSV or NDJSON files.
    Export(Box<ExportArgs>),
    /// Load contacts, tasks, notes and tags from files into a location, each row exactly once.
    Load(Box<LoadArgs>),
    /// Add or remove tags on a list of contacts (by id, email or phone), in few requests.
    Tag(Box<TagArgs>),
    /// Run another action on a list of contacts: workflows, campaigns, followers, business, delete.
    Bulk(Box<BulkArgs>),
    /// Check that a token works for a location, and which scopes it has.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Validate a mapping file and print the output schema.
    Mapping {
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// Receive GHL's webhooks into the export's dataset (verified, durable, once each), with
    /// rules that turn events into actions.
    Listen(Box<ListenArgs>),
    /// Run the GHL-compatible sandbox server (seeded data, rate limits, faults).
    Sandbox(SandboxArgs),
    /// Print a shell completion script: `ghl-etl completions bash > /etc/bash_completion.d/ghl-etl`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `ghl-etl man | man -l -`.
    Man,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Call one cheap read per scope (and with --write, a write probe that changes nothing).
    Check {
        /// The location (sub-account) id.
        #[arg(long, env = "GHL_LOCATION")]
        location: String,
        /// Also probe `contacts.write` (sends an update for a contact id that cannot exist).
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum MappingCommand {
    /// Parse and validate FILE; print each table's columns and types.
    Check {
        file: PathBuf,
        /// Resolve `custom."Name"` references against this location's custom fields.
        #[arg(long)]
        location: Option<String>,
        #[command(flatten)]
        conn: ConnectionArgs,
    },
}
