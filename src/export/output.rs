//! The output folder of a job that writes part files: who owns it, how parts are numbered,
//! sweeping parts a crash left uncommitted, and the manifest written when the job finishes.
//!
//! A folder is owned by one job (`.ghl-etl-export` holds its key): the sweep deletes part files
//! the state database does not know, so it must never run where another job writes. An
//! incremental export owns its folder across runs (the marker holds the dataset's key); each
//! run writes and sweeps only its own `run=` folders, so earlier runs' files are never touched.
//! The folder may be a prefix in an object store ([`Store`]): parts are then written to a local
//! staging folder and uploaded by [`OutputDir::publish`] before they are committed.
//!
//! Where part files go is decided in one place, [`Layout::folder`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::exit::{JobError, Result};
use crate::sink::{self, Format, Store};
use crate::state::{CommittedPart, JobStatus};
use crate::table::MANIFEST;

/// Names the job (key) that owns an output folder.
const OWNER_MARKER: &str = ".ghl-etl-export";

/// Part files of location number `i` (its place in the location list, which the job key fixes)
/// are numbered from `i * PARTS_PER_LOCATION`: names stay deterministic and never collide,
/// and a one-location export reads `part-00000`, `part-00001`, ...
const PARTS_PER_LOCATION: u32 = 100_000;

/// The file name number of a location's `seq`-th part.
pub fn part_number(location_index: usize, seq: u32) -> Result<u32> {
    if seq >= PARTS_PER_LOCATION {
        return Err(JobError::usage(format!(
            "a location reached {PARTS_PER_LOCATION} part files; rerun with --restart and a larger --part-rows or --commit-seconds"
        )));
    }
    Ok(location_index as u32 * PARTS_PER_LOCATION + seq)
}

/// How the part files of an output folder are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `DIR/<table>/part-NNNNN.<ext>`: one dataset, every location in one folder per table
    /// (part numbers say the location, see [`part_number`]).
    Flat,
    /// Hive-style partitions, one folder per table, location and run:
    /// `DIR/table=<table>/location_id=<L>/run=<R>/part-NNNNN.<ext>`, so warehouse engines read
    /// the union and prune by location and run. Rejects go under `DIR/rejects/table=...`.
    Hive { run: String },
}

impl Layout {
    /// The folder of the part files of table `name` (`contacts`, `rejects/contacts`,
    /// `deleted`) for `location`: the one function that decides output paths.
    pub fn folder(&self, root: &Path, name: &str, location: &str) -> PathBuf {
        match self {
            Layout::Flat => root.join(name),
            Layout::Hive { run } => {
                let (base, table) = match name.strip_prefix("rejects/") {
                    Some(t) => (root.join("rejects"), t),
                    None => (root.to_path_buf(), name),
                };
                base.join(format!("table={}", partition_value(table)))
                    .join(format!("location_id={}", partition_value(location)))
                    .join(format!("run={}", partition_value(run)))
            }
        }
    }

    /// The file name number of a location's `seq`-th part: with a folder per location the
    /// sequence itself, else in the location's range (see [`part_number`]).
    pub fn part_number(&self, location_index: usize, seq: u32) -> Result<u32> {
        match self {
            Layout::Flat => part_number(location_index, seq),
            Layout::Hive { .. } => Ok(seq),
        }
    }
}

/// A partition value as Hive escapes it: bytes outside `[A-Za-z0-9._-]` as `%XX`, so an id
/// can never add a folder level or an `=`.
fn partition_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    match out.as_str() {
        // Not a name a folder may have.
        "" | "." | ".." => out.replace('.', "%2E") + "%00",
        _ => out,
    }
}

