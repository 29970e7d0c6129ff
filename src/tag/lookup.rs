//! Emails and phones → contact ids, in as few requests as the file allows.
//!
//! Two ways, chosen by estimated cost before the first row is applied:
//! - per key, once per distinct value (cached): an email through `POST /contacts/search` with
//!   an `email eq` filter (a page of ten), which tells one contact from an email two
//!   contacts share; a phone through `GET /contacts/search/duplicate`, which matches phones
//!   however they are written (the search compares them as stored);
//! - location scan: the location's contacts paged once through `POST /contacts/search`, 500 a
//!   request, matched locally against the keys the file needs. Only those keys are indexed, so
//!   memory follows the file, not the location. A scan also sees an email two contacts share,
//!   which the duplicate search cannot.
//!
//! The estimate reads the file once (keys only) and asks the search for the location's total
//! with a one-contact page: a scan costs `total / 500` requests, per key costs one request per
//! distinct key. `--lookup` forces either.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value as Json};

use super::plan::{KeyColumns, Lookup};
use crate::api::matching::key_of;
use crate::api::{Client, Cursor, Source};
use crate::exit::{JobError, Result};
use crate::input::{Chunked, InputFormat};

/// Contacts a search page carries at most.
const SEARCH_PAGE: usize = 500;

/// A key's answer: the contact id, or why there is none (for the failed report).
pub type Found = std::result::Result<String, String>;

/// How the run resolves keys, and what it chose and why (for the summary).
pub struct Resolver {
    pub chosen: Lookup,
    /// One line for the summary: the way chosen and the estimate behind it.
    pub reason: String,
    /// `email:x` / `phone:y` → the answer: filled by the scan up front, or per key on demand.
    cache: Mutex<HashMap<String, Found>>,
}

