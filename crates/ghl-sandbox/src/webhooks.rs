//! GHL's webhooks, sent as GHL sends them, so that a listener can be tested against the
//! sandbox: every write the API applies emits the events GHL would (see [`Kind`]; the handlers
//! decide which), and a background task per sandbox posts them to [`WebhookConfig::url`].
//!
//! A body is compact JSON: the payload GHL's webhook docs show for its type (`type`,
//! `locationId`, `id`, then the record's documented fields, absent and null ones left out),
//! then `webhookId` (a random UUID, fresh for every event: two runs with one seed must not
//! collide in a listener's store) and `timestamp` (when it is first sent, ISO-8601 UTC with
//! milliseconds). It is signed over its exact bytes: `x-ghl-signature`, Ed25519 with a key made
//! at start, and the older `x-wh-signature`, RSA PKCS#1 v1.5 SHA-256 with the committed test
//! key of `keys/` (ring cannot generate RSA keys); both base64. [`Signer::keys`] gives the two
//! public keys as PEM.
//!
//! Delivery follows GHL's rules: a 2xx delivers; a 429 is retried after
//! [`WebhookConfig::retry_delay`], at most [`WebhookConfig::max_retries`] times; anything else
//! (another status, 5xx included, a refused connection, a timeout, a redirect) loses the event
//! for good. Events go out one at a time in the order they were emitted, except where a knob
//! says otherwise: a share is delivered twice (same bytes, same `webhookId`), a share is held
//! back and sent after the next one, a share of TaskCreate bodies lacks `contactId` (as real
//! GHL payloads have been seen to). A retry waits beside the queue, not in it, so events after
//! it are not held up. Handlers never wait on any of this: [`Webhooks::emit`] only counts and
//! queues.

use super::data::iso_ms;
use super::store::now_ms;
use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The header of the Ed25519 signature.
pub const ED25519_HEADER: &str = "x-ghl-signature";
/// The header of the RSA signature (GHL's older scheme).
pub const RSA_HEADER: &str = "x-wh-signature";

/// The fixed test key pair of `x-wh-signature`; see `keys/README.md`. It signs only sandbox
/// webhooks.
const RSA_PKCS8: &[u8] = include_bytes!("../keys/webhook-rsa-test.pk8");
const RSA_PUBLIC_PEM: &str = include_str!("../keys/webhook-rsa-test.pub.pem");
/// DER of `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (32 bytes follow) }`: an
/// Ed25519 SubjectPublicKeyInfo less its key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// How long one delivery may take, connecting included, before it counts as failed (and so
/// lost, as GHL loses a delivery that times out).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event held back by the reorder knob waits for a next one to overtake it;
/// after that it goes out alone, so the last event of a burst is not kept forever.
const REORDER_HOLD: Duration = Duration::from_secs(5);

/// Which signature headers a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schemes {
    /// `x-ghl-signature` only.
    Ed25519,
    /// `x-wh-signature` only.
    Rsa,
    /// Both, as GHL sends them until the RSA header is retired.
    #[default]
    Both,
}

impl Schemes {
    pub fn name(self) -> &'static str {
        match self {
            Schemes::Ed25519 => "ed25519",
            Schemes::Rsa => "rsa",
            Schemes::Both => "both",
        }
    }

    fn ed25519(self) -> bool {
        matches!(self, Schemes::Ed25519 | Schemes::Both)
    }

    fn rsa(self) -> bool {
        matches!(self, Schemes::Rsa | Schemes::Both)
    }
}

impl fmt::Display for Schemes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Schemes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Schemes::Ed25519),
            "rsa" => Ok(Schemes::Rsa),
            "both" => Ok(Schemes::Both),
            other => Err(format!(
                "unknown signature scheme `{other}`: expected ed25519, rsa or both"
            )),
        }
    }
}

