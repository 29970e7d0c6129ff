//! How a job reaches the API: the resolved connection settings ([`ConnectionPlan`]) and the
//! [`Connection`] they open — a client, and for `--sandbox` the embedded sandbox it talks to.
//!
//! Defaults live here once: GHL's burst budget for the real API, the embedded sandbox's own
//! budget when it is the server, and its token when the user gave none.

use std::time::Duration;

use crate::api::{AuthConfig, Client, ClientConfig, RateSpec, RetryConfig};
use crate::exit::{JobError, Result};
use crate::sandbox::{RateLimit, Sandbox, SandboxConfig, DEFAULT_AGENCY_TOKEN, DEFAULT_TOKEN};
use crate::secret::Secret;

/// The embedded sandbox's request budget, and the pace a client keeps against it.
const EMBEDDED_SANDBOX_RATE: RateSpec = RateSpec {
    max: 500,
    interval: Duration::from_secs(1),
};

/// A budget of the tool as the sandbox's burst limit: the sandbox crate has its own rate type,
/// as it imports nothing of the tool. `ghl-etl sandbox` configures it through this as well.
impl From<RateSpec> for RateLimit {
    fn from(r: RateSpec) -> RateLimit {
        RateLimit {
            max: r.max,
            interval: r.interval,
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Url(String),
    /// A sandbox started inside this process with this many seeded contacts per location.
    EmbeddedSandbox {
        contacts: usize,
        locations: usize,
    },
}

/// The pacing the user asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateChoice {
    /// The server's known budget: GHL's burst limit, or the embedded sandbox's.
    Default,
    Off,
    Fixed(RateSpec),
}

/// Everything needed to reach the API, resolved from flags, files and the environment.
#[derive(Debug, Clone)]
pub struct ConnectionPlan {
    pub endpoint: Endpoint,
    /// `None`: no credential given (fine for the embedded sandbox only).
    pub auth: Option<AuthConfig>,
    pub rate: RateChoice,
    pub daily_reserve: u64,
    pub retry: RetryConfig,
    pub request_timeout: Duration,
    /// The credential is an agency (company) token: each location's requests carry a location
    /// token minted from it.
    pub agency: bool,
    /// The agency's company id; `None`: from the OAuth answer (or the embedded sandbox).
    pub company_id: Option<String>,
}

impl ConnectionPlan {
    /// What the job key records of the server: outputs of the embedded sandbox and of a real
    /// location never share a key.
    pub fn server_identity(&self) -> String {
        match &self.endpoint {
            Endpoint::Url(u) => u.clone(),
            Endpoint::EmbeddedSandbox { .. } => "sandbox".into(),
        }
    }

    fn client_config(
        &self,
        base_url: String,
        default_rate: RateSpec,
        sandbox_company: Option<String>,
    ) -> Result<ClientConfig> {
        let auth = match (&self.auth, &self.endpoint) {
            (Some(a), _) => a.clone(),
            (None, Endpoint::EmbeddedSandbox { .. }) if self.agency => {
                AuthConfig::Static(Secret::new(DEFAULT_AGENCY_TOKEN))
            }
            (None, Endpoint::EmbeddedSandbox { .. }) => {
                AuthConfig::Static(Secret::new(DEFAULT_TOKEN))
            }
            (None, Endpoint::Url(_)) => return Err(JobError::usage(
                "no credentials: set GHL_TOKEN (a Private Integration Token), or --token-file, or OAuth with --client-id, GHL_CLIENT_SECRET and --refresh-token-file",
            )),
        };
        let auth = if self.agency {
            auth.into_agency(self.company_id.clone().or(sandbox_company))
        } else {
            auth
        };
        let mut cfg = ClientConfig::new(base_url, auth);
        cfg.rate = match self.rate {
            RateChoice::Default => Some(default_rate),
            RateChoice::Off => None,
            RateChoice::Fixed(r) => Some(r),
        };
        cfg.daily_reserve = self.daily_reserve;
        cfg.retry = self.retry.clone();
        cfg.request_timeout = self.request_timeout;
        Ok(cfg)
    }
}

/// An open connection: the client, and the embedded sandbox while the job runs.
pub struct Connection {
    pub client: Client,
    sandbox: Option<Sandbox>,
}

impl Connection {
    /// Start the embedded sandbox if the plan asks for one, and build the client.
    pub async fn open(plan: &ConnectionPlan, quiet: bool) -> Result<Connection> {
        let (sandbox, url, default_rate) = match &plan.endpoint {
            Endpoint::Url(u) => (None, u.clone(), RateSpec::GHL_BURST),
            Endpoint::EmbeddedSandbox {
                contacts,
                locations,
            } => {
                let cfg = SandboxConfig {
                    contacts: *contacts,
                    locations: (*locations).max(1),
                    rate_limit: Some(EMBEDDED_SANDBOX_RATE.into()),
                    ..Default::default()
                };
                let sb = Sandbox::start(cfg).await.map_err(|e| {
                    JobError::usage(format!("cannot start the embedded sandbox: {e}"))
                })?;
                if !quiet {
                    let ids = sb.location_ids();
                    let which = match ids.as_slice() {
                        [one] => format!("location {one}"),
                        many => format!("each of {} locations", many.len()),
                    };
                    eprintln!(
                        "Embedded sandbox at {} with {contacts} contacts in {which}.",
                        sb.url()
                    );
                }
                let url = sb.url();
                (Some(sb), url, EMBEDDED_SANDBOX_RATE)
            }
        };
        let company = sandbox.as_ref().map(Sandbox::company_id);
        let client = Client::new(plan.client_config(url, default_rate, company)?)?;
        Ok(Connection { client, sandbox })
    }

    /// The embedded sandbox's locations: the default when the user named none.
    pub fn sandbox_locations(&self) -> Vec<String> {
        self.sandbox
            .as_ref()
            .map(Sandbox::location_ids)
            .unwrap_or_default()
    }

    /// The location a one-location job works on: the one given, else the embedded sandbox's.
    pub fn location_or_default(&self, given: &str) -> Result<String> {
        if !given.is_empty() {
            return Ok(given.to_string());
        }
        self.sandbox_locations()
            .into_iter()
            .next()
            .ok_or_else(|| JobError::usage("no location: pass --location (or set GHL_LOCATION)"))
    }

    /// Stop the embedded sandbox, if any.
    pub async fn close(self) {
        if let Some(sb) = self.sandbox {
            sb.shutdown().await;
        }
    }
}
