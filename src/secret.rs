//! `Secret`: a string that never prints itself.
//!
//! Tokens, client secrets and refresh tokens are held in this type from the moment they are read
//! (flag, environment or file) until they are written into an `Authorization` header or an OAuth
//! form. `Debug` and `Display` print `***`, so a token cannot leak through a log line, an error
//! chain or a panic message by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: call only where it must go on the wire or into its own file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Read a secret from a file, trimming the trailing newline editors add.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Secret> {
    let text = std::fs::read_to_string(path)?;
    Ok(Secret::new(text.trim()))
}

/// Write a secret to `path` atomically with mode 0600: a temporary file in the same directory,
/// fsync, rename. A crash leaves either the old file or the new one, never half of either —
/// which matters for rotating OAuth refresh tokens, where losing the new one locks the next run out.
pub fn write_secret_file(path: &std::path::Path, secret: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".into());
    // Unique per process and call, so two writers never share a temporary file; `create_new`
    // refuses to follow anything already at that name.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.{}.{seq}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(secret.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("pit-1234-abcd");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let shown = format!("{:?}", Holder { token: s.clone() });
        assert!(!shown.contains("pit-1234"), "{shown}");
        assert_eq!(s.expose(), "pit-1234-abcd");
    }

    #[test]
    fn file_round_trip_is_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh_token");
        write_secret_file(&path, &Secret::new("first")).unwrap();
        // A reader that opened the old file before the rotation.
        let mut old = std::fs::File::open(&path).unwrap();
        #[cfg(unix)]
        let old_inode = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&path).unwrap().ino()
        };
        write_secret_file(&path, &Secret::new("second")).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().expose(), "second");
        // The new content is a new file renamed over the old one: the old file was never
        // truncated or rewritten in place, so its reader still sees all of it.
        let mut seen = String::new();
        std::io::Read::read_to_string(&mut old, &mut seen).unwrap();
        assert_eq!(seen, "first\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = std::fs::metadata(&path).unwrap();
            assert_ne!(meta.ino(), old_inode, "replaced by a rename");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn readers_never_see_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh_token");
        // Large enough that an in-place rewrite would be caught half done.
        let a = "a".repeat(256 * 1024);
        let b = "b".repeat(256 * 1024);
        write_secret_file(&path, &Secret::new(a.clone())).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..100 {
                    let next = if i % 2 == 0 { &b } else { &a };
                    write_secret_file(&path, &Secret::new(next.clone())).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let got = read_secret_file(&path).unwrap();
                assert!(
                    got.expose() == a || got.expose() == b,
                    "a reader saw {} bytes of a half-written file",
                    got.expose().len()
                );
                reads += 1;
            }
        });
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }
}
