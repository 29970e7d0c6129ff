//! What the row-job runner promises every row job (tag and bulk here; load in `load`): a
//! signal stops it after the rows in flight with exit 130, a spent daily budget with exit 4,
//! and the rerun resumes the rows not settled, sending nothing twice.

use std::path::Path;

use crate::util::{ghl_on as ghl, quiet_config, report_rows, sandbox, signal_when};

const BULK_TAGS: &str = "POST /contacts/bulk/tags/update/{type}";

fn id_list(path: &Path, ids: &[String]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["contact_id"]).unwrap();
    for id in ids {
        w.write_record([id]).unwrap();
    }
    w.flush().unwrap();
}

fn args(head: &[&str], list: &Path, location: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let (state, report) = (dir.join("state.sqlite"), dir.join("report"));
    let tail = [
        "--input",
        &list.display().to_string(),
        "--location",
        location,
        "--state",
        &state.display().to_string(),
        "--report",
        &report.display().to_string(),
        "--retry-max-delay",
        "0.2",
    ]
    .map(str::to_string);
    (head.iter().map(|s| s.to_string()))
        .chain(tail)
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

fn bulk_tag_requests(sb: &ghl_etl::sandbox::Sandbox) -> u64 {
    sb.stats()
        .by_route
        .get(BULK_TAGS)
        .map_or(0, |m| m.values().sum())
}

fn tagged(sb: &ghl_etl::sandbox::Sandbox, id: &str, tag: &str) -> bool {
    let contact = sb.store().contact(id).unwrap();
    contact["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str() == Some(tag))
}

/// Ctrl-C (SIGINT) and SIGTERM mid-run: exit 130 or 143 after the bulk request in flight; the rerun
/// tags the rest, and across both runs each group of 100 contacts went out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_stops_on_a_signal_and_the_rerun_sends_nothing_twice() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let sb = sandbox(quiet_config(1_000)).await;
        let location = sb.location_ids()[0].clone();
        let ids = sb.store().contact_ids(&location);
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("ids.csv");
        id_list(&list, &ids);
        let head = ["tag", "--add", "spring"];
        let slow = args(&head, &list, &location, dir.path(), &["--rate", "4/1s"]);
        let (code, stderr) = signal_when(&sb, slow, dir.path(), signal, |s| {
            s.written("bulk_tags_add") >= 200
        })
        .await;
        assert_eq!(code, Some(128 + signal), "signal {signal}: {stderr}");
        assert!(stderr.contains("a rerun resumes"), "{stderr}");
        let first = bulk_tag_requests(&sb);
        assert!(
            (2..10).contains(&first),
            "stopped mid-run: {first} requests"
        );
        let settled = report_rows(&dir.path().join("report"), "succeeded.csv").len() as u64;
        assert_eq!(settled, first * 100, "every answered row was recorded");
        let (code, d) = ghl(
            &sb,
            args(&head, &list, &location, dir.path(), &[]),
            dir.path(),
        )
        .await;
        assert_eq!(code, Some(0), "{d}");
        assert_eq!(
            bulk_tag_requests(&sb),
            10,
            "1,000 contacts in 10 requests, none twice"
        );
        let untagged: Vec<&String> = ids.iter().filter(|id| !tagged(&sb, id, "spring")).collect();
        assert!(untagged.is_empty(), "{untagged:?}");
        assert_eq!(
            report_rows(&dir.path().join("report"), "succeeded.csv").len(),
            1_000
        );
    }
}

/// SIGINT while enrolling: the enrolments in flight finish and are recorded, none is left
/// "sending"; the rerun enrols the rest, and every contact is enrolled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_enrolment_interrupted_then_rerun_enrols_each_contact_once() {
    let sb = sandbox(quiet_config(200)).await;
    let location = sb.location_ids()[0].clone();
    let workflow = sb.store().workflow_ids(&location)[0].clone();
    let ids: Vec<String> = sb.store().contact_ids(&location)[..60].to_vec();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    id_list(&list, &ids);
    let head = ["bulk", "workflow-add", "--workflow", &workflow];
    let slow = args(&head, &list, &location, dir.path(), &["--rate", "10/1s"]);
    let (code, stderr) = signal_when(&sb, slow, dir.path(), libc::SIGINT, |s| {
        s.written("workflow_add") >= 10
    })
    .await;
    assert_eq!(code, Some(130), "{stderr}");
    let first = sb.stats().written("workflow_add");
    assert!(first < 60, "stopped mid-run: {first}");
    let failed = report_rows(&dir.path().join("report"), "failed.csv");
    assert!(
        failed.is_empty(),
        "nothing left as a lost answer: {failed:?}"
    );
    let (code, d) = ghl(
        &sb,
        args(&head, &list, &location, dir.path(), &[]),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(
        sb.stats().written("workflow_add"),
        60,
        "60 enrolments in all"
    );
    for id in &ids {
        assert_eq!(sb.store().workflows_of(id), vec![workflow.clone()], "{id}");
    }
}

/// A daily budget that runs out mid-run stops tag and bulk with exit 4, the rows not yet
/// settled are not failed, and the rerun (with budget again) finishes them, sending nothing
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_budget_stops_tag_and_bulk_with_exit_4_and_the_rerun_resumes() {
    let mut cfg = quiet_config(1_000);
    cfg.daily_limit = 100_000;
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let ids = sb.store().contact_ids(&location);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    id_list(&list, &ids);
    // The client stops once the budget left is down to its reserve: 4 requests in.
    let reserve = (100_000 - 4).to_string();
    let head = ["tag", "--add", "summer"];
    let low = ["--daily-reserve", reserve.as_str()];
    let (code, d) = ghl(
        &sb,
        args(&head, &list, &location, dir.path(), &low),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(4), "{d}");
    assert!(
        report_rows(&dir.path().join("report"), "failed.csv").is_empty(),
        "{d}"
    );
    let first = bulk_tag_requests(&sb);
    assert!((1..10).contains(&first), "{first}");
    let full = ["--daily-reserve", "0"];
    let (code, d) = ghl(
        &sb,
        args(&head, &list, &location, dir.path(), &full),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(bulk_tag_requests(&sb), 10, "none sent twice");
    assert!(ids.iter().all(|id| tagged(&sb, id, "summer")));

    let workflow = sb.store().workflow_ids(&location)[0].clone();
    let few: Vec<String> = ids[..30].to_vec();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.csv");
    id_list(&list, &few);
    let spent = sb.stats().by_location[&location];
    let reserve = (100_000 - spent - 10).to_string();
    let head = ["bulk", "workflow-add", "--workflow", &workflow];
    let low = ["--daily-reserve", reserve.as_str(), "--concurrency", "1"];
    let (code, d) = ghl(
        &sb,
        args(&head, &list, &location, dir.path(), &low),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(4), "{d}");
    assert!(
        report_rows(&dir.path().join("report"), "failed.csv").is_empty(),
        "{d}"
    );
    let first = sb.stats().written("workflow_add");
    assert!((1..30).contains(&first), "{first}");
    let (code, d) = ghl(
        &sb,
        args(&head, &list, &location, dir.path(), &full),
        dir.path(),
    )
    .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(
        sb.stats().written("workflow_add"),
        30,
        "each of 30 enrolled once"
    );
    for id in &few {
        assert_eq!(sb.store().workflows_of(id), vec![workflow.clone()], "{id}");
    }
}
