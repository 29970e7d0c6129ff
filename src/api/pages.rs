//! Pagination as async streams of pages, for the three ways of listing a location's contacts.
//!
//! - `GET /contacts/`: cursor (`startAfter` = epoch ms of the last contact's dateAdded,
//!   `startAfterId` = its id). Both are always sent: `startAfter` alone answers the first page
//!   again. Order is (dateAdded, id), so a record at or before the cursor was already seen.
//! - `POST /contacts/search`: `searchAfter` keyset paging from the first page on, so the
//!   10,000-record cap of `page` paging never truncates a location; filters pass through.
//! - `GET /contacts/business/{id}`: `skip`/`limit`; pages can shift under writes, so ids are
//!   remembered (one business is small) to drop repeats.
//!
//! Each page carries the cursor *after* it, which the export stores with the data it wrote so a
//! rerun resumes from there. Records at or before the cursor (a page that went backwards) are
//! dropped; a page made only of records already seen is asked for again twice, and if it keeps
//! coming, ends the stream with `ErrorKind::CursorLoop` instead of spinning forever. A `total`
//! is used for progress (the end of a listing is a short page, never a count), and as a bound:
//! a listing that goes on far past the largest count the server gave (see [`past_bound`]) ends
//! with `ErrorKind::EndlessListing`, for a server whose pages, each of new ids, never end.
//! Memory per stream is one page (plus the id set for business listings).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::Duration;

use backon::{ConstantBuilder, RetryableWithContext};

use futures::stream::{self, Stream};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::client::{Call, Client};
use super::error::{Error, ErrorKind, Result};

/// Which endpoint lists the contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// `GET /contacts/`.
    List,
    /// `POST /contacts/search` with optional filters (GHL filter objects, passed as is).
    Search { filters: Vec<Value> },
    /// `GET /contacts/business/{id}`.
    Business { business_id: String },
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::List => "list".into(),
            Source::Search { .. } => "search".into(),
            Source::Business { business_id } => format!("business:{business_id}"),
        }
    }

    /// Largest page the endpoint accepts.
    pub fn max_page_size(&self) -> usize {
        match self {
            Source::List => 100,
            Source::Search { .. } => 500,
            Source::Business { .. } => 100,
        }
    }
}

/// Where a listing stands. Serialised into the state database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cursor {
    Start,
    List {
        start_after: i64,
        start_after_id: String,
    },
    Search {
        search_after: Vec<Value>,
    },
    Offset {
        skip: u64,
    },
    Done,
}

impl Cursor {
    /// The cursor as the request carried it, for messages.
    pub fn describe(&self) -> String {
        match self {
            Cursor::Start => "the start".into(),
            Cursor::List {
                start_after,
                start_after_id,
            } => format!("startAfter={start_after}, startAfterId={start_after_id}"),
            Cursor::Search { search_after } => {
                format!("searchAfter={}", Value::Array(search_after.clone()))
            }
            Cursor::Offset { skip } => format!("skip={skip}"),
            Cursor::Done => "the end".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ContactPage {
    /// Raw contact records, as answered (minus repeats).
    pub records: Vec<Value>,
    /// Resume from here to get the next page.
    pub next: Cursor,
    /// The server's count of matching contacts, for progress and ETA.
    pub total: Option<u64>,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    contacts: Vec<Value>,
    #[serde(default)]
    meta: Option<ListMeta>,
    #[serde(default)]
    total: Option<f64>,
    #[serde(default)]
    count: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    total: Option<f64>,
}

/// Epoch milliseconds of an ISO-8601 timestamp (or of a number already in ms).
pub fn epoch_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis()),
        _ => None,
    }
}

fn record_id(r: &Value) -> Option<&str> {
    r.get("id").and_then(Value::as_str)
}

/// Order of `searchAfter` keys: numbers numerically, strings bytewise, element by element.
pub fn cmp_sort_keys(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::Number(m), Value::Number(n)) => match (m.as_i64(), n.as_i64()) {
                // Exact for integers (epoch ms), which f64 would round above 2^53.
                (Some(a), Some(b)) => a.cmp(&b),
                _ => m
                    .as_f64()
                    .unwrap_or(0.0)
                    .partial_cmp(&n.as_f64().unwrap_or(0.0))
                    .unwrap_or(Ordering::Equal),
            },
            (Value::String(m), Value::String(n)) => m.cmp(n),
            _ => x.to_string().cmp(&y.to_string()),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

struct PagerState {
    client: Client,
    location: String,
    source: Source,
    page_size: usize,
    cursor: Cursor,
    /// Business listings only: ids already answered.
    seen: HashSet<String>,
    /// Contacts this stream answered, and the largest count the server gave with them.
    listed: u64,
    largest_total: Option<u64>,
}

