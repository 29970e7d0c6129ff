//! The clock token lifetimes are judged by: tokio's, plus an offset that only tests move
//! ([`Clock::advance`]), so that a test ages an OAuth or location token at once instead of
//! sleeping for it, and passes however fast the machine is. A run never moves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every clone (a client and the test that made its config).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds moved forward so far.
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Move this clock forward by `by`: every token it timed is that much older.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}
