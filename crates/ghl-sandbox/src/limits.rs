//! Rate limits as GHL applies them: a rolling window of `max` requests per `interval` and a
//! daily budget, both counted per (token, location). Refused requests are not counted.
//!
//! The window is a log of the admitted requests' instants (at most `max` of them), so the
//! `Retry-After` it suggests is exact: the time until the oldest request leaves the window.
//! Time is `tokio::time::Instant`, so a paused test clock drives it. Turning verdicts into
//! headers and 429 bodies is left to [`super::gate`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// A burst limit: `max` requests per rolling `interval`, e.g. `100/10s`.
///
/// The sandbox's own type, so that it needs nothing of a client; a client converts its rate
/// type into this one where it configures a sandbox. Shown as `100/10s` or `5/500ms` (in 429
/// bodies and the `ghl-etl sandbox` banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub interval: Duration,
}

impl RateLimit {
    /// GHL's documented burst limit: 100 requests per 10 seconds per location.
    pub const GHL_BURST: RateLimit = RateLimit {
        max: 100,
        interval: Duration::from_secs(10),
    };
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.interval.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}/{}s", self.max, ms / 1000)
        } else {
            write!(f, "{}/{}ms", self.max, ms)
        }
    }
}

#[derive(Debug, Default)]
struct Window {
    hits: VecDeque<Instant>,
    day: i64,
    daily: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Burst,
    Daily,
}

/// The limiter's answer for one request, with what the rate-limit headers report.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub refused: Option<Refusal>,
    /// Requests left in the rolling window (`None` when the burst limit is off).
    pub remaining: Option<u32>,
    pub daily_remaining: u64,
    /// How long until a refused request could pass.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<HashMap<(String, String), Window>>,
}

impl Limiter {
    /// Admits or refuses one request of `token` on `location` at `now` (UTC day `day`).
    pub fn check(
        &self,
        token: &str,
        location: &str,
        spec: Option<RateLimit>,
        daily_limit: u64,
        now: Instant,
        day: i64,
    ) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let w = windows
            .entry((token.to_string(), location.to_string()))
            .or_default();
        if w.day != day {
            w.day = day;
            w.daily = 0;
        }
        if let Some(spec) = spec {
            while w
                .hits
                .front()
                .is_some_and(|&t| now.duration_since(t) >= spec.interval)
            {
                w.hits.pop_front();
            }
        }
        if w.daily >= daily_limit {
            return Verdict {
                refused: Some(Refusal::Daily),
                remaining: spec.map(|s| s.max.saturating_sub(w.hits.len() as u32)),
                daily_remaining: 0,
                retry_after: None,
            };
        }
        if let Some(spec) = spec {
            if w.hits.len() >= spec.max as usize {
                let wait = w.hits.front().map_or(spec.interval, |&t| {
                    spec.interval.saturating_sub(now.duration_since(t))
                });
                return Verdict {
                    refused: Some(Refusal::Burst),
                    remaining: Some(0),
                    daily_remaining: daily_limit - w.daily,
                    retry_after: Some(wait),
                };
            }
            w.hits.push_back(now);
        }
        w.daily += 1;
        Verdict {
            refused: None,
            remaining: spec.map(|s| s.max.saturating_sub(w.hits.len() as u32)),
            daily_remaining: daily_limit - w.daily,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window_refuses_then_frees_up() {
        let l = Limiter::default();
        let spec = Some(RateLimit {
            max: 3,
            interval: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        for i in 0..3 {
            let v = l.check("t", "L", spec, 100, t0 + Duration::from_secs(i), 1);
            assert_eq!(v.refused, None);
            assert_eq!(v.remaining, Some(2 - i as u32));
        }
        let v = l.check("t", "L", spec, 100, t0 + Duration::from_secs(4), 1);
        assert_eq!(v.refused, Some(Refusal::Burst));
        assert_eq!(v.retry_after, Some(Duration::from_secs(6)));
        // Other tokens and locations have their own windows.
        assert_eq!(l.check("u", "L", spec, 100, t0, 1).refused, None);
        assert_eq!(l.check("t", "M", spec, 100, t0, 1).refused, None);
        // Once the first request is 10 s old, one slot frees up.
        let v = l.check("t", "L", spec, 100, t0 + Duration::from_secs(10), 1);
        assert_eq!(v.refused, None);
        assert_eq!(v.daily_remaining, 96);
    }

    #[test]
    fn the_window_slides_rather_than_resetting_at_fixed_boundaries() {
        // GHL's burst limit counts the last `interval` before each request, so a budget spent
        // just before a round time is not back just after it.
        let l = Limiter::default();
        let spec = Some(RateLimit {
            max: 3,
            interval: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for ms in [8_000, 9_000, 9_500] {
            assert_eq!(l.check("t", "L", spec, 100, at(ms), 1).refused, None);
        }
        // A fixed window [0, 10 s) would start afresh at 10 s.
        let v = l.check("t", "L", spec, 100, at(10_500), 1);
        assert_eq!(v.refused, Some(Refusal::Burst));
        assert_eq!(v.retry_after, Some(Duration::from_millis(7_500)));
        assert_eq!(
            l.check("t", "L", spec, 100, at(17_999), 1).refused,
            Some(Refusal::Burst)
        );
        // The first request leaves the window exactly `interval` after it was admitted.
        let v = l.check("t", "L", spec, 100, at(18_000), 1);
        assert_eq!(v.refused, None);
        assert_eq!(v.remaining, Some(0));
        assert_eq!(
            l.check("t", "L", spec, 100, at(18_500), 1).refused,
            Some(Refusal::Burst)
        );
        assert_eq!(l.check("t", "L", spec, 100, at(19_000), 1).refused, None);
    }

    #[test]
    fn shown_as_requests_per_interval() {
        assert_eq!(RateLimit::GHL_BURST.to_string(), "100/10s");
        let half = RateLimit {
            max: 5,
            interval: Duration::from_millis(500),
        };
        assert_eq!(half.to_string(), "5/500ms");
    }

    #[test]
    fn daily_budget_resets_with_the_day() {
        let l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.check("t", "L", None, 2, t0, 1).daily_remaining, 1);
        assert_eq!(l.check("t", "L", None, 2, t0, 1).daily_remaining, 0);
        assert_eq!(
            l.check("t", "L", None, 2, t0, 1).refused,
            Some(Refusal::Daily)
        );
        assert_eq!(l.check("t", "L", None, 2, t0, 2).refused, None);
    }
}
