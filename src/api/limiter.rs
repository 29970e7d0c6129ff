//! Per-location request pacing: a `governor` bucket shared by every request for one location,
//! plus a pause that a 429 (or an exhausted window) puts on the whole location.
//!
//! GHL counts requests per app and location in a rolling window (100 per 10 s). A GCRA bucket
//! that emits one request every `interval / (max * safety)` with a burst of at most
//! `max * (1 - safety)` can never put more than `max` requests into any window, so we run close
//! to the limit without tripping it. The answer headers are the second line of defence: when
//! `X-RateLimit-Remaining` reaches 0 (someone else is using the same budget) the location pauses
//! for two slots, and when the server advertises a smaller budget than ours we adopt it.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::rate::RateSpec;

/// What the answer headers said.
#[derive(Debug, Default, Clone, Copy)]
pub struct RateHeaders {
    pub max: Option<u32>,
    pub remaining: Option<u32>,
    pub interval_ms: Option<u64>,
    pub daily_remaining: Option<u64>,
}

impl RateHeaders {
    pub fn parse(headers: &HeaderMap) -> RateHeaders {
        fn num<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Option<T> {
            h.get(name)?.to_str().ok()?.trim().parse().ok()
        }
        RateHeaders {
            max: num(headers, "x-ratelimit-max"),
            remaining: num(headers, "x-ratelimit-remaining"),
            interval_ms: num(headers, "x-ratelimit-interval-milliseconds"),
            daily_remaining: num(headers, "x-ratelimit-daily-remaining"),
        }
    }
}

pub struct LocationLimiter {
    /// Replaced (never mutated) when the server advertises a smaller budget than configured.
    bucket: RwLock<Arc<DefaultDirectRateLimiter>>,
    spec: Mutex<RateSpec>,
    safety: f64,
    /// No request for this location starts before this instant (set by 429s and by
    /// `X-RateLimit-Remaining: 0`).
    paused_until: Mutex<Option<Instant>>,
    /// Set once the daily budget is down to the reserve: every later request is refused.
    daily_exhausted: Mutex<bool>,
    daily_reserve: u64,
}

/// How far apart in time two requests may travel between our limiter and the server's clock
/// (scheduling, connection set-up, the network). Requests granted within `interval + JITTER`
/// can land within one server window, so the pacing leaves room for that.
pub const JITTER: Duration = Duration::from_millis(50);

/// GCRA parameters for a budget: one request per `period`, bursts of at most `burst`.
/// Invariant (tested): `burst + 1 + (interval + JITTER) / period <= max`, so no server window,
/// even one closed at both ends and with arrivals shifted by up to `JITTER`, holds more than
/// `max`.
fn quota_for(spec: RateSpec, safety: f64) -> (Duration, u32) {
    let burst = ((spec.max as f64) * (1.0 - safety)).floor().max(1.0) as u32;
    let window = spec.interval.as_secs_f64();
    let room = spec.max.saturating_sub(burst + 1) as f64 * window / (window + JITTER.as_secs_f64());
    let effective = (spec.max as f64 * safety).min(room).max(1.0);
    (spec.interval.div_f64(effective), burst)
}

fn bucket_for(spec: RateSpec, safety: f64) -> DefaultDirectRateLimiter {
    let (period, burst) = quota_for(spec, safety);
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("period is positive")
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct(quota)
}

impl LocationLimiter {
    pub fn new(spec: RateSpec, safety: f64, daily_reserve: u64) -> LocationLimiter {
        LocationLimiter {
            bucket: RwLock::new(Arc::new(bucket_for(spec, safety))),
            spec: Mutex::new(spec),
            safety,
            paused_until: Mutex::new(None),
            daily_exhausted: Mutex::new(false),
            daily_reserve,
        }
    }

