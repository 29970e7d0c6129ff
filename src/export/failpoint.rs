//! Crash injection for the resume tests, compiled only with the `failpoints` feature (which
//! the tests turn on; release builds carry none of it).
//!
//! `GHL_ETL_FAILPOINT` arms one point; reaching it aborts the process on the spot, with no
//! cleanup, like `kill -9`. `before-commit:N` dies after finishing the files of the N-th chunk
//! but before recording them; `after-commit:N` right after the N-th commit; `mid-chunk:N`
//! after N contacts of a chunk that is not yet complete. (`mid-upload`, in the middle of an
//! upload to an object store, is `sink::store`'s.)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    BeforeCommit(u64),
    AfterCommit(u64),
    MidChunk(u64),
}

/// The armed point, if any.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub struct Failpoints(Option<Point>);

#[cfg(feature = "failpoints")]
impl Failpoints {
    pub fn from_env() -> Failpoints {
        let armed = std::env::var("GHL_ETL_FAILPOINT").ok().and_then(|v| {
            let (kind, n) = v.split_once(':')?;
            let n: u64 = n.parse().ok()?;
            match kind {
                "before-commit" => Some(Point::BeforeCommit(n)),
                "after-commit" => Some(Point::AfterCommit(n)),
                "mid-chunk" => Some(Point::MidChunk(n)),
                _ => None,
            }
        });
        Failpoints(armed)
    }

    pub fn hit(&self, here: Point) {
        if self.0 == Some(here) {
            eprintln!("failpoint {here:?} reached: aborting");
            std::process::abort();
        }
    }

    /// The contact count of an armed `mid-chunk` point.
    pub fn mid_chunk(&self) -> Option<u64> {
        match self.0 {
            Some(Point::MidChunk(k)) => Some(k),
            _ => None,
        }
    }
}

#[cfg(not(feature = "failpoints"))]
impl Failpoints {
    pub fn from_env() -> Failpoints {
        Failpoints(None)
    }

    pub fn hit(&self, _here: Point) {}

    pub fn mid_chunk(&self) -> Option<u64> {
        None
    }
}
