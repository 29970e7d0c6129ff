//! Shared test helpers: start a sandbox on 127.0.0.1, build a client for it, run the binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use ghl_etl::api::{AuthConfig, Client, ClientConfig, RateSpec, RetryConfig};
use ghl_etl::sandbox::{RateLimit, Sandbox, SandboxConfig, DEFAULT_TOKEN};
use ghl_etl::secret::Secret;

/// A sandbox with no rate limit and no faults unless the test asks for them.
pub fn quiet_config(contacts: usize) -> SandboxConfig {
    SandboxConfig {
        contacts,
        rate_limit: None,
        fault_rate: 0.0,
        ..SandboxConfig::default()
    }
}

/// A sandbox burst limit written as `--rate-limit` takes it, e.g. `300/1s`.
pub fn sandbox_rate(s: &str) -> RateLimit {
    s.parse::<RateSpec>().expect("a rate such as 300/1s").into()
}

/// A sandbox that records every request, and checks them all against the official spec
/// (`traffic.rs`) when it is shut down or dropped: a test whose client sent anything the spec
/// does not allow fails, naming the request.
pub async fn sandbox(mut cfg: SandboxConfig) -> CheckedSandbox {
    cfg.record_requests = true;
    let sb = Sandbox::start(cfg)
        .await
        .expect("sandbox starts on 127.0.0.1:0");
    CheckedSandbox(Some(sb))
}

/// See [`sandbox`]. Derefs to the sandbox.
pub struct CheckedSandbox(Option<Sandbox>);

impl CheckedSandbox {
    /// Checks the traffic, then stops the server.
    pub async fn shutdown(mut self) {
        let sb = self.0.take().expect("not shut down yet");
        let checked = crate::traffic::check_traffic(&sb.recorded_requests());
        sb.shutdown().await;
        if let Err(e) = checked {
            panic!("{e}");
        }
    }
}

impl CheckedSandbox {
    /// For a test that sends requests the spec refuses on purpose (to see the sandbox refuse
    /// them too): exactly `n` of the recorded requests break the spec, then stop the server.
    pub async fn shutdown_expecting_violations(mut self, n: usize) {
        let sb = self.0.take().expect("not shut down yet");
        let recorded = sb.recorded_requests();
        sb.shutdown().await;
        let bad: Vec<_> = recorded
            .iter()
            .filter(|r| crate::traffic::check_request(r).is_err())
            .collect();
        assert_eq!(bad.len(), n, "requests that break the spec: {bad:#?}");
    }
}

impl std::ops::Deref for CheckedSandbox {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        self.0.as_ref().expect("not shut down yet")
    }
}

impl Drop for CheckedSandbox {
    fn drop(&mut self) {
        let Some(sb) = &self.0 else { return };
        if std::thread::panicking() {
            return;
        }
        if let Err(e) = crate::traffic::check_traffic(&sb.recorded_requests()) {
            panic!("{e}");
        }
    }
}

/// Retries fast enough for tests (the schedule's shape is the production one).
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 12,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(60),
    }
}

pub fn client_config(sb: &Sandbox, token: &str, rate: Option<RateSpec>) -> ClientConfig {
    let mut cfg = ClientConfig::new(sb.url(), AuthConfig::Static(Secret::new(token)));
    cfg.rate = rate;
    cfg.retry = fast_retry();
    cfg
}

pub fn client(sb: &Sandbox, rate: Option<RateSpec>) -> Client {
    Client::new(client_config(sb, DEFAULT_TOKEN, rate)).expect("client builds")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ghl-etl"))
}

/// Run the binary; on an unexpected status, panic with everything needed to see why.
pub fn run_bin(args: &[&str], envs: &[(&str, &str)], cwd: &std::path::Path) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("GHL_TOKEN")
        .env_remove("GHL_BASE_URL")
        .env_remove("GHL_LOCATION");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the ghl-etl binary runs")
}

