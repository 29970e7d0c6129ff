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
    /// The run is stopping (Ctrl-C): the request was not sent.
    Cancelled,
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
    fn advice(&self) -> Option<String> {
        let joined = self.messages.join(" ").to_lowercase();
        match &self.kind {
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
            ErrorKind::RedirectedOffHost => Some("check --base-url (GHL_BASE_URL) and any proxy in between: the API is not answering at that address".into()),
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
            ErrorKind::Cancelled => "not sent: the run is stopping".to_string(),
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
