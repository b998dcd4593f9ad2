//! The scheduled jobs and the board that watches them.
//!
//! tokio-cron-scheduler starts a run even while the previous one is still going (its issue
//! #83), and its interval jobs can silently stop firing (#113). So only cron jobs are used,
//! every firing is recorded here as a *tick*, a job that is still queued or running makes
//! the next tick a counted *skip*, and [`JobBoard::health`] fails when a job has not ticked
//! within three of its periods: that is what `/healthz` and the systemd watchdog read.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::CronExpr;

/// The kinds of scheduled work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Read Trengo tickets updated since the watermark.
    TrengoPoll,
    /// Read GHL contacts updated since the watermark.
    GhlPoll,
    /// Re-read linked open items in a rolling, budgeted order.
    Sweep,
    /// Re-read every link.
    Reconcile,
}

impl JobKind {
    /// Every kind, in a stable order.
    pub const ALL: [JobKind; 4] = [
        JobKind::TrengoPoll,
        JobKind::GhlPoll,
        JobKind::Sweep,
        JobKind::Reconcile,
    ];

    /// The name used in logs, metrics, `/status` and the store.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::TrengoPoll => "trengo_poll",
            JobKind::GhlPoll => "ghl_poll",
            JobKind::Sweep => "sweep",
            JobKind::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The time between two consecutive firings of `cron` after `from` (its period).
pub fn period_of(cron: &CronExpr, from: DateTime<Utc>) -> Option<Duration> {
    let parsed = cron.parse_cron().ok()?;
    let first = parsed.find_next_occurrence(&from, false).ok()?;
    let second = parsed.find_next_occurrence(&first, false).ok()?;
    (second - first).to_std().ok()
}

/// What one job has done, as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// The job's name.
    pub name: &'static str,
    /// Its cron expression.
    pub cron: String,
    /// Seconds between two firings.
    pub period_secs: u64,
    /// When the scheduler last fired it.
    pub last_tick: Option<DateTime<Utc>>,
    /// When its last run started.
    pub last_started: Option<DateTime<Utc>>,
    /// When its last run finished.
    pub last_finished: Option<DateTime<Utc>>,
    /// When a run last finished without error.
    pub last_success: Option<DateTime<Utc>>,
    /// How the last run ended (`ok`, or the error).
    pub last_outcome: Option<String>,
    /// How long the last run took, in milliseconds.
    pub last_duration_ms: Option<u64>,
    /// Runs started since the daemon started.
    pub runs: u64,
    /// Firings skipped because a run was still queued or going.
    pub skipped: u64,
    /// Whether a run is queued or going now.
    pub in_flight: bool,
}

#[derive(Debug)]
struct JobState {
    status: JobStatus,
    period: Duration,
}

/// Shared record of every job's ticks, runs and skips.
#[derive(Debug)]
pub struct JobBoard {
    started_at: DateTime<Utc>,
    // A std mutex: every critical section is a few field updates, never across an await.
    jobs: Mutex<BTreeMap<JobKind, JobState>>,
}

