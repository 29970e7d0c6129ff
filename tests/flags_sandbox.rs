//! `ghl-etl sandbox` started as a process, as a user starts it, and each of its flags that
//! `flag_checks.rs` does not already cover seen through what a client of it gets: the printout
//! (`--port 0`) is enough to export with its token or its OAuth client, `--host`, `--latency`,
//! `--access-token-ttl`, `--hostile-answers`, `--fixture`, and the webhook flags
//! (`--webhook-url`, `--webhook-schemes`, `--webhook-duplicates`, `--webhook-reorder`,
//! `--webhook-drop-contact-id`, `--webhook-retry-delay`) through a receiver the test runs. Also
//! the README's first command, `export --sandbox --out ./demo-export`, with the debug binary.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ghl_etl::sandbox::{Store, API_VERSION, DEFAULT_TOKEN, ED25519_HEADER, RSA_HEADER};
use serde_json::{json, Value};

use crate::export::{read_parquet, strings as column};
use crate::util::{bin, describe, read_csv, run_bin};

/// How long a sandbox may take to print its banner, and a webhook to arrive.
const DEADLINE: Duration = Duration::from_secs(60);

/// A `ghl-etl sandbox --port 0` process and what it printed on start; killed when dropped.
struct SandboxProcess {
    child: Child,
    banner: String,
    url: String,
    locations: Vec<String>,
    stderr: tempfile::NamedTempFile,
}

impl SandboxProcess {
    /// Starts `ghl-etl sandbox --port 0 ARGS` and reads its banner up to its last line (it is
    /// printed once the server listens).
    fn start(args: &[&str]) -> SandboxProcess {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(bin())
            .args(["sandbox", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen().unwrap()))
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        // Reads every line the sandbox prints, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut banner = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                    if line == "Press Ctrl-C to stop." {
                        break;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let err = std::fs::read_to_string(stderr.path()).unwrap_or_default();
                    panic!("ghl-etl sandbox {args:?} printed no banner ({e}):\n{banner}\nstderr:\n{err}");
                }
            }
        }
        let url = banner
            .lines()
            .find_map(|l| l.strip_prefix("GHL sandbox listening on "))
            .expect("the URL line")
            .to_string();
        let locations = banner
            .split("\nLocations:\n")
            .nth(1)
            .expect("the locations")
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        SandboxProcess {
            child,
            banner,
            url,
            locations,
            stderr,
        }
    }

    /// The rest of the banner line that starts (after its indent) with `prefix`.
    fn printed(&self, prefix: &str) -> &str {
        self.banner
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", self.banner))
            .trim()
    }

    /// Changes a contact through `POST /_sandbox/contacts/{id}` (no token), as the banner says.
    fn change(&self, id: &str, fields: Value) {
        let (status, body, _) = request(
            "POST",
            &format!("{}/_sandbox/contacts/{id}", self.url),
            &[],
            Some(fields),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// `POST /contacts/{id}/tasks` with the sandbox's token; answers the task's id.
    fn create_task(&self, id: &str) -> String {
        let body =
            json!({"title": "Call back", "dueDate": "2027-01-01T00:00:00Z", "completed": false});
        let (status, text, _) = request(
            "POST",
            &format!("{}/contacts/{id}/tasks", self.url),
            &api_headers(),
            Some(body),
        );
        assert!((200..300).contains(&status), "{status}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["task"]["id"].as_str().expect("a task id").to_string()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let err = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
            eprintln!("ghl-etl sandbox banner:\n{}\nstderr:\n{err}", self.banner);
        }
    }
}

/// The headers of an API request with the sandbox's token.
fn api_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {DEFAULT_TOKEN}")),
        ("Version", API_VERSION.to_string()),
    ]
}

/// One HTTP request (JSON body if any); answers (status, body, how long the answer took).
fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    json: Option<Value>,
) -> (u16, String, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(body) = json {
            req = req.json(&body);
        }
        let started = Instant::now();
        let answer = req.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (status, text, started.elapsed())
    })
}

