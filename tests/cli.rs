//! The binary as a user runs it: exit codes, messages, and secrets kept out of every output.

use crate::util::{describe, quiet_config, run_bin, sandbox};
use ghl_etl::sandbox::{SandboxConfig, TokenSpec};

async fn run(args: Vec<String>, envs: Vec<(String, String)>) -> (std::process::Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = run_bin(&a, &e, &path);
        let d = describe(&a, &path, &out);
        drop(dir);
        (out, d)
    })
    .await
    .unwrap()
}

fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_never_prints_the_token() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let secret = "pit-0d4f-SECRET-token-value";
    for extra in [
        vec![],
        vec!["-vv".to_string()],
        vec!["--log-format".into(), "json".into(), "-vv".into()],
    ] {
        let mut args: Vec<String> = vec![
            "auth".into(),
            "check".into(),
            "--location".into(),
            location.clone(),
            "--write".into(),
        ];
        args.extend(extra);
        let (out, d) = run(
            args,
            vec![
                ("GHL_TOKEN".into(), secret.into()),
                ("GHL_BASE_URL".into(), sb.url()),
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(3), "{d}");
        let text = all_output(&out);
        assert!(
            !text.contains(secret) && !text.contains("SECRET-token"),
            "token leaked:\n{d}"
        );
        assert!(text.contains("GHL_TOKEN"), "names the token to fix:\n{d}");
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_never_shows_secret_values() {
    let secret = "super-secret-client-secret-77";
    for args in [
        vec!["export", "--help"],
        vec!["auth", "check", "--help"],
        vec!["--help"],
    ] {
        let (out, d) = run(
            args.iter().map(|s| s.to_string()).collect(),
            vec![
                ("GHL_TOKEN".into(), secret.into()),
                ("GHL_CLIENT_SECRET".into(), secret.into()),
            ],
        )
        .await;
        assert!(out.status.success(), "{d}");
        assert!(!all_output(&out).contains(secret), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_check_reports_each_scope() {
    let mut cfg: SandboxConfig = quiet_config(5);
    cfg.tokens = vec!["limited=contacts.readonly".parse::<TokenSpec>().unwrap()];
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();

    let check = |token: &str| {
        let env = vec![
            ("GHL_BASE_URL".to_string(), sb.url()),
            ("GHL_TOKEN".to_string(), token.to_string()),
        ];
        let args = vec![
            "auth".into(),
            "check".into(),
            "--location".into(),
            location.clone(),
            "--write".into(),
        ];
        run(args, env)
    };
    let (out, d) = check(ghl_etl::sandbox::DEFAULT_TOKEN).await;
    assert_eq!(out.status.code(), Some(0), "{d}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    for scope in [
        "contacts.readonly",
        "locations/tasks.readonly",
        "contacts.write",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(scope) && l.contains("ok")),
            "{scope} ok:\n{d}"
        );
    }

    let (out, d) = check("limited").await;
    assert_eq!(out.status.code(), Some(3), "{d}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("contacts.readonly") && l.contains("ok")),
        "{d}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("contacts.write") && l.contains("missing")),
        "{d}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("locations/tasks.readonly") && l.contains("missing")),
        "{d}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_remote_host_is_a_usage_error() {
    let (out, d) = run(
        vec![
            "auth".into(),
            "check".into(),
            "--location".into(),
            "L".into(),
            "--base-url".into(),
            "http://example.com".into(),
        ],
        vec![("GHL_TOKEN".into(), "t".into())],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{d}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing plain http://"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mapping_is_refused_with_file_line_column_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "version = 1\n[contacts]\n[[contacts.columns]]\nname = \"email\"\ntransform = [\"lowercase\"]\n[[contacts.columns]]\nname = \"x\"\ntype = \"strng\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let (out, d) = run(vec!["mapping".into(), "check".into(), path.clone()], vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{d}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains(&format!("{path}:5:")),
        "names file and line:\n{d}"
    );
    assert!(err.contains("did you mean `lower`"), "{d}");
    assert!(!err.contains("error: error:"), "one `error:` a line:\n{d}");
    assert!(
        err.contains("strng") && err.contains("did you mean `string`"),
        "every error at once:\n{d}"
    );
    // The export refuses the same file before making any request.
    let (out, d) = run(
        vec![
            "export".into(),
            "--location".into(),
            "L".into(),
            "--out".into(),
            dir.path().join("o").display().to_string(),
            "--mapping".into(),
            path,
        ],
        vec![
            ("GHL_TOKEN".into(), "t".into()),
            ("GHL_BASE_URL".into(), "http://127.0.0.1:9".into()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_mappings_pass_mapping_check() {
    for m in ["analytics", "ecosend", "ecologi", "tagging"] {
        let path = format!("{}/mappings/{m}.toml", env!("CARGO_MANIFEST_DIR"));
        let (out, d) = run(vec!["mapping".into(), "check".into(), path], vec![]).await;
        assert_eq!(out.status.code(), Some(0), "{d}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("contacts ("),
            "{d}"
        );
    }
}

/// A bad token: one error, naming what to fix; no advice to rerun (a rerun cannot help).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_reported_once_with_what_to_fix() {
    let sb = sandbox(quiet_config(20)).await;
    let out_dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "export",
        "--location",
        &sb.location_ids()[0],
        "--out",
        &out_dir.path().display().to_string(),
        "--state",
        &out_dir.path().join("s.sqlite").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let envs = vec![
        ("GHL_TOKEN".to_string(), "not-a-token".to_string()),
        ("GHL_BASE_URL".to_string(), sb.url()),
    ];
    let (out, d) = run(args, envs).await;
    assert_eq!(out.status.code(), Some(3), "{d}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("HTTP 401").count(), 1, "{d}");
    assert!(
        stderr.contains("GHL_TOKEN"),
        "names the variable to fix: {d}"
    );
    assert!(
        !stderr.to_lowercase().contains("rerun"),
        "no false advice: {d}"
    );
    sb.shutdown().await;
}

/// Logs written to a file (cron) carry no colour codes; stderr here is a pipe, not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_off_a_terminal_have_no_escape_codes() {
    let sb = sandbox(quiet_config(30)).await;
    let out_dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "export",
        "-vv",
        "--location",
        &sb.location_ids()[0],
        "--out",
        &out_dir.path().display().to_string(),
        "--state",
        &out_dir.path().join("s.sqlite").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let envs = vec![
        (
            "GHL_TOKEN".to_string(),
            ghl_etl::sandbox::DEFAULT_TOKEN.to_string(),
        ),
        ("GHL_BASE_URL".to_string(), sb.url()),
    ];
    let (out, d) = run(args, envs).await;
    assert_eq!(out.status.code(), Some(0), "{d}");
    let lines = out.stderr.split(|b| *b == b'\n').count();
    assert!(lines > 10, "-vv logs something: {d}");
    assert!(
        !out.stderr.contains(&0x1b),
        "an escape byte in the log: {d}"
    );
    sb.shutdown().await;
}

/// `completions` and `man` print what shells and `man` read.
#[test]
fn completions_and_man_page_print() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["completions", "bash"], "complete -F _ghl__etl"),
        (vec!["completions", "zsh"], "#compdef ghl-etl"),
        (vec!["completions", "fish"], "complete -c ghl-etl"),
        (vec!["man"], ".TH ghl-etl"),
    ] {
        let out = run_bin(&args, &[], dir.path());
        let d = describe(&args, dir.path(), &out);
        assert!(out.status.success(), "{d}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "lacks {needle:?}: {d}");
        assert!(text.contains("export"), "{d}");
    }
}

/// With `--log-format json` every line on stderr is JSON, the final error included, so a log
/// shipper never meets a plain-text line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_stay_json_to_the_last_line() {
    let sb = sandbox(quiet_config(5)).await;
    let location = sb.location_ids()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let state = dir.path().join("s.sqlite").display().to_string();
    let args = [
        "export",
        "--location",
        &location,
        "--out",
        &out,
        "--state",
        &state,
        "--log-format",
        "json",
    ];
    let (out, d) = run(
        args.iter().map(|s| s.to_string()).collect(),
        vec![
            ("GHL_TOKEN".into(), "wrong-token".into()),
            ("GHL_BASE_URL".into(), sb.url()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{d}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "{d}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{d}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["fields"]["exit_code"], 3, "{d}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("GHL_TOKEN"),
        "{d}"
    );
    sb.shutdown().await;
}

/// A token no HTTP header can carry (a stray control character) is a usage error at once,
/// naming where it came from and never showing it; an API that cannot be reached at all is
/// said to be unreachable, not a token without the scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_token_or_an_unreachable_api_is_named_as_such() {
    let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let check = args(&["auth", "check", "--location", "L1"]);
    let token = "pit-abc\u{7}SECRETdef";
    let env = vec![
        ("GHL_TOKEN".to_string(), token.to_string()),
        ("GHL_BASE_URL".to_string(), "http://127.0.0.1:9".to_string()),
    ];
    let (out, d) = run(check.clone(), env).await;
    assert_eq!(out.status.code(), Some(2), "{d}");
    let text = all_output(&out);
    assert!(
        text.contains("the token in GHL_TOKEN holds a character an HTTP header cannot carry"),
        "{d}"
    );
    assert!(!text.contains("SECRET"), "{d}");
    // Port 9 (discard) has no listener: the connection is refused.
    let env = vec![
        ("GHL_TOKEN".to_string(), "pit-fine".to_string()),
        ("GHL_BASE_URL".to_string(), "http://127.0.0.1:9".to_string()),
    ];
    let mut quick = check;
    quick.extend(args(&["--max-attempts", "1"]));
    let (out, d) = run(quick, env).await;
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(5), "{d}");
    assert!(text.contains("cannot be reached"), "{d}");
    assert!(!text.contains("cannot read contacts"), "{d}");
}

/// `--help` leads with the job: each command's own flags come first, the connection flags
/// after them under their own heading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_leads_with_the_commands_own_flags() {
    for (command, own) in [
        (vec!["export"], "--out"),
        (vec!["load"], "--contacts"),
        (vec!["tag"], "--input"),
        (vec!["auth", "check"], "--write"),
    ] {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.push("--help".into());
        let (out, d) = run(args, vec![]).await;
        assert_eq!(out.status.code(), Some(0), "{d}");
        let help = String::from_utf8_lossy(&out.stdout);
        let at = |needle: &str| {
            help.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {command:?}: {help}"))
        };
        let heading = at("\nConnection (");
        assert!(
            at(own) < heading,
            "{command:?}: {own} before the connection flags"
        );
        assert!(
            at("--base-url") > heading,
            "{command:?}: --base-url under its heading"
        );
    }
}
