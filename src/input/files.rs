//! Which files an input path stands for, and in which format: the file itself, or a folder's
//! part files in name order. Reading them is the format readers' job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{InputError, InputFormat};

/// The extensions the format of a file is known by.
const KNOWN: &str = ".csv, .tsv, .ndjson, .jsonl or .parquet";

/// The format a file's extension (in any case) names, if any.
pub fn format_of(path: &Path) -> Option<InputFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(InputFormat::Csv { delimiter: b',' }),
        "tsv" => Some(InputFormat::Csv { delimiter: b'\t' }),
        "ndjson" | "jsonl" => Some(InputFormat::Ndjson),
        "parquet" => Some(InputFormat::Parquet),
        _ => None,
    }
}

/// The files to read for `path` and their format.
pub(super) fn resolve(
    path: &Path,
    format: Option<InputFormat>,
) -> Result<(Vec<PathBuf>, InputFormat), InputError> {
    let meta = std::fs::metadata(path).map_err(|e| InputError::io(path, e))?;
    if meta.is_dir() {
        return folder(path, format);
    }
    let format = format
        .or_else(|| format_of(path))
        .ok_or_else(|| InputError::Path {
            path: path.to_path_buf(),
            reason: format!(
                "cannot tell the format from the file name; name it {KNOWN}, or give the format"
            ),
        })?;
    Ok((vec![path.to_path_buf()], format))
}

/// A folder's part files. An explicit format takes the files whose extension names the same
/// kind (a CSV format takes `.csv` and `.tsv`, keeping its own delimiter).
fn folder(
    dir: &Path,
    format: Option<InputFormat>,
) -> Result<(Vec<PathBuf>, InputFormat), InputError> {
    let candidates = visible_files(dir)?;
    let format = match format {
        Some(f) => f,
        None => folder_format(dir, &candidates)?,
    };
    // Byte order of names is the order the export numbers its parts in (zero-padded), and the
    // order `ls` shows, so a person can tell which file comes first.
    let files: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|f| format_of(f).is_some_and(|g| same_kind(g, format)))
        .collect();
    if files.is_empty() {
        return Err(no_parts(dir));
    }
    Ok((files, format))
}

/// Regular files of a folder, sorted by name, without hidden or temporary ones: the export
/// writes a part as `.part-00001.csv.tmp` and renames it only once it is complete.
fn visible_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InputError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| InputError::io(dir, e))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `metadata` follows symlinks, so a linked part file counts.
        let is_file = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
        if !hidden && is_file {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The one format a folder's files have; refuse a mix rather than guess which to read.
fn folder_format(dir: &Path, files: &[PathBuf]) -> Result<InputFormat, InputError> {
    let known: Vec<&PathBuf> = files.iter().filter(|f| format_of(f).is_some()).collect();
    let Some(first) = known.first().and_then(|f| format_of(f)) else {
        return Err(no_parts(dir));
    };
    if known.iter().all(|f| format_of(f) == Some(first)) {
        return Ok(first);
    }
    let exts: BTreeSet<String> = known
        .iter()
        .filter_map(|f| Some(f.extension()?.to_str()?.to_ascii_lowercase()))
        .collect();
    Err(InputError::Path {
        path: dir.to_path_buf(),
        reason: format!(
            "holds part files of more than one format (.{}); give the format to read",
            exts.into_iter().collect::<Vec<_>>().join(", .")
        ),
    })
}

fn same_kind(a: InputFormat, b: InputFormat) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

fn no_parts(dir: &Path) -> InputError {
    InputError::Path {
        path: dir.to_path_buf(),
        reason: format!("folder has no part files ({KNOWN})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_names_the_format() {
        let cases = [
            ("a.csv", Some(InputFormat::Csv { delimiter: b',' })),
            ("a.TSV", Some(InputFormat::Csv { delimiter: b'\t' })),
            ("a.ndjson", Some(InputFormat::Ndjson)),
            ("a.jsonl", Some(InputFormat::Ndjson)),
            ("part-00000.parquet", Some(InputFormat::Parquet)),
            (".part-00000.csv.tmp", None),
            ("a.json", None),
            ("csv", None),
        ];
        for (name, want) in cases {
            assert_eq!(format_of(Path::new(name)), want, "{name}");
        }
    }
}
