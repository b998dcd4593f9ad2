//! Rate budgets sized from the servers' own headers.
//!
//! One [`Budget`] exists per API and credential and is shared (`Arc`) by every task that uses
//! that credential, so pollers, the executor and the safety sweep all draw from one pool.
//!
//! Written by hand rather than with `governor`: governor's quotas are fixed at construction,
//! while here the limit and window are only learnt from response headers (Trengo accounts can
//! have 120 or 2,000 requests a minute; GHL states its window in milliseconds) and must be
//! resized on the fly, clamped by what the server says is left, and blocked after a 429.
//!
//! Pacing is a token bucket whose capacity plus one window of refill stays under the server's
//! limit: with capacity `c` and refill `r` per window `W`, any stretch of length `W` holds at
//! most `c + r·W` requests, and both are chosen so that this is below the limit with some
//! headroom. So the client slows down before the server would answer 429, whatever the phase
//! of the server's fixed window. Time is tokio's, so tests run it paused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What one response said about the budget (all optional: not every answer carries headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateObservation {
    /// Requests allowed per window.
    pub limit: Option<u32>,
    /// Requests left in the current window.
    pub remaining: Option<u32>,
    /// Window length.
    pub window: Option<Duration>,
    /// Requests left today (GHL only).
    pub daily_remaining: Option<u64>,
    /// Requests allowed per day (GHL only).
    pub daily_limit: Option<u64>,
}

/// A point-in-time view of a budget, for `/status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSnapshot {
    /// Requests allowed per window (learnt from headers, else the documented default).
    pub limit: u32,
    /// Requests left: the lower of the local estimate and what the server last said.
    pub remaining: u32,
    /// Window length.
    pub window: Duration,
    /// Requests left today, when the API says (GHL).
    pub daily_remaining: Option<u64>,
    /// How long new requests are held back after a 429, if they are.
    pub blocked_for: Option<Duration>,
    /// Whether the size was learnt from response headers yet.
    pub sized_from_headers: bool,
}

/// How long to hold everything back when the daily allowance reads zero; GHL documents no reset
/// time for the daily window (ghl-api.md §2 \[spec\]), so the client probes again after this.
const DAILY_EXHAUSTED_PAUSE: Duration = Duration::from_secs(600);

/// A shared, header-sized request budget for one API credential.
#[derive(Debug)]
pub struct Budget {
    label: &'static str,
    // A std mutex: every critical section is a few arithmetic steps, never held across an await.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: u32,
    window: Duration,
    tokens: f64,
    last_refill: Instant,
    blocked_until: Option<Instant>,
    server_remaining: Option<u32>,
    daily_remaining: Option<u64>,
    sized_from_headers: bool,
    /// When the server's current window probably started: the send time of the request whose
    /// answer showed a (nearly) full window. Used to wait "the rest of the window" after a 429.
    window_started: Option<Instant>,
    /// The background share: requests the background may make now, and when that was last
    /// brought up to date (see [`Budget::try_acquire_share`]).
    share: (f64, Instant),
}

impl State {
    /// The burst: a twentieth of the limit (6 of Trengo's 120 a minute, 5 of GHL's 100 per
    /// 10 s), enough for a poll and one item's reads to leave at once. Every token of burst is
    /// a token less of sustained rate (see `rate`): a tenth left a rate-bound pass at 85 % of
    /// the limit; a twentieth leaves it at 90 %.
    fn capacity(&self) -> f64 {
        f64::from((self.limit / 20).max(1))
    }

    /// Refill per second: the limit minus the burst capacity minus a 5 % headroom for network
    /// jitter between our send time and the server's count, spread over the window.
    fn rate(&self) -> f64 {
        let cap = self.capacity();
        let headroom = f64::from((self.limit / 20).max(1));
        let per_window = (f64::from(self.limit) - cap - headroom).max(1.0);
        per_window / self.window.as_secs_f64().max(0.001)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_refill);
        self.tokens = refilled(self.tokens, elapsed, self.rate(), self.capacity());
        self.last_refill = now;
    }
}

/// A token bucket's content after `elapsed` at `per_second`, never above `cap`: the one refill
/// rule of the budget, its background share and the sweep's GHL allowance.
pub fn refilled(tokens: f64, elapsed: Duration, per_second: f64, cap: f64) -> f64 {
    (tokens + elapsed.as_secs_f64() * per_second).min(cap)
}

impl Budget {
    /// A budget for `limit` requests per `window`, used until response headers say otherwise.
    /// It starts with a single token, so concurrent tasks send one probe before the real size
    /// is known instead of a burst that might already exceed a smaller server limit.
    pub fn new(label: &'static str, limit: u32, window: Duration) -> Self {
        let now = Instant::now();
        Self {
            label,
            state: Mutex::new(State {
                limit: limit.max(1),
                window: if window.is_zero() {
                    Duration::from_secs(1)
                } else {
                    window
                },
                tokens: 1.0,
                last_refill: now,
                blocked_until: None,
                server_remaining: None,
                daily_remaining: None,
                sized_from_headers: false,
                window_started: None,
                share: (f64::INFINITY, now),
            }),
        }
    }