/// A file of a local output folder that this tool did not write, if there is one: anything
/// but hidden files (the lock, the state), `_`-prefixed ones (manifest, locations, field
/// definitions) and part files in the table folders. Looks two levels down at most, so a
/// folder such as a home directory is not walked.
fn not_ours(root: &Path, state: &Path) -> Option<PathBuf> {
    let state_name = state.file_name().map(|n| n.to_string_lossy().into_owned());
    // The state database and its `-wal`, `-shm` and `.lock` files.
    let of_state = |name: &str| state_name.as_deref().is_some_and(|s| name.starts_with(s));
    let ours = |name: &str| name.starts_with('.') || name.starts_with('_') || of_state(name);
    let part = |name: &str| name.starts_with("part-") || name.starts_with(".part-");
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ours(&name) {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            return Some(entry.path());
        }
        for inner in std::fs::read_dir(entry.path()).ok()?.flatten() {
            let inner_name = inner.file_name().to_string_lossy().into_owned();
            let is_dir = inner.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir && !part(&inner_name) && !inner_name.starts_with('.') {
                return Some(inner.path());
            }
        }
    }
    None
}

/// One folder of part files of table `name` (`contacts`, `rejects/contacts`), as the state
/// database records them; `dir` is where the files are ([`Layout::folder`]). `location` is set
/// when the folder holds one location's parts only.
#[derive(Debug, Clone)]
pub struct PartFolder {
    pub dir: PathBuf,
    pub name: String,
    pub format: Format,
    pub location: Option<String>,
}

/// An output folder and the part folders a job writes in it.
pub struct OutputDir {
    /// Where part files are written: the output folder itself, or for an object store a
    /// staging folder whose finished files [`OutputDir::publish`] uploads and removes.
    pub root: PathBuf,
    pub store: Store,
    pub layout: Layout,
    pub folders: Vec<PartFolder>,
}

impl OutputDir {
    /// Make the folder this job's: refuse one that another job owns or fills, then write the
    /// owner marker and remove the last manifest (it describes a finished run only).
    /// `force` writes beside files this tool did not write; `state` is the state database,
    /// which may live in the folder.
    pub async fn claim(
        &self,
        key: &str,
        status: JobStatus,
        (restart, force): (bool, bool),
        state: &Path,
    ) -> Result<()> {
        let owner = self
            .store
            .get(OWNER_MARKER)
            .await?
            .map(|s| String::from_utf8_lossy(&s).trim().to_string());
        if owner.is_none() && !force {
            if let Some(file) = self.store.local_root().and_then(|r| not_ours(r, state)) {
                return Err(JobError::usage(format!(
                    "{} holds files this tool did not write (e.g. {}): part files would be mixed in beside them. Use an empty or new --out folder, or pass --force to write there anyway",
                    self.store,
                    file.display()
                )));
            }
        }
        let foreign = match &owner {
            _ if restart => None,
            Some(o) if o != key => Some(format!("belongs to another export (job {o})")),
            None if status == JobStatus::New => {
                let files = self.part_files().await?;
                (!files.is_empty()).then(|| {
                    format!(
                        "already holds {} part files of another export (e.g. {})",
                        files.len(),
                        self.store.describe(&files[0])
                    )
                })
            }
            _ => None,
        };
        if let Some(why) = foreign {
            return Err(JobError::usage(format!(
                "{} {why}; use an empty --out folder (such as one per night), or --restart to replace its contents",
                self.store
            )));
        }
        std::fs::create_dir_all(&self.root)
            .map_err(|e| JobError::io("create output folder", &self.root, e))?;
        self.store
            .put(OWNER_MARKER, format!("{key}\n").into_bytes())
            .await?;
        self.store.delete(MANIFEST).await
    }

    /// The key of a part folder under the root (`contacts`, `rejects/contacts`,
    /// `table=contacts/location_id=L/run=R`).
    fn table_key(&self, f: &PartFolder) -> String {
        self.relative(&f.dir)
    }