fn cell(fields: &Map<String, Json>, column: &str) -> String {
    match fields.get(column) {
        Some(Json::String(s)) => s.trim().to_string(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The email or phone a row is named by when its id is blank, as (email, phone).
pub fn row_keys(fields: &Map<String, Json>, keys: &KeyColumns) -> (String, String, String) {
    (
        cell(fields, &keys.id),
        cell(fields, &keys.email),
        cell(fields, &keys.phone),
    )
}

impl Resolver {
    /// No look-ups at all (contacts named by id, or found by `--where`).
    pub fn none() -> Resolver {
        Resolver {
            chosen: Lookup::PerKey,
            reason: String::new(),
            cache: Mutex::default(),
        }
    }

    /// Decide per key or scan for this file, and run the scan if it wins.
    pub async fn prepare(
        client: &Client,
        location: &str,
        input: (&std::path::Path, Option<InputFormat>),
        keys: &KeyColumns,
        choice: Lookup,
    ) -> Result<Resolver> {
        let needed = if choice == Lookup::PerKey {
            HashSet::new()
        } else {
            needed_keys(input, keys).await?
        };
        let mut r = Resolver::none();
        if needed.is_empty() {
            return Ok(r);
        }
        let total = if choice == Lookup::Auto {
            location_total(client, location).await?
        } else {
            0
        };
        let scan_requests = total.div_ceil(SEARCH_PAGE as u64).max(1);
        let scan = choice == Lookup::Scan || scan_requests < needed.len() as u64;
        if !scan {
            r.reason = format!(
                "per key: up to {} duplicate searches (a location scan would take {scan_requests})",
                needed.len()
            );
            return Ok(r);
        }
        let (scanned, requests) = scan_location(client, location, &needed, &r.cache).await?;
        r.chosen = Lookup::Scan;
        r.reason = format!(
            "location scan: {scanned} contacts in {requests} search requests, for {} distinct emails and phones",
            needed.len()
        );
        Ok(r)
    }

    /// The contact named by this email or phone, or why none.
    pub async fn find(
        &self,
        client: &Client,
        location: &str,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Found> {
        let key = match key_of(email, phone) {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        if self.chosen == Lookup::Scan {
            return Ok(Err(not_found(email, phone)));
        }
        let answer = match email {
            Some(e) => {
                let filter = json!([{"field": "email", "operator": "eq", "value": e}]);
                client.search_contacts_where(location, filter, 10).await
            }
            None => client
                .find_duplicate(location, None, phone)
                .await
                .map(|c| c.into_iter().collect()),
        };
        let found = match answer {
            Ok(found) => one_contact(found.into_iter().map(|c| c.id).collect(), &key)
                .map_err(|none| none.unwrap_or_else(|| not_found(email, phone))),
            Err(e) if e.stops_the_job() => return Err(e.into()),
            Err(e) => Err(e.to_string()),
        };
        self.lock().insert(key, found.clone());
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Found>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The one contact a key names; `Err(None)` when none, `Err(Some(why))` when several.
fn one_contact(ids: Vec<String>, key: &str) -> std::result::Result<String, Option<String>> {
    match ids.as_slice() {
        [] => Err(None),
        [one] => Ok(one.clone()),
        many => Err(Some(format!(
            "ambiguous: {} contacts have {} ({})",
            many.len(),
            key.replacen(':', " ", 1),
            many.join(", ")
        ))),
    }
}

fn not_found(email: Option<&str>, phone: Option<&str>) -> String {
    match email {
        Some(e) => format!("no contact in the location has email {e}"),
        None => format!(
            "no contact in the location has phone {}",
            phone.unwrap_or("")
        ),
    }
}

/// The distinct, well-formed emails and phones of rows without an id.
async fn needed_keys(
    input: (&std::path::Path, Option<InputFormat>),
    keys: &KeyColumns,
) -> Result<HashSet<String>> {
    let mut chunks = Chunked::open(input.0, input.1, 1_000)?;
    let mut needed = HashSet::new();
    let mut first = true;
    while let Some(chunk) = chunks.next().await {
        if std::mem::take(&mut first) {
            // Before the estimate's requests: a file without its header row is refused.
            crate::input::check_wanted_columns(&chunk, &[&keys.id, &keys.email, &keys.phone])
                .map_err(JobError::usage)?;
        }
        for row in chunk.iter().flatten() {
            let (id, email, phone) = row_keys(&row.fields, keys);
            let key = match (id.is_empty(), email.is_empty(), phone.is_empty()) {
                (false, _, _) | (true, true, true) => continue,
                (true, false, _) => key_of(Some(&email), None),
                (true, true, false) => key_of(None, Some(&phone)),
            };
            needed.extend(key.ok());
        }
    }
    chunks.finish().await?;
    Ok(needed)
}

/// The location's contact count, from a one-contact search page.
async fn location_total(client: &Client, location: &str) -> Result<u64> {
    let source = Source::Search { filters: vec![] };
    let mut pages = Box::pin(client.contact_pages(location, source, 1, Cursor::Start));
    let page = pages.try_next().await.map_err(JobError::from)?;
    Ok(page.and_then(|p| p.total).unwrap_or(u64::MAX / 2))
}

/// Page every contact once; index the ids of those whose email or phone the file needs.
/// Answers (contacts scanned, requests).
async fn scan_location(
    client: &Client,
    location: &str,
    needed: &HashSet<String>,
    cache: &Mutex<HashMap<String, Found>>,
) -> Result<(u64, u64)> {
    let source = Source::Search { filters: vec![] };
    let mut pages = Box::pin(client.contact_pages(location, source, SEARCH_PAGE, Cursor::Start));
    let mut index: HashMap<&str, Vec<String>> = HashMap::new();
    let (mut scanned, mut requests) = (0u64, 0u64);
    while let Some(page) = pages.next().await {
        let page = page.map_err(JobError::from)?;
        requests += 1;
        for c in &page.records {
            scanned += 1;
            let id = c.get("id").and_then(Json::as_str).unwrap_or_default();
            let email = c
                .get("email")
                .and_then(Json::as_str)
                .filter(|e| !e.is_empty());
            let phone = c
                .get("phone")
                .and_then(Json::as_str)
                .filter(|p| !p.is_empty());
            let keys = [
                email.and_then(|e| key_of(Some(e), None).ok()),
                phone.and_then(|p| key_of(None, Some(p)).ok()),
            ];
            for k in keys.into_iter().flatten() {
                if let Some(wanted) = needed.get(&k) {
                    index
                        .entry(wanted.as_str())
                        .or_default()
                        .push(id.to_string());
                }
            }
        }
    }
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    for (key, ids) in index {
        let found = one_contact(ids, key).map_err(Option::unwrap_or_default);
        cache.insert(key.to_string(), found);
    }
    Ok((scanned, requests))
}
