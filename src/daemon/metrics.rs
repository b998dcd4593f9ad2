//! Prometheus metrics through the `metrics` facade.
//!
//! One recorder per process, installed on first use; `/metrics` renders it. Names start with
//! `trengo_sync_`. The same process may run several daemons in tests: they share the recorder,
//! which only adds up their counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is already installed; the handle then stays empty,
        // which /metrics shows honestly rather than crashing the daemon.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// Renders every metric in Prometheus' text format.
pub fn render() -> String {
    handle().render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "trengo_sync_passes_total",
        "Sync passes run, by job and outcome."
    );
    describe_counter!(
        "trengo_sync_operations_total",
        "Operations applied, by kind and side written."
    );
    describe_counter!("trengo_sync_errors_total", "Items that failed, by kind.");
    describe_counter!(
        "trengo_sync_api_requests_total",
        "API requests, by API and HTTP status."
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
}