    /// Part files (finished or temporary) in any of the folders, of any format, and the
    /// partition folders of an incremental export, as keys.
    async fn part_files(&self) -> Result<Vec<String>> {
        let mut found: Vec<String> = self
            .store
            .top_folders()
            .await?
            .into_iter()
            // `table=events` is `listen`'s, which shares the dataset with the export.
            .filter(|k| k.starts_with("table=") && k != crate::table::EVENTS_DIR)
            .take(1)
            .collect();
        for f in &self.folders {
            for key in self.store.list(&self.table_key(f)).await? {
                let name = key.rsplit('/').next().unwrap_or_default();
                if name.starts_with("part-") || name.starts_with(".part-") {
                    found.push(key);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Remove part files a crash left behind (written but never committed). Runs before any
    /// location starts writing, so no live temporary file is touched.
    pub async fn sweep_uncommitted(
        &self,
        parts: &[CommittedPart],
        locations: &[String],
    ) -> Result<()> {
        if self.store.local_root().is_none() {
            return self.sweep_store(parts).await;
        }
        for f in &self.folders {
            let keep: Vec<u32> = parts
                .iter()
                .filter(|p| p.table == f.name)
                .filter(|p| f.location.as_ref().is_none_or(|l| *l == p.location))
                .filter_map(|p| {
                    let index = locations.iter().position(|l| *l == p.location)?;
                    self.layout.part_number(index, p.seq).ok()
                })
                .collect();
            for r in sink::clean_uncommitted_in(&f.dir, f.format, &keep)? {
                tracing::info!(path = %r.display(), "Removed an uncommitted part file of an interrupted run.");
            }
        }
        Ok(())
    }

    /// The sweep on an object store: the staging folder holds nothing committed (a finished
    /// part is uploaded and removed before its commit), and objects of part files the state
    /// database does not know were uploaded by a run that died before committing them.
    async fn sweep_store(&self, parts: &[CommittedPart]) -> Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(JobError::io("clear the staging folder", &self.root, e));
            }
            _ => {}
        }
        let committed: HashSet<&str> = parts.iter().map(|p| p.path.as_str()).collect();
        for f in &self.folders {
            for key in self.store.list(&self.table_key(f)).await? {
                let name = key.rsplit('/').next().unwrap_or_default();
                if sink::parse_part_name(name, f.format).is_some()
                    && !committed.contains(key.as_str())
                {
                    self.store.delete(&key).await?;
                    tracing::info!(object = %self.store.describe(&key), "Removed an uncommitted part file of an interrupted run.");
                }
            }
        }
        Ok(())
    }

    /// Make a finished part file visible where the output goes, before it is committed: in a
    /// local folder it already is (renamed into place); to an object store it is uploaded
    /// whole (multipart, streamed) and its staging copy removed. Runs on a writer's blocking
    /// thread, inside the runtime.
    pub fn publish(&self, local: &Path) -> Result<()> {
        if self.store.local_root().is_some() {
            return Ok(());
        }
        let key = self.relative(local);
        tokio::runtime::Handle::current().block_on(self.store.put_file(&key, local))?;
        std::fs::remove_file(local).map_err(|e| JobError::io("remove the uploaded", local, e))
    }

    /// Delete the part files of `parts` (for `--restart`); any left are swept as uncommitted.
    pub async fn remove_parts(&self, parts: &[CommittedPart]) {
        for part in parts {
            if let Err(error) = self.store.delete(&part.path).await {
                tracing::warn!(%error, "Could not remove a part file of the previous run.");
            }
        }
    }

    /// A part file's path as the state database and the manifest record it: under the root,
    /// `/`-separated (it is an object key too).
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let parts: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
        parts.join("/")
    }

    pub async fn has_manifest(&self) -> Result<bool> {
        Ok(self.store.get(MANIFEST).await?.is_some())
    }

    /// The folder of table `name`'s part files for `location` (see [`Layout::folder`]).
    pub fn folder(&self, name: &str, location: &str) -> PathBuf {
        self.layout.folder(&self.root, name, location)
    }

