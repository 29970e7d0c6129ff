//! Tag lists shaped like the ones people send, for `benches/tag.rs` and its asserted twin in
//! `tests/tag_cost.rs` (included there by path): a campaign file whose rows add one of five
//! tags and, on one row in five, remove one of forty different sets of old tags; and a file
//! whose rows each add their own random subset of eight tags.

use std::path::Path;

/// The shape of a tag list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Five tags to add; one row in five removes one of 40 sets of old tags.
    VariedRemoves,
    /// Each row adds a random subset (each tag with probability ½) of eight tags.
    RandomSubsets,
}

/// The 40 remove sets: one to three of ten old tags.
fn remove_set(j: usize) -> String {
    let mut tags = vec![format!("old-{}", j % 10)];
    if j >= 10 {
        tags.push(format!("old-{}", (j * 7 + 3) % 10));
    }
    if j >= 25 {
        tags.push(format!("old-{}", (j * 3 + 1) % 10));
    }
    tags.sort();
    tags.dedup();
    tags.join(";")
}

/// Write a list naming each contact by `keys` in `column`, tags shaped by `shape`; answers
/// the rows that change something.
pub fn write_tag_list(keys: &[String], column: &str, shape: Shape, path: &Path) -> usize {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record([column, "add_tags", "remove_tags"]).unwrap();
    // A fixed-seed xorshift: the same file every run, no dependency on a random crate.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut changing = 0;
    for (i, key) in keys.iter().enumerate() {
        let (add, remove) = match shape {
            Shape::VariedRemoves => {
                let remove = if i % 5 == 0 {
                    remove_set((i / 5) % 40)
                } else {
                    String::new()
                };
                (format!("campaign-{}", i % 5), remove)
            }
            Shape::RandomSubsets => {
                let bits = next() & 0xff;
                let tags: Vec<String> = (0..8)
                    .filter(|b| bits & (1 << b) != 0)
                    .map(|b| format!("interest-{b}"))
                    .collect();
                (tags.join(";"), String::new())
            }
        };
        if !add.is_empty() || !remove.is_empty() {
            changing += 1;
        }
        w.write_record([key.as_str(), &add, &remove]).unwrap();
    }
    w.flush().unwrap();
    changing
}