    /// Trengo's documented default: 120 requests per minute per token (trengo-api.md §2 \[OFF\]).
    pub fn trengo_default() -> Self {
        Self::new("trengo", 120, Duration::from_secs(60))
    }

    /// GHL's documented burst limit: 100 requests per 10 s per location (ghl-api.md §2 \[spec\]).
    pub fn ghl_default() -> Self {
        Self::new("ghl", 100, Duration::from_secs(10))
    }

    /// The label this budget logs under.
    pub fn label(&self) -> &'static str {
        self.label
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until one request may be sent, then takes it from the budget. Returns the instant
    /// the permit was granted (the request's send time, used to date the window's start).
    pub async fn acquire(&self) -> Instant {
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                state.refill(now);
                match state.blocked_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        state.blocked_until = None;
                        if state.tokens >= 1.0 {
                            state.tokens -= 1.0;
                            if let Some(remaining) = state.server_remaining.as_mut() {
                                *remaining = remaining.saturating_sub(1);
                            }
                            return now;
                        }
                        Duration::from_secs_f64(((1.0 - state.tokens) / state.rate()).max(0.001))
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Asks whether a background job (the safety sweep) may spend one request now: yes when the
    /// job's share has a request left and a request could leave without waiting while the rest
    /// of the burst (all but `fraction` of it) stays for foreground work, so a poll or a
    /// webhook's item right after a sweep slice still leaves at once. A yes is counted against
    /// the share; the request itself still goes through [`Budget::acquire`]. A no means "yield
    /// to foreground work and try later".
    ///
    /// The share is a rate: `fraction` of the limit per window, refilled continuously, with at
    /// most a sixth of a window's share saved up (a pass every few seconds spends what it
    /// saved, whatever its period). Counted per window instead, a walk spent its
    /// whole share in the first part of a window and then stood still for the rest of it: at
    /// Trengo's minute and 120 requests a little under a minute, but in the benchmark, which
    /// multiplies the limit by K within the same real minute, K times that in documented time
    /// (a label waited up to 17 documented minutes at 10,000 links). A rate is what a limit
    /// multiplied by K scales exactly, and what keeps the sweep steady in production too.
    pub fn try_acquire_share(&self, fraction: f64) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        state.refill(now);
        let fraction = fraction.clamp(0.0, 1.0);
        let reserve = (state.capacity() * (1.0 - fraction)).floor();
        if state.blocked_until.is_some_and(|until| until > now) || state.tokens < 1.0 + reserve {
            return false;
        }
        let per_second = f64::from(state.limit) * fraction / state.window.as_secs_f64().max(0.001);
        let saved_at_most = (per_second * state.window.as_secs_f64() / 6.0).max(1.0);
        let (left, at) = state.share;
        let left = refilled(
            left,
            now.saturating_duration_since(at),
            per_second,
            saved_at_most,
        );
        if left < 1.0 {
            state.share = (left, now);
            return false;
        }
        state.share = (left - 1.0, now);
        true
    }

    /// Feeds what a response's headers said into the budget. `sent_at` is the instant returned
    /// by the [`Budget::acquire`] that sent the request.
    pub fn observe(&self, observation: RateObservation, sent_at: Instant) {
        let mut state = self.lock();
        let now = Instant::now();
        state.refill(now);
        let mut resized = false;
        if let Some(limit) = observation.limit.filter(|l| *l > 0)
            && limit != state.limit
        {
            state.limit = limit;
            resized = true;
        }
        if let Some(window) = observation.window.filter(|w| !w.is_zero())
            && window != state.window
        {
            state.window = window;
            resized = true;
        }
        if !state.sized_from_headers
            && (observation.limit.is_some() || observation.remaining.is_some())
        {
            state.sized_from_headers = true;
            resized = true;
        }
        if resized {
            let cap = state.capacity();
            state.tokens = state.tokens.min(cap);
        }
        if let Some(remaining) = observation.remaining {
            state.server_remaining = Some(remaining);
            // Someone else may spend the same credential: never believe we have more than the
            // server says is left.
            if f64::from(remaining) < state.tokens {
                state.tokens = f64::from(remaining);
            }
            if remaining.saturating_add(1) >= state.limit {
                state.window_started = Some(sent_at);
            }
        }
        if let Some(daily) = observation.daily_remaining {
            state.daily_remaining = Some(daily);
            if daily == 0 {
                tracing::warn!(
                    budget = self.label,
                    "daily request allowance exhausted; pausing requests"
                );
                let until = now + DAILY_EXHAUSTED_PAUSE;
                state.blocked_until = Some(state.blocked_until.map_or(until, |b| b.max(until)));
            }
        }
    }

