//! The README and the reference in `docs/` keep working: every command line of their examples
//! is one the CLI accepts, the README stays short, and every relative link leads to a file (and,
//! for a link into a Markdown file, to one of its headings).
//!
//! Commands are checked by parsing them with the binary's own flag definitions
//! (`ghl_etl::cli::Cli`, as `main` does), not by running them: parsing never opens a file or
//! calls the API, so `--mapping FILE` or `--token-file FILE` need not exist. Flags that clap can
//! also take from the environment (`GHL_LOCATION`, `GHL_RATE`, ...) are read from this
//! process's environment, as the binary would.

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use ghl_etl::cli::Cli;

/// The README's hard limit: past it, the text belongs in `docs/`.
const README_MAX_LINES: usize = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, every `docs/*.md` and `benches/README.md`, as (path relative to the root, text).
fn documents() -> Vec<(String, String)> {
    let root = root();
    let mut paths = vec![
        PathBuf::from("README.md"),
        PathBuf::from("benches/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| PathBuf::from("docs").join(p.file_name().unwrap()))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds no .md file");
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p))
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p.to_string_lossy().replace('\\', "/"), text)
        })
        .collect()
}

/// A line of a Markdown file: its number (from 1), its text, and the info string of the fenced
/// code block it is in (`None` outside code blocks; fence lines themselves are left out) with
/// the block's number in the file.
struct Line<'a> {
    number: usize,
    text: &'a str,
    fence: Option<&'a str>,
    block: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut fence: Option<(&str, &str)> = None; // (marker, info string)
    let mut block = 0;
    for (i, text) in text.lines().enumerate() {
        let trimmed = text.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                block += 1;
                fence = Some((m, trimmed[m.len()..].trim_start_matches(&m[..1]).trim()));
                continue;
            }
            (Some((open, _)), Some(m))
                if m == open && trimmed.trim_start_matches(&m[..1]).trim().is_empty() =>
            {
                fence = None;
                continue;
            }
            _ => {}
        }
        out.push(Line {
            number: i + 1,
            text,
            fence: fence.map(|(_, info)| info),
            block,
        });
    }
    out
}

/// A command found in a code block: where it starts, and its text with backslash-continued
/// lines joined.
struct Example {
    line: usize,
    block: usize,
    text: String,
}

/// Every `ghl-etl …` or `cargo run --release -- …` line of the file's fenced code blocks,
/// except in blocks marked `text`: those hold what a program prints and usage synopses
/// (`[--flag VALUE]`, `a|b`), which are grammar, not commands.
fn examples(text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut open: Option<Example> = None;
    for line in lines(text) {
        // A continuation never leaves its block: a block left mid-command ends the command.
        if open.as_ref().is_some_and(|e| e.block != line.block) {
            out.extend(open.take());
        }
        let Some(info) = line.fence else {
            continue;
        };
        if info.split_whitespace().next() == Some("text") {
            continue;
        }
        let (piece, continues) = match line.text.trim_end().strip_suffix('\\') {
            Some(head) => (head, true),
            None => (line.text, false),
        };
        match open.as_mut() {
            Some(example) => {
                example.text.push(' ');
                example.text.push_str(piece.trim());
            }
            None => {
                let start = piece.trim_start();
                if start.starts_with("ghl-etl ") || start.starts_with("cargo run --release -- ") {
                    open = Some(Example {
                        line: line.number,
                        block: line.block,
                        text: start.trim_end().to_string(),
                    });
                } else {
                    continue;
                }
            }
        }
        if !continues {
            out.extend(open.take());
        }
    }
    out.extend(open);
    out
}

/// Split a command line into words as a POSIX shell would for these examples: single quotes
/// keep everything, double quotes keep everything but `\"`, `\\`, `\$` and `` \` ``, a
/// backslash outside quotes escapes the next character. The command ends at the first
/// unquoted `|`, `;`, `&`, `<` or `>` (a pipe, a list, a background job or a redirection) or
/// a `#` starting a word (a comment): what follows is another program's or the shell's, so it
/// is cut off and the `ghl-etl` part before it is still checked (a file descriptor number
/// right before a redirection, as in `2>`, goes with it). `None` for an unclosed quote.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars.next().unwrap())
                        }
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            '|' | ';' | '&' | '<' | '>' => {
                let fd = matches!(c, '<' | '>')
                    && !word.is_empty()
                    && word.chars().all(|c| c.is_ascii_digit());
                if in_word && !fd {
                    words.push(std::mem::take(&mut word));
                }
                return Some(words);
            }
            '#' if !in_word => return Some(words),
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// What is wrong with one example, or `None` when clap accepts it. Lines with a command
/// substitution (`$(…)`) are skipped (`Ok(false)`): their words are known only when a shell runs
/// them.
fn check_example(example: &Example) -> Result<bool, String> {
    if example.text.contains("$(") {
        return Ok(false);
    }
    let mut words = shell_words(&example.text).ok_or("a quote is never closed".to_string())?;
    if words.first().map(String::as_str) == Some("cargo") {
        // `cargo run --release -- ARGS` runs `ghl-etl ARGS`.
        words.splice(0..4, ["ghl-etl".to_string()]);
    }
    match <Cli as clap::Parser>::try_parse_from(&words) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(true)
        }
        Err(e) => Err(e.render().to_string()),
    }
}

