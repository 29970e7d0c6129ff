//! `ghl-etl listen` as a process: deliveries signed as GHL signs them (Ed25519 over the raw
//! bytes, with a key pair made here), answered as GHL needs (200 only once stored, 401, 413,
//! 408, a repeat stored once), stored events read back from the Parquet and NDJSON files with
//! real readers, a SIGKILL under load and a restart losing and repeating nothing, and rules
//! acting on the sandbox over 127.0.0.1, each action once.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow_array::{Array, StringArray};
use base64::Engine;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use crate::util::{bin, quiet_config, sandbox};

/// A key pair as GHL holds one, and its public half as the listener takes it.
struct Signer {
    pair: Ed25519KeyPair,
    pem: String,
}

impl Signer {
    fn new() -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(pair.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        Signer { pair, pem }
    }

    fn sign(&self, body: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(body).as_ref())
    }
}

/// A listener process; killed when dropped.
struct Listener {
    child: Child,
    url: String,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listener {
    /// Start `ghl-etl listen` in `dir` on a free port, trusting `signer`; waits until it
    /// answers /healthz.
    fn start(dir: &Path, signer: &Signer, extra: &[&str], env: &[(&str, &str)]) -> Listener {
        Listener::launch(dir, &signer.pem, 0, extra, env)
    }

    /// [`Listener::start`] on `port`, trusting the Ed25519 key `ed_pem` (and whatever `env`
    /// says).
    fn launch(
        dir: &Path,
        ed_pem: &str,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Listener {
        let port_file = dir.join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir)
            .args([
                "listen",
                "--port",
                &port.to_string(),
                "--port-file",
                "port",
                "--out",
                "out",
            ])
            .args(["--state", "listen.sqlite", "--commit-seconds", "1"])
            .args(extra)
            .env_remove("GHL_TOKEN")
            .env_remove("GHL_BASE_URL")
            .env("WEBHOOK_SIGNATURE_PUBLIC_KEY", ed_pem)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if !p.is_empty() {
                    break p;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("the listener ended ({status}): {err}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the listener never listened"
            );
            std::thread::sleep(Duration::from_millis(10)); // poll interval
        };
        Listener {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// SIGTERM, then its exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut err = String::new();
        use std::io::Read;
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), err)
    }
}

fn event(id: &str, ty: &str, location: &str, extra: Value) -> Vec<u8> {
    let mut v = json!({
        "type": ty, "locationId": location, "id": format!("c-{id}"),
        "webhookId": id, "timestamp": chrono::Utc::now().to_rfc3339(),
        "appId": "app-1", "versionId": "v-1",
    });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    serde_json::to_vec(&v).unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>, sig: Option<String>) -> u16 {
    let mut rb = http
        .post(format!("{url}/webhooks/ghl"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = sig {
        rb = rb.header("x-ghl-signature", s);
    }
    rb.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Every (webhookId, payload) in the Parquet files, and every line of the NDJSON files.
fn dataset(out: &Path) -> (Vec<(String, String)>, Vec<Value>) {
    let mut parquet = Vec::new();
    let mut ndjson = Vec::new();
    let mut stack = vec![out.join("table=events")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                let f = std::fs::File::open(&p).unwrap();
                for b in ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap()
                {
                    let b = b.unwrap();
                    let col = |n: &str| {
                        b.column_by_name(n)
                            .unwrap()
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .unwrap()
                            .clone()
                    };
                    let (ids, payloads) = (col("webhookId"), col("payload"));
                    for i in 0..ids.len() {
                        parquet.push((ids.value(i).to_string(), payloads.value(i).to_string()));
                    }
                }
            } else if name.ends_with(".ndjson") && !name.starts_with('.') {
                let text = std::fs::read_to_string(&p).unwrap();
                ndjson.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
    }
    (parquet, ndjson)
}

/// A string column of the event `webhook_id`, from the Parquet files.
fn column_of(out: &Path, webhook_id: &str, column: &str) -> String {
    let mut stack = vec![out.join("table=events")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "parquet") {
                continue;
            }
            let f = std::fs::File::open(&p).unwrap();
            for b in ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap()
            {
                let b = b.unwrap();
                let get = |n: &str| {
                    b.column_by_name(n)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .clone()
                };
                let (ids, col) = (get("webhookId"), get(column));
                if let Some(i) = (0..ids.len()).find(|&i| ids.value(i) == webhook_id) {
                    return col.value(i).to_string();
                }
            }
        }
    }
    panic!("{webhook_id} not in the dataset")
}

fn counts<'a>(ids: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id.to_string()).or_default() += 1;
    }
    m
}