/// The ids of the seeded contacts of a sandbox's first location, made independently of the
/// process (same seed, same ids).
fn seeded_ids(seed: u64, contacts: usize) -> BTreeSet<String> {
    let store = Store::new(seed, 1, contacts);
    store
        .contact_ids(&store.location_ids()[0])
        .into_iter()
        .collect()
}

/// The ids in an export's `contacts/` Parquet parts, asserting none repeats.
fn exported_ids(out: &Path) -> BTreeSet<String> {
    let ids: Vec<String> = column(&read_parquet(out, "contacts"), "id")
        .into_iter()
        .map(|id| id.expect("every contact has an id"))
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a contact exported twice");
    set
}

/// The banner's own lines are enough: with `--port 0` it names the port it got, and the
/// `export GHL_BASE_URL=… GHL_TOKEN=…` lines with the `ghl-etl export` command it prints export
/// exactly the seeded contacts; so does OAuth with the client and refresh token it prints.
#[test]
fn the_printout_alone_is_enough_to_export_with_its_token_or_its_oauth_client() {
    let sb = SandboxProcess::start(&["--contacts", "9", "--rate-limit", "off"]);
    let port: u16 = sb.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "the port it got, not the one asked for");
    let env = [
        (
            "GHL_BASE_URL",
            sb.printed("export GHL_BASE_URL=").to_string(),
        ),
        ("GHL_TOKEN", sb.printed("export GHL_TOKEN=").to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let command = sb.printed("ghl-etl export ").to_string();
    let mut args = vec!["export"];
    args.extend(command.split_whitespace());
    let dir = tempfile::tempdir().unwrap();
    let out = run_bin(&args, &env, dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&args, dir.path(), &out)
    );
    assert_eq!(exported_ids(&dir.path().join("export")), seeded_ids(42, 9));

    let refresh = dir.path().join("refresh-token");
    std::fs::write(&refresh, sb.printed("refresh_token:")).unwrap();
    let refresh = refresh.display().to_string();
    let args = [
        "export",
        "--location",
        &sb.locations[0],
        "--out",
        "./oauth",
        "--client-id",
        sb.printed("client_id:"),
        "--refresh-token-file",
        &refresh,
    ];
    let env = [
        ("GHL_BASE_URL", sb.url.as_str()),
        ("GHL_CLIENT_SECRET", sb.printed("client_secret:")),
    ];
    let out = run_bin(&args, &env, dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&args, dir.path(), &out)
    );
    assert_eq!(exported_ids(&dir.path().join("oauth")), seeded_ids(42, 9));
}

/// `--host 127.0.0.2`: the sandbox listens there, an export through the URL it prints works,
/// and nothing listens on 127.0.0.1 at that port.
#[test]
fn host_is_the_address_it_listens_on() {
    let sb = SandboxProcess::start(&["--host", "127.0.0.2", "--contacts", "4"]);
    assert!(sb.url.starts_with("http://127.0.0.2:"), "{}", sb.banner);
    let port: u16 = sb.url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing on 127.0.0.1:{port}"
    );
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "export",
        "--location",
        &sb.locations[0],
        "--out",
        "./x",
        "--with",
        "none",
    ];
    let env = [
        ("GHL_BASE_URL", sb.url.as_str()),
        ("GHL_TOKEN", DEFAULT_TOKEN),
    ];
    let out = run_bin(&args, &env, dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&args, dir.path(), &out)
    );
    assert_eq!(exported_ids(&dir.path().join("x")), seeded_ids(42, 4));
}

/// `--latency 1200`: an API answer and a token answer each take at least 1.2 s.
#[test]
fn latency_delays_every_answer() {
    let sb = SandboxProcess::start(&["--latency", "1200", "--contacts", "1"]);
    let path = format!("{}/locations/{}/customFields", sb.url, sb.locations[0]);
    let (status, body, took) = request("GET", &path, &api_headers(), None);
    assert_eq!(status, 200, "{body}");
    assert!(took >= Duration::from_millis(1200), "answered in {took:?}");
    let (status, body, took) = oauth_refresh(&sb);
    assert_eq!(status, 200, "{body}");
    assert!(took >= Duration::from_millis(1200), "answered in {took:?}");
}

