//! Every location of an agency: a locations file, `--all-locations` with an agency token,
//! one location's access revoked mid-run, reruns that redo only what failed, `--shard`; and
//! the agency OAuth routes of the sandbox against the spec. The binary runs against a sandbox
//! in this process, over 127.0.0.1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ghl_etl::api::{AuthConfig, Client, ClientConfig, ErrorKind};
use ghl_etl::export::shard_of;
use ghl_etl::sandbox::{
    Sandbox, SandboxConfig, APP_ID, DEFAULT_AGENCY_TOKEN, DEFAULT_TOKEN, OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
};
use ghl_etl::secret::Secret;
use serde_json::{json, Value};

use crate::spec::{validate_request_body, validate_response};
use crate::util::{bin, describe, fast_retry, quiet_config, sandbox, sandbox_rate};

fn agency_sandbox(locations: usize, contacts: usize) -> SandboxConfig {
    SandboxConfig {
        locations,
        record_requests: true,
        ..quiet_config(contacts)
    }
}

/// Export flags shared by the tests: CSV (easy to read back), contacts with tasks and notes.
fn export_args(sb: &Sandbox, out: &Path, rest: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "export",
        "--base-url",
        &sb.url(),
        "--retry-max-delay",
        "0.2",
        "--with",
        "tasks,notes",
        "--format",
        "csv",
        "--out",
        &out.display().to_string(),
        "--state",
        &out.with_extension("sqlite").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(rest.iter().map(|s| s.to_string()));
    a
}

fn command(args: &[String], envs: &[(&str, &str)], cwd: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("GHL_TOKEN")
        .env_remove("GHL_BASE_URL")
        .env_remove("GHL_LOCATION")
        .env_remove("GHL_COMPANY_ID")
        .env_remove("GHL_APP_ID")
        .env_remove("GHL_SHARD")
        .env("NO_COLOR", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Run the binary off the async threads (the sandbox keeps serving meanwhile).
async fn run(args: Vec<String>, envs: Vec<(&'static str, String)>, cwd: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        command(&args, &envs, &cwd)
            .output()
            .expect("the ghl-etl binary runs")
    })
    .await
    .unwrap()
}

fn show(args: &[String], cwd: &Path, out: &Output) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    describe(&a, cwd, out)
}

/// `(location, contact id)` of every contact row in the CSV parts under `out`.
fn contact_rows(out: &Path) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let Ok(dir) = std::fs::read_dir(out.join("contacts")) else {
        return rows;
    };
    let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "csv"))
    {
        let mut r = csv::Reader::from_path(f).unwrap();
        let h = r.headers().unwrap().clone();
        let id = h.iter().position(|c| c == "id").expect("id column");
        let loc = h
            .iter()
            .position(|c| c == "locationId")
            .expect("locationId column");
        for rec in r.records() {
            let rec = rec.unwrap();
            rows.push((rec[loc].to_string(), rec[id].to_string()));
        }
    }
    rows
}

