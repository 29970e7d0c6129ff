//! `ghl-etl bulk` end to end against the sandbox: enrolments sent at most once under faults,
//! followers, the business of many contacts by search, and delete (only with `--yes`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ghl_etl::sandbox::Sandbox;

use crate::util::{ghl_on as ghl, quiet_config, read_csv, report_rows, sandbox};

/// A list of contact ids, one a row.
pub(crate) fn id_list(path: &Path, ids: &[String]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["contact_id"]).unwrap();
    for id in ids {
        w.write_record([id]).unwrap();
    }
    w.flush().unwrap();
}

fn common(location: &str, dir: &Path, name: &str) -> Vec<String> {
    [
        "--location",
        location,
        "--state",
        &dir.join(format!("{name}.sqlite")).display().to_string(),
        "--report",
        &dir.join(name).display().to_string(),
        "--retry-max-delay",
        "0.2",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn cmd(head: &[&str], tail: Vec<String>) -> Vec<String> {
    head.iter().map(|s| s.to_string()).chain(tail).collect()
}

/// Contacts of `location` enrolled in `workflow`, as the sandbox's store holds them.
pub(crate) fn enrolled(sb: &Sandbox, location: &str, workflow: &str) -> BTreeSet<String> {
    sb.store()
        .contact_ids(location)
        .into_iter()
        .filter(|id| sb.store().workflows_of(id).iter().any(|w| w == workflow))
        .collect()
}

/// The contact ids of a bulk job's report: (succeeded, failed with their errors). Asserts that
/// no contact has two lines.
pub(crate) fn reported(report: &Path) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let ok = report_rows(report, "succeeded.csv");
    let succeeded: BTreeSet<String> = ok.iter().map(|r| r[4].to_string()).collect();
    assert_eq!(succeeded.len(), ok.len(), "one line per contact: {ok:?}");
    if !report.join("failed.csv").exists() {
        return (succeeded, BTreeMap::new());
    }
    let (h, rows) = read_csv(&report.join("failed.csv"));
    if rows.is_empty() {
        return (succeeded, BTreeMap::new());
    }
    let (id, error) = (
        h.iter().position(|c| c == "contact_id").unwrap(),
        h.iter().position(|c| c == "error").unwrap(),
    );
    let failed: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r[id].clone(), r[error].clone()))
        .collect();
    assert_eq!(failed.len(), rows.len(), "one line per contact: {rows:?}");
    (succeeded, failed)
}

