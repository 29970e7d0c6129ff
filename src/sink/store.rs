//! Where a job's output goes: a local folder, or a prefix in an object store (`s3://`,
//! `gs://`, `az://`), behind one small interface the output folder uses: put a finished file,
//! put a small object, read one, list a prefix, delete.
//!
//! Part files are always encoded into a local file first (for an object store, in a staging
//! folder beside the state database), because the encoders are synchronous and a part must be
//! complete before anyone may see it. To an object store the finished file is then streamed up
//! as a multipart upload, [`UPLOAD_CHUNK`] bytes at a time with at most [`UPLOADS_IN_FLIGHT`]
//! chunks in flight, so no part is ever held whole in memory; the object appears only when the
//! upload completes. A run that dies mid-upload leaves no object, only (on S3 and GCS) upload
//! parts that a bucket lifecycle rule for incomplete multipart uploads removes.
//!
//! `--out` is parsed here ([`OutTarget`]): a URL is never taken for a local path, and a scheme
//! this build cannot write is an error naming those it can. Credentials and endpoints come
//! from each cloud's usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from
//! the URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;
use url::Url;

use crate::exit::{JobError, Result};

/// What `--out` accepts, for messages.
pub const WRITABLE: &str =
    "a local folder, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH";

/// Bytes per upload request of a multipart upload: S3 wants at least 5 MiB in every part but
/// the last, and some S3-compatible stores want them all the same size, which fixed chunks give.
pub const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;
/// Chunks of one file uploading at once; with the chunk being filled, this bounds an upload's
/// memory to about `(UPLOADS_IN_FLIGHT + 1) * UPLOAD_CHUNK`.
pub const UPLOADS_IN_FLIGHT: usize = 2;
/// Bytes read from the local file at a time.
const READ_BUFFER: usize = 1024 * 1024;

/// Where `--out` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutTarget {
    /// A local folder: a plain path, or a `file://` URL.
    Dir(PathBuf),
    /// A bucket (or Azure container) and a prefix in it.
    Url(Url),
}

impl OutTarget {
    /// Parse `--out`. Anything that starts like a URL (`scheme:`, the scheme two characters or
    /// more, so `C:\exports` stays a path) is one; a folder whose name has a colon is written
    /// `./name:x`.
    pub fn parse(s: &str) -> std::result::Result<OutTarget, String> {
        let Some(scheme) = url_scheme(s) else {
            if s.is_empty() {
                return Err("--out is empty; it takes ".to_string() + WRITABLE);
            }
            return Ok(OutTarget::Dir(PathBuf::from(s)));
        };
        let scheme = scheme.to_ascii_lowercase();
        // The input may carry credentials (`s3://key:secret@bucket`): messages name only the
        // scheme, never echo it.
        let url =
            Url::parse(s).map_err(|e| format!("--out is not a valid {scheme}:// URL ({e})"))?;
        match scheme.as_str() {
            "file" => url.to_file_path().map(OutTarget::Dir).map_err(|()| {
                "--out: a file:// URL needs an absolute local path, such as file:///data/exports"
                    .to_string()
            }),
            "s3" | "gs" | "az" => {
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(format!(
                        "--out must not carry credentials; give them in the environment (see docs/object-storage.md) and write {scheme}://BUCKET/PREFIX"
                    ));
                }
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(format!(
                        "--out names no bucket: write {scheme}://BUCKET/PREFIX"
                    ));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(format!(
                        "--out takes no query or fragment: write {scheme}://BUCKET/PREFIX and set options in the environment"
                    ));
                }
                Ok(OutTarget::Url(url))
            }
            other => Err(format!(
                "--out: this build cannot write to {other}: URLs; it writes to {WRITABLE} (a local folder whose name has a colon is written ./NAME)"
            )),
        }
    }

    /// The target one folder (or prefix segment) down, such as a shard's `shard=0-of-3`.
    pub fn join(&self, segment: &str) -> OutTarget {
        match self {
            OutTarget::Dir(p) => OutTarget::Dir(p.join(segment)),
            OutTarget::Url(u) => {
                let mut u = u.clone();
                let path = format!("{}/{segment}", u.path().trim_end_matches('/'));
                u.set_path(&path);
                OutTarget::Url(u)
            }
        }
    }

    /// How the job's identity names the target: the absolute folder, or the URL without a
    /// trailing slash (so `s3://b/x` and `s3://b/x/` are one export).
    pub fn identity(&self) -> String {
        match self {
            OutTarget::Dir(p) => std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            OutTarget::Url(u) => u.as_str().trim_end_matches('/').to_string(),
        }
    }
}

