//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process, installed on first use; `/metrics` renders it. Names start with
//! `trengo_sync_`, except the standard `process_*` family (the `metrics-process` crate, read on
//! each scrape). The same process may run several daemons in tests: they share the recorder,
//! which only adds up their counters.
//!
//! Where each metric is set: requests in [`crate::api::endpoint`] (every attempt), passes in
//! the daemon's work loop ([`pass_finished`]), webhooks and the hint queue in the server,
//! and the gauges that describe state (budgets, cursors, links, retries, last successes) on
//! each scrape ([`refresh_state`]). [`METRICS`] lists every family with its labels; README.md
//! documents the same list and a test reads each of them from a live `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::jobs::JobKind;
use crate::store::{StoreHandle, retries, runs};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Buckets of `trengo_sync_pass_seconds`, in seconds: a hint pass takes well under a second,
/// a sweep of a large account minutes.
const PASS_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The git commit the binary was built from, when the build could tell (`build.rs`).
pub const GIT_COMMIT: &str = env!("TRENGO_SYNC_GIT_COMMIT");

/// Every metric family the daemon exports: name, type, labels. The `process_*` family comes
/// from `metrics-process` (on Linux: CPU, memory, file descriptors, threads, start time).
pub const METRICS: &[(&str, &str, &[&str])] = &[
    (
        "trengo_sync_build_info",
        "gauge",
        &["version", "git_commit"],
    ),
    ("trengo_sync_passes_total", "counter", &["job", "outcome"]),
    ("trengo_sync_pass_seconds", "histogram", &["job"]),
    (
        "trengo_sync_last_success_timestamp_seconds",
        "gauge",
        &["job"],
    ),
    ("trengo_sync_skipped_runs_total", "counter", &["job"]),
    ("trengo_sync_operations_total", "counter", &["side"]),
    ("trengo_sync_errors_total", "counter", &[]),
    (
        "trengo_sync_api_requests_total",
        "counter",
        &["api", "status"],
    ),
    ("trengo_sync_budget_remaining", "gauge", &["api"]),
    ("trengo_sync_queue_depth", "gauge", &["queue"]),
    ("trengo_sync_stuck_items", "gauge", &[]),
    ("trengo_sync_cursor_lag_seconds", "gauge", &["stream"]),
    ("trengo_sync_links", "gauge", &["state"]),
    (
        "trengo_sync_webhooks_total",
        "counter",
        &["source", "outcome"],
    ),
    ("trengo_sync_config_reloads_total", "counter", &["outcome"]),
    ("process_cpu_seconds_total", "counter", &[]),
    ("process_resident_memory_bytes", "gauge", &[]),
    ("process_virtual_memory_bytes", "gauge", &[]),
    ("process_virtual_memory_max_bytes", "gauge", &[]),
    ("process_open_fds", "gauge", &[]),
    ("process_max_fds", "gauge", &[]),
    ("process_threads", "gauge", &[]),
    ("process_start_time_seconds", "gauge", &[]),
];

/// The outcomes `trengo_sync_webhooks_total` counts, registered at zero so a dashboard sees
/// every series before the first webhook.
const WEBHOOK_OUTCOMES: [&str; 8] = [
    "accepted",
    "duplicate",
    "ignored",
    "other_location",
    "refused",
    "unavailable",
    "unknown_event",
    "unreadable",
];

/// The process's Prometheus handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("trengo_sync_pass_seconds".to_string()),
                &PASS_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is already installed; the handle then stays empty,
        // which /metrics shows honestly rather than crashing the daemon.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        register();
        handle
    })
}

