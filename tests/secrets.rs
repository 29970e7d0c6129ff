//! Secrets and personal data (issue 10): every command, run in the ways runs fail, with
//! recognisable tokens and OAuth secrets, leaves none of them in any byte it writes: stdout,
//! stderr at `-vv --trace-bodies`, the state database, reports and output files. And every file
//! and folder a run creates is owner-only unless `--umask` says otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ghl_etl::sandbox::{SandboxConfig, TokenSpec, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};

use crate::util::{describe, quiet_config, run_bin, sandbox};

const SCOPES: &str = "contacts.readonly,contacts.write,locations/tasks.readonly,locations/customFields.readonly,locations/customFields.write,businesses.readonly";
/// A working token, one the sandbox does not know, one barred from the first location.
const GOOD: &str = "tok-SECRET-good-5f0c2e9a71";
const BAD: &str = "tok-SECRET-bad-c4d1e08b33";
const FORBIDDEN: &str = "tok-SECRET-403-9ab77e21f0";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inputs")
}

fn token(spec: &str) -> TokenSpec {
    spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Where each secret occurs in `haystack`, as "name in place".
fn hits(secrets: &[(&str, String)], place: &str, haystack: &[u8]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, s)| haystack.windows(s.len()).any(|w| w == s.as_bytes()))
        .map(|(name, _)| format!("{name} in {place}"))
        .collect()
}

/// The arguments of each command for one run in `work` against `location`.
fn commands(location: &str, user: &str, work: &Path) -> Vec<Vec<String>> {
    let w = |p: &str| work.join(p).display().to_string();
    let contacts = fixtures().join("valid/bom.csv").display().to_string();
    let mapping = fixtures().join("load.toml").display().to_string();
    std::fs::create_dir_all(work).unwrap();
    let tags = w("tags.csv");
    let (out, out_state, load_state, load_report, tag_state, tag_report) = (
        w("out"),
        w("out/.state.sqlite"),
        w("load.sqlite"),
        w("load-report"),
        w("tag.sqlite"),
        w("tag-report"),
    );
    let (bulk_state, bulk_report) = (w("bulk.sqlite"), w("bulk-report"));
    std::fs::write(
        &tags,
        "email,add_tags\nok1@example.org,vip\nnobody@example.org,vip\n",
    )
    .unwrap();
    let common = [
        "--max-attempts",
        "2",
        "--retry-max-elapsed",
        "2",
        "--timeout",
        "5",
        "-vv",
        "--trace-bodies",
    ];
    let mut cmds: Vec<Vec<&str>> = vec![
        vec![
            "export",
            "--location",
            location,
            "--out",
            &out,
            "--state",
            &out_state,
            "--format",
            "csv",
            "--rate",
            "off",
        ],
        vec![
            "load",
            "--location",
            location,
            "--contacts",
            &contacts,
            "--mapping",
            &mapping,
            "--state",
            &load_state,
            "--report",
            &load_report,
            "--rate",
            "off",
            // One row at a time, so that a request follows the first (see `run_expiring`).
            "--concurrency",
            "1",
        ],
        vec![
            "tag",
            "--location",
            location,
            "--input",
            &tags,
            "--state",
            &tag_state,
            "--report",
            &tag_report,
            "--rate",
            "off",
        ],
        vec![
            "bulk",
            "followers-add",
            "--user",
            user,
            "--location",
            location,
            "--input",
            &tags,
            "--state",
            &bulk_state,
            "--report",
            &bulk_report,
            "--rate",
            "off",
        ],
        vec!["auth", "check", "--location", location, "--write"],
        vec!["mapping", "check", &mapping, "--location", location],
    ];
    let owned: Vec<Vec<String>> = cmds
        .iter_mut()
        .map(|c| {
            c.extend(common);
            c.iter().map(|s| s.to_string()).collect()
        })
        .collect();
    owned
}

/// One failure mode: how the command is pointed at the API.
struct Mode {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    /// OAuth: the refresh token file (rewritten by every refresh).
    refresh_file: Option<PathBuf>,
    /// The exit codes, and a piece of stderr, that show the failure happened: a run that
    /// never met it proves nothing about what it prints.
    codes: &'static [i32],
    shows: &'static str,
}

/// The routes of each command's first API request: held in the OAuth mode while the token
/// clock moves a day on, so that the access token in the client's hand expires mid-run.
const FIRST_ROUTES: [&str; 4] = [
    "GET /locations/{locationId}/customFields",
    "GET /contacts/",
    "POST /contacts/upsert",
    "POST /contacts/search",
];

