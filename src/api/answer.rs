//! What one answer means: its status, headers and body classified as the body to use, or the
//! [`Error`] it is, with what the client must do about it (a counter to add to, the location
//! to pause, the token to forget).
//!
//! [`classify`] is pure: no I/O, no limiter, no tracing, and the clock comes in as an argument,
//! so every status class is tested here without a server. `Client::attempt` sends, reads, and
//! then carries out what the [`Answer`] asks; whether to try again is `Error::is_retryable`'s.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::error::{Error, ErrorKind, Result};
use super::transport::{describe_transport, is_html, server_message, ReadError, MAX_BODY_BYTES};

/// The client counter an answer adds one to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    Throttled,
    NotFound,
    ServerError,
    BadBody,
    TransportError,
}

/// How long a 429 pauses its location (every task of it, not just the one that was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// The answer's `Retry-After`.
    RetryAfter(Duration),
    /// No usable `Retry-After`, but `X-RateLimit-Remaining: 0`: the window is full (see
    /// [`super::limiter::LocationLimiter::throttle_pause`]).
    Window,
}

/// One answer, classified.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The body of a usable 2xx, or the error the answer is.
    pub result: Result<Bytes>,
    pub tally: Option<Tally>,
    /// Set on every 429, the daily budget's included.
    pub pause: Option<Pause>,
    /// A 401 that is not about a scope: the token was refused, so the next try needs another.
    pub forget_token: bool,
}

impl Answer {
    fn ok(bytes: Bytes) -> Answer {
        Answer {
            result: Ok(bytes),
            tally: None,
            pause: None,
            forget_token: false,
        }
    }

    fn failed(error: Error, tally: Option<Tally>) -> Answer {
        Answer {
            result: Err(error),
            tally,
            pause: None,
            forget_token: false,
        }
    }
}

/// Classify the answer to `method path`: its status, headers and the body as read (`read`),
/// at time `now` (a daily budget resets at midnight UTC).
pub(crate) fn classify(
    method: &str,
    path: &str,
    status: StatusCode,
    headers: &HeaderMap,
    read: std::result::Result<Bytes, ReadError>,
    now: DateTime<Utc>,
) -> Answer {
    let fail = |kind: ErrorKind| Error::new(kind, method, path).with_status(status.as_u16());
    let bytes = match read {
        Ok(b) => b,
        Err(ReadError::Transport(e)) => {
            let e = fail(ErrorKind::Transport).with_message(describe_transport(&e));
            return Answer::failed(e, Some(Tally::TransportError));
        }
        Err(ReadError::TooLarge) => {
            let e = fail(no_json()).with_message(format!(
                "the answer is larger than {} MiB; stopped reading it",
                MAX_BODY_BYTES >> 20
            ));
            return Answer::failed(e, Some(Tally::BadBody));
        }
    };
    if status.is_redirection() {
        // Only a redirect the policy refused arrives here: one off the base host.
        let e = fail(ErrorKind::RedirectedOffHost).with_message(format!(
            "the server redirected to {}, off the base URL (another scheme, host or port); not followed, so the token stays with the base URL",
            redirect_host(headers)
        ));
        return Answer::failed(e, None);
    }
    if status.is_success() {
        return match unusable_body(headers, &bytes) {
            Some(why) => Answer::failed(fail(no_json()).with_message(why), Some(Tally::BadBody)),
            None => Answer::ok(bytes),
        };
    }
    refusal(fail, status, headers, &bytes, now)
}

/// A status that is neither a success nor a redirect. The server's `message`, if any, goes
/// into the error (for a 422, one per invalid field).
fn refusal(
    fail: impl Fn(ErrorKind) -> Error,
    status: StatusCode,
    headers: &HeaderMap,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Answer {
    let message = server_message(bytes);
    let err = |kind: ErrorKind| match &message {
        Some(m) => fail(kind).with_message(m.clone()),
        None => fail(kind),
    };
    let (error, tally) = match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let ra = retry_after(headers);
            let text = message.clone().unwrap_or_default().to_lowercase();
            let kind = if text.contains("daily") {
                ErrorKind::DailyBudgetExhausted {
                    resets_in: until_utc_midnight(now),
                }
            } else {
                ErrorKind::RateLimited { retry_after: ra }
            };
            // The whole location pauses only for what the answer says: its `Retry-After`, or
            // rate headers that say the window is full. A bare 429 (a proxy's, a hiccup) is
            // retried after that request's own backoff; pausing every request for each of them
            // ran a load at 0.59 of the allowed rate under 20% faults.
            let full = super::limiter::RateHeaders::parse(headers).remaining == Some(0);
            let pause = match ra.filter(|d| !d.is_zero()) {
                Some(d) => Some(Pause::RetryAfter(d)),
                None if full => Some(Pause::Window),
                None => None,
            };
            return Answer {
                pause,
                ..Answer::failed(err(kind), Some(Tally::Throttled))
            };
        }
        StatusCode::UNAUTHORIZED => {
            let e = err(ErrorKind::Unauthorized);
            return Answer {
                forget_token: !e.is_scope_error(),
                ..Answer::failed(e, None)
            };
        }
        StatusCode::FORBIDDEN => (err(ErrorKind::Forbidden), None),
        StatusCode::BAD_REQUEST => (err(ErrorKind::BadRequest), None),
        StatusCode::NOT_FOUND => (err(ErrorKind::NotFound), Some(Tally::NotFound)),
        StatusCode::UNPROCESSABLE_ENTITY => (err(ErrorKind::Unprocessable), None),
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            let e = if is_html(headers) {
                fail(ErrorKind::Server).with_message("an HTML error page came instead of JSON")
            } else {
                err(ErrorKind::Server)
            };
            (e, Some(Tally::ServerError))
        }
        _ => (err(ErrorKind::OtherStatus), None),
    };
    Answer::failed(error, tally)
}

