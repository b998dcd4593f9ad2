//! `trengo-sync run`: the service.
//!
//! Cron jobs (tokio-cron-scheduler) and webhook hints feed one serial work loop, so passes
//! never overlap and the executor stays the only writer. Hints go before waiting jobs (webhook
//! latency, issue #7), at most [`HINTS_PER_PASS`] a pass from a bounded queue, and every job
//! waiting after a hint pass goes next. The HTTP surface runs
//! beside it. The systemd protocol is spoken through sd-notify: READY once the store is open
//! and the server listens, WATCHDOG only while the scheduler ticks (a stalled scheduler is
//! restarted by systemd), STATUS after each pass, STOPPING on SIGTERM. On stop the loop takes
//! no new work and gives the current pass `schedule.stop_grace` to finish; a pass still going
//! then is abandoned (the intent journal covers it, issue #13 item 3), and the scheduler and
//! the HTTP server get what is left of the same grace: the process ends within it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::hints::{HINTS_PER_PASS, HintQueue};
use super::jobs::{JobBoard, JobKind};
use super::schedule::Schedule;
use super::server::{self, DEDUPE_CAPACITY, ServerState, WebhookSettings};
use super::status::{Backfill, Readiness};
use super::webhooks::Dedupe;
use crate::api::Api;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store;
use crate::sync::engine::{Engine, Hint, PassKind, PassOptions, PassReport};

/// A running daemon's edges, injected.
pub struct Daemon {
    /// The configuration.
    pub config: Config,
    pub clock: SharedClock,
    /// Where the HTTP surface listens.
    pub listener: tokio::net::TcpListener,
    /// The file `config` was read from, which a reload (SIGHUP, [`Running::reload`]) reads
    /// again; `None` refuses reloads.
    pub config_path: Option<PathBuf>,
}

/// What a reload hands from the daemon it stops to the one it starts: the new configuration
/// and engine (already checked against the accounts), and what outlives both: the listener
/// (connections wait in its queue meanwhile), the store (and its writer lock) and the queued
/// webhook hints.
struct Carry {
    config: Config,
    engine: Engine,
    listener: tokio::net::TcpListener,
    hints: Arc<HintQueue>,
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    let _ = sd_notify::notify(state);
}

/// A daemon running on a task of its own, stopped with [`Running::stop`] (the in-process
/// form of SIGTERM): how the demo, the tests and the benchmark run one beside their fakes.
#[derive(Debug)]
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    reload: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Asks the daemon to read its configuration file again, as SIGHUP does.
    pub fn reload(&self) {
        let _ = self.reload.send(());
    }

    /// Whether the daemon has already ended (on an error: [`Running::stop`] returns it).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the daemon to stop as SIGTERM would, and waits for it to return.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Already ended when the send fails: its result is what the task returned.
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("the daemon's task failed: {e}"))?
    }
}

impl Daemon {
    /// A daemon on the system clock (tests that need another clock set the field).
    pub fn new(config: Config, listener: tokio::net::TcpListener) -> Self {
        Daemon {
            config,
            clock: crate::clock::SystemClock::shared(),
            listener,
            config_path: None,
        }
    }

