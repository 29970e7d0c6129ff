//! Exit codes, and [`JobError`]: the one error type every command returns, which knows its exit
//! code and whether rerunning the same command can help.
//!
//! Exit codes (documented in the README):
//! 0 success · 1 finished, but some records were rejected or failed (see the reject/failed
//! files) · 2 usage, configuration or I/O error · 3 authentication/authorisation (token, scope,
//! location) · 4 the location's daily request budget is spent (rerun later: it resumes) ·
//! 5 the API kept failing after retries (rerun: it resumes) · 6 the API answered pages that
//! cannot be followed (a repeating cursor, pages that never end): rerunning will not help · 130 interrupted (rerun:
//! it resumes).

use std::path::PathBuf;

use crate::api::{self, ErrorKind};
use crate::input::InputError;
use crate::mapping::MappingErrors;
use crate::sink::SinkError;
use crate::state::StateError;

pub const OK: i32 = 0;
pub const RECORD_FAILURES: i32 = 1;
pub const USAGE: i32 = 2;
pub const AUTH: i32 = 3;
pub const BUDGET: i32 = 4;
pub const API: i32 = 5;
pub const PAGING: i32 = 6;
/// Ctrl-C; a run stopped by SIGTERM or SIGHUP exits with 128 + that signal (143, 129).
pub const INTERRUPTED: i32 = 130;

/// Why a command stopped. Library code returns this; only `main` prints it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Flags, configuration or a mapping file that cannot work; the message says what to fix.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Api(#[from] api::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// An input file that cannot be read (it names the path): exit 2.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A mapping file that cannot work (each error names file:line:col and the fix): exit 2.
    #[error(transparent)]
    Mapping(#[from] MappingErrors),
    /// A task of the job panicked or was lost: a fault of this program, not of its input.
    #[error("internal error: {0}; please report it with the command that gave it")]
    Internal(String),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An object store (`--out s3://…`) refused or failed an operation, after its own retries.
    #[error("cannot {what} {url}: {source}")]
    Store {
        what: &'static str,
        url: String,
        #[source]
        source: object_store::Error,
    },
    /// Ctrl-C: committed work is kept.
    #[error("interrupted")]
    Interrupted,
    /// One location's failure, named.
    #[error("location {location}: {source}")]
    Location {
        location: String,
        #[source]
        source: Box<JobError>,
    },
    /// Locations that failed on their own while the others finished (in list order).
    #[error("{}", describe_failed(failed, *total))]
    Locations {
        failed: Vec<(String, JobError)>,
        total: usize,
    },
}

/// How many failed, and the first few with their causes.
fn describe_failed(failed: &[(String, JobError)], total: usize) -> String {
    const SHOWN: usize = 5;
    let mut text = format!(
        "{} of {total} locations failed (the others finished): ",
        failed.len()
    );
    let named: Vec<String> = failed
        .iter()
        .take(SHOWN)
        .map(|(l, e)| format!("location {l}: {}", e.root()))
        .collect();
    text.push_str(&named.join("; "));
    if failed.len() > SHOWN {
        text.push_str(&format!(
            "; and {} more (see the summary)",
            failed.len() - SHOWN
        ));
    }
    text
}

pub type Result<T> = std::result::Result<T, JobError>;