/// The kind of a body that is not the JSON promised, before any field is looked at.
fn no_json() -> ErrorKind {
    ErrorKind::Decode {
        json_path: String::new(),
    }
}

/// The host a redirect points to, for the error (never the whole URL: it may carry a query).
fn redirect_host(headers: &HeaderMap) -> String {
    headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_else(|| "an unknown place".into())
}

/// Why a 2xx answer cannot be used, if it cannot: an HTML page, bytes that are not UTF-8
/// (serde skips unread strings without checking them), JSON cut short or garbled. Each is a
/// transient fault, so it is checked here, inside the retry loop, before the typed decode.
fn unusable_body(headers: &HeaderMap, bytes: &[u8]) -> Option<String> {
    if is_html(headers) {
        return Some("an HTML page came instead of JSON".into());
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Some(format!(
            "the answer is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .err()
        .map(|e| format!("invalid JSON ({e})"))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// When a location's daily budget comes back: GHL resets it at midnight UTC.
pub(crate) fn until_utc_midnight(now: DateTime<Utc>) -> Duration {
    let tomorrow = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    (tomorrow - now)
        .to_std()
        .unwrap_or(Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};

    /// 2024-05-01 23:00:00 UTC: an hour before the daily budget resets.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &'static [u8]) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let status = StatusCode::from_u16(status).unwrap();
        classify(
            "GET",
            "/contacts/x",
            status,
            &map,
            Ok(Bytes::from_static(body)),
            now(),
        )
    }

    fn json(status: u16, body: &'static [u8]) -> Answer {
        answer(status, &[(CONTENT_TYPE.as_str(), "application/json")], body)
    }

    fn error(a: &Answer) -> &Error {
        a.result.as_ref().expect_err("an error")
    }

    /// An answer with no side effect but its error.
    fn plain(a: &Answer, kind: ErrorKind, status: u16) {
        let e = error(a);
        assert_eq!(e.kind, kind);
        assert_eq!(e.status, Some(status));
        assert_eq!((e.method.as_str(), e.path.as_str()), ("GET", "/contacts/x"));
        assert_eq!((a.pause, a.forget_token), (None, false));
    }

    #[test]
    fn a_2xx_with_json_is_its_body() {
        let a = json(200, br#"{"contacts":[]}"#);
        assert_eq!(a.result.as_deref().unwrap(), br#"{"contacts":[]}"#);
        assert_eq!((a.tally, a.pause, a.forget_token), (None, None, false));
        assert!(json(201, b"{}").result.is_ok());
    }

    #[test]
    fn a_2xx_that_is_not_json_is_a_bad_body() {
        for (headers, body, says) in [
            (&[][..], &b"{\"contacts\":["[..], "invalid JSON"),
            (
                &[][..],
                &b"{\"a\":\"\xff\"}"[..],
                "not valid UTF-8 (at byte 6)",
            ),
            (
                &[("content-type", "text/html; charset=utf-8")][..],
                &b"<html></html>"[..],
                "an HTML page",
            ),
        ] {
            let a = answer(200, headers, body);
            plain(&a, no_json(), 200);
            assert_eq!(a.tally, Some(Tally::BadBody));
            let e = error(&a);
            assert!(e.messages[0].contains(says), "{e}");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn a_body_too_large_is_a_bad_body() {
        let a = classify(
            "GET",
            "/contacts/",
            StatusCode::OK,
            &HeaderMap::new(),
            Err(ReadError::TooLarge),
            now(),
        );
        assert_eq!(error(&a).kind, no_json());
        assert_eq!(a.tally, Some(Tally::BadBody));
        assert!(error(&a).messages[0].contains("larger than"));
    }

    #[test]
    fn a_401_forgets_the_token_unless_it_names_a_scope() {
        let a = json(401, br#"{"message":"Invalid JWT"}"#);
        assert_eq!(error(&a).kind, ErrorKind::Unauthorized);
        assert!(a.forget_token);
        assert_eq!(a.tally, None);
        let a = json(
            401,
            br#"{"message":"The token is not authorized for this scope."}"#,
        );
        assert!(error(&a).is_scope_error());
        assert!(!a.forget_token);
    }

    #[test]
    fn refusals_that_retrying_cannot_help() {
        let a = json(403, br#"{"message":"no access to this location"}"#);
        plain(&a, ErrorKind::Forbidden, 403);
        assert_eq!(error(&a).messages, ["no access to this location"]);

        let a = json(400, br#"{"message":"Contact not found"}"#);
        plain(&a, ErrorKind::BadRequest, 400);
        assert!(error(&a).is_contact_not_found());
        assert!(!json(400, br#"{"message":"Bad phone"}"#)
            .result
            .unwrap_err()
            .is_contact_not_found());

        let a = json(404, b"{}");
        plain(&a, ErrorKind::NotFound, 404);
        assert_eq!(a.tally, Some(Tally::NotFound));

        let a = json(
            422,
            br#"{"message":["email must be an email","phone is invalid"]}"#,
        );
        plain(&a, ErrorKind::Unprocessable, 422);
        assert_eq!(
            error(&a).messages,
            ["email must be an email; phone is invalid"]
        );

        let a = json(418, b"");
        plain(&a, ErrorKind::OtherStatus, 418);
        assert!(error(&a).messages.is_empty());
        for a in [&a, &json(403, b"{}"), &json(422, b"{}")] {
            assert!(!error(a).is_retryable());
        }
    }

    #[test]
    fn a_429_pauses_the_location_for_its_retry_after() {
        let a = answer(429, &[(RETRY_AFTER.as_str(), "2.5")], b"");
        let ra = Duration::from_millis(2_500);
        assert_eq!(
            error(&a).kind,
            ErrorKind::RateLimited {
                retry_after: Some(ra)
            }
        );
        assert_eq!(a.pause, Some(Pause::RetryAfter(ra)));
        assert_eq!(a.tally, Some(Tally::Throttled));
        assert!(error(&a).is_retryable());
    }

    #[test]
    fn a_429_without_a_usable_retry_after_pauses_a_window_only_when_the_headers_say_full() {
        for (headers, ra) in [
            (&[][..], None),
            (&[(RETRY_AFTER.as_str(), "0")][..], Some(Duration::ZERO)),
            (&[(RETRY_AFTER.as_str(), "soon")][..], None),
            (&[(RETRY_AFTER.as_str(), "-1")][..], None),
        ] {
            let a = answer(429, headers, b"");
            assert_eq!(error(&a).kind, ErrorKind::RateLimited { retry_after: ra });
            assert_eq!(
                a.pause, None,
                "a bare 429 pauses only its request: {headers:?}"
            );
            assert_eq!(a.tally, Some(Tally::Throttled));
        }
        let full = [("x-ratelimit-remaining", "0"), ("x-ratelimit-max", "100")];
        let a = answer(429, &full, b"");
        assert_eq!(a.pause, Some(Pause::Window));
    }

    #[test]
    fn a_429_about_the_daily_limit_waits_for_midnight_utc() {
        let a = answer(
            429,
            &[(RETRY_AFTER.as_str(), "60")],
            br#"{"message":"Daily limit reached"}"#,
        );
        assert_eq!(
            error(&a).kind,
            ErrorKind::DailyBudgetExhausted {
                resets_in: Duration::from_secs(3_600)
            }
        );
        assert!(!error(&a).is_retryable());
        assert_eq!(a.pause, Some(Pause::RetryAfter(Duration::from_secs(60))));
        assert_eq!(a.tally, Some(Tally::Throttled));
    }

    #[test]
    fn server_errors_and_408_are_retried() {
        for status in [500, 502, 503, 408] {
            let a = json(status, br#"{"message":"try later"}"#);
            plain(&a, ErrorKind::Server, status);
            assert_eq!(a.tally, Some(Tally::ServerError));
            assert_eq!(error(&a).messages, ["try later"]);
            assert!(error(&a).is_retryable());
        }
        let a = answer(
            502,
            &[("content-type", "text/html")],
            b"<h1>Bad gateway</h1>",
        );
        plain(&a, ErrorKind::Server, 502);
        assert_eq!(
            error(&a).messages,
            ["an HTML error page came instead of JSON"]
        );
    }

    #[test]
    fn a_redirect_off_host_names_only_its_origin() {
        let a = answer(
            302,
            &[(LOCATION.as_str(), "https://evil.example/steal?token=x")],
            b"",
        );
        plain(&a, ErrorKind::RedirectedOffHost, 302);
        assert_eq!(a.tally, None);
        let e = error(&a);
        assert!(
            e.messages[0].contains("redirected to https://evil.example, off the base URL"),
            "{e}"
        );
        assert!(!e.to_string().contains("token=x"), "{e}");
        assert!(!e.is_retryable() && e.stops_the_run());
        let a = answer(307, &[], b"");
        assert!(error(&a).messages[0].contains("an unknown place"));
    }

    #[test]
    fn midnight_utc() {
        assert_eq!(until_utc_midnight(now()), Duration::from_secs(3_600));
    }
}
