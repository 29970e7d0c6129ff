//! Tokens the sandbox accepts: the default all-powerful token, tokens given on the command
//! line (`NAME=scope,scope@loc1+loc2`), and OAuth access tokens it issues itself, with
//! single-use refresh tokens that rotate on every refresh as GHL's do.
//!
//! Agency (company) tokens reach every location of their company and mint per-location tokens
//! (`POST /oauth/locationToken`); uninstalling the app from a location ([`Auth::uninstall`])
//! voids the tokens minted for it, as GHL does when an agency removes an app.
//!
//! Expiry uses `tokio::time::Instant`, moved forward by [`Auth::advance_clock`], so a test can
//! age a token without waiting (and without depending on how fast the machine is). Deciding which scope a route needs is left to [`super::gate`].

use super::ids::hashed_id;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// Every scope a sandbox route can require.
pub const ALL_SCOPES: &[&str] = &[
    "contacts.readonly",
    "contacts.write",
    "locations/tasks.readonly",
    "locations/customFields.readonly",
    "locations/customFields.write",
    "businesses.readonly",
    "oauth.readonly",
    "oauth.write",
];

/// A token given on the command line or in [`super::SandboxConfig::tokens`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: String,
    pub scopes: Vec<String>,
    /// Location ids (or 0-based location indices) the token may reach; `None` = all.
    pub locations: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenSpecError {
    #[error("invalid token `{0}`: expected NAME=scope,scope with an optional @loc1+loc2 suffix")]
    Shape(String),
    #[error("invalid token `{0}`: the name must not be empty or contain spaces")]
    Name(String),
    #[error("invalid token `{spec}`: unknown scope `{scope}` (known: {known})")]
    Scope {
        spec: String,
        scope: String,
        known: String,
    },
}

impl FromStr for TokenSpec {
    type Err = TokenSpecError;

    /// `reader=contacts.readonly`, `writer=contacts.write,contacts.readonly@LOCID`,
    /// `other=contacts.readonly@0+1` (location indices), `none=` (no scopes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| TokenSpecError::Shape(s.into()))?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(TokenSpecError::Name(s.into()));
        }
        let (scopes, locations) = match rest.split_once('@') {
            Some((sc, locs)) => {
                let locs: Vec<String> = locs
                    .split('+')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                if locs.is_empty() {
                    return Err(TokenSpecError::Shape(s.into()));
                }
                (sc, Some(locs))
            }
            None => (rest, None),
        };
        let scopes: Vec<String> = scopes
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
        for sc in &scopes {
            let base = sc.strip_suffix(".write").map(|b| format!("{b}.readonly"));
            if !ALL_SCOPES.contains(&sc.as_str())
                && !base.is_some_and(|b| ALL_SCOPES.contains(&b.as_str()))
            {
                return Err(TokenSpecError::Scope {
                    spec: s.into(),
                    scope: sc.clone(),
                    known: ALL_SCOPES.join(", "),
                });
            }
        }
        Ok(TokenSpec {
            token: name.to_string(),
            scopes,
            locations,
        })
    }
}

/// What a token may do.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `None`: every scope.
    pub scopes: Option<Vec<String>>,
    /// Location ids; `None`: every location.
    pub locations: Option<Vec<String>>,
    pub expires_at: Option<Instant>,
    /// The company of an agency token: it may list installed locations and mint their tokens.
    pub company: Option<String>,
    /// The location an agency token minted this token for; uninstalling the app there voids it.
    pub minted_for: Option<String>,
    /// Requests the token may still make (issued tokens under [`Auth::limit_uses`]); shared by
    /// the grant's clones.
    pub uses_left: Option<std::sync::Arc<AtomicU64>>,
}

impl Grant {
    /// Every scope and location, no expiry: the default tokens.
    pub fn unlimited(company: Option<String>) -> Grant {
        Grant {
            scopes: None,
            locations: None,
            expires_at: None,
            company,
            minted_for: None,
            uses_left: None,
        }
    }

    /// A write scope implies its read scope, as in GHL.
    pub fn allows(&self, scope: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        let write = scope
            .strip_suffix(".readonly")
            .map(|b| format!("{b}.write"));
        scopes
            .iter()
            .any(|s| s == scope || Some(s) == write.as_ref())
    }

    pub fn reaches(&self, location_id: &str) -> bool {
        self.locations
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == location_id))
    }

    pub fn scope_string(&self) -> String {
        match &self.scopes {
            Some(s) => s.join(" "),
            None => ALL_SCOPES.join(" "),
        }
    }
}

/// A freshly issued OAuth token pair.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub grant: Grant,
    pub expires_in: Duration,
}

