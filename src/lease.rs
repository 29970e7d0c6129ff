//! One job at a time per state database and per output. Two runs of one export with the
//! same `--out` once deleted each other's open part files as "left by a crash" and wrote over
//! each other; two loads sharing a state database created tasks twice. So a running job holds:
//!
//! - an OS lock (`flock`) on `<state>.lock` beside its state database: released by the kernel
//!   when the process ends, however it ends, so it is never stale;
//! - for an export, a lease on its output: the same OS lock on `.ghl-etl-lock` in a local
//!   folder, and in an object store (`s3://…`), where no lock exists, a lease object
//!   `.ghl-etl-lease` holding the holder and a heartbeat the holder renews every
//!   [`HEARTBEAT`]; a lease whose heartbeat is older than [`STALE_AFTER`] is a crashed run's,
//!   and is taken over with a message.
//!
//! A second run refuses at once (exit 2) naming the holder (command, pid, host, start), or
//! with `--wait` waits for it. The export's sweep of uncommitted parts runs only once the
//! lease is held, so it never touches the files of a live run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::{JobError, Result};
use crate::sink::Store;

/// How often a lease object's holder renews it.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A lease object not renewed for this long belongs to a run that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(90);
/// How often a run waiting (`--wait`) on a lease object looks again.
const POLL: Duration = Duration::from_secs(5);
/// The lease object of an output in an object store.
pub const LEASE_KEY: &str = ".ghl-etl-lease";
/// The lock file of a local output folder.
pub const LOCK_FILE: &str = ".ghl-etl-lock";

/// `--wait`: wait for a holder instead of refusing. Set once by `main`.
static WAIT: AtomicBool = AtomicBool::new(false);

/// Make every lock and lease of this run wait for its holder rather than refuse.
pub fn wait_for_holders(wait: bool) {
    WAIT.store(wait, Ordering::Relaxed);
}

fn waiting() -> bool {
    WAIT.load(Ordering::Relaxed)
}

/// Who holds a lock or lease.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub command: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339; renewed every [`HEARTBEAT`] on a lease object.
    pub heartbeat: String,
    /// Unique per run: tells a lease we wrote from one written by another run.
    pub token: String,
}

impl Holder {
    /// This process, running `command` (`export`, `load`, ...).
    pub fn me(command: &str) -> Holder {
        let now = chrono::Utc::now().to_rfc3339();
        let pid = std::process::id();
        Holder {
            command: command.to_string(),
            pid,
            host: host_name(),
            token: format!(
                "{pid}-{}",
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ),
            started: now.clone(),
            heartbeat: now,
        }
    }

    /// Whether the holder is certainly gone: a process of this host that no longer runs.
    fn is_gone(&self) -> bool {
        self.host == host_name() && self.pid != std::process::id() && !process_runs(self.pid)
    }

    /// How long ago the heartbeat was (zero if unreadable or in the future).
    fn silent_for(&self) -> Duration {
        chrono::DateTime::parse_from_rfc3339(&self.heartbeat)
            .ok()
            .and_then(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or_default()
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`ghl-etl {}` (pid {} on {}, started {})",
            self.command, self.pid, self.host, self.started
        )
    }
}

/// Whether a process with this pid runs on this host (signal 0 probes without sending).
#[cfg(unix)]
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks that the pid exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_runs(_pid: u32) -> bool {
    true
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_string())
}

fn held_error(what: &str, holder: Option<Holder>) -> JobError {
    let by = holder.map_or_else(|| "another run".to_string(), |h| h.to_string());
    JobError::usage(format!(
        "{what} is in use by {by}; let it finish (or stop it), or pass --wait to wait for it"
    ))
}

