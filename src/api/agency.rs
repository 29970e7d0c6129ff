//! Agency (company) tokens: the locations an app is installed on, and one token per location
//! minted from the agency token.
//!
//! GHL's agency token cannot read a location's contacts itself: `POST /oauth/locationToken`
//! turns it into a location token (a day's lifetime), which every request of that location then
//! carries. [`LocationTokens`] caches one per location, mints it on first use, again five
//! minutes before it expires and after a 401, and one mint at a time per location. A location
//! whose token cannot be minted (the app was uninstalled there, the location is gone) fails
//! alone, as a [`ErrorKind::Forbidden`] naming it; a refused agency token fails everything.
//! Tokens live in memory only and in [`Secret`]s: never in a file, a log line or an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{Call, Client};
use super::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// The rate-limit bucket and token of company-level calls (the agency token itself).
pub const COMPANY: &str = "";
/// Mint a new location token this long before the cached one expires.
const REMINT_MARGIN: Duration = Duration::from_secs(300);
/// Installed locations per request (the spec documents no maximum; 100 is what GHL's own
/// examples page by).
const INSTALLED_PAGE: usize = 100;
const LOCATION_TOKEN: &str = "/oauth/locationToken";

#[derive(Deserialize)]
struct LocationTokenAnswer {
    access_token: String,
    expires_in: Option<f64>,
}

/// One location the app is installed on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstalledLocation {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "isInstalled")]
    pub is_installed: Option<bool>,
}

#[derive(Deserialize)]
struct InstalledAnswer {
    #[serde(default)]
    locations: Vec<InstalledLocation>,
    #[serde(default)]
    count: Option<f64>,
}

type Slot = Arc<tokio::sync::Mutex<Option<(Secret, Instant)>>>;

/// The location tokens of one agency token, by location id.
pub(crate) struct LocationTokens {
    /// From the flags; else learnt from the OAuth answer of the agency token.
    company_id: Option<String>,
    /// A slot per location; its async lock makes concurrent requests of a location wait for
    /// one mint instead of minting one each.
    slots: Mutex<HashMap<String, Slot>>,
    clock: super::Clock,
}

impl LocationTokens {
    pub(crate) fn new(company_id: Option<String>, clock: super::Clock) -> LocationTokens {
        LocationTokens {
            clock,
            company_id,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, location: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(location.to_string()).or_default().clone()
    }

    pub(crate) fn company_id(&self) -> Option<&str> {
        self.company_id.as_deref()
    }

    /// The location's token: the cached one while it has five minutes left, else a new one.
    pub(crate) async fn get(&self, client: &Client, location: &str) -> Result<Secret> {
        let slot = self.slot(location);
        let mut cached = slot.lock().await;
        if let Some((token, expires)) = cached.as_ref() {
            if self.clock.now() + REMINT_MARGIN < *expires {
                return Ok(token.clone());
            }
        }
        let (token, ttl) = mint(client, location).await?;
        let expires = self.clock.now() + ttl;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    /// After a 401 with `used`: drop it, unless another request already replaced it.
    pub(crate) async fn forget(&self, location: &str, used: &Secret) {
        let slot = self.slot(location);
        let mut cached = slot.lock().await;
        if matches!(cached.as_ref(), Some((t, _)) if t == used) {
            *cached = None;
        }
    }
}

/// `POST /oauth/locationToken` with the agency token. Minting twice after a lost answer only
/// makes a second token, so the call is retried like a read.
async fn mint(client: &Client, location: &str) -> Result<(Secret, Duration)> {
    let company = client.company_id().await?;
    let call = Call::form(
        COMPANY,
        Method::POST,
        LOCATION_TOKEN,
        vec![("companyId", company), ("locationId", location.to_string())],
    );
    let answer: LocationTokenAnswer = client.call(&call).await.map_err(|e| match e.kind {
        // The agency token itself was refused, or the API kept failing: not this location's.
        ErrorKind::Unauthorized
        | ErrorKind::RateLimited { .. }
        | ErrorKind::Server
        | ErrorKind::Transport
        | ErrorKind::Decode { .. }
        | ErrorKind::Config
        | ErrorKind::RedirectedOffHost
        | ErrorKind::Cancelled => e,
        _ => no_token_for(location, &e),
    })?;
    let ttl = Duration::from_secs_f64(answer.expires_in.unwrap_or(86_399.0).max(0.0));
    tracing::debug!(
        location,
        expires_in_s = ttl.as_secs(),
        "Minted a location token."
    );
    Ok((Secret::new(answer.access_token), ttl))
}

/// A location the agency token cannot get a token for.
fn no_token_for(location: &str, e: &Error) -> Error {
    let said = e.messages.join("; ");
    Error::new(ErrorKind::Forbidden, "POST", LOCATION_TOKEN)
        .with_status(e.status.unwrap_or(0))
        .with_message(format!(
            "the agency token cannot get a token for location {location} ({said}): the app may have been uninstalled there or the location removed"
        ))
}

/// A location's token was refused again right after a fresh one was minted: its access was
/// revoked. Only that location stops.
pub(crate) fn revoked(location: &str, e: Error) -> Error {
    let mut out = Error::new(ErrorKind::Forbidden, &e.method, &e.path)
        .with_message(format!(
            "the token minted for location {location} was refused (access revoked or the app uninstalled there)"
        ));
    out.status = e.status;
    out.messages.extend(e.messages);
    out
}

impl Client {
    /// Every location the app is installed on in the company, paged through
    /// `GET /oauth/installedLocations` with the agency token.
    pub async fn installed_locations(&self, app_id: &str) -> Result<Vec<InstalledLocation>> {
        let company = self.company_id().await?;
        let mut all = Vec::new();
        let mut skip = 0;
        loop {
            let call = Call::get(COMPANY, "/oauth/installedLocations")
                .query("companyId", &company)
                .query("appId", app_id)
                .query("isInstalled", "true")
                .query("skip", skip)
                .query("limit", INSTALLED_PAGE);
            let page: InstalledAnswer = self.call(&call).await?;
            let n = page.locations.len();
            skip += n;
            all.extend(
                page.locations
                    .into_iter()
                    .filter(|l| l.is_installed != Some(false)),
            );
            let total = page.count.map_or(usize::MAX, |c| c as usize);
            if n < INSTALLED_PAGE || skip >= total {
                break;
            }
        }
        Ok(all)
    }
}