    /// Runs on a new task until [`Running::stop`]. Must be called inside a Tokio runtime.
    pub fn spawn(self) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (reload, reloads) = mpsc::unbounded_channel();
        let task = tokio::spawn(self.run_reloading(
            async move {
                let _ = stopped.await;
            },
            reloads,
        ));
        Running { stop, reload, task }
    }

    /// Runs until `shutdown` resolves; reloads are not asked for.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (_none, reloads) = mpsc::unbounded_channel();
        self.run_reloading(shutdown, reloads).await
    }

    /// Runs until `shutdown` resolves, reading the configuration file again on each message
    /// of `reloads` (the CLI sends one per SIGHUP). A reload is taken between passes: the file
    /// is loaded and checked as `check` does, and a new engine is bound to the same accounts
    /// and store; any failure is logged with what to fix and the running configuration stays.
    /// A good one stops the schedules, the HTTP surface and the alerts, and starts them again
    /// on it, keeping the listener, the store and the queued hints: the next pass runs on it.
    pub async fn run_reloading(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        mut reloads: mpsc::UnboundedReceiver<()>,
    ) -> anyhow::Result<()> {
        let Daemon {
            config,
            clock,
            listener,
            config_path,
        } = self;
        // The stop request as a watch, so both the wait for work and a running pass see it.
        let (term_tx, mut term_rx) = watch::channel(false);
        let signal_task = tokio::spawn(async move {
            shutdown.await;
            let _ = term_tx.send(true);
        });
        let engine = Engine::from_config(&config, clock.clone(), false)?;
        let mut carry = Carry {
            config,
            engine,
            listener,
            hints: Arc::new(HintQueue::default()),
        };
        let ended = loop {
            let edges = Edges {
                clock: clock.clone(),
                config_path: config_path.as_deref(),
                term_rx: &mut term_rx,
                reloads: &mut reloads,
            };
            match serve(carry, edges).await {
                Ok(Some(next)) => carry = next,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        signal_task.abort();
        ended
    }
}

/// The edges one [`serve`] borrows from the daemon around it.
struct Edges<'a> {
    clock: SharedClock,
    config_path: Option<&'a Path>,
    term_rx: &'a mut watch::Receiver<bool>,
    reloads: &'a mut mpsc::UnboundedReceiver<()>,
}

/// Reads and checks the configuration file again for a reload, and builds its engine on the
/// running store, bound to the same accounts. `Err` says why the running one stays.
async fn reread(
    path: Option<&Path>,
    running: &Config,
    engine: &Engine,
    clock: &SharedClock,
) -> Result<(Config, Engine), String> {
    let path = path.ok_or_else(|| {
        "this daemon was not started from a configuration file; restart it instead".to_string()
    })?;
    let mut config = crate::config::load(path).map_err(|e| e.to_string())?;
    // What is bound at start stays until a restart; the rest applies now.
    if config.store.path != running.store.path {
        tracing::warn!(
            running = %running.store.path.display(),
            file = %config.store.path.display(),
            "store.path changed: it takes effect at the next restart; the running store stays"
        );
        config.store.path = running.store.path.clone();
    }
    if config.http.listen != running.http.listen {
        tracing::warn!(
            running = %running.http.listen,
            file = %config.http.listen,
            "http.listen changed: it takes effect at the next restart; the running listener stays"
        );
        config.http.listen = running.http.listen;
    }
    let next = Engine::on_open_store(&config, clock.clone(), engine.store.clone())
        .map_err(|e| e.to_string())?;
    next.bind_identity().await.map_err(|e| e.to_string())?;
    crate::doctor::zone_gate(&next.trengo, &next.store)
        .await
        .map_err(|e| format!("{e:#}"))?;
    next.check_field_map()
        .await
        .map_err(|e| format!("[contacts] field map: {e}"))?;
    Ok((config, next))
}

