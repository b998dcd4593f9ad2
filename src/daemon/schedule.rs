//! Cron schedules on tokio-cron-scheduler, feeding the daemon's one serial work loop.
//!
//! Each firing only records a tick on the [`JobBoard`] and, when the job is not already
//! queued or running, sends its [`JobKind`] down a channel. The single consumer of that
//! channel runs passes one at a time, so work never overlaps, whatever the scheduler does.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::jobs::{JobBoard, JobKind};
use crate::clock::SharedClock;
use crate::config::CronExpr;

/// The scheduler could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("could not start the job scheduler for {job}: {reason}")]
pub struct ScheduleError {
    job: String,
    reason: String,
}

/// A running schedule; stop it with [`Schedule::stop`].
pub struct Schedule {
    scheduler: JobScheduler,
}

impl Schedule {
    /// Starts one cron job per entry of `jobs`; each firing goes through `board` and, when
    /// allowed, down `queue`.
    pub async fn start(
        jobs: &[(JobKind, CronExpr)],
        board: Arc<JobBoard>,
        clock: SharedClock,
        queue: mpsc::UnboundedSender<JobKind>,
    ) -> Result<Self, ScheduleError> {
        let fail = |job: &str, e: &dyn std::fmt::Display| ScheduleError {
            job: job.to_string(),
            reason: e.to_string(),
        };
        let scheduler = JobScheduler::new()
            .await
            .map_err(|e| fail("the scheduler", &e))?;
        for (kind, cron) in jobs {
            let (kind, board, clock, queue) = (*kind, board.clone(), clock.clone(), queue.clone());
            // Cron jobs only, in UTC: interval ("repeated") jobs can stop firing (upstream #113).
            let job = Job::new_async(cron.as_str(), move |_id, _lock| {
                let (board, clock, queue) = (board.clone(), clock.clone(), queue.clone());
                Box::pin(async move {
                    if board.tick(kind, clock.now()) && queue.send(kind).is_err() {
                        // The work loop has gone (the daemon is stopping): nothing will run it.
                        board.abandon(kind);
                    }
                })
            })
            .map_err(|e| fail(kind.name(), &e))?;
            scheduler
                .add(job)
                .await
                .map_err(|e| fail(kind.name(), &e))?;
        }
        scheduler
            .start()
            .await
            .map_err(|e| fail("the scheduler", &e))?;
        Ok(Self { scheduler })
    }

    /// Stops firing. Runs already queued are left to the work loop.
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "the job scheduler did not shut down cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn firings_reach_the_queue_and_overlaps_are_skipped() {
        let jobs = vec![(JobKind::TrengoPoll, "* * * * * *".parse().unwrap())];
        let board = Arc::new(JobBoard::new(&jobs, chrono::Utc::now()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let schedule = Schedule::start(&jobs, board.clone(), SystemClock::shared(), tx)
            .await
            .unwrap();
        // The first firing is queued; as nobody finishes it, later firings are skipped.
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(JobKind::TrengoPoll));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while board.statuses()[0].skipped < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(board.statuses()[0].skipped >= 2);
        assert!(
            rx.try_recv().is_err(),
            "a skipped firing must not be queued"
        );
        schedule.stop().await;
    }
}