impl JobBoard {
    /// A board for these jobs, started at `now`.
    pub fn new(jobs: &[(JobKind, CronExpr)], now: DateTime<Utc>) -> Self {
        let map = jobs
            .iter()
            .map(|(kind, cron)| {
                let period = period_of(cron, now).unwrap_or(Duration::from_secs(60));
                (
                    *kind,
                    JobState {
                        period,
                        status: JobStatus {
                            name: kind.name(),
                            cron: cron.to_string(),
                            period_secs: period.as_secs(),
                            last_tick: None,
                            last_started: None,
                            last_finished: None,
                            last_success: None,
                            last_outcome: None,
                            last_duration_ms: None,
                            runs: 0,
                            skipped: 0,
                            in_flight: false,
                        },
                    },
                )
            })
            .collect();
        Self {
            started_at: now,
            jobs: Mutex::new(map),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<JobKind, JobState>) -> R) -> R {
        f(&mut self.jobs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records a firing. Returns `true` when a run may be queued, `false` when the previous
    /// run is still queued or going (the firing is then counted as skipped).
    pub fn tick(&self, kind: JobKind, now: DateTime<Utc>) -> bool {
        self.with(|jobs| {
            let Some(job) = jobs.get_mut(&kind) else {
                return false;
            };
            job.status.last_tick = Some(now);
            if job.status.in_flight {
                job.status.skipped += 1;
                metrics::counter!("trengo_sync_skipped_runs_total", "job" => kind.name())
                    .increment(1);
                false
            } else {
                job.status.in_flight = true;
                true
            }
        })
    }

    /// Marks a run as queued without a firing (the catch-up run at start, a manual trigger).
    /// Returns `false` when one is already in flight.
    pub fn queue(&self, kind: JobKind) -> bool {
        self.with(|jobs| match jobs.get_mut(&kind) {
            Some(job) if !job.status.in_flight => {
                job.status.in_flight = true;
                true
            }
            _ => false,
        })
    }

    /// Records the start of a queued run.
    pub fn started(&self, kind: JobKind, now: DateTime<Utc>) {
        self.with(|jobs| {
            if let Some(job) = jobs.get_mut(&kind) {
                job.status.last_started = Some(now);
                job.status.runs += 1;
            }
        });
    }

    /// Records the end of a run; `outcome` is `Ok` or the error in words.
    pub fn finished(&self, kind: JobKind, now: DateTime<Utc>, outcome: Result<(), String>) {
        self.with(|jobs| {
            if let Some(job) = jobs.get_mut(&kind) {
                job.status.in_flight = false;
                job.status.last_finished = Some(now);
                job.status.last_duration_ms = job
                    .status
                    .last_started
                    .and_then(|s| (now - s).to_std().ok())
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                match outcome {
                    Ok(()) => {
                        job.status.last_success = Some(now);
                        job.status.last_outcome = Some("ok".into());
                    }
                    Err(e) => job.status.last_outcome = Some(e),
                }
            }
        });
    }

    /// Forgets a queued run that will never start (the daemon is stopping).
    pub fn abandon(&self, kind: JobKind) {
        self.with(|jobs| {
            if let Some(job) = jobs.get_mut(&kind) {
                job.status.in_flight = false;
            }
        });
    }

    /// Every job's status.
    pub fn statuses(&self) -> Vec<JobStatus> {
        self.with(|jobs| jobs.values().map(|j| j.status.clone()).collect())
    }

    /// The period of one job.
    pub fn period(&self, kind: JobKind) -> Option<Duration> {
        self.with(|jobs| jobs.get(&kind).map(|j| j.period))
    }

    /// Why the polls are behind at `now`: one line per poll (Trengo, GHL) whose last success
    /// (or the daemon's start, before its first) is older than three of its periods. A poll
    /// that keeps failing, or one stuck behind a flood of other work, makes `/readyz` fail.
    pub fn stale_polls(&self, now: DateTime<Utc>) -> Vec<String> {
        self.with(|jobs| {
            [JobKind::TrengoPoll, JobKind::GhlPoll]
                .into_iter()
                .filter_map(|kind| {
                    let job = jobs.get(&kind)?;
                    let since = job.status.last_success.unwrap_or(self.started_at);
                    let allowed =
                        chrono::Duration::from_std(job.period * 3).unwrap_or(chrono::Duration::MAX);
                    (now - since > allowed).then(|| {
                        let what = match job.status.last_success {
                            Some(_) => "has not completed a pass since",
                            None => "has not completed a pass since the daemon started at",
                        };
                        format!(
                            "{kind} {what} {since} (more than three periods of {}s){}",
                            job.period.as_secs(),
                            if job.status.in_flight {
                                "; a run is queued or in progress"
                            } else {
                                ""
                            }
                        )
                    })
                })
                .collect()
        })
    }

    /// `Ok` while every job has ticked within three of its periods (counting from the
    /// daemon's start for a job that never ticked); else which job stalled.
    pub fn health(&self, now: DateTime<Utc>) -> Result<(), String> {
        self.with(|jobs| {
            for (kind, job) in jobs.iter() {
                let since = job.status.last_tick.unwrap_or(self.started_at);
                let allowed =
                    chrono::Duration::from_std(job.period * 3).unwrap_or(chrono::Duration::MAX);
                if now - since > allowed {
                    return Err(format!(
                        "job {kind} has not been fired by the scheduler since {since} \
                         (more than three periods of {}s): the scheduler has stopped ticking",
                        job.period.as_secs()
                    ));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn board() -> JobBoard {
        JobBoard::new(
            &[(JobKind::TrengoPoll, "*/30 * * * * *".parse().unwrap())],
            at(0),
        )
    }

    #[test]
    fn period_of_every_30_seconds_is_30_seconds() {
        let cron: CronExpr = "*/30 * * * * *".parse().unwrap();
        assert_eq!(period_of(&cron, at(7)), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_tick_while_a_run_is_in_flight_is_skipped_and_counted() {
        let board = board();
        assert!(board.tick(JobKind::TrengoPoll, at(30)));
        board.started(JobKind::TrengoPoll, at(30));
        assert!(!board.tick(JobKind::TrengoPoll, at(60)));
        assert!(!board.tick(JobKind::TrengoPoll, at(90)));
        board.finished(JobKind::TrengoPoll, at(95), Ok(()));
        assert!(board.tick(JobKind::TrengoPoll, at(120)));
        let status = &board.statuses()[0];
        assert_eq!(status.skipped, 2);
        assert_eq!(status.runs, 1);
        assert_eq!(status.last_duration_ms, Some(65_000));
    }

    #[test]
    fn a_poll_without_success_for_three_periods_is_stale() {
        let board = board();
        assert!(board.stale_polls(at(90)).is_empty());
        assert_eq!(board.stale_polls(at(91)).len(), 1, "none since the start");
        assert!(board.tick(JobKind::TrengoPoll, at(100)));
        board.started(JobKind::TrengoPoll, at(100));
        board.finished(JobKind::TrengoPoll, at(101), Ok(()));
        assert!(board.stale_polls(at(190)).is_empty());
        board.finished(JobKind::TrengoPoll, at(150), Err("HTTP 500".into()));
        assert!(board.stale_polls(at(191)).is_empty());
        let stale = board.stale_polls(at(192));
        assert_eq!(stale.len(), 1, "a failure does not count as a pass done");
        assert!(stale[0].contains("trengo_poll"), "{stale:?}");
    }

    #[test]
    fn health_fails_when_a_job_stops_ticking_for_three_periods() {
        let board = board();
        assert!(board.health(at(80)).is_ok());
        assert!(board.tick(JobKind::TrengoPoll, at(30)));
        assert!(board.health(at(110)).is_ok());
        let err = board.health(at(121)).unwrap_err();
        assert!(err.contains("trengo_poll"), "{err}");
    }
}