/// `_locations.json`: location → outcome.
fn outcomes(out: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(out.join("_locations.json")).expect("_locations.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["location"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every recorded request to the OAuth routes is valid by the spec's request schemas.
fn check_recorded_oauth_requests(sb: &Sandbox) -> usize {
    let mut n = 0;
    for r in sb.recorded_requests() {
        if !r.route.starts_with("/oauth/") {
            continue;
        }
        if let Some(body) = &r.body {
            if let Err(e) = validate_request_body(&r.method, &r.route, body) {
                panic!("{} {} breaks the spec: {e:?}\n{body}", r.method, r.route);
            }
            n += 1;
        }
    }
    n
}

/// (3) 20 locations under the rate limit, the app uninstalled from one while it is being
/// exported: the other 19 finish, the summary and the exit code name the one, and a rerun
/// (the app installed again) exports it alone, each contact once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_revoked_location_fails_alone_and_a_rerun_finishes_it_alone() {
    let cfg = SandboxConfig {
        rate_limit: Some(sandbox_rate("100/1s")),
        ..agency_sandbox(20, 60)
    };
    let sb = sandbox(cfg).await;
    let ids = sb.location_ids();
    let victim = ids[7].clone();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("locations.csv");
    let mut text = String::from("location_id,name\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},\"Client {i}, Inc.\"\n"));
    }
    std::fs::write(&list, text).unwrap();
    let out = dir.path().join("out");
    let company = sb.company_id();
    let list_s = list.display().to_string();
    let args = export_args(
        &sb,
        &out,
        &[
            "--locations-file",
            &list_s,
            "--company-id",
            &company,
            "--rate",
            "100/1s",
            "--location-concurrency",
            "20",
        ],
    );
    let envs = vec![("GHL_TOKEN", DEFAULT_AGENCY_TOKEN.to_string())];

    // Notes wait at the gate until the victim has started (its listing, fields and task
    // search need no notes), so it cannot finish before its access goes.
    let hold = sb.hold(&["GET /contacts/{contactId}/notes"]);
    let child = {
        let (args, envs, cwd) = (args.clone(), envs.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            command(&args, &envs, &cwd)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the ghl-etl binary starts")
                .wait_with_output()
                .unwrap()
        })
    };
    hold.arrived(1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sb.stats().by_location.get(&victim).copied().unwrap_or(0) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the victim never started"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    sb.set_installed(&victim, false);
    hold.release();
    let first = child.await.unwrap();
    let seen = show(&args, dir.path(), &first);
    assert_eq!(first.status.code(), Some(3), "{seen}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("1 of 20 locations failed") && stderr.contains(&victim),
        "{seen}"
    );
    assert!(
        stderr.contains("Locations (20): 19 finished, 1 failed"),
        "{seen}"
    );
    assert!(
        stderr.contains("Client 7, Inc."),
        "names from the file: {seen}"
    );
    let o = outcomes(&out);
    assert_eq!(o.len(), 20);
    for (l, outcome) in &o {
        let want = if *l == victim { "failed" } else { "finished" };
        assert_eq!(outcome, want, "{l}: {seen}");
    }
    assert!(
        !out.join("_manifest.json").exists(),
        "no manifest until every location is done"
    );

    // The rerun: only the victim is read again.
    sb.set_installed(&victim, true);
    sb.reset_stats();
    let second = run(args.clone(), envs.clone(), dir.path().to_path_buf()).await;
    let seen = show(&args, dir.path(), &second);
    assert_eq!(second.status.code(), Some(0), "{seen}");
    let by_location = sb.stats().by_location;
    assert_eq!(
        by_location.keys().collect::<Vec<_>>(),
        vec![&victim],
        "only the failed location is read again: {by_location:?}"
    );
    let o = outcomes(&out);
    assert_eq!(o[&victim], "finished");
    assert_eq!(
        o.values().filter(|v| *v == "finished earlier").count(),
        19,
        "{o:?}"
    );
    let rows = contact_rows(&out);
    let unique: BTreeSet<&(String, String)> = rows.iter().collect();
    assert_eq!(rows.len(), 20 * 60, "every contact of every location");
    assert_eq!(unique.len(), rows.len(), "no contact twice");
    assert!(out.join("_manifest.json").exists());
    // No token reached the output or the logs.
    for text in [
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr),
    ] {
        assert!(!text.contains(DEFAULT_AGENCY_TOKEN), "{text}");
    }
    assert!(check_recorded_oauth_requests(&sb) >= 1);
    sb.shutdown().await;
}

