//! Contacts deleted while they are being exported: the export keeps going, and the client
//! reads GHL's answers for a gone contact (a 400 "Contact not found", sometimes a 404, and
//! ambiguous 400s settled by `GET /contacts/{id}`) as "deleted", never as a failure.
//!
//! The export is driven through the real binary, so these tests hold whatever the library's
//! export API becomes; expected data comes from the sandbox's API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use axum::extract::Path as UrlPath;
use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use axum::{Json, Router};
use ghl_etl::api::{AuthConfig, Client, ClientConfig, ErrorKind};
use ghl_etl::sandbox::{Sandbox, DEFAULT_TOKEN};
use ghl_etl::secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::util::{client, describe, quiet_config, run_bin, sandbox};

/// Routes that fetch a contact's related records: held while the test deletes contacts.
const CHILD_ROUTES: &[&str] = &[
    "GET /contacts/{contactId}/tasks",
    "GET /contacts/{contactId}/notes",
    "GET /contacts/{contactId}/appointments",
    "POST /locations/{locationId}/tasks/search",
];

/// A request to the sandbox's API with GHL's headers.
async fn api(sb: &Sandbox, method: Method, path: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.url()))
        .bearer_auth(DEFAULT_TOKEN)
        .header("Version", "2021-07-28")
        .header("Accept", "application/json")
        .send()
        .await
        .expect("request completes");
    let status = resp.status();
    let text = resp.text().await.expect("body arrives");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Ids of a contact's tasks or notes, as the API answers them now.
async fn child_ids(sb: &Sandbox, contact: &str, child: &str) -> BTreeSet<String> {
    let (status, body) = api(sb, Method::GET, &format!("/contacts/{contact}/{child}")).await;
    assert_eq!(status, StatusCode::OK, "{child} of {contact}: {body}");
    body[child]
        .as_array()
        .unwrap_or_else(|| panic!("no {child} list: {body}"))
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_string())
        .collect()
}

/// Every row of a CSV table (all its part files) as column -> value maps.
fn read_table(out: &Path, table: &str) -> Vec<BTreeMap<String, String>> {
    let mut files: Vec<_> = std::fs::read_dir(out.join(table))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let mut r = csv::Reader::from_path(&f).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        for rec in r.records() {
            let rec = rec.unwrap();
            rows.push(
                header
                    .iter()
                    .cloned()
                    .zip(rec.iter().map(str::to_string))
                    .collect(),
            );
        }
    }
    rows
}

/// Child ids per contact id in an exported table.
fn by_contact(rows: &[BTreeMap<String, String>]) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        m.entry(r["contact_id"].clone())
            .or_default()
            .insert(r["id"].clone());
    }
    m
}

/// Contacts deleted through `DELETE /contacts/{id}` after the export listed them and before
/// it fetched their tasks and notes.
///
/// How "while it runs" is made deterministic: the sandbox [holds](Sandbox::hold) every request
/// that fetches related records (per-contact tasks, notes, appointments and the task search)
/// at its gate. All contacts fit one listing page, so once the first held request has arrived
/// the export has listed every contact and fetched nothing related yet. The test then deletes
/// contacts through the API and releases the hold; the held and later requests meet the
/// deleted contacts. No sleep and no timing: the only waits are on the sandbox's own signal
/// (a held request arrived) and on the binary's exit; the timeout only turns a hang into a
/// failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_deleted_during_an_export_are_kept_without_related_records() {
    let sb = sandbox(quiet_config(40)).await;
    let location = sb.location_ids()[0].clone();
    let listed = sb.store().contact_ids(&location);
    assert_eq!(listed.len(), 40);
    // Contacts that have notes and tasks, at the start, middle and end of the listing, so
    // "none of their records" means something.
    let rich: Vec<&String> = listed
        .iter()
        .filter(|id| !sb.store().notes(id).is_empty() && !sb.store().tasks(id).is_empty())
        .collect();
    assert!(
        rich.len() >= 3,
        "the seed gives some contacts tasks and notes"
    );
    let doomed: Vec<String> = [rich[0], rich[rich.len() / 2], rich[rich.len() - 1]]
        .into_iter()
        .cloned()
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let hold = sb.hold(CHILD_ROUTES);
    let export = {
        let (url, location, out, cwd) = (
            sb.url(),
            location.clone(),
            out.display().to_string(),
            dir.path().to_path_buf(),
        );
        tokio::task::spawn_blocking(move || {
            let state = format!("{out}/.state.sqlite");
            let args = [
                "export",
                "--base-url",
                &url,
                "--location",
                &location,
                "--out",
                &out,
                "--state",
                &state,
                "--format",
                "csv",
                "--with",
                "tasks,notes",
                "--rate",
                "off",
                "--source",
                "list",
                "--page-size",
                "100",
            ];
            let o = run_bin(&args, &[("GHL_TOKEN", DEFAULT_TOKEN)], &cwd);
            let told = describe(&args, &cwd, &o);
            (o, told)
        })
    };
    let mut export = Box::pin(export);
    tokio::select! {
        _ = hold.arrived(1) => {}
        done = &mut export => {
            let (_, told) = done.unwrap();
            panic!("the export ended before fetching related records:\n{told}");
        }
        _ = tokio::time::sleep(Duration::from_secs(120)) => {
            panic!("the export never fetched related records");
        }
    }
    assert_eq!(
        sb.stats().contacts_served,
        40,
        "the single listing page was answered before any related fetch"
    );
    for id in &doomed {
        let (status, body) = api(&sb, Method::DELETE, &format!("/contacts/{id}")).await;
        assert_eq!(status, StatusCode::OK, "delete {id}: {body}");
    }
    hold.release();
    let (o, told) = tokio::time::timeout(Duration::from_secs(120), export)
        .await
        .expect("the export finishes")
        .unwrap();

    assert_eq!(o.status.code(), Some(0), "{told}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("deleted while exporting: 3 contacts"),
        "the summary names the deleted contacts:\n{told}"
    );
    let contacts: Vec<String> = read_table(&out, "contacts")
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(
        contacts, listed,
        "every listed contact, once, in order:\n{told}"
    );
    for child in ["tasks", "notes"] {
        let exported = by_contact(&read_table(&out, child));
        for id in &listed {
            let got = exported.get(id).cloned().unwrap_or_default();
            if doomed.contains(id) {
                assert!(got.is_empty(), "{child} of deleted {id}: {got:?}");
                let (status, body) =
                    api(&sb, Method::GET, &format!("/contacts/{id}/{child}")).await;
                assert_eq!(
                    (status, body),
                    (
                        StatusCode::BAD_REQUEST,
                        json!({"statusCode": 400, "message": "Contact not found"})
                    )
                );
            } else {
                assert_eq!(got, child_ids(&sb, id, child).await, "{child} of {id}");
            }
        }
        assert!(!exported.is_empty(), "some {child} were exported");
    }
    sb.shutdown().await;
}

