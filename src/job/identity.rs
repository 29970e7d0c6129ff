//! Job identity: a job's key is a hash of the part of its resolved plan that shapes the output
//! (never of how hard it pushes), so rerunning the same command finds its earlier progress in
//! the state database and a different command never mistakes it for its own.

use serde::Serialize;
use sha2::Digest;

/// The key of a job: the first 8 bytes of SHA-256 over the JSON of `identity`, in hex.
pub fn job_key<T: Serialize>(identity: &T) -> String {
    // An empty key would give every job the same progress: never default it.
    let bytes = serde_json::to_vec(identity)
        .expect("a plan's identity is plain data (strings, numbers, enums), which serialises");
    sha2::Sha256::digest(&bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Id<'a> {
        out: &'a str,
        tables: Vec<&'a str>,
    }

    #[test]
    fn same_plan_same_key_and_any_change_another() {
        let a = job_key(&Id {
            out: "/x",
            tables: vec!["contacts"],
        });
        assert_eq!(a.len(), 16);
        assert_eq!(
            a,
            job_key(&Id {
                out: "/x",
                tables: vec!["contacts"]
            })
        );
        assert_ne!(
            a,
            job_key(&Id {
                out: "/x",
                tables: vec!["contacts", "notes"]
            })
        );
    }
}
