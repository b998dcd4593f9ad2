//! The long-running service: schedules, the serial work loop, the HTTP surface, systemd.
//!
//! Rooms: [`jobs`] (what each job did, skip counting, scheduler liveness) and
//! [`schedule`] (tokio-cron-scheduler cron jobs feeding one serial queue).

pub mod jobs;
pub mod metrics;
pub mod run;
pub mod schedule;
pub mod server;
pub mod status;
pub mod webhooks;
