//! What the daemon reports about itself: readiness, backfill progress and the status report.
//!
//! The same [`StatusReport`] is served as JSON on `/status`, printed as a table by
//! `trengo-sync status` ([`status_command`]), and built from the store alone when the daemon
//! is down ([`collect_from_store`]). It holds positions, counts, times and reasons only: no
//! token, secret or signing key is ever read into it.
//!
//! Rooms: `readiness` (`/readyz`), `backfill` (progress and ETA of the first full read),
//! `table` (the report as `trengo-sync status` prints it). This file builds the report.

mod backfill;
mod readiness;
mod table;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use backfill::{Backfill, BackfillProgress};
pub use readiness::{ApiReadiness, MIN_READY_WINDOW, Readiness, ReadinessReport, ready_window};
pub use table::render_table;

use super::jobs::{JobBoard, JobStatus};
use crate::api::{Api, Budget, BudgetSnapshot};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::runs::JobRun;
use crate::store::{Store, StoreError, StoreHandle, conflicts, cursors, links, retries, runs};

/// A verified webhook's "re-read this item now" (the engine's own type).
pub use crate::sync::engine::Hint;

/// The lowercase name of an API, as `/status`, metrics and readiness reasons use it.
pub fn api_name(api: Api) -> &'static str {
    match api {
        Api::Trengo => "trengo",
        Api::Ghl => "ghl",
    }
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
    /// Left scope (kept, not synced), the gone ones included.
    pub out_of_scope: u64,
    /// Ended because their ticket or task is gone (deleted, merged, not visible).
    #[serde(default)]
    pub gone: u64,
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
            gone: counts.gone,
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
