//! CSV input: one file, record by record, checked against its header.
//!
//! The csv crate parses RFC 4180 (quotes, embedded newlines) and strips a UTF-8 BOM; this
//! reader adds what a load needs: a header that names every column once, each record's starting
//! line, per-row checks (field count, UTF-8, NUL, cell size) that yield a [`BadRow`] and go on,
//! and a cap on row size, since an unclosed quote makes the rest of the file one record.
//!
//! Lines end with LF or CRLF; files with bare CR line ends (classic Mac) are not read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ::csv::{ByteRecord, Reader, ReaderBuilder};
use serde_json::{Map, Value};

use super::{over_limit, BadRow, InputError, InputOptions, InputRecord, RowResult};

/// The csv reader's buffer. The row cap allows this much slack, since the reader reads ahead.
const BUFFER: usize = 64 << 10;

pub(super) struct CsvFile {
    file: Arc<PathBuf>,
    reader: Reader<Capped<File>>,
    header: Vec<String>,
    record: ByteRecord,
    /// Shared with the [`Capped`] file under the reader: how far it may read before the record
    /// being parsed counts as too large. Moved forward before each record.
    cap: Arc<AtomicU64>,
    /// The file's length and whether its last byte is `\n`: with the reader's position after a
    /// record, they tell whether a newline ended it (see [`CsvFile::start_line`]).
    len: u64,
    ends_with_newline: bool,
    opts: InputOptions,
}

impl CsvFile {
    pub(super) fn open(
        file: Arc<PathBuf>,
        delimiter: u8,
        opts: &InputOptions,
    ) -> Result<Self, InputError> {
        let mut f = File::open(&*file).map_err(|e| InputError::io(&file, e))?;
        let (len, ends_with_newline) = last_byte(&mut f).map_err(|e| InputError::io(&file, e))?;
        let cap = Arc::new(AtomicU64::new(0));
        let reader = ReaderBuilder::new()
            .delimiter(delimiter)
            // Field counts are checked here, so a ragged row is a bad row with a clear reason.
            .flexible(true)
            // Only `\n` ends a record (the `\r` of CRLF is taken off the last field): with CR
            // also a terminator, the csv crate counts a CRLF's newline into the next record.
            .terminator(::csv::Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER)
            .from_reader(Capped {
                inner: f,
                read: 0,
                cap: cap.clone(),
            });
        let mut csv = CsvFile {
            file,
            reader,
            header: Vec::new(),
            record: ByteRecord::new(),
            cap,
            len,
            ends_with_newline,
            opts: opts.clone(),
        };
        csv.allow_next_record();
        let mut raw = match csv.reader.byte_headers() {
            Ok(raw) => raw.clone(),
            Err(e) => return Err(csv.fatal(e)),
        };
        strip_cr(&mut raw);
        csv.header = header(&raw).map_err(|reason| InputError::Header {
            path: csv.file.to_path_buf(),
            reason,
        })?;
        Ok(csv)
    }

