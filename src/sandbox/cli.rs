//! `ghl-etl sandbox`: runs the sandbox in the foreground and prints what a user needs to
//! point the CLI (or curl) at it. Wiring the subcommand into the CLI is left to
//! [`crate::cli`].

use super::{
    Sandbox, SandboxConfig, TokenSpec, DEFAULT_TOKEN, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
};
use crate::api::RateSpec;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A burst limit such as `100/10s`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitArg(pub Option<RateSpec>);

impl FromStr for RateLimitArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
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
}

impl SandboxArgs {
    pub fn config(&self) -> SandboxConfig {
        SandboxConfig {
            contacts: self.contacts,
            locations: self.locations,
            seed: self.seed,
            rate_limit: self.rate_limit.0,
            daily_limit: self.daily_limit,
            fault_rate: self.fault_rate,
            latency: Duration::from_millis(self.latency),
            tokens: self.tokens.clone(),
            record_requests: false,
            access_token_ttl: Duration::from_secs(self.access_token_ttl),
        }
    }
}

/// The start-up text: URL, tokens, OAuth credentials, locations, ready-to-paste exports.
fn banner(sb: &Sandbox, args: &SandboxArgs, refresh: &str) -> String {
    let url = if args.host.is_unspecified() {
        format!("http://127.0.0.1:{}", sb.addr().port())
    } else {
        sb.url()
    };
    let ids = sb.location_ids();
    let mut b = String::new();
    let _ = writeln!(b, "GHL sandbox listening on {url}");
    let rate = args
        .rate_limit
        .0
        .map_or("off".to_string(), |r| r.to_string());
    let _ = writeln!(
        b,
        "  {} contacts x {} location(s), seed {}, rate limit {rate}, daily limit {}, fault rate {}, latency {} ms",
        args.contacts, args.locations, args.seed, args.daily_limit, args.fault_rate, args.latency
    );
    let _ = writeln!(b, "\nLocations:");
    for id in &ids {
        let _ = writeln!(b, "  {id}");
    }
    let _ = writeln!(b, "\nTokens:");
    let _ = writeln!(b, "  {DEFAULT_TOKEN}  (all scopes, all locations)");
    for t in &args.tokens {
        let locs = t
            .locations
            .as_ref()
            .map_or("all locations".to_string(), |l| l.join(", "));
        let _ = writeln!(b, "  {}  scopes: {}  ({locs})", t.token, t.scopes.join(" "));
    }
    let _ = writeln!(
        b,
        "\nOAuth (POST {url}/oauth/token, grant_type=refresh_token):"
    );
    let _ = writeln!(b, "  client_id:     {OAUTH_CLIENT_ID}");
    let _ = writeln!(b, "  client_secret: {OAUTH_CLIENT_SECRET}");
    let _ = writeln!(b, "  refresh_token: {refresh}");
    let _ = writeln!(b, "\nPaste into your shell:");
    let _ = writeln!(b, "  export GHL_BASE_URL={url}");
    let _ = writeln!(b, "  export GHL_TOKEN={DEFAULT_TOKEN}");
    if let Some(first) = ids.first() {
        let _ = writeln!(b, "  ghl-etl export --location {first} --out ./export");
    }
    let _ = writeln!(b, "\nCounters: curl {url}/_sandbox/stats");
    let _ = writeln!(b, "Press Ctrl-C to stop.");
    b
}

/// Runs the sandbox until Ctrl-C.
pub async fn run_cli(args: SandboxArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fault_rate),
        "--fault-rate must be between 0.0 and 1.0, got {}",
        args.fault_rate
    );
    let addr = SocketAddr::new(args.host, args.port);
    let sb = Sandbox::start_on(args.config(), addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the sandbox on {addr}: {e}"))?;
    let scopes: Vec<&str> = super::auth::ALL_SCOPES.to_vec();
    let refresh = sb.issue_refresh_token(&scopes);
    print!("{}", banner(&sb, &args, &refresh));
    tokio::signal::ctrl_c().await?;
    tracing::info!("Sandbox stopping.");
    sb.shutdown().await;
    Ok(())
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
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.args.config().rate_limit, Some(RateSpec::GHL_BURST));
        assert!(Cli::try_parse_from(["x", "--token", "bad"]).is_err());
        assert!(Cli::try_parse_from(["x", "--rate-limit", "fast"]).is_err());
    }

    #[tokio::test]
    async fn banner_names_everything_needed() {
        let args = Cli::try_parse_from([
            "x",
            "--contacts",
            "5",
            "--token",
            "r=contacts.readonly",
            "--port",
            "0",
        ])
        .unwrap()
        .args;
        let sb = Sandbox::start(args.config()).await.unwrap();
        let text = banner(&sb, &args, "RT");
        for needle in [
            sb.url().as_str(),
            DEFAULT_TOKEN,
            "r  scopes: contacts.readonly",
            OAUTH_CLIENT_ID,
            OAUTH_CLIENT_SECRET,
            "refresh_token: RT",
            "export GHL_BASE_URL=",
            "export GHL_TOKEN=sandbox-token",
            "ghl-etl export --location ",
            sb.location_ids()[0].as_str(),
        ] {
            assert!(text.contains(needle), "banner lacks {needle:?}:\n{text}");
        }
        sb.shutdown().await;
    }
}
