//! Counters of what the sandbox answered, for tests and for benchmarks reading
//! `GET /_sandbox/stats` from another process.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A snapshot of the sandbox's counters since start-up or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests (admin routes excluded).
    pub requests: u64,
    /// `"GET /contacts/{contactId}/tasks"` -> status -> count (status of the sent head).
    pub by_route: BTreeMap<String, BTreeMap<u16, u64>>,
    /// 429s from the rolling-window limiter.
    pub rate_limited: u64,
    /// 429s because the daily budget ran out.
    pub daily_limited: u64,
    /// Injected faults by kind (`status_500`, `html_502`, `truncated`, `dropped`...).
    pub faults: BTreeMap<String, u64>,
    /// Requests per location id (requests naming no location are not counted here).
    pub by_location: BTreeMap<String, u64>,
    /// Contacts returned by the listing and search endpoints.
    pub contacts_served: u64,
}

impl Stats {
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Answers with this status on any route.
    pub fn status_count(&self, status: u16) -> u64 {
        self.by_route.values().filter_map(|m| m.get(&status)).sum()
    }
}