    pub(super) fn columns(&self) -> &[String] {
        &self.header
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, InputError>> {
        loop {
            self.allow_next_record();
            // No record starts before the line the reader stands on (see `start_line`).
            let before = self.reader.position().clone();
            let from = before.line();
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) if self.is_blank_crlf_line(&before) => continue,
                Ok(true) => strip_cr(&mut self.record),
                Err(e) => return Some(Err(self.fatal(e))),
            }
            return Some(Ok(self.row(from)));
        }
    }

    /// Whether the record just read is a blank line of a CRLF file (only `\r`): skipped like
    /// the blank lines the csv crate skips itself. `""\r\n` reads as the same one field `\r`,
    /// but is a row (see `row`): told apart by the bytes the record's own line took, which are
    /// the bytes read less one per blank `\n` line skipped before it.
    fn is_blank_crlf_line(&self, before: &::csv::Position) -> bool {
        if self.record.len() != 1 || &self.record[0] != b"\r" {
            return false;
        }
        let end = self.reader.position();
        let skipped = (end.line() - before.line()).saturating_sub(1);
        end.byte() - before.byte() - skipped <= 2
    }

    /// The line the record just read starts on. The csv crate's record position is taken
    /// before the blank lines it skips, so count back from the end instead: the reader's line,
    /// less the newlines inside quoted fields, less the one that ended the record (every record
    /// ends with one, except a last record at the end of a file without a final newline).
    fn start_line(&self) -> u64 {
        let end = self.reader.position();
        let inside: usize = self
            .record
            .iter()
            .map(|f| f.iter().filter(|&&b| b == b'\n').count())
            .sum();
        let ended_by_newline = end.byte() < self.len || self.ends_with_newline;
        end.line()
            .saturating_sub(inside as u64 + u64::from(ended_by_newline))
    }

    /// The record ran to the end of the file inside a quoted field: a quote never closed.
    fn open_quote_at_eof(&self) -> bool {
        self.reader.position().byte() >= self.len
            && self.record.iter().any(|f| f.contains(&b'\n'))
            && self.record.len() != self.header.len()
    }

    /// Let the file under the reader be read up to one row past where the next record starts.
    fn allow_next_record(&self) {
        let start = self.reader.position().byte();
        let cap = start + (self.opts.max_row_bytes + BUFFER) as u64;
        self.cap.store(cap, Ordering::Relaxed);
    }

    fn fatal(&self, e: ::csv::Error) -> InputError {
        let path = self.file.to_path_buf();
        match e.into_kind() {
            ::csv::ErrorKind::Io(e) if e.get_ref().is_some_and(|e| e.is::<RowTooLarge>()) => {
                InputError::RowTooLarge {
                    path,
                    // Where the record began; the reader itself is far past it.
                    line: self.record.position().map_or(1, |p| p.line()),
                    limit: self.opts.max_row_bytes,
                }
            }
            ::csv::ErrorKind::Io(e) => InputError::Io { path, source: e },
            // Byte records and `flexible` leave only I/O errors; keep any other one readable.
            other => InputError::NotFormat {
                path,
                format: "CSV",
                reason: format!("{other:?}"),
            },
        }
    }

    fn row(&self, from: u64) -> RowResult {
        // Counting back can be one short when a quote left open swallowed the final newline
        // and the fields still matched the header (found by fuzzing).
        let row = self.start_line().max(from);
        // A row of empty cells (`,,,` as spreadsheets pad a sheet, or `""`) is a row all the
        // same, however many cells it has: it goes to the job, which reports it as blank.
        if self.record.iter().all(|f| f.is_empty()) {
            let fields = self
                .header
                .iter()
                .map(|h| (h.clone(), Value::from("")))
                .collect();
            return Ok(InputRecord {
                file: self.file.clone(),
                row,
                fields,
            });
        }
        match self.check() {
            Ok(fields) => Ok(InputRecord {
                file: self.file.clone(),
                row,
                fields,
            }),
            Err(reason) => Err(BadRow {
                file: self.file.clone(),
                row,
                reason,
                raw: Some(self.raw()),
            }),
        }
    }

    /// The record as fields, or why it is a bad row.
    fn check(&self) -> Result<Map<String, Value>, String> {
        if self.record.len() != self.header.len() {
            let hint = if self.open_quote_at_eof() {
                "; a quote opened in this row is never closed, so it runs to the end of the file"
            } else {
                ""
            };
            return Err(format!(
                "row has {} fields but the header has {}{hint}",
                self.record.len(),
                self.header.len()
            ));
        }
        let mut fields = Map::with_capacity(self.header.len());
        for (i, (name, cell)) in self.header.iter().zip(&self.record).enumerate() {
            if cell.len() > self.opts.max_cell_bytes {
                return Err(over_limit(cell.len(), name, &self.opts));
            }
            let text = std::str::from_utf8(cell).map_err(|_| {
                format!(
                    "invalid UTF-8 in column {} (`{name}`); is the file Latin-1 or \
                         Windows-1252? Save it as UTF-8",
                    i + 1
                )
            })?;
            if let Some(reason) = super::control_char(name, text) {
                return Err(reason);
            }
            fields.insert(name.clone(), Value::String(text.to_string()));
        }
        Ok(fields)
    }

    /// What a bad row's cells say, for the failed report (see [`BadRow::raw`]).
    fn raw(&self) -> Vec<(String, String)> {
        let name = |i: usize| {
            self.header
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("column {}", i + 1))
        };
        // An over-limit cell is left empty, not left out: the report keeps every column, so
        // the fixed file is still whole.
        self.record
            .iter()
            .enumerate()
            .map(|(i, cell)| match cell.len() <= self.opts.max_cell_bytes {
                true => (name(i), String::from_utf8_lossy(cell).into_owned()),
                false => (name(i), String::new()),
            })
            .collect()
    }
}

