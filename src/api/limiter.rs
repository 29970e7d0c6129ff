//! Per-location request pacing: at most the budget's `max` requests in any window of its
//! `interval`, as GHL counts them (a sliding window per app and location, 100 per 10 s), without
//! a fixed margin below the limit. What the server says (the answers' rate-limit headers, 429s
//! and `Retry-After`) feeds it; the retry loop that reacts to a 429 is the client's.
//!
//! Three stages, in order, for every request of a location:
//! 1. **Pause.** A 429 stops the whole location for its `Retry-After` (or the window), not just
//!    the task that got it; so does the daily reserve, for good.
//! 2. **Smoothing** (governor's GCRA at the budget's average rate, bursts of a tenth of it), so a
//!    window's requests are spread out rather than sent in one lump. Staying within the limit
//!    is not its job.
//! 3. **The window log**, which keeps everything safe. A request is granted only while fewer than
//!    `max` of this location's requests are *counted*: in flight, or answered less than
//!    `interval` ago. The server stamps a request after we grant it and before we see its
//!    answer, so if request *b* is granted at `g` and *a* was answered at `r <= g - interval`,
//!    the server saw them at least `interval` apart, whatever the network, the scheduler or the
//!    clock granularity did in between. Hence no server window ever holds more than `max` of
//!    ours, and the only cost is one round trip per window (0.1 % at 100/10 s with a 10 ms
//!    round trip, 2 % with 200 ms), where a margin sized for jitter costs a few percent always.
//!
//! The budget is the configured one (the user's ceiling, for our own requests) and, once an
//! answer carries `X-RateLimit-Max` and `X-RateLimit-Interval-Milliseconds`, the server's too;
//! both are enforced. `X-RateLimit-Remaining` reveals requests of others on the same budget
//! (another run with the same app and location): when the server counts more than we can have
//! sent, the difference is certainly someone else's, and it occupies our log for a window.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::HeaderMap;
use tokio::sync::Notify;
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

    /// The budget the server advertises, if it says both parts.
    fn budget(&self) -> Option<RateSpec> {
        Some(RateSpec {
            max: self.max?.max(1),
            interval: Duration::from_millis(self.interval_ms?.max(1)),
        })
    }
}

/// Governor's clock on tokio's time (time since the limiter was made), so that the smoothing
/// sleeps on tokio's timer like the rest and tests under a paused clock see one time.
#[derive(Debug, Clone, Copy)]
struct TokioClock(Instant);

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.0)
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The GCRA that spreads requests: `safety` of the average rate, bursts of a tenth of `max`.
/// Whether a window holds too many is not its business (see the window log).
fn bucket_for(spec: RateSpec, safety: f64, clock: TokioClock) -> Bucket {
    let burst = (spec.max / 10).max(1);
    let period = spec
        .interval
        .div_f64(spec.max as f64 * safety.clamp(0.01, 1.0));
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("period is positive")
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    RateLimiter::direct_with_clock(quota, clock)
}

/// How many of `times` (sorted, oldest first) are younger than `interval` at `now`.
fn alive(times: &VecDeque<Instant>, interval: Duration, now: Instant) -> usize {
    times.len() - times.partition_point(|t| *t + interval <= now)
}

/// When a window stops holding `max` or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Now,
    At(Instant),
    /// Every counted request is still in flight: wait for an answer.
    AfterAnAnswer,
}

/// The log and the pause of one location (see the module documentation).
#[derive(Debug)]
struct Window {
    /// The configured budget: our own requests never exceed it.
    ceiling: RateSpec,
    /// The budget the answers advertise; ours and others' requests together stay within it.
    server: Option<RateSpec>,
    /// Granted requests whose answer has not been seen yet.
    in_flight: usize,
    /// When each of our answered requests was answered, oldest first; kept for two of the
    /// longest intervals (the second one for [`Window::ours_the_server_may_count`]).
    answered: VecDeque<Instant>,
    /// Others' requests on the server budget, proven by `X-RateLimit-Remaining`: each is
    /// stamped with the answer that revealed it and counted for one server interval from then.
    foreign: VecDeque<Instant>,
    /// No request starts before this (a 429).
    paused_until: Option<Instant>,
    /// When the last 429 without Retry-After came.
    last_throttle: Option<Instant>,
    /// 429s without Retry-After, each within an interval of the one before, less one.
    throttle_streak: u32,
    /// The daily budget is down to the reserve: every later request is refused.
    daily_exhausted: bool,
}

