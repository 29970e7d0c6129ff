//! Which locations a job covers: `--location` ids, a `--locations-file`, every location an
//! agency's app is installed on (`--all-locations`), and the stable share of them one machine
//! takes (`--shard I/N`).
//!
//! A shard is chosen by a hash of the location id alone (the first 8 bytes of its SHA-256,
//! big-endian, modulo N), so N machines given the same list split it without talking to each
//! other, each location lands in exactly one shard, and a location keeps its shard when others
//! are installed or removed. Resolving the list needs the API only for `--all-locations`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::api::Client;
use crate::exit::{JobError, Result};

/// One machine's share: shard `index` of `count` (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`, e.g. `0/3`.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("expected I/N with 0 <= I < N (such as 0/3), not `{s}`");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether this shard takes the location.
    pub fn takes(&self, location: &str) -> bool {
        shard_of(location, self.count) == self.index
    }

    /// The sub-folder of `--out` a shard writes to, so shards never share an owner marker,
    /// a manifest or part-file names, and a reader unions them with one glob (`shard=*`).
    pub fn folder(&self) -> String {
        format!("shard={}-of-{}", self.index, self.count)
    }
}

/// The shard of a location among `count`.
pub fn shard_of(location: &str, count: u32) -> u32 {
    let digest = Sha256::digest(location.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// The locations asked for besides `--location` ids, before they are resolved.
#[derive(Debug, Clone, Default)]
pub struct LocationSelection {
    pub file: Option<PathBuf>,
    /// `--all-locations`: the app id whose installed locations to list.
    pub all_for_app: Option<String>,
    pub shard: Option<Shard>,
    /// Location names, once known (from the file or the installed-locations answer).
    pub names: HashMap<String, String>,
}

impl LocationSelection {
    /// Whether locations come from a file or the API besides `--location`.
    pub fn adds_locations(&self) -> bool {
        self.file.is_some() || self.all_for_app.is_some()
    }

    /// The ids to run: `ids` (the `--location`s, in order), then the file's, then the installed
    /// locations (sorted by id), deduplicated, this shard's only. Names are kept in `names`.
    pub async fn resolve(&mut self, client: &Client, ids: &[String]) -> Result<Vec<String>> {
        let mut all: Vec<String> = ids.to_vec();
        if let Some(path) = &self.file {
            for (id, name) in read_locations_file(path)? {
                if let Some(n) = name {
                    self.names.insert(id.clone(), n);
                }
                all.push(id);
            }
        }
        if let Some(app) = &self.all_for_app {
            let mut installed = client.installed_locations(app).await?;
            // The API's order is not promised: sort, so a rerun has the same list (the job key).
            installed.sort_by(|a, b| a.id.cmp(&b.id));
            if installed.is_empty() {
                tracing::warn!(app, "The app is installed on no location of the company.");
            }
            for l in installed {
                if let Some(n) = l.name {
                    self.names.insert(l.id.clone(), n);
                }
                all.push(l.id);
            }
        }
        let mut seen = HashSet::new();
        all.retain(|l| seen.insert(l.clone()));
        if let Some(shard) = self.shard {
            let before = all.len();
            all.retain(|l| shard.takes(l));
            tracing::info!(
                shard = %format!("{}/{}", shard.index, shard.count),
                locations = all.len(),
                of = before,
                "This shard's locations."
            );
        }
        Ok(all)
    }
}

/// The header names that mark a location-id column and a name column.
const ID_HEADERS: &[&str] = &["id", "location", "location_id", "locationid", "_id"];
const NAME_HEADERS: &[&str] = &["name", "location_name", "locationname"];

/// A locations file: one id a line, or CSV with an id column and an optional name column
/// (after a header naming them, or id then name without one). Blank lines and `#` comments
/// are skipped; a bad line is an error naming file and line.
pub fn read_locations_file(path: &Path) -> Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobError::io("read the locations file", path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut columns = (0, Some(1));
    let at = |line: u64| format!("{}:{line}", path.display());
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            JobError::usage(format!("{}: {e}", at(line)))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if n == 0 {
            if let Some(c) = header_columns(&record) {
                columns = c;
                continue;
            }
        }
        let id = record.get(columns.0).unwrap_or_default();
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err(JobError::usage(format!(
                "{}: `{id}` is not a location id (expected one id a line, or CSV with the id first and an optional name)",
                at(line)
            )));
        }
        let name = columns
            .1
            .and_then(|c| record.get(c))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        out.push((id.to_string(), name));
    }
    if out.is_empty() {
        return Err(JobError::usage(format!(
            "{}: no location id in the file",
            path.display()
        )));
    }
    Ok(out)
}

/// `(id column, name column)` when the first record is a header.
fn header_columns(record: &csv::StringRecord) -> Option<(usize, Option<usize>)> {
    let find = |names: &[&str]| {
        record
            .iter()
            .position(|h| names.contains(&h.to_ascii_lowercase().as_str()))
    };
    let id = find(ID_HEADERS)?;
    Some((id, find(NAME_HEADERS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_location_once_and_parse_strictly() {
        let ids: Vec<String> = (0..300).map(|i| format!("loc{i:04}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        let mut sizes = [0; 3];
        for id in &ids {
            let taken: Vec<usize> = (0..3).filter(|&i| shards[i].takes(id)).collect();
            assert_eq!(taken.len(), 1, "{id} in {taken:?}");
            sizes[taken[0]] += 1;
        }
        assert!(sizes.iter().all(|&s| s > 70), "uneven split {sizes:?}");
        // Pinned: other tools (or a later version) must split the same way.
        assert_eq!(
            shard_of("NKkdfNvf4lGaNrhs34Zq", 3),
            shard_of("NKkdfNvf4lGaNrhs34Zq", 3)
        );
        assert_eq!(shard_of("abc", 1), 0);
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(shards[1].folder(), "shard=1-of-3");
    }

    #[test]
    fn locations_files_take_plain_ids_or_csv_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "# the nightly list\nAAA\n\n BBB \n").unwrap();
        let got = read_locations_file(&plain).unwrap();
        assert_eq!(got, vec![("AAA".into(), None), ("BBB".into(), None)]);

        let csv = dir.path().join("with-header.csv");
        std::fs::write(
            &csv,
            "\u{feff}name,location_id\n\"Dental, North\",AAA\nYoga,BBB\n",
        )
        .unwrap();
        let got = read_locations_file(&csv).unwrap();
        assert_eq!(
            got,
            vec![
                ("AAA".into(), Some("Dental, North".into())),
                ("BBB".into(), Some("Yoga".into()))
            ]
        );

        let bare = dir.path().join("bare.csv");
        std::fs::write(&bare, "AAA,Dental\nBBB\n").unwrap();
        let got = read_locations_file(&bare).unwrap();
        assert_eq!(got[0], ("AAA".into(), Some("Dental".into())));
        assert_eq!(got[1], ("BBB".into(), None));

        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "AAA\nnot an id\n").unwrap();
        let e = read_locations_file(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.txt:2") && e.contains("not an id"), "{e}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# nothing\n").unwrap();
        assert!(read_locations_file(&empty)
            .unwrap_err()
            .to_string()
            .contains("no location id"));
    }
}
