//! How a sweep pass spends requests: a [`Pacer`] says yes to each call a walk may make now,
//! from the sweep's share of each API's rate and, for GHL, from an [`Allowance`] spent as a
//! rate (`limits.ghl_sweep_per_day`).

use std::time::{Duration, Instant};

use super::Pace;
use crate::api::Budget;
use crate::api::budget::refilled;

/// GHL's sweep allowance spent as a rate: `per_hour` calls an hour, refilled continuously, with
/// at most one cycle's worth saved up (`per_hour × cycle`). Counted per clock hour instead, the
/// sweep spent an hour's worth in its first minutes and then waited out the rest of the hour:
/// at 10,000 links a task completion could wait 40 min for the next task walk. A rate is also
/// what a benchmark scaling every limit by K scales (its hour is a real one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Allowance {
    /// Calls that may be made now.
    pub(super) tokens: f64,
    /// When `tokens` was last brought up to date.
    pub(super) at: Instant,
}

impl Allowance {
    /// The allowance at `now`, full.
    pub(crate) fn full(now: Instant, per_hour: u32, cycle: Duration) -> Self {
        Self {
            tokens: Self::cap(per_hour, cycle),
            at: now,
        }
    }

    /// The most calls saved up: one cycle's worth, and at least one call.
    pub(crate) fn cap(per_hour: u32, cycle: Duration) -> f64 {
        (f64::from(per_hour) * cycle.as_secs_f64() / 3600.0).max(1.0)
    }

    /// Takes one call if the allowance has one at `now`.
    pub(crate) fn take(&mut self, now: Instant, per_hour: u32, cycle: Duration) -> bool {
        self.tokens = refilled(
            self.tokens,
            now.saturating_duration_since(self.at),
            f64::from(per_hour) / 3600.0,
            Self::cap(per_hour, cycle),
        );
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Says yes to each request a walk may make now.
pub(super) struct Pacer<'a> {
    pub(super) pace: Pace,
    pub(super) budget: &'a Budget,
    /// GHL's allowance (none for Trengo).
    pub(super) allowance: Option<&'a mut Option<Allowance>>,
    pub(super) calls: u64,
    /// No more calls than this in all, for now (one walk's turn while another waits).
    pub(super) cap: Option<u64>,
    /// When the pass started: the GHL allowance is counted as of then, so a pass spends at
    /// most what was saved up when it began. Counted as of each call, a pass whose calls are
    /// slower than the allowance refills never ran out of it: it walked every contact's notes
    /// in one go (tens of seconds) while the hints the Trengo walk had found waited for the
    /// pass to end (seen in the staleness benchmark: Trengo-side changes 15 min late).
    pub(super) started: Instant,
}

impl Pacer<'_> {
    pub(super) fn may(&mut self) -> bool {
        if self.cap.is_some_and(|cap| self.calls >= cap) {
            return false;
        }
        let Pace::Share {
            fraction,
            ghl_per_hour,
            cycle,
        } = self.pace
        else {
            self.calls += 1;
            return true;
        };
        if let Some(slot) = self.allowance.as_deref_mut() {
            let now = self.started;
            let mut allowance =
                *slot.get_or_insert_with(|| Allowance::full(now, ghl_per_hour, cycle));
            if !allowance.take(now, ghl_per_hour, cycle) {
                *slot = Some(allowance);
                return false;
            }
            if !self.budget.try_acquire_share(fraction) {
                // Not spent: the call is not made.
                allowance.tokens += 1.0;
                *slot = Some(allowance);
                return false;
            }
            *slot = Some(allowance);
        } else if !self.budget.try_acquire_share(fraction) {
            return false;
        }
        self.calls += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_pass_spends_no_more_of_the_ghl_allowance_than_it_had_when_it_began() {
        // 36,000 an hour (ten a second) with ten seconds saved up at most: 100 calls. A pass
        // whose calls take longer than the refill must still stop at those 100.
        let budget = Budget::new("test", 1_000_000, Duration::from_secs(10));
        let mut slot = None;
        let started = Instant::now();
        // The calls a pass started at `started` may make.
        let mut pass = |started: Instant| {
            let mut pacer = Pacer {
                pace: Pace::Share {
                    fraction: 1.0,
                    ghl_per_hour: 36_000,
                    cycle: Duration::from_secs(10),
                },
                budget: &budget,
                allowance: Some(&mut slot),
                calls: 0,
                cap: None,
                started,
            };
            let mut made = 0;
            while pacer.may() {
                made += 1;
                assert!(made <= 100, "the pass went on past what it had saved up");
            }
            made
        };
        assert_eq!(pass(started), 100);
        // The next pass, a second later, has a second's refill.
        assert_eq!(pass(started + Duration::from_secs(1)), 10);
    }

    #[test]
    fn the_ghl_allowance_is_a_rate_with_one_cycle_saved_up_at_most() {
        let cycle = Duration::from_secs(300);
        let t0 = Instant::now();
        // 3,600 an hour is one a second; one cycle's worth is 300.
        let mut a = Allowance::full(t0, 3600, cycle);
        let taken = (0..1000).filter(|_| a.take(t0, 3600, cycle)).count();
        assert_eq!(taken, 300, "a full allowance is one cycle's worth");
        assert!(!a.take(t0, 3600, cycle));
        // Ten seconds later, ten more: spread over the hour, not an hour's worth at once.
        let t1 = t0 + Duration::from_secs(10);
        let taken = (0..1000).filter(|_| a.take(t1, 3600, cycle)).count();
        assert_eq!(taken, 10);
        // An idle hour saves up one cycle's worth, no more.
        let t2 = t1 + Duration::from_secs(3600);
        let taken = (0..10_000).filter(|_| a.take(t2, 3600, cycle)).count();
        assert_eq!(taken, 300);
        // A tiny allowance still lets a call through now and then.
        let mut small = Allowance::full(t0, 1, Duration::from_secs(1));
        assert!(small.take(t0, 1, Duration::from_secs(1)));
        assert!(!small.take(t0 + Duration::from_secs(60), 1, Duration::from_secs(1)));
        assert!(small.take(t0 + Duration::from_secs(3600), 1, Duration::from_secs(1)));
    }
}
