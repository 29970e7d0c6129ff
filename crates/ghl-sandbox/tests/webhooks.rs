//! The sandbox's webhooks, end to end: a tiny receiver on 127.0.0.1 records each delivery's
//! raw body and headers; the tests make writes through the API and check what arrives, that
//! both signatures verify with the published PEM keys, and GHL's delivery rules (a 429
//! retried with the same bytes, anything else lost) and the knobs. They wait on the receiver's
//! channel and on `webhooks_settled`, each under a timeout, never on a sleep.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ghl_sandbox::{
    Sandbox, SandboxConfig, Schemes, WebhookConfig, WebhookKeys, API_VERSION, DEFAULT_TOKEN,
    ED25519_HEADER, RSA_HEADER,
};
use ring::signature::{UnparsedPublicKey, ED25519, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a webhook body is JSON")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// A webhook receiver answering with the scripted statuses in turn, then 200.
struct Receiver {
    url: String,
    hits: mpsc::UnboundedReceiver<Hit>,
}

#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<VecDeque<u16>>>,
    hits: mpsc::UnboundedSender<Hit>,
}

async fn record(State(s): State<Script>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = s.answers.lock().unwrap().pop_front().unwrap_or(200);
    let _ = s.hits.send(Hit { headers, body });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let (tx, hits) = mpsc::unbounded_channel();
        let script = Script {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            hits: tx,
        };
        let app = Router::new().fallback(record).with_state(script);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/webhooks/ghl"),
            hits,
        }
    }

    async fn next(&mut self) -> Hit {
        timeout(WAIT, self.hits.recv())
            .await
            .expect("a webhook arrives in time")
            .expect("the receiver runs")
    }

    /// The next delivery, which must be of this type.
    async fn expect(&mut self, kind: &str) -> Value {
        let v = self.next().await.json();
        assert_eq!(v["type"], kind, "{v}");
        v
    }

    /// Nothing more has arrived (call after `settled`).
    fn nothing_more(&mut self) {
        if let Ok(hit) = self.hits.try_recv() {
            panic!("unexpected delivery: {}", hit.json());
        }
    }
}

fn webhooks(url: &str) -> WebhookConfig {
    WebhookConfig {
        retry_delay: Duration::from_millis(5),
        ..WebhookConfig::new(url)
    }
}

async fn sandbox(w: WebhookConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        contacts: 5,
        rate_limit: None,
        webhooks: Some(w),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

async fn settled(sb: &Sandbox) {
    timeout(WAIT, sb.webhooks_settled())
        .await
        .expect("every webhook is delivered or lost in time");
}

/// The API, as a client calls it.
struct Api {
    http: reqwest::Client,
    base: String,
    location: String,
}

impl Api {
    fn of(sb: &Sandbox) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: sb.url(),
            location: sb.location_ids()[0].clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Version", API_VERSION);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn create_contact(&self, fields: Value) -> String {
        let mut body = json!({"locationId": self.location});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let v = self.call("POST", "/contacts/", Some(body)).await;
        v["contact"]["id"].as_str().unwrap().to_string()
    }
}

/// The key inside a PEM SubjectPublicKeyInfo, as ring takes it: the 32 Ed25519 bytes, or the
/// PKCS#1 RSAPublicKey.
fn pem_key(pem: &str) -> Vec<u8> {
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(
        pem.trim_end().ends_with("-----END PUBLIC KEY-----"),
        "{pem}"
    );
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = BASE64.decode(b64).unwrap();
    // One DER element at `at`: (content start, content end).
    let tlv = |at: usize| -> (usize, usize) {
        let first = der[at + 1] as usize;
        let (len, start) = if first < 0x80 {
            (first, at + 2)
        } else {
            let n = first & 0x7f;
            let len = der[at + 2..at + 2 + n]
                .iter()
                .fold(0usize, |l, b| l << 8 | *b as usize);
            (len, at + 2 + n)
        };
        (start, start + len)
    };
    assert_eq!(der[0], 0x30, "SPKI is a SEQUENCE");
    let (outer, _) = tlv(0);
    assert_eq!(der[outer], 0x30, "algorithm SEQUENCE");
    let (_, alg_end) = tlv(outer);
    assert_eq!(der[alg_end], 0x03, "key BIT STRING");
    let (bits, end) = tlv(alg_end);
    assert_eq!(der[bits], 0, "no unused bits");
    der[bits + 1..end].to_vec()
}