/// Runs the command; once its first request arrives at the sandbox (and is let through),
/// every access token issued so far expires, so its next request is answered 401.
async fn run_expiring(
    sb: &ghl_etl::sandbox::Sandbox,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    cwd: PathBuf,
) -> (std::process::Output, String) {
    let hold = sb.hold(&FIRST_ROUTES);
    let expire = async move {
        hold.arrived(1).await;
        sb.advance_clock(Duration::from_secs(86_400));
        hold.release();
        std::future::pending::<()>().await
    };
    tokio::select! {
        out = run(args, env, cwd) => out,
        () = expire => unreachable!("pending"),
    }
}

async fn run(
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    cwd: PathBuf,
) -> (std::process::Output, String) {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run_bin(&a, &e, &cwd);
        let d = describe(&a, &cwd, &out);
        (out, d)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_oauth_secret_reaches_any_output_in_any_failure_mode() {
    let cfg = SandboxConfig {
        locations: 2,
        tokens: vec![
            token(&format!("{GOOD}={SCOPES}")),
            token(&format!("{FORBIDDEN}={SCOPES}@1")),
        ],
        // Access tokens live a day, so the client trusts the one in its hand; the OAuth mode
        // makes it expire mid-run ([`run_expiring`]). (A lifetime shorter than the client's
        // refresh margin would only make it refresh before every request, never meet a 401.)
        latency: Duration::from_millis(20),
        ..quiet_config(150)
    };
    let sb = sandbox(cfg).await;
    let location = sb.location_ids()[0].clone();
    let user = sb.store().user_ids(&location)[0].clone();
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on: the network gone.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let creds = tmp.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    let refresh = sb.issue_refresh_token(&SCOPES.split(',').collect::<Vec<_>>());
    let mut secrets: Vec<(&str, String)> = vec![
        ("the good token", GOOD.into()),
        ("the bad token", BAD.into()),
        ("the 403 token", FORBIDDEN.into()),
        ("the OAuth client secret", OAUTH_CLIENT_SECRET.into()),
        ("the first refresh token", refresh.clone()),
    ];
    let url = sb.url();
    let static_env = |t: &str, base: &str| {
        vec![
            ("GHL_BASE_URL", base.to_string()),
            ("GHL_TOKEN", t.to_string()),
        ]
    };
    let mut modes = vec![
        Mode {
            name: "bad token (401)",
            env: static_env(BAD, &url),
            refresh_file: None,
            codes: &[ghl_etl::exit::AUTH],
            shows: "unauthorized (HTTP 401)",
        },
        Mode {
            name: "no access to the location (403)",
            env: static_env(FORBIDDEN, &url),
            refresh_file: None,
            codes: &[ghl_etl::exit::AUTH],
            shows: "forbidden (HTTP 403)",
        },
        Mode {
            name: "network gone",
            env: static_env(GOOD, &format!("http://{closed}")),
            refresh_file: None,
            // A load fails its rows and goes on; the other commands stop.
            codes: &[ghl_etl::exit::RECORD_FAILURES, ghl_etl::exit::API],
            shows: "Connection refused",
        },
        Mode {
            name: "injected panic",
            env: [
                static_env(GOOD, &url),
                vec![("GHL_ETL_FAILPOINT", "panic-in-request".into())],
            ]
            .concat(),
            refresh_file: None,
            // A panic in the main task ends the process with 101; the export reports a
            // pipeline task's as a fatal error.
            codes: &[ghl_etl::exit::USAGE, 101],
            shows: "injected panic (GHL_ETL_FAILPOINT=panic-in-request)",
        },
        Mode {
            name: "working token, bodies traced",
            env: static_env(GOOD, &url),
            refresh_file: None,
            codes: &[ghl_etl::exit::OK, ghl_etl::exit::RECORD_FAILURES],
            shows: "status=200",
        },
    ];
    let rt_file = creds.join("refresh-token");
    std::fs::write(&rt_file, &refresh).unwrap();
    modes.push(Mode {
        name: "OAuth, access token expiring mid-run (401, refresh)",
        env: vec![
            ("GHL_BASE_URL", url.clone()),
            ("GHL_CLIENT_ID", OAUTH_CLIENT_ID.into()),
            ("GHL_CLIENT_SECRET", OAUTH_CLIENT_SECRET.into()),
            ("GHL_REFRESH_TOKEN_FILE", rt_file.display().to_string()),
        ],
        refresh_file: Some(rt_file.clone()),
        codes: &[ghl_etl::exit::OK, ghl_etl::exit::RECORD_FAILURES],
        shows: "status=200",
    });

    let mut runs = 0;
    let mut bytes_searched = 0usize;
    let mut found = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        for (c, args) in commands(&location, &user, &tmp.path().join(format!("m{m}")))
            .into_iter()
            .enumerate()
        {
            let work = tmp.path().join(format!("m{m}"));
            std::fs::create_dir_all(&work).unwrap();
            sb.reset_stats();
            let (out, d) = match mode.refresh_file {
                Some(_) => run_expiring(&sb, args.clone(), mode.env.clone(), work.clone()).await,
                None => run(args.clone(), mode.env.clone(), work.clone()).await,
            };
            runs += 1;
            if let Some(f) = &mode.refresh_file {
                // Each rotation's refresh token is a secret too.
                let now = std::fs::read_to_string(f).unwrap();
                if !secrets.iter().any(|(_, s)| s == now.trim()) {
                    secrets.push(("a rotated refresh token", now.trim().to_string()));
                }
            }
            let what = format!("{} / {}", mode.name, args[0]);
            let code = out
                .status
                .code()
                .unwrap_or_else(|| panic!("{what}: killed\n{d}"));
            assert!(
                mode.codes.contains(&code)
                    && String::from_utf8_lossy(&out.stderr).contains(mode.shows),
                "{what}: the failure did not happen as meant: exit {code}, not {:?}, or no {:?} \
                 in stderr\n{d}",
                mode.codes,
                mode.shows
            );
            if mode.refresh_file.is_some() {
                // The token expired in the client's hand: a 401 answered by a refresh (one
                // more token request). `mapping check` sends one request, so it cannot meet one.
                let stats = sb.stats();
                let tokens: u64 = stats.by_route["POST /oauth/token"].values().sum();
                let single = args[0] == "mapping";
                assert_eq!(
                    (stats.status_count(401) >= 1, tokens >= 2),
                    (!single, !single),
                    "{what}: {tokens} token requests, answers {:?}\n{d}",
                    stats.by_route
                );
            }
            if mode.name.starts_with("working") && c == 0 {
                let log = String::from_utf8_lossy(&out.stderr);
                assert!(
                    log.contains("HTTP.") && log.contains("status=200"),
                    "{what}: -vv traces HTTP\n{d}"
                );
                assert!(
                    log.contains("HTTP body."),
                    "{what}: --trace-bodies traces bodies\n{d}"
                );
            }
            bytes_searched += out.stdout.len() + out.stderr.len();
            found.extend(hits(&secrets, &format!("{what}: stdout"), &out.stdout));
            found.extend(hits(&secrets, &format!("{what}: stderr"), &out.stderr));
        }
        for f in files(&tmp.path().join(format!("m{m}"))) {
            let bytes = std::fs::read(&f).unwrap();
            bytes_searched += bytes.len();
            found.extend(hits(
                &secrets,
                &format!("{}: {}", mode.name, f.display()),
                &bytes,
            ));
        }
    }
    assert_eq!(runs, 36);
    assert!(bytes_searched > 10_000, "{bytes_searched} bytes searched");
    assert!(found.is_empty(), "secrets found:\n{}", found.join("\n"));
    eprintln!(
        "{runs} runs, {} secrets, {bytes_searched} bytes searched, 0 occurrences",
        secrets.len()
    );
    sb.shutdown().await;
}

