//! Listener benchmark (a bench binary, `harness = false`): the release `ghl-etl listen` on
//! loopback, with durability on (every 200 after its fsync'd group commit), fed signed
//! ContactUpdate deliveries by concurrent senders in this process (sharing the machine's two
//! cores with it, as GHL's deliveries would not).
//!
//! It reports acknowledged events per second, the time to acknowledge (p50, p99, max), the
//! listener's resident memory as the events go by (it must stay flat), the 429s, and, after a
//! SIGTERM, that the dataset holds every event once (Parquet row counts).
//!
//! Run: `cargo bench --bench listen -- [--events N] [--senders C]` (default 200,000 and 64;
//! the memory figure in benches/README.md is from `--events 1000000`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Rows of every Parquet file under `dir`, from the files' metadata.
fn parquet_rows(dir: &Path) -> i64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                let f = std::fs::File::open(&p).unwrap();
                let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
                use parquet::file::reader::FileReader;
                n += r.metadata().file_metadata().num_rows();
            }
        }
    }
    n
}

fn main() {
    let events = arg("--events", 200_000);
    let senders = arg("--senders", 64);
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Arc::new(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap());
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64.encode(der)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ghl-etl"))
        .current_dir(dir.path())
        .args([
            "listen",
            "--port",
            "0",
            "--port-file",
            "port",
            "--out",
            "out",
        ])
        .args(["--state", "listen.sqlite", "--quiet"])
        .env("WEBHOOK_SIGNATURE_PUBLIC_KEY", &pem)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ghl-etl listen starts");
    let port = loop {
        match std::fs::read_to_string(dir.path().join("port")) {
            Ok(p) if !p.is_empty() => break p,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let url = format!("http://127.0.0.1:{port}/webhooks/ghl");
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (latencies, memory) = rt.block_on(async {
        let http = reqwest::Client::new();
        // Memory every tenth of the run.
        let watch = {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut next = events / 10;
                loop {
                    let done = sent.load(Ordering::Relaxed);
                    if done >= next {
                        samples.push((done, rss_mib(pid)));
                        next += events / 10;
                    }
                    if done >= events {
                        return samples;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let tasks: Vec<_> = (0..senders)
            .map(|s| {
                let (http, url, pair, sent, refused) =
                    (http.clone(), url.clone(), pair.clone(), sent.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = s;
                    while i < events {
                        let body = format!(
                            r#"{{"type":"ContactUpdate","locationId":"L{}","id":"c{i}","webhookId":"w{i}","timestamp":"{}","firstName":"P{i}","tags":["a","b"],"appId":"x"}}"#,
                            i % 3,
                            chrono::Utc::now().to_rfc3339()
                        );
                        let sig = base64::engine::general_purpose::STANDARD
                            .encode(pair.sign(body.as_bytes()).as_ref());
                        let t = Instant::now();
                        let status = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-ghl-signature", sig)
                            .body(body)
                            .send()
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0);
                        match status {
                            200 => {
                                lat.push(t.elapsed().as_micros() as u32);
                                sent.fetch_add(1, Ordering::Relaxed);
                                i += senders;
                            }
                            _ => {
                                // A 429 (or a refused connection): sent again, as GHL would.
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all, watch.await.unwrap())
    });
    let elapsed = started.elapsed();
    let mut lat = latencies;
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{events} events acknowledged in {:.1} s: {:.0} events/s ({senders} senders); time to 200: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} answers other than 200",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        *lat.last().unwrap() as f64 / 1000.0,
        refused.load(Ordering::Relaxed)
    );
    let mem: Vec<String> = memory
        .iter()
        .map(|(n, m)| format!("{}k: {m:.0}", n / 1000))
        .collect();
    println!(
        "listener resident memory (MiB) by events received: {}",
        mem.join(", ")
    );
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let rows = parquet_rows(&dir.path().join("out"));
    println!(
        "SIGTERM: exit {status}, {:.1} s to write the last batches; the dataset holds {rows} events (of {events})",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(rows, events as i64, "every event once in the dataset");
}