/// The file's length and whether it ends with `\n`, leaving it at its start.
fn last_byte(f: &mut File) -> io::Result<(u64, bool)> {
    let len = f.metadata()?.len();
    let mut last = [0u8];
    if len > 0 {
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        f.rewind()?;
    }
    Ok((len, last[0] == b'\n'))
}

/// Take the `\r` of a CRLF line end off a record's last field.
fn strip_cr(record: &mut ByteRecord) {
    let n = record.len();
    let Some(field) = n.checked_sub(1).and_then(|i| record[i].strip_suffix(b"\r")) else {
        return;
    };
    let field = field.to_vec();
    record.truncate(n - 1);
    record.push_field(&field);
}

/// Column names from a header record: present, UTF-8, non-empty and each used once, since a
/// mapping finds a column by its name.
fn header(raw: &ByteRecord) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("file is empty: no header row".into());
    }
    if let Some(first) = raw.get(0) {
        if first.starts_with(b"\xFF\xFE") || first.starts_with(b"\xFE\xFF") {
            return Err(
                "file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8".into(),
            );
        }
    }
    // UTF-16 without a byte-order mark: ASCII names with a NUL byte between letters.
    if raw.iter().any(|cell| cell.contains(&0)) {
        return Err(
            "the header holds NUL bytes: the file looks like UTF-16 (without a byte-order mark); save it as UTF-8 (in Excel: CSV UTF-8)".into(),
        );
    }
    let mut names: Vec<String> = Vec::with_capacity(raw.len());
    for (i, cell) in raw.iter().enumerate() {
        // The csv crate strips a BOM only when it arrives in one read; be sure.
        let cell = if i == 0 {
            cell.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(cell)
        } else {
            cell
        };
        let name = std::str::from_utf8(cell)
            .map_err(|_| format!("header column {} is not valid UTF-8", i + 1))?;
        if name.trim().is_empty() {
            return Err(format!("header column {} has no name", i + 1));
        }
        if let Some(first) = names.iter().position(|n| n == name) {
            return Err(format!(
                "header has `{name}` twice (columns {} and {})",
                first + 1,
                i + 1
            ));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Marks the I/O error [`Capped`] returns, so it is told apart from a real one.
#[derive(Debug)]
struct RowTooLarge;

impl std::fmt::Display for RowTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("row too large")
    }
}

impl std::error::Error for RowTooLarge {}

