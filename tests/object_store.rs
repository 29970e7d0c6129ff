//! `export --out s3://…` against a real S3 API: the moto server `.ci/run` starts on 127.0.0.1.
//! Objects are listed and read back (Parquet with the parquet crate), a killed run shows no
//! object of its open chunk and its rerun completes the set, and a part larger than one upload
//! chunk goes up as several, and not at all when the run is killed mid-upload.
//!
//! `GHL_ETL_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:5000`) points the tests at the server;
//! without it they print why and pass, except in CI (`CI=true`), where `.ci/run` sets it and its
//! absence is a failure. The tests pass the endpoint and dummy credentials to the binary in the
//! `AWS_*` variables a user would set for an S3-compatible server.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ::object_store::aws::AmazonS3Builder;
use ::object_store::path::Path as ObjectPath;
use ::object_store::{ObjectStore, ObjectStoreExt};
use futures::TryStreamExt;
use ghl_etl::sandbox::{Sandbox, DEFAULT_TOKEN};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{describe, quiet_config, run_bin, sandbox};

const ENDPOINT_VAR: &str = "GHL_ETL_TEST_S3_ENDPOINT";

/// The S3 endpoint, or `None` (with a message) when the tests cannot run here.
fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(e) if !e.is_empty() => Some(e.trim_end_matches('/').to_string()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{ENDPOINT_VAR} is not set: .ci/run starts moto and sets it")
        }
        _ => {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests, and
            // a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: object storage tests need an S3 server: {ENDPOINT_VAR} is not set \
                 (.ci/run starts moto and sets it; by hand: pip install 'moto[server]'; \
                 moto_server -H 127.0.0.1 -p 5000 & {ENDPOINT_VAR}=http://127.0.0.1:5000 cargo test object_store)"
            );
            None
        }
    }
}

