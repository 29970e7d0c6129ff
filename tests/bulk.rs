//! `ghl-etl bulk` end to end against the sandbox: enrolments sent at most once under faults,
//! followers, the business of many contacts by search, and delete (only with `--yes`).

use std::path::Path;

use crate::util::{ghl_on as ghl, quiet_config, report_rows, sandbox};

/// A list of contact ids, one a row.
fn id_list(path: &Path, ids: &[String]) {
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

/// 120 contacts (and one unknown id) into a workflow with 5% faults: no contact is enrolled
/// twice, every row succeeded is enrolled, succeeded + failed = rows; a rerun sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_enrolment_is_sent_at_most_once_under_faults() {
    let mut cfg = quiet_config(300);
    cfg.fault_rate = 0.05;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let workflow = sb.store().workflow_ids(&location)[0].clone();
    let mut ids: Vec<String> = sb.store().contact_ids(&location)[..120].to_vec();
    ids.push("NoSuchContact0000001".into());
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
    let sent = sb.stats().written("workflow_add");
    assert!(sent <= 120, "each contact enrolled at most once: {sent}");
    let ok = report_rows(&dir.path().join("wf"), "succeeded.csv");
    let failed = report_rows(&dir.path().join("wf"), "failed.csv");
    assert_eq!(ok.len() + failed.len(), ids.len());
    for row in &ok {
        let id = &row[4];
        assert!(sb.store().workflows_of(id).contains(&workflow), "{id}");
    }
    assert!(
        failed
            .iter()
            .any(|r| r[r.len() - 1].contains("NoSuchContact0000001")),
        "{failed:?}"
    );
    let (code, d) = ghl(&sb, args, dir.path()).await;
    assert_eq!(code, Some(1), "{d}");
    assert_eq!(
        sb.stats().written("workflow_add"),
        sent,
        "a rerun enrols no one again"
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

/// Delete needs `--yes` (a dry run does not); with it the listed contacts are gone and a rerun
/// after a kill-free finish deletes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_needs_yes_and_deletes_exactly_the_list() {
    let sb = sandbox(quiet_config(200)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = sb.store().contact_ids(&location)[..25].to_vec();
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
    assert_eq!(
        sb.store().contact_ids(&location).len(),
        200,
        "a dry run deletes nothing"
    );
    let (code, d) = ghl(
        &sb,
        cmd(&["bulk", "delete", "--yes"], base("yes")),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    let left = sb.store().contact_ids(&location);
    assert_eq!(left.len(), 175);
    assert!(ids.iter().all(|id| !left.contains(id)));
    assert_eq!(
        report_rows(&dir.path().join("yes"), "succeeded.csv").len(),
        25
    );
    sb.shutdown().await;
}