/// Whether `listed` contacts are far past any count a server that tells the truth, in a
/// location that grows while it is listed, could have given: more than 1.5 times the largest
/// count plus 10,000. Without any count there is no bound.
pub fn past_bound(listed: u64, largest_total: Option<u64>) -> bool {
    largest_total.is_some_and(|t| listed > t.saturating_add(t / 2).saturating_add(10_000))
}

impl Client {
    /// Stream the contacts of `location` page by page, starting at `from` (a cursor saved by
    /// an earlier run, or `Cursor::Start`).
    pub fn contact_pages(
        &self,
        location: &str,
        source: Source,
        page_size: usize,
        from: Cursor,
    ) -> impl Stream<Item = Result<ContactPage>> + Send + 'static {
        let state = PagerState {
            client: self.clone(),
            location: location.to_string(),
            page_size: page_size.clamp(1, source.max_page_size()),
            source,
            cursor: from,
            seen: HashSet::new(),
            listed: 0,
            largest_total: None,
        };
        stream::try_unfold(state, |st| async move {
            if st.cursor == Cursor::Done {
                return Ok(None);
            }
            let (mut st, page) = (|mut st: PagerState| async move {
                let page = st.next_page().await;
                (st, page)
            })
            .retry(repeat_backoff())
            .context(st)
            .when(|e: &Error| e.kind == ErrorKind::CursorLoop)
            .notify(|e: &Error, wait: Duration| {
                tracing::warn!(
                    path = %e.path,
                    "The API answered a page of contacts already listed; asking again in {wait:?}."
                );
            })
            .await;
            let page = page?;
            st.count(&page)?;
            st.cursor = page.next.clone();
            Ok(Some((page, st)))
        })
    }
}

/// A page made only of contacts already listed is asked for again twice, a second apart,
/// before the listing stops with `CursorLoop`: a cache in front of the API may answer a stale
/// page for a moment, while a server that keeps doing it would loop forever.
fn repeat_backoff() -> ConstantBuilder {
    ConstantBuilder::new()
        .with_delay(Duration::from_secs(1))
        .with_max_times(2)
}

impl PagerState {
    fn loop_error(&self, method: &str, path: &str, what: &str) -> Error {
        Error::new(ErrorKind::CursorLoop, method, path)
            .with_message(format!("{what} (asked after {})", self.cursor.describe()))
    }

    /// Count a page against the bound of [`past_bound`].
    fn count(&mut self, page: &ContactPage) -> Result<()> {
        self.listed += page.records.len() as u64;
        self.largest_total = self.largest_total.max(page.total);
        if !past_bound(self.listed, self.largest_total) {
            return Ok(());
        }
        let (method, path) = match &self.source {
            Source::List => ("GET", "/contacts/".to_string()),
            Source::Search { .. } => ("POST", "/contacts/search".to_string()),
            Source::Business { business_id } => {
                ("GET", format!("/contacts/business/{business_id}"))
            }
        };
        let told = self.largest_total.unwrap_or_default();
        Err(
            Error::new(ErrorKind::EndlessListing, method, &path).with_message(format!(
                "{} contacts listed, while the largest count the server gave for this listing \
                 was {told}; stopped at 1.5 times that plus 10,000 (asked after {})",
                self.listed,
                self.cursor.describe()
            )),
        )
    }

    async fn next_page(&mut self) -> Result<ContactPage> {
        match self.source.clone() {
            Source::List => self.list_page().await,
            Source::Search { filters } => self.search_page(&filters).await,
            Source::Business { business_id } => self.business_page(&business_id).await,
        }
    }

    async fn list_page(&mut self) -> Result<ContactPage> {
        let mut call = Call::get(&self.location, "/contacts/")
            .query("locationId", &self.location)
            .query("limit", self.page_size);
        let after = match &self.cursor {
            Cursor::List {
                start_after,
                start_after_id,
            } => {
                call = call
                    .query("startAfter", start_after)
                    .query("startAfterId", start_after_id);
                Some((*start_after, start_after_id.clone()))
            }
            _ => None,
        };
        let answer: ListAnswer = self.client.call(&call).await?;
        let raw_len = answer.contacts.len();
        let total = answer
            .meta
            .as_ref()
            .and_then(|m| m.total)
            .or(answer.total)
            .map(|t| t as u64);
        let mut records = Vec::with_capacity(raw_len);
        let mut last: Option<(i64, String)> = None;
        for r in answer.contacts {
            let (Some(id), Some(ms)) = (record_id(&r), r.get("dateAdded").and_then(epoch_ms))
            else {
                return Err(Error::new(
                    ErrorKind::Decode {
                        json_path: "contacts[].dateAdded".into(),
                    },
                    "GET",
                    "/contacts/",
                )
                .with_message("a contact without id or dateAdded cannot be paged"));
            };
            let key = (ms, id.to_string());
            // Already answered (a repeated or shifted page): drop it.
            if after.as_ref().is_some_and(|a| key <= *a) {
                continue;
            }
            last = Some(key);
            records.push(r);
        }
        if raw_len > 0 && records.is_empty() {
            return Err(self.loop_error(
                "GET",
                "/contacts/",
                "the API answered only contacts already listed",
            ));
        }
        let next = if raw_len < self.page_size {
            Cursor::Done
        } else {
            match last {
                Some((start_after, start_after_id)) => Cursor::List {
                    start_after,
                    start_after_id,
                },
                None => Cursor::Done,
            }
        };
        Ok(ContactPage {
            records,
            next,
            total,
        })
    }

