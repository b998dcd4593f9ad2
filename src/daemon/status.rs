//! What the daemon reports about itself: readiness, backfill progress and the status report.
//!
//! The same [`StatusReport`] is served as JSON on `/status`, printed as a table by
//! `trengo-sync status` ([`status_command`]), and built from the store alone when the daemon
//! is down ([`collect_from_store`]). It holds positions, counts, times and reasons only: no
//! token, secret or signing key is ever read into it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jobs::{JobBoard, JobKind, JobStatus};
use crate::api::{Api, Budget, BudgetSnapshot};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::runs::JobRun;
use crate::store::{Store, StoreError, StoreHandle, conflicts, cursors, links, retries, runs};

/// A verified webhook's "re-read this item now" (sync-model.md §4.10: webhooks are hints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Re-read this Trengo ticket.
    Ticket(i64),
    /// Re-read this GHL contact (its tasks, tags and notes).
    Contact(String),
}

/// The lowercase name of an API, as `/status`, metrics and readiness reasons use it.
pub fn api_name(api: Api) -> &'static str {
    match api {
        Api::Trengo => "trengo",
        Api::Ghl => "ghl",
    }
}

/// The shortest window in which both APIs must have answered for the daemon to be ready.
pub const MIN_READY_WINDOW: Duration = Duration::from_secs(300);

/// How recently both APIs must have answered: three periods of the slower poll, and never less
/// than [`MIN_READY_WINDOW`], so one slow or skipped poll does not flap `/readyz`.
pub fn ready_window(board: &JobBoard) -> Duration {
    let slowest = [JobKind::TrengoPoll, JobKind::GhlPoll]
        .into_iter()
        .filter_map(|kind| board.period(kind))
        .max()
        .unwrap_or_default();
    (slowest * 3).max(MIN_READY_WINDOW)
}

#[derive(Debug, Default, Clone)]
struct ApiSeen {
    last_ok: Option<DateTime<Utc>>,
    last_failure: Option<(DateTime<Utc>, String)>,
}

#[derive(Debug, Default)]
struct ReadinessState {
    trengo: ApiSeen,
    ghl: ApiSeen,
    brake: Option<String>,
}

impl ReadinessState {
    fn api(&mut self, api: Api) -> &mut ApiSeen {
        match api {
            Api::Trengo => &mut self.trengo,
            Api::Ghl => &mut self.ghl,
        }
    }
}

/// Whether the daemon can do its job: both APIs answered recently and no brake is engaged.
/// The store being open is implied by the daemon holding a `StoreHandle`. Shared in an `Arc`
/// by the engine (which reports) and the HTTP surface (which asks).
#[derive(Debug, Default)]
pub struct Readiness {
    // A std mutex: a few field updates, never held across an await.
    state: Mutex<ReadinessState>,
}

impl Readiness {
    /// Nothing answered yet: not ready.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut ReadinessState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `api` answered a request at `at`.
    pub fn api_ok(&self, api: Api, at: DateTime<Utc>) {
        self.with(|s| s.api(api).last_ok = Some(at));
    }

    /// A request to `api` failed at `at` for `reason` (which must not hold a secret; the
    /// API errors' texts do not).
    pub fn api_failed(&self, api: Api, at: DateTime<Utc>, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|s| s.api(api).last_failure = Some((at, reason)));
    }

    /// Engages a brake with its reason (`Some`) or releases it (`None`).
    pub fn brake(&self, reason: Option<String>) {
        self.with(|s| s.brake = reason);
    }

    /// `Ok` when ready at `now`, else every reason why not.
    pub fn check(&self, now: DateTime<Utc>, recent: Duration) -> Result<(), Vec<String>> {
        let reasons = self.report(now, recent).reasons;
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// The readiness as `/status` shows it.
    pub fn report(&self, now: DateTime<Utc>, recent: Duration) -> ReadinessReport {
        let (trengo, ghl, brake) =
            self.with(|s| (s.trengo.clone(), s.ghl.clone(), s.brake.clone()));
        let recent_c = chrono::Duration::from_std(recent).unwrap_or(chrono::Duration::MAX);
        let mut reasons = Vec::new();
        let mut apis = Vec::new();
        for (api, seen) in [(Api::Trengo, trengo), (Api::Ghl, ghl)] {
            let failed_last = match (&seen.last_failure, seen.last_ok) {
                (Some((failed_at, _)), Some(ok)) => *failed_at > ok,
                (Some(_), None) => true,
                (None, _) => false,
            };
            match (seen.last_ok, &seen.last_failure) {
                (_, Some((at, why))) if failed_last => {
                    reasons.push(format!("{api} failed at {at}: {why}"));
                }
                (None, _) => reasons.push(format!("{api} has not answered yet")),
                (Some(ok), _) if now - ok > recent_c => reasons.push(format!(
                    "{api} has not answered since {ok} (more than {}s ago)",
                    recent.as_secs()
                )),
                _ => {}
            }
            apis.push(ApiReadiness {
                api: api_name(api).to_string(),
                last_ok: seen.last_ok,
                last_failure_at: seen.last_failure.as_ref().map(|(at, _)| *at),
                last_failure: seen.last_failure.map(|(_, why)| why),
            });
        }
        if let Some(why) = &brake {
            reasons.push(format!("a brake is engaged: {why}"));
        }
        ReadinessReport {
            ready: reasons.is_empty(),
            reasons,
            apis,
            brake,
        }
    }
}