impl JobError {
    pub fn usage(message: impl Into<String>) -> JobError {
        JobError::Usage(message.into())
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> JobError {
        JobError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn in_location(self, location: &str) -> JobError {
        JobError::Location {
            location: location.to_string(),
            source: Box::new(self),
        }
    }

    /// The error under any location wrapper.
    pub fn root(&self) -> &JobError {
        match self {
            JobError::Location { source, .. } => source.root(),
            other => other,
        }
    }

    /// The API error behind this one, if any.
    pub fn api(&self) -> Option<&api::Error> {
        match self.root() {
            JobError::Api(e) => Some(e),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.root() {
            // The first failed location's code: all of them when they agree.
            JobError::Locations { failed, .. } => {
                failed.first().map_or(USAGE, |(_, e)| e.exit_code())
            }
            JobError::Interrupted => crate::job::signal::interrupted_exit_code(),
            JobError::Api(e) => match e.kind {
                ErrorKind::Unauthorized | ErrorKind::Forbidden => AUTH,
                ErrorKind::DailyBudgetExhausted { .. } => BUDGET,
                ErrorKind::Config | ErrorKind::RedirectedOffHost | ErrorKind::UnknownId { .. } => {
                    USAGE
                }
                ErrorKind::CursorLoop | ErrorKind::EndlessListing => PAGING,
                ErrorKind::Cancelled => crate::job::signal::interrupted_exit_code(),
                _ => API,
            },
            _ => USAGE,
        }
    }

    /// Whether the same command, run again, continues where this run stopped and can succeed:
    /// true for an interruption, a spent daily budget and retries that ran out; false where
    /// something must be fixed first (token, scope, access, mapping, flags, disk).
    pub fn rerun_resumes(&self) -> bool {
        match self.root() {
            JobError::Locations { failed, .. } => failed.iter().all(|(_, e)| e.rerun_resumes()),
            JobError::Interrupted => true,
            _ if self.api().is_some_and(|a| a.kind == ErrorKind::Cancelled) => true,
            _ => match self.exit_code() {
                BUDGET => true,
                API => !self.api().is_some_and(api::Error::needs_a_change),
                _ => false,
            },
        }
    }

    /// Errors that concern one location only (its daily budget, a token without access to
    /// it or whose access was revoked, answers about it that kept failing or cannot be paged):
    /// the other locations of the run go on. A refused token or scope, flags, mapping, state
    /// and disk concern every location.
    pub fn is_location_specific(&self) -> bool {
        self.api().is_some_and(|a| {
            matches!(
                a.kind,
                ErrorKind::DailyBudgetExhausted { .. }
                    | ErrorKind::Forbidden
                    | ErrorKind::Server
                    | ErrorKind::Transport
                    | ErrorKind::Decode { .. }
                    | ErrorKind::RateLimited { .. }
                    | ErrorKind::CursorLoop
                    | ErrorKind::EndlessListing
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_advice_follow_the_root_cause() {
        let auth = api::Error::new(ErrorKind::Unauthorized, "GET", "/contacts/");
        let e = JobError::from(auth).in_location("L1");
        assert_eq!(e.exit_code(), AUTH);
        assert!(!e.rerun_resumes());
        assert!(e.to_string().starts_with("location L1: "), "{e}");

        let server = api::Error::new(ErrorKind::Server, "GET", "/contacts/x/notes");
        assert_eq!(JobError::from(server).exit_code(), API);
        assert!(JobError::Interrupted.rerun_resumes());
        assert_eq!(JobError::usage("bad flag").exit_code(), USAGE);

        let budget = api::Error::new(
            ErrorKind::DailyBudgetExhausted {
                resets_in: std::time::Duration::from_secs(60),
            },
            "GET",
            "/contacts/",
        );
        let e = JobError::from(budget).in_location("L2");
        assert!(e.is_location_specific());
        assert_eq!(e.exit_code(), BUDGET);
        assert!(e.rerun_resumes());
    }

    #[test]
    fn a_refusal_no_rerun_fixes_says_what_to_change_instead() {
        let field = api::Error::new(
            ErrorKind::Unprocessable,
            "POST",
            "/locations/L1/customFields",
        )
        .with_message("dataType must be one of …");
        let e = JobError::from(field);
        assert_eq!(e.exit_code(), API);
        assert!(!e.rerun_resumes());
        assert!(e.to_string().contains("create that field in GHL"), "{e}");
        let gone = api::Error::new(ErrorKind::NotFound, "GET", "/locations/L1/customFields");
        let e = JobError::from(gone);
        assert!(!e.rerun_resumes());
        assert!(e.to_string().contains("locations/customFields"), "{e}");
        let down = api::Error::new(ErrorKind::Server, "POST", "/locations/L1/customFields");
        assert!(
            JobError::from(down).rerun_resumes(),
            "retries that ran out: a rerun may pass"
        );
    }

    #[test]
    fn failed_locations_name_each_and_take_the_first_code() {
        let revoked = api::Error::new(ErrorKind::Forbidden, "GET", "/contacts/");
        let down = api::Error::new(ErrorKind::Server, "GET", "/contacts/x/notes");
        let e = JobError::Locations {
            failed: vec![
                ("L3".into(), JobError::from(revoked)),
                ("L9".into(), JobError::from(down)),
            ],
            total: 20,
        };
        assert_eq!(e.exit_code(), AUTH);
        assert!(!e.rerun_resumes(), "an access problem needs fixing first");
        let text = e.to_string();
        assert!(text.starts_with("2 of 20 locations failed"), "{text}");
        assert!(
            text.contains("location L3: ") && text.contains("location L9: "),
            "{text}"
        );
    }
}