/// Serves one configuration until a stop (`None`) or a good reload (`Some`, what the next
/// one starts from).
async fn serve(carry: Carry, edges: Edges<'_>) -> anyhow::Result<Option<Carry>> {
    let Carry {
        config,
        mut engine,
        listener,
        hints,
    } = carry;
    let Edges {
        clock,
        config_path,
        term_rx,
        reloads,
    } = edges;
    let mut term_rx = term_rx.clone();
    let backfill = Arc::new(Backfill::new());
    engine.backfill = Some(backfill.clone());
    let engine = Arc::new(engine);
    engine.bind_identity().await?;
    // Refuses to start on proof that trengo.timezone is not the account's zone.
    crate::doctor::zone_gate(&engine.trengo, &engine.store).await?;
    // And on a [contacts] field map naming fields the accounts do not have (exit 78).
    engine.check_field_map().await?;
    let jobs = vec![
        (JobKind::TrengoPoll, config.schedule.trengo_poll.clone()),
        (JobKind::GhlPoll, config.schedule.ghl_poll.clone()),
        (JobKind::Sweep, config.schedule.sweep.clone()),
        (JobKind::Reconcile, config.schedule.reconcile.clone()),
    ];
    let board = Arc::new(JobBoard::new(&jobs, clock.now()));
    let readiness = Arc::new(Readiness::new());
    let (job_tx, mut job_rx) = mpsc::unbounded_channel::<JobKind>();
    let (stop_tx, stop_rx) = watch::channel(false);

    let state = Arc::new(ServerState {
        board: board.clone(),
        store: engine.store.clone(),
        clock: clock.clone(),
        budgets: vec![
            (Api::Trengo, engine.trengo.budget().clone()),
            (Api::Ghl, engine.ghl.budget().clone()),
        ],
        readiness: readiness.clone(),
        backfill: backfill.clone(),
        hints: hints.clone(),
        webhooks: WebhookSettings::from_config(&config)?,
        dedupe: Dedupe::new(DEDUPE_CAPACITY),
        stuck_after: config.limits.stuck_after.get(),
        status_token: config.http.status_token.clone(),
        trengo_poll: Some(engine.trengo.poll_watch().clone()),
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(server::serve(listener, state, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    let schedule = Schedule::start(&jobs, board.clone(), clock.clone(), job_tx.clone()).await?;

    // A job whose last success is older than its period runs once at once.
    let runs = engine.store.call(|s| store::runs::all(s.conn())).await?;
    for (kind, _) in &jobs {
        let period = board.period(*kind).unwrap_or(Duration::from_secs(60));
        let last = runs
            .iter()
            .find(|r| r.job == kind.name())
            .and_then(|r| r.last_success_at);
        let stale =
            last.is_none_or(|t| (clock.now() - t).to_std().unwrap_or(Duration::ZERO) > period);
        if stale && *kind != JobKind::Reconcile && board.queue(*kind) {
            let _ = job_tx.send(*kind);
        }
    }

    // Alerts ([notify]): a task of its own, looking at the board, readiness and the store.
    let alerts = crate::notify::spawn(
        crate::notify::Watch {
            config: config.notify.clone(),
            stuck_after: config.limits.stuck_after.get(),
            board: board.clone(),
            readiness: readiness.clone(),
            store: engine.store.clone(),
            clock: clock.clone(),
        },
        stop_rx.clone(),
    )?;
    notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = tokio::spawn(feed_watchdog(board.clone(), clock.clone(), stop_rx.clone()));
    tracing::info!(listen = %config.http.listen, "trengo-sync is running");

    let grace = config.schedule.stop_grace.get();
    let mut after_hints = false;
    let mut waiting = std::collections::VecDeque::new();
    let mut stop_by = None;
    let mut reloaded = None;
    loop {
        // Webhook hints go first: a change someone is waiting to see should not queue behind
        // a poll. But a pass takes at most HINTS_PER_PASS of them, and after a hint pass
        // every job then waiting runs before the next hints: a flood of webhooks never
        // starves the polls (issue #13 item 2).
        if after_hints {
            while let Ok(kind) = job_rx.try_recv() {
                waiting.push_back(kind);
            }
        }
        let next = match waiting.pop_front() {
            Some(kind) => Next::Job(kind),
            None => tokio::select! {
                biased;
                () = stopped(&mut term_rx) => Next::Stop,
                batch = hints.next_batch(HINTS_PER_PASS) => {
                    super::metrics::hint_queue_depth(hints.len());
                    Next::Hints(batch)
                }
                Some(kind) = job_rx.recv() => Next::Job(kind),
                Some(()) = reloads.recv() => Next::Reload,
            },
        };
        after_hints = matches!(next, Next::Hints(_));
        let (name, kind, pass_kind) = match next {
            Next::Stop => break,
            Next::Reload => {
                tracing::info!("reload asked for: reading the configuration file again");
                match reread(config_path, &config, &engine, &clock).await {
                    Ok(next) => {
                        super::metrics::config_reload(true);
                        reloaded = Some(next);
                        break;
                    }
                    Err(why) => {
                        super::metrics::config_reload(false);
                        tracing::error!(
                            "configuration reload refused; the running configuration stays: {why}"
                        );
                        continue;
                    }
                }
            }
            Next::Job(kind) => {
                let pass_kind = match kind {
                    JobKind::TrengoPoll => PassKind::TrengoPoll,
                    JobKind::GhlPoll => PassKind::GhlPoll,
                    JobKind::Sweep => PassKind::Sweep,
                    JobKind::Reconcile => PassKind::Reconcile,
                };
                (kind.name(), Some(kind), pass_kind)
            }
            Next::Hints(batch) => ("webhook", None, PassKind::Hints(batch)),
        };
        let pass = run_one(&engine, &board, &readiness, name, kind, pass_kind);
        if let Some(deadline) = stop_within(pass, &mut term_rx, grace).await {
            if let Some(kind) = kind {
                board.abandon(kind);
            }
            stop_by = Some(deadline);
            break;
        }
    }
    if reloaded.is_none() {
        hints.close();
    }
    for kind in waiting {
        board.abandon(kind);
    }
    if reloaded.is_some() {
        notify(&[sd_notify::NotifyState::Reloading]);
        tracing::info!("reloading: the schedules, the HTTP surface and the alerts restart");
    } else {
        notify(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("stopping: no new work is taken");
    }
    let deadline = stop_by.unwrap_or_else(|| tokio::time::Instant::now() + grace);
    let _ = stop_tx.send(true);
    // Whatever is left of the grace period goes to the scheduler and the HTTP server.
    if tokio::time::timeout_at(deadline, schedule.stop())
        .await
        .is_err()
    {
        tracing::warn!("the job scheduler did not stop within schedule.stop_grace");
    }
    let listener = match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Ok(listener))) => Some(listener),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "the HTTP server ended with an error");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the HTTP server's task failed");
            None
        }
        Err(_) => {
            tracing::warn!("the HTTP server did not stop within schedule.stop_grace");
            None
        }
    };
    watchdog.abort();
    if let Some(alerts) = alerts {
        alerts.abort();
    }
    let Some((config, engine)) = reloaded else {
        return Ok(None);
    };
    let listener = match listener {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "after a reload, cannot listen on {} (http.listen) again: {e}",
                    config.http.listen
                )
            })?,
    };
    tracing::info!("configuration reloaded: the next pass runs on it");
    Ok(Some(Carry {
        config,
        engine,
        listener,
        hints,
    }))
}