    /// Records a 429: holds every request on this budget back for `retry_after` when the server
    /// said, else for the rest of the server's current window (estimated from when it started;
    /// a whole window when unknown). Returns how long requests are held back.
    pub fn note_rate_limited(&self, retry_after: Option<Duration>) -> Duration {
        let mut state = self.lock();
        let now = Instant::now();
        let wait = match retry_after {
            Some(wait) => wait,
            None => {
                let window = state.window;
                match state.window_started {
                    Some(start) if start + window > now => (start + window) - now,
                    _ => window,
                }
            }
        };
        let until = now + wait;
        state.blocked_until = Some(state.blocked_until.map_or(until, |b| b.max(until)));
        state.tokens = 0.0;
        state.last_refill = until;
        state.server_remaining = Some(0);
        state.window_started = None;
        wait
    }

    /// The current state, for `/status` and metrics.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let mut state = self.lock();
        let now = Instant::now();
        state.refill(now);
        let local = state.tokens.floor().max(0.0) as u32;
        let remaining = state.server_remaining.map_or(local, |s| s.min(state.limit));
        BudgetSnapshot {
            limit: state.limit,
            remaining,
            window: state.window,
            daily_remaining: state.daily_remaining,
            blocked_for: state
                .blocked_until
                .filter(|until| *until > now)
                .map(|until| until - now),
            sized_from_headers: state.sized_from_headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_never_exceeds_limit_in_any_window() {
        let budget = Budget::new("test", 20, Duration::from_secs(10));
        budget.observe(
            RateObservation {
                limit: Some(20),
                remaining: Some(20),
                window: Some(Duration::from_secs(10)),
                ..Default::default()
            },
            Instant::now(),
        );
        let mut sent = Vec::new();
        for _ in 0..100 {
            sent.push(budget.acquire().await);
        }
        for (i, start) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| t.duration_since(*start) < Duration::from_secs(10))
                .count();
            assert!(in_window <= 20, "{in_window} requests within one window");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_without_retry_after_waits_out_the_window() {
        let budget = Budget::new("test", 100, Duration::from_secs(10));
        let waited = budget.note_rate_limited(None);
        assert_eq!(waited, Duration::from_secs(10));
        let before = Instant::now();
        budget.acquire().await;
        assert!(before.elapsed() >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let budget = Budget::new("test", 100, Duration::from_secs(10));
        budget.note_rate_limited(Some(Duration::from_secs(3)));
        assert!(budget.snapshot().blocked_for.is_some());
        let before = Instant::now();
        budget.acquire().await;
        assert!(before.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_share_is_a_rate_with_a_sixth_of_a_windows_share_saved_up() {
        let budget = Budget::new("test", 1_000, Duration::from_secs(10));
        budget.observe(
            RateObservation {
                limit: Some(1_000),
                remaining: Some(1_000),
                ..Default::default()
            },
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        // A sixth of the window's share (100) saved up, then 10 a second (a tenth of 1,000
        // per 10 s), however the window's phase falls: never the window's whole share at once
        // and then nothing for the rest of it.
        let granted = (0..50).filter(|_| budget.try_acquire_share(0.1)).count();
        assert_eq!(granted, 16);
        let mut per_second = Vec::new();
        for _ in 0..30 {
            tokio::time::advance(Duration::from_secs(1)).await;
            per_second.push((0..50).filter(|_| budget.try_acquire_share(0.1)).count());
        }
        assert!(
            per_second.iter().all(|n| (10..=11).contains(n)),
            "{per_second:?}"
        );
        let total: usize = per_second.iter().sum();
        assert!((299..=301).contains(&total), "{total} in 30 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_share_leaves_the_rest_of_the_burst_to_foreground_work() {
        let budget = Budget::new("test", 120, Duration::from_secs(60));
        budget.observe(
            RateObservation {
                limit: Some(120),
                remaining: Some(120),
                ..Default::default()
            },
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let mut sent = 0;
        while budget.try_acquire_share(0.5) {
            budget.acquire().await;
            sent += 1;
        }
        // A burst of 6: the sweep takes 3, and a poll can still leave at once.
        assert_eq!(sent, 3);
        let before = Instant::now();
        budget.acquire().await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[test]
    fn snapshot_reports_server_remaining() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let budget = Budget::trengo_default();
            budget.observe(
                RateObservation {
                    limit: Some(2000),
                    remaining: Some(1500),
                    ..Default::default()
                },
                Instant::now(),
            );
            let snap = budget.snapshot();
            assert_eq!(snap.limit, 2000);
            assert!(snap.remaining <= 1500);
            assert!(snap.sized_from_headers);
        });
    }
}