impl std::fmt::Display for OutTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutTarget::Dir(p) => write!(f, "{}", p.display()),
            OutTarget::Url(u) => write!(f, "{}", u.as_str().trim_end_matches('/')),
        }
    }
}

/// The scheme of `s` when it is written as a URL: a letter, then letters, digits, `+`, `-` or
/// `.`, then `:`.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = scheme.len() >= 2
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// The staging folder of a job writing to an object store: beside the state database, which
/// the user already keeps on a disk that holds the run (not a tmpfs that would hold parts in
/// memory), one folder per job.
pub fn staging_dir(state: &Path, key: &str) -> PathBuf {
    state
        .parent()
        .unwrap_or(Path::new(""))
        .join("staging")
        .join(key)
}

/// An output target opened for writing. Keys are `/`-separated paths under the target's root
/// (`contacts/part-00000.parquet`, `_manifest.json`).
#[derive(Debug, Clone)]
pub enum Store {
    /// A local folder; part files are written in place and renamed when complete.
    Local(PathBuf),
    Object(ObjectTarget),
}

/// A prefix in an object store.
#[derive(Debug, Clone)]
pub struct ObjectTarget {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for messages.
    url: String,
    chunk: usize,
}

impl Store {
    /// Open `target`, taking credentials, region and endpoint from the environment. Nothing is
    /// sent yet: a wrong credential shows at the first read or write.
    pub fn open(target: &OutTarget) -> Result<Store> {
        let url = match target {
            OutTarget::Dir(p) => return Ok(Store::Local(p.clone())),
            OutTarget::Url(u) => u,
        };
        let display = target.to_string();
        let built = match url.scheme() {
            "s3" => object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            "gs" => object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            "az" => object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
            other => {
                return Err(JobError::usage(format!(
                    "--out: this build cannot write to {other}: URLs; it writes to {WRITABLE}"
                )))
            }
        };
        let store = built.map_err(|e| {
            JobError::usage(format!(
                "cannot open {display}: {e} (credentials, region and endpoint come from the environment: see docs/object-storage.md)"
            ))
        })?;
        let prefix = ObjectPath::from_url_path(url.path())
            .map_err(|e| JobError::usage(format!("--out {display}: bad prefix: {e}")))?;
        Ok(Store::Object(ObjectTarget {
            store,
            prefix,
            url: display,
            chunk: UPLOAD_CHUNK,
        }))
    }

    /// A prefix in an already built store (tests use an in-memory one).
    pub fn object(store: Arc<dyn ObjectStore>, prefix: &str, url: &str, chunk: usize) -> Store {
        Store::Object(ObjectTarget {
            store,
            prefix: ObjectPath::from(prefix),
            url: url.to_string(),
            chunk,
        })
    }