/// Every file and folder under `dir` (not `dir` itself) with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            out.extend(modes(&p));
        }
        out.push((p, mode));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_a_run_creates_are_owner_only_and_umask_changes_it() {
    let sb = sandbox(quiet_config(30)).await;
    let location = sb.location_ids()[0].clone();
    let user = sb.store().user_ids(&location)[0].clone();
    let url = sb.url();
    for (umask, file_mode, dir_mode) in [(None, 0o600, 0o700), (Some("027"), 0o640, 0o750)] {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().to_path_buf();
        let env = vec![
            ("GHL_BASE_URL", url.clone()),
            ("GHL_TOKEN", ghl_etl::sandbox::DEFAULT_TOKEN.to_string()),
        ];
        // export, load, tag and bulk: the commands that write files.
        for args in commands(&location, &user, &work).into_iter().take(4) {
            let mut args: Vec<String> = args
                .into_iter()
                .filter(|a| a != "-vv" && a != "--trace-bodies")
                .collect();
            if let Some(m) = umask {
                args.extend(["--umask".to_string(), m.to_string()]);
            }
            let (out, d) = run(args, env.clone(), work.clone()).await;
            assert!(matches!(out.status.code(), Some(0) | Some(1)), "{d}");
        }
        let all = modes(&work);
        let names: Vec<String> = all
            .iter()
            .map(|(p, _)| p.strip_prefix(&work).unwrap().display().to_string())
            .collect();
        for want in [
            "out/.state.sqlite",
            "out/_manifest.json",
            "load.sqlite",
            "load-report/succeeded.csv",
            "tag-report/failed.csv",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} not among {names:?}"
            );
        }
        for (p, mode) in all {
            // The test writes tags.csv itself, before any run.
            if p.ends_with("tags.csv") {
                continue;
            }
            let want = if p.is_dir() { dir_mode } else { file_mode };
            assert_eq!(
                mode,
                want,
                "{} is {mode:o}, not {want:o} (umask {umask:?})",
                p.display()
            );
        }
    }
    sb.shutdown().await;
}