/// `POST /oauth/token` with the client and refresh token the banner prints.
fn oauth_refresh(sb: &SandboxProcess) -> (u16, String, Duration) {
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        sb.printed("client_id:"),
        sb.printed("client_secret:"),
        sb.printed("refresh_token:")
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let answer = reqwest::Client::new()
            .post(format!("{}/oauth/token", sb.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap(), started.elapsed())
    })
}

/// `--access-token-ttl 120`: the access token the OAuth flow issues says it lives 120 s
/// (the default is 86399).
#[test]
fn access_token_ttl_is_the_lifetime_of_issued_tokens() {
    let sb = SandboxProcess::start(&["--access-token-ttl", "120", "--contacts", "1"]);
    let (status, body, _) = oauth_refresh(&sb);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["expires_in"], 120, "{answer}");
}

/// `--hostile html-200 --hostile-answers 2`: two answers are a login page, retried, and the
/// export finishes having retried exactly twice; without `--hostile-answers` every answer is
/// one and the export gives up (exit 5).
#[test]
fn hostile_answers_spoils_only_that_many_answers() {
    for (flags, want, says) in [
        (&["--hostile-answers", "2"][..], 0, "2 retries"),
        (&[][..], 5, "rerun"),
    ] {
        let mut args = vec!["--contacts", "30", "--hostile", "html-200"];
        args.extend_from_slice(flags);
        let sb = SandboxProcess::start(&args);
        let dir = tempfile::tempdir().unwrap();
        let a = [
            "export",
            "--location",
            &sb.locations[0],
            "--out",
            "./x",
            "--with",
            "none",
            "--page-size",
            "10",
            "--max-attempts",
            "4",
            "--retry-max-delay",
            "0.2",
        ];
        let env = [
            ("GHL_BASE_URL", sb.url.as_str()),
            ("GHL_TOKEN", DEFAULT_TOKEN),
        ];
        let out = run_bin(&a, &env, dir.path());
        let d = describe(&a, dir.path(), &out);
        assert_eq!(out.status.code(), Some(want), "{flags:?}: {d}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            stderr.contains(says),
            "{flags:?}: stderr lacks {says:?}: {d}"
        );
        if want == 0 {
            assert_eq!(exported_ids(&dir.path().join("x")), seeded_ids(42, 30));
        }
    }
}

/// The first and last name and email of each contact, as a sorted list (a multiset).
type People = Vec<(String, String, String)>;

/// `--fixture` on the foreign location (data this project did not generate): its first
/// location exports exactly the fixture's 600 contacts, name for name; the second is empty.
#[test]
fn fixture_seeds_the_first_location_from_the_folder() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/foreign-location");
    let text = std::fs::read_to_string(fixture.join("contacts.ndjson")).unwrap();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut want: People = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|c| (s(&c["firstName"]), s(&c["lastName"]), s(&c["email"])))
        .collect();
    want.sort();
    assert_eq!(want.len(), 600);
    let sb = SandboxProcess::start(&["--fixture", &fixture.display().to_string()]);
    assert_eq!(sb.locations.len(), 2, "{}", sb.banner);
    let export = |location: &str, out: &str| -> People {
        let dir = tempfile::tempdir().unwrap();
        let a = [
            "export",
            "--location",
            location,
            "--out",
            out,
            "--with",
            "none",
            "--format",
            "csv",
        ];
        let env = [
            ("GHL_BASE_URL", sb.url.as_str()),
            ("GHL_TOKEN", DEFAULT_TOKEN),
        ];
        let o = run_bin(&a, &env, dir.path());
        assert_eq!(o.status.code(), Some(0), "{}", describe(&a, dir.path(), &o));
        let mut people = Vec::new();
        for p in crate::export::parts(&dir.path().join(out), "contacts", "csv") {
            let (h, rows) = read_csv(&p);
            let at = |n: &str| h.iter().position(|c| c == n).unwrap();
            let (f, l, e) = (at("firstName"), at("lastName"), at("email"));
            people.extend(
                rows.iter()
                    .map(|r| (r[f].clone(), r[l].clone(), r[e].clone())),
            );
        }
        people.sort();
        people
    };
    assert_eq!(export(&sb.locations[0], "first"), want);
    assert!(export(&sb.locations[1], "second").is_empty());
}

