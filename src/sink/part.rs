//! Part files on disk: written under a hidden temporary name, made visible by a rename only
//! once complete and durable, and swept on resume.
//!
//! The sequence in [`PartWriter::finish`] is the classic one: flush, fsync the file, rename
//! it to its final name, fsync the directory (and its parent, in case the table directory is
//! new). Only after `finish` returns may the caller record the part as committed; if the
//! process dies anywhere before that, the part is either a hidden `.tmp` file or a finished
//! file the state database does not know, and [`clean_uncommitted`] removes both.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Encoder, Format, SinkError, SinkOptions};
use crate::table::{Row, TableKind, TableSchema};

/// `part-00042.parquet`
pub fn part_file_name(part: u32, format: Format) -> String {
    format!("part-{part:05}.{}", format.extension())
}

/// `.part-00042.parquet.tmp`: hidden, and no `*.parquet` glob matches it.
pub fn temp_file_name(part: u32, format: Format) -> String {
    format!(".{}.tmp", part_file_name(part, format))
}

/// `dir/<table>`
pub fn table_dir(dir: &Path, table: TableKind) -> PathBuf {
    dir.join(table.name())
}

/// `dir/<table>/part-NNNNN.<ext>`
pub fn part_path(dir: &Path, table: TableKind, part: u32, format: Format) -> PathBuf {
    table_dir(dir, table).join(part_file_name(part, format))
}

/// A finished part file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartFile {
    pub table: TableKind,
    pub part: u32,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// Writer for one part file of one table.
///
/// Dropping a writer without calling [`finish`](PartWriter::finish) removes its temporary
/// file, as [`abort`](PartWriter::abort) does.
pub struct PartWriter {
    table: TableKind,
    part: u32,
    /// The folder the part is in.
    dir: PathBuf,
    tmp_path: PathBuf,
    final_path: PathBuf,
    /// `None` once finished or aborted.
    encoder: Option<Encoder<File>>,
}

impl PartWriter {
    /// Opens `dir/<table>/.part-NNNNN.<ext>.tmp` (creating `dir/<table>/`).
    pub fn create(
        dir: &Path,
        schema: Arc<TableSchema>,
        part: u32,
        opts: &SinkOptions,
    ) -> Result<PartWriter, SinkError> {
        let folder = table_dir(dir, schema.table);
        PartWriter::create_in(&folder, schema, part, opts)
    }

    /// Opens `folder/.part-NNNNN.<ext>.tmp` (creating `folder`): the part files of one table
    /// go straight into `folder`, wherever the dataset's layout puts it.
    ///
    /// Refuses to start a part whose finished file already exists: that file is either
    /// committed (and must not be overwritten) or left over from a crash (and must be swept
    /// by [`clean_uncommitted`] first).
    pub fn create_in(
        folder: &Path,
        schema: Arc<TableSchema>,
        part: u32,
        opts: &SinkOptions,
    ) -> Result<PartWriter, SinkError> {
        let table = schema.table;
        let table_dir = folder.to_path_buf();
        let final_path = table_dir.join(part_file_name(part, opts.format));
        let tmp_path = table_dir.join(temp_file_name(part, opts.format));
        fs::create_dir_all(&table_dir)
            .map_err(|e| SinkError::io("create directory", &table_dir, e))?;
        if final_path.exists() {
            return Err(SinkError::PartExists { path: final_path });
        }
        // Truncate: a temporary file of the same name is a dead attempt at this very part.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|e| SinkError::io("create", &tmp_path, e))?;
        let encoder = match Encoder::new(file, schema, opts) {
            Ok(encoder) => encoder,
            Err(source) => {
                remove_quietly(&tmp_path);
                return Err(SinkError::Encode {
                    path: tmp_path,
                    source,
                });
            }
        };
        Ok(PartWriter {
            table,
            part,
            dir: table_dir,
            tmp_path,
            final_path,
            encoder: Some(encoder),
        })
    }

