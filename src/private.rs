//! Files the tool creates are readable by their owner only: contacts are personal data.
//!
//! One place decides it for every file and folder of a run (output files, part files, the
//! manifest, reports, the state database and SQLite's `-wal` and `-shm` beside it): the process
//! umask, set once at start-up by `main` before anything is created. A umask rather than a mode
//! on each `open` because SQLite creates its own files, and because it also covers folders
//! (0700) and anything a later change adds. `--umask` (or `GHL_UMASK`) changes it, e.g. `027`
//! to let the owner's group read the export.
//!
//! Existing files and folders keep their modes; only what a run creates is affected.

/// Owner-only: files 0600, folders 0700.
pub const DEFAULT_UMASK: u32 = 0o077;

/// Parse a umask written in octal (`077`, `0o027`, `0022`).
pub fn parse_umask(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "`{s}` is not a umask: write three octal digits, such as 077 (owner only) or 027"
        )),
    }
}

/// Set the process umask; returns the one it replaces. A no-op away from Unix.
pub fn set_umask(mask: u32) -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: umask only swaps a per-process integer; it cannot fail and touches no memory.
        unsafe { libc::umask(mask as libc::mode_t) as u32 }
    }
    #[cfg(not(unix))]
    {
        let _ = mask;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umasks_parse_in_octal_and_junk_is_refused() {
        assert_eq!(parse_umask("077"), Ok(0o077));
        assert_eq!(parse_umask("0o027"), Ok(0o027));
        assert_eq!(parse_umask("0022"), Ok(0o022));
        assert!(parse_umask("8").is_err());
        assert!(parse_umask("").is_err());
        assert!(parse_umask("1777").is_err());
        assert!(parse_umask("u=rwx").unwrap_err().contains("077"));
    }
}
