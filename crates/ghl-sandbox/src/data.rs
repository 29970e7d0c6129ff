//! Seeded sandbox data: locations, contacts, tasks, notes, appointments, businesses and
//! custom-field definitions, each a pure function of (seed, location index, record index).
//!
//! The data is deliberately messy, the way real CRM exports are: accents, CJK, emoji and
//! right-to-left names; fields that are `null` or simply absent; commas, quotes and newlines
//! inside values; values starting with `=`, `+`, `-` or `@`; e-mails in odd case; phones in
//! several national formats; custom-field values that are numbers, arrays or objects; and
//! import bursts where hundreds of contacts share one `dateAdded` millisecond. Nothing here
//! knows about writes: the [`super::store`] overlay keeps those.

use super::ids::{hash, hashed_id, hex_id, unit, IdCodec};
use chrono::{DateTime, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

/// First `dateAdded` of every location: 2019-01-01T00:00:00Z.
pub const TIMELINE_START_MS: i64 = 1_546_300_800_000;
/// Length of a location's history (about six years), however many contacts it holds.
pub const TIMELINE_SPAN_MS: i64 = 200_000_000_000;

/// Domain separators for [`hash`], so that two aspects of one record never share a stream.
mod aspect {
    pub const LOCATION: u64 = 1;
    pub const TIMELINE: u64 = 2;
    pub const CONTACT: u64 = 3;
    pub const TASKS: u64 = 4;
    pub const NOTES: u64 = 5;
    pub const EVENTS: u64 = 6;
    pub const CUSTOM: u64 = 7;
    pub const BUSINESS: u64 = 8;
    pub const FIELD: u64 = 9;
    pub const USER: u64 = 10;
    pub const ATTRIBUTION: u64 = 11;
    pub const CALENDAR: u64 = 12;
}

fn rng(parts: &[u64]) -> SmallRng {
    SmallRng::seed_from_u64(hash(parts))
}

fn pick<'a, T>(r: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[r.random_range(0..items.len())]
}

/// `2021-07-02T05:18:26.704Z`, the timestamp format of GHL's contact JSON.
pub fn iso_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => String::new(),
    }
}

/// `2021-07-16 11:00:00`, the format of appointment times in the spec's examples.
fn plain_time(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => String::new(),
    }
}

/// Epoch milliseconds of an RFC 3339 timestamp or a `YYYY-MM-DD` date.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(dt.timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