/// A file that refuses to be read past a moving cap. The csv crate grows a record without bound;
/// failing the read is the only way to stop it mid-record.
struct Capped<R> {
    inner: R,
    /// Bytes handed out so far.
    read: u64,
    cap: Arc<AtomicU64>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.cap.load(Ordering::Relaxed) {
            return Err(io::Error::other(RowTooLarge));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{open, InputFormat};
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `(row, Ok(value of column b))` or `(row, Err(reason))` for each row.
    fn summary(rows: &[RowResult]) -> Vec<(u64, Result<String, String>)> {
        rows.iter()
            .map(|r| match r {
                Ok(r) => (r.row, Ok(r.fields["b"].as_str().unwrap().to_string())),
                Err(b) => (b.row, Err(b.reason.clone())),
            })
            .collect()
    }

    #[test]
    fn malformed_rows_are_reported_and_reading_goes_on() {
        let big = "x".repeat(2 << 20);
        let cases: Vec<(&str, Vec<u8>, (u64, &str))> = vec![
            (
                "ragged, too many",
                b"a,b\n1,ok\n2,x,3\n4,ok2\n".to_vec(),
                (3, "row has 3 fields but the header has 2"),
            ),
            (
                "ragged, too few",
                b"a,b\n1,ok\n2\n4,ok2\n".to_vec(),
                (3, "row has 1 fields but the header has 2"),
            ),
            (
                "bad UTF-8",
                b"a,b\n1,ok\n2,\xff\xfe\n4,ok2\n".to_vec(),
                (
                    3,
                    "invalid UTF-8 in column 2 (`b`); is the file Latin-1 or Windows-1252? \
                     Save it as UTF-8",
                ),
            ),
            (
                "embedded NUL",
                b"a,b\n1,ok\n2,x\0y\n4,ok2\n".to_vec(),
                (3, "embedded NUL byte in column `b`"),
            ),
            (
                "cell over the limit",
                format!("a,b\n1,ok\n2,{big}\n4,ok2\n").into_bytes(),
                (
                    3,
                    "cell of 2097152 bytes in column `b` is over the 1048576-byte limit",
                ),
            ),
            (
                "after a quoted newline",
                b"a,b\n\"1\n\",ok\n2,x,3\n4,ok2\n".to_vec(),
                (4, "row has 3 fields but the header has 2"),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes, (bad_row, reason)) in cases {
            let path = write(dir.path(), "t.csv", &bytes);
            let rows = read_all(&path, None);
            let last = if name.contains("quoted") { 5 } else { 4 };
            let want = vec![
                (2, Ok("ok".to_string())),
                (bad_row, Err(reason.to_string())),
                (last, Ok("ok2".to_string())),
            ];
            assert_eq!(summary(&rows), want, "{name}");
        }
    }

    /// Found by `cargo fuzz run csv_rows`: a quote left open in the last row, whose fields
    /// still matched the header, swallowed the final newline and the row was numbered one line
    /// early, repeating the row number before it.
    #[test]
    fn fuzz_unclosed_quote_with_matching_fields_repeated_a_row_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", b"a,b\nx\ny,\"q,r\nz,w\n");
        let rows: Vec<u64> = read_all(&path, None)
            .iter()
            .map(|r| match r {
                Ok(rec) => rec.row,
                Err(bad) => bad.row,
            })
            .collect();
        assert_eq!(rows, [2, 3]);
    }

