//! GHL's rate limits on the injected clock: a burst budget per window (100 per 10 s) and a
//! daily budget (200 000), with the five `X-RateLimit-*` headers on every API response and a
//! 429 without `Retry-After` when either runs out (ghl-api.md §2 \[spec S5, S13\]).
//!
//! The daily budget resets at midnight UTC; GHL documents no reset time (§11.7).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, NaiveDate, Utc};

/// The budget of one location.
#[derive(Debug)]
pub struct RateBudget {
    burst_limit: u32,
    window: chrono::Duration,
    daily_limit: u32,
    window_start: Option<DateTime<Utc>>,
    used_in_window: u32,
    day: Option<NaiveDate>,
    used_today: u32,
}

/// What the budget said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The request may proceed.
    pub allowed: bool,
    /// Calls left in the burst window after this one.
    pub remaining: u32,
    /// Calls left today after this one.
    pub daily_remaining: u32,
}

impl RateBudget {
    /// A fresh budget.
    pub fn new(burst_limit: u32, window: Duration, daily_limit: u32) -> Self {
        Self {
            burst_limit,
            window: chrono::Duration::from_std(window)
                .unwrap_or_else(|_| chrono::Duration::seconds(10)),
            daily_limit,
            window_start: None,
            used_in_window: 0,
            day: None,
            used_today: 0,
        }
    }

    /// Spends one call at `now` if both budgets allow it.
    pub fn take(&mut self, now: DateTime<Utc>) -> Verdict {
        if self
            .window_start
            .is_none_or(|start| now - start >= self.window)
        {
            self.window_start = Some(now);
            self.used_in_window = 0;
        }
        if self.day != Some(now.date_naive()) {
            self.day = Some(now.date_naive());
            self.used_today = 0;
        }
        let allowed = self.used_in_window < self.burst_limit && self.used_today < self.daily_limit;
        if allowed {
            self.used_in_window += 1;
            self.used_today += 1;
        }
        Verdict {
            allowed,
            remaining: self.burst_limit.saturating_sub(self.used_in_window),
            daily_remaining: self.daily_limit.saturating_sub(self.used_today),
        }
    }

    /// Writes the five headers GHL sends on every v2 response.
    pub fn write_headers(&self, verdict: &Verdict, headers: &mut HeaderMap) {
        let window_ms = self.window.num_milliseconds().max(0) as u64;
        let pairs = [
            ("x-ratelimit-limit-daily", u64::from(self.daily_limit)),
            (
                "x-ratelimit-daily-remaining",
                u64::from(verdict.daily_remaining),
            ),
            ("x-ratelimit-interval-milliseconds", window_ms),
            ("x-ratelimit-max", u64::from(self.burst_limit)),
            ("x-ratelimit-remaining", u64::from(verdict.remaining)),
        ];
        for (name, value) in pairs {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
    }

    #[test]
    fn burst_budget_refills_when_the_window_passes() {
        let mut budget = RateBudget::new(3, Duration::from_secs(10), 100);
        assert!((0..3).all(|_| budget.take(at(0)).allowed));
        assert!(!budget.take(at(9)).allowed);
        let verdict = budget.take(at(10));
        assert!(verdict.allowed);
        assert_eq!(verdict.remaining, 2);
    }

    #[test]
    fn daily_budget_outlasts_windows_until_midnight() {
        let mut budget = RateBudget::new(10, Duration::from_secs(10), 2);
        assert!(budget.take(at(0)).allowed);
        assert!(budget.take(at(20)).allowed);
        assert!(!budget.take(at(40)).allowed);
        assert!(budget.take(at(86_400)).allowed);
    }
}