/// Where and how the sandbox sends webhooks ([`crate::SandboxConfig::webhooks`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Where every event is POSTed (`http://` or `https://`).
    pub url: String,
    /// Which signature headers each delivery carries (default both).
    pub schemes: Schemes,
    /// Wait before a delivery answered 429 is sent again (GHL: about 10 minutes).
    pub retry_delay: Duration,
    /// Retries after a 429 before the event is lost (GHL: 6).
    pub max_retries: u32,
    /// Share (0.0..=1.0) of events delivered twice, the same bytes each time.
    pub duplicate_rate: f64,
    /// Share (0.0..=1.0) of events held back and sent after the next one.
    pub reorder_rate: f64,
    /// Share (0.0..=1.0) of TaskCreate bodies sent without `contactId`.
    pub drop_contact_id_rate: f64,
    /// Seed of the three draws above (not of the `webhookId`s, which are always fresh).
    pub seed: u64,
}

impl WebhookConfig {
    /// GHL's rules, sending to `url`.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            ..WebhookConfig::default()
        }
    }

    fn check(&self) -> Result<reqwest::Url, String> {
        for (name, rate) in [
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
            ("drop_contact_id_rate", self.drop_contact_id_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("webhook {name} {rate} is outside 0.0..=1.0"));
            }
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("webhook url `{}`: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "webhook url `{}`: expected http:// or https://",
                self.url
            ));
        }
        Ok(url)
    }
}

/// GHL's rules (both signatures, a 429 retried every 10 minutes up to 6 times), no
/// misbehaviour, and no URL: set one.
impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            schemes: Schemes::Both,
            retry_delay: Duration::from_secs(600),
            max_retries: 6,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            drop_contact_id_rate: 0.0,
            seed: 0,
        }
    }
}

/// The public keys a listener verifies sandbox webhooks with, each a PEM SubjectPublicKeyInfo
/// (`-----BEGIN PUBLIC KEY-----`, 64-character lines, ending in a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookKeys {
    /// For `x-ghl-signature` (`WEBHOOK_SIGNATURE_PUBLIC_KEY`); new at every start.
    pub ed25519_pem: String,
    /// For `x-wh-signature` (`WEBHOOK_PUBLIC_KEY`); the committed test key, always the same.
    pub rsa_pem: String,
}

/// Counters of webhook delivery since start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Events emitted by writes (each counted once, however often it is sent).
    pub emitted: u64,
    /// Deliveries answered 2xx (a duplicate delivered counts again).
    pub delivered: u64,
    /// 429 answers followed by a retry.
    pub retried: u64,
    /// Deliveries given up: another status, a connection error or timeout, or a 429 with
    /// no retry left.
    pub lost: u64,
    /// Second copies sent by the duplicate knob.
    pub duplicates_sent: u64,
    /// Events emitted, by type (`"ContactCreate"` -> count).
    pub by_type: BTreeMap<String, u64>,
}

/// The event types GHL sends for contacts, notes and tasks (it has no TaskUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    ContactCreate,
    ContactUpdate,
    ContactDelete,
    ContactDndUpdate,
    ContactTagUpdate,
    NoteCreate,
    NoteUpdate,
    NoteDelete,
    TaskCreate,
    TaskComplete,
    TaskDelete,
}

/// The documented contact fields after `type`, `locationId` and `id`, in the docs' order;
/// `name` is made from first and last name.
const CONTACT_FIELDS: &[&str] = &[
    "address1",
    "city",
    "state",
    "companyName",
    "country",
    "source",
    "dateAdded",
    "dateOfBirth",
    "dnd",
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "tags",
    "website",
    "attachments",
    "assignedTo",
    "customFields",
];
/// ContactDndUpdate adds `dndSettings` after `dnd`.
const CONTACT_DND_FIELDS: &[&str] = &[
    "address1",
    "city",
    "state",
    "companyName",
    "country",
    "source",
    "dateAdded",
    "dateOfBirth",
    "dnd",
    "dndSettings",
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "tags",
    "website",
    "attachments",
    "assignedTo",
    "customFields",
];
const NOTE_FIELDS: &[&str] = &["body", "contactId", "dateAdded"];
const TASK_FIELDS: &[&str] = &[
    "assignedTo",
    "body",
    "contactId",
    "title",
    "dateAdded",
    "dueDate",
];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::ContactCreate => "ContactCreate",
            Kind::ContactUpdate => "ContactUpdate",
            Kind::ContactDelete => "ContactDelete",
            Kind::ContactDndUpdate => "ContactDndUpdate",
            Kind::ContactTagUpdate => "ContactTagUpdate",
            Kind::NoteCreate => "NoteCreate",
            Kind::NoteUpdate => "NoteUpdate",
            Kind::NoteDelete => "NoteDelete",
            Kind::TaskCreate => "TaskCreate",
            Kind::TaskComplete => "TaskComplete",
            Kind::TaskDelete => "TaskDelete",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::ContactDndUpdate => CONTACT_DND_FIELDS,
            Kind::ContactCreate
            | Kind::ContactUpdate
            | Kind::ContactDelete
            | Kind::ContactTagUpdate => CONTACT_FIELDS,
            Kind::NoteCreate | Kind::NoteUpdate | Kind::NoteDelete => NOTE_FIELDS,
            Kind::TaskCreate | Kind::TaskComplete | Kind::TaskDelete => TASK_FIELDS,
        }
    }
}