/// Signed deliveries are stored once each (a repeat answered 200 and not stored again); a
/// forged, unsigned, stale, oversized or slow one is refused with nothing stored; after a
/// SIGTERM every stored event is in the Parquet and NDJSON files exactly once, the NDJSON
/// line equal to the body sent (unknown fields kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_events_land_once_and_every_bad_delivery_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let l = Listener::start(
        dir.path(),
        &signer,
        &["--max-body", "4096", "--read-timeout", "1"],
        &[],
    );
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    for i in 0..50 {
        let body = event(
            &format!("w{i}"),
            "ContactCreate",
            "L1",
            json!({"firstName": format!("P{i}")}),
        );
        assert_eq!(
            post(&http, &l.url, body.clone(), Some(signer.sign(&body))).await,
            200
        );
        sent.push(body);
    }
    // A repeat (GHL's retry after a 429, or a duplicate delivery): 200, stored once.
    assert_eq!(
        post(&http, &l.url, sent[3].clone(), Some(signer.sign(&sent[3]))).await,
        200
    );
    // Forged: signed by another key; the right signature on other bytes; none at all.
    let other = Signer::new();
    let forged = event("f1", "ContactCreate", "L1", json!({}));
    assert_eq!(
        post(&http, &l.url, forged.clone(), Some(other.sign(&forged))).await,
        401
    );
    let mut changed = sent[0].clone();
    changed.push(b' ');
    assert_eq!(
        post(&http, &l.url, changed, Some(signer.sign(&sent[0]))).await,
        401
    );
    assert_eq!(post(&http, &l.url, forged.clone(), None).await, 401);
    // Stale: signed, but from ten minutes ago.
    let old = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stale = event(
        "s1",
        "ContactCreate",
        "L1",
        json!({"timestamp": old.to_rfc3339()}),
    );
    assert_eq!(
        post(&http, &l.url, stale.clone(), Some(signer.sign(&stale))).await,
        401
    );
    // Oversized: 413 before anything is read into memory beyond the limit.
    let big = event(
        "b1",
        "NoteCreate",
        "L1",
        json!({"body": "x".repeat(10_000)}),
    );
    assert_eq!(
        post(&http, &l.url, big.clone(), Some(signer.sign(&big))).await,
        413
    );
    // Slow drip: a body promised but sent a byte at a time, slower than the read timeout.
    let drip = slow_drip(&l.url).await;
    assert_eq!(drip, 408);
    let (code, stderr) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let (parquet, ndjson) = dataset(&dir.path().join("out"));
    let by_id = counts(parquet.iter().map(|(id, _)| id.as_str()));
    assert_eq!(by_id.len(), 50, "{by_id:?}");
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");
    for bad in ["f1", "s1", "b1"] {
        assert!(!by_id.contains_key(bad), "{bad} was stored");
    }
    let sent_json: Vec<Value> = sent
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let mut got = ndjson.clone();
    got.sort_by_key(|v| v["webhookId"].as_str().unwrap().to_string());
    let mut want = sent_json;
    want.sort_by_key(|v| v["webhookId"].as_str().unwrap().to_string());
    assert_eq!(
        got, want,
        "NDJSON holds each body as sent, unknown fields included"
    );
    assert!(stderr.contains("50 events stored, 1 repeats"), "{stderr}");
}

/// Headers and half a body, then a byte now and then: answered 408 (status read raw).
async fn slow_drip(url: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /webhooks/ghl HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = async {
        let mut n = 0;
        while n < 12 {
            match s.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        n
    };
    let n = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[9..n.min(12)])
        .parse()
        .unwrap_or(0)
}

/// SIGKILL while events pour in from 8 senders, then a restart and the same deliveries again
/// (as GHL retries what was not answered): every event acknowledged is in the dataset, and
/// no event is there twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_killed_under_load_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let bodies: Vec<Vec<u8>> = (0..2_000)
        .map(|i| event(&format!("k{i}"), "ContactUpdate", "L1", json!({"n": i})))
        .collect();
    let l = Listener::start(dir.path(), &signer, &[], &[]);
    let http = reqwest::Client::new();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let pid = l.child.id();
    let sends = futures::stream::iter(bodies.iter().enumerate())
        .map(|(i, b)| {
            let (http, url, acked) = (http.clone(), l.url.clone(), acked.clone());
            let sig = signer.sign(b);
            async move {
                if i == 700 {
                    // Mid-stream, with requests in flight.
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                if post(&http, &url, b.clone(), Some(sig)).await == 200 {
                    acked.lock().unwrap().push(format!("k{i}"));
                }
            }
        })
        .buffer_unordered(8);
    use futures::StreamExt;
    sends.collect::<Vec<()>>().await;
    drop(l);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 600 && acked.len() < 2_000,
        "{} acknowledged",
        acked.len()
    );
    // Restarted: GHL's retries bring the rest (and some it had answered: stored once).
    let l = Listener::start(dir.path(), &signer, &[], &[]);
    for (i, b) in bodies.iter().enumerate().step_by(1) {
        if i % 3 == 0 || !acked.contains(&format!("k{i}")) {
            assert_eq!(
                post(&http, &l.url, b.clone(), Some(signer.sign(b))).await,
                200
            );
        }
    }
    let (code, stderr) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let (parquet, _) = dataset(&dir.path().join("out"));
    let by_id = counts(parquet.iter().map(|(id, _)| id.as_str()));
    assert_eq!(by_id.len(), 2_000, "every event once");
    assert!(by_id.values().all(|n| *n == 1), "an event twice");
    for id in &acked {
        assert!(by_id.contains_key(id), "{id} was acknowledged, then lost");
    }
}

