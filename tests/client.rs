//! The API client against the sandbox over real HTTP: pagination (ties, the 10,000 cap),
//! faults and 429 storms with the limiter on, one 429 pausing its whole location for its
//! `Retry-After` (read from arrival stamps), fast auth failures, token hygiene, OAuth refresh
//! rotation (after a 401, and five minutes before expiry).

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use ghl_etl::api::{
    AuthConfig, Client, ClientConfig, ContactPage, Cursor, ErrorKind, OAuthConfig, RateSpec, Source,
};
use ghl_etl::sandbox::{
    SandboxConfig, SandboxState, TokenSpec, DEFAULT_TOKEN, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
};
use ghl_etl::secret::Secret;

use crate::util::{client, client_config, quiet_config, sandbox};

async fn all_ids(client: &Client, location: &str, source: Source, page_size: usize) -> Vec<String> {
    let pages: Vec<ContactPage> = client
        .contact_pages(location, source, page_size, Cursor::Start)
        .try_collect()
        .await
        .expect("listing succeeds");
    pages
        .iter()
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
        })
        .collect()
}

fn assert_exactly_once(got: &[String], expected: &[String], what: &str) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "{what}: {} ids repeated",
        got.len() - unique.len()
    );
    let want: HashSet<&String> = expected.iter().collect();
    assert_eq!(
        unique, want,
        "{what}: listed set differs from the sandbox's"
    );
}

