//! The sandbox's data store: seeded contacts generated on demand from their index, the
//! listing order index, and an overlay holding every write.
//!
//! Per location the store keeps one 24-byte entry per seeded contact, `(dateAdded, id key,
//! index)`, sorted in GET /contacts/ order (dateAdded, then id); cursors binary-search it, so a
//! page costs the same at the start and at the end of a million contacts. Contact ids decode
//! to their index (see [`super::ids`]), so lookups by id need no map. Creates, updates,
//! deletes, tag changes and task/note writes go to the overlay, which reads consult first.
//! Searches that filter or sort differently are materialised once into a sorted hit list and
//! cached until the next write. Duplicate matching (upsert, duplicate search) follows each
//! location's rule, with e-mails compared case-insensitively and phones by their digits
//! ([`phone_key`]). Custom fields created at run time, workflows, campaigns and the duplicate
//! rules live in the [`Catalog`]. HTTP concerns (validation, status codes) are left to
//! [`super::handlers`].

use super::catalog::{Catalog, DuplicateRule, Program};
use super::data::{iso_ms, Generator, Location};
use super::ids::{hash_str, hashed_id};
use super::query::{Record, SearchRequest, Sort, SortVal};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{SystemTime, UNIX_EPOCH};

/// One seeded contact in listing order.
#[derive(Debug, Clone, Copy)]
struct OrderEntry {
    date: i64,
    key: u64,
    idx: u32,
}

/// E-mail and phone hashes of the seeded contacts, for upsert's duplicate search; built on
/// first use because most runs never upsert.
#[derive(Debug, Default)]
struct DupIndex {
    email: Vec<(u64, u32)>,
    phone: Vec<(u64, u32)>,
}

#[derive(Debug)]
struct LocData {
    meta: Location,
    order: Vec<OrderEntry>,
    dup: OnceLock<DupIndex>,
}

/// Every write since start-up.
#[derive(Debug, Default)]
struct Overlay {
    /// Current JSON of each written contact; `None` once deleted.
    contacts: HashMap<u64, Option<Value>>,
    /// Created contacts per location as `(dateAdded, id key, raw)`, in listing order.
    created: Vec<BTreeSet<(i64, u64, u64)>>,
    created_count: Vec<u32>,
    deleted_count: Vec<u64>,
    tasks: HashMap<u64, Vec<Value>>,
    notes: HashMap<u64, Vec<Value>>,
    /// Lower-cased e-mail / digits-only phone of written contacts, per location.
    emails: HashMap<(usize, String), Vec<u64>>,
    phones: HashMap<(usize, String), Vec<u64>>,
    /// Bumped by every contact write; cached searches of an older generation are stale.
    generation: u64,
}

/// A search hit: its sort value, id key and raw id word.
#[derive(Debug, Clone)]
pub struct Hit {
    pub sort: SortVal,
    pub key: u64,
    pub raw: u64,
}

/// One listed contact: `(dateAdded ms, raw id word, JSON text)`.
pub type PageItem = (i64, u64, Vec<u8>);

/// Tasks or notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Tasks,
    Notes,
}

const CACHE_SLOTS: usize = 8;

/// Cached search results: (cache key, overlay generation, hits).
type SearchCache = Vec<(String, u64, Arc<Vec<Hit>>)>;