/// The sample rules against the sandbox: a new contact with a source gets its follow-up task
/// and its tags, a completed task a note; a repeated delivery acts once; a completed task
/// without contactId (as GHL sometimes sends) matches no rule and breaks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_rules_act_on_the_location_once_per_event() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/rules.toml");
    let url = sb.url();
    let l = Listener::start(
        dir.path(),
        &signer,
        // Debug logs with bodies: the most a log can show.
        &["--rules", rules, "--rate", "off", "-vv", "--trace-bodies"],
        &[
            ("GHL_BASE_URL", url.as_str()),
            ("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN),
        ],
    );
    let http = reqwest::Client::new();
    let tasks_before = sb.store().tasks(&ids[0]).len();
    let field = sb.store().custom_fields(&location)[0].clone();
    let custom = json!([{"id": field["id"], "value": "from the webhook"}]);
    let created = event(
        "r1",
        "ContactCreate",
        &location,
        json!({"id": ids[0], "firstName": "Ann", "lastName": "Lee", "source": "Website",
               "customFields": custom}),
    );
    for _ in 0..3 {
        assert_eq!(
            post(&http, &l.url, created.clone(), Some(signer.sign(&created))).await,
            200
        );
    }
    let done = event(
        "r2",
        "TaskComplete",
        &location,
        json!({"id": "t1", "contactId": ids[1], "title": "Call back"}),
    );
    assert_eq!(
        post(&http, &l.url, done.clone(), Some(signer.sign(&done))).await,
        200
    );
    let orphan = event(
        "r3",
        "TaskComplete",
        &location,
        json!({"id": "t2", "title": "No contact"}),
    );
    assert_eq!(
        post(&http, &l.url, orphan.clone(), Some(signer.sign(&orphan))).await,
        200
    );
    let notes_before = sb.store().notes(&ids[1]).len();
    // The actions run in the background; stopping settles the rest.
    let (code, stderr) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let tasks = sb.store().tasks(&ids[0]);
    let follow_ups: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["title"] == "Follow up with Ann Lee")
        .collect();
    assert_eq!(
        follow_ups.len(),
        1,
        "one task for three deliveries: {tasks:?}"
    );
    assert_eq!(tasks.len(), tasks_before + 1);
    let tags = sb.store().contact(&ids[0]).unwrap()["tags"].clone();
    assert!(
        tags.as_array().unwrap().iter().any(|t| t == "new-lead"),
        "{tags}"
    );
    let notes = sb.store().notes(&ids[1]);
    assert!(
        notes
            .iter()
            .filter(|n| n["body"] == "Task completed: Call back")
            .count()
            == 1,
        "{notes:?} (had {notes_before} before)"
    );
    // Neither the token nor the signing key's public half (nor a signature) is in the log.
    assert!(stderr.contains("POST"), "the log shows requests: {stderr}");
    assert!(
        !stderr.contains(ghl_etl::sandbox::DEFAULT_TOKEN),
        "the token was logged"
    );
    let key_line = signer.pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_line), "the key was logged");
    assert!(
        !stderr.contains(&signer.sign(&created)),
        "a signature was logged"
    );
    // Custom fields by name, read from the location's definitions.
    let by_name = column_of(&dir.path().join("out"), "r1", "customFields");
    let want = json!({field["name"].as_str().unwrap(): "from the webhook"});
    assert_eq!(serde_json::from_str::<Value>(&by_name).unwrap(), want);
    // Three actions (task, tags, note); the task without a contact matched no rule.
    assert!(
        stderr.contains("Rule actions: 3 done.") && !stderr.contains("failed"),
        "{stderr}"
    );
    sb.shutdown().await;
}