/// An OS lock on a file, with its holder written in it. Released when dropped, or by the
/// kernel when the process ends.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Lock `path` (created if need be) for `holder`; `what` names the locked thing in
    /// messages ("the state database x.sqlite").
    pub async fn acquire(path: &Path, what: &str, holder: &Holder) -> Result<FileLock> {
        // Said in the user's terms: the folder they named cannot be written, and why.
        let cannot = |e: std::io::Error| {
            JobError::usage(format!(
                "cannot write in {what} (its lock file {}): {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(cannot)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let current = read_holder(path);
                if !waiting() {
                    return Err(held_error(what, current));
                }
                let by = current.map_or_else(|| "another run".into(), |h| h.to_string());
                tracing::warn!("{what} is in use by {by}; waiting for it (--wait).");
                file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| JobError::Internal(format!("waiting for a lock: {e}")))?
                    .map_err(|e| JobError::io("lock", path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(JobError::io("lock", path, e)),
        }
        let text = serde_json::to_string(holder).expect("a holder serialises");
        file.set_len(0)
            .and_then(|()| file.write_all(text.as_bytes()))
            .map_err(|e| JobError::io("write the lock file", path, e))?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The lock beside a state database: `<state>.lock`.
pub async fn lock_state(state: &Path, command: &str) -> Result<FileLock> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let what = format!("the state database {}", state.display());
    FileLock::acquire(Path::new(&name), &what, &Holder::me(command)).await
}

/// The lock on one location's writes on this machine (`load`, `tag`, `bulk`): two runs
/// writing into one location with different state databases would each create what the
/// other creates. Kept in `$GHL_ETL_LOCK_DIR`, else `~/.cache/ghl-etl/locks`; where no such
/// folder can be made the run goes on unlocked, and says so.
pub async fn lock_location_writes(
    server: &str,
    location: &str,
    command: &str,
) -> Result<Option<FileLock>> {
    use sha2::Digest;
    let dir = match std::env::var_os("GHL_ETL_LOCK_DIR") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cache/ghl-etl/locks"),
            None => std::env::temp_dir().join("ghl-etl-locks"),
        },
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(
            "Cannot make the lock folder {} ({e}): nothing stops another run writing into location {location} at the same time.",
            dir.display()
        );
        return Ok(None);
    }
    let digest = sha2::Sha256::digest(format!("{server}\n{location}").as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let what = format!("location {location}");
    let path = dir.join(format!("{name}.lock"));
    FileLock::acquire(&path, &what, &Holder::me(command))
        .await
        .map(Some)
}

/// The lease on an export's output: an OS lock for a local folder, a lease object with a
/// heartbeat for an object store. Release it with [`OutputLease::release`] when the run ends.
pub enum OutputLease {
    Folder(FileLock),
    Object(ObjectLease),
}

impl OutputLease {
    pub async fn acquire(store: &Store, command: &str) -> Result<OutputLease> {
        let holder = Holder::me(command);
        match store.local_root() {
            Some(root) => {
                let what = format!("the output folder {}", root.display());
                let lock = FileLock::acquire(&root.join(LOCK_FILE), &what, &holder).await?;
                Ok(OutputLease::Folder(lock))
            }
            None => Ok(OutputLease::Object(
                ObjectLease::acquire(store, holder).await?,
            )),
        }
    }

    pub async fn release(self) {
        if let OutputLease::Object(lease) = self {
            lease.release().await;
        }
    }
}

/// A lease object in an object store, renewed by a background task.
pub struct ObjectLease {
    store: Store,
    holder: Holder,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl ObjectLease {
    async fn acquire(store: &Store, holder: Holder) -> Result<ObjectLease> {
        let what = format!("the output {}", store);
        loop {
            match current(store).await? {
                Some(h) if !h.is_gone() && h.silent_for() < STALE_AFTER => {
                    if !waiting() {
                        return Err(held_error(&what, Some(h)));
                    }
                    tracing::warn!("{what} is in use by {h}; waiting for it (--wait).");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Some(h) => tracing::warn!(
                    "Taking over the lease on {what}: its holder {h} is gone (no longer running, or silent for {} s).",
                    h.silent_for().as_secs()
                ),
                None => {}
            }
            write(store, &holder).await?;
            // Two runs that both found the lease free both wrote it; the store keeps the last
            // write, and after a moment each reads back who won.
            tokio::time::sleep(Duration::from_millis(500)).await;
            if current(store)
                .await?
                .is_some_and(|h| h.token == holder.token)
            {
                break;
            }
        }
        let heartbeat = tokio::spawn(renew(store.clone(), holder.clone()));
        Ok(ObjectLease {
            store: store.clone(),
            holder,
            heartbeat,
        })
    }

    /// Stop renewing and remove the lease, if it is still ours.
    pub async fn release(self) {
        self.heartbeat.abort();
        if let Ok(Some(h)) = current(&self.store).await {
            if h.token == self.holder.token {
                if let Err(e) = self.store.delete(LEASE_KEY).await {
                    tracing::warn!(
                        "Could not remove the lease {}: {e}",
                        self.store.describe(LEASE_KEY)
                    );
                }
            }
        }
    }
}

async fn current(store: &Store) -> Result<Option<Holder>> {
    Ok(store
        .get(LEASE_KEY)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

async fn write(store: &Store, holder: &Holder) -> Result<()> {
    let text = serde_json::to_vec(holder).expect("a holder serialises");
    store.put(LEASE_KEY, text).await
}

/// Renew the lease every [`HEARTBEAT`] while it is ours; say so once if another run took it.
async fn renew(store: Store, mut holder: Holder) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        match current(&store).await {
            Ok(Some(h)) if h.token != holder.token => {
                tracing::error!(
                    "The lease on {store} was taken over by {h}; this run's output may be mixed with its."
                );
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("Could not read the lease on {store}: {e}");
                continue;
            }
        }
        holder.heartbeat = chrono::Utc::now().to_rfc3339();
        if let Err(e) = write(&store, &holder).await {
            tracing::warn!("Could not renew the lease on {store}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_state_lock_refuses_a_second_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.sqlite");
        let first = lock_state(&state, "load").await.unwrap();
        let err = lock_state(&state, "load").await.unwrap_err().to_string();
        assert!(err.contains("is in use by `ghl-etl load` (pid"), "{err}");
        assert!(err.contains("--wait"), "{err}");
        drop(first);
        lock_state(&state, "load")
            .await
            .expect("free once the first is dropped");
    }

    #[tokio::test]
    async fn a_lease_object_is_refused_while_fresh_and_taken_over_when_stale() {
        let mem = std::sync::Arc::new(object_store::memory::InMemory::new());
        let store = Store::object(mem, "out", "s3://b/out", 1 << 20);
        let first = OutputLease::acquire(&store, "export").await.unwrap();
        let err = OutputLease::acquire(&store, "export")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("is in use by `ghl-etl export`"), "{err}");
        first.release().await;
        assert!(current(&store).await.unwrap().is_none(), "released");
        // A crashed holder: a lease last renewed long ago.
        let mut old = Holder::me("export");
        old.token = "gone".into();
        old.heartbeat = (chrono::Utc::now() - chrono::Duration::seconds(600)).to_rfc3339();
        write(&store, &old).await.unwrap();
        let taken = OutputLease::acquire(&store, "export").await.unwrap();
        let now = current(&store).await.unwrap().unwrap();
        assert_ne!(now.token, "gone");
        taken.release().await;
    }
}
