//! `api::Error`: what went wrong with one request, and whether trying again can help.
//!
//! The error names the method, the route and the status, never the token, and never a query
//! string that could carry one. Its predicates (`is_retryable`, `is_auth`) are what the retry
//! policy and the commands decide on.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the token is invalid or expired, or lacks the scope for this route.
    Unauthorized,
    /// 403: the token has no access to this location.
    Forbidden,
    /// 400: the request is malformed (missing Version header, inactive location, ...), or
    /// names a record that does not exist: GHL answers "Contact not found" with a 400.
    BadRequest,
    /// 404: the record does not exist (any more).
    NotFound,
    /// 422: the body was refused; `messages` names the fields.
    Unprocessable,
    /// 429: over the rate limit.
    RateLimited { retry_after: Option<Duration> },
    /// The location's daily request budget is spent; resume after `resets_in`.
    DailyBudgetExhausted { resets_in: Duration },
    /// 5xx and 408.
    Server,
    /// Any other status.
    OtherStatus,
    /// The answer was not the JSON promised (HTML error page, truncated body, wrong shape).
    Decode { json_path: String },
    /// Connection refused or reset, timeouts.
    Transport,
    /// The client was configured in a way that cannot work (plain http to a remote host, ...).
    Config,
    /// The server redirected to another host. Not followed (the token would go with it), and
    /// not retried: the base URL or a proxy in front of it is wrong.
    RedirectedOffHost,
    /// A pagination cursor repeated: continuing would loop forever.
    CursorLoop,
    /// A listing went on far past every count the server gave for it (pages that never end).
    EndlessListing,
    /// The run is stopping (Ctrl-C): the request was not sent.
    Cancelled,
    /// A record the whole run names (a workflow, campaign, business or user id given on the
    /// command line) does not exist in the location: every other contact would fail the same
    /// way. Set by the endpoints that take such an id ([`Error::naming_run_wide_id`]).
    UnknownId { what: &'static str },
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub status: Option<u16>,
    /// The server's `message` (422 lists one per invalid field) or our own explanation.
    pub messages: Vec<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, method: &str, path: &str) -> Error {
        Error {
            kind,
            method: method.to_string(),
            path: path.to_string(),
            status: None,
            messages: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Error {
        self.status = Some(status);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.messages.push(message.into());
        self
    }

    /// Worth another attempt: 429, 5xx, 408, transport failures and bodies that were not the
    /// JSON promised. Never 400/401/403/404/422: repeating them changes nothing.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited { .. }
                | ErrorKind::Server
                | ErrorKind::Transport
                | ErrorKind::Decode { .. }
        )
    }

    /// A token or scope problem: the run stops at once.
    pub fn is_auth(&self) -> bool {
        matches!(self.kind, ErrorKind::Unauthorized | ErrorKind::Forbidden)
    }

    /// No other request of the run can succeed either: the token or scope was refused, or
    /// the API redirected off its host. A job stops at once rather than failing every row.
    pub fn stops_the_run(&self) -> bool {
        self.is_auth() || self.kind == ErrorKind::RedirectedOffHost
    }

    /// The one stop policy of the row jobs (load, tag, bulk): whether this error ends the job
    /// rather than failing one row. What no other row can escape either ([`Error::stops_the_run`],
    /// an id the whole run names, a client that cannot work), and what must wait for a rerun:
    /// a spent daily budget (exit 4, the rerun resumes the rows not yet settled) or a run that
    /// is stopping. Every other error fails only its row.
    pub fn stops_the_job(&self) -> bool {
        self.stops_the_run()
            || matches!(
                self.kind,
                ErrorKind::DailyBudgetExhausted { .. }
                    | ErrorKind::Cancelled
                    | ErrorKind::Config
                    | ErrorKind::UnknownId { .. }
                    | ErrorKind::CursorLoop
                    | ErrorKind::EndlessListing
            )
    }

    /// Whether a failed write may have acted: no answer, a 5xx, an answer that was not the
    /// JSON promised. A 4xx is the API refusing, and a 429 the limiter in front of it: nothing
    /// happened (`../shared/ghl-api/NOTES.md`, "A 429 never acted").
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Server | ErrorKind::Transport | ErrorKind::Decode { .. }
        )
    }

    /// For an endpoint that takes an id the whole run names (`what`: "workflow", "campaign",
    /// "business", "user"): a 400, 404 or 422 saying that such a record is not found becomes
    /// [`ErrorKind::UnknownId`], which stops the job instead of failing every contact.
    pub fn naming_run_wide_id(mut self, what: &'static str) -> Error {
        let refused = matches!(
            self.kind,
            ErrorKind::BadRequest | ErrorKind::NotFound | ErrorKind::Unprocessable
        );
        let says = self.messages.iter().any(|m| {
            let m = m.to_lowercase();
            m.contains(&format!("{what} not found")) || m.contains(&format!("{what} id not found"))
        });
        if refused && says {
            self.kind = ErrorKind::UnknownId { what };
        }
        self
    }

    /// A 401 that names a missing scope (the token itself is fine).
    pub fn is_scope_error(&self) -> bool {
        self.kind == ErrorKind::Unauthorized
            && self
                .messages
                .iter()
                .any(|m| m.to_lowercase().contains("scope"))
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The contact the request named does not exist (any more): a 404, or the 400
    /// "Contact not found" GHL usually answers instead. A 400 that says something else is
    /// not this, though the contact may still be gone: see [`Error::is_bad_request`].
    pub fn is_contact_not_found(&self) -> bool {
        match self.kind {
            ErrorKind::NotFound => true,
            ErrorKind::BadRequest => self.messages.iter().any(|m| {
                let m = m.to_lowercase();
                m.contains("contact") && m.contains("not found")
            }),
            _ => false,
        }
    }

    pub fn is_bad_request(&self) -> bool {
        self.kind == ErrorKind::BadRequest
    }

    /// What the user should do about it, where we know.
    /// A refusal that the same request, sent again, meets again (a 400, 404 or 422 that
    /// stopped a whole job): a rerun alone does not help, something must change first.
    pub fn needs_a_change(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadRequest | ErrorKind::NotFound | ErrorKind::Unprocessable
        )
    }

    fn advice(&self) -> Option<String> {
        let joined = self.messages.join(" ").to_lowercase();
        let fields = self.path.contains("/customFields");
        match &self.kind {
            ErrorKind::NotFound if fields => Some(
                "this location's custom fields cannot be reached: check --location and that the token has locations/customFields.readonly and .write; or create the fields in GHL and load without --create-missing-fields".into(),
            ),
            ErrorKind::BadRequest | ErrorKind::Unprocessable if fields => Some(
                "GHL refused the field definition: create that field in GHL by hand with the same name (or leave its column out of the mapping), then rerun".into(),
            ),

            ErrorKind::Unauthorized if joined.contains("scope") => Some(format!(
                "the token lacks the scope this call needs ({}); add it to the Private Integration or OAuth app, or use a token that has it",
                required_scope(&self.method, &self.path)
            )),
            ErrorKind::Unauthorized => Some(
                "the token was refused: check GHL_TOKEN / GHL_TOKEN_FILE (or the OAuth refresh token), and that it belongs to this environment".into(),
            ),
            ErrorKind::Forbidden => Some("the token has no access to this location: use a token issued for it, or check --location".into()),
            ErrorKind::DailyBudgetExhausted { resets_in } => Some(format!(
                "the location's daily request budget is spent; rerun the same command in {} to resume where it stopped",
                human_duration(*resets_in)
            )),
            ErrorKind::CursorLoop => Some("the API answered a page it had already answered; this is a server-side pagination fault".into()),
            ErrorKind::EndlessListing => Some("the server's pages do not end: report it to whoever runs the API (or the proxy in front of it); nothing of this listing was committed past the last part".into()),
            ErrorKind::RedirectedOffHost => Some("check --base-url (GHL_BASE_URL) and any proxy in between: the API is not answering at that address".into()),
            ErrorKind::UnknownId { what } => Some(format!("check the {what} id given on the command line: it must exist in the location")),
            _ => None,
        }
    }
}