/// (4) `--all-locations` with an agency OAuth app: the company id comes from the token answer,
/// the installed locations from `GET /oauth/installedLocations` (one uninstalled location is
/// left out), each location read with its own minted token; nothing secret is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_locations_with_an_agency_oauth_token() {
    let sb = sandbox(agency_sandbox(5, 30)).await;
    let ids = sb.location_ids();
    sb.set_installed(&ids[2], false);
    let dir = tempfile::tempdir().unwrap();
    let refresh = dir.path().join("refresh-token");
    let first_refresh = sb.issue_company_refresh_token(&[
        "contacts.readonly",
        "locations/tasks.readonly",
        "locations/customFields.readonly",
        "oauth.readonly",
        "oauth.write",
    ]);
    std::fs::write(&refresh, &first_refresh).unwrap();
    let out = dir.path().join("out");
    let refresh_s = refresh.display().to_string();
    let args = export_args(
        &sb,
        &out,
        &[
            "--all-locations",
            "--app-id",
            APP_ID,
            "--client-id",
            OAUTH_CLIENT_ID,
            "--refresh-token-file",
            &refresh_s,
            "--rate",
            "off",
            "-v",
        ],
    );
    let envs = vec![("GHL_CLIENT_SECRET", OAUTH_CLIENT_SECRET.to_string())];
    let o = run(args.clone(), envs, dir.path().to_path_buf()).await;
    let seen = show(&args, dir.path(), &o);
    assert_eq!(o.status.code(), Some(0), "{seen}");
    let mut want: Vec<String> = ids.clone();
    want.remove(2);
    want.sort();
    let got: Vec<String> = outcomes(&out).into_keys().collect();
    assert_eq!(got, want, "the installed locations, sorted: {seen}");
    let rows = contact_rows(&out);
    let locations: BTreeSet<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(locations.len(), 4);
    assert!(!locations.contains(ids[2].as_str()));
    assert_eq!(rows.len(), 4 * 30);
    let mints = sb
        .stats()
        .by_route
        .get("POST /oauth/locationToken")
        .and_then(|s| s.get(&200))
        .copied();
    assert_eq!(
        mints,
        Some(4),
        "one token per location, cached: {:?}",
        sb.stats().by_route
    );
    // The refresh token rotated; neither it nor the client secret is in any output or log.
    let rotated = std::fs::read_to_string(&refresh).unwrap();
    assert_ne!(rotated.trim(), first_refresh);
    let mut texts = vec![String::from_utf8_lossy(&o.stderr).into_owned()];
    for e in walk(&out) {
        texts.push(String::from_utf8_lossy(&std::fs::read(e).unwrap()).into_owned());
    }
    for t in &texts {
        for secret in [rotated.trim(), first_refresh.as_str(), OAUTH_CLIENT_SECRET] {
            assert!(!t.contains(secret), "a secret leaked: {seen}");
        }
    }
    assert!(check_recorded_oauth_requests(&sb) >= 4);
    sb.shutdown().await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// (6) Three shards of one agency cover every location exactly once, each in its own folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_cover_every_location_exactly_once() {
    let sb = sandbox(agency_sandbox(12, 10)).await;
    let ids = sb.location_ids();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let company = sb.company_id();
    let mut covered: Vec<String> = Vec::new();
    let mut contacts = 0;
    for i in 0..3 {
        let shard = format!("{i}/3");
        let mut args = export_args(
            &sb,
            &out,
            &[
                "--all-locations",
                "--app-id",
                APP_ID,
                "--company-id",
                &company,
                "--shard",
                &shard,
                "--rate",
                "off",
            ],
        );
        // Each shard keeps its own state, as separate machines do.
        let state = dir.path().join(format!("state-{i}.sqlite"));
        let at = args.iter().position(|a| a == "--state").unwrap();
        args[at + 1] = state.display().to_string();
        let envs = vec![("GHL_TOKEN", DEFAULT_AGENCY_TOKEN.to_string())];
        let o = run(args.clone(), envs, dir.path().to_path_buf()).await;
        let seen = show(&args, dir.path(), &o);
        assert_eq!(o.status.code(), Some(0), "{seen}");
        let folder = out.join(format!("shard={i}-of-3"));
        let mine: Vec<String> = outcomes(&folder).into_keys().collect();
        assert!(
            !mine.is_empty(),
            "12 locations leave no shard empty here: {seen}"
        );
        for l in &mine {
            assert_eq!(shard_of(l, 3), i, "{l} is not shard {i}'s");
        }
        let rows = contact_rows(&folder);
        assert!(rows.iter().all(|(l, _)| mine.contains(l)), "{seen}");
        contacts += rows.len();
        covered.extend(mine);
    }
    covered.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(covered, all, "every location exactly once");
    assert_eq!(contacts, 12 * 10);
    sb.shutdown().await;
}