/// Readiness as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// Why not, when not.
    pub reasons: Vec<String>,
    /// What each API last did.
    pub apis: Vec<ApiReadiness>,
    /// The engaged brake's reason.
    pub brake: Option<String>,
}

/// What one API last did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiReadiness {
    /// `trengo` or `ghl`.
    pub api: String,
    /// When it last answered.
    pub last_ok: Option<DateTime<Utc>>,
    /// When a request to it last failed.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Why.
    pub last_failure: Option<String>,
}

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

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportSource {
    /// The running daemon: live jobs, budgets and readiness.
    Daemon,
    /// The store alone, read-only, while the daemon is down.
    Store,
}

/// Everything `/status` and `trengo-sync status` show. Holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// This build's version.
    pub version: String,
    /// When the report was made.
    pub now: DateTime<Utc>,
    /// Live daemon or store only.
    pub source: ReportSource,
    /// Every change stream's cursor.
    pub streams: Vec<StreamReport>,
    /// Every scheduled job.
    pub jobs: Vec<JobReport>,
    /// Links by state.
    pub links: LinksReport,
    /// Conflicts held for a person (`manual` policy).
    pub conflicts: Vec<ConflictReport>,
    /// The whole retry queue.
    pub retries: Vec<RetryReport>,
    /// After how long a failing item counts as stuck.
    pub stuck_after_secs: u64,
    /// Items failing for longer than that.
    pub stuck: Vec<RetryReport>,
    /// Rate budget left per API (live only).
    pub budgets: Vec<BudgetReport>,
    /// Backfill progress (live only).
    pub backfill: Vec<BackfillProgress>,
    /// Readiness (live only).
    pub readiness: Option<ReadinessReport>,
}

/// One change stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// `trengo.tickets`, `ghl.contacts`, …
    pub stream: String,
    /// The cursor, in the stream's own format.
    pub cursor: String,
    /// When the cursor last moved.
    pub updated_at: DateTime<Utc>,
    /// How far the cursor is behind `now`, when it is an RFC 3339 time.
    pub lag_secs: Option<i64>,
}

/// One scheduled job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job's name.
    pub name: String,
    /// Its cron expression (live only).
    pub cron: Option<String>,
    /// Seconds between firings (live only).
    pub period_secs: Option<u64>,
    /// When the scheduler last fired it (live only).
    pub last_tick: Option<DateTime<Utc>>,
    /// When its last run started.
    pub last_started: Option<DateTime<Utc>>,
    /// When its last run finished.
    pub last_finished: Option<DateTime<Utc>>,
    /// When a run last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// How the last run ended.
    pub last_outcome: Option<String>,
    /// How long it took, in milliseconds.
    pub last_duration_ms: Option<u64>,
    /// What it counted (items read, written, failed …), from the store.
    pub last_counts: Option<Value>,
    /// Runs since the daemon started (live only).
    pub runs: Option<u64>,
    /// Firings skipped because a run was still going.
    pub skipped: u64,
    /// Whether a run is queued or going.
    pub in_flight: bool,
}

impl JobReport {
    fn live(status: JobStatus, last_counts: Option<Value>) -> Self {
        Self {
            name: status.name.to_string(),
            cron: Some(status.cron),
            period_secs: Some(status.period_secs),
            last_tick: status.last_tick,
            last_started: status.last_started,
            last_finished: status.last_finished,
            last_success: status.last_success,
            last_outcome: status.last_outcome,
            last_duration_ms: status.last_duration_ms,
            last_counts,
            runs: Some(status.runs),
            skipped: status.skipped,
            in_flight: status.in_flight,
        }
    }

