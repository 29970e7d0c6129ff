//! The sandbox over real HTTP on 127.0.0.1: auth, cursors and their quirks, search rules,
//! writes as GHL does them (duplicate rules, tags, custom fields, bulk actions, write
//! counters), rate limits, faults and OAuth rotation. Expected data comes from the sandbox's
//! `Store` (ground truth), never from the code under test's own answers.

use ghl_etl::sandbox::{
    DuplicateRule, RateLimit, Sandbox, SandboxConfig, TokenSpec, DEFAULT_TOKEN, OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A sandbox plus a client that sends GHL's headers with a chosen token.
pub struct Api {
    pub sb: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

impl Api {
    pub async fn start(cfg: SandboxConfig) -> Api {
        let sb = Sandbox::start(cfg).await.expect("sandbox starts");
        Api {
            sb,
            http: reqwest::Client::new(),
            token: DEFAULT_TOKEN.to_string(),
        }
    }

    pub fn loc(&self, i: usize) -> String {
        self.sb.location_ids()[i].clone()
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.sb.url(), path))
            .bearer_auth(&self.token)
            .header("Version", "2021-07-28")
            .header("Accept", "application/json")
    }

    /// Sends and returns (status, headers, JSON body or Null).
    pub async fn send(
        &self,
        rb: RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let resp = rb.send().await.expect("request completes");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body arrives");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.send(self.req(Method::GET, path)).await;
        (s, v)
    }

    pub async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.send(self.req(method, path).json(&body)).await;
        (s, v)
    }
}

/// Default config with the limiter off, for tests that are not about it.
pub fn unlimited(contacts: usize) -> SandboxConfig {
    SandboxConfig {
        contacts,
        rate_limit: None,
        ..SandboxConfig::default()
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    page["contacts"]
        .as_array()
        .expect("contacts array")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn auth_errors_follow_ghl() {
    let cfg = SandboxConfig {
        locations: 2,
        tokens: vec![
            "reader=contacts.readonly".parse::<TokenSpec>().unwrap(),
            "first-only=contacts.readonly@0"
                .parse::<TokenSpec>()
                .unwrap(),
        ],
        ..unlimited(30)
    };
    let mut api = Api::start(cfg).await;
    let (l0, l1) = (api.loc(0), api.loc(1));

    api.token = "nope".into();
    let (s, body) = api.get(&format!("/contacts/?locationId={l0}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"})
    );
    let (s, _, _) = api
        .send(
            api.http
                .get(format!("{}/contacts/?locationId={l0}", api.sb.url()))
                .header("Version", "2021-07-28"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "no Authorization header");

    api.token = DEFAULT_TOKEN.into();
    let no_version = api
        .http
        .get(format!("{}/contacts/?locationId={l0}", api.sb.url()))
        .bearer_auth(DEFAULT_TOKEN);
    let (s, _, body) = api.send(no_version).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["statusCode"], 400);
    let old_version = api
        .http
        .get(format!("{}/contacts/?locationId={l0}", api.sb.url()))
        .bearer_auth(DEFAULT_TOKEN)
        .header("Version", "2021-04-15");
    assert_eq!(api.send(old_version).await.0, StatusCode::BAD_REQUEST);

    api.token = "reader".into();
    assert_eq!(
        api.get(&format!("/contacts/?locationId={l0}")).await.0,
        StatusCode::OK
    );
    let (s, body) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": l0, "firstName": "A"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "The token is not authorized for this scope."
    );
    let (s, _) = api.get(&format!("/locations/{l0}/customFields")).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "customFields needs its own scope"
    );

    api.token = "first-only".into();
    assert_eq!(
        api.get(&format!("/contacts/?locationId={l0}")).await.0,
        StatusCode::OK
    );
    let (s, body) = api.get(&format!("/contacts/?locationId={l1}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "The token does not have access to this location"
    );
    let other_contact = api.sb.store().contact_ids(&l1)[0].clone();
    let (s, _) = api.get(&format!("/contacts/{other_contact}/notes")).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a contact's location counts as the request's"
    );

    api.token = DEFAULT_TOKEN.into();
    let (s, body) = api.get("/contacts/nope/deeper/path").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("GET /contacts/nope/deeper/path"),
        "{body}"
    );
    let (s, body) = api.call(Method::PATCH, "/contacts/search", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PATCH /contacts/search"),
        "{body}"
    );
    api.sb.shutdown().await;
}