    /// The local folder, when the target is one.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            Store::Local(root) => Some(root),
            Store::Object(_) => None,
        }
    }

    /// The full path or URL of `key`, for messages.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::Local(root) => root.join(key).display().to_string(),
            Store::Object(o) => format!("{}/{key}", o.url),
        }
    }

    /// Stream the local file `local` up to `key` (multipart); answers its size. The object
    /// appears whole or not at all. For a local target, `local` must already be `key`.
    pub async fn put_file(&self, key: &str, local: &Path) -> Result<u64> {
        let o = match self {
            Store::Local(root) => {
                let path = root.join(key);
                let meta = std::fs::metadata(&path).map_err(|e| JobError::io("stat", path, e))?;
                return Ok(meta.len());
            }
            Store::Object(o) => o,
        };
        let upload = o
            .store
            .put_multipart(&o.path(key))
            .await
            .map_err(|e| self.error("start uploading to", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, o.chunk);
        match self.stream_file(&mut writer, key, local).await {
            Ok(bytes) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| self.error("finish uploading", key, e))?;
                Ok(bytes)
            }
            Err(e) => {
                if let Err(error) = writer.abort().await {
                    tracing::warn!(key, %error, "Could not abort an unfinished upload; a lifecycle rule for incomplete multipart uploads removes its parts.");
                }
                Err(e)
            }
        }
    }

    async fn stream_file(&self, w: &mut WriteMultipart, key: &str, local: &Path) -> Result<u64> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| JobError::io("open", local, e))?;
        let mut buf = vec![0u8; READ_BUFFER];
        let mut total = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| JobError::io("read", local, e))?;
            if n == 0 {
                return Ok(total);
            }
            w.wait_for_capacity(UPLOADS_IN_FLIGHT)
                .await
                .map_err(|e| self.error("upload", key, e))?;
            #[cfg(feature = "failpoints")]
            mid_upload_failpoint(total);
            w.write(&buf[..n]);
            total += n as u64;
        }
    }

    /// Write a small object whole (the owner marker, the manifest): atomically, by a rename
    /// locally and by a single PUT to an object store.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Store::Local(root) => {
                let path = root.join(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| JobError::io("create", dir, e))?;
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let tmp = path.with_file_name(format!(".{name}.tmp"));
                std::fs::write(&tmp, bytes).map_err(|e| JobError::io("write", &tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| JobError::io("write", &path, e))
            }
            Store::Object(o) => o
                .store
                .put(&o.path(key), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| self.error("write", key, e)),
        }
    }

    /// Read a small object whole; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::Local(root) => match std::fs::read(root.join(key)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(JobError::io("read", root.join(key), e)),
            },
            Store::Object(o) => {
                let got = match o.store.get(&o.path(key)).await {
                    Ok(got) => got,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(self.error("read", key, e)),
                };
                let bytes = got.bytes().await.map_err(|e| self.error("read", key, e))?;
                Ok(Some(bytes.to_vec()))
            }
        }
    }

    /// The keys of every file or object under `prefix` (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = match self {
            Store::Local(root) => list_local(root, prefix)?,
            Store::Object(o) => {
                let under = o.path(prefix);
                let metas: Vec<_> = o
                    .store
                    .list(Some(&under))
                    .try_collect()
                    .await
                    .map_err(|e| self.error("list", prefix, e))?;
                metas
                    .into_iter()
                    .filter_map(|m| {
                        let parts = m.location.prefix_match(&o.prefix)?;
                        Some(
                            parts
                                .map(|p| p.as_ref().to_string())
                                .collect::<Vec<_>>()
                                .join("/"),
                        )
                    })
                    .collect()
            }
        };
        keys.sort();
        Ok(keys)
    }

    /// The names of the folders (common prefixes) directly under the root: one listing
    /// request on an object store, however many objects lie deeper.
    pub async fn top_folders(&self) -> Result<Vec<String>> {
        let mut names = match self {
            Store::Local(root) => match std::fs::read_dir(root) {
                Ok(entries) => entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(JobError::io("list", root, e)),
            },
            Store::Object(o) => o
                .store
                .list_with_delimiter(Some(&o.prefix))
                .await
                .map_err(|e| self.error("list", "", e))?
                .common_prefixes
                .into_iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    /// Delete `key`; one that does not exist is no error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Store::Local(root) => match std::fs::remove_file(root.join(key)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(JobError::io("remove", root.join(key), e))
                }
                _ => Ok(()),
            },
            Store::Object(o) => match o.store.delete(&o.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.error("delete", key, e)),
            },
        }
    }

    fn error(&self, what: &'static str, key: &str, source: object_store::Error) -> JobError {
        JobError::Store {
            what,
            url: self.describe(key),
            source,
        }
    }
}

/// Test builds: `GHL_ETL_FAILPOINT=mid-upload` aborts the process, as a kill would, in the
/// middle of an upload that has already sent a chunk (three chunks were handed over with at
/// most [`UPLOADS_IN_FLIGHT`] in flight, so one has completed). The name is checked against
/// the one list of failpoints (`crate::armed_failpoint!`): an unknown one stops the run.
#[cfg(feature = "failpoints")]
fn mid_upload_failpoint(sent: u64) {
    let armed = crate::armed_failpoint!().is_some_and(|v| v == "mid-upload");
    if armed && sent >= 3 * UPLOAD_CHUNK as u64 {
        eprintln!("failpoint mid-upload reached: aborting");
        std::process::abort();
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Local(root) => write!(f, "{}", root.display()),
            Store::Object(o) => write!(f, "{}", o.url),
        }
    }
}

impl ObjectTarget {
    fn path(&self, key: &str) -> ObjectPath {
        key.split('/')
            .filter(|s| !s.is_empty())
            .fold(self.prefix.clone(), |p, segment| p.join(segment))
    }
}

