//! Crash injection for the resume tests, compiled only with the `failpoints` feature (which
//! the tests turn on; release builds carry none of it).
//!
//! `GHL_ETL_FAILPOINT` arms one point; reaching it aborts the process on the spot, with no
//! cleanup, like `kill -9`. `before-commit:N` dies after finishing the files of the N-th chunk
//! but before recording them; `after-commit:N` right after the N-th commit; `mid-chunk:N`
//! after N contacts of a chunk that is not yet complete. (`mid-upload`, in the middle of an
//! upload to an object store, is `sink::store`'s; `panic-in-request`, a panic with a token in
//! hand, is `api::client`'s.)
//!
//! Every name is in one list, in `armed_failpoint!`, which every place that reads the
//! variable goes through: a name not in it (a typo, a count that is not a number) stops the run
//! with exit 2 instead of arming nothing, so a test can never pass because its failpoint
//! silently never fired. The list is in a macro because the readers live in modules that
//! cannot see this one (`export` keeps this module private).

/// The failpoint `GHL_ETL_FAILPOINT` arms (test builds only): `None` when it is unset or
/// empty, else the name as given, once it is found in the list of known failpoints. An
/// unknown name prints the list and exits with code 2 at once.
#[cfg(feature = "failpoints")]
#[doc(hidden)]
#[macro_export]
macro_rules! armed_failpoint {
    () => {{
        /// Every failpoint; `:N` stands for a count.
        const KNOWN: [&str; 5] = [
            "before-commit:N",
            "after-commit:N",
            "mid-chunk:N",
            "mid-upload",
            "panic-in-request",
        ];
        let armed = ::std::env::var("GHL_ETL_FAILPOINT")
            .ok()
            .filter(|v| !v.is_empty());
        if let Some(v) = &armed {
            let known = KNOWN.iter().any(|k| match k.strip_suffix(":N") {
                Some(kind) => v
                    .strip_prefix(kind)
                    .and_then(|n| n.strip_prefix(':'))
                    .is_some_and(|n| n.parse::<u64>().is_ok()),
                None => v == k,
            });
            if !known {
                eprintln!(
                    "error: GHL_ETL_FAILPOINT={v:?} names no failpoint, so it would never fire; \
                     the failpoints are: {}",
                    KNOWN.join(", ")
                );
                ::std::process::exit($crate::exit::USAGE);
            }
        }
        armed
    }};
}

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
    /// The export's point, if `GHL_ETL_FAILPOINT` arms one (a failpoint of another module
    /// arms none here).
    pub fn from_env() -> Failpoints {
        let armed = crate::armed_failpoint!().and_then(|v| {
            let (kind, n) = v.split_once(':')?;
            let n: u64 = n.parse().expect("the list admits only numbers after `:`");
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
