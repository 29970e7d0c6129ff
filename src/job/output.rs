//! The output folder of a job that writes part files: who owns it, how parts are numbered,
//! sweeping parts a crash left uncommitted, and the manifest written when the job finishes.
//!
//! A folder is owned by one job (`.ghl-etl-export` holds its key): the sweep deletes part files
//! the state database does not know, so it must never run where another job writes.

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

/// One folder of part files: `dir/<table>/part-NNNNN.<format>`, recorded in the state database
/// under `name` (`contacts`, `rejects/contacts`).
#[derive(Debug, Clone)]
pub struct PartFolder {
    pub dir: PathBuf,
    pub table: TableKind,
    pub name: String,
    pub format: Format,
}

/// An output folder and the part folders a job writes in it.
pub struct OutputDir {
    pub root: PathBuf,
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

    /// Part files (finished or temporary) in any of the folders, of any format.
    fn part_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for f in &self.folders {
            let Ok(entries) = std::fs::read_dir(f.dir.join(f.table.name())) else {
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
                .filter_map(|p| {
                    let index = locations.iter().position(|l| *l == p.location)?;
                    part_number(index, p.seq).ok()
                })
                .collect();
            for r in sink::clean_uncommitted(&f.dir, f.table, f.format, &keep)? {
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

    /// Write the manifest atomically (temporary file, then rename).
    pub fn write_manifest(&self, manifest: &serde_json::Value) -> Result<()> {
        self.write_json(MANIFEST, manifest)
    }

    /// Write a JSON file at the root atomically (temporary file, then rename).
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let path = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
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
    fn a_folder_of_another_job_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir {
            root: dir.path().to_path_buf(),
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