#[derive(Debug)]
pub struct Auth {
    seed: u64,
    ttl: Duration,
    /// The company every agency token of this sandbox belongs to.
    company_id: String,
    /// Locations the app was uninstalled from.
    uninstalled: RwLock<HashSet<String>>,
    tokens: RwLock<HashMap<String, Grant>>,
    /// Refresh tokens not used yet; using one removes it.
    refresh: RwLock<HashMap<String, Grant>>,
    counter: AtomicU64,
    /// How far tests have moved the token clock forward, in milliseconds.
    clock_ms: AtomicU64,
    /// Requests an issued access token may make before it is refused (0: no limit).
    max_uses: AtomicU64,
}

impl Auth {
    /// `defaults`: tokens with every scope and location; `agency_token` also has the company.
    pub fn new(
        seed: u64,
        defaults: (&str, &str),
        extra: Vec<(String, Grant)>,
        ttl: Duration,
    ) -> Auth {
        let company_id = hashed_id(&[seed, 0xC0C0]);
        let (default_token, agency_token) = defaults;
        let mut tokens = HashMap::new();
        tokens.insert(default_token.to_string(), Grant::unlimited(None));
        tokens.insert(
            agency_token.to_string(),
            Grant::unlimited(Some(company_id.clone())),
        );
        tokens.extend(extra);
        Auth {
            seed,
            ttl,
            company_id,
            uninstalled: RwLock::new(HashSet::new()),
            tokens: RwLock::new(tokens),
            refresh: RwLock::new(HashMap::new()),
            counter: AtomicU64::new(0),
            clock_ms: AtomicU64::new(0),
            max_uses: AtomicU64::new(0),
        }
    }

    /// Issued access tokens (OAuth and minted location tokens) are refused after `uses`
    /// requests, as an expired one is: a test gets its 401 mid-run after a number of
    /// requests, not after a time that depends on the machine's speed.
    pub fn limit_uses(&self, uses: Option<u64>) {
        self.max_uses.store(uses.unwrap_or(0), Ordering::Relaxed);
    }

    fn uses(&self) -> Option<std::sync::Arc<AtomicU64>> {
        let n = self.max_uses.load(Ordering::Relaxed);
        (n > 0).then(|| std::sync::Arc::new(AtomicU64::new(n)))
    }

