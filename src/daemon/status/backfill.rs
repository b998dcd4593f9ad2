//! Backfill progress: how far the first full read of each stream is, and when it should end.
//!
//! The engine reports through [`BackfillTracker`]: listing first (no ETA: nothing applied
//! yet), then the work its plan holds, in milliseconds of rate budget, counted as it is done. The rate, and
//! so the ETA, is measured from when the work became known, not from the start of the
//! listing, whose pace (25 tickets a call) says nothing about the pace of linking.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sync::engine::BackfillTracker;

#[derive(Debug, Clone)]
struct BackfillRun {
    stream: String,
    total_estimate: u64,
    done: u64,
    started_at: DateTime<Utc>,
    /// Where the rate is measured from: when the work to apply became known.
    rated_from: Option<DateTime<Utc>>,
    /// Items listed so far, while the work is not known yet.
    listed: u64,
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
                rated_from: None,
                listed: 0,
                finished_at: None,
            });
        });
    }

    /// Counts `n` more items done in the running backfill (the last started, unfinished one).
    pub fn advance(&self, n: u64, _now: DateTime<Utc>) {
        self.with(|runs| {
            if let Some(run) = running(runs) {
                run.done = run.done.saturating_add(n);
            }
        });
    }

    /// Records that `listed` items were listed so far by the running backfill; while nothing
    /// is planned, they are its estimate.
    pub fn listed(&self, listed: u64) {
        self.with(|runs| {
            if let Some(run) = running(runs) {
                run.listed = listed;
                if run.rated_from.is_none() {
                    run.total_estimate = listed;
                }
            }
        });
    }

    /// Sets the running backfill's total to `total` units of work (done ones included); the
    /// first call starts the clock the rate is measured on.
    pub fn planned(&self, total: u64, now: DateTime<Utc>) {
        self.with(|runs| {
            if let Some(run) = running(runs) {
                run.total_estimate = total;
                run.rated_from.get_or_insert(now);
            }
        });
    }

    /// Marks the running backfill as complete.
    pub fn finish(&self, now: DateTime<Utc>) {
        self.with(|runs| {
            if let Some(run) = running(runs) {
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

fn running(runs: &mut [BackfillRun]) -> Option<&mut BackfillRun> {
    runs.iter_mut().rev().find(|r| r.finished_at.is_none())
}

fn progress(run: &BackfillRun, now: DateTime<Utc>) -> BackfillProgress {
    let end = run.finished_at.unwrap_or(now);
    let from = run.rated_from.unwrap_or(run.started_at);
    let elapsed = (end - from).num_milliseconds() as f64 / 1000.0;
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
        listed: run.listed,
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
    /// Items listed (for the Trengo backfill: tickets read).
    #[serde(default)]
    pub listed: u64,
    /// When it completed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Work done, in milliseconds of API rate budget at the configured limits (the calls made
    /// so far, each weighted by how long its API's limit makes it take).
    pub done: u64,
    /// Work expected, in the same unit (an estimate: `done` may pass it).
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

impl BackfillTracker for Backfill {
    fn backfill_started(&self, stream: &str, now: DateTime<Utc>) {
        self.start(stream, 0, now);
    }

    fn backfill_listed(&self, listed: u64, _now: DateTime<Utc>) {
        self.listed(listed);
    }

    fn backfill_planned(&self, total: u64, now: DateTime<Utc>) {
        self.planned(total, now);
    }

    fn backfill_advanced(&self, n: u64, now: DateTime<Utc>) {
        self.advance(n, now);
    }

    fn backfill_finished(&self, now: DateTime<Utc>) {
        self.finish(now);
    }
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

    #[test]
    fn the_rate_counts_from_when_the_work_is_known_not_from_the_listing() {
        let b = Backfill::new();
        b.backfill_started("trengo.tickets", at(0));
        b.backfill_listed(500, at(100));
        let listing = &b.snapshot(at(100))[0];
        assert_eq!((listing.listed, listing.total_estimate), (500, 500));
        assert_eq!(listing.eta_secs, None, "nothing applied: no rate yet");
        b.backfill_planned(200, at(100));
        b.backfill_advanced(50, at(150));
        let p = &b.snapshot(at(150))[0];
        assert_eq!(p.rate_per_sec, Some(1.0));
        assert_eq!(p.eta_secs, Some(150));
        b.backfill_finished(at(300));
        assert_eq!(b.snapshot(at(400))[0].eta_secs, Some(0));
    }
}