/// The agency routes answer in the spec's shapes: installed locations, a minted token, and the
/// errors (not installed, a location token on an agency route, missing fields).
#[tokio::test]
async fn agency_routes_answer_in_the_spec_shape() {
    let sb = sandbox(agency_sandbox(3, 1)).await;
    let ids = sb.location_ids();
    sb.set_installed(&ids[1], false);
    let http = reqwest::Client::new();
    let company = sb.company_id();
    let get = |token: &str, query: String| {
        http.get(format!("{}/oauth/installedLocations?{query}", sb.url()))
            .bearer_auth(token)
            .header("Version", "2021-07-28")
    };
    let mint = |token: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}/oauth/locationToken", sb.url()))
            .bearer_auth(token)
            .header("Version", "2021-07-28")
            .form(&form)
    };
    let check = |route: &str, method: &str, status: u16, body: &Value| match validate_response(
        method, route, status, body,
    ) {
        Ok(true) => {}
        other => panic!("{method} {route} {status}: {other:?}\n{body:#}"),
    };
    let answer = |r: reqwest::RequestBuilder| async move {
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let route_l = "/oauth/installedLocations";
    let (s, all) = answer(get(
        DEFAULT_AGENCY_TOKEN,
        format!("companyId={company}&appId={APP_ID}"),
    ))
    .await;
    check(route_l, "GET", s, &all);
    assert_eq!(s, 200);
    assert_eq!(all["count"], json!(3));
    let (s, installed) = answer(get(
        DEFAULT_AGENCY_TOKEN,
        format!("companyId={company}&appId={APP_ID}&isInstalled=true&limit=1&skip=1"),
    ))
    .await;
    check(route_l, "GET", s, &installed);
    assert_eq!(installed["count"], json!(2));
    assert_eq!(installed["locations"][0]["_id"], json!(ids[2]));
    let (s, missing) = answer(get(DEFAULT_AGENCY_TOKEN, format!("companyId={company}"))).await;
    assert_eq!(s, 422);
    check(route_l, "GET", s, &missing);
    let (s, plain) = answer(get(
        DEFAULT_TOKEN,
        format!("companyId={company}&appId={APP_ID}"),
    ))
    .await;
    assert_eq!(s, 401, "a location-level token is no agency token: {plain}");
    check(route_l, "GET", s, &plain);

    let route_t = "/oauth/locationToken";
    let form = |l: &str| {
        vec![
            ("companyId", company.clone()),
            ("locationId", l.to_string()),
        ]
    };
    let (s, minted) = answer(mint(DEFAULT_AGENCY_TOKEN, form(&ids[0]))).await;
    check(route_t, "POST", s, &minted);
    assert_eq!(s, 200);
    assert_eq!(minted["locationId"], json!(ids[0]));
    let token = minted["access_token"].as_str().unwrap().to_string();
    let (s, gone) = answer(mint(DEFAULT_AGENCY_TOKEN, form(&ids[1]))).await;
    assert_eq!(s, 400, "{gone}");
    check(route_t, "POST", s, &gone);
    let (s, bad) = answer(mint(
        DEFAULT_AGENCY_TOKEN,
        vec![("locationId", ids[0].clone())],
    ))
    .await;
    assert_eq!(s, 422, "{bad}");
    check(route_t, "POST", s, &bad);
    // The minted token reads its own location only, and stops working when the app goes.
    let read = |l: &str| {
        http.get(format!("{}/contacts/?locationId={l}&limit=1", sb.url()))
            .bearer_auth(&token)
            .header("Version", "2021-07-28")
    };
    assert_eq!(read(&ids[0]).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(read(&ids[2]).send().await.unwrap().status().as_u16(), 403);
    sb.set_installed(&ids[0], false);
    assert_eq!(read(&ids[0]).send().await.unwrap().status().as_u16(), 401);
    // The request schema holds the valid form and refuses the one without companyId.
    let route = "/oauth/locationToken";
    let good = json!({"companyId": company, "locationId": ids[0]});
    assert!(validate_request_body("POST", route, &good).is_ok());
    assert!(validate_request_body("POST", route, &json!({"locationId": ids[0]})).is_err());
    // The two requests above without appId, and without companyId.
    sb.shutdown_expecting_violations(2).await;
}

fn mints(sb: &Sandbox) -> u64 {
    sb.stats()
        .by_route
        .get("POST /oauth/locationToken")
        .and_then(|s| s.get(&200))
        .copied()
        .unwrap_or(0)
}

/// The client mints one token per location, reuses it, mints again five minutes before it
/// expires, and reports a location whose app was uninstalled as that location's own failure.
#[tokio::test]
async fn location_tokens_are_cached_per_location_and_reminted_before_expiry() {
    let mut cfg = agency_sandbox(2, 5);
    // An hour; the client's clock then moves inside the five-minute margin.
    cfg.access_token_ttl = std::time::Duration::from_secs(3_600);
    let sb = sandbox(cfg).await;
    let ids = sb.location_ids();
    let auth =
        AuthConfig::Static(Secret::new(DEFAULT_AGENCY_TOKEN)).into_agency(Some(sb.company_id()));
    let mut config = ClientConfig::new(sb.url(), auth);
    config.rate = None;
    config.retry = fast_retry();
    let clock = ghl_etl::api::Clock::default();
    config.clock = clock.clone();
    let c = Client::new(config).unwrap();
    let (a, b) = (
        sb.store().contact_ids(&ids[0]),
        sb.store().contact_ids(&ids[1]),
    );
    c.contact_notes(&ids[0], &a[0]).await.unwrap();
    c.contact_notes(&ids[0], &a[1]).await.unwrap();
    assert_eq!(mints(&sb), 1, "cached");
    c.contact_notes(&ids[1], &b[0]).await.unwrap();
    assert_eq!(mints(&sb), 2, "one per location");
    clock.advance(std::time::Duration::from_secs(3_600 - 299));
    c.contact_notes(&ids[0], &a[2]).await.unwrap();
    assert_eq!(mints(&sb), 3, "minted again near expiry");
    sb.set_installed(&ids[1], false);
    let e = c.contact_notes(&ids[1], &b[1]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert!(e.to_string().contains(&ids[1]), "{e}");
    assert!(!format!("{e:?} {e}").contains(DEFAULT_AGENCY_TOKEN));
    // The other location is unaffected.
    c.contact_notes(&ids[0], &a[3]).await.unwrap();
    sb.shutdown().await;
}
