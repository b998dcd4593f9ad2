//! What the daemon reports about itself: readiness, backfill progress and the status report.
//!
//! The same [`StatusReport`] is served as JSON on `/status`, printed as a table by
//! `trengo-sync status` ([`status_command`]), and built from the store alone when the daemon
//! is down ([`collect_from_store`]). It holds positions, counts, times and reasons only: no
//! token, secret or signing key is ever read into it, and no personal data either (issue #13
//! item 7): retry reasons are codes and ids (`sync::reason`), conflicts name their link and
//! field but not the values (`trengo-sync conflicts` shows those, from the store), and the
//! conflict, retry and stuck lists are served a [`Page`] at a time with their totals.
//!
//! Rooms: `readiness` (`/readyz`), `backfill` (progress and ETA of the first full read),
//! `oauth` (the GHL refresh token's expiry), `table` (the report as `trengo-sync status`
//! prints it). This file builds the report.

mod backfill;
mod oauth;
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
pub use oauth::OAuthReport;
pub use readiness::{ApiReadiness, MIN_READY_WINDOW, Readiness, ReadinessReport, ready_window};
pub use table::render_table;

use super::jobs::{JobBoard, JobStatus};
use crate::api::{Api, Budget, BudgetSnapshot};
use crate::clock::SharedClock;
use crate::config::{Config, Secret};
use crate::store::runs::JobRun;
use crate::store::{
    Store, StoreError, StoreHandle, conflicts, controls, cursors, links, retries, runs,
};

/// Rows of each list a report holds when the request does not say (`/status?limit=`).
pub const PAGE_DEFAULT: usize = 50;

/// The most rows of each list one report holds.
pub const PAGE_MAX: usize = 500;

/// Which rows of the conflict, retry and stuck lists a report holds: `/status?offset=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Page {
    /// Rows skipped from the start of each list. Default 0.
    pub offset: usize,
    /// Rows shown of each list, 1 to [`PAGE_MAX`]. Default [`PAGE_DEFAULT`].
    pub limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: PAGE_DEFAULT,
        }
    }
}

impl Page {
    /// The page with its limit brought into `1..=PAGE_MAX`.
    pub fn clamped(self) -> Self {
        Self {
            offset: self.offset,
            limit: self.limit.clamp(1, PAGE_MAX),
        }
    }

    /// The total of `items`, and this page of them.
    fn cut<T>(&self, items: Vec<T>) -> (u64, Vec<T>) {
        let total = items.len() as u64;
        let page = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        (total, page)
    }
}

/// A verified webhook's "re-read this item now" (the engine's own type).
pub use crate::sync::engine::Hint;

/// The lowercase name of an API, as `/status`, metrics and readiness reasons use it.
pub fn api_name(api: Api) -> &'static str {
    api.label()
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
    /// Which rows of the three lists below this report holds.
    #[serde(default)]
    pub page: Page,
    /// Conflicts held for a person (`manual` policy): this page of them.
    pub conflicts: Vec<ConflictReport>,
    /// How many conflicts are held in all.
    #[serde(default)]
    pub conflicts_total: u64,
    /// The retry queue: this page of it.
    pub retries: Vec<RetryReport>,
    /// How many items are in the retry queue in all.
    #[serde(default)]
    pub retries_total: u64,
    /// After how long a failing item counts as stuck.
    pub stuck_after_secs: u64,
    /// Items failing for longer than that, and parked ones: this page of them.
    pub stuck: Vec<RetryReport>,
    /// How many items are stuck in all.
    #[serde(default)]
    pub stuck_total: u64,
    /// Rate budget left per API (live only).
    pub budgets: Vec<BudgetReport>,
    /// Backfill progress (live only).
    pub backfill: Vec<BackfillProgress>,
    /// Readiness (live only).
    pub readiness: Option<ReadinessReport>,
    /// The stored GHL OAuth tokens' expiry, when the store holds any.
    #[serde(default)]
    pub oauth: Option<OAuthReport>,
    /// The webhook hint queue (live only).
    #[serde(default)]
    pub hint_queue: Option<HintQueueReport>,
    /// What the Trengo `updated_at_gt` polls have seen, with the zone alarm (live only).
    #[serde(default)]
    pub trengo_poll: Option<crate::trengo::zone::PollHealth>,
    /// What an operator paused.
    #[serde(default)]
    pub paused: PauseReport,
}

/// The webhook hint queue: one entry per item, bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintQueueReport {
    /// Items waiting for a hint pass.
    pub queued: usize,
    /// The most items it holds.
    pub bound: usize,
    /// Hints refused (503) because it was full, since the daemon started.
    pub dropped: u64,
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
    /// Ended by hand (`trengo-sync unlink`; `relink` brings one back).
    #[serde(default)]
    pub unlinked: u64,
    /// Contact pairs (Trengo contact ⇄ GHL contact, `[contacts]`) kept beside the links.
    #[serde(default)]
    pub contact_pairs: u64,
}

/// What an operator paused (`trengo-sync pause`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseReport {
    /// The whole daemon's pause (`trengo_to_ghl`, `ghl_to_trengo` or `both`), if paused.
    pub daemon: Option<String>,
    /// Since when the daemon is paused.
    pub since: Option<DateTime<Utc>>,
    /// Paused links: their ids and directions.
    pub links: Vec<PausedLink>,
    /// Items a pause holds back; they cross once it is lifted.
    pub held_items: u64,
}