/// Files under `root/prefix`, as keys relative to `root`.
fn list_local(root: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut dirs = vec![(root.join(prefix), prefix.trim_end_matches('/').to_string())];
    while let Some((dir, key)) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(JobError::io("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| JobError::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if key.is_empty() {
                name
            } else {
                format!("{key}/{name}")
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push((entry.path(), child));
            } else {
                keys.push(child);
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn urls_are_never_local_paths() {
        for (s, want) in [
            ("exports/night", OutTarget::Dir("exports/night".into())),
            ("./s3:x", OutTarget::Dir("./s3:x".into())),
            ("C:\\exports", OutTarget::Dir("C:\\exports".into())),
            ("file:///data/x", OutTarget::Dir("/data/x".into())),
        ] {
            assert_eq!(OutTarget::parse(s).unwrap(), want, "{s}");
        }
        for s in [
            "s3://bucket/x",
            "gs://b/p/q",
            "az://container/p",
            "S3://bucket",
        ] {
            assert!(matches!(OutTarget::parse(s), Ok(OutTarget::Url(_))), "{s}");
        }
        let target = OutTarget::parse("s3://bucket/x/").unwrap();
        assert_eq!(target.identity(), "s3://bucket/x");
        assert_eq!(target.to_string(), "s3://bucket/x");
    }

    #[test]
    fn schemes_this_build_cannot_write_are_named_and_listed() {
        for (s, named) in [
            ("http://host/x", "http:"),
            ("hdfs://nn/x", "hdfs:"),
            ("s3a://bucket/x", "s3a:"),
            ("backup:2024", "backup:"),
        ] {
            let e = OutTarget::parse(s).unwrap_err();
            assert!(e.contains(named) && e.contains(WRITABLE), "{s}: {e}");
        }
        let e = OutTarget::parse("s3:///x").unwrap_err();
        assert!(e.contains("no bucket"), "{e}");
        let e = OutTarget::parse("s3://AKIA:sekrit@bucket/x").unwrap_err();
        assert!(e.contains("credentials") && !e.contains("sekrit"), "{e}");
    }

    #[test]
    fn staging_sits_beside_the_state_database() {
        assert_eq!(
            staging_dir(Path::new("/var/lib/ghl/state.sqlite"), "abc"),
            Path::new("/var/lib/ghl/staging/abc")
        );
    }

    fn memory(chunk: usize) -> (Arc<InMemory>, Store) {
        let mem = Arc::new(InMemory::new());
        let store = Store::object(mem.clone(), "nightly/run1", "memory:///nightly/run1", chunk);
        (mem, store)
    }

    #[tokio::test]
    async fn a_file_streams_up_in_chunks_and_lists_under_its_key() {
        let (mem, store) = memory(1000);
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("part");
        let data: Vec<u8> = (0..10_500u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&local, &data).unwrap();
        let n = store
            .put_file("contacts/part-00000.parquet", &local)
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        let got = mem
            .get(&ObjectPath::from(
                "nightly/run1/contacts/part-00000.parquet",
            ))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), data.as_slice());

        store.put("_manifest.json", b"{}".to_vec()).await.unwrap();
        assert_eq!(
            store.list("").await.unwrap(),
            ["_manifest.json", "contacts/part-00000.parquet"]
        );
        assert_eq!(
            store.list("contacts").await.unwrap(),
            ["contacts/part-00000.parquet"]
        );
        assert_eq!(store.get("_manifest.json").await.unwrap().unwrap(), b"{}");
        store
            .put(
                "table=notes/location_id=L/run=R/part-00000.parquet",
                vec![1],
            )
            .await
            .unwrap();
        assert_eq!(
            store.top_folders().await.unwrap(),
            ["contacts", "table=notes"]
        );
        store.delete("_manifest.json").await.unwrap();
        store.delete("_manifest.json").await.unwrap();
        assert_eq!(store.get("_manifest.json").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_upload_leaves_no_object() {
        let (_mem, store) = memory(1000);
        let missing = Path::new("/nonexistent/part-00000.parquet");
        assert!(store
            .put_file("contacts/part-00000.parquet", missing)
            .await
            .is_err());
        assert!(store.list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_local_folder_lists_recursively_and_writes_small_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(dir.path().to_path_buf());
        std::fs::create_dir_all(dir.path().join("rejects/contacts")).unwrap();
        std::fs::write(dir.path().join("rejects/contacts/part-00000.csv"), "x").unwrap();
        store
            .put(".ghl-etl-export", b"key\n".to_vec())
            .await
            .unwrap();
        assert_eq!(
            store.list("").await.unwrap(),
            [".ghl-etl-export", "rejects/contacts/part-00000.csv"]
        );
        assert_eq!(
            store.list("rejects").await.unwrap(),
            ["rejects/contacts/part-00000.csv"]
        );
        assert!(store.list("tasks").await.unwrap().is_empty());
        assert_eq!(store.top_folders().await.unwrap(), ["rejects"]);
        let gone = Store::Local(dir.path().join("not-yet"));
        assert!(gone.top_folders().await.unwrap().is_empty());
    }
}
