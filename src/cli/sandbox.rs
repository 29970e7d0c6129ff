//! `ghl-etl sandbox` flags, resolved into the server to run ([`ForegroundPlan`]).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::api::RateSpec;
use crate::exit::{JobError, Result};
use crate::sandbox::{ForegroundPlan, Hostile, SandboxConfig, Schemes, TokenSpec, WebhookConfig};

/// A burst limit such as `100/10s`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitArg(pub Option<RateSpec>);

impl FromStr for RateLimitArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "off" | "none" => Ok(RateLimitArg(None)),
            other => other.parse::<RateSpec>().map(|r| RateLimitArg(Some(r))),
        }
    }
}

/// Run a local GHL-compatible API with seeded data.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Seeded contacts per location.
    #[arg(long, default_value_t = 1000)]
    pub contacts: usize,
    /// Number of locations.
    #[arg(long, default_value_t = 1)]
    pub locations: usize,
    /// Seed of the generated data (same seed, same data and ids).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Burst limit per token and location, e.g. `100/10s`, or `off`.
    #[arg(long, default_value = "100/10s", value_name = "N/INTERVAL|off")]
    pub rate_limit: RateLimitArg,
    /// Requests per token, location and UTC day.
    #[arg(long, default_value_t = 200_000)]
    pub daily_limit: u64,
    /// Share of requests (0.0 to 1.0) answered with an injected fault.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Milliseconds added to every answer.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency: u64,
    /// Extra token: `NAME=scope,scope`, optionally `@LOCATION+LOCATION` (ids or 0-based indices).
    #[arg(long = "token", value_name = "NAME=SCOPES")]
    pub tokens: Vec<TokenSpec>,
    /// Lifetime of issued OAuth access tokens, in seconds.
    #[arg(long, default_value_t = 86_399, value_name = "SECS")]
    pub access_token_ttl: u64,
    /// Answer wrongly on purpose, to see what a client does: wrong-types, huge-body, trickle,
    /// invalid-utf8, redirect=URL, html-200, page-repeats, page-back=N, lying-total=N. The
    /// paging modes spoil only pages asked for after a cursor; lying-total only listings.
    #[arg(long, value_name = "MODE")]
    pub hostile: Option<Hostile>,
    /// How many answers --hostile spoils (default: all of them).
    #[arg(long, value_name = "N", requires = "hostile")]
    pub hostile_answers: Option<u64>,
    /// Seed the first location from a folder of GHL API answers (`custom-fields.json`,
    /// `contacts.ndjson`, `tasks.ndjson`, `notes.ndjson`) instead of generated data; the
    /// other locations (at least one) start empty, as a migration target.
    #[arg(long, value_name = "DIR")]
    pub fixture: Option<std::path::PathBuf>,
    /// Send GHL's webhooks for every write to this URL (e.g. a `ghl-etl listen`), signed;
    /// the public keys to verify them are printed on start.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Seconds before a webhook answered 429 is sent again (GHL: about 10 minutes; up to 6
    /// times). Any other failure loses the event, as with GHL.
    #[arg(
        long,
        default_value_t = 600.0,
        value_name = "SECS",
        requires = "webhook_url"
    )]
    pub webhook_retry_delay: f64,
    /// Share of webhooks (0.0 to 1.0) delivered twice, same body and webhookId.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "RATE",
        requires = "webhook_url"
    )]
    pub webhook_duplicates: f64,
    /// Share of webhooks (0.0 to 1.0) held back and sent after the next one.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "RATE",
        requires = "webhook_url"
    )]
    pub webhook_reorder: f64,
    /// Share of TaskCreate webhooks (0.0 to 1.0) sent without contactId, as GHL has been
    /// seen to.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "RATE",
        requires = "webhook_url"
    )]
    pub webhook_drop_contact_id: f64,
    /// Signature headers: ed25519 (x-ghl-signature), rsa (x-wh-signature) or both.
    #[arg(
        long,
        default_value = "both",
        value_name = "ed25519|rsa|both",
        requires = "webhook_url"
    )]
    pub webhook_schemes: Schemes,
}

