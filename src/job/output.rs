//! The output folder of a job that writes part files: who owns it, how parts are numbered,
//! sweeping parts a crash left uncommitted, and the manifest written when the job finishes.
//!
//! A folder is owned by one job (`.ghl-etl-export` holds its key): the sweep deletes part files
//! the state database does not know, so it must never run where another job writes. An
//! incremental export owns its folder across runs (the marker holds the dataset's key); each
//! run writes and sweeps only its own `run=` folders, so earlier runs' files are never touched.
//!
//! Where part files go is decided in one place, [`Layout::folder`].

use std::path::{Path, PathBuf};

use crate::exit::{JobError, Result};
use crate::sink::{self, Format};
use crate::state::{CommittedPart, JobStatus};
use crate::table::TableKind;

/// Names the job (key) that owns an output folder.
const OWNER_MARKER: &str = ".ghl-etl-export";
/// Written last, when a job has finished: tables, row counts, files, costs.
pub const MANIFEST: &str = "_manifest.json";

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

/// One folder of part files of table `name` (`contacts`, `rejects/contacts`), as the state
/// database records them; `dir` is where the files are ([`Layout::folder`]). `location` is set
/// when the folder holds one location's parts only.
#[derive(Debug, Clone)]
pub struct PartFolder {
    pub dir: PathBuf,
    pub table: TableKind,
    pub name: String,
    pub format: Format,
    pub location: Option<String>,
}

/// An output folder and the part folders a job writes in it.
pub struct OutputDir {
    pub root: PathBuf,
    pub layout: Layout,
    pub folders: Vec<PartFolder>,
}

impl OutputDir {
    /// Make the folder this job's: refuse one that another job owns or fills, then write the
    /// owner marker and remove the last manifest (it describes a finished run only).
    pub fn claim(&self, key: &str, status: JobStatus, restart: bool) -> Result<()> {
        let marker = self.root.join(OWNER_MARKER);
        let owner = std::fs::read_to_string(&marker)
            .ok()
            .map(|s| s.trim().to_string());
        let foreign = match &owner {
            _ if restart => None,
            Some(o) if o != key => Some(format!("belongs to another export (job {o})")),
            None if status == JobStatus::New => {
                let files = self.part_files();
                (!files.is_empty()).then(|| {
                    format!(
                        "already holds {} part files of another export (e.g. {})",
                        files.len(),
                        files[0].display()
                    )
                })
            }
            _ => None,
        };
        if let Some(why) = foreign {
            return Err(JobError::usage(format!(
                "{} {why}; use an empty --out folder (such as one per night), or --restart to replace its contents",
                self.root.display()
            )));
        }
        std::fs::create_dir_all(&self.root)
            .map_err(|e| JobError::io("create output folder", &self.root, e))?;
        std::fs::write(&marker, format!("{key}\n"))
            .map_err(|e| JobError::io("write", &marker, e))?;
        let manifest = self.root.join(MANIFEST);
        match std::fs::remove_file(&manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(JobError::io("remove the previous", manifest, e))
            }
            _ => Ok(()),
        }
    }

    /// Part files (finished or temporary) in any of the folders, of any format, and the
    /// partition folders of an incremental export.
    fn part_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            found.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("table="))
                    .map(|e| e.path()),
            );
        }
        for f in &self.folders {
            let Ok(entries) = std::fs::read_dir(&f.dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("part-") || name.starts_with(".part-") {
                    found.push(e.path());
                }
            }
        }
        found.sort();
        found
    }

    /// Remove part files a crash left behind (written but never committed). Runs before any
    /// location starts writing, so no live temporary file is touched.
    pub fn sweep_uncommitted(&self, parts: &[CommittedPart], locations: &[String]) -> Result<()> {
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

    /// Delete the part files of `parts` (for `--restart`).
    pub fn remove_parts(&self, parts: &[CommittedPart]) {
        for part in parts {
            let _ = std::fs::remove_file(self.root.join(&part.path));
        }
    }

    /// A part file's path as the state database and the manifest record it: under the root.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    pub fn has_manifest(&self) -> bool {
        self.root.join(MANIFEST).exists()
    }

    /// The folder of table `name`'s part files for `location` (see [`Layout::folder`]).
    pub fn folder(&self, name: &str, location: &str) -> PathBuf {
        self.layout.folder(&self.root, name, location)
    }

    /// Write the manifest atomically (temporary file, then rename).
    pub fn write_manifest(&self, manifest: &serde_json::Value) -> Result<()> {
        self.write_manifest_as(MANIFEST, manifest)
    }

    /// Write a manifest under `name` (relative to the root) atomically.
    pub fn write_manifest_as(&self, name: &str, manifest: &serde_json::Value) -> Result<()> {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JobError::io("create", dir, e))?;
        }
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        let bytes = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        std::fs::write(&tmp, bytes).map_err(|e| JobError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| JobError::io("write", &path, e))
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

    #[test]
    fn a_folder_of_another_job_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir {
            root: dir.path().to_path_buf(),
            layout: Layout::Flat,
            folders: vec![],
        };
        out.claim("job-a", JobStatus::New, false).unwrap();
        let err = out.claim("job-b", JobStatus::New, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to another export (job job-a)"),
            "{err}"
        );
        out.claim("job-b", JobStatus::New, true).unwrap();
    }
}