/// SIGKILL while rule actions are being sent, then a restart and GHL's retries: every contact
/// of the 60 new-contact events has exactly one follow-up task and the tags, none two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_actions_are_sent_once_across_a_kill() {
    let sb = sandbox(quiet_config(60)).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/rules.toml");
    let url = sb.url();
    let env = [
        ("GHL_BASE_URL", url.as_str()),
        ("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN),
    ];
    let args = ["--rules", rules, "--rate", "off"];
    let bodies: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let extra =
                json!({"id": id, "firstName": format!("F{i}"), "lastName": "L", "source": "Web"});
            event(&format!("a{i}"), "ContactCreate", &location, extra)
        })
        .collect();
    let http = reqwest::Client::new();
    let l = Listener::start(dir.path(), &signer, &args, &env);
    for b in &bodies {
        assert_eq!(
            post(&http, &l.url, b.clone(), Some(signer.sign(b))).await,
            200
        );
    }
    // Killed once some actions went out (tasks made), before all did.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sb.stats().written("task_create") < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await; // poll interval
    }
    drop(l);
    let made_before_restart = sb.stats().written("task_create");
    assert!(made_before_restart >= 10, "actions were under way");
    let l = Listener::start(dir.path(), &signer, &args, &env);
    for b in bodies.iter().step_by(2) {
        assert_eq!(
            post(&http, &l.url, b.clone(), Some(signer.sign(b))).await,
            200
        );
    }
    let (code, stderr) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    for (i, id) in ids.iter().enumerate() {
        let title = format!("Follow up with F{i} L");
        let tasks = sb.store().tasks(id);
        let n = tasks
            .iter()
            .filter(|t| t["title"] == title.as_str())
            .count();
        assert_eq!(n, 1, "contact {id}: {n} follow-up tasks");
        let tags = sb.store().contact(id).unwrap()["tags"].clone();
        assert!(
            tags.as_array().unwrap().iter().any(|t| t == "new-lead"),
            "{id}: {tags}"
        );
    }
    assert_eq!(sb.stats().written("task_create"), 60);
    sb.shutdown().await;
}

/// The README's demo, as a test: a sandbox that sends GHL's webhooks (signed both ways, each
/// event twice, pairs swapped, TaskCreate without contactId) to the listener, a contact made
/// through the API: every event the sandbox delivered is in the dataset once, and the rule's
/// follow-up task is on the new contact, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandboxs_webhooks_land_in_the_dataset_and_the_rules_act_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut hooks =
        ghl_etl::sandbox::WebhookConfig::new(format!("http://127.0.0.1:{port}/webhooks/ghl"));
    hooks.duplicate_rate = 1.0;
    hooks.reorder_rate = 1.0;
    hooks.drop_contact_id_rate = 1.0;
    hooks.retry_delay = Duration::from_millis(50);
    let mut cfg = quiet_config(3);
    cfg.webhooks = Some(hooks);
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let keys = sb.webhook_public_keys();
    let dir = tempfile::tempdir().unwrap();
    let url = sb.url();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/rules.toml");
    let l = Listener::launch(
        dir.path(),
        &keys.ed25519_pem,
        port,
        &["--rules", rules, "--rate", "off"],
        &[
            ("GHL_BASE_URL", url.as_str()),
            ("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN),
            ("WEBHOOK_PUBLIC_KEY", keys.rsa_pem.as_str()),
        ],
    );
    // A change through the API: a new contact with a source.
    let http = reqwest::Client::new();
    let made: Value = http
        .post(format!("{url}/contacts/upsert"))
        .bearer_auth(ghl_etl::sandbox::DEFAULT_TOKEN)
        .header("Version", "2021-07-28")
        .json(&json!({"locationId": location, "email": "ann@example.org",
                      "firstName": "Ann", "lastName": "Lee", "source": "Website"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["contact"]["id"].as_str().unwrap().to_string();
    // And a change through the sandbox's own control route.
    let other = sb.store().contact_ids(&location)[0].clone();
    let changed = http
        .post(format!("{url}/_sandbox/contacts/{other}"))
        .json(&json!({"firstName": "Changed"}))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success());
    tokio::time::timeout(Duration::from_secs(60), sb.webhooks_settled())
        .await
        .expect("every event delivered or lost");
    // The rule's task (and the sandbox's own TaskCreate webhook of it) come next.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sb.store().tasks(&id).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval
    }
    tokio::time::timeout(Duration::from_secs(60), sb.webhooks_settled())
        .await
        .expect("the task's event delivered too");
    let (code, stderr) = l.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let stats = sb.webhook_stats();
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert!(stats.duplicates_sent > 0, "{stats:?}");
    let delivered: std::collections::BTreeSet<String> = sb.delivered_ids().into_iter().collect();
    let (parquet, ndjson) = dataset(&dir.path().join("out"));
    let by_id = counts(parquet.iter().map(|(w, _)| w.as_str()));
    let stored: std::collections::BTreeSet<String> = by_id.keys().cloned().collect();
    assert_eq!(stored, delivered, "every delivered event, and only those");
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");
    let types: Vec<&str> = ndjson.iter().filter_map(|v| v["type"].as_str()).collect();
    for t in ["ContactCreate", "ContactUpdate", "TaskCreate"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let tasks = sb.store().tasks(&id);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], "Follow up with Ann Lee");
    sb.shutdown().await;
}