impl Window {
    fn server_budget(&self) -> RateSpec {
        self.server.unwrap_or(self.ceiling)
    }

    /// The budget with the smaller average rate: what the smoothing runs at.
    fn pace(&self) -> RateSpec {
        match self.server {
            Some(s) if s.per_second() < self.ceiling.per_second() => s,
            _ => self.ceiling,
        }
    }

    fn prune(&mut self, now: Instant) {
        let keep = 2 * self.ceiling.interval.max(self.server_budget().interval);
        while self.answered.front().is_some_and(|t| *t + keep <= now) {
            self.answered.pop_front();
        }
        let server = self.server_budget().interval;
        while self.foreign.front().is_some_and(|t| *t + server <= now) {
            self.foreign.pop_front();
        }
    }

    /// Room under one budget, counting `foreign` requests too when asked.
    fn room_in(&self, spec: RateSpec, with_foreign: bool, now: Instant) -> Room {
        let max = spec.max as usize;
        let answered = &self.answered;
        let first_alive = answered.partition_point(|t| *t + spec.interval <= now);
        let counted = self.in_flight
            + (answered.len() - first_alive)
            + if with_foreign {
                alive(&self.foreign, spec.interval, now)
            } else {
                0
            };
        if counted < max {
            return Room::Now;
        }
        // The (counted - max + 1)-th expiry among answered and foreign requests frees a place.
        let need = counted - max + 1;
        let mut ours = answered.range(first_alive..).copied().peekable();
        let mut theirs = self
            .foreign
            .iter()
            .copied()
            .filter(|t| with_foreign && *t + spec.interval > now)
            .peekable();
        let mut nth = None;
        for _ in 0..need {
            nth = match (ours.peek(), theirs.peek()) {
                (Some(a), Some(b)) if a <= b => ours.next(),
                (Some(_), Some(_)) | (None, Some(_)) => theirs.next(),
                (Some(_), None) => ours.next(),
                (None, None) => return Room::AfterAnAnswer,
            };
        }
        nth.map_or(Room::AfterAnAnswer, |t| Room::At(t + spec.interval))
    }

    /// Room under both budgets: the later of the two.
    fn room(&mut self, now: Instant) -> Room {
        self.prune(now);
        let ours = self.room_in(self.ceiling, false, now);
        let all = self.room_in(self.server_budget(), true, now);
        match (ours, all) {
            (Room::Now, Room::Now) => Room::Now,
            (Room::AfterAnAnswer, _) | (_, Room::AfterAnAnswer) => Room::AfterAnAnswer,
            (Room::At(a), Room::At(b)) => Room::At(a.max(b)),
            (Room::At(t), Room::Now) | (Room::Now, Room::At(t)) => Room::At(t),
        }
    }

    /// An upper bound on our requests the server counted when it stamped a request granted at
    /// `granted` and answered now: any of ours it counted was granted before that answer and
    /// answered after the stamp less an interval, so it is in flight now or was answered after
    /// `granted - interval`. (The request itself is already in `answered`.)
    fn ours_the_server_may_count(&self, granted: Instant, interval: Duration) -> usize {
        let since = granted.checked_sub(interval);
        let answered = match since {
            Some(s) => self.answered.len() - self.answered.partition_point(|t| *t <= s),
            None => self.answered.len(),
        };
        self.in_flight + answered
    }
}

pub struct LocationLimiter {
    /// Spreads requests (stage 2). Replaced, never mutated, when the pace changes; tasks
    /// already waiting on the old one finish with it.
    bucket: RwLock<Arc<Bucket>>,
    clock: TokioClock,
    /// Stages 1 and 3. A std mutex: held for a few comparisons, never across an await.
    window: Mutex<Window>,
    /// Tasks take turns (tokio's mutex is FIFO) through the three stages, so one task sleeps on
    /// the bucket or the window instead of every queued task waking at each expiry (a
    /// thundering herd). Held until the grant; nobody closes it.
    turn: tokio::sync::Mutex<()>,
    /// Woken at every answer, for the task holding `turn` while the window is full of requests
    /// still in flight.
    answered: Notify,
    safety: f64,
    daily_reserve: u64,
    /// False for [`LocationLimiter::unpaced`]: it keeps the daily reserve only.
    paces: bool,
}

