//! Backfill progress: how far the first full read of each stream is, and when it should end.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
struct BackfillRun {
    stream: String,
    total_estimate: u64,
    done: u64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// Progress of the first full read of each stream (the backfill), one stream at a time as the
/// serial work loop runs them. Shared in an `Arc` by the engine and the HTTP surface.
#[derive(Debug, Default)]
pub struct Backfill {
    // A std mutex: a few field updates, never held across an await. Ordered by start.
    runs: Mutex<Vec<BackfillRun>>,
}

impl Backfill {
    /// No backfill yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<BackfillRun>) -> R) -> R {
        f(&mut self.runs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Starts (or restarts) the backfill of `stream`, expecting about `total_estimate` items.
    pub fn start(&self, stream: &str, total_estimate: u64, now: DateTime<Utc>) {
        self.with(|runs| {
            runs.retain(|r| r.stream != stream);
            runs.push(BackfillRun {
                stream: stream.to_string(),
                total_estimate,
                done: 0,
                started_at: now,
                finished_at: None,
            });
        });
    }

    /// Counts `n` more items done in the running backfill (the last started, unfinished one).
    pub fn advance(&self, n: u64, _now: DateTime<Utc>) {
        self.with(|runs| {
            if let Some(run) = runs.iter_mut().rev().find(|r| r.finished_at.is_none()) {
                run.done = run.done.saturating_add(n);
            }
        });
    }

    /// Marks the running backfill as complete.
    pub fn finish(&self, now: DateTime<Utc>) {
        self.with(|runs| {
            if let Some(run) = runs.iter_mut().rev().find(|r| r.finished_at.is_none()) {
                run.finished_at = Some(now);
            }
        });
    }

    /// Every backfill's progress at `now`; the ETA is what is left divided by the rate seen so
    /// far (none until an item is done).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Vec<BackfillProgress> {
        self.with(|runs| runs.iter().map(|run| progress(run, now)).collect())
    }
}

fn progress(run: &BackfillRun, now: DateTime<Utc>) -> BackfillProgress {
    let end = run.finished_at.unwrap_or(now);
    let elapsed = (end - run.started_at).num_milliseconds() as f64 / 1000.0;
    let rate = (run.done > 0 && elapsed > 0.0).then(|| run.done as f64 / elapsed);
    let remaining = if run.finished_at.is_some() {
        0
    } else {
        run.total_estimate.saturating_sub(run.done)
    };
    let eta_secs = if run.finished_at.is_some() {
        Some(0)
    } else {
        rate.map(|r| (remaining as f64 / r).ceil() as u64)
    };
    BackfillProgress {
        stream: run.stream.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
        done: run.done,
        total_estimate: run.total_estimate,
        percent: (run.total_estimate > 0)
            .then(|| (run.done as f64 * 100.0 / run.total_estimate as f64).min(100.0)),
        rate_per_sec: rate,
        eta_secs,
        eta_at: eta_secs.and_then(|s| {
            let s = i64::try_from(s).ok()?;
            now.checked_add_signed(chrono::Duration::seconds(s))
        }),
    }
}

/// One stream's backfill progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillProgress {
    /// The stream being read.
    pub stream: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it completed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Items done.
    pub done: u64,
    /// Items expected (an estimate: `done` may pass it).
    pub total_estimate: u64,
    /// `done` as a share of the estimate, capped at 100.
    pub percent: Option<f64>,
    /// Items per second so far.
    pub rate_per_sec: Option<f64>,
    /// Seconds left at that rate (0 once complete).
    pub eta_secs: Option<u64>,
    /// When it should complete at that rate.
    pub eta_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn eta_is_what_is_left_over_the_observed_rate() {
        let b = Backfill::new();
        b.start("trengo.tickets", 1000, at(0));
        let before = b.snapshot(at(0));
        assert_eq!(before[0].eta_secs, None, "no rate before the first item");
        b.advance(100, at(50));
        b.advance(100, at(100));
        let p = &b.snapshot(at(100))[0];
        assert_eq!(p.done, 200);
        assert_eq!(p.rate_per_sec, Some(2.0));
        assert_eq!(p.eta_secs, Some(400));
        assert_eq!(p.eta_at, Some(at(500)));
        assert_eq!(p.percent, Some(20.0));
    }

    #[test]
    fn a_finished_backfill_stays_listed_as_done() {
        let b = Backfill::new();
        b.start("trengo.tickets", 10, at(0));
        b.advance(12, at(5));
        b.finish(at(6));
        b.start("ghl.contacts", 5, at(7));
        b.advance(1, at(8));
        let all = b.snapshot(at(9));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].eta_secs, Some(0));
        assert_eq!(all[0].percent, Some(100.0));
        assert_eq!(all[1].stream, "ghl.contacts");
        assert_eq!(all[1].done, 1);
    }
}