impl SandboxArgs {
    /// The server to run: its configuration and address.
    pub fn resolve(&self) -> Result<ForegroundPlan> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(JobError::usage(format!(
                "--fault-rate must be between 0.0 and 1.0, got {}",
                self.fault_rate
            )));
        }
        let mut config = self.config();
        config.webhooks = self.webhooks()?;
        if let Some(dir) = &self.fixture {
            let fixture = crate::sandbox::Fixture::read(dir)
                .map_err(|e| JobError::usage(format!("--fixture: {e}")))?;
            config.fixture = Some(fixture);
            config.contacts = 0;
            config.locations = config.locations.max(2);
        }
        Ok(ForegroundPlan {
            config,
            addr: SocketAddr::new(self.host, self.port),
            hostile: self
                .hostile
                .clone()
                .map(|h| (h, self.hostile_answers.unwrap_or(u64::MAX))),
        })
    }

    /// The webhook settings, checked.
    fn webhooks(&self) -> Result<Option<WebhookConfig>> {
        let Some(url) = &self.webhook_url else {
            return Ok(None);
        };
        let parsed = url::Url::parse(url)
            .map_err(|e| JobError::usage(format!("--webhook-url {url}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(JobError::usage(format!(
                "--webhook-url {url}: expected an http:// or https:// URL"
            )));
        }
        for (flag, rate) in [
            ("--webhook-duplicates", self.webhook_duplicates),
            ("--webhook-reorder", self.webhook_reorder),
            ("--webhook-drop-contact-id", self.webhook_drop_contact_id),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(JobError::usage(format!(
                    "{flag} must be between 0.0 and 1.0, got {rate}"
                )));
            }
        }
        let retry_delay = Duration::try_from_secs_f64(self.webhook_retry_delay).map_err(|_| {
            JobError::usage(format!(
                "--webhook-retry-delay must be a number of seconds, 0 or more, got {}",
                self.webhook_retry_delay
            ))
        })?;
        Ok(Some(WebhookConfig {
            url: url.clone(),
            schemes: self.webhook_schemes,
            retry_delay,
            duplicate_rate: self.webhook_duplicates,
            reorder_rate: self.webhook_reorder,
            drop_contact_id_rate: self.webhook_drop_contact_id,
            seed: self.seed,
            ..WebhookConfig::default()
        }))
    }

    fn config(&self) -> SandboxConfig {
        SandboxConfig {
            contacts: self.contacts,
            locations: self.locations,
            seed: self.seed,
            rate_limit: self.rate_limit.0.map(Into::into),
            daily_limit: self.daily_limit,
            fault_rate: self.fault_rate,
            latency: Duration::from_millis(self.latency),
            tokens: self.tokens.clone(),
            access_token_ttl: Duration::from_secs(self.access_token_ttl),
            ..SandboxConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn parses_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "--rate-limit",
            "off",
            "--token",
            "r=contacts.readonly@0",
            "--token",
            "w=contacts.write",
            "--latency",
            "5",
        ])
        .unwrap();
        let cfg = cli.args.config();
        assert_eq!(cfg.rate_limit, None);
        assert_eq!(cfg.tokens.len(), 2);
        assert_eq!(cfg.latency, Duration::from_millis(5));
        assert_eq!(cli.args.port, 8787);
        assert_eq!(
            cli.args.resolve().unwrap().addr,
            "127.0.0.1:8787".parse().unwrap()
        );
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(
            cli.args.config().rate_limit,
            Some(crate::sandbox::RateLimit::GHL_BURST)
        );
        assert!(Cli::try_parse_from(["x", "--token", "bad"]).is_err());
        assert!(Cli::try_parse_from(["x", "--rate-limit", "fast"]).is_err());
        let cli = Cli::try_parse_from(["x", "--hostile", "page-back=3", "--hostile-answers", "2"])
            .unwrap();
        assert_eq!(
            cli.args.resolve().unwrap().hostile,
            Some((Hostile::PageBack(3), 2))
        );
        assert!(Cli::try_parse_from(["x", "--hostile", "sometimes"]).is_err());
        assert!(Cli::try_parse_from(["x", "--hostile-answers", "2"]).is_err());
        let cli = Cli::try_parse_from(["x", "--fault-rate", "1.5"]).unwrap();
        assert!(cli.args.resolve().is_err());
    }

    #[test]
    fn parses_webhook_flags() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.args.resolve().unwrap().config.webhooks, None);
        let cli = Cli::try_parse_from([
            "x",
            "--webhook-url",
            "http://127.0.0.1:8080/webhooks/ghl",
            "--webhook-retry-delay",
            "0.25",
            "--webhook-duplicates",
            "0.1",
            "--webhook-reorder",
            "0.2",
            "--webhook-drop-contact-id",
            "1",
            "--webhook-schemes",
            "rsa",
            "--seed",
            "7",
        ])
        .unwrap();
        let w = cli.args.resolve().unwrap().config.webhooks.unwrap();
        assert_eq!(w.url, "http://127.0.0.1:8080/webhooks/ghl");
        assert_eq!(w.retry_delay, Duration::from_millis(250));
        assert_eq!(w.max_retries, 6);
        assert_eq!(
            (w.duplicate_rate, w.reorder_rate, w.drop_contact_id_rate),
            (0.1, 0.2, 1.0)
        );
        assert_eq!((w.schemes, w.seed), (Schemes::Rsa, 7));
        let cli = Cli::try_parse_from(["x", "--webhook-url", "http://h/"]).unwrap();
        let w = cli.args.resolve().unwrap().config.webhooks.unwrap();
        assert_eq!(
            (w.schemes, w.retry_delay),
            (Schemes::Both, Duration::from_secs(600))
        );
        // The knobs need a URL; bad values are refused.
        assert!(Cli::try_parse_from(["x", "--webhook-reorder", "0.5"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "--webhook-url", "u", "--webhook-schemes", "hmac"]).is_err()
        );
        for bad in [
            ["--webhook-url", "not a url", "--webhook-reorder", "0"],
            ["--webhook-url", "ftp://h/", "--webhook-reorder", "0"],
            ["--webhook-url", "http://h/", "--webhook-duplicates", "2"],
            ["--webhook-url", "http://h/", "--webhook-retry-delay", "inf"],
        ] {
            let cli = Cli::try_parse_from(std::iter::once("x").chain(bad)).unwrap();
            assert!(cli.args.resolve().is_err(), "{bad:?}");
        }
    }
}
