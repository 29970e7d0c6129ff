//! Access tokens: a static Private Integration Token, or OAuth with rotating refresh tokens.
//!
//! GHL refresh tokens are single-use: each refresh answers a new refresh token and invalidates
//! the old one. The new one is written to its file (atomically, mode 0600) *before* the new
//! access token is used, so a crash right after a refresh cannot lock the next run out.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{Error, ErrorKind, Result};
use super::transport::{describe_transport, server_message};
use crate::secret::{read_secret_file, write_secret_file, Secret};

/// Refresh this long before the access token expires, so no request goes out with a token
/// that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// A Private Integration Token (or any access token), used as is.
    Static(Secret),
    OAuth(OAuthConfig),
    /// An agency (company) token, static or OAuth: each location's requests carry a location
    /// token minted from it (see `api::agency`).
    Agency(AgencyConfig),
}

#[derive(Debug, Clone)]
pub struct AgencyConfig {
    /// The agency token itself.
    pub company: Box<AuthConfig>,
    /// The company it belongs to; `None`: learnt from the OAuth answer.
    pub company_id: Option<String>,
}

impl AuthConfig {
    /// This credential, used as an agency token of `company_id` (if given). An OAuth app is
    /// refreshed as `user_type=Company`.
    pub fn into_agency(self, company_id: Option<String>) -> AuthConfig {
        match self {
            AuthConfig::Agency(mut a) => {
                a.company_id = company_id.or(a.company_id);
                AuthConfig::Agency(a)
            }
            AuthConfig::OAuth(mut o) => {
                o.user_type = "Company".into();
                AuthConfig::Agency(AgencyConfig {
                    company: Box::new(AuthConfig::OAuth(o)),
                    company_id,
                })
            }
            token => AuthConfig::Agency(AgencyConfig {
                company: Box::new(token),
                company_id,
            }),
        }
    }

    /// The agency part split off: the credential that talks to the API directly, and the
    /// company id when it is an agency token.
    pub(crate) fn split_agency(self) -> (AuthConfig, Option<Option<String>>) {
        match self {
            AuthConfig::Agency(a) => (a.company.split_agency().0, Some(a.company_id)),
            other => (other, None),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// Holds the current refresh token; rewritten after every refresh.
    pub refresh_token_file: PathBuf,
    /// `Location` or `Company`, as the token was installed.
    pub user_type: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    /// Company tokens carry their company (needed to mint location tokens).
    #[serde(rename = "companyId")]
    company_id: Option<String>,
}

struct OAuthState {
    access: Option<(Secret, Instant)>,
    company_id: Option<String>,
}

pub(crate) struct Auth {
    config: AuthConfig,
    state: Mutex<OAuthState>,
    clock: super::Clock,
}

impl Auth {
    /// An agency config is used for its agency token; location tokens are the client's.
    pub(crate) fn new(config: AuthConfig, clock: super::Clock) -> Auth {
        Auth {
            clock,
            config: config.split_agency().0,
            state: Mutex::new(OAuthState {
                access: None,
                company_id: None,
            }),
        }
    }

    /// The company id the OAuth answer named, once a token was fetched.
    pub(crate) async fn company_id(&self) -> Option<String> {
        self.state.lock().await.company_id.clone()
    }

    pub(crate) fn is_oauth(&self) -> bool {
        matches!(self.config, AuthConfig::OAuth(_))
    }

    /// The token to send now; refreshes first when an OAuth token is missing or about to expire.
    pub(crate) async fn access_token(&self, http: &reqwest::Client, base: &str) -> Result<Secret> {
        match &self.config {
            AuthConfig::Static(token) => Ok(token.clone()),
            // `new` keeps only the agency token itself.
            AuthConfig::Agency(_) => Err(Error::new(ErrorKind::Config, "-", "-")
                .with_message("an agency credential was not split")),
            AuthConfig::OAuth(cfg) => {
                let mut state = self.state.lock().await;
                if let Some((token, expires)) = &state.access {
                    if self.clock.now() + REFRESH_MARGIN < *expires {
                        return Ok(token.clone());
                    }
                }
                let (token, ttl, company_id) = refresh(http, base, cfg).await?;
                let expires = self.clock.now() + ttl;
                state.access = Some((token.clone(), expires));
                if company_id.is_some() {
                    state.company_id = company_id;
                }
                Ok(token)
            }
        }
    }

    /// After a 401: drop the access token unless another task already replaced it
    /// (`used` is the token that was refused), so only one refresh happens.
    pub(crate) async fn invalidate(&self, used: &Secret) {
        let mut state = self.state.lock().await;
        if matches!(&state.access, Some((t, _)) if t == used) {
            state.access = None;
        }
    }
}

async fn refresh(
    http: &reqwest::Client,
    base: &str,
    cfg: &OAuthConfig,
) -> Result<(Secret, Duration, Option<String>)> {
    let path = "/oauth/token";
    let fail = |kind: ErrorKind, msg: String| Error::new(kind, "POST", path).with_message(msg);
    let refresh_token = read_secret_file(&cfg.refresh_token_file).map_err(|e| {
        fail(
            ErrorKind::Config,
            format!(
                "cannot read the refresh token file {}: {e}",
                cfg.refresh_token_file.display()
            ),
        )
    })?;
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.expose()),
        ("refresh_token", refresh_token.expose()),
        ("user_type", cfg.user_type.as_str()),
    ];
    let body = serde_urlencoded_form(&form);
    let response = http
        .post(format!("{base}{path}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| fail(ErrorKind::Transport, describe_transport(&e)))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| fail(ErrorKind::Transport, describe_transport(&e)))?;
    if !status.is_success() {
        let kind = if status.as_u16() == 401 || status.as_u16() == 400 || status.as_u16() == 422 {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::Server
        };
        return Err(fail(
            kind,
            format!(
                "the OAuth refresh was refused ({}); the refresh token in {} may have been used already or revoked: re-authorise the app and store the new refresh token there",
                server_message(&bytes).unwrap_or_default(),
                cfg.refresh_token_file.display()
            ),
        )
        .with_status(status.as_u16()));
    }
    let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            ErrorKind::Decode {
                json_path: String::new(),
            },
            format!("token answer: {e}"),
        )
    })?;
    // Persist the rotated refresh token before the new access token is used.
    if let Some(next) = answer.refresh_token {
        write_secret_file(&cfg.refresh_token_file, &Secret::new(next)).map_err(|e| {
            fail(
                ErrorKind::Config,
                format!(
                    "cannot save the new refresh token to {}: {e} (the old one is now invalid)",
                    cfg.refresh_token_file.display()
                ),
            )
        })?;
    }
    let ttl = Duration::from_secs(answer.expires_in.unwrap_or(86_399));
    tracing::info!(
        expires_in_s = ttl.as_secs(),
        "Refreshed the OAuth access token."
    );
    Ok((Secret::new(answer.access_token), ttl, answer.company_id))
}

/// `application/x-www-form-urlencoded` without pulling in a form crate for five fields.
fn serde_urlencoded_form(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}
