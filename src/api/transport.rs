//! Reading what came back over HTTP, shared by the client's calls and the OAuth refresh: a
//! transport error in words (never its URL), the `message` of a GHL error body, and whether an
//! answer is an HTML page where JSON was promised. Deciding what to do about any of it is left
//! to `client` (retries) and `auth` (refresh failures).
//!
//! It also holds the two things that bound what an answer can do to us and what a log can show:
//! [`read_capped`] stops reading a body at [`MAX_BODY_BYTES`] (a broken server's endless or
//! 100 MB answer must not fill memory), and the HTTP trace: at `-vv` one line per exchange with
//! method, path, status and time, never a header, a query or a body; bodies only with
//! `--trace-bodies`, and then with every token-like value and the token itself removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The largest answer read. A contacts page of 100 with custom fields is well under 1 MiB.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// How much of a body `--trace-bodies` shows.
const TRACE_BODY_BYTES: usize = 16 << 10;

/// Set once by `main` from `--trace-bodies`; read on every exchange.
static TRACE_BODIES: AtomicBool = AtomicBool::new(false);

/// Turn body tracing on or off for the process (`--trace-bodies`).
pub fn set_trace_bodies(on: bool) {
    TRACE_BODIES.store(on, Ordering::Relaxed);
}

/// One line per HTTP exchange, at trace level (`-vv`): no headers, no query, no body.
pub(crate) fn trace_exchange(method: &str, path: &str, status: Option<u16>, took: Duration) {
    let ms = took.as_millis() as u64;
    match status {
        Some(status) => tracing::trace!(target: "ghl_etl::http", method, path, status, ms, "HTTP."),
        None => tracing::trace!(target: "ghl_etl::http", method, path, ms, "HTTP: no answer."),
    }
}

/// With `--trace-bodies` (and trace level on), log a body with its secrets removed.
pub(crate) fn trace_body(direction: &'static str, path: &str, bytes: &[u8], token: &str) {
    if TRACE_BODIES.load(Ordering::Relaxed)
        && tracing::enabled!(target: "ghl_etl::http", tracing::Level::TRACE)
    {
        let body = redact_body(bytes, token);
        tracing::trace!(target: "ghl_etl::http", direction, path, body = %body, "HTTP body.");
    }
}

/// Keys whose values are never shown, whatever the endpoint.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "authorization",
        "password",
        "code",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if is_secret_key(k) {
                    *val = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_value(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// A body fit for a log: JSON with secret-named keys blanked, the token's text replaced
/// wherever it appears (an echo in an error message), `Bearer ...` cut, and cut short.
pub(crate) fn redact_body(bytes: &[u8], token: &str) -> String {
    let mut text = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut v) => {
            redact_value(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    if !token.is_empty() {
        text = text.replace(token, "[redacted]");
    }
    while let Some(at) = text.find("Bearer ") {
        let end = text[at + 7..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .map_or(text.len(), |e| at + 7 + e);
        text.replace_range(at..end, "[redacted]");
    }
    if text.len() > TRACE_BODY_BYTES {
        let mut cut = TRACE_BODY_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = text.len();
        text.truncate(cut);
        text.push_str(&format!("... ({total} bytes in all)"));
    }
    text
}

/// Why a body was not read whole.
pub(crate) enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Read an answer's body, giving up past `limit` bytes (declared or received).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A transport error in words, without the URL (which could carry a query secret).
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else if e.is_request() {
        "the request could not be sent"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    }
}

/// The `message` of a GHL error body: a string, or a list of strings for 422s.
pub(crate) fn server_message(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match v.get("message")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Some(other.to_string()),
    }
}

/// An HTML page (a proxy's error page) where JSON was promised.
pub(crate) fn is_html(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traced_bodies_lose_tokens_and_secret_keys() {
        let body = br#"{"access_token":"AT-1","refresh_token":"RT-2","client_secret":"CS",
            "nested":[{"apiKey":"K"}],"message":"token tok-XYZ is invalid","name":"Ada",
            "header":"Bearer tok-XYZ"}"#;
        let out = redact_body(body, "tok-XYZ");
        for secret in ["AT-1", "RT-2", "CS", "\"K\"", "tok-XYZ"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("Ada"), "{out}");
        let text = redact_body(b"oops Bearer abc.def more", "");
        assert_eq!(text, "oops [redacted] more");
        let long = redact_body(&vec![b'a'; 100_000], "");
        assert!(long.len() < 17_000 && long.ends_with("(100000 bytes in all)"));
    }

    #[test]
    fn server_messages_single_and_list() {
        assert_eq!(
            server_message(br#"{"message":"Invalid token"}"#).unwrap(),
            "Invalid token"
        );
        assert_eq!(
            server_message(br#"{"message":["email must be an email","x"]}"#).unwrap(),
            "email must be an email; x"
        );
    }
}