/// A new bucket of its own on the server, and a client for it.
struct Bucket {
    endpoint: String,
    name: String,
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    async fn create(endpoint: &str, tag: &str) -> Bucket {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("ghl-etl-{tag}-{}-{nanos}", std::process::id());
        // moto takes unsigned requests: a plain PUT makes the bucket.
        let res = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(res.status().is_success(), "create bucket {name}: {res:?}");
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(&name)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("S3 client");
        Bucket {
            endpoint: endpoint.to_string(),
            name,
            store: Arc::new(store),
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// Every object under `prefix`: key relative to it -> bytes.
    async fn snapshot(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let root = ObjectPath::from(prefix);
        let metas: Vec<_> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .expect("list objects");
        let mut m = BTreeMap::new();
        for meta in metas {
            let bytes = self.read(&meta.location).await;
            let key: Vec<String> = meta
                .location
                .prefix_match(&root)
                .unwrap()
                .map(|p| p.as_ref().to_string())
                .collect();
            m.insert(key.join("/"), bytes);
        }
        m
    }

    async fn read(&self, path: &ObjectPath) -> Vec<u8> {
        let got = self.store.get(path).await.expect("get object");
        got.bytes().await.expect("object bytes").to_vec()
    }

    /// Run the binary's export of `sb`'s location to `prefix` in this bucket.
    async fn export(
        &self,
        sb: &Sandbox,
        dir: &Path,
        prefix: &str,
        extra: &[&str],
        failpoint: Option<&str>,
    ) -> (Option<i32>, String) {
        let out = self.url(prefix);
        let state = dir.join(format!("{prefix}.sqlite")).display().to_string();
        let location = sb.location_ids()[0].clone();
        let mut args: Vec<String> = [
            "export",
            "--location",
            &location,
            "--out",
            &out,
            "--state",
            &state,
            "--source",
            "list",
            "--rate",
            "off",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env = vec![
            ("GHL_BASE_URL".to_string(), sb.url()),
            ("GHL_TOKEN".to_string(), DEFAULT_TOKEN.to_string()),
            ("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone()),
            ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ];
        if let Some(f) = failpoint {
            env.push(("GHL_ETL_FAILPOINT".to_string(), f.to_string()));
        }
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let o = run_bin(&args, &env, &dir);
            (o.status.code(), describe(&args, &dir, &o))
        })
        .await
        .unwrap()
    }
}

fn parts(snapshot: &BTreeMap<String, Vec<u8>>, table: &str) -> Vec<String> {
    snapshot
        .keys()
        .filter(|k| k.starts_with(&format!("{table}/part-")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_s3_lists_every_part_and_reads_back_as_parquet() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = Bucket::create(&endpoint, "roundtrip").await;
    let sb = sandbox(quiet_config(1_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = "nightly/2026-11-26";
    let (code, d) = bucket
        .export(&sb, dir.path(), prefix, &["--part-rows", "400"], None)
        .await;
    assert_eq!(code, Some(0), "{d}");

    let objects = bucket.snapshot(prefix).await;
    let contacts = parts(&objects, "contacts");
    assert_eq!(
        contacts,
        [
            "contacts/part-00000.parquet",
            "contacts/part-00001.parquet",
            "contacts/part-00002.parquet"
        ],
        "{:?}",
        objects.keys()
    );
    assert!(!parts(&objects, "tasks").is_empty() && !parts(&objects, "notes").is_empty());
    assert!(objects.contains_key(".ghl-etl-export"));

    // The manifest lists exactly the part objects, with their sizes and row counts.
    let manifest: serde_json::Value =
        serde_json::from_slice(&objects["_manifest.json"]).expect("manifest is JSON");
    let files = manifest["files"].as_array().unwrap();
    let listed: Vec<&String> = objects.keys().filter(|k| k.contains("/part-")).collect();
    let mut in_manifest: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    in_manifest.sort();
    assert_eq!(in_manifest, listed);
    assert_eq!(manifest["tables"]["contacts"], 1_000);

    // Each Parquet part reads back with the parquet crate, with the rows the manifest says.
    let mut rows = 0;
    for key in &contacts {
        let bytes = bytes::Bytes::from(objects[key].clone());
        let entry = files.iter().find(|f| f["path"] == key.as_str()).unwrap();
        assert_eq!(entry["bytes"], bytes.len() as u64, "{key}");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("a whole Parquet file")
            .build()
            .unwrap();
        let mut n = 0;
        for batch in reader {
            let batch = batch.unwrap();
            assert!(batch.schema().field_with_name("id").is_ok());
            n += batch.num_rows() as u64;
        }
        assert_eq!(entry["rows"], n, "{key}");
        rows += n;
    }
    assert_eq!(rows, 1_000);

    // Nothing local: no folder named after the URL, and the staging folder is gone.
    assert!(!dir.path().join("s3:").exists());
    let staging = dir.path().join("staging");
    assert!(
        !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
        "staging left behind"
    );

    // A rerun of the finished export changes nothing.
    let (code, d) = bucket
        .export(&sb, dir.path(), prefix, &["--part-rows", "400"], None)
        .await;
    assert_eq!(code, Some(0), "{d}");
    assert_eq!(bucket.snapshot(prefix).await, objects);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_export_to_s3_shows_no_unfinished_part_and_resumes_to_the_same_objects() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = Bucket::create(&endpoint, "resume").await;
    let sb = sandbox(quiet_config(1_000)).await;
    let dir = tempfile::tempdir().unwrap();
    // CSV, compared byte for byte; parts of 400 contacts.
    let flags = ["--format", "csv", "--part-rows", "400"];
    let (code, d) = bucket.export(&sb, dir.path(), "clean", &flags, None).await;
    assert_eq!(code, Some(0), "{d}");
    let want = bucket.snapshot("clean").await;
    assert_eq!(parts(&want, "contacts").len(), 3);

    // Killed with the second chunk half written: only the first chunk's parts are visible.
    let (code, d) = bucket
        .export(&sb, dir.path(), "killed", &flags, Some("mid-chunk:600"))
        .await;
    assert!(
        code != Some(0) && code != Some(1),
        "the failpoint killed it:\n{d}"
    );
    let got = bucket.snapshot("killed").await;
    let visible: Vec<&String> = got.keys().filter(|k| k.contains("/part-")).collect();
    assert!(!visible.is_empty(), "{:?}", got.keys());
    for key in &visible {
        assert!(
            key.ends_with("part-00000.csv"),
            "{key} of the open chunk is visible"
        );
        assert_eq!(got[*key], want[*key], "{key} is whole");
    }
    assert!(!got.contains_key("_manifest.json"));

    // Killed after uploading the second chunk, before recording it: what is visible is whole.
    let (code, d) = bucket
        .export(&sb, dir.path(), "killed", &flags, Some("before-commit:2"))
        .await;
    assert!(
        code != Some(0) && code != Some(1),
        "the failpoint killed it:\n{d}"
    );
    let got = bucket.snapshot("killed").await;
    assert!(got.keys().any(|k| k.ends_with("part-00001.csv")));
    for (key, bytes) in got.iter().filter(|(k, _)| k.contains("/part-")) {
        assert_eq!(*bytes, want[key], "{key} is whole");
    }
    assert!(!got.contains_key("_manifest.json"));

    // The rerun ends with exactly the clean run's parts, byte for byte.
    let (code, d) = bucket.export(&sb, dir.path(), "killed", &flags, None).await;
    assert_eq!(code, Some(0), "{d}");
    let got = bucket.snapshot("killed").await;
    let part_keys = |m: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        m.keys().filter(|k| k.contains("/part-")).cloned().collect()
    };
    assert_eq!(part_keys(&got), part_keys(&want));
    for key in part_keys(&want) {
        assert!(got[&key] == want[&key], "{key} differs after resuming");
    }
    assert!(got.contains_key("_manifest.json"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_larger_than_an_upload_chunk_goes_up_in_several_and_never_half() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = Bucket::create(&endpoint, "multipart").await;
    let contacts = 20_000;
    let sb = sandbox(quiet_config(contacts)).await;
    let dir = tempfile::tempdir().unwrap();
    // Raw NDJSON of contacts alone, in one part: well over two 8 MiB upload chunks.
    let flags = ["--format", "ndjson", "--with", "none"];
    // Killed with the upload half done: no object, no manifest.
    let (code, d) = bucket
        .export(&sb, dir.path(), "big", &flags, Some("mid-upload"))
        .await;
    assert!(code != Some(0) && d.contains("failpoint mid-upload"), "{d}");
    let got = bucket.snapshot("big").await;
    // The location's field definitions are written before the contacts, and the run's lease
    // stays where it crashed (the rerun sees its holder is gone); no part, no manifest.
    let visible: Vec<_> = got
        .keys()
        .filter(|k| !k.starts_with("_custom_fields/") && *k != ghl_etl::lease::LEASE_KEY)
        .collect();
    assert_eq!(
        visible,
        [".ghl-etl-export"],
        "only the owner marker is visible"
    );
    // The rerun uploads the part whole.
    let (code, d) = bucket.export(&sb, dir.path(), "big", &flags, None).await;
    assert_eq!(code, Some(0), "{d}");
    let got = bucket.snapshot("big").await;
    let part = &got["contacts/part-00000.ndjson"];
    assert!(
        part.len() > 2 * ghl_etl::sink::UPLOAD_CHUNK,
        "the part ({} bytes) spans several upload chunks",
        part.len()
    );
    let lines = part.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let mut n = 0;
    for line in lines {
        let v: serde_json::Value = serde_json::from_slice(line).expect("a whole JSON line");
        assert!(v["id"].is_string());
        n += 1;
    }
    assert_eq!(n, contacts);
    sb.shutdown().await;
}

/// Needs no S3 server: a URL is refused before anything is written, and never becomes a folder.
#[test]
fn a_url_this_build_cannot_write_is_refused_and_never_becomes_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    for (out, says) in [
        ("hdfs://namenode/exports", "cannot write to hdfs: URLs"),
        (
            "s3:bucket/exports",
            "names no bucket: write s3://BUCKET/PREFIX",
        ),
        ("s3:///exports", "names no bucket: write s3://BUCKET/PREFIX"),
    ] {
        let args = ["export", "--sandbox", "--out", out, "--quiet"];
        let o = run_bin(&args, &[], dir.path());
        let d = describe(&args, dir.path(), &o);
        assert_eq!(o.status.code(), Some(2), "{d}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(says), "{d}");
        assert!(stderr.contains("s3://BUCKET/PREFIX"), "{d}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is written locally: {left:?}");
}

/// No lock exists in an object store: a lease object stands in. A live holder's lease refuses a
/// second export naming it; a lease whose holder is gone (its process no longer runs) is taken
/// over, and released when the export ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_object_keeps_a_second_export_out_until_its_holder_is_gone() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = Bucket::create(&endpoint, "lease").await;
    let sb = sandbox(quiet_config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = "nightly";
    let key = ObjectPath::from(format!("{prefix}/{}", ghl_etl::lease::LEASE_KEY));
    let put = |holder: &ghl_etl::lease::Holder| {
        let bytes = serde_json::to_vec(holder).unwrap();
        let (store, key) = (bucket.store.clone(), key.clone());
        async move { store.put(&key, bytes.into()).await.unwrap() }
    };
    // A live holder: this test process, renewed just now.
    put(&ghl_etl::lease::Holder::me("export")).await;
    let (code, d) = bucket.export(&sb, dir.path(), prefix, &[], None).await;
    assert_eq!(code, Some(2), "{d}");
    assert!(d.contains("is in use by `ghl-etl export` (pid"), "{d}");
    assert!(!bucket.snapshot(prefix).await.contains_key("_manifest.json"));
    // A holder that is gone: a process of this host that has ended.
    let mut gone = ghl_etl::lease::Holder::me("export");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    gone.pid = child.id();
    child.wait().unwrap();
    gone.token = "a crashed run".into();
    put(&gone).await;
    let (code, d) = bucket.export(&sb, dir.path(), prefix, &[], None).await;
    assert_eq!(code, Some(0), "{d}");
    let got = bucket.snapshot(prefix).await;
    assert!(got.contains_key("_manifest.json"), "{:?}", got.keys());
    assert!(
        !got.contains_key(ghl_etl::lease::LEASE_KEY),
        "released at the end"
    );
    sb.shutdown().await;
}
