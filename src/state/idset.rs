//! A compact set of ids, each with one number: a location's contact ids with their
//! `dateUpdated` (epoch ms), or its task ids with a hash of their content. Sorted by id, so a
//! lookup is a binary search and two sets are compared in one walk; stored zstd-compressed
//! (about 15 bytes a contact), one blob per location.

/// Ids with a number each, sorted by id, each id once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    items: Vec<(String, i64)>,
}

/// Why a stored set could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a stored id set is unreadable: {0}")]
pub struct IdSetError(String);

impl IdSet {
    /// A set from ids in any order; an id given twice keeps its larger number (the later
    /// `dateUpdated` of a contact a shifting listing answered twice).
    pub fn from_unsorted(mut items: Vec<(String, i64)>) -> IdSet {
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        items.dedup_by(|later, first| later.0 == first.0);
        IdSet { items }
    }

    /// The union of sets; an id in several keeps its larger number.
    pub fn union(sets: impl IntoIterator<Item = IdSet>) -> IdSet {
        IdSet::from_unsorted(sets.into_iter().flat_map(|s| s.items).collect())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The number stored with `id`.
    pub fn get(&self, id: &str) -> Option<i64> {
        self.items
            .binary_search_by(|(i, _)| i.as_str().cmp(id))
            .ok()
            .map(|k| self.items[k].1)
    }

    /// Ids of this set that `other` lacks, in id order.
    pub fn missing_from<'a>(&'a self, other: &'a IdSet) -> impl Iterator<Item = &'a str> + 'a {
        let mut theirs = other.items.iter().peekable();
        self.items.iter().filter_map(move |(id, _)| {
            while theirs.next_if(|(t, _)| t < id).is_some() {}
            match theirs.peek() {
                Some((t, _)) if t == id => None,
                _ => Some(id.as_str()),
            }
        })
    }

    /// `len id, id bytes, number (8 bytes LE)` per item, zstd-compressed.
    pub fn encode(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.items.len() * 30);
        for (id, n) in &self.items {
            put_varint(&mut raw, id.len() as u64);
            raw.extend_from_slice(id.as_bytes());
            raw.extend_from_slice(&n.to_le_bytes());
        }
        zstd::bulk::compress(&raw, 3).expect("compressing bytes in memory cannot fail")
    }

    pub fn decode(blob: &[u8]) -> Result<IdSet, IdSetError> {
        let raw = zstd::stream::decode_all(blob).map_err(|e| IdSetError(e.to_string()))?;
        let mut items = Vec::new();
        let mut at = 0;
        while at < raw.len() {
            let len = get_varint(&raw, &mut at).ok_or_else(|| IdSetError("truncated".into()))?;
            let end = at + len as usize;
            let (Some(id), Some(n)) = (raw.get(at..end), raw.get(end..end + 8)) else {
                return Err(IdSetError("truncated".into()));
            };
            let id = std::str::from_utf8(id).map_err(|e| IdSetError(e.to_string()))?;
            let n = i64::from_le_bytes(n.try_into().expect("the slice is 8 bytes long"));
            items.push((id.to_string(), n));
            at = end + 8;
        }
        Ok(IdSet::from_unsorted(items))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(raw: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *raw.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&str, i64)]) -> IdSet {
        IdSet::from_unsorted(items.iter().map(|(i, n)| (i.to_string(), *n)).collect())
    }

    #[test]
    fn round_trips_and_compares() {
        let a = set(&[("c", 3), ("a", 1), ("b", 2), ("a", 5)]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.get("a"), Some(5), "a repeated id keeps its larger number");
        assert_eq!(IdSet::decode(&a.encode()).unwrap(), a);
        let b = set(&[("b", 2), ("d", 4)]);
        assert_eq!(a.missing_from(&b).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(b.missing_from(&a).collect::<Vec<_>>(), ["d"]);
        assert_eq!(IdSet::union([a, b]).len(), 4);
        assert!(IdSet::decode(b"not zstd").is_err());
    }

    #[test]
    fn a_contact_costs_few_bytes() {
        let ids: Vec<(String, i64)> = (0..10_000u64)
            .map(|i| {
                let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (
                    format!("{h:020x}"),
                    1_700_000_000_000 + (h % 1_000_000_000) as i64,
                )
            })
            .collect();
        let blob = IdSet::from_unsorted(ids).encode();
        assert!(blob.len() < 10_000 * 24, "{} bytes", blob.len());
    }
}