/// One webhook delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Delivery {
    ed25519: bool,
    rsa: bool,
    body: Value,
    at: Instant,
}

/// What the receiver's handler shares: what it got, and how many first deliveries it
/// refuses with 429.
struct Hooks {
    got: Mutex<Vec<Delivery>>,
    refuse_first: usize,
}

/// A webhook receiver on 127.0.0.1 (axum on its own thread); stopped when dropped.
struct Receiver {
    url: String,
    hooks: Arc<Hooks>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(refuse_first: usize) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let hooks = Arc::new(Hooks {
            got: Mutex::new(Vec::new()),
            refuse_first,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = hooks.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new()
                    .route("/hooks", axum::routing::post(receive))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            url,
            hooks,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The first `n` deliveries, once they came (a minute at most).
    fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.hooks.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(10)); // poll interval
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn receive(State(hooks): State<Arc<Hooks>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut got = hooks.got.lock().unwrap();
    let refuse = got.len() < hooks.refuse_first;
    got.push(Delivery {
        ed25519: headers.contains_key(ED25519_HEADER),
        rsa: headers.contains_key(RSA_HEADER),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    if refuse {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    }
}

/// A sandbox process sending webhooks to `receiver` with `flags`, and the id of its first
/// contact.
fn webhook_sandbox(receiver: &Receiver, flags: &[&str]) -> (SandboxProcess, String) {
    let mut args = vec!["--contacts", "3", "--webhook-url", &receiver.url];
    args.extend_from_slice(flags);
    let sb = SandboxProcess::start(&args);
    let store = Store::new(42, 1, 3);
    let id = store.contact_ids(&store.location_ids()[0])[0].clone();
    (sb, id)
}

/// Two changes of one contact's first name (`First`, then `Second`).
fn change_twice(sb: &SandboxProcess, id: &str) {
    sb.change(id, json!({"firstName": "First"}));
    sb.change(id, json!({"firstName": "Second"}));
}

/// (type, firstName, webhookId) of each delivery.
fn summary(got: &[Delivery]) -> Vec<(String, String, String)> {
    got.iter()
        .map(|d| {
            let s = |k: &str| d.body[k].as_str().unwrap_or("").to_string();
            (s("type"), s("firstName"), s("webhookId"))
        })
        .collect()
}

/// `--webhook-url` sends a ContactUpdate for a change, in order, and `--webhook-schemes` picks
/// its signature headers: `rsa` only `x-wh-signature`, `ed25519` only `x-ghl-signature`, the
/// default both.
#[test]
fn webhook_url_and_schemes_send_signed_updates() {
    for (flags, ed25519, rsa) in [
        (&["--webhook-schemes", "rsa"][..], false, true),
        (&["--webhook-schemes", "ed25519"][..], true, false),
        (&[][..], true, true),
    ] {
        let receiver = Receiver::start(0);
        let (sb, id) = webhook_sandbox(&receiver, flags);
        change_twice(&sb, &id);
        let got = receiver.wait_for(2);
        let s = summary(&got);
        assert_eq!(
            s.iter()
                .map(|(t, n, _)| (t.as_str(), n.as_str()))
                .collect::<Vec<_>>(),
            [("ContactUpdate", "First"), ("ContactUpdate", "Second")],
            "{flags:?}"
        );
        assert_ne!(s[0].2, s[1].2, "one webhookId an event");
        assert!(got.iter().all(|d| d.body["id"] == id.as_str()), "{got:#?}");
        for d in &got {
            assert_eq!((d.ed25519, d.rsa), (ed25519, rsa), "{flags:?}");
        }
    }
}

/// `--webhook-duplicates 1` delivers each event twice, same body and webhookId;
/// `--webhook-reorder 1` holds each event back until the next one overtook it.
#[test]
fn webhook_duplicates_and_reorder_change_what_arrives() {
    let receiver = Receiver::start(0);
    let (sb, id) = webhook_sandbox(&receiver, &["--webhook-duplicates", "1"]);
    change_twice(&sb, &id);
    let got = receiver.wait_for(4);
    let s = summary(&got);
    let names: Vec<&str> = s.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["First", "First", "Second", "Second"]);
    assert_eq!(s[0].2, s[1].2, "the copy has the same webhookId");
    assert_eq!(got[0].body, got[1].body, "and the same body");
    assert_eq!(s[2].2, s[3].2);
    assert_ne!(s[0].2, s[2].2);
    drop(sb);

    let receiver = Receiver::start(0);
    let (sb, id) = webhook_sandbox(&receiver, &["--webhook-reorder", "1"]);
    change_twice(&sb, &id);
    let got = receiver.wait_for(2);
    let names: Vec<String> = summary(&got).into_iter().map(|(_, n, _)| n).collect();
    assert_eq!(names, ["Second", "First"], "the later event first");
}

/// `--webhook-drop-contact-id 1` sends TaskCreate without `contactId`; by default it carries it.
#[test]
fn webhook_drop_contact_id_strips_it_from_task_creates() {
    for (flags, carries) in [
        (&["--webhook-drop-contact-id", "1"][..], false),
        (&[][..], true),
    ] {
        let receiver = Receiver::start(0);
        let (sb, id) = webhook_sandbox(&receiver, flags);
        let task = sb.create_task(&id);
        let got = receiver.wait_for(1);
        let created = got
            .iter()
            .find(|d| d.body["type"] == "TaskCreate")
            .unwrap_or_else(|| panic!("no TaskCreate: {got:#?}"));
        assert_eq!(created.body["id"], task.as_str(), "{}", created.body);
        let want = if carries { json!(id) } else { Value::Null };
        assert_eq!(
            created.body["contactId"], want,
            "{flags:?}: {}",
            created.body
        );
    }
}

/// `--webhook-retry-delay 0.5`: a delivery answered 429 comes again, same webhookId, no
/// sooner than half a second later (the default would wait ten minutes, past the deadline).
#[test]
fn webhook_retry_delay_is_the_wait_before_a_429_is_sent_again() {
    let receiver = Receiver::start(1);
    let (sb, id) = webhook_sandbox(&receiver, &["--webhook-retry-delay", "0.5"]);
    sb.change(&id, json!({"firstName": "Again"}));
    let got = receiver.wait_for(2);
    let s = summary(&got);
    assert_eq!(s[0], s[1], "the same event again: {got:#?}");
    assert_eq!(s[0].1, "Again");
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(500),
        "sent again after {gap:?}"
    );
}

/// The README's first command, with the debug binary: `export --sandbox --out ./demo-export`
/// exports the embedded sandbox's 2000 seeded contacts (exactly those) and all their tasks and
/// notes.
#[test]
fn the_readme_demo_export_runs() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["export", "--sandbox", "--out", "./demo-export"];
    let out = run_bin(&args, &[], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe(&args, dir.path(), &out)
    );
    let root = dir.path().join("demo-export");
    assert_eq!(exported_ids(&root), seeded_ids(42, 2000));
    let store = Store::new(42, 1, 2000);
    let ids = store.contact_ids(&store.location_ids()[0]);
    for table in ["tasks", "notes"] {
        let want: BTreeSet<String> = ids
            .iter()
            .flat_map(|id| match table {
                "tasks" => store.tasks(id),
                _ => store.notes(id),
            })
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        let got: BTreeSet<String> = column(&read_parquet(&root, table), "id")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(got.len(), want.len(), "{table}");
        assert_eq!(got, want, "{table}");
    }
}