/// GHL's usual answer for a deleted contact, a 400 "Contact not found", reads as `None`
/// without a second request.
#[tokio::test]
async fn a_deleted_contacts_related_records_are_none_on_ghls_400() {
    let sb = sandbox(quiet_config(20)).await;
    let location = sb.location_ids()[0].clone();
    let id = sb.store().contact_ids(&location)[5].clone();
    let (status, _) = api(&sb, Method::DELETE, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    sb.reset_stats();

    let c = client(&sb, None);
    assert_eq!(c.contact_notes(&location, &id).await.unwrap(), None);
    assert_eq!(c.contact_tasks(&location, &id).await.unwrap(), None);
    assert_eq!(c.contact_appointments(&location, &id).await.unwrap(), None);
    assert_eq!(c.contact(&location, &id).await.unwrap(), None);
    let stats = sb.stats();
    assert_eq!(
        stats.by_route["GET /contacts/{contactId}/notes"],
        [(400, 1)].into(),
        "{stats:?}"
    );
    assert_eq!(
        stats.requests, 4,
        "one request each, no confirmation: {stats:?}"
    );
    assert_eq!(c.stats().retries, 0);
    sb.shutdown().await;
}

/// A stand-in for GHL's other answers, which the sandbox does not give: a 404 for a gone
/// contact, and a 400 that does not say why. `gone-*` contacts do not exist; `alive` does.
async fn stub_server() -> (String, tokio::task::JoinHandle<()>) {
    async fn notes(UrlPath(id): UrlPath<String>) -> (AxumStatus, Json<Value>) {
        match id.as_str() {
            "gone-404" => (
                AxumStatus::NOT_FOUND,
                Json(
                    json!({"statusCode": 404, "message": "Contact not found", "error": "Not Found"}),
                ),
            ),
            _ => (
                AxumStatus::BAD_REQUEST,
                Json(json!({"statusCode": 400, "message": "Bad Request"})),
            ),
        }
    }
    async fn contact(UrlPath(id): UrlPath<String>) -> (AxumStatus, Json<Value>) {
        match id.as_str() {
            "alive" => (AxumStatus::OK, Json(json!({"contact": {"id": "alive"}}))),
            _ => (
                AxumStatus::BAD_REQUEST,
                Json(json!({"statusCode": 400, "message": "Contact not found"})),
            ),
        }
    }
    let app = Router::new()
        .route("/contacts/{id}/notes", get(notes))
        .route("/contacts/{id}", get(contact));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, server)
}

/// A 404 is read as deleted too; a 400 that does not say "Contact not found" is settled by
/// `GET /contacts/{id}`: deleted if that says the contact is gone, else the 400 stands.
#[tokio::test]
async fn a_404_or_a_confirmed_vague_400_is_deleted_and_an_unconfirmed_one_is_an_error() {
    let (url, server) = stub_server().await;
    let mut cfg = ClientConfig::new(url, AuthConfig::Static(Secret::new("t")));
    cfg.rate = None;
    let c = Client::new(cfg).unwrap();

    assert_eq!(c.contact_notes("L", "gone-404").await.unwrap(), None);
    assert_eq!(c.stats().requests, 1, "a 404 needs no confirmation");
    assert_eq!(c.contact_notes("L", "gone-vague").await.unwrap(), None);
    assert_eq!(c.stats().requests, 3, "a vague 400 costs one confirmation");
    let e = c.contact_notes("L", "alive").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e}");
    assert_eq!(
        e.path, "/contacts/alive/notes",
        "the original error stands: {e}"
    );
    assert_eq!(c.stats().retries, 0);
    server.abort();
}