/// Runs `pass` to its end, unless a stop is requested while it runs: the pass then gets what
/// is left of `grace` to finish and is abandoned after that (dropped mid-way: every remote
/// write is journalled before it is made, and the next start settles what was in flight).
/// Returns the stop's deadline when the daemon must stop, `None` when the pass ended first.
async fn stop_within(
    pass: impl Future<Output = ()>,
    term: &mut watch::Receiver<bool>,
    grace: Duration,
) -> Option<tokio::time::Instant> {
    let mut pass = std::pin::pin!(pass);
    tokio::select! {
        () = &mut pass => None,
        () = stopped(term) => {
            let deadline = tokio::time::Instant::now() + grace;
            notify(&[sd_notify::NotifyState::Stopping]);
            tracing::info!(
                grace_secs = grace.as_secs_f64(),
                "stopping: the pass in progress gets schedule.stop_grace to finish"
            );
            if tokio::time::timeout_at(deadline, pass).await.is_err() {
                tracing::warn!(
                    "stopping: the pass did not finish within schedule.stop_grace and was \
                     abandoned; its journalled writes are settled on the next start"
                );
            }
            Some(deadline)
        }
    }
}

/// Resolves once a stop is requested (the watch's guard is not held across an await).
async fn stopped(term: &mut watch::Receiver<bool>) {
    let _ = term.wait_for(|s| *s).await;
}

/// What the work loop does next.
enum Next {
    Stop,
    Reload,
    Job(JobKind),
    Hints(Vec<Hint>),
}

