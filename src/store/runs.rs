//! Job runs: when each scheduled job last started, finished and succeeded.
//!
//! Jobs feed one serial loop, so a tick that finds its job still running is skipped and
//! counted instead of overlapping; `status` shows all of it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::StoreError;
use super::codec::{Json, Stamp, text_enum};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every item went through.
    Succeeded,
    /// The run completed, but some items failed and went to the retry table.
    PartlyFailed,
    /// The run stopped early (an API was unreachable, a brake engaged, ...).
    Failed,
}

text_enum!(RunOutcome {
    Succeeded => "succeeded",
    PartlyFailed => "partly_failed",
    Failed => "failed",
});

/// What is known about one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// The job's name.
    pub job: String,
    /// When its last run started.
    pub last_started_at: Option<DateTime<Utc>>,
    /// When its last run finished.
    pub last_finished_at: Option<DateTime<Utc>>,
    /// When a run last completed (succeeded or partly failed).
    pub last_success_at: Option<DateTime<Utc>>,
    /// How the last run ended.
    pub last_outcome: Option<RunOutcome>,
    /// How long the last run took, in milliseconds.
    pub last_duration_ms: Option<i64>,
    /// What the last run counted (items read, written, failed ...).
    pub last_counts: Option<Value>,
    /// How many ticks were skipped because a run was still going.
    pub skipped: i64,
}

const COLUMNS: &str = "job, last_started_at, last_finished_at, last_success_at, last_outcome, \
                       last_duration_ms, last_counts, skipped";

fn from_row(row: &Row<'_>) -> rusqlite::Result<JobRun> {
    Ok(JobRun {
        job: row.get(0)?,
        last_started_at: row.get::<_, Option<Stamp>>(1)?.map(|s| s.0),
        last_finished_at: row.get::<_, Option<Stamp>>(2)?.map(|s| s.0),
        last_success_at: row.get::<_, Option<Stamp>>(3)?.map(|s| s.0),
        last_outcome: row.get(4)?,
        last_duration_ms: row.get(5)?,
        last_counts: row.get::<_, Option<Json>>(6)?.map(|j| j.0),
        skipped: row.get(7)?,
    })
}

/// Records that `job` started.
pub fn started(conn: &Connection, job: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO job_runs (job, last_started_at) VALUES (?1, ?2)
         ON CONFLICT (job) DO UPDATE SET last_started_at = excluded.last_started_at",
        params![job, Stamp(now)],
    )?;
    Ok(())
}

/// Records that `job` finished. A partly failed run still counts as a success: the pass went
/// through and its failed items are tracked (and shown as stuck) in the retry table.
pub fn finished(
    conn: &Connection,
    job: &str,
    now: DateTime<Utc>,
    outcome: RunOutcome,
    duration: Duration,
    counts: &Value,
) -> Result<(), StoreError> {
    let success_at = (outcome != RunOutcome::Failed).then_some(Stamp(now));
    let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO job_runs (job, last_finished_at, last_success_at, last_outcome,
                               last_duration_ms, last_counts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (job) DO UPDATE SET last_finished_at = excluded.last_finished_at,
             last_success_at = COALESCE(excluded.last_success_at, job_runs.last_success_at),
             last_outcome = excluded.last_outcome, last_duration_ms = excluded.last_duration_ms,
             last_counts = excluded.last_counts",
        params![
            job,
            Stamp(now),
            success_at,
            outcome,
            duration_ms,
            Json(counts.clone())
        ],
    )?;
    Ok(())
}

/// Counts a tick of `job` skipped because its previous run was still going.
pub fn skipped(conn: &Connection, job: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO job_runs (job, skipped) VALUES (?1, 1)
         ON CONFLICT (job) DO UPDATE SET skipped = job_runs.skipped + 1",
        [job],
    )?;
    Ok(())
}

/// What is known about `job`.
pub fn get(conn: &Connection, job: &str) -> Result<Option<JobRun>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM job_runs WHERE job = ?1");
    Ok(conn.query_row(&sql, [job], from_row).optional()?)
}

/// Every job, by name.
pub fn all(conn: &Connection) -> Result<Vec<JobRun>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM job_runs ORDER BY job");
    let mut stmt = conn.prepare_cached(&sql)?;
    let runs = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::links::tests::at;
    use serde_json::json;

    #[test]
    fn a_failed_run_keeps_the_last_success_time() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        let t0 = at("2026-01-01T00:00:00Z");
        let t1 = at("2026-01-01T00:00:02Z");
        started(conn, "poll", t0).unwrap();
        finished(
            conn,
            "poll",
            t1,
            RunOutcome::Succeeded,
            Duration::from_millis(2000),
            &json!({"written": 3}),
        )
        .unwrap();
        let t2 = at("2026-01-01T00:01:00Z");
        started(conn, "poll", t2).unwrap();
        skipped(conn, "poll").unwrap();
        let t3 = at("2026-01-01T00:01:09Z");
        finished(
            conn,
            "poll",
            t3,
            RunOutcome::Failed,
            Duration::from_millis(9000),
            &json!({}),
        )
        .unwrap();
        let run = get(conn, "poll").unwrap().unwrap();
        assert_eq!(run.last_started_at, Some(t2));
        assert_eq!(run.last_finished_at, Some(t3));
        assert_eq!(run.last_success_at, Some(t1));
        assert_eq!(run.last_outcome, Some(RunOutcome::Failed));
        assert_eq!(run.last_duration_ms, Some(9000));
        assert_eq!(run.skipped, 1);
        skipped(conn, "sweep").unwrap();
        assert_eq!(all(conn).unwrap().len(), 2);
    }
}