    /// Writes one row. `raw` is the record as the API returned it; NDJSON writes it when
    /// `raw_ndjson` is set (lossless export with no mapping: unknown fields kept), else the
    /// typed row as a JSON object keyed by column name.
    ///
    /// A row error ([`SinkError::is_row_error`]) leaves the part untouched and usable.
    pub fn write(&mut self, row: &Row, raw: Option<&serde_json::Value>) -> Result<(), SinkError> {
        let encoder = self.encoder.as_mut().ok_or_else(|| {
            SinkError::io(
                "write",
                &self.tmp_path,
                std::io::Error::other("part writer already closed"),
            )
        })?;
        encoder.write(row, raw).map_err(|source| SinkError::Encode {
            path: self.tmp_path.clone(),
            source,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.encoder.as_ref().map_or(0, Encoder::rows)
    }

    pub fn table(&self) -> TableKind {
        self.table
    }

    pub fn part(&self) -> u32 {
        self.part
    }

    /// Where the finished part will be.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Flush, fsync, rename to `part-NNNNN.<ext>`, fsync the directory. Returns what was
    /// written. On failure the temporary file is removed; a finished file whose directory
    /// could not be synced is left for [`clean_uncommitted`], since the caller will not
    /// commit it.
    pub fn finish(mut self) -> Result<PartFile, SinkError> {
        let Some(encoder) = self.encoder.take() else {
            return Err(SinkError::io(
                "finish",
                &self.tmp_path,
                std::io::Error::other("part writer already closed"),
            ));
        };
        let rows = encoder.rows();
        let result = self.seal(encoder);
        if result.is_err() {
            remove_quietly(&self.tmp_path);
        }
        let bytes = result?;
        sync_dir(&self.dir)?;
        // The folder and its parents may be new (a partitioned layout nests three deep):
        // their entries must be durable too.
        for parent in self.dir.ancestors().skip(1).take(3) {
            if !parent.as_os_str().is_empty() {
                sync_dir(parent)?;
            }
        }
        Ok(PartFile {
            table: self.table,
            part: self.part,
            path: self.final_path.clone(),
            rows,
            bytes,
        })
    }

    /// Completes the temporary file and renames it; returns its size.
    fn seal(&self, encoder: Encoder<File>) -> Result<u64, SinkError> {
        let file = encoder.finish().map_err(|source| SinkError::Encode {
            path: self.tmp_path.clone(),
            source,
        })?;
        file.sync_all()
            .map_err(|e| SinkError::io("fsync", &self.tmp_path, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| SinkError::io("stat", &self.tmp_path, e))?
            .len();
        drop(file);
        fs::rename(&self.tmp_path, &self.final_path)
            .map_err(|e| SinkError::io("rename", &self.tmp_path, e))?;
        Ok(bytes)
    }

    /// Drop the temporary file (failed part).
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        if let Some(encoder) = self.encoder.take() {
            // Closing the file before removing it matters on Windows.
            drop(encoder);
            remove_quietly(&self.tmp_path);
        }
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

fn remove_quietly(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "Could not remove a temporary part file.");
        }
    }
}

/// Makes a rename or removal in `dir` durable. Directories cannot be opened for syncing on
/// Windows, where the rename is durable once it returns.
fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SinkError::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Remove leftover temporary files and any part files not in `committed` for this table
/// (used on resume, so a part written but not committed before a crash is rewritten, never
/// duplicated). Returns the removed paths, sorted. Files that are not part files of this
/// sink (e.g. a `README` someone put there) are left alone, as are part files of other
/// formats.
pub fn clean_uncommitted(
    dir: &Path,
    table: TableKind,
    format: Format,
    committed: &[u32],
) -> Result<Vec<PathBuf>, SinkError> {
    clean_uncommitted_in(&table_dir(dir, table), format, committed)
}

/// [`clean_uncommitted`] for the part files directly in `folder`.
pub fn clean_uncommitted_in(
    folder: &Path,
    format: Format,
    committed: &[u32],
) -> Result<Vec<PathBuf>, SinkError> {
    let table_dir = folder.to_path_buf();
    let entries = match fs::read_dir(&table_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SinkError::io("list", &table_dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SinkError::io("list", &table_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = if is_temp_name(name) {
            true
        } else {
            parse_part_name(name, format).is_some_and(|part| !committed.contains(&part))
        };
        if stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| SinkError::io("remove", &path, e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(&table_dir)?;
    }
    removed.sort();
    Ok(removed)
}

/// Temporary files of any format: none is ever a finished output.
fn is_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|n| Format::ALL.iter().any(|&f| parse_part_name(n, f).is_some()))
}

/// `part-00042.parquet` -> 42 (for the given format's extension).
pub fn parse_part_name(name: &str, format: Format) -> Option<u32> {
    let digits = name
        .strip_prefix("part-")?
        .strip_suffix(format.extension())?
        .strip_suffix('.')?;
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            for part in [0, 7, 99_999, 100_000, u32::MAX] {
                let name = part_file_name(part, format);
                assert_eq!(parse_part_name(&name, format), Some(part), "{name}");
                assert!(is_temp_name(&temp_file_name(part, format)));
                assert!(!is_temp_name(&name));
            }
        }
        assert_eq!(part_file_name(3, Format::Csv), "part-00003.csv");
        assert_eq!(
            temp_file_name(3, Format::Parquet),
            ".part-00003.parquet.tmp"
        );
    }

    #[test]
    fn foreign_names_are_not_parts() {
        for name in [
            "part-1.csv",
            "part-00001.csv.bak",
            "part-0000a.csv",
            "xpart-00001.csv",
            "part-00001csv",
            "part-99999999999.csv",
        ] {
            assert_eq!(parse_part_name(name, Format::Csv), None, "{name}");
        }
        assert_eq!(parse_part_name("part-00001.csv", Format::Parquet), None);
        assert!(!is_temp_name(".part-00001.csv"));
        assert!(!is_temp_name("part-00001.csv.tmp"));
        assert!(!is_temp_name(".notes.tmp"));
    }
}
