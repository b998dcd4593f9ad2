//! # trengo-sync
//!
//! A long-running daemon that keeps Trengo tickets and GoHighLevel (GHL) tasks in step:
//! status, tags and internal notes cross both ways, with a per-field three-way merge
//! against the last synced value (the *base*) kept in SQLite.
//!
//! ## Map of the crate
//!
//! Read it top-down; each room has one job.
//!
//! | module | job |
//! |---|---|
//! | [`cli`] | the `trengo-sync` command line: parses arguments, maps errors to exit codes |
//! | [`config`] | TOML + environment configuration, secrets, validation (exit 78 on error) |
//! | [`logging`] | tracing-subscriber set-up: text on a terminal, JSON on request |
//! | [`clock`] | the injected clock (`SystemClock` in production, `ManualClock` in tests) |
//! | [`store`] | the SQLite state: links, bases, comment map, cursors, intents, ledger, retries, identity |
//! | [`api`] | what both API clients share: typed errors, header-sized rate budgets, retries |
//! | [`trengo`] | the Trengo REST v2 client and its lenient models |
//! | [`ghl`] | the GoHighLevel API v2 client (private token or rotating OAuth) and its models |
//! | [`daemon`] | the service: cron schedules feeding one serial work loop, HTTP surface, systemd |
//! | [`sync`] | the engine: scope rules, normalisation, the pure planner, the executor |
//! | [`demo`] | `trengo-sync demo`: the daemon on the embedded fakes, with scripted edits |
//! | [`control`] | what `pause`, `resume`, `unlink` and `relink` switch in the store |
//! | [`inspect`] | what `explain`, `conflicts` and `resolve` show and do |
//! | [`notify`] | alerts (`[notify]`): conditions, de-duplication, webhook and SMTP delivery |
//! | [`sim`] | faithful, unkind in-process fakes of both APIs, for tests, `sim` and `demo` |
//!
//! One sync pass: change detection reads both APIs through [`trengo`] and [`ghl`], the pure
//! planner in [`sync`] turns current values plus bases into a `Plan` of operations, and the
//! executor (the only writer) applies it, journalling every remote create in [`store`]
//! before making it. See `docs/design.md` for the whole.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod ghl;
pub mod inspect;
pub mod logging;
pub mod notify;
pub mod sim;
pub mod store;
pub mod sync;
pub mod trengo;