/// Every command of the README and of `docs/` is one the CLI accepts.
#[test]
fn every_command_line_of_the_readme_and_docs_parses() {
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for (path, text) in documents() {
        for example in examples(&text) {
            match check_example(&example) {
                Ok(true) => checked.push(format!("{path}:{}", example.line)),
                Ok(false) => {}
                Err(error) => failures.push(format!(
                    "{path}:{}: `{}`\n{}",
                    example.line,
                    example.text,
                    error.trim_end()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} command line(s) of the documentation do not parse:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The README's own examples (the demo export, a load, a nightly export, tagging, auth check)
    // are among those checked: a change to how blocks are found cannot pass by finding none.
    let in_readme = checked
        .iter()
        .filter(|c| c.starts_with("README.md:"))
        .count();
    assert!(
        in_readme >= 5,
        "only {in_readme} commands found in README.md: {checked:?}"
    );
}

/// The README opens with the demo export and the test command, each in its own block.
#[test]
fn the_readme_opens_with_the_demo_and_the_test_command() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut last = None;
    for line in lines(&text) {
        match line.fence {
            Some(_) if last.is_some_and(|n| n + 1 == line.number) => {
                blocks.last_mut().unwrap().push(line.text)
            }
            Some(_) => blocks.push(vec![line.text]),
            None => {}
        }
        last = line.fence.map(|_| line.number);
    }
    assert!(
        blocks.len() >= 2,
        "README.md has fewer than two code blocks"
    );
    assert_eq!(
        blocks[0],
        ["cargo run --release -- export --sandbox --out ./demo-export"]
    );
    assert_eq!(blocks[1], ["cargo test"]);
}

/// The README stays a page a newcomer reads; the reference lives in `docs/`.
#[test]
fn the_readme_is_at_most_300_lines() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = text.lines().count();
    assert!(
        n <= README_MAX_LINES,
        "README.md has {n} lines, more than {README_MAX_LINES}: move reference text to docs/"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`), spaces
/// turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`, ...).
fn anchors(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines(text).into_iter().filter(|l| l.fence.is_none()) {
        let hashes = line.text.len() - line.text.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line.text[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line.text[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.push(anchor);
    }
    out
}

/// The targets of the inline links `[text](target)` of a file, with their line numbers; links
/// inside fenced code blocks are code, not links.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for line in lines(text).into_iter().filter(|l| l.fence.is_none()) {
        let mut rest = line.text;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            out.push((line.number, target.to_string()));
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Every relative link of the README and of `docs/` leads to a file or folder that exists,
/// and a `#anchor` into a Markdown file to one of its headings.
#[test]
fn every_relative_link_leads_to_a_file() {
    let root = root();
    let mut broken = Vec::new();
    let mut count = 0;
    for (path, text) in documents() {
        let dir = Path::new(&path).parent().unwrap_or(Path::new(""));
        for (line, target) in links(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            count += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let full = if file.is_empty() {
                root.join(&path)
            } else {
                root.join(dir).join(file)
            };
            if !full.exists() {
                broken.push(format!(
                    "{path}:{line}: `{target}`: no file {}",
                    full.display()
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if full.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&full).unwrap();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!(
                        "{path}:{line}: `{target}`: no heading with anchor #{anchor} in {}",
                        full.strip_prefix(&root).unwrap_or(&full).display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(count > 20, "only {count} relative links found");
}

#[test]
fn shell_words_split_as_a_shell_does() {
    let w = |s: &str| shell_words(s).unwrap();
    assert_eq!(
        w(r#"ghl-etl tag --where 'dateAdded>=2024-01-01' --external-id "Source ID" a\ b"#),
        [
            "ghl-etl",
            "tag",
            "--where",
            "dateAdded>=2024-01-01",
            "--external-id",
            "Source ID",
            "a b"
        ]
    );
    assert_eq!(w("ghl-etl man | man -l -"), ["ghl-etl", "man"]);
    assert_eq!(
        w("ghl-etl completions zsh > out"),
        ["ghl-etl", "completions", "zsh"]
    );
    assert_eq!(
        w("ghl-etl sandbox --port 1 2>log &"),
        ["ghl-etl", "sandbox", "--port", "1"]
    );
    assert_eq!(w("ghl-etl sandbox # a comment"), ["ghl-etl", "sandbox"]);
    assert_eq!(w("ghl-etl x --a#b"), ["ghl-etl", "x", "--a#b"]);
    assert!(shell_words("ghl-etl 'open").is_none());
}