#[tokio::test]
async fn every_contact_once_through_each_listing_endpoint_despite_ties() {
    let sb = sandbox(quiet_config(5_000)).await;
    let location = sb.location_ids()[0].clone();
    let expected = sb.store().contact_ids(&location);
    assert_eq!(expected.len(), 5_000);
    // The data must have heavy dateAdded ties, or this test proves nothing about them.
    let stamps: HashSet<String> = expected
        .iter()
        .map(|id| {
            sb.store().contact(id).unwrap()["dateAdded"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        stamps.len() * 5 < expected.len(),
        "only {} distinct dateAdded values expected to be far fewer than contacts",
        stamps.len()
    );

    let c = client(&sb, None);
    let listed = all_ids(&c, &location, Source::List, 100).await;
    assert_exactly_once(&listed, &expected, "GET /contacts/");
    assert_eq!(
        listed, expected,
        "GET /contacts/ keeps the (dateAdded, id) order"
    );

    let searched = all_ids(&c, &location, Source::Search { filters: vec![] }, 500).await;
    assert_exactly_once(&searched, &expected, "POST /contacts/search");

    // Business listings: together they give every contact that has a business, once.
    let mut by_business = Vec::new();
    for b in sb.store().business_ids(&location) {
        by_business.extend(all_ids(&c, &location, Source::Business { business_id: b }, 25).await);
    }
    let with_business: Vec<String> = expected
        .iter()
        .filter(|id| {
            sb.store().contact(id).unwrap()["businessId"]
                .as_str()
                .is_some()
        })
        .cloned()
        .collect();
    assert!(!with_business.is_empty());
    assert_exactly_once(&by_business, &with_business, "GET /contacts/business/{id}");
    sb.shutdown().await;
}

#[tokio::test]
async fn search_returns_all_of_a_location_beyond_ten_thousand() {
    let sb = sandbox(quiet_config(12_345)).await;
    let location = sb.location_ids()[0].clone();
    let c = client(&sb, None);
    let searched = all_ids(&c, &location, Source::Search { filters: vec![] }, 500).await;
    assert_exactly_once(
        &searched,
        &sb.store().contact_ids(&location),
        "search past 10,000",
    );
    assert_eq!(c.stats().requests, 12_345u64.div_ceil(500));
    sb.shutdown().await;
}

#[tokio::test]
async fn resumes_a_listing_from_a_saved_cursor() {
    let sb = sandbox(quiet_config(1_000)).await;
    let location = sb.location_ids()[0].clone();
    let c = client(&sb, None);
    let mut pages = Box::pin(c.contact_pages(&location, Source::List, 100, Cursor::Start));
    let mut first: Vec<String> = Vec::new();
    let mut cursor = Cursor::Start;
    for _ in 0..3 {
        let p = pages.try_next().await.unwrap().unwrap();
        first.extend(
            p.records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        cursor = p.next.clone();
    }
    let rest: Vec<String> = c
        .contact_pages(&location, Source::List, 100, cursor)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
        })
        .collect();
    first.extend(rest);
    assert_eq!(first, sb.store().contact_ids(&location));
    sb.shutdown().await;
}

#[tokio::test]
async fn survives_faults_and_429_storms_without_loss_or_repeats() {
    let limit: RateSpec = "40/500ms".parse().unwrap();
    let cfg = SandboxConfig {
        contacts: 1_500,
        rate_limit: Some(limit.into()),
        fault_rate: 0.05,
        ..SandboxConfig::default()
    };
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    // The client paces at the sandbox's limit; the storm comes from someone else below.
    let c = client(&sb, Some(limit));
    let listed = all_ids(&c, &location, Source::List, 100).await;
    assert_exactly_once(
        &listed,
        &sb.store().contact_ids(&location),
        "list under faults",
    );
    // Another client of the same app and location, without a limiter or retries, sends about
    // 200 requests/s (the budget is 80/s): a 429 storm, from before the notes start until the
    // sandbox's limiter has refused requests and this client has met a 429, or this client has
    // finished (ended by events, not by a clock, so the storm overlaps the calls however slow
    // the machine).
    let mut rogue_cfg = client_config(&sb, DEFAULT_TOKEN, None);
    rogue_cfg.retry.max_attempts = 1;
    let rogue = Client::new(rogue_cfg).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rogues: Vec<_> = (0..2)
        .map(|_| {
            let (rogue, location, id) = (rogue.clone(), location.clone(), listed[0].clone());
            let (c, done, server) = (c.clone(), done.clone(), sb.state().clone());
            tokio::spawn(async move {
                use std::sync::atomic::Ordering;
                let met = || server.stats().rate_limited > 0 && c.stats().throttled > 0;
                while !done.load(Ordering::Relaxed) && !met() {
                    let _ = rogue.contact_notes(&location, &id).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    // Related records of 200 contacts, 16 at a time.
    let ids: Vec<String> = listed.into_iter().take(200).collect();
    let notes: Vec<(String, usize)> = futures::stream::iter(ids.iter())
        .map(|id| {
            let c = c.clone();
            let location = location.clone();
            async move {
                c.contact_notes(&location, id)
                    .await
                    .map(|n| (id.clone(), n.unwrap().len()))
            }
        })
        .buffered(16)
        .try_collect()
        .await
        .expect("notes survive faults and the storm");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in rogues {
        r.await.unwrap();
    }
    for (id, n) in &notes {
        assert_eq!(*n, sb.store().notes(id).len(), "notes of {id}");
    }
    let stats = c.stats();
    let server = sb.stats();
    assert!(
        server.rate_limited > 0,
        "the sandbox's limiter answered 429s: {server:?}"
    );
    assert!(
        stats.throttled > 0,
        "this client was answered 429 too, and retried: {stats:?}"
    );
    assert!(
        stats.retries > 0,
        "faults were injected, so some requests were retried: {stats:?}"
    );
    assert!(
        server.faults_total() > 0,
        "the sandbox injected faults: {server:?}"
    );
    sb.shutdown().await;
}

use futures::StreamExt;

#[tokio::test]
async fn bad_token_fails_fast_without_retries() {
    let sb = sandbox(quiet_config(10)).await;
    let location = sb.location_ids()[0].clone();
    let c = Client::new(client_config(&sb, "not-a-real-token-123", None)).unwrap();
    let err = c.contact_notes(&location, "x").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(c.stats().requests, 1);
    assert_eq!(c.stats().retries, 0);
    let text = err.to_string();
    assert!(
        text.contains("GHL_TOKEN"),
        "says which token is wrong: {text}"
    );
    assert!(!text.contains("not-a-real-token-123"), "{text}");
    sb.shutdown().await;
}

#[tokio::test]
async fn missing_scope_and_foreign_location_are_named() {
    let mut cfg = quiet_config(10);
    cfg.locations = 2;
    cfg.tokens = vec![
        "reader=contacts.readonly".parse::<TokenSpec>().unwrap(),
        "narrow=contacts.readonly,contacts.write@1"
            .parse::<TokenSpec>()
            .unwrap(),
    ];
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let reader = Client::new(client_config(&sb, "reader", None)).unwrap();
    let err = reader
        .upsert_contact(&location, serde_json::json!({"email": "a@example.com"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert!(err.to_string().contains("contacts.write"), "{err}");
    assert_eq!(reader.stats().retries, 0);

    let narrow = Client::new(client_config(&sb, "narrow", None)).unwrap();
    let err = narrow.custom_fields(&location).await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("location"), "{err}");
    assert_eq!(narrow.stats().retries, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn deleted_contact_children_are_none_not_errors() {
    let sb = sandbox(quiet_config(20)).await;
    let location = sb.location_ids()[0].clone();
    let id = sb.store().contact_ids(&location)[3].clone();
    assert!(sb.store().delete_contact(&id));
    let c = client(&sb, None);
    assert_eq!(c.contact_notes(&location, &id).await.unwrap(), None);
    assert_eq!(c.contact_tasks(&location, &id).await.unwrap(), None);
    assert_eq!(c.stats().retries, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn daily_budget_stops_cleanly_with_a_resume_hint() {
    let mut cfg = quiet_config(50);
    cfg.daily_limit = 30;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let mut ccfg = client_config(&sb, DEFAULT_TOKEN, Some("1000/1s".parse().unwrap()));
    ccfg.daily_reserve = 10;
    let c = Client::new(ccfg).unwrap();
    let mut stopped = None;
    for id in sb.store().contact_ids(&location) {
        if let Err(e) = c.contact_notes(&location, &id).await {
            stopped = Some(e);
            break;
        }
    }
    let e = stopped.expect("the budget runs out");
    assert!(
        matches!(e.kind, ErrorKind::DailyBudgetExhausted { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("rerun"), "{e}");
    assert!(
        c.stats().requests <= 21,
        "stopped at the reserve, not at the wall: {:?}",
        c.stats()
    );
    sb.shutdown().await;
}

/// A client of the sandbox's OAuth app, its refresh token in `file` (as a run would start).
fn oauth_client(sb: &ghl_etl::sandbox::Sandbox, file: &std::path::Path) -> Client {
    oauth_client_timed(sb, file, ghl_etl::api::Clock::default())
}

/// An OAuth client whose token lifetimes are judged by `clock`.
fn oauth_client_timed(
    sb: &ghl_etl::sandbox::Sandbox,
    file: &std::path::Path,
    clock: ghl_etl::api::Clock,
) -> Client {
    let mut cfg = ClientConfig::new(
        sb.url(),
        AuthConfig::OAuth(OAuthConfig {
            client_id: OAUTH_CLIENT_ID.into(),
            client_secret: Secret::new(OAUTH_CLIENT_SECRET),
            refresh_token_file: file.to_path_buf(),
            user_type: "Location".into(),
        }),
    );
    cfg.rate = None;
    cfg.retry = crate::util::fast_retry();
    cfg.clock = clock;
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn oauth_refresh_token_rotation_persists_across_runs() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh_token");
    let first = sb.issue_refresh_token(&["contacts.readonly", "contacts.write"]);
    std::fs::write(&file, &first).unwrap();
    let oauth = || oauth_client(&sb, &file);
    // Run 1: refreshes, persists the rotated token, then reads.
    let run1 = oauth();
    assert!(run1
        .contact_notes(&location, &sb.store().contact_ids(&location)[0])
        .await
        .is_ok());
    let second = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_ne!(second, first, "the refresh token was rotated and saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Run 2 (a new process would start like this): uses the saved token, rotates again.
    let run2 = oauth();
    assert!(run2
        .contact_tasks(&location, &sb.store().contact_ids(&location)[1])
        .await
        .is_ok());
    let third = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_ne!(third, second);
    // The first refresh token is dead: a run holding it fails with a clear message.
    std::fs::write(&file, &first).unwrap();
    let stale = oauth();
    let err = stale.contact_notes(&location, "x").await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("refresh token"), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let cfg = ClientConfig::new("http://example.com", AuthConfig::Static(Secret::new("t")));
    let err = Client::new(cfg).err().expect("refused");
    assert!(err.to_string().contains("http://"), "{err}");
}

#[tokio::test]
async fn a_repeating_cursor_stops_instead_of_spinning() {
    // A server that answers the same full page whatever the cursor (the startAfter-only quirk).
    use axum::{routing::get, Json, Router};
    let page: Vec<serde_json::Value> = (0..10)
        .map(|i| serde_json::json!({"id": format!("id{i:02}"), "dateAdded": "2024-01-01T00:00:00.000Z"}))
        .collect();
    let app = Router::new().route(
        "/contacts/",
        get(move || {
            let page = page.clone();
            async move { Json(serde_json::json!({"contacts": page, "meta": {"total": 1000}})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = ClientConfig::new(url, AuthConfig::Static(Secret::new("t")));
    cfg.rate = None;
    let c = Client::new(cfg).unwrap();
    let result: Result<Vec<ContactPage>, _> = c
        .contact_pages("L", Source::List, 10, Cursor::Start)
        .try_collect()
        .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::CursorLoop, "{err}");
    // The first page, the repeat, and the repeat asked for twice more: then it stops.
    assert_eq!(
        c.stats().requests,
        4,
        "stopped on the first page that kept repeating"
    );
    server.abort();
}

#[tokio::test]
async fn request_bodies_validate_against_the_spec() {
    let mut cfg = quiet_config(20);
    cfg.record_requests = true;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let c = client(&sb, None);
    let ids = sb.store().contact_ids(&location);
    let _ = all_ids(&c, &location, Source::Search { filters: vec![] }, 500).await;
    let _ = c.search_tasks(&location, &ids[..5]).await.unwrap();
    let up = c
        .upsert_contact(&location, serde_json::json!({"email": "new.person@example.com", "firstName": "Zoë", "tags": ["vip"]}))
        .await
        .unwrap();
    let tags = [String::from("a"), String::from("b")];
    c.update_tags(
        &location,
        &up.contact.id,
        ghl_etl::api::endpoints::TagAction::Add,
        &tags,
    )
    .await
    .unwrap();
    c.update_tags(
        &location,
        &up.contact.id,
        ghl_etl::api::endpoints::TagAction::Remove,
        &tags[..1],
    )
    .await
    .unwrap();
    c.bulk_update_tags(
        &location,
        ghl_etl::api::endpoints::TagAction::Add,
        &ids[..3],
        &tags,
    )
    .await
    .unwrap();
    c.create_task(
        &location,
        &ids[0],
        serde_json::json!({"title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": false}),
    )
    .await
    .unwrap();
    c.create_note(
        &location,
        &ids[0],
        serde_json::json!({"body": "Met at the fair"}),
    )
    .await
    .unwrap();
    let recorded = sb.recorded_requests();
    let with_body: Vec<_> = recorded.iter().filter(|r| r.body.is_some()).collect();
    assert!(with_body.len() >= 7, "{recorded:?}");
    for r in with_body {
        if let Err(errors) =
            crate::spec::validate_request_body(&r.method, &r.route, r.body.as_ref().unwrap())
        {
            panic!(
                "{} {} body does not match the spec: {errors:?}\n{}",
                r.method,
                r.route,
                r.body.as_ref().unwrap()
            );
        }
    }
    sb.shutdown().await;
}

#[test]
fn client_config_debug_never_shows_the_token() {
    let cfg = ClientConfig::new(
        "https://services.leadconnectorhq.com",
        AuthConfig::Static(Secret::new("pit-supersecret-42")),
    );
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("supersecret"), "{shown}");
    let _ = Duration::from_secs(1);
}

#[tokio::test]
async fn a_missing_scope_never_rotates_the_oauth_refresh_token() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh_token");
    std::fs::write(&file, sb.issue_refresh_token(&["contacts.readonly"])).unwrap();
    let c = oauth_client(&sb, &file);
    // The first call refreshes once (there is no access token yet).
    assert!(c
        .contact_notes(&location, &sb.store().contact_ids(&location)[0])
        .await
        .is_ok());
    let after_first = std::fs::read_to_string(&file).unwrap();
    // A write without contacts.write: a scope error, not an expired token.
    let err = c
        .upsert_contact(&location, serde_json::json!({"email": "x@example.com"}))
        .await
        .unwrap_err();
    assert!(err.is_scope_error(), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        after_first,
        "no second rotation"
    );
    assert_eq!(c.stats().token_refreshes, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn creates_are_not_retried_after_the_server_may_have_acted() {
    let mut cfg = quiet_config(5);
    cfg.fault_rate = 1.0;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let id = sb.store().contact_ids(&location)[0].clone();
    let c = client(&sb, None);
    for _ in 0..10 {
        let before = sb.store().notes(&id).len();
        let _ = c
            .create_note(&location, &id, serde_json::json!({"body": "once"}))
            .await;
        // A lost answer (truncated or dropped after the write) may leave one note; never two.
        assert!(sb.store().notes(&id).len() - before <= 1);
    }
    let s = c.stats();
    assert!(
        s.retries <= s.throttled,
        "only 429s are retried for creates: {s:?}"
    );
    sb.shutdown().await;
}

/// A request as the test layer around the sandbox saw it.
#[derive(Debug, Clone)]
struct Hit {
    arrived: std::time::Instant,
    answered: std::time::Instant,
    path: String,
    status: u16,
}

type Hits = std::sync::Arc<std::sync::Mutex<Vec<Hit>>>;

async fn stamp(
    axum::extract::State(hits): axum::extract::State<Hits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let arrived = std::time::Instant::now();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    hits.lock().unwrap().push(Hit {
        arrived,
        answered: std::time::Instant::now(),
        path,
        status: resp.status().as_u16(),
    });
    resp
}

/// The sandbox's own router behind `wrap` (a test's layer), behind a layer that stamps every
/// request on arrival and on answer. Returns the sandbox state, its URL and the stamps.
async fn stamped_sandbox(
    cfg: SandboxConfig,
    wrap: impl FnOnce(axum::Router) -> axum::Router,
) -> (std::sync::Arc<SandboxState>, String, Hits) {
    let state = std::sync::Arc::new(SandboxState::new(cfg).unwrap());
    let hits = Hits::default();
    let app = wrap(ghl_etl::sandbox::app(state.clone()))
        .layer(axum::middleware::from_fn_with_state(hits.clone(), stamp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, url, hits)
}

#[tokio::test]
async fn a_429_pauses_its_whole_location_for_its_retry_after() {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut cfg = quiet_config(60);
    cfg.locations = 2;
    // The 10th request of location A is refused with `Retry-After: 1`, as GHL does when a
    // budget is spent by someone else; every other request reaches the sandbox's handlers.
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let a_paths = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let refuse = {
        let (seen, a_paths) = (seen.clone(), a_paths.clone());
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (seen, a_paths) = (seen.clone(), a_paths.clone());
            async move {
                let of_a = a_paths.lock().unwrap().contains(req.uri().path());
                if of_a && seen.fetch_add(1, Ordering::SeqCst) == 9 {
                    return (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        axum::Json(
                            serde_json::json!({"statusCode": 429, "message": "Too many requests"}),
                        ),
                    )
                        .into_response();
                }
                next.run(req).await
            }
        }
    };
    let (state, url, hits) =
        stamped_sandbox(cfg, |app| app.layer(axum::middleware::from_fn(refuse))).await;
    let locations = state.store().location_ids();
    let (a, b) = (locations[0].clone(), locations[1].clone());
    let a_ids = state.store().contact_ids(&a);
    let b_ids = state.store().contact_ids(&b);
    a_paths
        .lock()
        .unwrap()
        .extend(a_ids.iter().map(|id| format!("/contacts/{id}/notes")));
    // A budget far above what the test sends: only the pause can hold a request back.
    let mut ccfg = ClientConfig::new(url, AuthConfig::Static(Secret::new(DEFAULT_TOKEN)));
    ccfg.rate = Some("1000/1s".parse().unwrap());
    ccfg.retry = crate::util::fast_retry();
    let c = Client::new(ccfg).unwrap();
    // Location A: 60 requests, 8 at a time. Location B: one request every 20 ms meanwhile.
    let run_a = futures::stream::iter(a_ids.clone())
        .map(|id| {
            let (c, a) = (c.clone(), a.clone());
            async move { c.contact_notes(&a, &id).await.map(|_| ()) }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>();
    let run_b = async {
        for id in b_ids.iter().cycle().take(100) {
            c.contact_notes(&b, id).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (a_done, ()) = tokio::join!(run_a, run_b);
    assert_eq!(a_done.expect("location A finishes").len(), 60);
    assert_eq!(c.stats().throttled, 1);

    let hits = hits.lock().unwrap().clone();
    let refused: Vec<&Hit> = hits.iter().filter(|h| h.status == 429).collect();
    assert_eq!(refused.len(), 1, "one 429 was served");
    let t429 = refused[0].answered;
    let a_paths = a_paths.lock().unwrap().clone();
    let after = |of_a: bool| -> Vec<Duration> {
        hits.iter()
            .filter(|h| a_paths.contains(&h.path) == of_a && h.arrived > t429)
            .map(|h| h.arrived - t429)
            .collect()
    };
    // Requests of A already sent when the 429 came back may still arrive after it, however
    // late a loaded machine delivers them: at most the 7 others in flight. Nothing more of A
    // arrives until Retry-After ran out. (Counted, not timed: no window depends on the
    // machine's speed.)
    let a_after = after(true);
    let pause = Duration::from_secs(1);
    let during: Vec<&Duration> = a_after.iter().filter(|d| **d < pause).collect();
    assert!(
        during.len() <= 7,
        "location A sent during its pause: {during:?}"
    );
    let resumed = a_after
        .iter()
        .filter(|d| **d >= pause)
        .min()
        .copied()
        .expect("A resumed after the pause (the refused request was retried)");
    // Location B has its own budget: it kept going through A's pause, one request after
    // another, from the 429 to A's first request after it.
    let b_during = after(false).into_iter().filter(|d| *d < resumed).count();
    assert!(
        b_during >= 10,
        "B sent {b_during} requests during A's pause"
    );
}

/// A client of the sandbox's OAuth app, pointing at `url`.
fn oauth_client_at(url: &str, file: &std::path::Path) -> Client {
    let mut cfg = ClientConfig::new(
        url,
        AuthConfig::OAuth(OAuthConfig {
            client_id: OAUTH_CLIENT_ID.into(),
            client_secret: Secret::new(OAUTH_CLIENT_SECRET),
            refresh_token_file: file.to_path_buf(),
            user_type: "Location".into(),
        }),
    );
    cfg.rate = None;
    cfg.retry = crate::util::fast_retry();
    Client::new(cfg).unwrap()
}

fn oauth_refreshes(server: &ghl_etl::sandbox::Stats) -> u64 {
    server
        .by_route
        .get("POST /oauth/token")
        .and_then(|m| m.get(&200))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_token_refused_mid_run_is_refreshed_once_and_the_new_refresh_token_kept() {
    // The sandbox's access tokens really die after a minute, but the token answer is rewritten
    // to promise a day, as when GHL revokes a token early: the client learns it from a 401.
    let mut cfg = quiet_config(10);
    cfg.access_token_ttl = Duration::from_secs(60);
    let promise_a_day = |req: axum::extract::Request, next: axum::middleware::Next| async move {
        let is_token = req.uri().path() == "/oauth/token";
        let resp = next.run(req).await;
        if !is_token || !resp.status().is_success() {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let mut answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        answer["expires_in"] = serde_json::json!(86_399);
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        axum::response::Response::from_parts(
            parts,
            axum::body::Body::from(serde_json::to_vec(&answer).unwrap()),
        )
    };
    let (state, url, _) = stamped_sandbox(cfg, |app| {
        app.layer(axum::middleware::from_fn(promise_a_day))
    })
    .await;
    let location = state.store().location_ids()[0].clone();
    let ids = state.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh_token");
    std::fs::write(&file, state.issue_refresh_token(&["contacts.readonly"])).unwrap();
    let c = oauth_client_at(&url, &file);
    c.contact_notes(&location, &ids[0]).await.unwrap();
    assert_eq!(oauth_refreshes(&state.stats()), 1);
    let before = std::fs::read_to_string(&file).unwrap();
    // The access token dies on the server (its clock moves past the minute) while the client
    // still trusts it.
    state.advance_clock(Duration::from_secs(61));
    let results: Vec<_> =
        futures::future::join_all(ids[1..5].iter().map(|id| c.contact_notes(&location, id))).await;
    for r in results {
        r.expect("the call succeeds after the refresh");
    }
    let server = state.stats();
    assert!(
        server.status_count(401) >= 1,
        "the expired token was refused: {server:?}"
    );
    assert_eq!(
        oauth_refreshes(&server),
        2,
        "four calls refused at once, one refresh"
    );
    assert!(c.stats().token_refreshes >= 1);
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(after, before, "the rotated refresh token was saved");
    // The saved token is the live one: a new run starts from it.
    let next_run = oauth_client_at(&url, &file);
    next_run.contact_notes(&location, &ids[6]).await.unwrap();
}

#[tokio::test]
async fn a_token_is_refreshed_five_minutes_before_it_expires() {
    // Tokens last an hour; the client's clock then moves to 299 s before the expiry, inside
    // the five-minute margin (the server's does not: the token still works there).
    let mut cfg = quiet_config(10);
    cfg.access_token_ttl = Duration::from_secs(3_600);
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh_token");
    std::fs::write(&file, sb.issue_refresh_token(&["contacts.readonly"])).unwrap();
    let clock = ghl_etl::api::Clock::default();
    let c = oauth_client_timed(&sb, &file, clock.clone());
    c.contact_notes(&location, &ids[0]).await.unwrap();
    clock.advance(Duration::from_secs(3_600 - 301));
    c.contact_notes(&location, &ids[1]).await.unwrap();
    assert_eq!(
        oauth_refreshes(&sb.stats()),
        1,
        "a token with more than five minutes left is used as is"
    );
    let before = std::fs::read_to_string(&file).unwrap();
    clock.advance(Duration::from_secs(2));
    c.contact_notes(&location, &ids[2]).await.unwrap();
    let server = sb.stats();
    assert_eq!(
        oauth_refreshes(&server),
        2,
        "refreshed before use, 300 s before expiry"
    );
    assert_eq!(
        server.status_count(401),
        0,
        "no request went out with a dying token"
    );
    assert_eq!(
        c.stats().token_refreshes,
        0,
        "no refresh was forced by a 401"
    );
    assert_ne!(std::fs::read_to_string(&file).unwrap(), before);
    sb.shutdown().await;
}