/// 120 contacts (and one unknown id) into a workflow with 5% faults, read back from the
/// sandbox's store: no contact is enrolled twice (the sandbox applied exactly as many
/// enrolments as it holds enrolled contacts), every contact reported succeeded is enrolled,
/// the only others enrolled are rows reported as lost answers, no one outside the list is
/// enrolled, and each row is in exactly one report file. A rerun sends nothing and changes
/// neither the enrolments nor the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_enrolment_is_sent_at_most_once_under_faults() {
    let mut cfg = quiet_config(300);
    cfg.fault_rate = 0.05;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let workflow = sb.store().workflow_ids(&location)[0].clone();
    assert!(enrolled(&sb, &location, &workflow).is_empty());
    let mut ids: Vec<String> = sb.store().contact_ids(&location)[..120].to_vec();
    ids.push("NoSuchContact0000001".into());
    let listed: BTreeSet<String> = ids.iter().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    id_list(&list, &ids);
    let args = cmd(
        &["bulk", "workflow-add", "--workflow", &workflow, "--input"],
        std::iter::once(list.display().to_string())
            .chain(common(&location, dir.path(), "wf"))
            .collect(),
    );
    let (code, d) = ghl(&sb, args.clone(), dir.path()).await;
    assert_eq!(code, Some(1), "the unknown id fails: {d}");
    let report = dir.path().join("wf");
    let (ok, failed) = reported(&report);
    assert!(
        ok.is_disjoint(&failed.keys().cloned().collect()),
        "{ok:?}\n{failed:?}"
    );
    let all: BTreeSet<String> = ok.iter().chain(failed.keys()).cloned().collect();
    assert_eq!(all, listed, "every row in one report file");
    assert!(
        failed["NoSuchContact0000001"].contains("NoSuchContact0000001"),
        "{failed:?}"
    );
    assert!(ok.len() >= 100, "5% faults leave most rows succeeded: {d}");

    let stats = sb.stats();
    assert!(stats.faults_total() > 0, "faults were injected: {stats:?}");
    let now = enrolled(&sb, &location, &workflow);
    let sent = stats.written("workflow_add");
    assert_eq!(
        sent,
        now.len() as u64,
        "each enrolment the sandbox applied is a different contact's: none twice"
    );
    let missing: Vec<&String> = ok.difference(&now).collect();
    assert!(missing.is_empty(), "reported but not enrolled: {missing:?}");
    let outside: Vec<&String> = now.difference(&listed).collect();
    assert!(outside.is_empty(), "enrolled but not listed: {outside:?}");
    // A lost answer (a body cut short, a dropped connection) may hide an enrolment that
    // happened; those rows are reported failed as such, never resent.
    let unreported: Vec<&String> = now.difference(&ok).collect();
    for id in &unreported {
        assert!(
            failed[*id].starts_with(ghl_etl::job::once::LOST_ANSWER),
            "{id} is enrolled but failed with: {}",
            failed[*id]
        );
    }
    let lost =
        stats.faults.get("truncated").unwrap_or(&0) + stats.faults.get("dropped").unwrap_or(&0);
    assert!(
        unreported.len() as u64 <= lost,
        "{unreported:?} but {lost} answers lost"
    );

    let (code, d) = ghl(&sb, args, dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    assert_eq!(
        sb.stats().written("workflow_add"),
        sent,
        "a rerun enrols no one again"
    );
    assert_eq!(enrolled(&sb, &location, &workflow), now);
    assert_eq!(
        reported(&report),
        (ok, failed),
        "the rerun's report is the same"
    );
    sb.shutdown().await;
}

