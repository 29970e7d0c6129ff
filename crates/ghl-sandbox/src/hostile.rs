//! Hostile answers: not the flaky failures of [`super::faults`] but a server (or something in
//! front of it) that answers *wrongly*: wrong JSON types where the spec promises strings, a
//! 100 MB body, a body that trickles forever, invalid UTF-8, a redirect to another host, a 200
//! carrying an HTML page, listings whose pages repeat or go backwards, a `total` that lies. A
//! test arms one with [`super::Sandbox::set_hostile`] for the next N API answers it applies to;
//! the handler runs first, so a write that is answered wrongly did happen.
//!
//! The paging modes apply only to listings asked for a page after a cursor (the first page has
//! nothing to go back to), and a lying total only to listings; other answers pass untouched and
//! do not count.

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
    /// A listing asked for the page after its cursor answers the page before it again, as a
    /// cache in front of the API that ignores the query string would.
    RepeatPage,
    /// A listing asked for the page after its cursor starts this many records before it, so
    /// the page overlaps the one already answered (a server whose order shifted).
    PageBack(usize),
    /// Every listing's count (`meta.total`, `total`, `count`) says this instead of the truth.
    LyingTotal(u64),
    /// Every listing answers a full page (the size it asked for) of contacts never answered
    /// before (new ids, each added after the last), and says its count is this: pages that
    /// never end.
    EndlessPages(u64),
    /// A listing asked for the page after its cursor first adds this many real contacts to
    /// the location (added now, so after every cursor): a location that grows while listed.
    Grows(usize),
}

/// Numbers the contacts [`Hostile::EndlessPages`] makes up, so none repeats.
static ENDLESS_NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The names `ghl-etl sandbox --hostile` takes, for its help and errors.
pub const MODE_NAMES: &str = "wrong-types, huge-body, trickle, invalid-utf8, redirect=URL, html-200, page-repeats, page-back=N, lying-total=N, endless=TOTAL, grows=N";

impl std::str::FromStr for Hostile {
    type Err = String;

    fn from_str(s: &str) -> Result<Hostile, String> {
        let (name, arg) = match s.trim().split_once('=') {
            Some((n, a)) => (n, Some(a.trim())),
            None => (s.trim(), None),
        };
        let number = |what: &str| -> Result<u64, String> {
            arg.and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("`{name}` needs a number: {name}={what}"))
        };
        Ok(match (name, arg) {
            ("wrong-types", None) => Hostile::WrongTypes,
            ("huge-body", None) => Hostile::HugeBody,
            ("trickle", None) => Hostile::Trickle,
            ("invalid-utf8", None) => Hostile::InvalidUtf8,
            ("html-200", None) => Hostile::Html200,
            ("page-repeats", None) => Hostile::RepeatPage,
            ("redirect", Some(url)) if !url.is_empty() => Hostile::RedirectTo(url.to_string()),
            ("page-back", _) => Hostile::PageBack(number("RECORDS")? as usize),
            ("lying-total", _) => Hostile::LyingTotal(number("COUNT")?),
            ("endless", _) => Hostile::EndlessPages(number("TOTAL")?),
            ("grows", _) => Hostile::Grows(number("CONTACTS")? as usize),
            _ => return Err(format!("unknown hostile mode `{s}`; one of: {MODE_NAMES}")),
        })
    }
}

/// What a request is, for the modes that spoil listings only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    No,
    FirstPage,
    AfterCursor,
}

/// How far back a listing handler starts (a request extension set by the gate).
#[derive(Debug, Clone, Copy)]
pub(super) enum Rewind {
    /// One page: the page before the cursor, again.
    Page,
    Records(usize),
}