    fn stored(run: JobRun) -> Self {
        Self {
            name: run.job,
            cron: None,
            period_secs: None,
            last_tick: None,
            last_started: run.last_started_at,
            last_finished: run.last_finished_at,
            last_success: run.last_success_at,
            last_outcome: run.last_outcome.map(|o| o.as_str().to_string()),
            last_duration_ms: run.last_duration_ms.and_then(|ms| u64::try_from(ms).ok()),
            last_counts: run.last_counts,
            runs: None,
            skipped: u64::try_from(run.skipped).unwrap_or(0),
            in_flight: false,
        }
    }
}

/// Links by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinksReport {
    /// Being synced.
    pub active: u64,
    /// Left scope (kept, not synced).
    pub out_of_scope: u64,
}

/// A conflict held for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictReport {
    /// The link's row id.
    pub link_id: i64,
    /// Its ticket, when the link is found.
    pub ticket_id: Option<i64>,
    /// Its task, when the link is found.
    pub task_id: Option<String>,
    /// The field.
    pub field: String,
    /// The last synced value.
    pub base: Option<Value>,
    /// Trengo's value.
    pub trengo_value: Value,
    /// GHL's value.
    pub ghl_value: Value,
    /// When it was first seen.
    pub detected_at: DateTime<Utc>,
}

/// A failing item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReport {
    /// `kind:id`.
    pub item: String,
    /// Failures in a row.
    pub attempts: u32,
    /// When it started failing.
    pub first_failed_at: DateTime<Utc>,
    /// When it is tried again.
    pub next_at: DateTime<Utc>,
    /// Why it failed last.
    pub reason: String,
}

impl From<retries::Retry> for RetryReport {
    fn from(r: retries::Retry) -> Self {
        Self {
            item: r.item,
            attempts: r.attempts,
            first_failed_at: r.first_failed_at,
            next_at: r.next_at,
            reason: r.reason,
        }
    }
}

/// One API's rate budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// `trengo` or `ghl`.
    pub api: String,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the window.
    pub remaining: u32,
    /// The window, in seconds.
    pub window_secs: f64,
    /// Requests left today, when the API says (GHL).
    pub daily_remaining: Option<u64>,
    /// Seconds requests are held back after a 429.
    pub blocked_for_secs: Option<f64>,
    /// Whether the size was learnt from response headers yet.
    pub sized_from_headers: bool,
}

impl BudgetReport {
    fn new(api: Api, s: BudgetSnapshot) -> Self {
        Self {
            api: api_name(api).to_string(),
            limit: s.limit,
            remaining: s.remaining,
            window_secs: s.window.as_secs_f64(),
            daily_remaining: s.daily_remaining,
            blocked_for_secs: s.blocked_for.map(|d| d.as_secs_f64()),
            sized_from_headers: s.sized_from_headers,
        }
    }
}

/// How far an RFC 3339 cursor is behind `now`, in seconds.
pub fn cursor_lag(value: &str, now: DateTime<Utc>) -> Option<i64> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|at| (now - at.with_timezone(&Utc)).num_seconds())
}

/// Builds the report from the store alone (the daemon is down): jobs come from `job_runs`,
/// and there are no budgets, backfill or readiness to show.
pub fn collect_from_store(
    store: &Store,
    now: DateTime<Utc>,
    stuck_after: Duration,
) -> Result<StatusReport, StoreError> {
    let conn = store.conn();
    let streams = cursors::all(conn)?
        .into_iter()
        .map(|c| StreamReport {
            lag_secs: cursor_lag(&c.value, now),
            stream: c.stream,
            cursor: c.value,
            updated_at: c.updated_at,
        })
        .collect();
    let counts = links::count_by_state(conn)?;
    let mut held = Vec::new();
    for h in conflicts::list(conn)? {
        let link = links::get(conn, h.link_id)?;
        held.push(ConflictReport {
            link_id: h.link_id.0,
            ticket_id: link.as_ref().map(|l| l.ticket_id),
            task_id: link.map(|l| l.task_id),
            field: h.field,
            base: h.base,
            trengo_value: h.trengo_value,
            ghl_value: h.ghl_value,
            detected_at: h.detected_at,
        });
    }
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        now,
        source: ReportSource::Store,
        streams,
        jobs: runs::all(conn)?
            .into_iter()
            .map(JobReport::stored)
            .collect(),
        links: LinksReport {
            active: counts.active,
            out_of_scope: counts.out_of_scope,
        },
        conflicts: held,
        retries: retries::all(conn)?.into_iter().map(Into::into).collect(),
        stuck_after_secs: stuck_after.as_secs(),
        stuck: retries::stuck(conn, now, stuck_after)?
            .into_iter()
            .map(Into::into)
            .collect(),
        budgets: Vec::new(),
        backfill: Vec::new(),
        readiness: None,
    })
}