    /// Write a manifest under `name` (relative to the root) atomically: temporary file then
    /// rename, or one PUT.
    pub async fn write_manifest_as(&self, name: &str, manifest: &serde_json::Value) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        self.store.put(name, bytes).await
    }

    /// Write the manifest. It is the last write of a job, so an object store's empty staging
    /// folder goes with it.
    pub async fn write_manifest(&self, manifest: &serde_json::Value) -> Result<()> {
        self.write_manifest_as(MANIFEST, manifest).await?;
        if self.store.local_root().is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
            if let Some(staging) = self.root.parent() {
                let _ = std::fs::remove_dir(staging);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_stay_in_their_location_range() {
        assert_eq!(part_number(0, 0).unwrap(), 0);
        assert_eq!(part_number(2, 7).unwrap(), 200_007);
        assert!(part_number(0, PARTS_PER_LOCATION).is_err());
    }

    #[test]
    fn hive_folders_partition_by_table_location_and_run() {
        let hive = Layout::Hive {
            run: "20261126T020000Z".into(),
        };
        let root = Path::new("/out");
        assert_eq!(
            hive.folder(root, "contacts", "L1"),
            Path::new("/out/table=contacts/location_id=L1/run=20261126T020000Z")
        );
        assert_eq!(
            hive.folder(root, "rejects/notes", "L1"),
            Path::new("/out/rejects/table=notes/location_id=L1/run=20261126T020000Z")
        );
        // An id cannot climb out of its folder or add a partition.
        assert_eq!(
            hive.folder(root, "contacts", "../a=b"),
            Path::new("/out/table=contacts/location_id=..%2Fa%3Db/run=20261126T020000Z")
        );
        assert_eq!(partition_value(".."), "%2E%2E%00");
        assert_eq!(hive.part_number(3, 7).unwrap(), 7);
        assert_eq!(
            Layout::Flat.folder(root, "rejects/notes", "L1"),
            Path::new("/out/rejects/notes")
        );
        assert_eq!(Layout::Flat.part_number(2, 7).unwrap(), 200_007);
    }

    #[tokio::test]
    async fn a_folder_of_another_job_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir {
            root: dir.path().to_path_buf(),
            store: Store::Local(dir.path().to_path_buf()),
            layout: Layout::Flat,
            folders: vec![],
        };
        out.claim(
            "job-a",
            JobStatus::New,
            (false, false),
            Path::new("s.sqlite"),
        )
        .await
        .unwrap();
        let err = out
            .claim(
                "job-b",
                JobStatus::New,
                (false, false),
                Path::new("s.sqlite"),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to another export (job job-a)"),
            "{err}"
        );
        out.claim(
            "job-b",
            JobStatus::New,
            (true, false),
            Path::new("s.sqlite"),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn on_an_object_store_the_sweep_removes_only_uncommitted_parts() {
        let mem = std::sync::Arc::new(object_store::memory::InMemory::new());
        let store = Store::object(mem, "night", "memory:///night", 1 << 20);
        let staging = tempfile::tempdir().unwrap();
        let root = staging.path().join("job-a");
        let out = OutputDir {
            root: root.clone(),
            store: store.clone(),
            layout: Layout::Flat,
            folders: vec![PartFolder {
                dir: root.join("contacts"),
                name: "contacts".into(),
                format: Format::Csv,
                location: None,
            }],
        };
        out.claim(
            "job-a",
            JobStatus::New,
            (false, false),
            Path::new("s.sqlite"),
        )
        .await
        .unwrap();
        for key in [
            "contacts/part-00000.csv",
            "contacts/part-00001.csv",
            "contacts/notes.txt",
        ] {
            store.put(key, b"x".to_vec()).await.unwrap();
        }
        std::fs::write(root.join("part-00009.csv"), "left by a killed run").unwrap();
        let committed = [CommittedPart {
            table: "contacts".into(),
            location: "L".into(),
            seq: 0,
            path: "contacts/part-00000.csv".into(),
            rows: 1,
            bytes: 1,
        }];
        out.sweep_uncommitted(&committed, &["L".to_string()])
            .await
            .unwrap();
        assert_eq!(
            store.list("contacts").await.unwrap(),
            ["contacts/notes.txt", "contacts/part-00000.csv"]
        );
        assert!(!root.exists(), "the staging folder is cleared");

        let err = out
            .claim(
                "job-b",
                JobStatus::New,
                (false, false),
                Path::new("s.sqlite"),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("memory:///night belongs to another export (job job-a)"),
            "{err}"
        );
        out.write_manifest(&serde_json::json!({})).await.unwrap();
        assert!(out.has_manifest().await.unwrap());
    }
}