    #[test]
    fn bad_row_keeps_what_could_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", b"a,b\n1,\xff,extra\n");
        let rows = read_all(&path, None);
        let bad = rows[0].as_ref().unwrap_err();
        let raw = [("a", "1"), ("b", "\u{fffd}"), ("column 3", "extra")];
        let raw: Vec<_> = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(bad.raw.as_deref(), Some(&raw[..]));
        assert_eq!(
            bad.to_string(),
            format!("{}:2: {}", path.display(), bad.reason)
        );
    }

    #[test]
    fn an_over_limit_cell_keeps_its_column_empty_in_the_raw_row() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(2 << 20);
        let path = write(
            dir.path(),
            "t.csv",
            format!("a,b,c\n1,{big},3\n").as_bytes(),
        );
        let rows = read_all(&path, None);
        let bad = rows[0].as_ref().unwrap_err();
        assert!(bad.reason.contains("over the"), "{}", bad.reason);
        let raw: Vec<(String, String)> = [("a", "1"), ("b", ""), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            bad.raw.as_deref(),
            Some(&raw[..]),
            "every column, the big one empty"
        );
    }

    #[test]
    fn quoted_newlines_give_the_starting_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a,b\r\n1,\"two\nlines\"\r\n2,\"three\n\nlines\"\n\r\n\n3,\"last\"";
        let want = vec![
            (2, Ok("two\nlines".to_string())),
            (4, Ok("three\n\nlines".to_string())),
            (9, Ok("last".to_string())),
        ];
        for end in ["", "\n", "\r\n", "\n\n"] {
            let path = write(dir.path(), "t.csv", format!("{text}{end}").as_bytes());
            assert_eq!(summary(&read_all(&path, None)), want, "ending {end:?}");
        }
        let path = write(dir.path(), "t.csv", b"a,b\n1,\"x\ny\"");
        assert_eq!(
            summary(&read_all(&path, None)),
            [(2, Ok("x\ny".to_string()))]
        );
    }

    #[test]
    fn utf16_without_a_bom_is_named_at_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u16.csv");
        let text: Vec<u8> = "email,name\na@x.org,A\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(&path, text).unwrap();
        let err = CsvFile::open(Arc::new(path), b',', &InputOptions::default())
            .err()
            .expect("refused at the header")
            .to_string();
        assert!(
            err.contains("looks like UTF-16") && err.contains("save it as UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn bom_is_stripped_from_the_first_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", b"\xEF\xBB\xBFemail,b\nx@y.z,1\n");
        let rows = read_all(&path, None);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.fields.keys().collect::<Vec<_>>(), ["email", "b"]);
        // Our own strip, for a BOM the csv crate did not see whole.
        let raw = ByteRecord::from(vec![&b"\xEF\xBB\xBFemail"[..], b"b"]);
        assert_eq!(header(&raw).unwrap(), ["email", "b"]);
    }

    #[test]
    fn semicolon_and_tab_delimiters() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", b"a;b\n1;\"x;y\"\n");
        let rows = read_all(&path, Some(InputFormat::Csv { delimiter: b';' }));
        assert_eq!(summary(&rows), [(2, Ok("x;y".to_string()))]);

        let path = write(dir.path(), "t.tsv", b"a\tb\n1\tx,y\n");
        assert_eq!(
            summary(&read_all(&path, None)),
            [(2, Ok("x,y".to_string()))]
        );
    }

    #[test]
    fn blank_lines_are_skipped_but_rows_of_empty_cells_are_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "t.csv",
            b"a,b\n\n,\n1,\n\r\n,2\n\"\"\r\n,,,\n\n\r\n",
        );
        let rows = read_all(&path, None);
        let got: Vec<_> = rows.iter().map(|r| r.as_ref().unwrap()).collect();
        let lines: Vec<u64> = got.iter().map(|r| r.row).collect();
        assert_eq!(lines, [3, 4, 6, 7, 8]);
        assert_eq!((got[1].row, &got[1].fields["b"]), (4, &Value::from("")));
        assert_eq!((got[2].row, &got[2].fields["a"]), (6, &Value::from("")));
        // `""` and `,,,` are blank rows with every header column empty, not bad rows.
        for blank in [&got[0], &got[3], &got[4]] {
            assert_eq!(blank.fields.len(), 2);
            assert!(blank.fields.values().all(|v| v == &Value::from("")));
        }
    }

    #[test]
    fn header_only_file_has_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv", b"a,b\r\n");
        let r = open(&path, None, &InputOptions::default()).unwrap();
        assert_eq!(r.columns().unwrap(), ["a", "b"]);
        assert!(read_all(&path, None).is_empty());
    }

    #[test]
    fn bad_headers_are_fatal_and_name_the_column() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "file is empty: no header row"),
            (b"\n\n", "file is empty: no header row"),
            (
                b"id,email,name,x,email\n",
                "header has `email` twice (columns 2 and 5)",
            ),
            (b"id,,name\n", "header column 2 has no name"),
            (b"id,\xff\n", "header column 2 is not valid UTF-8"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (bytes, want) in cases {
            let path = write(dir.path(), "t.csv", bytes);
            let err = open(&path, None, &InputOptions::default()).err().unwrap();
            assert_eq!(err.to_string(), format!("{}: {want}", path.display()));
        }
    }

    #[test]
    fn unclosed_quote_stops_at_the_row_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = b"a,b\n1,ok\n2,\"never closed\n".to_vec();
        text.extend(b"3,more\n".repeat(100_000));
        let path = write(dir.path(), "t.csv", &text);
        let opts = InputOptions {
            max_row_bytes: 1000,
            ..InputOptions::default()
        };
        let mut r = open(&path, None, &opts).unwrap();
        assert_eq!(r.next().unwrap().unwrap().unwrap().row, 2);
        let err = r.next().unwrap().unwrap_err();
        assert!(
            matches!(err, InputError::RowTooLarge { limit: 1000, .. }),
            "{err}"
        );
        assert!(r.next().is_none());
    }
}
