//! Counters of what the sandbox answered and what it wrote, for tests and for benchmarks
//! reading `GET /_sandbox/stats` from another process.
//!
//! Writes are counted by kind when the store applies them, before any injected fault spoils
//! the answer, so a test can prove that each task was created exactly once however many
//! answers were lost. Deciding when a write happened is the handlers' business.

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
    /// Injected faults by kind (`status_500`, `html_502`, `truncated`, `applied_500`...).
    pub faults: BTreeMap<String, u64>,
    /// Requests per location id (requests naming no location are not counted here).
    pub by_location: BTreeMap<String, u64>,
    /// Contacts returned by the listing and search endpoints.
    pub contacts_served: u64,
    /// Writes applied, by kind ([`Write::name`]): one per request, except the bulk kinds
    /// (`bulk_tags_add`, `bulk_tags_remove`, `bulk_business`), which count each contact the
    /// request changed.
    #[serde(default)]
    pub writes: BTreeMap<String, u64>,
    /// Upserts that arrived while another upsert with the same email or phone was in flight.
    /// The API looks for the duplicate, then creates: two such upserts at once can both
    /// create, so a careful client lets them take turns.
    #[serde(default)]
    pub overlapping_upserts: u64,
}

impl Stats {
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Answers with this status on any route.
    pub fn status_count(&self, status: u16) -> u64 {
        self.by_route.values().filter_map(|m| m.get(&status)).sum()
    }

    /// Writes of one kind, e.g. `stats.written("task_create")`.
    pub fn written(&self, kind: &str) -> u64 {
        self.writes.get(kind).copied().unwrap_or(0)
    }
}

/// The kinds of write the sandbox counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    ContactCreate,
    ContactUpsert,
    ContactUpdate,
    ContactDelete,
    TaskCreate,
    TaskUpdate,
    TaskComplete,
    TaskDelete,
    NoteCreate,
    NoteUpdate,
    NoteDelete,
    TagsAdd,
    TagsRemove,
    BulkTagsAdd,
    BulkTagsRemove,
    BulkBusiness,
    CustomFieldCreate,
    WorkflowAdd,
    WorkflowRemove,
    CampaignAdd,
    CampaignRemove,
    CampaignRemoveAll,
    FollowersAdd,
    FollowersRemove,
}

impl Write {
    pub fn name(self) -> &'static str {
        use Write::*;
        match self {
            ContactCreate => "contact_create",
            ContactUpsert => "contact_upsert",
            ContactUpdate => "contact_update",
            ContactDelete => "contact_delete",
            TaskCreate => "task_create",
            TaskUpdate => "task_update",
            TaskComplete => "task_complete",
            TaskDelete => "task_delete",
            NoteCreate => "note_create",
            NoteUpdate => "note_update",
            NoteDelete => "note_delete",
            TagsAdd => "tags_add",
            TagsRemove => "tags_remove",
            BulkTagsAdd => "bulk_tags_add",
            BulkTagsRemove => "bulk_tags_remove",
            BulkBusiness => "bulk_business",
            CustomFieldCreate => "custom_field_create",
            WorkflowAdd => "workflow_add",
            WorkflowRemove => "workflow_remove",
            CampaignAdd => "campaign_add",
            CampaignRemove => "campaign_remove",
            CampaignRemoveAll => "campaign_remove_all",
            FollowersAdd => "followers_add",
            FollowersRemove => "followers_remove",
        }
    }
}
