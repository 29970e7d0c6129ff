//! Hashing and id codecs for the sandbox: every random-looking value is a pure function of
//! (seed, what, index), so a million contacts need no storage beyond their sort order.
//!
//! Contact ids are reversible: a keyed Feistel permutation of `(location << 32) | index`
//! written as 11 base-62 digits, followed by 9 check digits. The base-62 alphabet is in ASCII
//! order, so comparing two ids as strings compares their permuted keys as numbers; the
//! listing order (dateAdded, then id) can therefore be sorted and binary-searched on integers.
//! Ids of everything else (tasks, notes, locations...) are plain hashes and are not reversible.

/// Digits in ASCII order, so that string order equals numeric order for fixed-width numbers.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of every GHL-style id the sandbox hands out.
pub const ID_LEN: usize = 20;
const KEY_DIGITS: usize = 11;
const CHECK_DIGITS: usize = ID_LEN - KEY_DIGITS;
const CHECK_MOD: u64 = 13_537_086_546_263_552; // 62^9

/// The splitmix64 finaliser: a fast bijective scrambler of 64-bit words.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a tuple of words; the building block of every seeded choice.
pub fn hash(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &p in parts {
        h = mix(h ^ mix(p.wrapping_add(0x632b_e59b_d9b4_e019)));
    }
    h
}

/// FNV-1a of a string, scrambled: for hashing names into seeds.
pub fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// A uniform float in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn push_base62(mut v: u64, width: usize, out: &mut String) {
    let mut buf = [b'0'; 16];
    for slot in buf[..width].iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    // Every byte comes from ALPHABET, so this is ASCII.
    out.extend(buf[..width].iter().map(|&b| b as char));
}

fn parse_base62(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        v = v.checked_mul(62)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// A 20-character id drawn from a hash: for tasks, notes, events, locations, tokens.
pub fn hashed_id(parts: &[u64]) -> String {
    let mut out = String::with_capacity(ID_LEN);
    let a = hash(parts);
    let b = mix(a ^ 0x5851_f42d_4c95_7f2d);
    push_base62(a % 839_299_365_868_340_224, 10, &mut out); // 62^10
    push_base62(b % 839_299_365_868_340_224, 10, &mut out);
    out
}

/// A 24-hex-digit id, the shape GHL uses for businesses (Mongo object ids).
pub fn hex_id(parts: &[u64]) -> String {
    let a = hash(parts);
    let b = mix(a);
    format!("{:016x}{:08x}", a, b >> 32)
}

/// The reversible codec for contact ids.
#[derive(Debug, Clone)]
pub struct IdCodec {
    round_keys: [u64; 4],
    check_key: u64,
}

impl IdCodec {
    pub fn new(seed: u64) -> IdCodec {
        IdCodec {
            round_keys: [
                hash(&[seed, 0xC0, 1]),
                hash(&[seed, 0xC0, 2]),
                hash(&[seed, 0xC0, 3]),
                hash(&[seed, 0xC0, 4]),
            ],
            check_key: hash(&[seed, 0xC0, 5]),
        }
    }

    fn round(r: u32, k: u64) -> u32 {
        (mix(u64::from(r) ^ k) >> 16) as u32
    }

    /// The permuted key of a raw `(location << 32) | index` word; ids sort by this number.
    pub fn key(&self, raw: u64) -> u64 {
        let (mut l, mut r) = ((raw >> 32) as u32, raw as u32);
        for &k in &self.round_keys {
            let next = l ^ Self::round(r, k);
            l = r;
            r = next;
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// Inverse of [`IdCodec::key`].
    pub fn raw(&self, key: u64) -> u64 {
        let (mut l, mut r) = ((key >> 32) as u32, key as u32);
        for &k in self.round_keys.iter().rev() {
            let prev = r ^ Self::round(l, k);
            r = l;
            l = prev;
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    fn check(&self, key: u64) -> u64 {
        mix(key ^ self.check_key) % CHECK_MOD
    }

    /// The id string of a raw word.
    pub fn encode(&self, raw: u64) -> String {
        let key = self.key(raw);
        let mut out = String::with_capacity(ID_LEN);
        push_base62(key, KEY_DIGITS, &mut out);
        push_base62(self.check(key), CHECK_DIGITS, &mut out);
        out
    }

    /// The raw word of an id this codec produced; `None` for any other string.
    pub fn decode(&self, id: &str) -> Option<u64> {
        if id.len() != ID_LEN || !id.is_ascii() {
            return None;
        }
        let key = parse_base62(&id[..KEY_DIGITS])?;
        let check = parse_base62(&id[KEY_DIGITS..])?;
        (check == self.check(key)).then(|| self.raw(key))
    }

    /// The sort key of any id-like string, for cursor positions: ids of this codec sort
    /// exactly as their first 11 digits do. A string that is not base-62 has no key.
    pub fn sort_key_of(id: &str) -> Option<u64> {
        if id.len() < KEY_DIGITS || !id.is_ascii() {
            return None;
        }
        parse_base62(&id[..KEY_DIGITS])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feistel_round_trips_and_ids_decode() {
        let c = IdCodec::new(42);
        for raw in [0u64, 1, 999_999, (3u64 << 32) | 17, u64::MAX] {
            assert_eq!(c.raw(c.key(raw)), raw);
            let id = c.encode(raw);
            assert_eq!(id.len(), ID_LEN);
            assert!(id.chars().all(|ch| ch.is_ascii_alphanumeric()));
            assert_eq!(c.decode(&id), Some(raw));
        }
        let id = c.encode(5);
        let mut tampered = id.clone().into_bytes();
        tampered[19] = if tampered[19] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(c.decode(&tampered), None);
        assert_eq!(IdCodec::new(43).decode(&id), None);
        assert_eq!(c.decode("short"), None);
    }

    #[test]
    fn string_order_is_key_order() {
        let c = IdCodec::new(7);
        let mut by_key: Vec<u64> = (0..2000u64).collect();
        by_key.sort_by_key(|&r| c.key(r));
        let mut by_str: Vec<u64> = (0..2000u64).collect();
        by_str.sort_by_key(|&r| c.encode(r));
        assert_eq!(by_key, by_str);
    }

    #[test]
    fn hashed_ids_are_stable_and_distinct() {
        assert_eq!(hashed_id(&[1, 2, 3]), hashed_id(&[1, 2, 3]));
        assert_ne!(hashed_id(&[1, 2, 3]), hashed_id(&[1, 2, 4]));
        assert_eq!(hashed_id(&[9]).len(), ID_LEN);
        assert_eq!(hex_id(&[9]).len(), 24);
    }
}
