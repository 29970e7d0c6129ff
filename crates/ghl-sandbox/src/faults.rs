//! Injected faults: the ways real HTTP APIs fail, chosen deterministically from the seed and
//! the request's sequence number so a run can be replayed.
//!
//! Status faults (500, 502, 503, 429 without `Retry-After`, a 502 HTML page) replace the
//! answer before the handler runs, so a write they hit never happens. Body faults (a 200
//! whose JSON is cut short, a connection dropped mid-body) run the handler first and spoil its
//! answer, so the write happened but the client never learns it, as in real life. Applied
//! faults (a 500 or 502 after the handler ran) strike only writes that are not safe to repeat
//! (creates, upserts, bulk tags): the write happened, the answer says it failed, and a naive
//! retry makes a duplicate, as a gateway timing out in front of a busy GHL does. Which
//! requests are eligible is decided by [`super::gate`].

use super::ids::{hash, unit};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status500,
    Status502,
    Status503,
    Status429,
    Html502,
    Truncated,
    Dropped,
    Applied500,
    Applied502,
}

/// The faults any request may get.
const ALL: [Fault; 7] = [
    Fault::Status500,
    Fault::Status502,
    Fault::Status503,
    Fault::Status429,
    Fault::Html502,
    Fault::Truncated,
    Fault::Dropped,
];

/// The faults a write that is not safe to repeat may get: [`ALL`] and the applied ones.
const UNSAFE_WRITE: [Fault; 9] = [
    Fault::Status500,
    Fault::Status502,
    Fault::Status503,
    Fault::Status429,
    Fault::Html502,
    Fault::Truncated,
    Fault::Dropped,
    Fault::Applied500,
    Fault::Applied502,
];

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";

impl Fault {
    /// The fault for request number `n`, if any, at fault rate `p`; `unsafe_write` admits
    /// the applied faults.
    pub fn pick(seed: u64, n: u64, p: f64, unsafe_write: bool) -> Option<Fault> {
        if p <= 0.0 {
            return None;
        }
        let h = hash(&[seed, 0xFA17, n]);
        let kinds: &[Fault] = if unsafe_write { &UNSAFE_WRITE } else { &ALL };
        (unit(h) < p).then(|| kinds[(hash(&[h]) % kinds.len() as u64) as usize])
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Status500 => "status_500",
            Fault::Status502 => "status_502",
            Fault::Status503 => "status_503",
            Fault::Status429 => "status_429",
            Fault::Html502 => "html_502",
            Fault::Truncated => "truncated",
            Fault::Dropped => "dropped",
            Fault::Applied500 => "applied_500",
            Fault::Applied502 => "applied_502",
        }
    }

    /// True for faults that replace the answer before the handler runs.
    pub fn is_status(self) -> bool {
        !self.after_handler()
    }

    /// True for faults that let the handler run (and write) and then spoil its answer.
    pub fn after_handler(self) -> bool {
        matches!(
            self,
            Fault::Truncated | Fault::Dropped | Fault::Applied500 | Fault::Applied502
        )
    }

    /// The answer of a status fault.
    pub fn status_response(self) -> Response {
        let (code, msg) = match self {
            Fault::Status500 | Fault::Applied500 => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
            Fault::Status502 | Fault::Applied502 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
            Fault::Status503 => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            Fault::Status429 => (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
            Fault::Html502 => {
                let mut r = (StatusCode::BAD_GATEWAY, HTML_502).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return r;
            }
            Fault::Truncated | Fault::Dropped => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        };
        let body = json!({"statusCode": code.as_u16(), "message": msg});
        (code, axum::Json(body)).into_response()
    }

    /// Spoils a handler's answer whose body has been read into `bytes`.
    pub fn spoil(self, mut parts: axum::http::response::Parts, bytes: Bytes) -> Response {
        if matches!(self, Fault::Applied500 | Fault::Applied502) {
            return self.status_response();
        }
        let cut = bytes.slice(..bytes.len() / 2);
        parts.headers.remove(header::CONTENT_LENGTH);
        match self {
            Fault::Truncated => {
                parts.status = StatusCode::OK;
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
                Response::from_parts(parts, Body::from(cut))
            }
            _ => {
                // Half the body, then an error: hyper aborts the connection mid-message.
                let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                    Ok(cut),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected connection drop",
                    )),
                ];
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                Response::from_parts(parts, Body::from_stream(stream::iter(chunks)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rate_is_respected_and_every_kind_occurs() {
        let picks: Vec<Option<Fault>> = (0..20_000)
            .map(|n| Fault::pick(9, n, 0.25, false))
            .collect();
        let hits = picks.iter().filter(|p| p.is_some()).count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
        for kind in ALL {
            assert!(picks.contains(&Some(kind)), "{kind:?} never chosen");
        }
        assert!(!picks.contains(&Some(Fault::Applied500)));
        let writes: Vec<Option<Fault>> = (0..2_000).map(|n| Fault::pick(9, n, 1.0, true)).collect();
        for kind in UNSAFE_WRITE {
            assert!(writes.contains(&Some(kind)), "{kind:?} never chosen");
        }
        assert!((0..1000).all(|n| Fault::pick(9, n, 0.0, true).is_none()));
        assert!((0..1000).all(|n| Fault::pick(9, n, 1.0, false).is_some()));
        assert_eq!(Fault::pick(9, 77, 0.5, true), Fault::pick(9, 77, 0.5, true));
    }
}
