//! NDJSON input: one JSON object per line, read a line at a time with the line length capped,
//! so one runaway line costs a bad row, not the memory of the whole file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::{bad_json_row, check_cells, BadRow, InputError, InputOptions, InputRecord, RowResult};

pub(super) struct NdjsonFile {
    file: Arc<PathBuf>,
    reader: BufReader<File>,
    /// Number of the line in `buf`.
    line: u64,
    buf: Vec<u8>,
    opts: InputOptions,
}

impl NdjsonFile {
    pub(super) fn open(file: Arc<PathBuf>, opts: &InputOptions) -> Result<Self, InputError> {
        let f = File::open(&*file).map_err(|e| InputError::io(&file, e))?;
        Ok(NdjsonFile {
            file,
            reader: BufReader::with_capacity(64 << 10, f),
            line: 0,
            buf: Vec::new(),
            opts: opts.clone(),
        })
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RowResult, InputError>> {
        loop {
            match self.read_line() {
                Err(e) => return Some(Err(InputError::io(&self.file, e))),
                Ok(Line::End) => return None,
                Ok(Line::TooLong) => {
                    let reason = format!(
                        "line is over the {}-byte row limit",
                        self.opts.max_row_bytes
                    );
                    return Some(Ok(Err(self.bad(reason))));
                }
                Ok(Line::Text) if self.text().iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Line::Text) => return Some(Ok(self.parse())),
            }
        }
    }

    /// Read the next line into `buf`, at most the row limit of it.
    fn read_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        self.line += 1;
        let limit = self.opts.max_row_bytes as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(Line::End);
        }
        if n as u64 == limit && !self.buf.ends_with(b"\n") {
            self.skip_rest_of_line()?;
            return Ok(Line::TooLong);
        }
        Ok(Line::Text)
    }

    /// Discard up to and including the next newline, without keeping it in memory.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                self.reader.consume(i + 1);
                return Ok(());
            }
            let n = chunk.len();
            self.reader.consume(n);
        }
    }

    /// The line without its line ending, and without a BOM on the first line (Windows tools
    /// write one).
    fn text(&self) -> &[u8] {
        let mut text = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if self.line == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        text
    }

    fn parse(&self) -> RowResult {
        let text = std::str::from_utf8(self.text()).map_err(|e| {
            self.bad(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to() + 1
            ))
        })?;
        let fields = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => {
                let kind = kind(&other);
                return Err(self.bad(format!("line is not a JSON object (it is {kind})")));
            }
            Err(e) => return Err(self.bad(json_error(&e))),
        };
        if let Err(reason) = check_cells(&fields, &self.opts) {
            return Err(bad_json_row(
                &self.file, self.line, reason, &fields, &self.opts,
            ));
        }
        Ok(InputRecord {
            file: self.file.clone(),
            row: self.line,
            fields,
        })
    }

    /// A line nothing could be read from.
    fn bad(&self, reason: String) -> BadRow {
        BadRow {
            file: self.file.clone(),
            row: self.line,
            reason,
            raw: None,
        }
    }
}

enum Line {
    Text,
    TooLong,
    End,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message with the column, without its "line 1": each line is parsed alone, and
/// the row number is already on the bad row.
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    format!("invalid JSON at column {}: {message}", e.column())
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{open, InputFormat};
    use super::*;
    use serde_json::json;

    /// `(row, Ok(value of "b"))` or `(row, Err(reason))` for each row.
    fn summary(rows: &[RowResult]) -> Vec<(u64, Result<Value, String>)> {
        rows.iter()
            .map(|r| match r {
                Ok(r) => (r.row, Ok(r.fields["b"].clone())),
                Err(b) => (b.row, Err(b.reason.clone())),
            })
            .collect()
    }

    #[test]
    fn malformed_lines_are_reported_and_reading_goes_on() {
        let big = "x".repeat(2 << 20);
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "bad JSON",
                r#"{"b": 1,"#.into(),
                "invalid JSON at column 8: EOF while parsing a value",
            ),
            (
                "trailing text",
                r#"{"b": 1} x"#.into(),
                "invalid JSON at column 10: trailing characters",
            ),
            (
                "an array",
                "[1, 2]".into(),
                "line is not a JSON object (it is an array)",
            ),
            (
                "a string",
                r#""b""#.into(),
                "line is not a JSON object (it is a string)",
            ),
            (
                "null",
                "null".into(),
                "line is not a JSON object (it is null)",
            ),
            (
                "escaped NUL",
                r#"{"b": "x\u0000y"}"#.into(),
                "embedded NUL byte in column `b`",
            ),
            (
                "cell over the limit",
                format!(r#"{{"a": 1, "b": "{big}"}}"#),
                "cell of 2097152 bytes in column `b` is over the 1048576-byte limit",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ndjson");
        for (name, line, reason) in cases {
            let text = format!("{{\"b\": \"ok\"}}\n{line}\n\n  \n{{\"b\": [1, null]}}\n");
            std::fs::write(&path, text).unwrap();
            let want = vec![
                (1, Ok(json!("ok"))),
                (2, Err(reason.to_string())),
                (5, Ok(json!([1, null]))),
            ];
            assert_eq!(summary(&read_all(&path, None)), want, "{name}");
        }
    }

    #[test]
    fn invalid_utf8_and_overlong_lines_are_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut text = b"{\"b\": \"\xff\"}\n".to_vec();
        text.extend(format!("{{\"b\": \"{}\"}}\r\n", "x".repeat(200)).as_bytes());
        text.extend(b"{\"b\": 3}\r\n");
        std::fs::write(&path, text).unwrap();
        let opts = InputOptions {
            max_row_bytes: 100,
            ..InputOptions::default()
        };
        let rows: Vec<_> = open(&path, None, &opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want = vec![
            (1, Err("invalid UTF-8 at byte 8 of the line".to_string())),
            (2, Err("line is over the 100-byte row limit".to_string())),
            (3, Ok(json!(3))),
        ];
        assert_eq!(summary(&rows), want);
    }

    #[test]
    fn values_keep_their_types_and_order_and_a_bom_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.txt");
        let line = r#"{"z": 1.5, "b": true, "a": {"n": null}, "s": ""}"#;
        std::fs::write(&path, format!("\u{feff}{line}")).unwrap();
        let rows = read_all(&path, Some(InputFormat::Ndjson));
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.row, 1);
        assert_eq!(r.fields.keys().collect::<Vec<_>>(), ["z", "b", "a", "s"]);
        assert_eq!(
            Value::Object(r.fields.clone()),
            serde_json::from_str::<Value>(line).unwrap()
        );
    }

    #[test]
    fn a_bad_cell_keeps_the_other_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ndjson");
        std::fs::write(
            &path,
            "{\"id\": 7, \"b\": \"a\\u0000\", \"tags\": [\"x\"]}\n",
        )
        .unwrap();
        let rows = read_all(&path, None);
        let raw = rows[0].as_ref().unwrap_err().raw.clone().unwrap();
        let want = [("id", "7"), ("b", "a\0"), ("tags", "[\"x\"]")];
        let want: Vec<_> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(raw, want);
    }
}