async fn run_one(
    engine: &Engine,
    board: &JobBoard,
    readiness: &Readiness,
    name: &str,
    kind: Option<JobKind>,
    pass: PassKind,
) {
    let started = engine.clock.now();
    if let Some(kind) = kind {
        board.started(kind, started);
    }
    let job = name.to_string();
    let _ = engine
        .store
        .call(move |s| {
            let tx = s.transaction()?;
            store::runs::started(&tx, &job, started)?;
            tx.commit().map_err(crate::store::StoreError::from)
        })
        .await;
    let took = std::time::Instant::now();
    let result = engine.pass(pass, PassOptions::default()).await;
    let took = took.elapsed();
    let now = engine.clock.now();
    let outcome = match &result {
        Ok(report) => {
            readiness.api_ok(Api::Trengo, now);
            readiness.api_ok(Api::Ghl, now);
            readiness.brake(report.braked.as_ref().map(|b| b.to_string()));
            Ok(())
        }
        Err(e) => {
            if let crate::sync::engine::EngineError::Api(api) = e
                && let Some(call) = api.call()
            {
                readiness.api_failed(call.api, now, api.code());
            }
            // Shown on `/status`: codes and ids only; the log line below has the whole error.
            Err(crate::sync::reason::ReasonCode::reason_code(e))
        }
    };
    if let Some(kind) = kind {
        board.finished(kind, now, outcome.clone());
    }
    record_run(engine, name, started, now, &result).await;
    super::metrics::pass_finished(name, took, outcome.is_ok());
    match &result {
        Ok(report) => {
            let w = (report.writes.trengo, report.writes.ghl);
            tracing::debug!(job = name, took_ms = took.as_millis() as u64, "pass took");
            if w != (0, 0) || !report.failed.is_empty() {
                tracing::info!(
                    job = name,
                    trengo_writes = w.0,
                    ghl_writes = w.1,
                    failed = report.failed.len(),
                    "pass done"
                );
            }
            notify(&[sd_notify::NotifyState::Status(&format!(
                "last pass {name}: {} writes, {} failed",
                w.0 + w.1,
                report.failed.len()
            ))]);
        }
        Err(e) => tracing::warn!(job = name, error = %e, "pass failed; the next run retries"),
    }
}

async fn record_run(
    engine: &Engine,
    name: &str,
    started: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    result: &Result<PassReport, crate::sync::engine::EngineError>,
) {
    use crate::store::runs::RunOutcome;
    let (outcome, counts) = match result {
        Ok(r) if r.failed.is_empty() => (RunOutcome::Succeeded, r),
        Ok(r) => (RunOutcome::PartlyFailed, r),
        Err(_) => {
            let job = name.to_string();
            let duration = (now - started).to_std().unwrap_or(Duration::ZERO);
            let _ = engine
                .store
                .call(move |s| {
                    let tx = s.transaction()?;
                    store::runs::finished(
                        &tx,
                        &job,
                        now,
                        RunOutcome::Failed,
                        duration,
                        &serde_json::json!({}),
                    )?;
                    tx.commit().map_err(crate::store::StoreError::from)
                })
                .await;
            return;
        }
    };
    let counts = serde_json::json!({
        "applied_items": counts.applied_items,
        "trengo_writes": counts.writes.trengo,
        "ghl_writes": counts.writes.ghl,
        "failed": counts.failed.len(),
    });
    let job = name.to_string();
    let duration = (now - started).to_std().unwrap_or(Duration::ZERO);
    let _ = engine
        .store
        .call(move |s| {
            let tx = s.transaction()?;
            store::runs::finished(&tx, &job, now, outcome, duration, &counts)?;
            tx.commit().map_err(crate::store::StoreError::from)
        })
        .await;
}

/// Feeds the systemd watchdog while the scheduler ticks; stops feeding when it stalls.
async fn feed_watchdog(board: Arc<JobBoard>, clock: SharedClock, mut stop: watch::Receiver<bool>) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {
                match board.health(clock.now()) {
                    Ok(()) => notify(&[sd_notify::NotifyState::Watchdog]),
                    Err(reason) => tracing::error!(%reason, "not feeding the systemd watchdog"),
                }
            }
        }
    }
}