pub fn describe(args: &[&str], cwd: &std::path::Path, out: &Output) -> String {
    format!(
        "command: ghl-etl {}\ncwd: {}\nstatus: {}\nstdout:\n```\n{}\n```\nstderr:\n```\n{}\n```",
        args.join(" "),
        cwd.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the binary against the sandbox with its token, off the async runtime; answers
/// (exit code, everything needed to see why).
pub async fn ghl_on(
    sb: &Sandbox,
    args: Vec<String>,
    cwd: &std::path::Path,
) -> (Option<i32>, String) {
    let (code, _, described) = ghl_stderr(sb, args, cwd).await;
    (code, described)
}

/// [`ghl_on`], answering stderr too: (exit code, stderr, everything needed to see why).
pub async fn ghl_stderr(
    sb: &Sandbox,
    args: Vec<String>,
    cwd: &std::path::Path,
) -> (Option<i32>, String, String) {
    let url = sb.url();
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs = [("GHL_BASE_URL", url.as_str()), ("GHL_TOKEN", DEFAULT_TOKEN)];
        let out = run_bin(&a, &envs, &cwd);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr, describe(&a, &cwd, &out))
    })
    .await
    .unwrap()
}

/// Starts the binary against the sandbox and SIGKILLs it as soon as `ready` holds of the
/// sandbox's write counters (polled), asserting it was still running then.
pub async fn kill_when(
    sb: &Sandbox,
    args: Vec<String>,
    cwd: &std::path::Path,
    ready: impl Fn(&ghl_etl::sandbox::Stats) -> bool + Send + 'static,
) {
    let (url, state, cwd) = (sb.url(), sb.state().clone(), cwd.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(bin())
            .args(&args)
            .current_dir(&cwd)
            .env("GHL_BASE_URL", &url)
            .env("GHL_TOKEN", DEFAULT_TOKEN)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !ready(&state.stats())
            && std::time::Instant::now() < deadline
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(2)); // poll interval, not synchronisation
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ghl-etl {args:?} ended before the kill point"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    })
    .await
    .unwrap()
}

/// The records of a report file (`succeeded.csv`, `failed.csv`); none when it was not written.
pub fn report_rows(dir: &std::path::Path, file: &str) -> Vec<csv::StringRecord> {
    match csv::Reader::from_path(dir.join(file)) {
        Ok(mut r) => r.records().map(Result::unwrap).collect(),
        Err(_) => Vec::new(),
    }
}

/// A CSV file's header and rows, as text.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Starts the binary against the sandbox, sends it `signal` (SIGINT, SIGTERM, ...) as soon as
/// `ready` holds of the sandbox's counters (polled), and waits for it to end; answers (exit
/// code, stderr).
#[cfg(unix)]
pub async fn signal_when(
    sb: &Sandbox,
    args: Vec<String>,
    cwd: &std::path::Path,
    signal: i32,
    ready: impl Fn(&ghl_etl::sandbox::Stats) -> bool + Send + 'static,
) -> (Option<i32>, String) {
    let (url, state, cwd) = (sb.url(), sb.state().clone(), cwd.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let child = Command::new(bin())
            .args(&args)
            .current_dir(&cwd)
            .env("GHL_BASE_URL", &url)
            .env("GHL_TOKEN", DEFAULT_TOKEN)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !ready(&state.stats()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2)); // poll interval, not synchronisation
        }
        let pid = child.id() as i32;
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "the child was running"
        );
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    })
    .await
    .unwrap()
}

/// Spawn `program args` against the sandbox (its URL and token in the environment), stderr
/// piped.
pub fn spawn_against(
    sb: &Sandbox,
    program: &std::path::Path,
    args: &[String],
    cwd: &std::path::Path,
) -> std::process::Child {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("GHL_BASE_URL", sb.url())
        .env("GHL_TOKEN", DEFAULT_TOKEN)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Poll the sandbox's counters until `ready` holds (two minutes at most).
pub fn wait_for_stats(sb: &Sandbox, ready: impl Fn(&ghl_etl::sandbox::Stats) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !ready(&sb.stats()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2)); // poll interval, not synchronisation
    }
}