/// A granted request. Say when its answer arrived with [`Permit::answered`]; dropping it
/// unanswered (a transport error, a cancelled task) counts it as answered at the drop.
#[must_use = "a permit counts as in flight until it is answered or dropped"]
pub struct Permit<'a> {
    limiter: &'a LocationLimiter,
    granted: Instant,
    open: bool,
}

impl Permit<'_> {
    /// The answer's head arrived: learn from its headers. Returns true when the daily budget
    /// reached the reserve.
    pub fn answered(mut self, headers: &RateHeaders) -> bool {
        self.open = false;
        self.limiter.close(self.granted, Some(headers))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.open {
            self.limiter.close(self.granted, None);
        }
    }
}

impl LocationLimiter {
    /// `spec` is the ceiling; `safety` (0..=1) the share of its average rate the smoothing
    /// uses (1.0 is safe: the window log, not a margin, keeps requests within the limit).
    pub fn new(spec: RateSpec, safety: f64, daily_reserve: u64) -> LocationLimiter {
        let clock = TokioClock(Instant::now());
        LocationLimiter {
            bucket: RwLock::new(Arc::new(bucket_for(spec, safety, clock))),
            clock,
            window: Mutex::new(Window {
                ceiling: spec,
                server: None,
                in_flight: 0,
                answered: VecDeque::new(),
                foreign: VecDeque::new(),
                paused_until: None,
                last_throttle: None,
                throttle_streak: 0,
                daily_exhausted: false,
            }),
            turn: tokio::sync::Mutex::new(()),
            answered: Notify::new(),
            safety,
            daily_reserve,
            paces: true,
        }
    }

    /// A limiter that does not pace (`--rate off`): no budget of its own, none learnt from the
    /// answers, no pause after a 429; it keeps the daily reserve all the same.
    pub fn unpaced(daily_reserve: u64) -> LocationLimiter {
        let unreachable = RateSpec {
            max: 1_000_000,
            interval: Duration::from_secs(1),
        };
        LocationLimiter {
            paces: false,
            ..LocationLimiter::new(unreachable, 1.0, daily_reserve)
        }
    }