const FIRST_PLAIN: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Daniel",
    "Karen",
    "Priya",
    "Wei",
    "Aisha",
    "Carlos",
    "Olga",
];
const FIRST_WORLD: &[&str] = &[
    "José",
    "Zoë",
    "Björn",
    "François",
    "Łukasz",
    "Søren",
    "Chloé",
    "Renée",
    "Ana María",
    "Jean-Luc",
    "Olúwaseun",
    "Ælfred",
    "Nguyễn Văn",
    "李",
    "王芳",
    "さくら",
    "翔太",
    "민준",
    "서연",
    "محمد",
    "فاطمة",
    "יוסף",
    "שרה",
    "D'Angelo",
    "Sunny 😀",
    "Ram 🚀",
    "Dr. Emily",
    "Anne\nMarie",
    "Marie, Claire",
    "\"JJ\"",
];
const FIRST_BAIT: &[&str] = &[
    "=1+1",
    "+Jane",
    "-Bob",
    "@Alice",
    "=HYPERLINK(\"http://x\")",
];
const LAST_PLAIN: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Moore", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Patel",
    "Kim",
];
const LAST_WORLD: &[&str] = &[
    "García",
    "Müller",
    "O'Connor",
    "Nguyễn",
    "Smith, Jr.",
    "van der Berg",
    "Żółć",
    "Åström",
    "张",
    "佐藤",
    "김",
    "الأحمد",
    "כהן",
    "Dubois-Lefèvre",
    "\"The Rock\" Johnson",
    "Ødegård",
    "Ωmega",
    "🦄",
];
const LAST_BAIT: &[&str] = &["=SUM(A1:A9)", "+44", "-", "@home"];
const COMPANIES: &[&str] = &[
    "Acme, Inc.",
    "\"Best\" Widgets LLC",
    "Müller & Söhne GmbH",
    "東京商事株式会社",
    "شركة الأمل",
    "Globex\nCorporation",
    "=IMPORTXML(\"http://x\")",
    "Initech",
    "Umbrella Corp.",
    "Stark Industries",
    "",
];
const TAGS: &[&str] = &[
    "customer",
    "lead",
    "vip",
    "newsletter",
    "webinar 2024",
    "cold",
    "hot lead",
    "follow-up",
    "churned",
    "partner",
    "imported, csv",
    "ünïcode",
    "東京",
    "=formula",
];
const SOURCES: &[&str] = &[
    "public api",
    "form",
    "import",
    "Facebook Lead Ad",
    "Website chat",
    "manual",
    "Zapier",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "example.net",
    "test.example.co.uk",
];
const CITIES: &[(&str, &str, &str, &str, &str)] = &[
    ("Dolomite", "AL", "US", "35061", "America/Chicago"),
    ("São Paulo", "SP", "BR", "01310-100", "America/Sao_Paulo"),
    ("München", "BY", "DE", "80331", "Europe/Berlin"),
    ("London", "", "GB", "SW1A 1AA", "Europe/London"),
    ("東京", "Tokyo", "JP", "100-0001", "Asia/Tokyo"),
    ("Tel Aviv", "", "IL", "61000", "Asia/Jerusalem"),
    ("Cairo", "", "EG", "11511", "Africa/Cairo"),
    ("Austin", "TX", "US", "73301", "America/Chicago"),
];
const STREETS: &[&str] = &[
    "3535 1st St N",
    "221B Baker Street",
    "Unit 4, 12 Rue de l'Église",
    "1600 Amphitheatre Pkwy\nBuilding 40",
    "Calle \"Mayor\", 5",
];
const TASK_TITLES: &[&str] = &[
    "Call back",
    "Send proposal",
    "Follow up on invoice #1042",
    "Book demo, then e-mail",
    "Review \"contract\" draft",
    "Rückruf vereinbaren",
    "見積書を送る",
    "=FOLLOWUP()",
];
const NOTE_LINES: &[&str] = &[
    "Spoke with the client about renewal.",
    "Prefers e-mail over phone, \"never after 6pm\".",
    "Budget: $5,000 - $7,500",
    "Kunde möchte Rückruf.",
    "顧客は来週連絡する予定です。",
    "العميل مهتم بالعرض",
    "=HYPERLINK(\"http://example.com\")",
    "- bullet one\n- bullet two",
    "Met at the conference 🎉",
];
const OPTIONS_COLOUR: &[&str] = &["Red", "Green", "Blue", "Ultra-violet, deep", "Grün"];
const OPTIONS_INTERESTS: &[&str] = &["Sports", "Music", "Travel", "Cooking", "Reading, fiction"];
const OPTIONS_CONSENT: &[&str] = &["Email", "SMS", "Phone"];

/// One custom field as the location's customFields endpoint lists it.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub id: String,
    pub name: &'static str,
    pub key: &'static str,
    pub data_type: &'static str,
    pub options: &'static [&'static str],
    pub position: u32,
}

const FIELD_TEMPLATES: &[(&str, &str, &str, &[&str])] = &[
    ("Lead Score", "contact.lead_score", "NUMERICAL", &[]),
    (
        "Favourite Colour",
        "contact.favourite_colour",
        "SINGLE_OPTIONS",
        OPTIONS_COLOUR,
    ),
    ("Signup Date", "contact.signup_date", "DATE", &[]),
    ("Background", "contact.background", "LARGE_TEXT", &[]),
    ("Nickname", "contact.nickname", "TEXT", &[]),
    ("Budget", "contact.budget", "MONETORY", &[]),
    (
        "Interests",
        "contact.interests",
        "MULTIPLE_OPTIONS",
        OPTIONS_INTERESTS,
    ),
    ("Consent", "contact.consent", "CHECKBOX", OPTIONS_CONSENT),
    ("Alt Phone", "contact.alt_phone", "PHONE", &[]),
    ("Contract", "contact.contract", "FILE_UPLOAD", &[]),
    ("Referral Code", "contact.referral_code", "TEXT", &[]),
];

impl FieldDef {
    pub fn to_json(&self, location_id: &str) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("fieldKey".into(), json!(self.key));
        m.insert("placeholder".into(), json!(self.name));
        m.insert("dataType".into(), json!(self.data_type));
        m.insert("position".into(), json!(self.position));
        if !self.options.is_empty() {
            m.insert("picklistOptions".into(), json!(self.options));
        }
        if self.data_type == "FILE_UPLOAD" {
            m.insert("isMultiFileAllowed".into(), json!(true));
            m.insert("maxFileLimit".into(), json!(4));
        }
        m.insert("locationId".into(), json!(location_id));
        m.insert("model".into(), json!("contact"));
        Value::Object(m)
    }
}

/// One business of a location (`GET /businesses/`).
#[derive(Debug, Clone)]
pub struct Business {
    pub id: String,
    pub json: Value,
}

