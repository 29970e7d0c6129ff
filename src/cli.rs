//! Command-line flags (clap derive). Runtime settings only: *what* to move lives in mapping
//! files, *how hard* to push lives here.
//!
//! Secrets are never flags: tokens come from `GHL_TOKEN` / `GHL_CLIENT_SECRET` in the
//! environment or from files (`--token-file`, `--refresh-token-file`), so they stay out of
//! shell history, `ps` and `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::{self, AuthConfig, ClientConfig, OAuthConfig, RateSpec, RetryConfig};
use crate::secret::{read_secret_file, Secret};

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

    /// More detail in logs (-v: debug, -vv: trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Export contacts (with tasks, notes, appointments) to Parquet, CSV or NDJSON files.
    Export(Box<crate::export::ExportArgs>),
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
    /// Run the GHL-compatible sandbox server (seeded data, rate limits, faults).
    Sandbox(crate::sandbox::SandboxArgs),
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Call one cheap read per scope (and with --write, a write probe that changes nothing).
    Check {
        #[command(flatten)]
        conn: ConnectionArgs,
        /// The location (sub-account) id.
        #[arg(long, env = "GHL_LOCATION")]
        location: String,
        /// Also probe `contacts.write` (sends an update for a contact id that cannot exist).
        #[arg(long)]
        write: bool,
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

/// How to reach the API: base URL, credentials, pacing and retries.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// API base URL. `http://` is refused except for loopback (the sandbox).
    #[arg(long, env = "GHL_BASE_URL", default_value = api::DEFAULT_BASE_URL)]
    pub base_url: String,

    /// File holding the access token (Private Integration Token). Alternatively set GHL_TOKEN.
    #[arg(long, env = "GHL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// OAuth app client id (with GHL_CLIENT_SECRET and --refresh-token-file instead of a static token).
    #[arg(long, env = "GHL_CLIENT_ID")]
    pub client_id: Option<String>,

    /// File holding the OAuth client secret. Alternatively set GHL_CLIENT_SECRET.
    #[arg(long, env = "GHL_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// File holding the OAuth refresh token; rewritten (atomically, mode 0600) on every refresh
    /// because GHL refresh tokens are single-use.
    #[arg(long, env = "GHL_REFRESH_TOKEN_FILE")]
    pub refresh_token_file: Option<PathBuf>,

    /// Request budget per location, e.g. `100/10s` (GHL's burst limit), or `off`.
    #[arg(long, env = "GHL_RATE", default_value = "100/10s")]
    pub rate: String,

    /// Stop cleanly when a location's daily budget (X-RateLimit-Daily-Remaining) falls to this.
    #[arg(long, default_value_t = 1000)]
    pub daily_reserve: u64,

    /// Attempts per request before giving up (retries 429, 5xx, timeouts, bad bodies).
    #[arg(long, default_value_t = 10)]
    pub max_attempts: usize,

    /// Longest wait between two attempts, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub retry_max_delay: f64,

    /// Longest time spent retrying one request, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub retry_max_elapsed: f64,

    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

impl ConnectionArgs {
    /// Arguments for talking to a sandbox at `url` with its default token.
    pub fn for_sandbox(url: &str) -> ConnectionArgs {
        ConnectionArgs {
            base_url: url.to_string(),
            token_file: None,
            client_id: None,
            client_secret_file: None,
            refresh_token_file: None,
            rate: "100/10s".into(),
            daily_reserve: 1000,
            max_attempts: 10,
            retry_max_delay: 30.0,
            retry_max_elapsed: 300.0,
            timeout: 60.0,
        }
    }

    pub fn rate_spec(&self) -> anyhow::Result<Option<RateSpec>> {
        if self.rate.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        self.rate
            .parse::<RateSpec>()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--rate: {e}"))
    }

    /// Build the client configuration; `default_token` is used when no credential is given
    /// (the embedded sandbox).
    pub fn client_config(&self, default_token: Option<&str>) -> anyhow::Result<ClientConfig> {
        let auth = self.auth(default_token)?;
        let mut cfg = ClientConfig::new(self.base_url.clone(), auth);
        cfg.rate = self.rate_spec()?;
        cfg.daily_reserve = self.daily_reserve;
        cfg.retry = RetryConfig {
            max_attempts: self.max_attempts.max(1),
            max_delay: secs(self.retry_max_delay, "--retry-max-delay")?,
            max_elapsed: secs(self.retry_max_elapsed, "--retry-max-elapsed")?,
            ..RetryConfig::default()
        };
        cfg.request_timeout = secs(self.timeout, "--timeout")?;
        Ok(cfg)
    }

    fn auth(&self, default_token: Option<&str>) -> anyhow::Result<AuthConfig> {
        if let Some(client_id) = &self.client_id {
            let refresh_token_file = self.refresh_token_file.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "OAuth needs --refresh-token-file (or GHL_REFRESH_TOKEN_FILE) with --client-id"
                )
            })?;
            let client_secret = match (&self.client_secret_file, std::env::var("GHL_CLIENT_SECRET"))
            {
                (Some(f), _) => read_secret_file(f).map_err(|e| {
                    anyhow::anyhow!("cannot read --client-secret-file {}: {e}", f.display())
                })?,
                (None, Ok(s)) if !s.trim().is_empty() => Secret::new(s.trim()),
                _ => anyhow::bail!(
                    "OAuth needs the client secret: set GHL_CLIENT_SECRET or --client-secret-file"
                ),
            };
            return Ok(AuthConfig::OAuth(OAuthConfig {
                client_id: client_id.clone(),
                client_secret,
                refresh_token_file,
                user_type: "Location".into(),
            }));
        }
        if let Some(f) = &self.token_file {
            let token = read_secret_file(f)
                .map_err(|e| anyhow::anyhow!("cannot read --token-file {}: {e}", f.display()))?;
            if token.is_empty() {
                anyhow::bail!("--token-file {} is empty", f.display());
            }
            return Ok(AuthConfig::Static(token));
        }
        if let Ok(t) = std::env::var("GHL_TOKEN") {
            if !t.trim().is_empty() {
                return Ok(AuthConfig::Static(Secret::new(t.trim())));
            }
        }
        if let Some(t) = default_token {
            return Ok(AuthConfig::Static(Secret::new(t)));
        }
        anyhow::bail!(
            "no credentials: set GHL_TOKEN (a Private Integration Token), or --token-file, or OAuth with --client-id, GHL_CLIENT_SECRET and --refresh-token-file"
        )
    }
}

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        anyhow::bail!("{flag} must be a positive number of seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}
