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
//! | [`store`] | the SQLite state: links, bases, comment map, cursors, intents, ledger, retries (bounded, parked), identity; one writer at a time (a lock file); a read-only `StoreReader` for the stages that only read |
//! | [`api`] | what both API clients share: typed errors, header-sized rate budgets, retries |
//! | [`trengo`] | the Trengo REST v2 client and its lenient models |
//! | [`ghl`] | the GoHighLevel API v2 client (private token or rotating OAuth), its models, and the app install (`auth ghl`) |
//! | [`daemon`] | the service: cron schedules and a bounded webhook hint queue feeding one serial work loop, HTTP surface, systemd |
//! | [`sync`] | the engine: scope rules, normalisation, the pure planner, the executor; contact pairs (`sync::pairs`) |
//! | [`doctor`] | `trengo-sync doctor`: checks the real accounts against what the engine assumes |
//! | [`demo`] | `trengo-sync demo`: the daemon on the embedded fakes, with scripted edits (feature `sim`) |
//! | [`control`] | what `pause`, `resume`, `unlink` and `relink` switch in the store |
//! | [`inspect`] | what `explain`, `conflicts` and `resolve` show and do |
//! | [`notify`] | alerts (`[notify]`): conditions, de-duplication, webhook and SMTP delivery |
//! | [`history`] | `trengo-sync history`: the ledger read back, filtered, as lines or JSON |
//! | [`sim`] | faithful, unkind in-process fakes of both APIs, for tests, `sim` and `demo` (feature `sim`) |
//!
//! One sync pass: change detection reads both APIs through [`trengo`] and [`ghl`], the pure
//! planner in [`sync`] turns current values plus bases into a `Plan` of operations, and the
//! executor (the only writer, to both APIs and, within a pass, to the store) applies it,
//! journalling every remote create in [`store`] before making it. See `docs/design.md` for the whole.
//!
//! The default feature `sim` builds [`sim`] and [`demo`] and the commands of the same names;
//! `--no-default-features` builds the lean server without them (and without `rand` and
//! `tempfile`).
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(feature = "sim")]
pub mod demo;
pub mod doctor;
pub mod ghl;
pub mod history;
pub mod inspect;
pub mod logging;
pub mod notify;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod sync;
pub mod trengo;