    async fn search_page(&mut self, filters: &[Value]) -> Result<ContactPage> {
        let mut body = json!({
            "locationId": self.location,
            "pageLimit": self.page_size,
            "sort": [{"field": "dateAdded", "direction": "asc"}],
        });
        if !filters.is_empty() {
            body["filters"] = Value::Array(filters.to_vec());
        }
        let after = match &self.cursor {
            Cursor::Search { search_after } => {
                body["searchAfter"] = Value::Array(search_after.clone());
                Some(search_after.clone())
            }
            _ => None,
        };
        let call = Call::with_body(&self.location, Method::POST, "/contacts/search", body);
        let answer: ListAnswer = self.client.call(&call).await?;
        let raw_len = answer.contacts.len();
        let total = answer.total.or(answer.count).map(|t| t as u64);
        let mut records = Vec::with_capacity(raw_len);
        let mut last: Option<Vec<Value>> = None;
        for r in answer.contacts {
            let Some(key) = r.get("searchAfter").and_then(Value::as_array).cloned() else {
                return Err(Error::new(
                    ErrorKind::Decode {
                        json_path: "contacts[].searchAfter".into(),
                    },
                    "POST",
                    "/contacts/search",
                )
                .with_message(
                    "a search answer without searchAfter cannot be paged past 10,000 records",
                ));
            };
            if after
                .as_ref()
                .is_some_and(|a| cmp_sort_keys(&key, a) != Ordering::Greater)
            {
                continue;
            }
            last = Some(key);
            records.push(r);
        }
        if raw_len > 0 && records.is_empty() {
            return Err(self.loop_error(
                "POST",
                "/contacts/search",
                "the API answered only contacts already listed",
            ));
        }
        let next = match last {
            Some(search_after) if raw_len >= self.page_size => Cursor::Search { search_after },
            _ => Cursor::Done,
        };
        Ok(ContactPage {
            records,
            next,
            total,
        })
    }

    async fn business_page(&mut self, business_id: &str) -> Result<ContactPage> {
        let skip = match &self.cursor {
            Cursor::Offset { skip } => *skip,
            _ => 0,
        };
        let path = format!("/contacts/business/{business_id}");
        let call = Call::get(&self.location, path.clone())
            .query("locationId", &self.location)
            .query("limit", self.page_size)
            .query("skip", skip);
        let answer: ListAnswer = self.client.call(&call).await?;
        let raw_len = answer.contacts.len();
        let total = answer.total.or(answer.count).map(|t| t as u64);
        let mut records = Vec::with_capacity(raw_len);
        for r in answer.contacts {
            let Some(id) = record_id(&r) else { continue };
            if self.seen.insert(id.to_string()) {
                records.push(r);
            }
        }
        if raw_len > 0 && records.is_empty() && raw_len >= self.page_size {
            return Err(self.loop_error(
                "GET",
                &path,
                "the API answered only contacts already listed",
            ));
        }
        let next = if raw_len < self.page_size {
            Cursor::Done
        } else {
            Cursor::Offset {
                skip: skip + raw_len as u64,
            }
        };
        Ok(ContactPage {
            records,
            next,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_one_and_a_half_times_the_largest_count_plus_ten_thousand() {
        assert!(!past_bound(10_015, Some(10)));
        assert!(past_bound(10_016, Some(10)));
        assert!(!past_bound(160_000, Some(100_000)));
        assert!(past_bound(160_001, Some(100_000)));
        assert!(!past_bound(u64::MAX, None), "no count, no bound");
        assert!(!past_bound(u64::MAX - 1, Some(u64::MAX)), "no overflow");
    }

    #[test]
    fn sort_keys_compare_numbers_then_ids() {
        let a = vec![json!(1700000000000i64), json!("abc")];
        let b = vec![json!(1700000000000i64), json!("abd")];
        let c = vec![json!(1700000000001i64), json!("aaa")];
        assert_eq!(cmp_sort_keys(&a, &b), Ordering::Less);
        assert_eq!(cmp_sort_keys(&b, &c), Ordering::Less);
        assert_eq!(cmp_sort_keys(&a, &a), Ordering::Equal);
    }

    #[test]
    fn epoch_ms_reads_iso_and_numbers() {
        assert_eq!(
            epoch_ms(&json!("2021-09-08T07:59:09.919Z")),
            Some(1631087949919)
        );
        assert_eq!(epoch_ms(&json!(1631087949919i64)), Some(1631087949919));
        assert_eq!(epoch_ms(&json!(null)), None);
    }
}
