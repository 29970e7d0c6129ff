//! SIGTERM (`docker stop`, a Kubernetes eviction) stops an export as Ctrl-C does: the work in
//! flight is committed or left for the rerun, `_locations.json` is written, and the run exits
//! 143; also when the binary is PID 1 of its PID namespace, as in a container without an init,
//! where a signal without a handler is ignored.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ghl_etl::sandbox::Sandbox;

use crate::util::*;

fn export_args(location: &str, dir: &Path) -> Vec<String> {
    let d = dir.display();
    [
        "export",
        "--location",
        location,
        "--out",
        &format!("{d}/out"),
        "--state",
        &format!("{d}/state.sqlite"),
        "--format",
        "ndjson",
        "--part-rows",
        "100",
        "--rate",
        "20/1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// After the stopped run: its location list is written, no manifest; the rerun finishes and
/// the contacts are every id once.
async fn rerun_completes(sb: &Sandbox, location: &str, dir: &Path, contacts: usize) {
    let out = dir.join("out");
    assert!(
        out.join("_locations.json").is_file(),
        "written on the way out"
    );
    assert!(
        !out.join("_manifest.json").exists(),
        "an unfinished export has no manifest"
    );
    let mut args = export_args(location, dir);
    let rate = args.len() - 1;
    args[rate] = "off".into();
    let (code, d) = ghl_on(sb, args, dir).await;
    assert_eq!(code, Some(0), "{d}");
    let mut ids = BTreeSet::new();
    let mut rows = 0;
    for entry in std::fs::read_dir(out.join("contacts")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.insert(v["id"].as_str().unwrap().to_string());
            rows += 1;
        }
    }
    assert_eq!(
        (rows, ids.len()),
        (contacts, contacts),
        "every contact once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_export_as_ctrl_c_does_with_exit_143() {
    let contacts = 1_000;
    let sb = sandbox(quiet_config(contacts)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let args = export_args(&location, dir.path());
    let (code, stderr) =
        signal_when(&sb, args, dir.path(), libc::SIGTERM, |s| s.requests >= 3).await;
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("Stopping (SIGTERM)"), "{stderr}");
    rerun_completes(&sb, &location, dir.path(), contacts).await;
    sb.shutdown().await;
}

/// The outside pid of the one child of `parent` (`unshare --fork`'s child, PID 1 inside).
fn only_child(parent: u32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let path = format!("/proc/{parent}/task/{parent}/children");
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(5)); // poll interval, not synchronisation
    }
    None
}

/// Whether this machine can make a PID namespace: as root, or through a user namespace.
fn unshare_prefix() -> Option<Vec<&'static str>> {
    let tries: [&[&'static str]; 2] = [
        &["--pid", "--fork", "--kill-child"],
        &[
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--kill-child",
        ],
    ];
    tries.into_iter().map(<[_]>::to_vec).find(|flags| {
        Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", "test $$ = 1"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_sigterm_still_stops_an_export() {
    let Some(flags) = unshare_prefix() else {
        // A container may forbid new namespaces; the handlers are the same code either way,
        // and the test above sends SIGTERM to the binary as an ordinary process.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: this machine cannot make a PID namespace (`unshare --pid --fork`)"
        );
        return;
    };
    let contacts = 1_000;
    let sb = sandbox(quiet_config(contacts)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.push(bin().display().to_string());
    args.extend(export_args(&location, dir.path()));
    let (code, stderr) = {
        let (sb2, cwd) = (&sb, dir.path());
        tokio::task::block_in_place(|| {
            let child = spawn_against(sb2, Path::new("unshare"), &args, cwd);
            let inner = only_child(child.id()).expect("unshare forked the export");
            wait_for_stats(sb2, |s| s.requests >= 3);
            // SAFETY: kill(2) on a process this test started (through unshare), not yet reaped.
            assert_eq!(
                unsafe { libc::kill(inner, libc::SIGTERM) },
                0,
                "the export was running"
            );
            let out = child.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    assert_eq!(code, Some(143), "PID 1 handles SIGTERM: {stderr}");
    assert!(stderr.contains("Stopping (SIGTERM)"), "{stderr}");
    rerun_completes(&sb, &location, dir.path(), contacts).await;
    sb.shutdown().await;
}
