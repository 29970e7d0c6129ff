//! Diagnostics for mapping files: positioned errors, their rustc-like rendering, and the
//! "did you mean" suggestions.
//!
//! Loading a mapping never stops at the first problem: every check pushes into a [`Diag`],
//! and the caller gets all of them at once as [`MappingErrors`]. This module only knows
//! positions and words; which checks exist is decided in `compile`.

use std::fmt;
use std::ops::Range;

/// One problem in a mapping file, at a 1-based line and column (column counted in
/// characters). `line == 0` means the problem concerns the whole file (for example it
/// could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingError {}

/// Every problem found in one mapping file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingErrors(pub Vec<MappingError>);

impl MappingErrors {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, MappingError> {
        self.0.iter()
    }
}

impl fmt::Display for MappingErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "error: {e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingErrors {}

/// Position lookups for one source text.
#[derive(Debug)]
pub(crate) struct SourceMap<'t> {
    pub file: String,
    pub text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> SourceMap<'t> {
    pub fn new(file: &str, text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap {
            file: file.to_string(),
            text,
            line_starts,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// The source span of the character at `inner` (a byte offset into the decoded string)
    /// of the TOML string literal at `span`. Exact when the literal has no escapes;
    /// otherwise the literal's start, which is still on the right line.
    pub fn inner_span(&self, span: &Range<usize>, decoded: &str, inner: usize) -> Range<usize> {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let quote_len = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            1
        } else {
            0
        };
        let body = raw.get(quote_len..raw.len().saturating_sub(quote_len));
        if body == Some(decoded) {
            let at = span.start + quote_len + inner;
            at..at + 1
        } else {
            span.clone()
        }
    }
}

/// The collector every check writes into.
pub(crate) struct Diag<'s, 't> {
    pub src: &'s SourceMap<'t>,
    pub errors: Vec<(usize, MappingError)>,
}

impl<'s, 't> Diag<'s, 't> {
    pub fn new(src: &'s SourceMap<'t>) -> Self {
        Diag {
            src,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let (line, column) = self.src.position(span.start);
        self.errors.push((
            span.start,
            MappingError {
                file: self.src.file.clone(),
                line,
                column,
                message: message.into(),
                help,
            },
        ));
    }

    /// Errors sorted by position (a stable sort keeps checks at one spot in check order).
    pub fn finish(mut self) -> Result<(), MappingErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|(at, _)| *at);
        Err(MappingErrors(
            self.errors.into_iter().map(|(_, e)| e).collect(),
        ))
    }
}

/// Levenshtein distance on characters, case-insensitive.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to `n` candidates close enough to `word` to be what was meant, closest first.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    n: usize,
) -> Vec<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| {
            *d <= limit
                || c.to_lowercase().contains(&word.to_lowercase())
                || word.to_lowercase().contains(&c.to_lowercase())
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

/// `did you mean `x`?` for the closest candidate, if any is close.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(word, candidates, 1)
        .first()
        .map(|c| format!("did you mean `{c}`?"))
}

/// `a, b, c` for "expected one of" lists.
pub(crate) fn one_of(options: &[&str]) -> String {
    options.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = SourceMap::new("m.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // 'é' is two bytes: the `=` after it is the 4th character.
        assert_eq!(src.position(10), (2, 4));
    }

    #[test]
    fn suggestions_pick_the_closest_name() {
        let names = ["trim", "lower", "upper", "template"];
        assert_eq!(
            did_you_mean("lowercase", names).as_deref(),
            Some("did you mean `lower`?")
        );
        assert_eq!(
            did_you_mean("tmplate", names).as_deref(),
            Some("did you mean `template`?")
        );
        assert_eq!(did_you_mean("zzzzzzzz", names), None);
    }

    #[test]
    fn errors_render_like_rustc_with_help() {
        let errors = MappingErrors(vec![
            MappingError {
                file: "ecosend.toml".into(),
                line: 14,
                column: 9,
                message: "unknown transform `lowercase`".into(),
                help: Some("did you mean `lower`?".into()),
            },
            MappingError {
                file: "ecosend.toml".into(),
                line: 20,
                column: 1,
                message: "duplicate column `email`".into(),
                help: None,
            },
        ]);
        let text = errors.to_string();
        assert_eq!(
            text,
            "error: ecosend.toml:14:9: unknown transform `lowercase`\n  = help: did you mean `lower`?\n\n\
             error: ecosend.toml:20:1: duplicate column `email`\n2 errors"
        );
    }

    #[test]
    fn inner_span_points_into_plain_literals_only() {
        let text = "from = \"a.b[x]\"\nt = \"a\\tb\"";
        let src = SourceMap::new("m.toml", text);
        assert_eq!(src.inner_span(&(7..15), "a.b[x]", 4), 12..13);
        // With an escape the decoded text differs from the source: point at the literal.
        assert_eq!(src.inner_span(&(20..26), "a\tb", 2), 20..26);
    }
}