    /// Now, as token lifetimes see it.
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.clock_ms.load(Ordering::Relaxed))
    }

    /// Move the token clock forward: tokens issued before age by `by` at once.
    pub fn advance_clock(&self, by: Duration) {
        self.clock_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// The grant of a bearer token, unless unknown, expired, or minted for a location the app
    /// was uninstalled from.
    pub fn lookup(&self, token: &str) -> Option<Grant> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let g = tokens.get(token)?;
        if matches!(g.expires_at, Some(t) if self.now() >= t) {
            return None;
        }
        if let Some(left) = &g.uses_left {
            let spent =
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            if spent.is_err() {
                return None;
            }
        }
        if g.minted_for.as_deref().is_some_and(|l| !self.installed(l)) {
            return None;
        }
        Some(g.clone())
    }

    pub fn company_id(&self) -> &str {
        &self.company_id
    }

    /// Whether the app is (still) installed on a location.
    pub fn installed(&self, location: &str) -> bool {
        !self
            .uninstalled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(location)
    }

    /// Uninstall the app from a location (or install it again): its minted tokens stop
    /// working and no new one is minted.
    pub fn set_installed(&self, location: &str, installed: bool) {
        let mut u = self
            .uninstalled
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if installed {
            u.remove(location);
        } else {
            u.insert(location.to_string());
        }
    }

    /// A location token minted from an agency grant: the agency's scopes but the oauth ones,
    /// this location only, the usual lifetime.
    pub fn mint_location_token(&self, agency: &Grant, location: &str) -> Issued {
        let access_token = self.fresh(3);
        let grant = Grant {
            scopes: agency.scopes.as_ref().map(|s| {
                s.iter()
                    .filter(|x| !x.starts_with("oauth."))
                    .cloned()
                    .collect()
            }),
            locations: Some(vec![location.to_string()]),
            expires_at: Some(self.now() + self.ttl),
            company: None,
            minted_for: Some(location.to_string()),
            uses_left: self.uses(),
        };
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(access_token.clone(), grant.clone());
        Issued {
            access_token,
            refresh_token: String::new(),
            grant,
            expires_in: self.ttl,
        }
    }

    fn fresh(&self, kind: u64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}{}",
            hashed_id(&[self.seed, 0x0A, kind, n]),
            hashed_id(&[self.seed, 0x0B, kind, n])
        )
    }

    /// A new refresh token for the given scopes, reaching every location; with `company`, the
    /// tokens it gives are agency tokens.
    pub fn issue_refresh(&self, scopes: &[&str], company: bool) -> String {
        let token = self.fresh(1);
        let grant = Grant {
            scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
            company: company.then(|| self.company_id.clone()),
            ..Grant::unlimited(None)
        };
        self.refresh
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), grant);
        token
    }

    /// Spends a refresh token: `None` if unknown or already used. The answer carries a new
    /// access token and the next refresh token.
    pub fn refresh(&self, refresh_token: &str) -> Option<Issued> {
        let grant = self
            .refresh
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(refresh_token)?;
        let access_token = self.fresh(2);
        let access = Grant {
            expires_at: Some(self.now() + self.ttl),
            uses_left: self.uses(),
            ..grant.clone()
        };
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(access_token.clone(), access.clone());
        let next = self.fresh(1);
        self.refresh
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(next.clone(), grant);
        Some(Issued {
            access_token,
            refresh_token: next,
            grant: access,
            expires_in: self.ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_specs() {
        let t: TokenSpec = "reader=contacts.readonly".parse().unwrap();
        assert_eq!(t.token, "reader");
        assert_eq!(t.scopes, vec!["contacts.readonly"]);
        assert_eq!(t.locations, None);
        let t: TokenSpec = "w=contacts.write,businesses.readonly@AAA+1"
            .parse()
            .unwrap();
        assert_eq!(t.scopes.len(), 2);
        assert_eq!(t.locations, Some(vec!["AAA".to_string(), "1".to_string()]));
        let t: TokenSpec = "none=".parse().unwrap();
        assert!(t.scopes.is_empty());
        assert!(matches!(
            "x".parse::<TokenSpec>(),
            Err(TokenSpecError::Shape(_))
        ));
        assert!(matches!(
            "=contacts.readonly".parse::<TokenSpec>(),
            Err(TokenSpecError::Name(_))
        ));
        let e = "x=contacts.read".parse::<TokenSpec>().unwrap_err();
        assert!(e.to_string().contains("contacts.readonly"));
        assert!(matches!(
            "x=contacts.readonly@".parse::<TokenSpec>(),
            Err(TokenSpecError::Shape(_))
        ));
    }

    #[test]
    fn an_issued_token_is_refused_after_its_uses() {
        let auth = Auth::new(1, ("d", "a"), Vec::new(), Duration::from_secs(3600));
        auth.limit_uses(Some(2));
        let refresh = auth.issue_refresh(&["contacts.readonly"], false);
        let issued = auth.refresh(&refresh).unwrap();
        assert!(auth.lookup(&issued.access_token).is_some());
        assert!(auth.lookup(&issued.access_token).is_some());
        assert!(auth.lookup(&issued.access_token).is_none(), "the third use");
        assert!(auth.lookup("d").is_some(), "the default token has no limit");
    }

    #[test]
    fn write_implies_read() {
        let g = Grant {
            scopes: Some(vec!["contacts.write".into()]),
            ..Grant::unlimited(None)
        };
        assert!(g.allows("contacts.readonly"));
        assert!(g.allows("contacts.write"));
        assert!(!g.allows("businesses.readonly"));
        let r = Grant {
            scopes: Some(vec!["contacts.readonly".into()]),
            ..g
        };
        assert!(!r.allows("contacts.write"));
    }

    #[tokio::test]
    async fn refresh_rotates_and_access_tokens_expire() {
        let a = Auth::new(1, ("d", "a"), Vec::new(), Duration::from_secs(60));
        let r1 = a.issue_refresh(&["contacts.readonly"], false);
        let first = a.refresh(&r1).unwrap();
        assert!(a.refresh(&r1).is_none(), "a refresh token is single-use");
        assert!(a.lookup(&first.access_token).is_some());
        let second = a.refresh(&first.refresh_token).unwrap();
        assert_ne!(second.access_token, first.access_token);
        assert!(a.lookup("d").is_some());
        let expired = Auth::new(1, ("d", "a"), Vec::new(), Duration::ZERO);
        let r = expired.issue_refresh(&["contacts.readonly"], false);
        let t = expired.refresh(&r).unwrap();
        assert!(
            expired.lookup(&t.access_token).is_none(),
            "a zero-TTL token is born expired"
        );
    }

    #[test]
    fn uninstalling_voids_the_minted_tokens_of_that_location_only() {
        let a = Auth::new(1, ("d", "agency"), Vec::new(), Duration::from_secs(60));
        let agency = a.lookup("agency").unwrap();
        assert_eq!(agency.company.as_deref(), Some(a.company_id()));
        let one = a.mint_location_token(&agency, "L1");
        let two = a.mint_location_token(&agency, "L2");
        assert!(a.lookup(&one.access_token).unwrap().reaches("L1"));
        assert!(!a.lookup(&one.access_token).unwrap().reaches("L2"));
        a.set_installed("L1", false);
        assert!(a.lookup(&one.access_token).is_none());
        assert!(a.lookup(&two.access_token).is_some());
        assert!(
            a.lookup("agency").is_some(),
            "the agency token itself stays"
        );
        a.set_installed("L1", true);
        assert!(a.lookup(&one.access_token).is_some());
    }
}
