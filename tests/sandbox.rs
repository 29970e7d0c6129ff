//! The sandbox over real HTTP on 127.0.0.1: auth, cursors and their quirks, search rules,
//! writes, rate limits, faults and OAuth rotation. Expected data comes from the sandbox's
//! `Store` (ground truth), never from the code under test's own answers.

use ghl_etl::api::RateSpec;
use ghl_etl::sandbox::{
    Sandbox, SandboxConfig, TokenSpec, DEFAULT_TOKEN, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
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
            c["tags"].as_array().unwrap().iter().any(|t| t == "VIP")
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
        rate_limit: Some(RateSpec {
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
    // Truncated and dropped answers come after the write; status faults before it.
    let after_write = stats.faults.get("truncated").copied().unwrap_or(0)
        + stats.faults.get("dropped").copied().unwrap_or(0);
    assert_eq!(
        api.sb.store().notes(&contact).len() as u64,
        notes_before as u64 + after_write
    );
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