/// Followers added then removed, the business set for every contact a search matches (more
/// than one bulk batch), and an unknown workflow stopping at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_and_business_by_search_and_an_unknown_workflow() {
    let sb = sandbox(quiet_config(1500)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = sb.store().contact_ids(&location)[..30].to_vec();
    let list = dir.path().join("ids.csv");
    id_list(&list, &ids);
    let user = sb.store().user_ids(&location)[0].clone();
    let input = || vec!["--input".to_string(), list.display().to_string()];
    for (action, name) in [("followers-add", "fa"), ("followers-remove", "fr")] {
        let mut tail = input();
        tail.extend(common(&location, dir.path(), name));
        let (code, d) = ghl(
            &sb,
            cmd(&["bulk", action, "--user", &user], tail),
            dir.path(),
        )
        .await;
        assert_eq!(code, Some(0), "{d}");
        for id in &ids {
            let followers = sb.store().contact(id).unwrap()["followers"].clone();
            let has = followers
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f.as_str() == Some(user.as_str()));
            assert_eq!(has, action == "followers-add", "{action} {id}");
        }
    }
    // The business of every contact tagged `vip`, by search, in batches of at most 100.
    let business = sb.store().business_ids(&location)[0].clone();
    let vip: Vec<String> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter(|id| {
            sb.store().contact(id).unwrap()["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t.as_str() == Some("vip"))
        })
        .collect();
    assert!(vip.len() > 100, "more than one batch: {}", vip.len());
    let business_of = |id: &str| sb.store().contact(id).unwrap()["businessId"].clone();
    let before: Vec<(String, serde_json::Value)> = sb
        .store()
        .contact_ids(&location)
        .into_iter()
        .filter(|id| !vip.contains(id))
        .map(|id| {
            let b = business_of(&id);
            (id, b)
        })
        .collect();
    let mut tail = vec!["--where".to_string(), "tags=vip".to_string()];
    tail.extend(common(&location, dir.path(), "biz"));
    let (code, d) = ghl(
        &sb,
        cmd(&["bulk", "business-set", "--business", &business], tail),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    for id in &vip {
        assert_eq!(business_of(id).as_str(), Some(business.as_str()), "{id}");
    }
    for (id, b) in &before {
        assert_eq!(&business_of(id), b, "{id} is not tagged vip: untouched");
    }
    assert_eq!(
        sb.stats().written("bulk_business"),
        vip.len() as u64,
        "one write per contact, in {} requests",
        vip.len().div_ceil(100)
    );
    // An id the location lacks stops the run at once with a usage error, sending nothing more.
    let mut tail = input();
    tail.extend(common(&location, dir.path(), "bad"));
    let (code, d) = ghl(
        &sb,
        cmd(
            &["bulk", "workflow-remove", "--workflow", "NoSuchWorkflow"],
            tail,
        ),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(2), "{d}");
    assert!(d.contains("Workflow not found"), "{d}");
    sb.shutdown().await;
}

/// Requests to one route, whatever they were answered.
fn requests_to(sb: &Sandbox, route: &str) -> u64 {
    sb.stats()
        .by_route
        .get(route)
        .map_or(0, |m| m.values().sum())
}

/// Delete needs `--yes` (neither a run without it nor a dry run deletes anything); with it the
/// contacts gone from the sandbox are exactly the listed ones, each deleted by one request, and
/// the report names each once. A rerun of the finished job sends no request to delete and
/// deletes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_needs_yes_and_deletes_exactly_the_list() {
    const DELETE: &str = "DELETE /contacts/{contactId}";
    let sb = sandbox(quiet_config(200)).await;
    let location = sb.location_ids()[0].clone();
    let live = || -> BTreeSet<String> { sb.store().contact_ids(&location).into_iter().collect() };
    let before = live();
    assert_eq!(before.len(), 200);
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = sb.store().contact_ids(&location)[..25].to_vec();
    let listed: BTreeSet<String> = ids.iter().cloned().collect();
    let list = dir.path().join("ids.csv");
    id_list(&list, &ids);
    let base = |name: &str| {
        let mut t = vec!["--input".to_string(), list.display().to_string()];
        t.extend(common(&location, dir.path(), name));
        t
    };
    let (code, d) = ghl(&sb, cmd(&["bulk", "delete"], base("no")), dir.path()).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(d.contains("--yes"), "{d}");
    let (code, d) = ghl(
        &sb,
        cmd(&["bulk", "delete", "--dry-run"], base("dry")),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(live(), before, "neither deletes anything");
    assert_eq!(requests_to(&sb, DELETE), 0);
    let yes = cmd(&["bulk", "delete", "--yes"], base("yes"));
    let (code, d) = ghl(&sb, yes.clone(), dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    let after = live();
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(gone, listed, "exactly the listed contacts are gone");
    assert!(ids.iter().all(|id| sb.store().contact(id).is_none()));
    assert_eq!(
        sb.stats().written("contact_delete"),
        25,
        "each deleted once"
    );
    assert_eq!(requests_to(&sb, DELETE), 25, "one request each");
    let (ok, failed) = reported(&dir.path().join("yes"));
    assert_eq!(ok, listed);
    assert!(failed.is_empty(), "{failed:?}");

    let (code, d) = ghl(&sb, yes, dir.path()).await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(
        requests_to(&sb, DELETE),
        25,
        "the rerun sends no delete: {d}"
    );
    assert_eq!(sb.stats().written("contact_delete"), 25);
    assert_eq!(live(), after, "the rerun deletes nothing more");
    assert_eq!(reported(&dir.path().join("yes")), (listed, BTreeMap::new()));
    sb.shutdown().await;
}