/// Everything fixed about one location: ids, the import timeline, businesses, fields, users.
#[derive(Debug)]
pub struct Location {
    pub index: usize,
    pub id: String,
    /// Number of seeded contacts; created contacts get indices from here on.
    pub contacts: u32,
    /// `(first contact index, dateAdded ms)` of each import burst, ascending in both.
    bursts: Vec<(u32, i64)>,
    pub businesses: Vec<Business>,
    pub fields: Vec<FieldDef>,
    pub users: Vec<String>,
    calendars: Vec<String>,
}

impl Location {
    pub fn new(seed: u64, index: usize, contacts: u32) -> Location {
        let li = index as u64;
        let id = hashed_id(&[seed, aspect::LOCATION, li]);
        let mut r = rng(&[seed, aspect::TIMELINE, li]);
        // Import bursts (20..500 contacts in one millisecond) dominate, as after CSV imports.
        let expected_bursts = (f64::from(contacts) / 27.0).max(1.0);
        let mean_gap = (TIMELINE_SPAN_MS as f64 / expected_bursts).max(2.0) as i64;
        let mut starts = Vec::new();
        let mut gaps = Vec::new();
        let mut i: u32 = 0;
        while i < contacts {
            starts.push(i);
            let u: f64 = r.random();
            let size: u32 = if u < 0.10 {
                r.random_range(20..=500)
            } else if u < 0.30 {
                r.random_range(2..=5)
            } else {
                1
            };
            i = i.saturating_add(size);
            gaps.push(r.random_range(1..=2 * mean_gap));
        }
        // Squeeze the history into the span, so that every seeded contact predates the
        // contacts created at run time.
        let total: i64 = gaps.iter().sum();
        let scale = if total > TIMELINE_SPAN_MS {
            TIMELINE_SPAN_MS as f64 / total as f64
        } else {
            1.0
        };
        let mut t = 0i64;
        let mut bursts = Vec::with_capacity(starts.len());
        for (start, gap) in starts.into_iter().zip(gaps) {
            bursts.push((start, TIMELINE_START_MS + (t as f64 * scale) as i64));
            t += gap;
        }
        let businesses = (0..6u64)
            .map(|b| {
                let bid = hex_id(&[seed, aspect::BUSINESS, li, b]);
                let names = [
                    "Acme, Inc.",
                    "Müller & Söhne GmbH",
                    "\"Quoted\" Holdings",
                    "東京商事",
                    "شركة الأمل",
                    "Globex",
                ];
                let created = TIMELINE_START_MS - 86_400_000 * (b as i64 + 1);
                let json = json!({
                    "id": bid,
                    "name": names[b as usize % names.len()],
                    "phone": format!("+1555010{:04}", b),
                    "email": format!("info{}@biz.example.com", b),
                    "website": "https://example.com",
                    "address": STREETS[b as usize % STREETS.len()],
                    "city": CITIES[b as usize % CITIES.len()].0,
                    "description": "Seeded business,\nwith a second line",
                    "state": CITIES[b as usize % CITIES.len()].1,
                    "postalCode": CITIES[b as usize % CITIES.len()].3,
                    "country": CITIES[b as usize % CITIES.len()].2,
                    "updatedBy": {"source": "INTEGRATION", "channel": "OAUTH"},
                    "locationId": id,
                    "createdBy": {"source": "INTEGRATION", "channel": "OAUTH"},
                    "createdAt": iso_ms(created),
                    "updatedAt": iso_ms(created + 3_600_000),
                });
                Business { id: bid, json }
            })
            .collect();
        let fields = FIELD_TEMPLATES
            .iter()
            .enumerate()
            .map(|(n, (name, key, data_type, options))| FieldDef {
                id: hashed_id(&[seed, aspect::FIELD, li, n as u64]),
                name,
                key,
                data_type,
                options,
                position: n as u32 * 50,
            })
            .collect();
        let users = (0..5u64)
            .map(|u| hashed_id(&[seed, aspect::USER, li, u]))
            .collect();
        let calendars = (0..3u64)
            .map(|c| hashed_id(&[seed, aspect::CALENDAR, li, c]))
            .collect();
        Location {
            index,
            id,
            contacts,
            bursts,
            businesses,
            fields,
            users,
            calendars,
        }
    }

    /// `dateAdded` of a seeded contact (non-decreasing in the index).
    pub fn date_added(&self, idx: u32) -> i64 {
        let at = self.bursts.partition_point(|b| b.0 <= idx);
        self.bursts
            .get(at.saturating_sub(1))
            .map_or(TIMELINE_START_MS, |b| b.1)
    }