/// Both signatures of a delivery verify over its raw body with the published keys.
fn assert_signed(hit: &Hit, keys: &WebhookKeys) {
    let ed = BASE64
        .decode(hit.header(ED25519_HEADER).expect("x-ghl-signature"))
        .unwrap();
    assert_eq!(ed.len(), 64);
    UnparsedPublicKey::new(&ED25519, pem_key(&keys.ed25519_pem))
        .verify(&hit.body, &ed)
        .expect("the Ed25519 signature verifies");
    let rsa = BASE64
        .decode(hit.header(RSA_HEADER).expect("x-wh-signature"))
        .unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pem_key(&keys.rsa_pem))
        .verify(&hit.body, &rsa)
        .expect("the RSA signature verifies");
    let mut tampered = hit.body.to_vec();
    tampered.push(b' ');
    assert!(UnparsedPublicKey::new(&ED25519, pem_key(&keys.ed25519_pem))
        .verify(&tampered, &ed)
        .is_err());
}

/// What every body carries: compact JSON, the envelope fields, a UUID and a timestamp.
fn assert_envelope(hit: &Hit, location: &str) -> Value {
    let v = hit.json();
    assert_eq!(
        hit.body,
        serde_json::to_vec(&v).unwrap(),
        "the body is compact JSON"
    );
    assert_eq!(
        hit.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(v["locationId"], location, "{v}");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let id = v["webhookId"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{v}");
    let ts = v["timestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
    assert_eq!(parsed.offset().local_minus_utc(), 0);
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && &ts[19..20] == ".",
        "{ts}"
    );
    v
}

#[tokio::test]
async fn each_write_emits_its_event_signed() {
    let mut rx = Receiver::start(&[]).await;
    let sb = sandbox(webhooks(&rx.url)).await;
    let api = Api::of(&sb);
    let keys = sb.webhook_public_keys();
    let loc = api.location.clone();
    let mut hits = Vec::new();
    let mut next = async |rx: &mut Receiver, kind: &str| -> Value {
        let hit = rx.next().await;
        assert_signed(&hit, &keys);
        let v = assert_envelope(&hit, &loc);
        assert_eq!(v["type"], kind, "{v}");
        hits.push(v.clone());
        v
    };

    let cid = api
        .create_contact(
            json!({"firstName": "Zoë", "lastName": "Ng", "email": "zoe@example.com",
            "tags": ["Lead"], "customFields": []}),
        )
        .await;
    let v = next(&mut rx, "ContactCreate").await;
    assert_eq!(v["id"], cid);
    assert_eq!(
        (&v["firstName"], &v["lastName"], &v["name"]),
        (&json!("Zoë"), &json!("Ng"), &json!("Zoë Ng"))
    );
    assert_eq!(v["email"], "zoe@example.com");
    assert_eq!(v["tags"], json!(["lead"]));
    assert_eq!(v["dnd"], false);
    assert!(
        v["dateAdded"].is_string() && v.get("emailLowerCase").is_none(),
        "{v}"
    );

    // One update, three events: the update, its tags, its dnd.
    let path = format!("/contacts/{cid}");
    let body = json!({"city": "Oslo", "tags": ["lead", "vip"], "dnd": true});
    api.call("PUT", &path, Some(body)).await;
    let v = next(&mut rx, "ContactUpdate").await;
    assert_eq!((&v["id"], &v["city"]), (&json!(cid), &json!("Oslo")));
    let v = next(&mut rx, "ContactTagUpdate").await;
    assert_eq!(v["tags"], json!(["lead", "vip"]));
    let v = next(&mut rx, "ContactDndUpdate").await;
    assert_eq!(v["dnd"], true);
    // An update changing neither tags nor dnd sends ContactUpdate alone.
    api.call("PUT", &path, Some(json!({"city": "Bergen"})))
        .await;
    next(&mut rx, "ContactUpdate").await;

    let tags = format!("/contacts/{cid}/tags");
    api.call("POST", &tags, Some(json!({"tags": ["Gold"]})))
        .await;
    let v = next(&mut rx, "ContactTagUpdate").await;
    assert_eq!(v["tags"], json!(["lead", "vip", "gold"]));
    api.call("DELETE", &tags, Some(json!({"tags": ["vip"]})))
        .await;
    let v = next(&mut rx, "ContactTagUpdate").await;
    assert_eq!(v["tags"], json!(["lead", "gold"]));
    let bulk = json!({"contacts": [cid], "tags": ["bulk"], "locationId": loc});
    api.call("POST", "/contacts/bulk/tags/update/add", Some(bulk))
        .await;
    let v = next(&mut rx, "ContactTagUpdate").await;
    assert_eq!(v["tags"], json!(["lead", "gold", "bulk"]));

    // Upserts: an update of the match, or a create.
    let upsert = json!({"locationId": loc, "email": "ZOE@example.com", "lastName": "Ngata"});
    let r = api.call("POST", "/contacts/upsert", Some(upsert)).await;
    assert_eq!(r["new"], false);
    let v = next(&mut rx, "ContactUpdate").await;
    assert_eq!((&v["id"], &v["lastName"]), (&json!(cid), &json!("Ngata")));
    let upsert = json!({"locationId": loc, "email": "new@example.com"});
    let r = api.call("POST", "/contacts/upsert", Some(upsert)).await;
    assert_eq!(r["new"], true);
    let v = next(&mut rx, "ContactCreate").await;
    assert_eq!(v["id"], r["contact"]["id"]);

    // Notes and tasks carry their contact.
    let notes = format!("/contacts/{cid}/notes");
    let note = api
        .call("POST", &notes, Some(json!({"body": "Called."})))
        .await["note"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = next(&mut rx, "NoteCreate").await;
    assert_eq!(
        (&v["id"], &v["contactId"], &v["body"]),
        (&json!(note), &json!(cid), &json!("Called."))
    );
    assert!(v["dateAdded"].is_string(), "{v}");
    let one = format!("{notes}/{note}");
    api.call("PUT", &one, Some(json!({"body": "Called twice."})))
        .await;
    let v = next(&mut rx, "NoteUpdate").await;
    assert_eq!(
        (&v["body"], &v["contactId"]),
        (&json!("Called twice."), &json!(cid))
    );
    api.call("DELETE", &one, None).await;
    let v = next(&mut rx, "NoteDelete").await;
    assert_eq!((&v["id"], &v["contactId"]), (&json!(note), &json!(cid)));

    let tasks = format!("/contacts/{cid}/tasks");
    let task = json!({"title": "Call back", "body": "Ask about the quote",
        "dueDate": "2030-01-02T03:04:05.000Z", "completed": false});
    let task = api.call("POST", &tasks, Some(task)).await["task"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = next(&mut rx, "TaskCreate").await;
    assert_eq!(
        (&v["id"], &v["contactId"], &v["title"], &v["dueDate"]),
        (
            &json!(task),
            &json!(cid),
            &json!("Call back"),
            &json!("2030-01-02T03:04:05.000Z")
        )
    );
    assert!(
        v["dateAdded"].is_string() && v.get("completed").is_none(),
        "{v}"
    );
    let one = format!("{tasks}/{task}");
    // An update that does not complete it sends nothing (GHL has no TaskUpdate).
    api.call("PUT", &one, Some(json!({"title": "Call back soon"})))
        .await;
    api.call(
        "PUT",
        &format!("{one}/completed"),
        Some(json!({"completed": true})),
    )
    .await;
    let v = next(&mut rx, "TaskComplete").await;
    assert_eq!(
        (&v["id"], &v["contactId"], &v["title"]),
        (&json!(task), &json!(cid), &json!("Call back soon"))
    );
    api.call("DELETE", &one, None).await;
    let v = next(&mut rx, "TaskDelete").await;
    assert_eq!((&v["id"], &v["contactId"]), (&json!(task), &json!(cid)));

    api.call("DELETE", &path, None).await;
    let v = next(&mut rx, "ContactDelete").await;
    // The upsert wrote the e-mail as it sent it.
    assert_eq!(
        (&v["id"], &v["email"]),
        (&json!(cid), &json!("ZOE@example.com"))
    );

    settled(&sb).await;
    rx.nothing_more();
    let stats = sb.webhook_stats();
    let sent: BTreeSet<String> = hits
        .iter()
        .map(|v| v["webhookId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent.len(), hits.len(), "every webhookId is fresh");
    let delivered: BTreeSet<String> = sb.delivered_ids().into_iter().collect();
    assert_eq!(delivered, sent);
    assert_eq!(stats.emitted, hits.len() as u64);
    assert_eq!(
        (
            stats.delivered,
            stats.retried,
            stats.lost,
            stats.duplicates_sent
        ),
        (hits.len() as u64, 0, 0, 0)
    );
    for (kind, n) in [
        ("ContactCreate", 2),
        ("ContactUpdate", 3),
        ("ContactTagUpdate", 4),
        ("ContactDndUpdate", 1),
        ("ContactDelete", 1),
        ("NoteCreate", 1),
        ("NoteUpdate", 1),
        ("NoteDelete", 1),
        ("TaskCreate", 1),
        ("TaskComplete", 1),
        ("TaskDelete", 1),
    ] {
        assert_eq!(stats.by_type.get(kind), Some(&n), "{kind}: {stats:?}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_429_is_retried_with_the_same_bytes() {
    let mut rx = Receiver::start(&[429, 429, 200]).await;
    let sb = sandbox(webhooks(&rx.url)).await;
    let api = Api::of(&sb);
    let cid = api.create_contact(json!({"firstName": "Ann"})).await;
    let first = rx.next().await;
    assert_eq!(first.json()["id"], cid);
    for _ in 0..2 {
        let again = rx.next().await;
        assert_eq!(again.body, first.body, "a retry sends the same bytes");
        assert_eq!(again.header(ED25519_HEADER), first.header(ED25519_HEADER));
        assert_eq!(again.header(RSA_HEADER), first.header(RSA_HEADER));
    }
    settled(&sb).await;
    rx.nothing_more();
    let s = sb.webhook_stats();
    assert_eq!((s.emitted, s.retried, s.delivered, s.lost), (1, 2, 1, 0));
    assert_eq!(
        sb.delivered_ids(),
        [first.json()["webhookId"].as_str().unwrap()]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_429_without_retries_left_loses_the_event() {
    let mut rx = Receiver::start(&[429, 429, 429, 200]).await;
    let sb = sandbox(WebhookConfig {
        max_retries: 2,
        ..webhooks(&rx.url)
    })
    .await;
    Api::of(&sb)
        .create_contact(json!({"firstName": "Ann"}))
        .await;
    for _ in 0..3 {
        rx.expect("ContactCreate").await;
    }
    settled(&sb).await;
    rx.nothing_more();
    let s = sb.webhook_stats();
    assert_eq!((s.retried, s.delivered, s.lost), (2, 0, 1));
    assert!(sb.delivered_ids().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn any_other_failure_loses_the_event() {
    let mut rx = Receiver::start(&[500]).await;
    let sb = sandbox(webhooks(&rx.url)).await;
    let api = Api::of(&sb);
    api.create_contact(json!({"firstName": "Lost"})).await;
    rx.expect("ContactCreate").await;
    settled(&sb).await;
    rx.nothing_more();
    let s = sb.webhook_stats();
    assert_eq!((s.retried, s.delivered, s.lost), (0, 0, 1));
    // The next one, answered 200, is delivered: a loss does not stop delivery.
    let cid = api.create_contact(json!({"firstName": "Kept"})).await;
    assert_eq!(rx.expect("ContactCreate").await["id"], cid);
    settled(&sb).await;
    let s = sb.webhook_stats();
    assert_eq!((s.emitted, s.delivered, s.lost), (2, 1, 1));
    sb.shutdown().await;

    // Nobody listening: refused connections lose every event.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let sb = sandbox(webhooks(&url)).await;
    let api = Api::of(&sb);
    api.create_contact(json!({"firstName": "A"})).await;
    api.create_contact(json!({"firstName": "B"})).await;
    settled(&sb).await;
    let s = sb.webhook_stats();
    assert_eq!((s.emitted, s.delivered, s.retried, s.lost), (2, 0, 0, 2));
    sb.shutdown().await;
}

#[tokio::test]
async fn duplicates_repeat_the_body_and_webhook_id() {
    let mut rx = Receiver::start(&[]).await;
    let sb = sandbox(WebhookConfig {
        duplicate_rate: 1.0,
        ..webhooks(&rx.url)
    })
    .await;
    let api = Api::of(&sb);
    let mut ids = Vec::new();
    for name in ["A", "B"] {
        let cid = api.create_contact(json!({"firstName": name})).await;
        let one = rx.next().await;
        let two = rx.next().await;
        assert_eq!(one.json()["id"], cid);
        assert_eq!(one.body, two.body, "a duplicate repeats the bytes");
        assert_signed(&two, &sb.webhook_public_keys());
        ids.push(one.json()["webhookId"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);
    settled(&sb).await;
    rx.nothing_more();
    let s = sb.webhook_stats();
    assert_eq!((s.emitted, s.duplicates_sent, s.delivered), (2, 2, 4));
    let expected = [&ids[0], &ids[0], &ids[1], &ids[1]];
    assert_eq!(sb.delivered_ids().iter().collect::<Vec<_>>(), expected);
    sb.shutdown().await;
}

#[tokio::test]
async fn reorder_sends_the_held_event_after_the_next() {
    let mut rx = Receiver::start(&[]).await;
    let sb = sandbox(WebhookConfig {
        reorder_rate: 1.0,
        ..webhooks(&rx.url)
    })
    .await;
    let api = Api::of(&sb);
    let a = api.create_contact(json!({"firstName": "A"})).await;
    let b = api.create_contact(json!({"firstName": "B"})).await;
    assert_eq!(rx.expect("ContactCreate").await["id"], b);
    assert_eq!(rx.expect("ContactCreate").await["id"], a);
    settled(&sb).await;
    assert_eq!(sb.webhook_stats().delivered, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn task_create_can_lack_its_contact_id() {
    let mut rx = Receiver::start(&[]).await;
    let sb = sandbox(WebhookConfig {
        drop_contact_id_rate: 1.0,
        ..webhooks(&rx.url)
    })
    .await;
    let api = Api::of(&sb);
    let cid = api.create_contact(json!({"firstName": "T"})).await;
    rx.expect("ContactCreate").await;
    let tasks = format!("/contacts/{cid}/tasks");
    let task = json!({"title": "Call", "dueDate": "2030-01-02T03:04:05.000Z", "completed": false});
    let task = api.call("POST", &tasks, Some(task)).await["task"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = rx.expect("TaskCreate").await;
    assert_eq!(v["id"], task);
    assert!(v.get("contactId").is_none(), "{v}");
    // Only TaskCreate: the other events keep theirs.
    let path = format!("{tasks}/{task}/completed");
    api.call("PUT", &path, Some(json!({"completed": true})))
        .await;
    assert_eq!(rx.expect("TaskComplete").await["contactId"], cid);
    let notes = format!("/contacts/{cid}/notes");
    api.call("POST", &notes, Some(json!({"body": "n"}))).await;
    assert_eq!(rx.expect("NoteCreate").await["contactId"], cid);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_control_route_changes_a_contact_and_emits_its_events() {
    let mut rx = Receiver::start(&[]).await;
    let sb = sandbox(webhooks(&rx.url)).await;
    let api = Api::of(&sb);
    let cid = api
        .create_contact(json!({"firstName": "Bo", "tags": ["new"]}))
        .await;
    rx.expect("ContactCreate").await;
    let http = reqwest::Client::new();
    let url = format!("{}/_sandbox/contacts/{cid}", sb.url());
    // No token: the control route is for demos.
    let resp = http
        .post(&url)
        .json(&json!({"firstName": "Ann", "tags": ["vip"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = rx.expect("ContactUpdate").await;
    assert_eq!((&v["id"], &v["firstName"]), (&json!(cid), &json!("Ann")));
    assert_eq!(rx.expect("ContactTagUpdate").await["tags"], json!(["vip"]));
    let stored = sb.store().contact(&cid).unwrap();
    assert_eq!(
        (&stored["firstName"], &stored["tags"]),
        (&json!("Ann"), &json!(["vip"]))
    );
    // Without a tag change, ContactUpdate alone.
    let resp = http
        .post(&url)
        .json(&json!({"city": "Oslo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(rx.expect("ContactUpdate").await["city"], "Oslo");
    settled(&sb).await;
    rx.nothing_more();
    // Refused as the API refuses it, and an unknown contact is a 404.
    let resp = http
        .post(&url)
        .json(&json!({"nonsense": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let resp = http
        .post(format!("{}/_sandbox/contacts/nobody", sb.url()))
        .json(&json!({"city": "Oslo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let counters: Value = http
        .get(format!("{}/_sandbox/webhooks", sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &counters["emitted"],
            &counters["delivered"],
            &counters["pending"]
        ),
        (&json!(4), &json!(4), &json!(0))
    );
    assert_eq!(sb.stats().written("contact_update"), 0, "not an API write");
    sb.shutdown().await;
}

#[tokio::test]
async fn schemes_choose_the_signature_headers() {
    for (schemes, ed, rsa) in [
        (Schemes::Ed25519, true, false),
        (Schemes::Rsa, false, true),
        (Schemes::Both, true, true),
    ] {
        let mut rx = Receiver::start(&[]).await;
        let sb = sandbox(WebhookConfig {
            schemes,
            ..webhooks(&rx.url)
        })
        .await;
        Api::of(&sb).create_contact(json!({"firstName": "S"})).await;
        let hit = rx.next().await;
        assert_eq!(hit.header(ED25519_HEADER).is_some(), ed, "{schemes}");
        assert_eq!(hit.header(RSA_HEADER).is_some(), rsa, "{schemes}");
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn without_webhooks_nothing_is_emitted() {
    let sb = Sandbox::start(SandboxConfig {
        contacts: 1,
        rate_limit: None,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    Api::of(&sb).create_contact(json!({"firstName": "Q"})).await;
    settled(&sb).await;
    assert_eq!(sb.webhook_stats(), Default::default());
    // The keys exist all the same.
    assert_eq!(pem_key(&sb.webhook_public_keys().ed25519_pem).len(), 32);
    sb.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_delivery_with_retries_pending() {
    let mut rx = Receiver::start(&[429]).await;
    let sb = sandbox(WebhookConfig {
        retry_delay: Duration::from_secs(3600),
        ..webhooks(&rx.url)
    })
    .await;
    Api::of(&sb).create_contact(json!({"firstName": "R"})).await;
    rx.expect("ContactCreate").await;
    timeout(WAIT, sb.shutdown())
        .await
        .expect("shutdown does not wait for a retry");
}

#[tokio::test]
async fn a_bad_webhook_config_is_refused_at_start() {
    for bad in [
        WebhookConfig::new("not a url"),
        WebhookConfig {
            duplicate_rate: -0.1,
            ..WebhookConfig::new("http://127.0.0.1:9/")
        },
    ] {
        let err = Sandbox::start(SandboxConfig {
            contacts: 1,
            webhooks: Some(bad),
            ..SandboxConfig::default()
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("webhook"), "{err}");
    }
}
