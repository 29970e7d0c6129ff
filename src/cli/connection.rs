//! Connection flags, shared by every command that calls the API, resolved into a
//! [`ConnectionPlan`]: credentials read from files or the environment, pacing and retries.
//!
//! Secrets are never flags: tokens come from `GHL_TOKEN` / `GHL_CLIENT_SECRET` in the
//! environment or from files (`--token-file`, `--refresh-token-file`), so they stay out of
//! shell history, `ps` and `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::api::{self, AuthConfig, OAuthConfig, RateSpec, RetryConfig};
use crate::exit::{JobError, Result};
use crate::job::{ConnectionPlan, Endpoint, RateChoice};
use crate::secret::{read_secret_file, Secret};

/// How to reach the API: base URL, credentials, pacing and retries.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Connection (how to reach the API and how hard to push it)")]
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

    /// Request budget per location, e.g. `100/10s`, or `off`. Default: GHL's burst limit
    /// (100/10s), or the embedded sandbox's (500/1s) with --sandbox.
    #[arg(long, env = "GHL_RATE")]
    pub rate: Option<String>,

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

    /// Run against an embedded sandbox with seeded demo data (no token needed; overrides
    /// --base-url).
    #[arg(long)]
    pub sandbox: bool,

    /// Contacts in each of the embedded sandbox's locations.
    #[arg(long, default_value_t = 2_000, requires = "sandbox")]
    pub sandbox_contacts: usize,

    /// Locations in the embedded sandbox (to try `--all-locations` or `--shard`).
    #[arg(long, default_value_t = 1, requires = "sandbox")]
    pub sandbox_locations: usize,

    /// The token is an agency (company) token of this company: each location's requests carry
    /// a location token minted from it (POST /oauth/locationToken). With OAuth and
    /// --all-locations it is taken from the token answer when not given.
    #[arg(long, env = "GHL_COMPANY_ID")]
    pub company_id: Option<String>,
}

impl ConnectionArgs {
    /// Resolve the flags: read credential files and the environment, check every value.
    pub fn resolve(&self) -> Result<ConnectionPlan> {
        let endpoint = if self.sandbox {
            Endpoint::EmbeddedSandbox {
                contacts: self.sandbox_contacts,
                locations: self.sandbox_locations,
            }
        } else {
            Endpoint::Url(self.base_url.clone())
        };
        let rate = match self.rate.as_deref().map(str::trim) {
            None => RateChoice::Default,
            Some(r) if r.eq_ignore_ascii_case("off") => RateChoice::Off,
            Some(r) => RateChoice::Fixed(
                r.parse::<RateSpec>()
                    .map_err(|e| JobError::usage(format!("--rate: {e}")))?,
            ),
        };
        Ok(ConnectionPlan {
            endpoint,
            auth: self.auth()?,
            rate,
            daily_reserve: self.daily_reserve,
            retry: RetryConfig {
                max_attempts: self.max_attempts.max(1),
                max_delay: secs(self.retry_max_delay, "--retry-max-delay")?,
                max_elapsed: secs(self.retry_max_elapsed, "--retry-max-elapsed")?,
                ..RetryConfig::default()
            },
            request_timeout: secs(self.timeout, "--timeout")?,
            agency: self.company_id.is_some(),
            company_id: self.company_id.clone().filter(|c| !c.trim().is_empty()),
        })
    }

    /// The credential given, if any (`None` is fine for the embedded sandbox only).
    fn auth(&self) -> Result<Option<AuthConfig>> {
        if let Some(client_id) = &self.client_id {
            let refresh_token_file = self.refresh_token_file.clone().ok_or_else(|| {
                JobError::usage(
                    "OAuth needs --refresh-token-file (or GHL_REFRESH_TOKEN_FILE) with --client-id",
                )
            })?;
            let client_secret = match (&self.client_secret_file, std::env::var("GHL_CLIENT_SECRET"))
            {
                (Some(f), _) => read_secret_file(f).map_err(|e| {
                    JobError::usage(format!(
                        "cannot read --client-secret-file {}: {e}",
                        f.display()
                    ))
                })?,
                (None, Ok(s)) if !s.trim().is_empty() => Secret::new(s.trim()),
                _ => return Err(JobError::usage(
                    "OAuth needs the client secret: set GHL_CLIENT_SECRET or --client-secret-file",
                )),
            };
            return Ok(Some(AuthConfig::OAuth(OAuthConfig {
                client_id: client_id.clone(),
                client_secret,
                refresh_token_file,
                user_type: "Location".into(),
            })));
        }
        if let Some(f) = &self.token_file {
            let token = read_secret_file(f).map_err(|e| {
                JobError::usage(format!("cannot read --token-file {}: {e}", f.display()))
            })?;
            if token.is_empty() {
                return Err(JobError::usage(format!(
                    "--token-file {} is empty",
                    f.display()
                )));
            }
            header_safe(&token, &format!("--token-file {}", f.display()))?;
            return Ok(Some(AuthConfig::Static(token)));
        }
        if let Ok(t) = std::env::var("GHL_TOKEN") {
            if !t.trim().is_empty() {
                let token = Secret::new(t.trim());
                header_safe(&token, "GHL_TOKEN")?;
                return Ok(Some(AuthConfig::Static(token)));
            }
        }
        Ok(None)
    }
}

/// A token goes into the `Authorization` header: one holding a control character (a stray
/// newline inside it, a pasted escape) can never be sent, and would otherwise be retried as a
/// connection failure. Named by where it came from, never shown.
fn header_safe(token: &Secret, source: &str) -> Result<()> {
    let bad = token
        .expose()
        .chars()
        .position(|c| c.is_control() || !c.is_ascii());
    match bad {
        None => Ok(()),
        Some(at) => Err(JobError::usage(format!(
            "the token in {source} holds a character an HTTP header cannot carry (a control or non-ASCII character at position {}); copy it again without it",
            at + 1
        ))),
    }
}

fn secs(v: f64, flag: &str) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        return Err(JobError::usage(format!(
            "{flag} must be a positive number of seconds, got {v}"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}