    pub fn field_by_id_or_key(&self, id_or_key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| {
            f.id == id_or_key
                || f.key == id_or_key
                || f.key.strip_prefix("contact.") == Some(id_or_key)
        })
    }
}

/// A seeded contact's fields, cheap to filter on before it is turned into JSON.
#[derive(Debug, Clone)]
pub struct Contact {
    pub raw: u64,
    pub idx: u32,
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub source: Option<String>,
    pub assigned_to: Option<String>,
    pub tags: Vec<String>,
    pub business_id: Option<String>,
    pub dnd: bool,
    pub date_added: i64,
    pub date_updated: i64,
    pub contact_type: &'static str,
    /// Where `(city, state, country, postalCode, timezone)` comes from, if the contact has one.
    pub place: Option<usize>,
    /// Whether absent values are written as `null` (true) or left out (false).
    pub nulls: bool,
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

/// How many tasks or notes a contact has: mostly 0-2, a few 20 or more.
fn skewed_count(h: u64) -> usize {
    let u = unit(h);
    let mut r = SmallRng::seed_from_u64(h);
    if u < 0.40 {
        0
    } else if u < 0.65 {
        1
    } else if u < 0.80 {
        2
    } else if u < 0.92 {
        r.random_range(3..=5)
    } else if u < 0.98 {
        r.random_range(6..=19)
    } else {
        r.random_range(20..=45)
    }
}

/// Generates records from the seed; shared by every location.
#[derive(Debug, Clone)]
pub struct Generator {
    pub seed: u64,
    pub codec: IdCodec,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            seed,
            codec: IdCodec::new(seed),
        }
    }

    pub fn raw(loc: &Location, idx: u32) -> u64 {
        ((loc.index as u64) << 32) | u64::from(idx)
    }

    /// The seeded contact `idx` of `loc` (which must be below `loc.contacts`).
    pub fn contact(&self, loc: &Location, idx: u32) -> Contact {
        let raw = Self::raw(loc, idx);
        let mut r = rng(&[self.seed, aspect::CONTACT, raw]);
        let u: f64 = r.random();
        let first_name = if u < 0.04 {
            None
        } else if u < 0.70 {
            Some(pick(&mut r, FIRST_PLAIN).to_string())
        } else if u < 0.96 {
            Some(pick(&mut r, FIRST_WORLD).to_string())
        } else {
            Some(pick(&mut r, FIRST_BAIT).to_string())
        };
        let u: f64 = r.random();
        let last_name = if u < 0.08 {
            None
        } else if u < 0.72 {
            Some(pick(&mut r, LAST_PLAIN).to_string())
        } else if u < 0.96 {
            Some(pick(&mut r, LAST_WORLD).to_string())
        } else {
            Some(pick(&mut r, LAST_BAIT).to_string())
        };
        let email = if r.random_bool(0.12) {
            None
        } else {
            let a = first_name
                .as_deref()
                .map(ascii_slug)
                .filter(|s| !s.is_empty());
            let b = last_name
                .as_deref()
                .map(ascii_slug)
                .filter(|s| !s.is_empty());
            let local = format!(
                "{}.{}{}{}",
                a.as_deref().unwrap_or("contact"),
                b.as_deref().unwrap_or("x"),
                idx,
                if r.random_bool(0.05) { "+crm" } else { "" }
            );
            let e = format!("{}@{}", local, pick(&mut r, DOMAINS));
            let u: f64 = r.random();
            Some(if u < 0.08 {
                e.to_uppercase()
            } else if u < 0.16 {
                let mut c = e.chars();
                c.next()
                    .map_or(e.clone(), |f| f.to_uppercase().chain(c).collect())
            } else {
                e
            })
        };
        let digits = 2_000_000_000u64
            + (u64::from(idx).wrapping_mul(7_919) + loc.index as u64 * 13) % 7_999_999_999;
        let d = format!("{digits:010}");
        let phone = match r.random_range(0..10) {
            0 | 1 => None,
            2..=4 => Some(format!("+1{d}")),
            5 => Some(format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..])),
            6 => Some(format!("{}-{}-{}", &d[..3], &d[3..6], &d[6..])),
            7 => Some(format!("+44 20 {} {}", &d[2..6], &d[6..])),
            8 => Some(format!("0{} {} {}", &d[1..4], &d[4..7], &d[7..])),
            _ => Some(format!("+49 30 {}", &d[3..])),
        };
        let company_name = r
            .random_bool(0.45)
            .then(|| pick(&mut r, COMPANIES).to_string());
        let source = r
            .random_bool(0.8)
            .then(|| pick(&mut r, SOURCES).to_string());
        let assigned_to = r.random_bool(0.5).then(|| pick(&mut r, &loc.users).clone());
        let ntags = match r.random_range(0..10) {
            0..=2 => 0,
            3..=5 => 1,
            6 | 7 => 2,
            8 => 3,
            _ => r.random_range(4..=5),
        };
        let mut tags: Vec<String> = Vec::with_capacity(ntags);
        while tags.len() < ntags {
            let t = pick(&mut r, TAGS).to_string();
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let business_id = r
            .random_bool(0.2)
            .then(|| pick(&mut r, &loc.businesses).id.clone());
        let dnd = r.random_bool(0.1);
        let date_added = loc.date_added(idx);
        let date_updated = if r.random_bool(0.4) {
            date_added
        } else {
            date_added + r.random_range(1..=400 * 86_400_000i64)
        };
        let contact_type = if r.random_bool(0.7) {
            "lead"
        } else {
            "customer"
        };
        let place = r.random_bool(0.75).then(|| r.random_range(0..CITIES.len()));
        let nulls = r.random_bool(0.5);
        Contact {
            raw,
            idx,
            id: self.codec.encode(raw),
            first_name,
            last_name,
            email,
            phone,
            company_name,
            source,
            assigned_to,
            tags,
            business_id,
            dnd,
            date_added,
            date_updated,
            contact_type,
            place,
            nulls,
        }
    }

    /// The contact as `GET /contacts/{id}` answers it.
    pub fn contact_json(&self, loc: &Location, c: &Contact) -> Value {
        let mut out = Vec::with_capacity(2048);
        self.write_contact(loc, c, &mut out);
        // The writer only emits valid JSON; an empty object would flag a bug loudly in tests.
        serde_json::from_slice(&out).unwrap_or_else(|_| json!({}))
    }

    /// Writes the contact's JSON text straight into `out`: listing pages of seeded contacts
    /// never build a `Value`, which is what makes them cheap.
    pub fn write_contact(&self, loc: &Location, c: &Contact, out: &mut Vec<u8>) {
        let mut r = rng(&[self.seed, aspect::ATTRIBUTION, c.raw]);
        let mut w = ObjWriter::new(out);
        w.str("id", &c.id);
        w.str("locationId", &loc.id);
        let full = match (&c.first_name, &c.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        };
        let full_lower = full.as_ref().map(|s| s.to_lowercase());
        w.opt("contactName", full_lower.as_deref(), c.nulls);
        w.opt("firstName", c.first_name.as_deref(), c.nulls);
        w.opt("lastName", c.last_name.as_deref(), c.nulls);
        w.opt(
            "firstNameLowerCase",
            c.first_name.as_ref().map(|s| s.to_lowercase()).as_deref(),
            c.nulls,
        );
        w.opt(
            "lastNameLowerCase",
            c.last_name.as_ref().map(|s| s.to_lowercase()).as_deref(),
            c.nulls,
        );
        w.opt("fullNameLowerCase", full_lower.as_deref(), c.nulls);
        w.opt("companyName", c.company_name.as_deref(), c.nulls);
        w.opt("email", c.email.as_deref(), c.nulls);
        w.opt(
            "emailLowerCase",
            c.email.as_ref().map(|s| s.to_lowercase()).as_deref(),
            c.nulls,
        );
        w.opt("phone", c.phone.as_deref(), c.nulls);
        w.raw("dnd", if c.dnd { "true" } else { "false" });
        if c.dnd || r.random_bool(0.2) {
            w.key("dndSettings");
            let mut s = ObjWriter::new(w.out);
            for ch in ["Call", "Email", "SMS", "WhatsApp", "GMB", "FB"] {
                if c.dnd || r.random_bool(0.3) {
                    let status = if c.dnd {
                        if r.random_bool(0.2) {
                            "permanent"
                        } else {
                            "active"
                        }
                    } else {
                        "inactive"
                    };
                    s.key(ch);
                    let mut e = ObjWriter::new(s.out);
                    e.str("status", status);
                    if r.random_bool(0.5) {
                        e.str("message", "Updated by user, via \"settings\"");
                        e.str("code", "101");
                    }
                    e.close();
                }
            }
            s.close();
        }
        w.str("type", c.contact_type);
        w.opt("source", c.source.as_deref(), c.nulls);
        w.opt("assignedTo", c.assigned_to.as_deref(), c.nulls);
        let place = c.place.map(|p| CITIES[p]);
        let street = place.map(|_| *pick(&mut r, STREETS));
        w.opt("address1", street, c.nulls);
        w.opt("city", place.map(|p| p.0), c.nulls);
        w.opt("state", place.map(|p| p.1), c.nulls);
        w.opt("country", place.map(|p| p.2), c.nulls);
        w.opt("postalCode", place.map(|p| p.3), c.nulls);
        w.opt("timezone", place.map(|p| p.4), c.nulls);
        let site = r
            .random_bool(0.2)
            .then(|| format!("https://www.example.com/{}", c.idx));
        w.opt("website", site.as_deref(), c.nulls);
        w.key("tags");
        w.out.push(b'[');
        for (i, t) in c.tags.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            push_json_str(w.out, t);
        }
        w.out.push(b']');
        let dob = r
            .random_bool(0.3)
            .then(|| iso_ms(r.random_range(-20_000i64..=9_000) * 86_400_000));
        w.opt("dateOfBirth", dob.as_deref(), c.nulls);
        w.str("dateAdded", &iso_ms(c.date_added));
        w.str("dateUpdated", &iso_ms(c.date_updated));
        if r.random_bool(0.3) {
            w.str("lastActivity", &iso_ms(c.date_updated + 60_000));
        }
        w.key("customFields");
        w.out.push(b'[');
        for (i, (id, value)) in self.custom_values(loc, c).iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            let mut f = ObjWriter::new(w.out);
            f.str("id", id);
            f.value("value", value);
            f.close();
        }
        w.out.push(b']');
        w.opt("businessId", c.business_id.as_deref(), c.nulls);
        if r.random_bool(0.3) {
            w.value("attributionSource", &attribution(&mut r, c.date_added));
            if r.random_bool(0.5) {
                w.value(
                    "lastAttributionSource",
                    &attribution(&mut r, c.date_updated),
                );
            }
        }
        w.raw("followers", "[]");
        w.close();
    }

    fn custom_values<'l>(&self, loc: &'l Location, c: &Contact) -> Vec<(&'l str, Value)> {
        let mut r = rng(&[self.seed, aspect::CUSTOM, c.raw]);
        let mut out = Vec::new();
        for f in &loc.fields {
            if !r.random_bool(0.5) {
                continue;
            }
            let value = match f.data_type {
                "NUMERICAL" => {
                    if r.random_bool(0.7) {
                        json!(r.random_range(0..=100))
                    } else {
                        json!(r.random_range(0.0..100.0f64))
                    }
                }
                "MONETORY" => json!(f64::from(r.random_range(0..1_000_000u32)) / 100.0),
                "DATE" => json!(c.date_added - r.random_range(0..=1000i64) * 86_400_000),
                "SINGLE_OPTIONS" => json!(pick(&mut r, f.options)),
                "MULTIPLE_OPTIONS" | "CHECKBOX" => {
                    let k = r.random_range(1..=f.options.len());
                    json!(f.options[..k])
                }
                "LARGE_TEXT" => json!(format!(
                    "{}\n{}\n\"quoted\", with commas",
                    pick(&mut r, NOTE_LINES),
                    pick(&mut r, NOTE_LINES)
                )),
                "PHONE" => json!(format!("+1 (555) 010-{:04}", c.idx % 10_000)),
                "FILE_UPLOAD" => {
                    let uuid = hashed_id(&[self.seed, aspect::CUSTOM, c.raw, 1]);
                    let doc = hashed_id(&[self.seed, aspect::CUSTOM, c.raw, 2]);
                    json!({ uuid.clone(): {
                        "meta": {"fieldname": f.id, "originalname": "contract, signed (1).pdf",
                                 "encoding": "7bit", "mimetype": "application/pdf",
                                 "size": r.random_range(1000..5_000_000), "uuid": uuid},
                        "url": format!("https://services.leadconnectorhq.com/documents/download/{doc}"),
                        "documentId": doc
                    }})
                }
                _ => {
                    let u: f64 = r.random();
                    if u < 0.1 {
                        json!("=cmd|' /C calc'!A0")
                    } else if u < 0.2 {
                        json!("@mention, \"quoted\"")
                    } else if u < 0.3 {
                        json!("")
                    } else {
                        json!(format!("{}-{}", f.name.to_lowercase(), c.idx))
                    }
                }
            };
            out.push((f.id.as_str(), value));
        }
        out
    }

    /// The seeded tasks of a contact, in creation order.
    pub fn tasks(&self, loc: &Location, c_raw: u64, c_id: &str, date_added: i64) -> Vec<Value> {
        let n = skewed_count(hash(&[self.seed, aspect::TASKS, c_raw]));
        (0..n as u64)
            .map(|k| {
                let mut r = rng(&[self.seed, aspect::TASKS, c_raw, k]);
                let mut m = Map::new();
                m.insert(
                    "id".into(),
                    json!(hashed_id(&[self.seed, aspect::TASKS, c_raw, k])),
                );
                m.insert("title".into(), json!(pick(&mut r, TASK_TITLES)));
                if r.random_bool(0.6) {
                    m.insert(
                        "body".into(),
                        json!(format!(
                            "{}\n{}",
                            pick(&mut r, NOTE_LINES),
                            pick(&mut r, NOTE_LINES)
                        )),
                    );
                }
                if r.random_bool(0.7) {
                    m.insert("assignedTo".into(), json!(pick(&mut r, &loc.users)));
                }
                let due =
                    date_added + r.random_range(0..=60i64) * 86_400_000 + 3_600_000 * k as i64;
                m.insert("dueDate".into(), json!(iso_ms(due)));
                m.insert("completed".into(), json!(r.random_bool(0.4)));
                m.insert("contactId".into(), json!(c_id));
                Value::Object(m)
            })
            .collect()
    }

    /// The seeded notes of a contact, oldest first.
    pub fn notes(&self, loc: &Location, c_raw: u64, c_id: &str, date_added: i64) -> Vec<Value> {
        let n = skewed_count(hash(&[self.seed, aspect::NOTES, c_raw]));
        (0..n as u64)
            .map(|k| {
                let mut r = rng(&[self.seed, aspect::NOTES, c_raw, k]);
                let lines = r.random_range(1..=4);
                let body: Vec<&str> = (0..lines).map(|_| *pick(&mut r, NOTE_LINES)).collect();
                let mut m = Map::new();
                m.insert(
                    "id".into(),
                    json!(hashed_id(&[self.seed, aspect::NOTES, c_raw, k])),
                );
                m.insert("body".into(), json!(body.join("\n")));
                m.insert("userId".into(), json!(pick(&mut r, &loc.users)));
                let added = date_added + (k as i64 + 1) * r.random_range(60_000..=86_400_000i64);
                m.insert("dateAdded".into(), json!(iso_ms(added)));
                m.insert("contactId".into(), json!(c_id));
                if r.random_bool(0.3) {
                    m.insert("title".into(), json!("Call summary, part 1"));
                    m.insert("color".into(), json!("#FFAA00"));
                    m.insert("pinned".into(), json!(r.random_bool(0.2)));
                }
                Value::Object(m)
            })
            .collect()
    }

    /// The seeded appointments of a contact (most have none).
    pub fn appointments(
        &self,
        loc: &Location,
        c_raw: u64,
        c_id: &str,
        date_added: i64,
    ) -> Vec<Value> {
        let h = hash(&[self.seed, aspect::EVENTS, c_raw]);
        let n = if unit(h) < 0.85 { 0 } else { 1 + h % 3 };
        (0..n)
            .map(|k| {
                let mut r = rng(&[self.seed, aspect::EVENTS, c_raw, k]);
                let start = date_added + r.random_range(1..=90i64) * 86_400_000;
                let status = *pick(
                    &mut r,
                    &["booked", "confirmed", "cancelled", "showed", "noshow"],
                );
                let user = pick(&mut r, &loc.users).clone();
                json!({
                    "id": hashed_id(&[self.seed, aspect::EVENTS, c_raw, k]),
                    "calendarId": pick(&mut r, &loc.calendars),
                    "status": status,
                    "title": "Discovery call, 30 min",
                    "assignedUserId": user,
                    "notes": "Bring the \"Q3\" numbers\nand the contract",
                    "startTime": plain_time(start),
                    "endTime": plain_time(start + 1_800_000),
                    "address": "https://meet.example.com/abc-defg-hij",
                    "locationId": loc.id,
                    "contactId": c_id,
                    "groupId": hashed_id(&[self.seed, aspect::CALENDAR, loc.index as u64, 99]),
                    "appointmentStatus": status,
                    "users": [user],
                    "dateAdded": plain_time(start - 86_400_000),
                    "dateUpdated": plain_time(start - 3_600_000),
                    "assignedResources": [],
                })
            })
            .collect()
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{:04x}", b).as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes one JSON object, key by key.
struct ObjWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjWriter { out, first: true }
    }

    /// Keys are ASCII identifiers, so they need no escaping.
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(self.out, v);
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.extend_from_slice(v.as_bytes());
    }

    /// An absent value is written as `null` or left out, as the contact's style says.
    fn opt(&mut self, k: &str, v: Option<&str>, nulls: bool) {
        match v {
            Some(v) => self.str(k, v),
            None if nulls => self.raw(k, "null"),
            None => {}
        }
    }

    fn value(&mut self, k: &str, v: &Value) {
        self.key(k);
        // Serialising a `Value` into memory cannot fail.
        self.out.extend(serde_json::to_vec(v).unwrap_or_default());
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn attribution(r: &mut SmallRng, at: i64) -> Value {
    let src = *pick(r, &["google", "facebook", "newsletter", "bing"]);
    json!({
        "url": format!("https://example.com/landing?utm_source={src}&t={at}"),
        "campaign": if r.random_bool(0.5) { json!("Spring, 2024") } else { Value::Null },
        "utmSource": src,
        "utmMedium": if r.random_bool(0.5) { json!("cpc") } else { Value::Null },
        "utmContent": Value::Null,
        "referrer": if r.random_bool(0.5) { json!("https://www.google.com") } else { Value::Null },
        "campaignId": Value::Null,
        "fbclid": Value::Null,
        "gclid": if src == "google" { json!("CjOKCQjwnNyUBhCZARISAI9AYIFt") } else { Value::Null },
        "userAgent": "Mozilla/5.0",
        "ip": "58.111.106.198",
        "medium": "form",
        "mediumId": "FglfHAn30PRwsZVyQlKp",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_deterministic_per_seed() {
        let loc = Location::new(42, 0, 1000);
        let g = Generator::new(42);
        let a = g.contact_json(&loc, &g.contact(&loc, 17));
        let b = g.contact_json(&loc, &g.contact(&loc, 17));
        assert_eq!(a, b);
        let other = Location::new(43, 0, 1000);
        let g2 = Generator::new(43);
        assert_ne!(g2.contact(&other, 17).id, g.contact(&loc, 17).id);
        assert_ne!(Location::new(42, 1, 10).id, loc.id);
    }

    #[test]
    fn timeline_has_heavy_ties_and_orders_updates() {
        let loc = Location::new(42, 0, 10_000);
        let g = Generator::new(42);
        let mut ties = std::collections::HashMap::<i64, usize>::new();
        for i in 0..10_000 {
            let c = g.contact(&loc, i);
            assert!(c.date_updated >= c.date_added);
            *ties.entry(c.date_added).or_default() += 1;
            if i > 0 {
                assert!(loc.date_added(i) >= loc.date_added(i - 1));
            }
        }
        let biggest = ties.values().copied().max().unwrap_or(0);
        assert!(biggest >= 20, "largest burst {biggest}");
        assert!(
            ties.len() < 5_000,
            "only {} distinct timestamps expected",
            ties.len()
        );
    }

    #[test]
    fn data_is_messy() {
        let loc = Location::new(42, 0, 3000);
        let g = Generator::new(42);
        let all: Vec<Value> = (0..3000)
            .map(|i| {
                let mut text = Vec::new();
                g.write_contact(&loc, &g.contact(&loc, i), &mut text);
                serde_json::from_slice::<Value>(&text).expect("the writer emits valid JSON")
            })
            .collect();
        let text = serde_json::to_string(&all).unwrap();
        for needle in [
            "\\n", "\\\"", ",", "=", "+", "@", "李", "محمد", "😀", "null",
        ] {
            assert!(text.contains(needle), "no {needle:?} in the data");
        }
        let no_email = all
            .iter()
            .filter(|c| c.get("email").is_none_or(Value::is_null))
            .count();
        assert!(no_email > 100 && no_email < 1000);
        let has_array_value = all.iter().any(|c| {
            c["customFields"]
                .as_array()
                .is_some_and(|cf| cf.iter().any(|f| f["value"].is_array()))
        });
        let has_object_value = all.iter().any(|c| {
            c["customFields"]
                .as_array()
                .is_some_and(|cf| cf.iter().any(|f| f["value"].is_object()))
        });
        assert!(has_array_value && has_object_value);
        let counts: Vec<usize> = (0..3000u64)
            .map(|i| g.notes(&loc, i, "x", 0).len())
            .collect();
        assert!(counts.iter().filter(|&&n| n <= 2).count() > 2000);
        assert!(counts.iter().any(|&n| n >= 20));
    }

    #[test]
    fn json_strings_are_escaped() {
        for s in [
            "plain",
            "quote \" and \\ back",
            "line\nbreak\ttab\r",
            "\u{1}ctl",
            "ünï 東京 😀",
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date_ms("2019-01-01"), Some(TIMELINE_START_MS));
        assert_eq!(
            parse_date_ms("2019-01-01T00:00:00.000Z"),
            Some(TIMELINE_START_MS)
        );
        assert_eq!(parse_date_ms("yesterday"), None);
        assert_eq!(iso_ms(TIMELINE_START_MS + 704), "2019-01-01T00:00:00.704Z");
    }
}