/// Builds the live report: the store's part on the blocking pool, then the board's jobs (with
/// the counts the store keeps), budgets, backfill and readiness.
pub async fn collect(
    store: &StoreHandle,
    board: &JobBoard,
    budgets: &[(Api, Arc<Budget>)],
    readiness: &Readiness,
    backfill: &Backfill,
    now: DateTime<Utc>,
    stuck_after: Duration,
) -> Result<StatusReport, StoreError> {
    let mut report = store
        .call(move |s| collect_from_store(s, now, stuck_after))
        .await?;
    // The board knows the live runs; only the store knows what each run counted.
    let counts: BTreeMap<String, Value> = std::mem::take(&mut report.jobs)
        .into_iter()
        .filter_map(|j| Some((j.name, j.last_counts?)))
        .collect();
    report.source = ReportSource::Daemon;
    report.jobs = board
        .statuses()
        .into_iter()
        .map(|s| {
            let counted = counts.get(s.name).cloned();
            JobReport::live(s, counted)
        })
        .collect();
    report.budgets = budgets
        .iter()
        .map(|(api, budget)| BudgetReport::new(*api, budget.snapshot()))
        .collect();
    report.backfill = backfill.snapshot(now);
    report.readiness = Some(readiness.report(now, ready_window(board)));
    Ok(report)
}

/// The report as the readable table `trengo-sync status` prints.
pub fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let source = match report.source {
        ReportSource::Daemon => "live from the running daemon",
        ReportSource::Store => "from the store; the daemon is not running",
    };
    let _ = writeln!(
        out,
        "trengo-sync {} status at {} ({source})",
        report.version,
        stamp(report.now)
    );
    match &report.readiness {
        Some(r) if r.ready => out.push_str("Ready: yes\n"),
        Some(r) => {
            out.push_str("Ready: no\n");
            for reason in &r.reasons {
                let _ = writeln!(out, "  - {reason}");
            }
        }
        None => out.push_str("Ready: unknown (only the running daemon knows)\n"),
    }

    out.push_str("\nStreams\n");
    let rows = report.streams.iter().map(|s| {
        vec![
            s.stream.clone(),
            s.cursor.clone(),
            s.lag_secs.map_or_else(|| "-".into(), secs),
            stamp(s.updated_at),
        ]
    });
    table(&mut out, &["STREAM", "CURSOR", "LAG", "MOVED AT"], rows);

    out.push_str("\nJobs\n");
    let rows = report.jobs.iter().map(|j| {
        vec![
            j.name.clone(),
            j.last_outcome.clone().unwrap_or_else(|| "-".into()),
            j.last_started.map_or_else(|| "-".into(), stamp),
            j.last_duration_ms
                .map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
            j.runs.map_or_else(|| "-".into(), |n| n.to_string()),
            j.skipped.to_string(),
            if j.in_flight { "yes" } else { "no" }.into(),
            j.last_counts
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.to_string()),
        ]
    });
    let heads = [
        "JOB",
        "OUTCOME",
        "LAST START",
        "DURATION",
        "RUNS",
        "SKIPPED",
        "RUNNING",
        "COUNTS",
    ];
    table(&mut out, &heads, rows);

    let _ = writeln!(
        out,
        "\nLinks: {} active, {} out of scope",
        report.links.active, report.links.out_of_scope
    );

    let _ = writeln!(out, "\nConflicts held: {}", report.conflicts.len());
    let rows = report.conflicts.iter().map(|c| {
        vec![
            c.link_id.to_string(),
            c.ticket_id.map_or_else(|| "-".into(), |t| t.to_string()),
            c.task_id.clone().unwrap_or_else(|| "-".into()),
            c.field.clone(),
            c.trengo_value.to_string(),
            c.ghl_value.to_string(),
            c.base.as_ref().map_or_else(|| "-".into(), Value::to_string),
            stamp(c.detected_at),
        ]
    });
    let heads = [
        "LINK", "TICKET", "TASK", "FIELD", "TRENGO", "GHL", "BASE", "SINCE",
    ];
    table(&mut out, &heads, rows);

    let _ = writeln!(
        out,
        "\nRetry queue: {} (stuck: {}, failing for more than {})",
        report.retries.len(),
        report.stuck.len(),
        secs(i64::try_from(report.stuck_after_secs).unwrap_or(i64::MAX))
    );
    let rows = report.retries.iter().map(|r| {
        let stuck = report.stuck.iter().any(|s| s.item == r.item);
        vec![
            r.item.clone(),
            r.attempts.to_string(),
            stamp(r.first_failed_at),
            stamp(r.next_at),
            if stuck { "STUCK" } else { "" }.into(),
            r.reason.clone(),
        ]
    });
    let heads = [
        "ITEM",
        "ATTEMPTS",
        "FAILING SINCE",
        "NEXT TRY",
        "",
        "REASON",
    ];
    table(&mut out, &heads, rows);

    if report.source == ReportSource::Daemon {
        out.push_str("\nRate budgets\n");
        let rows = report.budgets.iter().map(|b| {
            vec![
                b.api.clone(),
                b.remaining.to_string(),
                format!("{} per {}s", b.limit, b.window_secs),
                b.daily_remaining
                    .map_or_else(|| "-".into(), |d| d.to_string()),
                b.blocked_for_secs
                    .map_or_else(|| "-".into(), |s| format!("{s:.0}s")),
            ]
        });
        table(
            &mut out,
            &["API", "LEFT", "LIMIT", "LEFT TODAY", "HELD BACK"],
            rows,
        );

        out.push_str("\nBackfill\n");
        let rows = report.backfill.iter().map(|b| {
            vec![
                b.stream.clone(),
                format!("{}/{}", b.done, b.total_estimate),
                b.percent.map_or_else(|| "-".into(), |p| format!("{p:.0}%")),
                b.rate_per_sec
                    .map_or_else(|| "-".into(), |r| format!("{r:.1}/s")),
                match (b.finished_at, b.eta_secs) {
                    (Some(_), _) => "done".into(),
                    (None, Some(eta)) => secs(i64::try_from(eta).unwrap_or(i64::MAX)),
                    (None, None) => "-".into(),
                },
            ]
        });
        table(&mut out, &["STREAM", "DONE", "SHARE", "RATE", "ETA"], rows);
    }
    out
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn secs(n: i64) -> String {
    if n < 0 {
        return format!("{n}s (ahead of this clock)");
    }
    humantime::format_duration(Duration::from_secs(n.unsigned_abs())).to_string()
}