/// One emitted event: its type, its location and the record as stored after the write (before
/// it, for a delete).
#[derive(Debug)]
pub(crate) struct Event {
    kind: Kind,
    location: String,
    record: Value,
}

/// The signing keys, made on first use.
pub(crate) struct Signer {
    ed25519: Ed25519KeyPair,
    rsa: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("the system's random source makes an Ed25519 key");
        let ed25519 = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .expect("ring reads the Ed25519 key it has just made");
        let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8)
            .expect("keys/webhook-rsa-test.pk8 is a valid RSA 2048 PKCS#8 key");
        Signer { ed25519, rsa, rng }
    }

    pub(crate) fn keys(&self) -> WebhookKeys {
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(self.ed25519.public_key().as_ref());
        WebhookKeys {
            ed25519_pem: pem(&spki),
            rsa_pem: RSA_PUBLIC_PEM.to_string(),
        }
    }

    fn sign_ed25519(&self, body: &[u8]) -> String {
        BASE64.encode(self.ed25519.sign(body).as_ref())
    }

    fn sign_rsa(&self, body: &[u8]) -> String {
        let mut sig = vec![0; self.rsa.public().modulus_len()];
        self.rsa
            .sign(&RSA_PKCS1_SHA256, &self.rng, body, &mut sig)
            .expect("an RSA signature fits the modulus length");
        BASE64.encode(sig)
    }

    /// A random (version 4) UUID.
    fn webhook_id(&self) -> String {
        let mut b = [0u8; 16];
        self.rng
            .fill(&mut b)
            .expect("the system's random source fills 16 bytes");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// A PEM public key block: base64 in 64-character lines.
fn pem(der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// Counters, the ids delivered, and how many deliveries are not settled yet (queued, held,
/// in flight or waiting to retry), which [`Webhooks::settled`] waits on.
#[derive(Debug, Default)]
struct Counters {
    stats: WebhookStats,
    delivered_ids: Vec<String>,
    pending: u64,
}

/// What the state and the delivery task share.
#[derive(Debug, Default)]
struct Shared {
    signer: OnceLock<Signer>,
    /// Written by `emit` and the delivery tasks; a watch so that a test can wait for
    /// `pending` to reach zero instead of sleeping.
    counters: watch::Sender<Counters>,
}

impl Shared {
    fn signer(&self) -> &Signer {
        self.signer.get_or_init(Signer::new)
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        self.counters.send_modify(f);
    }
}

/// The sandbox's webhook outbox: counts and queues events, and hands the queue to the one
/// delivery task ([`Webhooks::start`]).
#[derive(Debug)]
pub(crate) struct Webhooks {
    /// `None` when webhooks are off: events are neither counted nor queued.
    on: Option<On>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct On {
    cfg: WebhookConfig,
    url: reqwest::Url,
    client: reqwest::Client,
    /// Unbounded: events are small, and a handler must never wait for a slow receiver. The
    /// sender lives as long as the state; the delivery task owns the receiver.
    tx: mpsc::UnboundedSender<Event>,
    /// Taken by the delivery task when the server starts.
    rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
}

impl Webhooks {
    pub(crate) fn new(cfg: Option<WebhookConfig>) -> Result<Webhooks, String> {
        let on = match cfg {
            None => None,
            Some(cfg) => {
                let url = cfg.check()?;
                let client = reqwest::Client::builder()
                    .timeout(DELIVERY_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the webhook client: {e}"))?;
                let (tx, rx) = mpsc::unbounded_channel();
                Some(On {
                    cfg,
                    url,
                    client,
                    tx,
                    rx: Mutex::new(Some(rx)),
                })
            }
        };
        Ok(Webhooks {
            on,
            shared: Arc::default(),
        })
    }

    pub(crate) fn config(&self) -> Option<&WebhookConfig> {
        self.on.as_ref().map(|o| &o.cfg)
    }

    pub(crate) fn keys(&self) -> WebhookKeys {
        self.shared.signer().keys()
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        self.shared.counters.borrow().stats.clone()
    }

    pub(crate) fn delivered_ids(&self) -> Vec<String> {
        self.shared.counters.borrow().delivered_ids.clone()
    }

    pub(crate) fn pending(&self) -> u64 {
        self.shared.counters.borrow().pending
    }

    /// Waits until every event emitted so far is delivered or lost.
    pub(crate) async fn settled(&self) {
        let mut rx = self.shared.counters.subscribe();
        // The sender lives in `self`, so the wait ends only by `pending` reaching zero.
        let _ = rx.wait_for(|c| c.pending == 0).await;
    }

    /// Counts and queues an event (nothing when webhooks are off).
    pub(crate) fn emit(&self, kind: Kind, location: &str, record: &Value) {
        let Some(on) = &self.on else { return };
        self.shared.count(|c| {
            c.stats.emitted += 1;
            *c.stats.by_type.entry(kind.name().to_string()).or_default() += 1;
            c.pending += 1;
        });
        let event = Event {
            kind,
            location: location.to_string(),
            record: record.clone(),
        };
        if on.tx.send(event).is_err() {
            // The delivery task has ended (the server is shut down): nothing will send it.
            self.shared.count(|c| c.pending -= 1);
        }
    }

    /// Starts the delivery task, the first time only (`None` when webhooks are off or it was
    /// started before). Aborting it stops delivery, retries waiting beside it included.
    pub(crate) fn start(&self) -> Option<JoinHandle<()>> {
        let on = self.on.as_ref()?;
        let rx = on
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let courier = Courier {
            post: Post {
                client: on.client.clone(),
                url: on.url.clone(),
                shared: self.shared.clone(),
                schemes: on.cfg.schemes,
                retry_delay: on.cfg.retry_delay,
            },
            rng: SmallRng::seed_from_u64(on.cfg.seed),
            cfg: on.cfg.clone(),
        };
        Some(tokio::spawn(courier.run(rx)))
    }
}

/// An event with the knobs' draws made.
#[derive(Debug)]
struct Planned {
    event: Event,
    drop_contact_id: bool,
    duplicate: bool,
}

/// One body, signed, ready to be sent (again).
#[derive(Debug)]
struct Delivery {
    webhook_id: String,
    kind: Kind,
    body: Bytes,
    ed25519: Option<String>,
    rsa: Option<String>,
}

/// The delivery task: takes events off the queue in order, applies the knobs, sends.
struct Courier {
    post: Post,
    cfg: WebhookConfig,
    rng: SmallRng,
}

impl Courier {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        // Retries waiting out their delay; dropped (and so aborted) with this task.
        let mut retries = JoinSet::new();
        let mut held: Option<(Planned, Instant)> = None;
        loop {
            let hold_until = held.as_ref().map(|h| h.1);
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break };
                    let planned = self.plan(event);
                    match held.take() {
                        Some((earlier, _)) => {
                            self.send(planned, &mut retries).await;
                            self.send(earlier, &mut retries).await;
                        }
                        None if self.draw(self.cfg.reorder_rate) => {
                            held = Some((planned, Instant::now() + REORDER_HOLD));
                        }
                        None => self.send(planned, &mut retries).await,
                    }
                }
                () = tokio::time::sleep_until(hold_until.unwrap_or_else(Instant::now)),
                    if hold_until.is_some() =>
                {
                    if let Some((alone, _)) = held.take() {
                        self.send(alone, &mut retries).await;
                    }
                }
                Some(_) = retries.join_next(), if !retries.is_empty() => {}
            }
        }
        if let Some((alone, _)) = held.take() {
            self.send(alone, &mut retries).await;
        }
        while retries.join_next().await.is_some() {}
    }

    fn draw(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    fn plan(&mut self, event: Event) -> Planned {
        let drop_contact_id =
            event.kind == Kind::TaskCreate && self.draw(self.cfg.drop_contact_id_rate);
        let duplicate = self.draw(self.cfg.duplicate_rate);
        if duplicate {
            // The copy is one more delivery to settle.
            self.post.shared.count(|c| c.pending += 1);
        }
        Planned {
            event,
            drop_contact_id,
            duplicate,
        }
    }

    /// Sends a planned event now (twice if so drawn); a 429 leaves a retry waiting in
    /// `retries`.
    async fn send(&mut self, p: Planned, retries: &mut JoinSet<()>) {
        let signer = self.post.shared.signer();
        let webhook_id = signer.webhook_id();
        let body = Bytes::from(body(&p, &webhook_id));
        let schemes = self.post.schemes;
        let delivery = Arc::new(Delivery {
            webhook_id,
            kind: p.event.kind,
            ed25519: schemes.ed25519().then(|| signer.sign_ed25519(&body)),
            rsa: schemes.rsa().then(|| signer.sign_rsa(&body)),
            body,
        });
        let copies = if p.duplicate { 2 } else { 1 };
        for copy in 0..copies {
            if copy == 1 {
                self.post.shared.count(|c| c.stats.duplicates_sent += 1);
            }
            let answer = self.post.once(&delivery).await;
            if self.post.settle(&delivery, answer, self.cfg.max_retries) {
                retries.spawn(retry(
                    self.post.clone(),
                    delivery.clone(),
                    self.cfg.max_retries,
                ));
            }
        }
    }
}

/// The JSON body of an event: `type`, `locationId`, `id`, the type's documented fields that
/// the record has, `webhookId`, `timestamp`.
fn body(p: &Planned, webhook_id: &str) -> Vec<u8> {
    let Planned { event, .. } = p;
    let r = &event.record;
    let mut m = Map::new();
    m.insert("type".into(), Value::from(event.kind.name()));
    m.insert("locationId".into(), Value::from(event.location.as_str()));
    m.insert("id".into(), r.get("id").cloned().unwrap_or(Value::Null));
    for &f in event.kind.fields() {
        let v = match f {
            "name" => contact_name(r),
            "contactId" if p.drop_contact_id => None,
            _ => r.get(f).filter(|v| !v.is_null()).cloned(),
        };
        if let Some(v) = v {
            m.insert(f.into(), v);
        }
    }
    m.insert("webhookId".into(), Value::from(webhook_id));
    m.insert("timestamp".into(), Value::from(iso_ms(now_ms())));
    serde_json::to_vec(&Value::Object(m)).expect("a JSON object serialises")
}

/// `name` as GHL sends it: first and last name, as written.
fn contact_name(r: &Value) -> Option<Value> {
    let part = |k: &str| r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let name = match (part("firstName"), part("lastName")) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => return None,
    };
    Some(Value::from(name))
}