    pub fn spec(&self) -> RateSpec {
        *self.spec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for this location's turn. Returns `false` when the daily budget is spent.
    pub async fn acquire(&self) -> bool {
        loop {
            if self.exhausted() {
                return false;
            }
            if let Some(t) = self.paused() {
                tokio::time::sleep_until(t).await;
                continue;
            }
            let bucket = self
                .bucket
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            bucket.until_ready().await;
            // A 429 (or the daily reserve) may have arrived while this task queued for the
            // bucket: check again, so queued tasks do not send into a pause.
            if self.paused().is_none() && !self.exhausted() {
                return true;
            }
        }
    }

    fn exhausted(&self) -> bool {
        *self
            .daily_exhausted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The end of the current pause, if one is running.
    fn paused(&self) -> Option<Instant> {
        let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|t| *t > Instant::now())
    }

    /// Stop every request of this location for `d` (a 429's Retry-After, or the interval).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// Learn from an answer's headers. Returns true when the daily budget reached the reserve.
    pub fn observe(&self, h: &RateHeaders) -> bool {
        let spec = self.spec();
        if let (Some(max), Some(ms)) = (h.max, h.interval_ms) {
            let advertised = RateSpec {
                max: max.max(1),
                interval: Duration::from_millis(ms.max(1)),
            };
            if advertised.per_second() < spec.per_second() * 0.999 {
                tracing::info!(
                    configured = %spec, advertised = %advertised,
                    "The server advertises a smaller rate limit than configured; using it."
                );
                *self.bucket.write().unwrap_or_else(|e| e.into_inner()) =
                    Arc::new(bucket_for(advertised, self.safety));
                *self.spec.lock().unwrap_or_else(|e| e.into_inner()) = advertised;
            }
        }
        if h.remaining == Some(0) {
            let slot = self.spec().interval.div_f64(self.spec().max as f64);
            self.pause(slot * 2);
        }
        if let Some(daily) = h.daily_remaining {
            if daily <= self.daily_reserve {
                *self
                    .daily_exhausted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = true;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_never_puts_more_than_max_in_a_window() {
        for spec in [
            "100/10s",
            "10/1s",
            "1/1s",
            "3/2s",
            "1000/10s",
            "200000/86400s",
        ] {
            let spec: RateSpec = spec.parse().unwrap();
            for safety in [0.9, 0.95, 0.98, 1.0] {
                let (period, burst) = quota_for(spec, safety);
                let sustained = spec.interval.as_secs_f64() / period.as_secs_f64();
                let widened = (spec.interval + JITTER).as_secs_f64() / period.as_secs_f64();
                let worst_window = burst as f64 + widened + 1.0;
                if spec.max >= 10 {
                    assert!(
                        worst_window <= spec.max as f64 * (1.0 + 1e-6),
                        "{spec} at {safety}: {worst_window}"
                    );
                }
                if spec.max >= 100 && spec.interval >= Duration::from_secs(10) && safety >= 0.98 {
                    // Close to the limit: at least 0.95 of it for the usual budgets.
                    assert!(
                        sustained >= 0.95 * spec.max as f64,
                        "{spec} at {safety}: {sustained}"
                    );
                }
            }
        }
    }

    #[test]
    fn burst_is_small() {
        let lim = LocationLimiter::new(RateSpec::GHL_BURST, 0.98, 0);
        let bucket = lim.bucket.read().unwrap().clone();
        let immediate = (0..100).filter(|_| bucket.check().is_ok()).count();
        assert_eq!(immediate, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_and_daily_reserve() {
        let lim = LocationLimiter::new("1000/1s".parse().unwrap(), 0.98, 50);
        lim.pause(Duration::from_secs(3));
        let t0 = Instant::now();
        assert!(lim.acquire().await);
        assert!(Instant::now() - t0 >= Duration::from_secs(3));
        let exhausted = lim.observe(&RateHeaders {
            daily_remaining: Some(40),
            ..Default::default()
        });
        assert!(exhausted);
        assert!(!lim.acquire().await);
    }

    #[test]
    fn adopts_a_smaller_advertised_limit() {
        let lim = LocationLimiter::new("1000/1s".parse().unwrap(), 0.98, 0);
        lim.observe(&RateHeaders {
            max: Some(100),
            interval_ms: Some(10_000),
            ..Default::default()
        });
        assert_eq!(lim.spec(), RateSpec::GHL_BURST);
    }
}
