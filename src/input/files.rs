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
    let format = match format {
        Some(f) => f,
        None => format_of(path)
            .map(|f| sniffed(path, f))
            .ok_or_else(|| InputError::Path {
                path: path.to_path_buf(),
                reason: format!(
                    "cannot tell the format from the file name; name it {KNOWN}, or give the format"
                ),
            })?,
    };
    Ok((vec![path.to_path_buf()], format))
}

/// A `.csv` file's separator, told from its header line: the candidate (`,` `;` tab `|`) found
/// most often outside quotes, `,` when none is. Excel saves CSV with `;` where `,` is the
/// decimal mark; read with `,`, such a file is one column and every row lands wrong.
fn sniffed(path: &Path, format: InputFormat) -> InputFormat {
    let InputFormat::Csv { delimiter: b',' } = format else {
        return format;
    };
    let delimiter = header_line(path).map_or(b',', |line| most_frequent_separator(&line));
    if delimiter != b',' {
        tracing::info!(
            file = %path.display(),
            separator = %(delimiter as char).escape_default(),
            "CSV columns separated by this character, as told by the header line (--delimiter sets it)."
        );
    }
    InputFormat::Csv { delimiter }
}

/// The first line of a file (at most 64 KiB of it).
fn header_line(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; 64 * 1024];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut buf).ok()?;
    buf.truncate(n);
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    buf.truncate(end);
    Some(buf)
}

fn most_frequent_separator(line: &[u8]) -> u8 {
    let candidates = [b',', b';', b'\t', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for b in line {
        if *b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|c| c == b) {
                counts[i] += 1;
            }
        }
    }
    // Ties go to the earlier candidate, `,` first.
    let best = (0..4).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    candidates[best]
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
    fn the_separator_is_told_from_the_header_line() {
        assert_eq!(
            most_frequent_separator(b"Email;First name;Last name\r"),
            b';'
        );
        assert_eq!(most_frequent_separator(b"email,name"), b',');
        assert_eq!(most_frequent_separator(b"email\tname\tphone"), b'\t');
        assert_eq!(
            most_frequent_separator(b"\"a;b\",c"),
            b',',
            "quoted separators do not count"
        );
        assert_eq!(most_frequent_separator(b"email"), b',');
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("excel.csv");
        std::fs::write(&path, "Email;Name\na@x.org;A, B\n").unwrap();
        let (_, format) = resolve(&path, None).unwrap();
        assert_eq!(format, InputFormat::Csv { delimiter: b';' });
    }

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