/// The scope GHL's spec requires for a route, for error messages.
pub fn required_scope(method: &str, path: &str) -> &'static str {
    let write = !matches!(method, "GET") && !path.ends_with("/search");
    if path.contains("/tasks/search") {
        "locations/tasks.readonly"
    } else if path.contains("/customFields") {
        "locations/customFields.readonly"
    } else if path.starts_with("/businesses") {
        "businesses.readonly"
    } else if write {
        "contacts.write"
    } else {
        "contacts.readonly"
    }
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            ErrorKind::Unauthorized => "unauthorized".to_string(),
            ErrorKind::Forbidden => "forbidden".to_string(),
            ErrorKind::BadRequest => "bad request".to_string(),
            ErrorKind::NotFound => "not found".to_string(),
            ErrorKind::Unprocessable => "request refused as invalid".to_string(),
            ErrorKind::RateLimited { .. } => "rate limited".to_string(),
            ErrorKind::DailyBudgetExhausted { .. } => "daily request budget exhausted".to_string(),
            ErrorKind::Server => "server error".to_string(),
            ErrorKind::OtherStatus => "unexpected status".to_string(),
            ErrorKind::Decode { json_path } if json_path.is_empty() => {
                "answer was not the JSON expected".to_string()
            }
            ErrorKind::Decode { json_path } => {
                format!("answer was not the JSON expected (at `{json_path}`)")
            }
            ErrorKind::Transport => "connection failed".to_string(),
            ErrorKind::Config => "invalid client configuration".to_string(),
            ErrorKind::RedirectedOffHost => "redirected off the base host".to_string(),
            ErrorKind::CursorLoop => "pagination cursor repeated".to_string(),
            ErrorKind::EndlessListing => "the listing does not end".to_string(),
            ErrorKind::Cancelled => "not sent: the run is stopping".to_string(),
            ErrorKind::UnknownId { what } => format!("no such {what}"),
        };
        write!(f, "{} {}: {}", self.method, self.path, what)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join("; "))?;
        }
        if let Some(advice) = self.advice() {
            write!(f, " — {advice}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, message: &str) -> Error {
        Error::new(kind, "POST", "/contacts/c1/workflow/w1").with_message(message)
    }

    #[test]
    fn one_stop_policy_for_the_row_jobs() {
        let budget = ErrorKind::DailyBudgetExhausted {
            resets_in: Duration::from_secs(60),
        };
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::RedirectedOffHost,
            budget,
            ErrorKind::Cancelled,
            ErrorKind::Config,
            ErrorKind::UnknownId { what: "workflow" },
        ] {
            assert!(err(kind.clone(), "x").stops_the_job(), "{kind:?}");
        }
        for kind in [
            ErrorKind::BadRequest,
            ErrorKind::NotFound,
            ErrorKind::Unprocessable,
            ErrorKind::Server,
            ErrorKind::Transport,
        ] {
            assert!(!err(kind.clone(), "x").stops_the_job(), "{kind:?}");
        }
    }

    #[test]
    fn a_missing_run_wide_id_is_told_from_a_missing_contact() {
        let wf = err(ErrorKind::BadRequest, "Workflow not found").naming_run_wide_id("workflow");
        assert_eq!(wf.kind, ErrorKind::UnknownId { what: "workflow" });
        assert!(wf.to_string().contains("check the workflow id"), "{wf}");
        let contact =
            err(ErrorKind::BadRequest, "Contact not found").naming_run_wide_id("workflow");
        assert_eq!(contact.kind, ErrorKind::BadRequest);
        assert!(contact.is_contact_not_found());
        let server = err(ErrorKind::Server, "workflow not found").naming_run_wide_id("workflow");
        assert_eq!(server.kind, ErrorKind::Server);
    }

    #[test]
    fn only_answers_that_may_have_acted_are_unknown_outcomes() {
        assert!(err(ErrorKind::Server, "").outcome_unknown());
        assert!(err(ErrorKind::Transport, "").outcome_unknown());
        assert!(err(
            ErrorKind::Decode {
                json_path: String::new()
            },
            ""
        )
        .outcome_unknown());
        let limited = ErrorKind::RateLimited { retry_after: None };
        assert!(!err(limited, "").outcome_unknown());
        assert!(!err(ErrorKind::Unprocessable, "").outcome_unknown());
    }
}