/// One paused link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedLink {
    /// The link id.
    pub link_id: i64,
    /// `trengo_to_ghl`, `ghl_to_trengo` or `both`.
    pub direction: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl PauseReport {
    /// The pauses in the store, and how many items they hold.
    pub fn from_store(conn: &rusqlite::Connection) -> Result<Self, StoreError> {
        let pauses = controls::all(conn)?;
        let mut links: Vec<PausedLink> = pauses
            .links
            .iter()
            .map(|(id, (_, p))| PausedLink {
                link_id: id.0,
                direction: p.direction.to_string(),
                since: p.since,
            })
            .collect();
        links.sort_by_key(|l| l.link_id);
        Ok(PauseReport {
            daemon: pauses.daemon.as_ref().map(|p| p.direction.to_string()),
            since: pauses.daemon.map(|p| p.since),
            links,
            held_items: retries::held_count(conn)?,
        })
    }
}

/// A conflict held for a person: which link and field, not the values (an assignee's are
/// e-mail addresses); `trengo-sync conflicts` shows them from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictReport {
    /// The link's row id.
    pub link_id: i64,
    /// Its ticket, when the link is found.
    pub ticket_id: Option<i64>,
    /// Its task, when the link is found.
    pub task_id: Option<String>,
    pub field: String,
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
    /// Why it failed last: codes and ids (API, method, path, HTTP status, kind).
    pub reason: String,
    /// When it was parked (no longer retried on its own; `trengo-sync retry` queues it again).
    #[serde(default)]
    pub parked_at: Option<DateTime<Utc>>,
}

impl From<retries::Retry> for RetryReport {
    fn from(r: retries::Retry) -> Self {
        Self {
            item: r.item,
            attempts: r.attempts,
            first_failed_at: r.first_failed_at,
            next_at: r.next_at,
            reason: r.reason,
            parked_at: r.parked_at,
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
/// and there are no budgets, backfill or readiness to show. The lists hold [`Page::default`].
pub fn collect_from_store(
    store: &Store,
    now: DateTime<Utc>,
    stuck_after: Duration,
) -> Result<StatusReport, StoreError> {
    collect_page_from_store(store, now, stuck_after, Page::default())
}

/// [`collect_from_store`] with the lists cut to `page`.
pub fn collect_page_from_store(
    store: &Store,
    now: DateTime<Utc>,
    stuck_after: Duration,
    page: Page,
) -> Result<StatusReport, StoreError> {
    let page = page.clamped();
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
    let (conflicts_total, listed) = page.cut(conflicts::list(conn)?);
    let mut held = Vec::new();
    for h in listed {
        let link = links::get(conn, h.link_id)?;
        held.push(ConflictReport {
            link_id: h.link_id.0,
            ticket_id: link.as_ref().map(|l| l.ticket_id),
            task_id: link.map(|l| l.task_id),
            field: h.field,
            detected_at: h.detected_at,
        });
    }
    let (retries_total, queued) = page.cut(retries::all(conn)?);
    let (stuck_total, stuck) = page.cut(retries::stuck(conn, now, stuck_after)?);
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
            unlinked: controls::unlinked_count(conn)?,
            contact_pairs: crate::store::pairs::count(conn)?,
        },
        page,
        conflicts: held,
        conflicts_total,
        retries: queued.into_iter().map(Into::into).collect(),
        retries_total,
        stuck_after_secs: stuck_after.as_secs(),
        stuck: stuck.into_iter().map(Into::into).collect(),
        stuck_total,
        budgets: Vec::new(),
        backfill: Vec::new(),
        readiness: None,
        oauth: OAuthReport::from_store(conn, now)?,
        hint_queue: None,
        trengo_poll: None,
        paused: PauseReport::from_store(conn)?,
    })
}

/// Builds the live report: the store's part on the blocking pool, then the board's jobs (with
/// the counts the store keeps), budgets, backfill and readiness.
#[allow(clippy::too_many_arguments)]
pub async fn collect(
    store: &StoreHandle,
    board: &JobBoard,
    budgets: &[(Api, Arc<Budget>)],
    readiness: &Readiness,
    backfill: &Backfill,
    now: DateTime<Utc>,
    stuck_after: Duration,
    page: Page,
) -> Result<StatusReport, StoreError> {
    let mut report = store
        .call(move |s| collect_page_from_store(s, now, stuck_after, page))
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
    report.readiness = Some(readiness.full_report(now, board));
    Ok(report)
}

/// Where to reach the daemon: its listen address, with an unspecified address (`0.0.0.0`,
/// `[::]`) replaced by loopback, which such a listener also answers on.
pub fn dial_address(listen: SocketAddr) -> SocketAddr {
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

/// Asks the running daemon for its report, with the status token when one is configured;
/// `Err` says in words why none came.
async fn fetch(url: &str, token: Option<&Secret>) -> Result<StatusReport, String> {
    let client = reqwest::Client::builder()
        // The daemon is local: an HTTP(S)_PROXY from the environment must not intercept it.
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("could not set up an HTTP client: {e}"))?;
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            format!("nothing answers at {url}")
        } else if e.is_timeout() {
            format!("{url} did not answer within 5s")
        } else {
            format!("asking {url} failed: {e}")
        }
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(format!(
            "{url} answered HTTP 401: set http.status_token (or http.status_token_file) to the \
             daemon's status token"
        ));
    }
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
    let why = match fetch(&url, config.http.status_token.as_ref()).await {
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
