//! How many rows an input holds, for a progress bar's total, without parsing it: each file's
//! Parquet row count, or its line ends for CSV and NDJSON (a quoted newline counts one too
//! many, so it is an estimate).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{open, InputFormat, InputOptions};

/// The rows of the input at `path` (a file or a folder of parts); None when a file cannot be
/// read.
pub fn estimate_rows(path: &Path, format: Option<InputFormat>) -> Option<u64> {
    let reader = open(path, format, &InputOptions::default()).ok()?;
    let format = reader.format();
    let files: Vec<PathBuf> = reader.files().map(Path::to_path_buf).collect();
    drop(reader);
    files.iter().map(|f| rows_in(f, format)).sum()
}

fn rows_in(path: &Path, format: InputFormat) -> Option<u64> {
    let mut file = std::fs::File::open(path).ok()?;
    let header = match format {
        InputFormat::Csv { .. } => 1,
        InputFormat::Ndjson => 0,
        InputFormat::Parquet => {
            use ::parquet::file::reader::FileReader;
            let reader = ::parquet::file::reader::SerializedFileReader::new(file).ok()?;
            return u64::try_from(reader.metadata().file_metadata().num_rows()).ok();
        }
    };
    let (mut lines, mut last) = (0u64, b'\n');
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Some(lines.saturating_sub(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inputs_rows_are_counted_without_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "email\r\na@x.org\r\nb@x.org\r\nc@x.org").unwrap();
        let ndjson = dir.path().join("b.ndjson");
        std::fs::write(&ndjson, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        assert_eq!(
            estimate_rows(&csv, None),
            Some(3),
            "header off, last line without its end"
        );
        assert_eq!(estimate_rows(&ndjson, None), Some(2));
    }
}