#[tokio::test]
async fn cursor_walk_returns_every_contact_once_in_store_order() {
    let api = Api::start(unlimited(2_500)).await;
    let loc = api.loc(0);
    let expected = api.sb.store().contact_ids(&loc);
    assert_eq!(expected.len(), 2_500);
    // The data must make the walk hard: many contacts share one dateAdded millisecond.
    let mut per_ms: HashMap<String, usize> = HashMap::new();
    for id in &expected {
        let c = api.sb.store().contact(id).unwrap();
        *per_ms
            .entry(c["dateAdded"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        per_ms.values().any(|&n| n >= 100),
        "expected an import burst of 100+ contacts in one ms"
    );

    let mut seen = Vec::new();
    let mut path = format!("/contacts/?locationId={loc}&limit=100");
    let mut pages = 0;
    loop {
        let (s, page) = api.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(ids_of(&page));
        let meta = &page["meta"];
        assert_eq!(meta["total"], 2_500);
        assert_eq!(meta["currentPage"], pages);
        match meta["nextPageUrl"].as_str() {
            Some(next) => {
                let last = seen.last().unwrap();
                assert_eq!(meta["startAfterId"], json!(last));
                assert!(next.starts_with(&api.sb.url()), "{next}");
                path = format!(
                    "/contacts/?locationId={loc}&limit=100&startAfter={}&startAfterId={}",
                    meta["startAfter"], last
                );
            }
            None => break,
        }
        assert!(pages <= 26, "the walk does not end");
    }
    assert_eq!(pages, 25);
    assert_eq!(seen, expected);

    // Following nextPageUrl verbatim walks the same way.
    let mut via_url = Vec::new();
    let mut url = format!("{}/contacts/?locationId={loc}&limit=100", api.sb.url());
    loop {
        let (_, _, page) = api
            .send(
                api.http
                    .get(&url)
                    .bearer_auth(DEFAULT_TOKEN)
                    .header("Version", "2021-07-28"),
            )
            .await;
        via_url.extend(ids_of(&page));
        match page["meta"]["nextPageUrl"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(via_url, expected);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn start_after_without_start_after_id_answers_the_first_page_again() {
    let api = Api::start(unlimited(300)).await;
    let loc = api.loc(0);
    let (_, first) = api
        .get(&format!("/contacts/?locationId={loc}&limit=50"))
        .await;
    let start_after = first["meta"]["startAfter"].clone();
    assert!(start_after.is_number());
    let (s, again) = api
        .get(&format!(
            "/contacts/?locationId={loc}&limit=50&startAfter={start_after}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids_of(&again), ids_of(&first));
    let (_, second) = api
        .get(&format!(
            "/contacts/?locationId={loc}&limit=50&startAfter={start_after}&startAfterId={}",
            first["meta"]["startAfterId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        ids_of(&second),
        api.sb.store().contact_ids(&loc)[50..100].to_vec()
    );
    let (s, _) = api
        .get(&format!("/contacts/?locationId={loc}&limit=101"))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn search_refuses_what_ghl_refuses() {
    let api = Api::start(unlimited(100)).await;
    let loc = api.loc(0);
    let cases = [
        (json!({"pageLimit": 10}), "locationId"),
        (json!({"locationId": loc}), "pageLimit"),
        (json!({"locationId": loc, "pageLimit": 501}), "500"),
        (
            json!({"locationId": loc, "pageLimit": 10, "page": 1, "searchAfter": [1, "x"]}),
            "together",
        ),
        (
            json!({"locationId": loc, "pageLimit": 10, "limit": 5}),
            "property limit should not exist",
        ),
        (
            json!({"locationId": loc, "pageLimit": 500, "page": 21}),
            "10000",
        ),
        (
            json!({"locationId": loc, "pageLimit": 10, "filters": [{"field": "email", "operator": "like", "value": "x"}]}),
            "operator",
        ),
    ];
    for (body, needle) in cases {
        let (s, answer) = api
            .call(Method::POST, "/contacts/search", body.clone())
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer["statusCode"], 422);
        assert_eq!(answer["error"], "Unprocessable Entity");
        let msgs = answer["message"].as_array().expect("message is a list");
        assert!(
            msgs.iter().any(|m| m.as_str().unwrap().contains(needle)),
            "{body} -> {answer} lacks {needle}"
        );
    }
    let (s, ok) = api
        .call(
            Method::POST,
            "/contacts/search",
            json!({"locationId": loc, "pageLimit": 500, "page": 20}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "page 20 x 500 is exactly the window");
    assert_eq!(ok["total"], 100);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn search_after_walks_past_ten_thousand() {
    let api = Api::start(unlimited(12_000)).await;
    let loc = api.loc(0);
    let expected = api.sb.store().contact_ids(&loc);
    let mut seen = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({"locationId": loc, "pageLimit": 500});
        if let Some(a) = &after {
            body["searchAfter"] = a.clone();
        }
        let (s, page) = api.call(Method::POST, "/contacts/search", body).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 12_000);
        let contacts = page["contacts"].as_array().unwrap();
        if contacts.is_empty() {
            break;
        }
        seen.extend(ids_of(&page));
        let last = contacts.last().unwrap();
        assert_eq!(last["searchAfter"][1], last["id"]);
        after = Some(last["searchAfter"].clone());
        assert!(seen.len() <= 12_000, "the walk repeats contacts");
    }
    assert_eq!(seen, expected);
    let (s, _) = api
        .call(
            Method::POST,
            "/contacts/search",
            json!({"locationId": loc, "pageLimit": 500, "page": 21}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // A filtered, re-sorted search walks the same way and agrees with the store.
    let filter = json!([{"field": "tags", "operator": "contains", "value": "VIP"}]);
    let want: HashSet<String> = expected
        .iter()
        .filter(|id| {
            let c = api.sb.store().contact(id).unwrap();
            c["tags"].as_array().unwrap().iter().any(|t| t == "vip")
        })
        .cloned()
        .collect();
    let mut got = Vec::new();
    let mut after: Option<Value> = None;
    let mut last_updated = String::from("9999");
    loop {
        let mut body = json!({"locationId": loc, "pageLimit": 100, "filters": filter,
            "sort": [{"field": "dateUpdated", "direction": "desc"}]});
        if let Some(a) = &after {
            body["searchAfter"] = a.clone();
        }
        let (s, page) = api.call(Method::POST, "/contacts/search", body).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["total"], want.len());
        let contacts = page["contacts"].as_array().unwrap().clone();
        if contacts.is_empty() {
            break;
        }
        for c in &contacts {
            let u = c["dateUpdated"].as_str().unwrap().to_string();
            assert!(u <= last_updated, "not sorted by dateUpdated desc");
            last_updated = u;
            got.push(c["id"].as_str().unwrap().to_string());
        }
        after = Some(contacts.last().unwrap()["searchAfter"].clone());
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn writes_are_visible_to_reads() {
    let api = Api::start(SandboxConfig {
        record_requests: true,
        ..unlimited(40)
    })
    .await;
    let loc = api.loc(0);

    let (s, created) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": loc, "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada@example.com", "tags": ["math"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["contact"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    let (s, got) = api.get(&format!("/contacts/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["contact"]["firstName"], "Ada");
    assert_eq!(api.sb.store().contact_ids(&loc).last(), Some(&id));

    let (s, bad) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": loc, "nickname": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad["message"],
        json!(["property nickname should not exist"])
    );

    let (s, upd) = api
        .call(
            Method::PUT,
            &format!("/contacts/{id}"),
            json!({"lastName": "King", "tags": ["x"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{upd}");
    assert_eq!(upd["succeded"], true);
    let now = api.sb.store().contact(&id).unwrap();
    assert_eq!(now["lastName"], "King");
    assert_eq!(now["tags"], json!(["x"]), "tags in an update replace");

    let (s, up) = api
        .call(
            Method::POST,
            "/contacts/upsert",
            json!({"locationId": loc, "email": "ADA@example.com", "city": "London"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(up["new"], false);
    assert_eq!(up["contact"]["id"], json!(id));
    assert_eq!(api.sb.store().contact(&id).unwrap()["city"], "London");
    let (s, up) = api
        .call(
            Method::POST,
            "/contacts/upsert",
            json!({"locationId": loc, "email": "grace@example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(up["new"], true);

    let (s, tags) = api
        .call(
            Method::POST,
            &format!("/contacts/{id}/tags"),
            json!({"tags": ["y", "x"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(tags["tags"], json!(["x", "y"]));
    let (s, tags) = api
        .call(
            Method::DELETE,
            &format!("/contacts/{id}/tags"),
            json!({"tags": ["x"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tags["tags"], json!(["y"]));

    let (s, task) = api
        .call(
            Method::POST,
            &format!("/contacts/{id}/tasks"),
            json!({"title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{task}");
    let task_id = task["task"]["id"].as_str().unwrap().to_string();
    let (s, done) = api
        .call(
            Method::PUT,
            &format!("/contacts/{id}/tasks/{task_id}/completed"),
            json!({"completed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(done["task"]["completed"], true);
    assert_eq!(api.sb.store().tasks(&id).len(), 1);
    let (s, _) = api
        .call(
            Method::POST,
            &format!("/contacts/{id}/tasks"),
            json!({"title": "No due date"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, note) = api
        .call(
            Method::POST,
            &format!("/contacts/{id}/notes"),
            json!({"body": "line 1\nline 2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, notes) = api.get(&format!("/contacts/{id}/notes")).await;
    assert_eq!(notes["notes"][0]["id"], note["note"]["id"]);

    let (s, bulk) = api
        .call(
            Method::POST,
            "/contacts/bulk/tags/update/add",
            json!({"locationId": loc, "tags": ["bulk"], "contacts": [id, "notAnId"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(bulk["errorCount"], 1);
    assert_eq!(bulk["responses"][0]["type"], "success");
    assert!(api.sb.store().contact(&id).unwrap()["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("bulk")));

    let (s, del) = api
        .call(Method::DELETE, &format!("/contacts/{id}"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(del["succeded"], true);
    // GHL answers an id that no longer exists with a 400, not a 404.
    let gone = json!({"statusCode": 400, "message": "Contact not found"});
    for path in [
        format!("/contacts/{id}"),
        format!("/contacts/{id}/tasks"),
        format!("/contacts/{id}/notes"),
        format!("/contacts/{id}/appointments"),
    ] {
        assert_eq!(
            api.get(&path).await,
            (StatusCode::BAD_REQUEST, gone.clone()),
            "{path}"
        );
    }
    assert_eq!(
        api.call(Method::DELETE, &format!("/contacts/{id}"), json!({}))
            .await,
        (StatusCode::BAD_REQUEST, gone.clone()),
        "deleting twice"
    );
    assert!(!api.sb.store().contact_ids(&loc).contains(&id));

    // A contact deleted behind the client's back (store API) is a 400 too, and so is an id
    // that never existed.
    let victim = api.sb.store().contact_ids(&loc)[0].clone();
    assert!(api.sb.store().delete_contact(&victim));
    for path in [
        format!("/contacts/{victim}/tasks"),
        "/contacts/neverExisted/notes".to_string(),
    ] {
        assert_eq!(
            api.get(&path).await,
            (StatusCode::BAD_REQUEST, gone.clone()),
            "{path}"
        );
    }

    let recorded = api.sb.recorded_requests();
    assert!(recorded.iter().any(|r| r.method == "POST"
        && r.route == "/contacts/{contactId}/notes"
        && r.body == Some(json!({"body": "line 1\nline 2"}))));
    api.sb.shutdown().await;
}

#[tokio::test]
async fn over_the_burst_limit_answers_429_with_headers() {
    let cfg = SandboxConfig {
        rate_limit: Some(RateLimit {
            max: 5,
            interval: Duration::from_secs(600),
        }),
        daily_limit: 1000,
        ..SandboxConfig::default()
    };
    let api = Api::start(cfg).await;
    let loc = api.loc(0);
    let path = format!("/contacts/?locationId={loc}&limit=1");
    for i in 0..5u32 {
        let (s, h, _) = api.send(api.req(Method::GET, &path)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-ratelimit-max"], "5");
        assert_eq!(h["x-ratelimit-remaining"], (4 - i).to_string().as_str());
        assert_eq!(h["x-ratelimit-interval-milliseconds"], "600000");
        assert_eq!(h["x-ratelimit-limit-daily"], "1000");
        assert_eq!(
            h["x-ratelimit-daily-remaining"],
            (999 - i).to_string().as_str()
        );
    }
    let (s, h, body) = api.send(api.req(Method::GET, &path)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["statusCode"], 429);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // Another location of the same token... is another bucket; the refused request was not counted.
    let stats = api.sb.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.by_route["GET /contacts/"][&429], 1);
    assert_eq!(stats.by_location[&loc], 6);
    api.sb.set_rate_limit(None);
    assert_eq!(
        api.send(api.req(Method::GET, &path)).await.0,
        StatusCode::OK
    );
    api.sb.shutdown().await;
}

#[tokio::test]
async fn an_exhausted_daily_budget_says_so() {
    let api = Api::start(SandboxConfig {
        daily_limit: 2,
        ..unlimited(10)
    })
    .await;
    let path = format!("/contacts/?locationId={}", api.loc(0));
    assert_eq!(api.get(&path).await.0, StatusCode::OK);
    assert_eq!(api.get(&path).await.0, StatusCode::OK);
    let (s, h, body) = api.send(api.req(Method::GET, &path)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["message"].as_str().unwrap().contains("Daily"),
        "{body}"
    );
    assert_eq!(h["x-ratelimit-daily-remaining"], "0");
    assert_eq!(api.sb.stats().daily_limited, 1);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn injected_faults_are_counted_and_lost_answers_still_write() {
    let api = Api::start(SandboxConfig {
        fault_rate: 1.0,
        ..unlimited(20)
    })
    .await;
    let loc = api.loc(0);
    let contact = api.sb.store().contact_ids(&loc)[3].clone();
    let notes_before = api.sb.store().notes(&contact).len();
    let mut outcomes: HashMap<&str, u32> = HashMap::new();
    for i in 0..60 {
        let rb = api
            .req(Method::POST, &format!("/contacts/{contact}/notes"))
            .json(&json!({"body": format!("n{i}")}));
        let kind = match rb.send().await {
            Err(_) => "transport",
            Ok(resp) => {
                let status = resp.status();
                let html = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|c| c.to_str().unwrap().contains("html"));
                match resp.bytes().await {
                    Err(_) => "transport",
                    Ok(b) if status.is_success() => {
                        assert!(
                            serde_json::from_slice::<Value>(&b).is_err(),
                            "a faulted 200 must not parse"
                        );
                        "truncated"
                    }
                    Ok(_) if html => "html",
                    Ok(_) => {
                        assert!(
                            status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                            "{status}"
                        );
                        "status"
                    }
                }
            }
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    let stats = api.sb.stats();
    assert_eq!(stats.faults_total(), 60);
    assert!(outcomes.len() >= 3, "{outcomes:?}");
    // Truncated, dropped and applied-then-5xx answers come after the write; status faults
    // before it. The write counter sees exactly the notes that were made.
    let after_write: u64 = ["truncated", "dropped", "applied_500", "applied_502"]
        .iter()
        .map(|k| stats.faults.get(*k).copied().unwrap_or(0))
        .sum();
    assert!(stats.faults.contains_key("applied_500") || stats.faults.contains_key("applied_502"));
    assert_eq!(
        api.sb.store().notes(&contact).len() as u64,
        notes_before as u64 + after_write
    );
    assert_eq!(stats.written("note_create"), after_write);
    assert!(
        stats.by_route["POST /contacts/{contactId}/notes"]
            .values()
            .sum::<u64>()
            == 60
    );

    // Admin routes are exempt, and the fault rate can be turned off through them.
    let admin = reqwest::Client::new();
    let resp = admin
        .post(format!("{}/_sandbox/faults", api.sb.url()))
        .json(&json!({"fault_rate": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        api.get(&format!("/contacts/{contact}")).await.0,
        StatusCode::OK
    );
    let remote: ghl_etl::sandbox::Stats = admin
        .get(format!("{}/_sandbox/stats", api.sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(remote.requests, 61);
    let locs: Vec<String> = admin
        .get(format!("{}/_sandbox/locations", api.sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(locs, vec![loc]);
    // A hostile answer armed through the admin route spoils the next answer, then none.
    let faults = |body: serde_json::Value| {
        admin
            .post(format!("{}/_sandbox/faults", api.sb.url()))
            .json(&body)
            .send()
    };
    let resp = faults(json!({"hostile": "html-200", "hostile_answers": 1}))
        .await
        .unwrap();
    let armed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        armed["hostile"],
        json!({"mode": "html_200", "answers_left": 1})
    );
    let page = admin
        .get(format!("{}/contacts/{contact}", api.sb.url()))
        .bearer_auth(ghl_etl::sandbox::DEFAULT_TOKEN)
        .header("Version", ghl_etl::api::API_VERSION)
        .send()
        .await
        .unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        api.get(&format!("/contacts/{contact}")).await.0,
        StatusCode::OK
    );
    let bad = faults(json!({"hostile": "sometimes"})).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("unknown hostile mode `sometimes`"));
    admin
        .post(format!("{}/_sandbox/stats/reset", api.sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(api.sb.stats().requests, 0);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn oauth_refresh_rotates_and_old_refresh_tokens_are_refused() {
    let mut api = Api::start(unlimited(10)).await;
    let loc = api.loc(0);
    let token_url = format!("{}/oauth/token", api.sb.url());
    let first = api.sb.issue_refresh_token(&["contacts.readonly"]);
    let form = |rt: &str| {
        vec![
            ("client_id", OAUTH_CLIENT_ID.to_string()),
            ("client_secret", OAUTH_CLIENT_SECRET.to_string()),
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.to_string()),
        ]
    };
    let resp = api
        .http
        .post(&token_url)
        .form(&form(&first))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let grant: Value = resp.json().await.unwrap();
    assert_eq!(grant["token_type"], "Bearer");
    assert_eq!(grant["expires_in"], 86_399);
    assert_eq!(grant["scope"], "contacts.readonly");
    assert_eq!(grant["locationId"], json!(loc));
    let second = grant["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);

    api.token = grant["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        api.get(&format!("/contacts/?locationId={loc}")).await.0,
        StatusCode::OK
    );
    let (s, _) = api
        .call(Method::POST, "/contacts/", json!({"locationId": loc}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the token has only the scopes it was granted"
    );

    let reuse = api
        .http
        .post(&token_url)
        .form(&form(&first))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
    let next = api
        .http
        .post(&token_url)
        .form(&form(&second))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), StatusCode::OK);

    let mut bad = form(&second);
    bad[1].1 = "wrong".into();
    assert_eq!(
        api.http
            .post(&token_url)
            .form(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    api.sb.shutdown().await;
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let api = Api::start(SandboxConfig {
        access_token_ttl: Duration::ZERO,
        ..unlimited(5)
    })
    .await;
    let rt = api.sb.issue_refresh_token(&["contacts.readonly"]);
    let grant: Value = api
        .http
        .post(format!("{}/oauth/token", api.sb.url()))
        .form(&[
            ("client_id", OAUTH_CLIENT_ID),
            ("client_secret", OAUTH_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(grant["expires_in"], 0);
    let resp = api
        .http
        .get(format!(
            "{}/contacts/?locationId={}",
            api.sb.url(),
            api.loc(0)
        ))
        .bearer_auth(grant["access_token"].as_str().unwrap())
        .header("Version", "2021-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn related_records_match_the_store() {
    let api = Api::start(unlimited(300)).await;
    let loc = api.loc(0);
    let ids = api.sb.store().contact_ids(&loc);
    let busy = ids
        .iter()
        .find(|id| api.sb.store().tasks(id).len() >= 3)
        .expect("some contact has 3+ tasks")
        .clone();
    let (s, tasks) = api.get(&format!("/contacts/{busy}/tasks")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tasks["tasks"], json!(api.sb.store().tasks(&busy)));
    let task_id = tasks["tasks"][1]["id"].as_str().unwrap();
    let (s, one) = api.get(&format!("/contacts/{busy}/tasks/{task_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["task"], tasks["tasks"][1]);

    let (s, found) = api
        .call(
            Method::POST,
            &format!("/locations/{loc}/tasks/search"),
            json!({"contactId": [busy], "limit": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(found["tasks"][0]["contactId"], json!(busy));
    let (s, page2) = api
        .call(
            Method::POST,
            &format!("/locations/{loc}/tasks/search"),
            json!({"contactId": [busy], "limit": 2, "skip": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page2["tasks"][0], found["tasks"][1]);

    let with_events = ids
        .iter()
        .find(|id| !api.sb.store().appointments(id).is_empty())
        .expect("some appointments")
        .clone();
    let (_, events) = api
        .get(&format!("/contacts/{with_events}/appointments"))
        .await;
    assert_eq!(
        events["events"],
        json!(api.sb.store().appointments(&with_events))
    );

    let (_, fields) = api.get(&format!("/locations/{loc}/customFields")).await;
    assert_eq!(
        fields["customFields"],
        json!(api.sb.store().custom_fields(&loc))
    );
    let names: Vec<&str> = fields["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Lead Score")
            && names.contains(&"Favourite Colour")
            && names.contains(&"Signup Date")
    );

    let (_, biz) = api.get(&format!("/businesses/?locationId={loc}")).await;
    let biz_ids: Vec<String> = biz["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(biz_ids, api.sb.store().business_ids(&loc));
    let members: Vec<&String> = ids
        .iter()
        .filter(|id| api.sb.store().contact(id).unwrap()["businessId"] == json!(biz_ids[0]))
        .collect();
    let (s, by_biz) = api
        .get(&format!(
            "/contacts/business/{}?locationId={loc}&limit=1000",
            biz_ids[0]
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_biz["count"], members.len());
    assert_eq!(ids_of(&by_biz).iter().collect::<Vec<_>>(), members);
    api.sb.shutdown().await;
}

/// The contact a write answered with.
fn contact_id(answer: &Value) -> String {
    answer["contact"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no contact in {answer}"))
        .to_string()
}

/// The id of a location's custom field by its key, from the store.
fn field_id(api: &Api, loc: &str, key: &str) -> String {
    api.sb
        .store()
        .custom_fields(loc)
        .iter()
        .find(|f| f["fieldKey"] == key)
        .and_then(|f| f["id"].as_str())
        .unwrap_or_else(|| panic!("no field {key}"))
        .to_string()
}

#[tokio::test]
async fn upsert_follows_the_duplicate_rule_and_replaces_tags() {
    let api = Api::start(unlimited(50)).await;
    let loc = api.loc(0);
    let post = |body: Value| api.call(Method::POST, "/contacts/", body);
    let (_, a) =
        post(json!({"locationId": loc, "email": "ann@example.com", "tags": ["Old", "KEEP"]})).await;
    let (_, b) = post(json!({"locationId": loc, "phone": "+1 888-555-0101"})).await;
    let (a, b) = (contact_id(&a), contact_id(&b));
    assert_eq!(
        api.sb.store().contact(&a).unwrap()["tags"],
        json!(["old", "keep"])
    );

    // A create that would duplicate is refused, naming the contact and the field.
    for (body, field, who) in [
        (
            json!({"locationId": loc, "email": "Ann@Example.com"}),
            "email",
            &a,
        ),
        (
            json!({"locationId": loc, "phone": "8885550101"}),
            "phone",
            &b,
        ),
    ] {
        let (s, err) = post(body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(
            err["message"],
            "This location does not allow duplicated contacts."
        );
        assert_eq!(err["meta"]["contactId"], json!(who));
        assert_eq!(err["meta"]["matchingField"], field);
    }

    // E-mail first: Ann is updated; the phone belongs to someone else and is left out.
    let both = json!({"locationId": loc, "email": "ANN@example.com", "phone": "(888) 555-0101",
        "tags": ["New"], "gender": "female"});
    let (s, up) = api
        .call(Method::POST, "/contacts/upsert", both.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    assert_eq!(
        (up["new"].clone(), contact_id(&up)),
        (json!(false), a.clone())
    );
    let ann = api.sb.store().contact(&a).unwrap();
    assert_eq!(ann["tags"], json!(["new"]), "tags in an upsert replace");
    assert!(ann.get("phone").is_none_or(Value::is_null), "{ann}");
    assert!(
        ann.get("gender").is_none(),
        "gender is ignored on an existing contact"
    );

    // Phone first: the same body updates the other contact, without taking Ann's e-mail.
    assert!(api
        .sb
        .set_duplicate_rule(&loc, DuplicateRule::PhoneThenEmail));
    let (_, up) = api.call(Method::POST, "/contacts/upsert", both).await;
    assert_eq!(contact_id(&up), b);
    let bob = api.sb.store().contact(&b).unwrap();
    assert!(bob.get("email").is_none_or(Value::is_null), "{bob}");
    assert_eq!(bob["tags"], json!(["new"]));

    // Neither e-mail nor phone: a new contact every time.
    let nameless = json!({"locationId": loc, "firstName": "Nobody"});
    let (_, n1) = api
        .call(Method::POST, "/contacts/upsert", nameless.clone())
        .await;
    let (_, n2) = api.call(Method::POST, "/contacts/upsert", nameless).await;
    assert_eq!(
        (n1["new"].clone(), n2["new"].clone()),
        (json!(true), json!(true))
    );
    assert_ne!(contact_id(&n1), contact_id(&n2));

    // Custom fields by key (with or without the model prefix) and by id, read back as {id, value}.
    let (lead, nick) = (
        field_id(&api, &loc, "contact.lead_score"),
        field_id(&api, &loc, "contact.nickname"),
    );
    let body = json!({"locationId": loc, "email": "ann@example.com", "customFields": [
        {"key": "contact.lead_score", "field_value": 42}, {"id": nick, "field_value": "Annie"}]});
    let (s, _) = api.call(Method::POST, "/contacts/upsert", body).await;
    assert_eq!(s, StatusCode::OK);
    let (_, got) = api.get(&format!("/contacts/{a}")).await;
    let cf = got["contact"]["customFields"].as_array().unwrap();
    assert!(cf.contains(&json!({"id": lead, "value": 42})), "{cf:?}");
    assert!(
        cf.contains(&json!({"id": nick, "value": "Annie"})),
        "{cf:?}"
    );

    // A field the location lacks: 422 naming it; upsert and update write nothing...
    let unknown = json!([{"key": "shoe_size", "field_value": 44}]);
    let (s, err) = api
        .call(Method::POST, "/contacts/upsert",
            json!({"locationId": loc, "email": "ann@example.com", "city": "Rome", "customFields": unknown}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["message"][0].as_str().unwrap().contains("shoe_size"),
        "{err}"
    );
    let (s, _) = api
        .call(
            Method::PUT,
            &format!("/contacts/{a}"),
            json!({"city": "Rome", "customFields": unknown}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(api.sb.store().contact(&a).unwrap().get("city").is_none());
    // ...but a create makes the contact all the same, as GHL has been seen to.
    let before = api.sb.store().contact_ids(&loc).len();
    let (s, _) =
        post(json!({"locationId": loc, "email": "half@example.com", "customFields": unknown}))
            .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.sb.store().contact_ids(&loc).len(), before + 1);

    let stats = api.sb.stats();
    assert_eq!(stats.written("contact_create"), 3);
    assert_eq!(stats.written("contact_upsert"), 5);
    assert_eq!(stats.written("contact_update"), 0);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn created_custom_fields_are_listed_and_writable() {
    let mut api = Api::start(SandboxConfig {
        tokens: vec![
            "cf-reader=locations/customFields.readonly"
                .parse::<TokenSpec>()
                .unwrap(),
            "cf-writer=locations/customFields.write"
                .parse::<TokenSpec>()
                .unwrap(),
        ],
        ..unlimited(20)
    })
    .await;
    let loc = api.loc(0);
    let path = format!("/locations/{loc}/customFields");
    let (s, made) = api
        .call(
            Method::POST,
            &path,
            json!({"name": "Shoe Size (EU)", "dataType": "NUMERICAL"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let field = &made["customField"];
    assert_eq!(field["fieldKey"], "contact.shoe_size_eu");
    assert_eq!(field["model"], "contact");
    assert_eq!(field["locationId"], json!(loc));
    let id = field["id"].as_str().unwrap().to_string();
    let (_, listed) = api.get(&path).await;
    assert!(listed["customFields"].as_array().unwrap().contains(field));
    assert!(api.sb.store().custom_fields(&loc).contains(field));

    let (_, c) = api
        .call(
            Method::POST,
            "/contacts/upsert",
            json!({"locationId": loc, "email": "s@example.com",
            "customFields": [{"key": "shoe_size_eu", "field_value": 44}]}),
        )
        .await;
    assert_eq!(
        c["contact"]["customFields"],
        json!([{"id": id, "value": 44}])
    );

    let (s, picked) = api
        .call(
            Method::POST,
            &path,
            json!({"name": "Tier", "dataType": "SINGLE_OPTIONS",
            "fieldKey": "membership_tier", "options": ["Gold", "Silver"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(picked["customField"]["fieldKey"], "contact.membership_tier");
    assert_eq!(
        picked["customField"]["picklistOptions"],
        json!(["Gold", "Silver"])
    );
    let (s, deal) = api
        .call(
            Method::POST,
            &path,
            json!({"name": "Deal Size", "dataType": "MONETORY", "model": "opportunity"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, contact_fields) = api.get(&path).await;
    assert!(!contact_fields["customFields"]
        .as_array()
        .unwrap()
        .contains(&deal["customField"]));
    let (_, all) = api.get(&format!("{path}?model=all")).await;
    assert!(all["customFields"]
        .as_array()
        .unwrap()
        .contains(&deal["customField"]));
    let (s, _) = api
        .call(
            Method::POST,
            "/contacts/upsert",
            json!({"locationId": loc, "email": "s@example.com",
            "customFields": [{"key": "opportunity.deal_size", "field_value": 1}]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "opportunity fields are not contact fields"
    );

    for (body, status, needle) in [
        (
            json!({"name": "shoe size (eu)", "dataType": "TEXT"}),
            400,
            "already exists",
        ),
        (
            json!({"name": "Lead Score", "dataType": "TEXT"}),
            400,
            "contact.lead_score",
        ),
        (json!({"name": "X", "dataType": "BLOB"}), 422, "dataType"),
        (json!({"dataType": "TEXT"}), 422, "name should not be empty"),
        (
            json!({"name": "X", "dataType": "TEXT", "colour": 1}),
            422,
            "property colour",
        ),
    ] {
        let (s, err) = api.call(Method::POST, &path, body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body} -> {err}");
        assert!(
            err["message"].to_string().contains(needle),
            "{body} -> {err}"
        );
    }

    api.token = "cf-reader".into();
    assert_eq!(api.get(&path).await.0, StatusCode::OK);
    let make = json!({"name": "Y", "dataType": "TEXT"});
    assert_eq!(
        api.call(Method::POST, &path, make.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    api.token = "cf-writer".into();
    assert_eq!(
        api.call(Method::POST, &path, make).await.0,
        StatusCode::CREATED
    );
    assert_eq!(api.sb.stats().written("custom_field_create"), 4);
    api.sb.shutdown().await;
}

#[tokio::test]
async fn applied_faults_make_naive_retries_duplicate_and_writes_are_counted_once() {
    let api = Api::start(SandboxConfig {
        fault_rate: 1.0,
        ..unlimited(10)
    })
    .await;
    let contact = api.sb.store().contact_ids(&api.loc(0))[2].clone();
    let before = api.sb.store().tasks(&contact).len();
    let task = |i: u32| json!({"title": format!("t{i}"), "dueDate": "2030-01-01T00:00:00Z", "completed": false});
    let mut lost_but_written = 0;
    for i in 0..60 {
        let rb = api
            .req(Method::POST, &format!("/contacts/{contact}/tasks"))
            .json(&task(i));
        let Ok(resp) = rb.send().await else { continue };
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let made = api
            .sb
            .store()
            .tasks(&contact)
            .iter()
            .any(|t| t["title"] == format!("t{i}"));
        if status.is_server_error() && body["statusCode"].is_number() && made {
            lost_but_written += 1;
        }
    }
    assert!(lost_but_written > 0, "no 5xx answered a task that was made");
    let stats = api.sb.stats();
    let created = (api.sb.store().tasks(&contact).len() - before) as u64;
    let applied = stats.faults.get("applied_500").copied().unwrap_or(0)
        + stats.faults.get("applied_502").copied().unwrap_or(0);
    assert_eq!(lost_but_written, applied);
    assert_eq!(stats.written("task_create"), created);
    assert_eq!(
        stats.by_route["POST /contacts/{contactId}/tasks"]
            .values()
            .sum::<u64>(),
        60
    );

    // Reads and repeatable writes never get a fault after the handler's write.
    api.sb.reset_stats();
    for _ in 0..40 {
        let _ = api
            .req(Method::GET, &format!("/contacts/{contact}/tasks"))
            .send()
            .await;
        let tags = api
            .req(Method::POST, &format!("/contacts/{contact}/tags"))
            .json(&json!({"tags": ["x"]}));
        let _ = tags.send().await;
    }
    let stats = api.sb.stats();
    assert_eq!(stats.faults_total(), 80);
    assert!(
        !stats.faults.keys().any(|k| k.starts_with("applied")),
        "{:?}",
        stats.faults
    );
    api.sb.shutdown().await;
}

#[tokio::test]
async fn bulk_tags_have_a_batch_limit_and_answer_per_contact() {
    let api = Api::start(SandboxConfig {
        locations: 2,
        ..unlimited(150)
    })
    .await;
    let (loc, other) = (api.loc(0), api.loc(1));
    let ids = api.sb.store().contact_ids(&loc);
    let bulk = |kind: &'static str, body: Value| {
        let api = &api;
        async move {
            let path = format!("/contacts/bulk/tags/update/{kind}");
            api.call(Method::POST, &path, body).await
        }
    };
    let (s, err) = bulk(
        "add",
        json!({"locationId": loc, "tags": ["a"], "contacts": ids[..101]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        json!(["contacts must contain no more than 100 elements"])
    );
    let (s, ok) = bulk(
        "add",
        json!({"locationId": loc, "tags": ["a"], "contacts": ids[..100]}),
    )
    .await;
    assert_eq!(
        (s, ok["errorCount"].clone()),
        (StatusCode::CREATED, json!(0))
    );
    assert_eq!(api.sb.stats().written("bulk_tags_add"), 100);
    api.sb.set_bulk_limit(3);
    let (s, _) = bulk(
        "add",
        json!({"locationId": loc, "tags": ["a"], "contacts": ids[..4]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let gone = ids[1].clone();
    assert!(api.sb.store().delete_contact(&gone));
    let foreign = api.sb.store().contact_ids(&other)[0].clone();
    let (s, answer) = bulk(
        "add",
        json!({"locationId": loc, "tags": ["VIP", " Hot Lead "],
        "contacts": [ids[0], foreign, "abcdef"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (answer["succeded"].clone(), answer["errorCount"].clone()),
        (json!(false), json!(2))
    );
    let r = &answer["responses"];
    assert_eq!(r[0]["type"], "success");
    assert!(r[0]["tagsAdded"]
        .as_array()
        .unwrap()
        .contains(&json!("hot lead")));
    assert_eq!(r[1]["message"], "contact does not belong to location");
    assert_eq!(r[2]["message"], "contact id is not a valid firebase id");
    let (_, answer) = bulk(
        "add",
        json!({"locationId": loc, "tags": ["x"], "contacts": [gone]}),
    )
    .await;
    assert_eq!(answer["responses"][0]["message"], "contact is deleted");
    let tags = |id: &str| api.sb.store().contact(id).unwrap()["tags"].clone();
    assert!(tags(&ids[0]).as_array().unwrap().contains(&json!("vip")));

    let (_, answer) = bulk(
        "remove",
        json!({"locationId": loc, "tags": ["HOT LEAD"], "contacts": [ids[0]]}),
    )
    .await;
    assert_eq!(answer["responses"][0]["tagsRemoved"], json!(["hot lead"]));
    let (_, _) = bulk(
        "remove",
        json!({"locationId": loc, "tags": [], "removeAllTags": true, "contacts": [ids[0]]}),
    )
    .await;
    assert_eq!(tags(&ids[0]), json!([]));

    // Every way in stores tags lower-cased and compares them case-insensitively.
    let (_, added) = api
        .call(
            Method::POST,
            &format!("/contacts/{}/tags", ids[0]),
            json!({"tags": ["MiXed", "mixed"]}),
        )
        .await;
    assert_eq!(added["tags"], json!(["mixed"]));
    let (_, left) = api
        .call(
            Method::DELETE,
            &format!("/contacts/{}/tags", ids[0]),
            json!({"tags": ["MIXED"]}),
        )
        .await;
    assert_eq!(left["tags"], json!([]));
    let (_, made) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": loc, "tags": ["Ünïcode", "A"]}),
        )
        .await;
    assert_eq!(made["contact"]["tags"], json!(["ünïcode", "a"]));
    let stats = api.sb.stats();
    assert_eq!(stats.written("bulk_tags_add"), 101);
    assert_eq!(stats.written("bulk_tags_remove"), 2);
    assert_eq!(
        (stats.written("tags_add"), stats.written("tags_remove")),
        (1, 1)
    );
    api.sb.shutdown().await;
}

#[tokio::test]
async fn duplicate_search_matches_as_upsert_does() {
    let api = Api::start(unlimited(200)).await;
    let loc = api.loc(0);
    let (_, c1) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": loc, "email": "Dup@Example.com", "phone": "+1 (888) 555-0199"}),
        )
        .await;
    let (_, c2) = api
        .call(
            Method::POST,
            "/contacts/",
            json!({"locationId": loc, "email": "two@example.com", "phone": "+44 20 7946 0958"}),
        )
        .await;
    let (c1, c2) = (contact_id(&c1), contact_id(&c2));
    let (api, loc) = (&api, loc.as_str());
    let find = |query: String| async move {
        let (s, v) = api
            .get(&format!(
                "/contacts/search/duplicate?locationId={loc}&{query}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["contact"]["id"].as_str().map(str::to_owned)
    };
    assert_eq!(
        find("email=dup%40example.COM".into()).await,
        Some(c1.clone())
    );
    for number in ["%2B18885550199", "888-555-0199", "001%20888%20555%200199"] {
        assert_eq!(
            find(format!("number={number}")).await,
            Some(c1.clone()),
            "{number}"
        );
    }
    assert_eq!(find("email=nobody%40example.com".into()).await, None);
    let (s, err) = api
        .get(&format!(
            "/contacts/search/duplicate?locationId={loc}&email="
        ))
        .await;
    assert_eq!(
        (s, err["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("Pass at least one of number, email query parameter")
        )
    );
    let both = "email=dup%40example.com&number=%2B442079460958".to_string();
    assert_eq!(find(both.clone()).await, Some(c1.clone()), "e-mail first");
    api.sb
        .set_duplicate_rule(loc, DuplicateRule::PhoneThenEmail);
    assert_eq!(find(both).await, Some(c2));

    let seeded = api.sb.store().contact_ids(loc).into_iter().find_map(|id| {
        let e = api.sb.store().contact(&id)?["email"].as_str()?.to_string();
        Some((id, e))
    });
    let (id, email) = seeded.expect("a seeded contact with an e-mail");
    let enc: String =
        url::form_urlencoded::byte_serialize(email.to_uppercase().as_bytes()).collect();
    assert_eq!(find(format!("email={enc}")).await, Some(id));
    api.sb.store().delete_contact(&c1);
    assert_eq!(find("email=dup%40example.com".into()).await, None);
}

#[tokio::test]
async fn bulk_actions_enrol_follow_and_move_businesses() {
    let api = Api::start(SandboxConfig {
        locations: 2,
        ..unlimited(30)
    })
    .await;
    let (loc, other) = (api.loc(0), api.loc(1));
    let store = api.sb.store();
    let ids = store.contact_ids(&loc);
    let cid = ids[0].clone();
    let admin: Value = api
        .http
        .get(format!("{}/_sandbox/locations/{loc}", api.sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["workflows"], json!(store.workflow_ids(&loc)));
    assert_eq!(admin["campaigns"], json!(store.campaign_ids(&loc)));
    assert_eq!(admin["users"], json!(store.user_ids(&loc)));
    assert_eq!(admin["duplicate_rule"], "email_then_phone");
    let (wid, camp) = (
        store.workflow_ids(&loc)[1].clone(),
        store.campaign_ids(&loc)[0].clone(),
    );

    let wf = format!("/contacts/{cid}/workflow/{wid}");
    let body = json!({"eventStartTime": "2030-06-23T03:30:00+01:00"});
    assert_eq!(
        api.call(Method::POST, &wf, body.clone()).await,
        (StatusCode::OK, json!({"succeded": true}))
    );
    assert_eq!(store.workflows_of(&cid), vec![wid.clone()]);
    let foreign_wf = store.workflow_ids(&other)[0].clone();
    for path in [
        format!("/contacts/{cid}/workflow/{foreign_wf}"),
        format!("/contacts/{cid}/workflow/nope"),
    ] {
        let (s, err) = api.call(Method::POST, &path, json!({})).await;
        assert_eq!(
            (s, err["message"].clone()),
            (StatusCode::BAD_REQUEST, json!("Workflow not found"))
        );
    }
    assert_eq!(
        api.call(Method::DELETE, &wf, json!({})).await.0,
        StatusCode::OK
    );
    assert!(store.workflows_of(&cid).is_empty());

    let cp = format!("/contacts/{cid}/campaigns/{camp}");
    assert_eq!(
        api.call(Method::POST, &cp, json!({})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(store.campaigns_of(&cid), vec![camp.clone()]);
    let (s, err) = api
        .call(
            Method::POST,
            &format!("/contacts/{cid}/campaigns/nope"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, err["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("Campaign not found"))
    );
    let (s, err) = api.call(Method::POST, &cp, json!({"when": 1})).await;
    assert_eq!(
        (s, err["message"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["property when should not exist"])
        )
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/contacts/{cid}/campaigns/removeAll"),
            json!({})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert!(store.campaigns_of(&cid).is_empty());

    let users = store.user_ids(&loc);
    let fl = format!("/contacts/{cid}/followers");
    let (s, f) = api
        .call(Method::POST, &fl, json!({"followers": users[..2]}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(f["followersAdded"], json!(users[..2]));
    let (_, f) = api
        .call(Method::POST, &fl, json!({"followers": users[1..3]}))
        .await;
    assert_eq!(
        (f["followers"].clone(), f["followersAdded"].clone()),
        (json!(users[..3]), json!([users[2]]))
    );
    let (s, f) = api
        .call(Method::DELETE, &fl, json!({"followers": [users[0]]}))
        .await;
    assert_eq!(
        (s, f["followersRemoved"].clone()),
        (StatusCode::OK, json!([users[0]]))
    );
    assert_eq!(
        store.contact(&cid).unwrap()["followers"],
        json!(users[1..3])
    );
    let (s, _) = api
        .call(Method::POST, &fl, json!({"followers": ["stranger"]}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let biz = store.business_ids(&loc)[2].clone();
    let foreign = store.contact_ids(&other)[0].clone();
    let move_to = |b: Value, list: Value| {
        api.call(
            Method::POST,
            "/contacts/bulk/business",
            json!({"locationId": loc, "ids": list, "businessId": b}),
        )
    };
    let (s, moved) = move_to(json!(biz), json!([ids[1], ids[2], "nope", foreign])).await;
    assert_eq!(
        (s, moved.clone()),
        (
            StatusCode::OK,
            json!({"success": true, "ids": [ids[1], ids[2]]})
        )
    );
    assert_eq!(store.contact(&ids[2]).unwrap()["businessId"], json!(biz));
    move_to(Value::Null, json!([ids[2]])).await;
    assert!(store.contact(&ids[2]).unwrap()["businessId"].is_null());
    assert_eq!(
        move_to(json!("0123456789abcdef01234567"), json!([ids[1]]))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    api.sb.set_bulk_limit(1);
    assert_eq!(
        move_to(json!(biz), json!(ids[..2])).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let gone = ids[5].clone();
    store.delete_contact(&gone);
    let (s, err) = api
        .call(
            Method::POST,
            &format!("/contacts/{gone}/workflow/{wid}"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, err["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("Contact not found"))
    );

    let w = api.sb.stats().writes;
    let want = [
        ("workflow_add", 1),
        ("workflow_remove", 1),
        ("campaign_add", 1),
        ("campaign_remove_all", 1),
        ("followers_add", 2),
        ("followers_remove", 1),
        ("bulk_business", 3),
    ];
    for (kind, n) in want {
        assert_eq!(w.get(kind).copied().unwrap_or(0), n, "{kind}: {w:?}");
    }

    // The admin routes change the duplicate rule and the batch limit from another process.
    let admin = reqwest::Client::new();
    let set = admin
        .post(format!("{}/_sandbox/locations/{loc}", api.sb.url()))
        .json(&json!({"duplicate_rule": "phone_then_email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(
        store.duplicate_rule(&loc),
        Some(DuplicateRule::PhoneThenEmail)
    );
    let bad = admin
        .post(format!("{}/_sandbox/locations/{loc}", api.sb.url()))
        .json(&json!({"duplicate_rule": "phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let limit: Value = admin
        .post(format!("{}/_sandbox/settings", api.sb.url()))
        .json(&json!({"bulk_limit": 250}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limit, json!({"bulk_limit": 250}));
    api.sb.shutdown().await;
}
