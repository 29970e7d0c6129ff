//! Hostile answers: not the flaky failures of [`super::faults`] but a server (or something in
//! front of it) that answers *wrongly*: wrong JSON types where the spec promises strings, a
//! 100 MB body, a body that trickles forever, invalid UTF-8, a redirect to another host, a 200
//! carrying an HTML page. A test arms one with [`super::Sandbox::set_hostile`] for the next N
//! API answers; the handler runs first, so a write that is answered wrongly did happen.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostile {
    /// Every string of the records in the answer's first list becomes a number or an object.
    WrongTypes,
    /// A 200 whose JSON body is 100 MB (it never ends properly either).
    HugeBody,
    /// A 200 that sends one byte, then a space every 200 ms, forever.
    Trickle,
    /// A 200 whose JSON holds bytes that are not UTF-8.
    InvalidUtf8,
    /// A 302 to this URL (another host).
    RedirectTo(String),
    /// A 200 with a login page, as a captive portal or a misrouted proxy gives.
    Html200,
}

const HUGE_BYTES: usize = 100 << 20;
const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action=\"/login\"><input name=\"user\"></form></body></html>";

impl Hostile {
    pub fn name(&self) -> &'static str {
        match self {
            Hostile::WrongTypes => "wrong_types",
            Hostile::HugeBody => "huge_body",
            Hostile::Trickle => "trickle",
            Hostile::InvalidUtf8 => "invalid_utf8",
            Hostile::RedirectTo(_) => "redirect_off_host",
            Hostile::Html200 => "html_200",
        }
    }

    /// The hostile version of an answer whose body was read into `bytes`.
    pub fn spoil(&self, parts: axum::http::response::Parts, bytes: Bytes) -> Response {
        let json = |body: Body| {
            let mut r = Response::new(body);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        match self {
            Hostile::WrongTypes => {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                retype(&mut v);
                let mut parts = parts;
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(v.to_string()))
            }
            Hostile::HugeBody => {
                let chunk = Bytes::from(vec![b' '; 1 << 20]);
                let head = Bytes::from_static(b"{\"contacts\":[");
                let chunks = std::iter::once(head)
                    .chain(std::iter::repeat_n(chunk, HUGE_BYTES >> 20))
                    .map(Ok::<_, std::io::Error>);
                json(Body::from_stream(stream::iter(chunks)))
            }
            Hostile::Trickle => {
                let drip = stream::unfold(true, |first| async move {
                    if !first {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let b = if first { "{" } else { " " };
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from_static(b.as_bytes())),
                        false,
                    ))
                });
                json(Body::from_stream(drip))
            }
            Hostile::InvalidUtf8 => json(Body::from(
                &b"{\"contacts\":[{\"id\":\"\xff\xfe\xfd\"}],\"meta\":{\"total\":1}}"[..],
            )),
            Hostile::RedirectTo(to) => {
                let mut r = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Hostile::Html200 => {
                let mut r = (StatusCode::OK, LOGIN_PAGE).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
        }
    }
}

/// Strings inside the records of the answer's lists become numbers (ids) or objects (the rest).
fn retype(v: &mut Value) {
    let Value::Object(top) = v else { return };
    for list in top.values_mut() {
        let Value::Array(items) = list else { continue };
        for item in items.iter_mut() {
            let Value::Object(rec) = item else { continue };
            for (k, field) in rec.iter_mut() {
                if field.is_string() {
                    *field = if k == "id" {
                        Value::from(12345)
                    } else {
                        serde_json::json!({"unexpected": "object"})
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retype_turns_record_strings_into_other_types() {
        let mut v = serde_json::json!({"contacts": [{"id": "a", "email": "x@y", "n": 1}], "meta": {"total": 1}});
        retype(&mut v);
        assert_eq!(v["contacts"][0]["id"], 12345);
        assert!(v["contacts"][0]["email"].is_object());
        assert_eq!(v["contacts"][0]["n"], 1);
        assert_eq!(v["meta"]["total"], 1);
    }
}