/// Renders every metric in Prometheus' text format, with fresh `process_*` values.
pub fn render() -> String {
    let handle = handle();
    PROCESS
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
    handle.render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "trengo_sync_build_info",
        "Always 1; the labels say which build runs."
    );
    describe_counter!(
        "trengo_sync_passes_total",
        "Sync passes run, by job and outcome."
    );
    describe_counter!(
        "trengo_sync_operations_total",
        "Writes applied, by side written."
    );
    describe_counter!(
        "trengo_sync_errors_total",
        "Items that failed (each waits for a retry)."
    );
    describe_counter!(
        "trengo_sync_api_requests_total",
        "API requests (every attempt), by API and HTTP status (error: no answer)."
    );
    describe_gauge!(
        "trengo_sync_budget_remaining",
        "Requests left in the current rate-limit window, by API."
    );
    describe_gauge!(
        "trengo_sync_cursor_lag_seconds",
        "How far each change stream's cursor is behind now."
    );
    describe_gauge!("trengo_sync_links", "Links, by state.");
    describe_counter!(
        "trengo_sync_skipped_runs_total",
        "Scheduled runs skipped because the previous run was still queued or going."
    );
    describe_gauge!(
        "trengo_sync_trengo_poll_alarm",
        "1 while the Trengo poll alarm is up (a wrong trengo.timezone or an ignored updated_at_gt; see /status)."
    );
    describe_gauge!(
        "trengo_sync_trengo_poll_quiet_seconds",
        "Seconds since a Trengo updated_at_gt poll last returned a ticket."
    );
    describe_histogram!(
        "trengo_sync_pass_seconds",
        "Duration of sync passes, by job."
    );
    describe_gauge!(
        "trengo_sync_last_success_timestamp_seconds",
        "Unix time of each job's last successful pass (from the store, so it survives restarts)."
    );
    describe_gauge!(
        "trengo_sync_queue_depth",
        "Work waiting: webhook hints not yet taken (hints), failed items whose retry is due \
         (retries_due), failed items in all (retries)."
    );
    describe_gauge!(
        "trengo_sync_stuck_items",
        "Items failing for longer than limits.stuck_after."
    );
    describe_counter!(
        "trengo_sync_webhooks_total",
        "Webhooks received, by source and outcome."
    );
    describe_counter!(
        "trengo_sync_config_reloads_total",
        "Configuration reloads asked for (SIGHUP), by outcome: applied, or refused (the old one stays)."
    );
}

/// Sets the series that exist before anything happens: build info, and zero for the
/// counters of each job and webhook outcome, so every documented series is there from the
/// first scrape.
fn register() {
    metrics::gauge!("trengo_sync_build_info",
        "version" => env!("CARGO_PKG_VERSION"), "git_commit" => GIT_COMMIT)
    .set(1.0);
    metrics::counter!("trengo_sync_errors_total").increment(0);
    metrics::gauge!("trengo_sync_queue_depth", "queue" => "hints").increment(0.0);
    for kind in JobKind::ALL {
        metrics::counter!("trengo_sync_skipped_runs_total", "job" => kind.name()).increment(0);
    }
    for side in ["trengo", "ghl"] {
        metrics::counter!("trengo_sync_operations_total", "side" => side).increment(0);
    }
    for outcome in ["applied", "refused"] {
        metrics::counter!("trengo_sync_config_reloads_total", "outcome" => outcome).increment(0);
    }
    for source in ["trengo", "ghl"] {
        for outcome in WEBHOOK_OUTCOMES {
            metrics::counter!("trengo_sync_webhooks_total",
                "source" => source, "outcome" => outcome)
            .increment(0);
        }
    }
}

/// A pass of `job` ended after `took`: its duration and outcome.
pub fn pass_finished(job: &str, took: Duration, ok: bool) {
    handle();
    metrics::histogram!("trengo_sync_pass_seconds", "job" => job.to_string())
        .record(took.as_secs_f64());
    metrics::counter!("trengo_sync_passes_total", "job" => job.to_string(),
        "outcome" => if ok { "ok" } else { "error" })
    .increment(1);
}

/// How many webhook hints wait for the work loop (set on each push and each batch taken).
pub fn hint_queue_depth(n: usize) {
    metrics::gauge!("trengo_sync_queue_depth", "queue" => "hints").set(n as f64);
}

/// Sets the gauges read from the store on a scrape: each job's last success, the retry
/// queue (due and all) and stuck items.
pub async fn refresh_state(store: &StoreHandle, now: DateTime<Utc>, stuck_after: Duration) {
    let read = store
        .call(move |s| {
            let conn = s.conn();
            Ok((
                runs::all(conn)?,
                retries::due(conn, now)?.len(),
                retries::all(conn)?.len(),
                retries::stuck(conn, now, stuck_after)?.len(),
            ))
        })
        .await;
    match read {
        Ok((runs, due, all, stuck)) => {
            for run in runs {
                if let Some(at) = run.last_success_at {
                    metrics::gauge!("trengo_sync_last_success_timestamp_seconds", "job" => run.job)
                        .set(at.timestamp() as f64);
                }
            }
            metrics::gauge!("trengo_sync_queue_depth", "queue" => "retries_due").set(due as f64);
            metrics::gauge!("trengo_sync_queue_depth", "queue" => "retries").set(all as f64);
            metrics::gauge!("trengo_sync_stuck_items").set(stuck as f64);
        }
        Err(e) => tracing::warn!(error = %e, "/metrics could not read runs and retries"),
    }
}

/// A configuration reload (SIGHUP) was applied or refused.
pub fn config_reload(applied: bool) {
    let outcome = if applied { "applied" } else { "refused" };
    metrics::counter!("trengo_sync_config_reloads_total", "outcome" => outcome).increment(1);
}