/// Ground truth of the sandbox, shared by the HTTP handlers and by tests.
#[derive(Debug)]
pub struct Store {
    gen: Generator,
    locs: Vec<LocData>,
    by_id: HashMap<String, usize>,
    overlay: RwLock<Overlay>,
    cache: Mutex<SearchCache>,
    next_child: AtomicU64,
    catalog: Catalog,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The key two phones match on: their digits, without a `00` international prefix, and with
/// the North American country code `1` added to a bare ten-digit number (GHL's default country
/// is the US), so `+1 888-555-0101`, `(888) 555-0101` and `0018885550101` are one phone.
/// Fewer than seven digits is no phone.
pub fn phone_key(p: &str) -> Option<String> {
    let d: String = p.chars().filter(char::is_ascii_digit).collect();
    let d = match d.strip_prefix("00") {
        Some(rest) if !p.trim_start().starts_with('+') => rest.to_string(),
        _ => d,
    };
    if d.len() < 7 {
        return None;
    }
    Some(if d.len() == 10 && !d.starts_with(['0', '1']) {
        format!("1{d}")
    } else {
        d
    })
}

impl Store {
    /// Builds the order index of every location: O(n log n), about a second for a million.
    pub fn new(seed: u64, locations: usize, contacts: usize) -> Store {
        let gen = Generator::new(seed);
        let n = u32::try_from(contacts).unwrap_or(u32::MAX);
        let locs: Vec<LocData> = (0..locations)
            .map(|li| {
                let meta = Location::new(seed, li, n);
                let mut order: Vec<OrderEntry> = (0..n)
                    .map(|idx| OrderEntry {
                        date: meta.date_added(idx),
                        key: gen.codec.key(Generator::raw(&meta, idx)),
                        idx,
                    })
                    .collect();
                order.sort_unstable_by_key(|e| (e.date, e.key));
                LocData {
                    meta,
                    order,
                    dup: OnceLock::new(),
                }
            })
            .collect();
        let by_id = locs
            .iter()
            .map(|l| (l.meta.id.clone(), l.meta.index))
            .collect();
        let overlay = Overlay {
            created: vec![BTreeSet::new(); locations],
            created_count: vec![0; locations],
            deleted_count: vec![0; locations],
            ..Overlay::default()
        };
        Store {
            gen,
            locs,
            by_id,
            overlay: RwLock::new(overlay),
            cache: Mutex::new(Vec::new()),
            next_child: AtomicU64::new(0),
            catalog: Catalog::new(seed, locations),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Overlay> {
        self.overlay.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> MutexGuard<'_, SearchCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn location_ids(&self) -> Vec<String> {
        self.locs.iter().map(|l| l.meta.id.clone()).collect()
    }

    pub(crate) fn loc_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn location(&self, i: usize) -> &Location {
        &self.locs[i].meta
    }

    /// `(location index, raw)` of an id this store handed out, deleted or not.
    pub(crate) fn decode(&self, id: &str) -> Option<(usize, u64)> {
        let raw = self.gen.codec.decode(id)?;
        let li = (raw >> 32) as usize;
        let loc = self.locs.get(li)?;
        let idx = raw as u32;
        if idx < loc.meta.contacts {
            return Some((li, raw));
        }
        let created = self.read().created_count[li];
        (idx - loc.meta.contacts < created).then_some((li, raw))
    }

    fn current(&self, ov: &Overlay, raw: u64) -> Option<Value> {
        match ov.contacts.get(&raw) {
            Some(v) => v.clone(),
            None => {
                let loc = &self.locs.get((raw >> 32) as usize)?.meta;
                let idx = raw as u32;
                (idx < loc.contacts)
                    .then(|| self.gen.contact_json(loc, &self.gen.contact(loc, idx)))
            }
        }
    }

    pub(crate) fn contact_by_raw(&self, raw: u64) -> Option<Value> {
        self.current(&self.read(), raw)
    }

    /// The contact as GET /contacts/{id} would answer it (`None` if unknown or deleted).
    pub fn contact(&self, id: &str) -> Option<Value> {
        let (_, raw) = self.decode(id)?;
        self.contact_by_raw(raw)
    }

    /// Live contacts of a location in GET /contacts/ listing order (dateAdded, then id).
    pub fn contact_ids(&self, location: &str) -> Vec<String> {
        let Some(li) = self.loc_index(location) else {
            return Vec::new();
        };
        let ov = self.read();
        let mut out = Vec::with_capacity(self.locs[li].order.len());
        self.walk(&ov, li, None, |raw, _, _| {
            if !matches!(ov.contacts.get(&raw), Some(None)) {
                out.push(self.gen.codec.encode(raw));
            }
            true
        });
        out
    }

    /// Number of live contacts in a location.
    pub(crate) fn live_count(&self, li: usize) -> u64 {
        let ov = self.read();
        u64::from(self.locs[li].meta.contacts) + u64::from(ov.created_count[li])
            - ov.deleted_count[li]
    }

    /// Calls `f(raw, dateAdded, key)` for each contact (deleted ones included) strictly after
    /// `after` in listing order until it returns false. Merges the seeded order with the
    /// created contacts, both sorted by (dateAdded, key).
    fn walk(
        &self,
        ov: &Overlay,
        li: usize,
        after: Option<(i64, u64)>,
        mut f: impl FnMut(u64, i64, u64) -> bool,
    ) {
        let loc = &self.locs[li];
        let mut i = after.map_or(0, |c| loc.order.partition_point(|e| (e.date, e.key) <= c));
        let lower = after.map_or(Bound::Unbounded, |(d, k)| Bound::Excluded((d, k, u64::MAX)));
        let mut created = ov.created[li].range((lower, Bound::Unbounded)).peekable();
        loop {
            let seeded = loc.order.get(i).map(|e| (e.date, e.key));
            let extra = created.peek().map(|&&(d, k, _)| (d, k));
            let take_created = match (seeded, extra) {
                (None, None) => break,
                (Some(s), Some(c)) => c < s,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            let (raw, date, key) = if take_created {
                match created.next() {
                    Some(&(d, k, raw)) => (raw, d, k),
                    None => break,
                }
            } else {
                let e = loc.order[i];
                i += 1;
                (Generator::raw(&loc.meta, e.idx), e.date, e.key)
            };
            if !f(raw, date, key) {
                break;
            }
        }
    }

    /// How many contacts (deleted ones included) come before the cursor, for page numbers.
    pub(crate) fn position(&self, li: usize, after: Option<(i64, u64)>) -> usize {
        let Some(c) = after else {
            return 0;
        };
        let ov = self.read();
        self.locs[li]
            .order
            .partition_point(|e| (e.date, e.key) <= c)
            + ov.created[li].range(..=(c.0, c.1, u64::MAX)).count()
    }

    /// Calls `f` with each live contact's raw id in listing order until it returns false.
    /// The lock is not held while `f` runs, so `f` may use the store.
    pub(crate) fn for_each_live(&self, li: usize, f: &mut dyn FnMut(u64) -> bool) {
        let mut cursor = None;
        loop {
            let mut batch = Vec::with_capacity(256);
            {
                let ov = self.read();
                let after = cursor;
                self.walk(&ov, li, after, |raw, d, k| {
                    cursor = Some((d, k));
                    if Self::is_live(&ov, raw) {
                        batch.push(raw);
                    }
                    batch.len() < 256
                });
            }
            if batch.is_empty() {
                return;
            }
            for raw in batch {
                if !f(raw) {
                    return;
                }
            }
        }
    }

    /// A page of live contacts strictly after the cursor `(dateAdded, key)`, skipping `skip`
    /// of them first; returns `(dateAdded, raw, JSON text)` and whether more follow. Seeded
    /// contacts are written straight to JSON text, without building a `Value`.
    pub(crate) fn list_page(
        &self,
        li: usize,
        after: Option<(i64, u64)>,
        skip: usize,
        limit: usize,
    ) -> (Vec<PageItem>, bool) {
        let ov = self.read();
        let loc = &self.locs[li].meta;
        let mut out = Vec::with_capacity(limit.min(1000));
        let mut skipped = 0;
        let mut more = false;
        self.walk(&ov, li, after, |raw, date, _| {
            let stored = ov.contacts.get(&raw);
            if matches!(stored, Some(None)) {
                return true;
            }
            if skipped < skip {
                skipped += 1;
                return true;
            }
            if out.len() == limit {
                more = true;
                return false;
            }
            let text = match stored {
                Some(Some(v)) => serde_json::to_vec(v).unwrap_or_default(),
                _ => {
                    let mut buf = Vec::with_capacity(2048);
                    self.gen
                        .write_contact(loc, &self.gen.contact(loc, raw as u32), &mut buf);
                    buf
                }
            };
            out.push((date, raw, text));
            true
        });
        (out, more)
    }

    /// The contact's JSON text (`None` if unknown or deleted).
    pub(crate) fn contact_text(&self, raw: u64) -> Option<Vec<u8>> {
        let ov = self.read();
        match ov.contacts.get(&raw) {
            Some(v) => v
                .as_ref()
                .map(|v| serde_json::to_vec(v).unwrap_or_default()),
            None => {
                let loc = &self.locs.get((raw >> 32) as usize)?.meta;
                let idx = raw as u32;
                (idx < loc.contacts).then(|| {
                    let mut buf = Vec::with_capacity(2048);
                    self.gen
                        .write_contact(loc, &self.gen.contact(loc, idx), &mut buf);
                    buf
                })
            }
        }
    }

    pub(crate) fn id_of(&self, raw: u64) -> String {
        self.gen.codec.encode(raw)
    }

    /// The sorted hits of a search, from the cache when no write happened since.
    pub(crate) fn hits(&self, li: usize, req: &SearchRequest) -> Arc<Vec<Hit>> {
        self.hits_by(li, &req.cache_key, req.sort, &|r| req.matches(r))
    }

    /// Like [`Store::hits`] for any predicate; `cache_key` must name the predicate and sort.
    pub(crate) fn hits_by(
        &self,
        li: usize,
        cache_key: &str,
        sort: Sort,
        keep: &dyn Fn(&dyn Record) -> bool,
    ) -> Arc<Vec<Hit>> {
        let generation = self.read().generation;
        {
            let mut cache = self.cache();
            if let Some(pos) = cache
                .iter()
                .position(|(k, g, _)| k == cache_key && *g == generation)
            {
                let entry = cache.remove(pos);
                let hits = entry.2.clone();
                cache.push(entry);
                return hits;
            }
        }
        let ov = self.read();
        let loc = &self.locs[li].meta;
        let mut hits = Vec::new();
        self.walk(&ov, li, None, |raw, _, key| {
            match ov.contacts.get(&raw) {
                Some(None) => {}
                Some(Some(v)) => {
                    if keep(v) {
                        hits.push(Hit {
                            sort: sort.value(v),
                            key,
                            raw,
                        });
                    }
                }
                None => {
                    let c = self.gen.contact(loc, raw as u32);
                    if keep(&c) {
                        hits.push(Hit {
                            sort: sort.value(&c),
                            key,
                            raw,
                        });
                    }
                }
            }
            true
        });
        let generation = ov.generation;
        drop(ov);
        hits.sort_by(|a, b| sort.cmp((&a.sort, a.key), (&b.sort, b.key)));
        let hits = Arc::new(hits);
        let mut cache = self.cache();
        cache.retain(|(k, g, _)| k != cache_key && *g == generation);
        if cache.len() >= CACHE_SLOTS {
            cache.remove(0);
        }
        cache.push((cache_key.to_string(), generation, hits.clone()));
        hits
    }

    /// Ids of the location's businesses.
    pub fn business_ids(&self, location: &str) -> Vec<String> {
        self.loc_index(location)
            .map(|li| {
                self.locs[li]
                    .meta
                    .businesses
                    .iter()
                    .map(|b| b.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn businesses(&self, li: usize) -> Vec<Value> {
        self.locs[li]
            .meta
            .businesses
            .iter()
            .map(|b| b.json.clone())
            .collect()
    }

    /// Contact custom-field definitions of a location (seeded, then created), as its
    /// customFields endpoint lists them.
    pub fn custom_fields(&self, location: &str) -> Vec<Value> {
        self.loc_index(location)
            .map(|li| self.custom_fields_of(li, Some("contact")))
            .unwrap_or_default()
    }

    /// Forget the seeded custom-field definitions (only for locations without seeded
    /// contacts, whose values would name them).
    pub(crate) fn drop_seeded_fields(&mut self) {
        for l in &mut self.locs {
            l.meta.fields.clear();
        }
    }

    /// Field definitions of one model (`contact`, `opportunity`), or of all models.
    pub(crate) fn custom_fields_of(&self, li: usize, model: Option<&str>) -> Vec<Value> {
        let loc = &self.locs[li].meta;
        let mut out: Vec<Value> = loc.fields.iter().map(|f| f.to_json(&loc.id)).collect();
        out.extend(self.catalog.fields(li));
        out.retain(|f| model.is_none_or(|m| f.get("model").and_then(Value::as_str) == Some(m)));
        out
    }

    /// The id of a location's contact field named by id or key (`contact.lead_score` or
    /// `lead_score`).
    pub(crate) fn field_id(&self, li: usize, id_or_key: &str) -> Option<String> {
        match self.locs[li].meta.field_by_id_or_key(id_or_key) {
            Some(f) => Some(f.id.clone()),
            None => self.catalog.field_id(li, "contact", id_or_key),
        }
    }

    /// Creates a field definition unless its `fieldKey` is taken; `make` builds its JSON from
    /// a fresh id.
    pub(crate) fn create_custom_field(
        &self,
        li: usize,
        key: &str,
        make: impl FnOnce(String) -> Value,
    ) -> Option<Value> {
        let loc = &self.locs[li].meta;
        let seed = self.gen.seed;
        self.catalog.add_field(
            li,
            key,
            |k| loc.fields.iter().any(|f| f.key == k),
            |n| make(hashed_id(&[seed, 0xF1E1D, n])),
        )
    }

    fn seeded_children(&self, raw: u64, kind: Child) -> Vec<Value> {
        let li = (raw >> 32) as usize;
        let loc = &self.locs[li].meta;
        let idx = raw as u32;
        if idx >= loc.contacts {
            return Vec::new();
        }
        let id = self.gen.codec.encode(raw);
        let date = loc.date_added(idx);
        match kind {
            Child::Tasks => self.gen.tasks(loc, raw, &id, date),
            Child::Notes => self.gen.notes(loc, raw, &id, date),
        }
    }

    fn is_live(ov: &Overlay, raw: u64) -> bool {
        !matches!(ov.contacts.get(&raw), Some(None))
    }

    /// Tasks or notes of a live contact (`None` if the contact is unknown or deleted).
    pub(crate) fn children(&self, raw: u64, kind: Child) -> Option<Vec<Value>> {
        let ov = self.read();
        if !Self::is_live(&ov, raw) {
            return None;
        }
        let map = match kind {
            Child::Tasks => &ov.tasks,
            Child::Notes => &ov.notes,
        };
        Some(match map.get(&raw) {
            Some(list) => list.clone(),
            None => self.seeded_children(raw, kind),
        })
    }

    /// Runs `f` on the tasks or notes of a live contact and keeps what it leaves.
    pub(crate) fn with_children<R>(
        &self,
        raw: u64,
        kind: Child,
        f: impl FnOnce(&mut Vec<Value>) -> R,
    ) -> Option<R> {
        let mut ov = self.write();
        if !Self::is_live(&ov, raw) {
            return None;
        }
        let seeded = match kind {
            Child::Tasks => &ov.tasks,
            Child::Notes => &ov.notes,
        }
        .contains_key(&raw);
        let initial = if seeded {
            Vec::new()
        } else {
            self.seeded_children(raw, kind)
        };
        let map = match kind {
            Child::Tasks => &mut ov.tasks,
            Child::Notes => &mut ov.notes,
        };
        let list = map.entry(raw).or_insert(initial);
        Some(f(list))
    }

    /// A fresh id for a created task or note.
    pub(crate) fn new_child_id(&self) -> String {
        let n = self.next_child.fetch_add(1, Ordering::Relaxed);
        hashed_id(&[self.gen.seed, 0xC417D, n])
    }

    /// Tasks of the contact, as GET /contacts/{id}/tasks would answer.
    pub fn tasks(&self, contact_id: &str) -> Vec<Value> {
        self.decode(contact_id)
            .and_then(|(_, raw)| self.children(raw, Child::Tasks))
            .unwrap_or_default()
    }

    /// Notes of the contact, as GET /contacts/{id}/notes would answer.
    pub fn notes(&self, contact_id: &str) -> Vec<Value> {
        self.decode(contact_id)
            .and_then(|(_, raw)| self.children(raw, Child::Notes))
            .unwrap_or_default()
    }

    /// Appointments of the contact (seeded only; the sandbox does not write them).
    pub fn appointments(&self, contact_id: &str) -> Vec<Value> {
        let Some((li, raw)) = self.decode(contact_id) else {
            return Vec::new();
        };
        if !Self::is_live(&self.read(), raw) {
            return Vec::new();
        }
        let loc = &self.locs[li].meta;
        let idx = raw as u32;
        if idx >= loc.contacts {
            return Vec::new();
        }
        self.gen
            .appointments(loc, raw, contact_id, loc.date_added(idx))
    }

    fn reindex(ov: &mut Overlay, li: usize, raw: u64, old: Option<&Value>, new: Option<&Value>) {
        let email =
            |v: Option<&Value>| v.and_then(|v| v.get("email")?.as_str().map(str::to_lowercase));
        let phone = |v: Option<&Value>| v.and_then(|v| phone_key(v.get("phone")?.as_str()?));
        for (map, old_k, new_k) in [
            (&mut ov.emails, email(old), email(new)),
            (&mut ov.phones, phone(old), phone(new)),
        ] {
            if old_k == new_k {
                continue;
            }
            if let Some(k) = old_k {
                if let Some(list) = map.get_mut(&(li, k)) {
                    list.retain(|r| *r != raw);
                }
            }
            if let Some(k) = new_k {
                map.entry((li, k)).or_default().push(raw);
            }
        }
    }

    /// Creates a contact in a location: `fill` sets its fields on a base record.
    pub(crate) fn create_contact(
        &self,
        li: usize,
        fill: impl FnOnce(&mut Map<String, Value>),
    ) -> Value {
        let mut ov = self.write();
        let loc = &self.locs[li].meta;
        let idx = loc.contacts + ov.created_count[li];
        ov.created_count[li] += 1;
        let raw = Generator::raw(loc, idx);
        let key = self.gen.codec.key(raw);
        let now = now_ms();
        let mut m = Map::new();
        m.insert("id".into(), json!(self.gen.codec.encode(raw)));
        m.insert("locationId".into(), json!(loc.id));
        m.insert("dateAdded".into(), json!(iso_ms(now)));
        m.insert("dateUpdated".into(), json!(iso_ms(now)));
        m.insert("tags".into(), json!([]));
        m.insert("customFields".into(), json!([]));
        m.insert("dnd".into(), json!(false));
        m.insert("type".into(), json!("lead"));
        fill(&mut m);
        let v = Value::Object(m);
        Self::reindex(&mut ov, li, raw, None, Some(&v));
        ov.created[li].insert((now, key, raw));
        ov.contacts.insert(raw, Some(v.clone()));
        ov.generation += 1;
        v
    }

    /// Applies `f` to a live contact, stamps dateUpdated and keeps the result.
    pub(crate) fn update_contact(
        &self,
        raw: u64,
        f: impl FnOnce(&mut Map<String, Value>),
    ) -> Option<Value> {
        self.change_contact(raw, f).map(|(_, new)| new)
    }

    /// Like [`Store::update_contact`], returning the contact before and after, for the
    /// webhooks that depend on what changed.
    pub(crate) fn change_contact(
        &self,
        raw: u64,
        f: impl FnOnce(&mut Map<String, Value>),
    ) -> Option<(Value, Value)> {
        let mut ov = self.write();
        let old = self.current(&ov, raw)?;
        let Value::Object(mut m) = old.clone() else {
            return None;
        };
        f(&mut m);
        m.insert("dateUpdated".into(), json!(iso_ms(now_ms())));
        let v = Value::Object(m);
        Self::reindex(&mut ov, (raw >> 32) as usize, raw, Some(&old), Some(&v));
        ov.contacts.insert(raw, Some(v.clone()));
        ov.generation += 1;
        Some((old, v))
    }

    /// Changes a contact's fields as `PUT /contacts/{id}` would, without the API's checks: for
    /// states a location with other settings holds, such as two contacts sharing an email
    /// where duplicates are allowed. False if the contact is unknown or gone.
    pub fn edit_contact(&self, id: &str, f: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let Some((_, raw)) = self.decode(id) else {
            return false;
        };
        self.update_contact(raw, f).is_some()
    }

    /// Deletes a contact as DELETE /contacts/{id} would; false if it was unknown or gone.
    pub fn delete_contact(&self, id: &str) -> bool {
        self.remove_contact(id).is_some()
    }

    /// Deletes a contact, returning it as it was (`None` if it was unknown or gone).
    pub(crate) fn remove_contact(&self, id: &str) -> Option<Value> {
        let (li, raw) = self.decode(id)?;
        let mut ov = self.write();
        let old = self.current(&ov, raw)?;
        Self::reindex(&mut ov, li, raw, Some(&old), None);
        ov.contacts.insert(raw, None);
        ov.tasks.remove(&raw);
        ov.notes.remove(&raw);
        ov.deleted_count[li] += 1;
        ov.generation += 1;
        Some(old)
    }

    fn dup_index(&self, li: usize) -> &DupIndex {
        self.locs[li].dup.get_or_init(|| {
            let loc = &self.locs[li].meta;
            let mut d = DupIndex::default();
            for idx in 0..loc.contacts {
                let c = self.gen.contact(loc, idx);
                if let Some(e) = &c.email {
                    d.email.push((hash_str(&e.to_lowercase()), idx));
                }
                if let Some(p) = c.phone.as_deref().and_then(phone_key) {
                    d.phone.push((hash_str(&p), idx));
                }
            }
            d.email.sort_unstable();
            d.phone.sort_unstable();
            d
        })
    }

    /// The contact an upsert updates, by the location's [`DuplicateRule`]: the contact with
    /// the same e-mail (case-insensitive), else the same phone ([`phone_key`]), or the other
    /// way round, and which of the two matched. `None` when neither is given or nothing
    /// matches.
    pub(crate) fn find_duplicate(
        &self,
        li: usize,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Option<(u64, DupKey)> {
        let on = |key: DupKey, v: &str| self.find_by(li, key, v).map(|raw| (raw, key));
        let by_email = || email.and_then(|e| on(DupKey::Email, e));
        let by_phone = || phone.and_then(|p| on(DupKey::Phone, p));
        match self.catalog.rule(li) {
            DuplicateRule::EmailThenPhone => by_email().or_else(by_phone),
            DuplicateRule::PhoneThenEmail => by_phone().or_else(by_email),
        }
    }

    /// The live contact of a location whose e-mail or phone matches `value`.
    pub(crate) fn find_by(&self, li: usize, key: DupKey, value: &str) -> Option<u64> {
        let norm = match key {
            DupKey::Email => Some(value.trim().to_lowercase()).filter(|e| !e.is_empty()),
            DupKey::Phone => phone_key(value),
        }?;
        let dup = self.dup_index(li);
        let loc = &self.locs[li].meta;
        let ov = self.read();
        let (written, seeded) = match key {
            DupKey::Email => (&ov.emails, &dup.email),
            DupKey::Phone => (&ov.phones, &dup.phone),
        };
        let h = hash_str(&norm);
        let start = seeded.partition_point(|e| e.0 < h);
        let mut cands: Vec<u64> = written
            .get(&(li, norm.clone()))
            .cloned()
            .unwrap_or_default();
        cands.extend(
            seeded[start..]
                .iter()
                .take_while(|e| e.0 == h)
                .map(|e| Generator::raw(loc, e.1)),
        );
        cands.into_iter().find(|&raw| {
            let cur = self.current(&ov, raw);
            let field = cur.as_ref().and_then(|v| v.get(key.field())?.as_str());
            match key {
                DupKey::Email => field.map(str::to_lowercase),
                DupKey::Phone => field.and_then(phone_key),
            }
            .as_deref()
                == Some(norm.as_str())
        })
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The duplicate rule of a location (by id); `None` for an unknown location.
    pub fn duplicate_rule(&self, location: &str) -> Option<DuplicateRule> {
        Some(self.catalog.rule(self.loc_index(location)?))
    }

    /// Sets a location's duplicate rule; false for an unknown location.
    pub fn set_duplicate_rule(&self, location: &str, rule: DuplicateRule) -> bool {
        let Some(li) = self.loc_index(location) else {
            return false;
        };
        self.catalog.set_rule(li, rule);
        true
    }

    fn program_ids(&self, location: &str, p: Program) -> Vec<String> {
        self.loc_index(location)
            .map(|li| {
                self.catalog
                    .programs(li, p)
                    .iter()
                    .map(|n| n.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ids of the location's workflows (seeded; contacts can be enrolled through the API).
    pub fn workflow_ids(&self, location: &str) -> Vec<String> {
        self.program_ids(location, Program::Workflow)
    }

    /// Ids of the location's campaigns (seeded).
    pub fn campaign_ids(&self, location: &str) -> Vec<String> {
        self.program_ids(location, Program::Campaign)
    }

    /// Ids of the location's users: who tasks are assigned to and who may follow a contact.
    pub fn user_ids(&self, location: &str) -> Vec<String> {
        self.loc_index(location)
            .map(|li| self.locs[li].meta.users.clone())
            .unwrap_or_default()
    }

    fn enrolled(&self, contact_id: &str, p: Program) -> Vec<String> {
        self.decode(contact_id)
            .map(|(_, raw)| self.catalog.enrolled(p, raw))
            .unwrap_or_default()
    }

    /// Workflows the contact has been added to through the API.
    pub fn workflows_of(&self, contact_id: &str) -> Vec<String> {
        self.enrolled(contact_id, Program::Workflow)
    }

    /// Campaigns the contact has been added to through the API.
    pub fn campaigns_of(&self, contact_id: &str) -> Vec<String> {
        self.enrolled(contact_id, Program::Campaign)
    }
}

/// What a duplicate is matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupKey {
    Email,
    Phone,
}

impl DupKey {
    pub fn field(self) -> &'static str {
        match self {
            DupKey::Email => "email",
            DupKey::Phone => "phone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_search;

    #[test]
    fn listing_order_is_date_then_id_and_cursor_pages_cover_all() {
        let s = Store::new(42, 1, 3000);
        let loc = s.location_ids().remove(0);
        let ids = s.contact_ids(&loc);
        assert_eq!(ids.len(), 3000);
        let dated: Vec<(String, String)> = ids
            .iter()
            .map(|id| {
                let c = s.contact(id).unwrap();
                (c["dateAdded"].as_str().unwrap().to_string(), id.clone())
            })
            .collect();
        let mut sorted = dated.clone();
        sorted.sort();
        assert_eq!(dated, sorted);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (page, more) = s.list_page(0, cursor, 0, 100);
            for (date, raw, text) in &page {
                let c: Value = serde_json::from_slice(text).unwrap();
                let id = c["id"].as_str().unwrap().to_string();
                assert_eq!(id, s.id_of(*raw));
                cursor = Some((*date, crate::ids::IdCodec::sort_key_of(&id).unwrap()));
                seen.push(id);
            }
            if !more {
                break;
            }
        }
        assert_eq!(seen, ids);
    }

    #[test]
    fn writes_show_in_reads_and_order() {
        let s = Store::new(1, 2, 50);
        let loc = s.location_ids()[1].clone();
        let first = s.contact_ids(&loc)[0].clone();
        assert!(s.delete_contact(&first));
        assert!(!s.delete_contact(&first));
        assert!(s.contact(&first).is_none());
        assert_eq!(s.live_count(1), 49);
        let created = s.create_contact(1, |m| {
            m.insert("email".into(), json!("New@Example.com"));
        });
        let id = created["id"].as_str().unwrap().to_string();
        let ids = s.contact_ids(&loc);
        assert_eq!(ids.last(), Some(&id));
        assert!(!ids.contains(&first));
        assert_eq!(s.contact(&id).unwrap()["email"], "New@Example.com");
        let (_, raw) = s.decode(&id).unwrap();
        assert_eq!(
            s.find_duplicate(1, Some("new@example.COM"), None),
            Some((raw, DupKey::Email))
        );
        s.update_contact(raw, |m| {
            m.insert("email".into(), json!("other@example.com"));
        });
        assert_eq!(s.find_duplicate(1, Some("new@example.com"), None), None);
        let seeded = s.contact(&ids[3]).unwrap();
        if let Some(e) = seeded.get("email").and_then(Value::as_str) {
            let (_, r3) = s.decode(&ids[3]).unwrap();
            assert_eq!(
                s.find_duplicate(1, Some(e), None),
                Some((r3, DupKey::Email))
            );
        }
    }

    #[test]
    fn phones_match_by_key_and_the_rule_orders_the_match() {
        for p in [
            "+1 888-555-0101",
            "(888) 555-0101",
            "0018885550101",
            "18885550101",
        ] {
            assert_eq!(phone_key(p).as_deref(), Some("18885550101"), "{p}");
        }
        assert_eq!(
            phone_key("+44 20 7946 0958").as_deref(),
            Some("442079460958")
        );
        assert_eq!(phone_key("020 7946 0958").as_deref(), Some("02079460958"));
        assert_eq!(phone_key("12-34"), None);
        let s = Store::new(5, 1, 10);
        let mail = s.create_contact(0, |m| {
            m.insert("email".into(), json!("x@example.com"));
        });
        let tel = s.create_contact(0, |m| {
            m.insert("phone".into(), json!("+1 888 555 0101"));
        });
        let raw = |c: &Value| s.decode(c["id"].as_str().unwrap()).unwrap().1;
        let both = (Some("X@example.com"), Some("888.555.0101"));
        assert_eq!(
            s.find_duplicate(0, both.0, both.1),
            Some((raw(&mail), DupKey::Email))
        );
        let loc = s.location_ids().remove(0);
        assert!(s.set_duplicate_rule(&loc, DuplicateRule::PhoneThenEmail));
        assert_eq!(
            s.find_duplicate(0, both.0, both.1),
            Some((raw(&tel), DupKey::Phone))
        );
        assert_eq!(s.find_duplicate(0, None, None), None);
    }

    #[test]
    fn children_overlay_and_cached_search() {
        let s = Store::new(3, 1, 200);
        let loc = s.location_ids()[0].clone();
        let id = s.contact_ids(&loc)[5].clone();
        let (_, raw) = s.decode(&id).unwrap();
        let before = s.tasks(&id).len();
        s.with_children(raw, Child::Tasks, |t| t.push(json!({"id": "t"})));
        assert_eq!(s.tasks(&id).len(), before + 1);
        let req = parse_search(&json!({"locationId": loc, "pageLimit": 10,
            "filters": [{"field": "tags", "operator": "contains", "value": "vip"}]}))
        .unwrap();
        let hits = s.hits(0, &req);
        let expected = s
            .contact_ids(&loc)
            .iter()
            .filter(|i| {
                let c = s.contact(i).unwrap();
                c["tags"].as_array().unwrap().iter().any(|t| t == "vip")
            })
            .count();
        assert_eq!(hits.len(), expected);
        assert!(Arc::ptr_eq(&hits, &s.hits(0, &req)));
        s.delete_contact(&id);
        assert!(!Arc::ptr_eq(&hits, &s.hits(0, &req)));
    }
}