    /// Whether it paces requests (and pauses after a 429).
    pub fn paces(&self) -> bool {
        self.paces
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The budget this location is paced at: the configured one, or the server's when its
    /// average rate is lower.
    pub fn spec(&self) -> RateSpec {
        self.lock().pace()
    }

    /// Wait for this location's turn. `None` when the daily budget is spent.
    pub async fn acquire(&self) -> Option<Permit<'_>> {
        // One task at a time goes through the stages; the others queue here in order.
        let _turn = self.turn.lock().await;
        // Stage 1 before the smoothing, so a pause does not use up the bucket's burst.
        loop {
            let until = {
                let w = self.lock();
                if w.daily_exhausted {
                    return None;
                }
                w.paused_until.filter(|t| *t > Instant::now())
            };
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => break,
            }
        }
        let bucket = self
            .bucket
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        while let Err(later) = bucket.check() {
            tokio::time::sleep(later.wait_time_from(self.clock.now())).await;
        }
        loop {
            // Created before the check, so an answer between the check and the await wakes it.
            let answer = self.answered.notified();
            let (wait, interval) = {
                let mut w = self.lock();
                let now = Instant::now();
                if w.daily_exhausted {
                    return None;
                }
                // A 429 may have arrived while this task queued: do not send into a pause.
                let wait = match w.paused_until.filter(|t| *t > now) {
                    Some(t) => Room::At(t),
                    None => w.room(now),
                };
                if wait == Room::Now {
                    w.in_flight += 1;
                    return Some(Permit {
                        limiter: self,
                        granted: now,
                        open: true,
                    });
                }
                (wait, w.ceiling.interval.max(w.server_budget().interval))
            };
            match wait {
                Room::At(t) => tokio::time::sleep_until(t).await,
                // Bounded, in case the answer we wait for is lost in a way we do not foresee.
                _ => {
                    let _ = tokio::time::timeout(interval, answer).await;
                }
            }
        }
    }

    /// Stop every request of this location for `d` (a 429's Retry-After, or the interval).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut w = self.lock();
        if w.paused_until.is_none_or(|p| p < until) {
            w.paused_until = Some(until);
        }
    }

    /// The pause for a 429 whose rate headers say the window is full but not when to return
    /// (a bare 429 pauses nothing but its own request: see `answer`). The answer's
    /// `X-RateLimit-Remaining` has already told the log of others' requests, so the log holds
    /// the next request back anyway; this is a margin on top. The first such 429 in an interval
    /// pauses nothing more; a second within an interval of the last pauses the location for
    /// an eighth of the interval, and each further one doubles it, up to the whole interval.
    /// Pausing a whole interval at every 429 cost 40% of the pace under 5% faults.
    pub fn throttle_pause(&self) -> Duration {
        let mut w = self.lock();
        let interval = w.server_budget().interval;
        let now = Instant::now();
        let again = w
            .last_throttle
            .is_some_and(|t| now.duration_since(t) < interval);
        w.throttle_streak = if again {
            (w.throttle_streak + 1).min(4)
        } else {
            0
        };
        w.last_throttle = Some(now);
        match w.throttle_streak {
            0 => Duration::ZERO,
            n => interval / 8 * (1 << (n - 1)),
        }
    }

    /// A request granted at `granted` ended now; learn from its answer's headers, if any.
    /// Returns true when the daily budget reached the reserve.
    fn close(&self, granted: Instant, headers: Option<&RateHeaders>) -> bool {
        let mut repace = None;
        let exhausted = {
            let mut w = self.lock();
            // Read under the lock, so `answered` and `foreign` stay in time order.
            let now = Instant::now();
            w.in_flight = w.in_flight.saturating_sub(1);
            w.answered.push_back(now);
            if let Some(h) = headers {
                if let Some(budget) = h.budget().filter(|_| self.paces) {
                    if w.server != Some(budget) {
                        let before = w.pace();
                        if budget.per_second() < w.ceiling.per_second() * 0.999 {
                            tracing::info!(
                                configured = %w.ceiling, advertised = %budget,
                                "The server advertises a smaller rate limit than configured; pacing at it."
                            );
                        }
                        w.server = Some(budget);
                        if w.pace() != before {
                            repace = Some(w.pace());
                        }
                    }
                }
                if let Some(remaining) = h.remaining {
                    let server = w.server_budget();
                    let counted = (h.max.unwrap_or(server.max)).saturating_sub(remaining) as usize;
                    let ours = w.ours_the_server_may_count(granted, server.interval);
                    let proven = counted.saturating_sub(ours);
                    let known = alive(&w.foreign, server.interval, now);
                    if proven > known {
                        tracing::debug!(
                            others = proven,
                            "Another client is using this location's rate limit."
                        );
                        for _ in known..proven {
                            w.foreign.push_back(now);
                        }
                    }
                }
                if h.daily_remaining
                    .is_some_and(|daily| daily <= self.daily_reserve)
                {
                    w.daily_exhausted = true;
                }
            }
            w.prune(now);
            w.daily_exhausted
        };
        if let Some(pace) = repace {
            *self.bucket.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(bucket_for(pace, self.safety, self.clock));
        }
        self.answered.notify_waiters();
        exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> RateSpec {
        s.parse().unwrap()
    }

    fn headers(max: u32, remaining: u32, interval_ms: u64) -> RateHeaders {
        RateHeaders {
            max: Some(max),
            remaining: Some(remaining),
            interval_ms: Some(interval_ms),
            daily_remaining: None,
        }
    }

    /// A server's sliding log: the instants it admitted.
    fn max_in_any_window(stamps: &[Instant], interval: Duration) -> usize {
        let mut best = 0;
        for (i, t) in stamps.iter().enumerate() {
            let n = stamps[i..]
                .iter()
                .take_while(|u| **u < *t + interval)
                .count();
            best = best.max(n);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_a_window_and_close_to_it() {
        // 10/1s from 4 tasks back to back; the "server" stamps each request 0-4 ms after the
        // grant and answers 0-3 ms after that, varying from request to request.
        let lim = Arc::new(LocationLimiter::new(spec("10/1s"), 1.0, 0));
        let stamps = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..4u64)
            .map(|task| {
                let (lim, stamps) = (lim.clone(), stamps.clone());
                tokio::spawn(async move {
                    let mut n = task;
                    while Instant::now() < t0 + Duration::from_secs(20) {
                        n += 4;
                        let p = lim.acquire().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(n * 7 % 5)).await;
                        stamps.lock().unwrap().push(Instant::now());
                        tokio::time::sleep(Duration::from_millis(n * 3 % 4)).await;
                        p.answered(&headers(10, 5, 1000));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut stamps = stamps.lock().unwrap().clone();
        stamps.sort();
        assert!(max_in_any_window(&stamps, Duration::from_secs(1)) <= 10);
        // 20 s at 10/s, less a round trip per window: about 200.
        let n = stamps.len();
        assert!(n >= 195, "{n} requests in 20 s");
    }

    #[test]
    fn smoothing_bursts_a_tenth() {
        let lim = LocationLimiter::new(RateSpec::GHL_BURST, 1.0, 0);
        let bucket = lim.bucket.read().unwrap().clone();
        let immediate = (0..100).filter(|_| bucket.check().is_ok()).count();
        assert_eq!(immediate, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_and_daily_reserve() {
        let lim = LocationLimiter::new(spec("1000/1s"), 1.0, 50);
        lim.pause(Duration::from_secs(3));
        let t0 = Instant::now();
        let p = lim.acquire().await.unwrap();
        assert!(Instant::now() - t0 >= Duration::from_secs(3));
        let exhausted = p.answered(&RateHeaders {
            daily_remaining: Some(40),
            ..Default::default()
        });
        assert!(exhausted);
        assert!(lim.acquire().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_keeps_the_daily_reserve_but_no_budget() {
        let lim = LocationLimiter::unpaced(50);
        assert!(!lim.paces());
        lim.acquire()
            .await
            .unwrap()
            .answered(&headers(100, 99, 10_000));
        assert_ne!(
            lim.spec(),
            RateSpec::GHL_BURST,
            "the server's budget is not adopted"
        );
        let exhausted = lim.acquire().await.unwrap().answered(&RateHeaders {
            daily_remaining: Some(40),
            ..Default::default()
        });
        assert!(exhausted);
        assert!(lim.acquire().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn enforces_the_server_budget_too() {
        let lim = LocationLimiter::new(spec("1000/1s"), 1.0, 0);
        lim.acquire()
            .await
            .unwrap()
            .answered(&headers(100, 99, 10_000));
        assert_eq!(lim.spec(), RateSpec::GHL_BURST);
        // Same average rate, shorter window: not implied by ours, so enforced as well.
        let lim = LocationLimiter::new(spec("100/10s"), 1.0, 0);
        lim.acquire().await.unwrap().answered(&headers(10, 9, 1000));
        let t0 = Instant::now();
        for _ in 0..9 {
            lim.acquire().await.unwrap().answered(&headers(10, 9, 1000));
        }
        let p = lim.acquire().await.unwrap();
        assert!(Instant::now() - t0 >= Duration::from_millis(990));
        drop(p);
    }

    #[tokio::test(start_paused = true)]
    async fn others_on_the_same_budget_take_their_share() {
        let lim = LocationLimiter::new(RateSpec::GHL_BURST, 1.0, 0);
        let t0 = Instant::now();
        // One request of ours, and the server counts 98: 97 are someone else's.
        lim.acquire()
            .await
            .unwrap()
            .answered(&headers(100, 2, 10_000));
        for _ in 0..2 {
            drop(lim.acquire().await.unwrap());
        }
        assert!(Instant::now() - t0 < Duration::from_millis(50));
        // The window is full (3 ours, 97 theirs) until the first of them is 10 s old.
        drop(lim.acquire().await.unwrap());
        assert!(Instant::now() - t0 >= Duration::from_millis(9_990));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_of_requests_in_flight_waits_for_an_answer() {
        let lim = Arc::new(LocationLimiter::new(spec("2/1s"), 1.0, 0));
        let t0 = Instant::now();
        let a = lim.acquire().await.unwrap();
        let b = lim.acquire().await.unwrap();
        let l2 = lim.clone();
        let third = tokio::spawn(async move {
            drop(l2.acquire().await.unwrap());
            Instant::now() - t0
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        a.answered(&RateHeaders::default());
        // Answered at 3 s: it counts until 4 s.
        let waited = third.await.unwrap();
        assert!(waited >= Duration::from_secs(4), "{waited:?}");
        drop(b);
    }
}