impl Rewind {
    pub(super) fn records(self, limit: usize) -> usize {
        match self {
            Rewind::Page => limit,
            Rewind::Records(n) => n,
        }
    }
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
            Hostile::RepeatPage => "page_repeats",
            Hostile::PageBack(_) => "page_goes_back",
            Hostile::LyingTotal(_) => "lying_total",
            Hostile::EndlessPages(_) => "endless_pages",
            Hostile::Grows(_) => "grows",
        }
    }

    /// Whether this mode spoils an answer to `listing` (and so counts against its N).
    pub(super) fn applies_to(&self, listing: Listing) -> bool {
        match self {
            Hostile::RepeatPage | Hostile::PageBack(_) | Hostile::Grows(_) => {
                listing == Listing::AfterCursor
            }
            Hostile::LyingTotal(_) | Hostile::EndlessPages(_) => listing != Listing::No,
            _ => true,
        }
    }

    /// The paging modes act in the handler, before the answer exists.
    pub(super) fn rewind(&self) -> Option<Rewind> {
        match self {
            Hostile::RepeatPage => Some(Rewind::Page),
            Hostile::PageBack(n) => Some(Rewind::Records(*n)),
            _ => None,
        }
    }

    /// The contacts to add before the handler answers ([`Hostile::Grows`]).
    pub(super) fn grows(&self) -> usize {
        match self {
            Hostile::Grows(n) => *n,
            _ => 0,
        }
    }

    /// Whether the answer is left as the handler made it (the modes that act before it).
    pub(super) fn acts_before(&self) -> bool {
        self.rewind().is_some() || matches!(self, Hostile::Grows(_) | Hostile::EndlessPages(_))
    }

    /// The answer given in place of the handler's ([`Hostile::EndlessPages`]): a page of
    /// `size` contacts never answered, shaped as a search answer or as `GET /contacts/`'s.
    pub(super) fn answer_instead(&self, search: bool, size: usize) -> Option<Response> {
        let Hostile::EndlessPages(total) = self else {
            return None;
        };
        let contacts = made_up_contacts(size, search);
        let v = if search {
            serde_json::json!({"contacts": contacts, "total": total})
        } else {
            serde_json::json!({"contacts": contacts, "meta": {"total": total}})
        };
        Some(axum::Json(v).into_response())
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
            Hostile::LyingTotal(n) => {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                lie_about_total(&mut v, *n);
                let mut parts = parts;
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(v.to_string()))
            }
            Hostile::RepeatPage
            | Hostile::PageBack(_)
            | Hostile::Grows(_)
            | Hostile::EndlessPages(_) => Response::from_parts(parts, Body::from(bytes)),
        }
    }
}

/// `n` contacts never answered before, each added a second after the one before it (from
/// 2030 on, after any contact the sandbox holds); with their `searchAfter` keys for a search.
fn made_up_contacts(n: usize, search: bool) -> Vec<Value> {
    use std::sync::atomic::Ordering;
    const FROM_MS: i64 = 1_893_456_000_000; // 2030-01-01T00:00:00Z
    let first = ENDLESS_NEXT.fetch_add(n as u64, Ordering::Relaxed);
    (first..first + n as u64)
        .map(|i| {
            let ms = FROM_MS + i as i64 * 1000;
            let added = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let id = format!("endless{i:012}");
            let mut c = serde_json::json!({"id": id, "dateAdded": added,
                "firstName": format!("Endless {i}"), "tags": []});
            if search {
                c["searchAfter"] = serde_json::json!([ms, id]);
            }
            c
        })
        .collect()
}

/// The counts a listing answers (`meta.total` on `GET /contacts/`, `total` on search, `count`
/// on business listings) become `n`.
fn lie_about_total(v: &mut Value, n: u64) {
    let Value::Object(top) = v else { return };
    for key in ["total", "count"] {
        if let Some(t) = top.get_mut(key) {
            *t = Value::from(n);
        }
    }
    if let Some(t) = top.get_mut("meta").and_then(|m| m.get_mut("total")) {
        *t = Value::from(n);
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

    #[test]
    fn a_lying_total_replaces_every_count() {
        let mut v =
            serde_json::json!({"contacts": [], "meta": {"total": 30}, "total": 30, "count": 30});
        lie_about_total(&mut v, 7);
        assert_eq!(
            (&v["meta"]["total"], &v["total"], &v["count"]),
            (&7.into(), &7.into(), &7.into())
        );
        assert_eq!(v["contacts"], serde_json::json!([]));
    }

    #[test]
    fn modes_parse_from_their_names() {
        assert_eq!("page-back=4".parse::<Hostile>(), Ok(Hostile::PageBack(4)));
        assert_eq!(
            "lying-total=7".parse::<Hostile>(),
            Ok(Hostile::LyingTotal(7))
        );
        assert_eq!(
            "redirect=http://elsewhere.example/".parse::<Hostile>(),
            Ok(Hostile::RedirectTo("http://elsewhere.example/".into()))
        );
        assert_eq!("html-200".parse::<Hostile>(), Ok(Hostile::Html200));
        let e = "page-back".parse::<Hostile>().unwrap_err();
        assert!(e.contains("page-back=RECORDS"), "{e}");
        let e = "flaky".parse::<Hostile>().unwrap_err();
        assert!(e.contains("one of: wrong-types"), "{e}");
    }

    #[test]
    fn paging_modes_spoil_only_pages_after_a_cursor() {
        assert!(!Hostile::RepeatPage.applies_to(Listing::FirstPage));
        assert!(Hostile::PageBack(3).applies_to(Listing::AfterCursor));
        assert!(!Hostile::LyingTotal(1).applies_to(Listing::No));
        assert!(Hostile::LyingTotal(1).applies_to(Listing::FirstPage));
        assert!(Hostile::Html200.applies_to(Listing::No));
        assert_eq!(Rewind::Page.records(100), 100);
        assert_eq!(Rewind::Records(7).records(100), 7);
    }
}