/// Writes an aligned table, or `  (none)` when there are no rows.
fn table(out: &mut String, heads: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, " {cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut heads.iter().copied());
    for row in &rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// Where to reach the daemon: its listen address, with an unspecified address (`0.0.0.0`,
/// `[::]`) replaced by loopback, which such a listener also answers on.
fn dial_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// Asks the running daemon for its report; `Err` says in words why none came.
async fn fetch(url: &str) -> Result<StatusReport, String> {
    let client = reqwest::Client::builder()
        // The daemon is local: an HTTP(S)_PROXY from the environment must not intercept it.
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("could not set up an HTTP client: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_connect() {
            format!("nothing answers at {url}")
        } else if e.is_timeout() {
            format!("{url} did not answer within 5s")
        } else {
            format!("asking {url} failed: {e}")
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {status}, not a status report"));
    }
    response
        .json::<StatusReport>()
        .await
        .map_err(|e| format!("{url} did not answer with a status report: {e}"))
}

/// `trengo-sync status`: the running daemon's report as a table, or, when it does not
/// answer, the store's (opened read-only, so a stopped daemon's state is never changed) with a
/// first line saying so.
pub async fn status_command(config: &Config, clock: SharedClock) -> anyhow::Result<String> {
    let url = format!("http://{}/status", dial_address(config.http.listen));
    let why = match fetch(&url).await {
        Ok(report) => return Ok(render_table(&report)),
        Err(why) => why,
    };
    let path = config.store.path.clone();
    let stuck_after = config.limits.stuck_after.get();
    let now = clock.now();
    let shown = path.display().to_string();
    let report = tokio::task::spawn_blocking(move || -> Result<StatusReport, StoreError> {
        let store = Store::open_read_only(&path)?;
        collect_from_store(&store, now, stuck_after)
    })
    .await
    .context("the store reader stopped unexpectedly")?
    .with_context(|| {
        format!(
            "the daemon is not running ({why}), and its store cannot be read either; \
             check `store.path` ({shown}) or start the daemon with `trengo-sync run`"
        )
    })?;
    Ok(format!(
        "The daemon is not running ({why}); showing the store {shown}, read-only.\n{}",
        render_table(&report)
    ))
}
