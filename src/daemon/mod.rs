//! The long-running service: schedules, the serial work loop, the HTTP surface, systemd.
//!
//! Rooms: [`run`] (the service itself: the serial work loop, sd-notify, graceful stop),
//! [`hints`] (the bounded, coalescing queue of webhook hints), [`jobs`] (what each job did, skip counting, scheduler liveness), [`schedule`]
//! (tokio-cron-scheduler cron jobs feeding one serial queue), [`server`] (healthz, readyz,
//! status, metrics, webhooks), [`status`] (the status report and readiness), [`webhooks`]
//! (signature checks and de-duplication), [`metrics`] (the Prometheus recorder).

pub mod hints;
pub mod jobs;
pub mod metrics;
pub mod run;
pub mod schedule;
pub mod server;
pub mod status;
pub mod webhooks;
