//! Shared by the row-reader targets: write the bytes to a file and read every row; a reader
//! may refuse the file or a row, never panic, and row numbers only go up.

use std::path::PathBuf;

use ghl_etl::input::{open, InputFormat, InputOptions};

pub fn read_all(data: &[u8], ext: &str, format: InputFormat) {
    let path: PathBuf =
        std::env::temp_dir().join(format!("ghl-etl-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("temp file");
    // Small limits, so the size checks are reached by small inputs too.
    let opts = InputOptions {
        max_cell_bytes: 64,
        max_row_bytes: 4096,
    };
    if let Ok(reader) = open(&path, Some(format), &opts) {
        let mut last = 0;
        for item in reader {
            let row = match item {
                Ok(Ok(r)) => r.row,
                Ok(Err(bad)) => bad.row,
                Err(_) => break,
            };
            assert!(row > last, "row {row} after {last}");
            last = row;
        }
    }
}
