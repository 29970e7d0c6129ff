//! `ghl-etl listen`: flags resolved into a [`ListenPlan`]. Public keys come as PEM from the
//! environment (`WEBHOOK_SIGNATURE_PUBLIC_KEY`, Ed25519; `WEBHOOK_PUBLIC_KEY`, RSA, the names
//! GHL's SDKs read) or from files named by flags; the old scheme defaults to the key GHL
//! publishes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConnectionArgs;
use crate::exit::{JobError, Result};
use crate::job::{ConnectionPlan, Endpoint};
use crate::listen::rules::Rules;
use crate::listen::verify::{Keys, PublicKey, GHL_RSA_PUBLIC_KEY};
use crate::listen::{Cadence, Limits, ListenPlan};
use crate::sink::OutTarget;

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// Where events go: a folder, or an object store URL (s3://, gs://, az://), as for export.
    /// Events are under `table=events/location_id=…/date=…/`.
    #[arg(long, help_heading = "What to do")]
    pub out: String,

    /// Port to listen on (0: any free port; see --port-file).
    #[arg(long, default_value_t = 8080, help_heading = "What to do")]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", help_heading = "What to do")]
    pub host: String,

    /// Path GHL posts to.
    #[arg(long, default_value = "/webhooks/ghl", help_heading = "What to do")]
    pub path: String,

    /// The state database: every event received (by webhookId), dataset batches, rule actions.
    #[arg(
        long,
        default_value = ".ghl-etl/listen.sqlite",
        help_heading = "What to do"
    )]
    pub state: PathBuf,

    /// Rules: on an event, when conditions hold, do actions (see samples/rules.toml). Needs
    /// credentials for the location (GHL_TOKEN, ...), as load does.
    #[arg(long, help_heading = "What to do")]
    pub rules: Option<PathBuf>,

    /// PEM file of the Ed25519 public key (x-ghl-signature). Default: $WEBHOOK_SIGNATURE_PUBLIC_KEY.
    #[arg(long, help_heading = "Verification")]
    pub ed25519_key_file: Option<PathBuf>,

    /// PEM file of the RSA public key (x-wh-signature). Default: $WEBHOOK_PUBLIC_KEY, else the
    /// key GHL publishes.
    #[arg(long, help_heading = "Verification")]
    pub rsa_key_file: Option<PathBuf>,

    /// Refuse events whose timestamp is further from now than this many seconds.
    #[arg(long, default_value_t = 300, help_heading = "Verification")]
    pub max_age: u64,

    /// Largest body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20, help_heading = "Verification")]
    pub max_body: usize,

    /// A body must arrive whole within this many seconds (else 408).
    #[arg(long, default_value_t = 10.0, help_heading = "Verification")]
    pub read_timeout: f64,

    /// Write stored events into the dataset every this many events...
    #[arg(long, default_value_t = 10_000, help_heading = "Dataset")]
    pub commit_events: i64,

    /// ...or every this many seconds, whichever comes first.
    #[arg(long, default_value_t = 60, help_heading = "Dataset")]
    pub commit_seconds: u64,

    /// Write the port listened on to this file once listening (for --port 0 in scripts).
    #[arg(long, help_heading = "What to do")]
    pub port_file: Option<PathBuf>,

    #[command(flatten)]
    pub conn: ConnectionArgs,
}

impl ListenArgs {
    pub fn resolve(&self) -> Result<ListenPlan> {
        let out =
            OutTarget::parse(&self.out).map_err(|e| JobError::usage(format!("--out: {e}")))?;
        if !self.path.starts_with('/') || self.path == "/healthz" {
            return Err(JobError::usage(
                "--path must start with `/` and not be /healthz",
            ));
        }
        let rules = match &self.rules {
            Some(p) => Some(Rules::read(p)?),
            None => None,
        };
        let connection = self.connection(rules.is_some())?;
        Ok(ListenPlan {
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            out,
            state: self.state.clone(),
            rules,
            keys: self.keys()?,
            limits: Limits {
                max_body: self.max_body.max(1),
                max_age: Duration::from_secs(self.max_age),
                read_timeout: Duration::try_from_secs_f64(self.read_timeout)
                    .map_err(|_| JobError::usage("--read-timeout: a number of seconds"))?,
            },
            cadence: Cadence {
                every_events: self.commit_events.max(1),
                every: Duration::from_secs(self.commit_seconds.max(1)),
            },
            connection,
            port_file: self.port_file.clone(),
        })
    }

    /// The API connection, when there are credentials (or the embedded sandbox).
    fn connection(&self, needed: bool) -> Result<Option<ConnectionPlan>> {
        let plan = self.conn.resolve()?;
        let usable =
            plan.auth.is_some() || matches!(plan.endpoint, Endpoint::EmbeddedSandbox { .. });
        match (usable, needed) {
            (true, _) => Ok(Some(plan)),
            (false, true) => Err(JobError::usage(
                "--rules act on the location: set GHL_TOKEN (or --token-file, or OAuth) as for load",
            )),
            (false, false) => Ok(None),
        }
    }

    fn keys(&self) -> Result<Keys> {
        let mut keys = Keys::default();
        let read = |file: &Option<PathBuf>, env: &str| -> Result<Option<(String, String)>> {
            if let Some(f) = file {
                let text = std::fs::read_to_string(f).map_err(|e| JobError::io("read", f, e))?;
                return Ok(Some((text, f.display().to_string())));
            }
            Ok(std::env::var(env)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, format!("${env}"))))
        };
        let ed = read(&self.ed25519_key_file, "WEBHOOK_SIGNATURE_PUBLIC_KEY")?;
        let rsa = read(&self.rsa_key_file, "WEBHOOK_PUBLIC_KEY")?
            .unwrap_or_else(|| (GHL_RSA_PUBLIC_KEY.to_string(), "GHL's published key".into()));
        for (text, from) in ed.into_iter().chain(Some(rsa)) {
            let key = PublicKey::from_pem(&text.replace("\\n", "\n"))
                .map_err(|e| JobError::usage(format!("{from}: {e}")))?;
            keys.add(key)
                .map_err(|e| JobError::usage(format!("{from}: {e}")))?;
        }
        Ok(keys)
    }
}