/// The answer to one delivery.
#[derive(Debug)]
enum Answer {
    Delivered,
    TooMany,
    Failed(String),
}

/// What posting needs; cloned into each retry.
#[derive(Clone)]
struct Post {
    client: reqwest::Client,
    url: reqwest::Url,
    shared: Arc<Shared>,
    schemes: Schemes,
    retry_delay: Duration,
}

impl Post {
    async fn once(&self, d: &Delivery) -> Answer {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(d.body.clone());
        if let Some(sig) = &d.ed25519 {
            req = req.header(ED25519_HEADER, sig);
        }
        if let Some(sig) = &d.rsa {
            req = req.header(RSA_HEADER, sig);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Answer::Delivered,
            Ok(resp) if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => Answer::TooMany,
            Ok(resp) => Answer::Failed(format!("answered {}", resp.status())),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// Counts an answer, GHL's way: true when the delivery is to be retried (a 429 with
    /// retries left).
    fn settle(&self, d: &Delivery, answer: Answer, retries_left: u32) -> bool {
        match answer {
            Answer::Delivered => {
                self.shared.count(|c| {
                    c.stats.delivered += 1;
                    c.delivered_ids.push(d.webhook_id.clone());
                    c.pending -= 1;
                });
                false
            }
            Answer::TooMany if retries_left > 0 => {
                self.shared.count(|c| c.stats.retried += 1);
                true
            }
            Answer::TooMany => {
                self.lose(d, "answered 429 Too Many Requests with no retry left");
                false
            }
            Answer::Failed(why) => {
                self.lose(d, &why);
                false
            }
        }
    }

    fn lose(&self, d: &Delivery, why: &str) {
        tracing::warn!(
            webhook_id = %d.webhook_id,
            r#type = d.kind.name(),
            error = why,
            "Webhook delivery failed; the event is lost, as GHL loses it."
        );
        self.shared.count(|c| {
            c.stats.lost += 1;
            c.pending -= 1;
        });
    }
}

/// Sends a delivery answered 429 again after each delay, while the answers are 429 and
/// retries are left.
async fn retry(post: Post, d: Arc<Delivery>, mut left: u32) {
    loop {
        tokio::time::sleep(post.retry_delay).await;
        left -= 1;
        let answer = post.once(&d).await;
        if !post.settle(&d, answer, left) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519, RSA_PKCS1_2048_8192_SHA256};

    #[test]
    fn keys_are_pem_and_sign_what_they_claim() {
        let s = Signer::new();
        let keys = s.keys();
        let der = |pem: &str| {
            let b: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
            BASE64.decode(b).unwrap()
        };
        let ed = der(&keys.ed25519_pem);
        assert_eq!(ed.len(), 44);
        assert_eq!(ed[..12], ED25519_SPKI_PREFIX);
        let body = br#"{"type":"ContactCreate"}"#;
        let sig = BASE64.decode(s.sign_ed25519(body)).unwrap();
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(&ED25519, &ed[12..])
            .verify(body, &sig)
            .unwrap();
        // The RSA key's SPKI ends with the PKCS#1 RSAPublicKey ring takes: its last 270 bytes
        // for a 2048-bit modulus and exponent 65537.
        let rsa = der(&keys.rsa_pem);
        let sig = BASE64.decode(s.sign_rsa(body)).unwrap();
        assert_eq!(sig.len(), 256);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &rsa[rsa.len() - 270..])
            .verify(body, &sig)
            .unwrap();
    }

    #[test]
    fn webhook_ids_are_uuids_and_fresh() {
        let s = Signer::new();
        let (a, b) = (s.webhook_id(), s.webhook_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn schemes_parse_and_configs_are_checked() {
        assert_eq!("RSA".parse::<Schemes>(), Ok(Schemes::Rsa));
        assert_eq!(Schemes::default(), Schemes::Both);
        let err = "hmac".parse::<Schemes>().unwrap_err();
        assert!(err.contains("ed25519, rsa or both"), "{err}");
        assert!(WebhookConfig::new("http://127.0.0.1:9/h").check().is_ok());
        assert!(WebhookConfig::new("ftp://x/").check().is_err());
        assert!(WebhookConfig::new("not a url").check().is_err());
        let bad = WebhookConfig {
            reorder_rate: 1.5,
            ..WebhookConfig::new("http://127.0.0.1:9/")
        };
        assert!(bad.check().unwrap_err().contains("reorder_rate"));
    }

    #[test]
    fn bodies_carry_the_documented_fields_only() {
        let record = serde_json::json!({"id": "c1", "locationId": "L", "firstName": "Zoë",
            "lastName": null, "email": "z@example.com", "emailLowerCase": "z@example.com",
            "tags": ["vip"], "dnd": false, "dndSettings": {}, "customFields": []});
        let p = Planned {
            event: Event {
                kind: Kind::ContactUpdate,
                location: "L".into(),
                record,
            },
            drop_contact_id: false,
            duplicate: false,
        };
        let v: Value = serde_json::from_slice(&body(&p, "w1")).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "type",
                "locationId",
                "id",
                "dnd",
                "email",
                "name",
                "firstName",
                "tags",
                "customFields",
                "webhookId",
                "timestamp"
            ]
        );
        assert_eq!(v["name"], "Zoë");
        assert_eq!(v["timestamp"].as_str().unwrap().len(), 24);
    }
}
