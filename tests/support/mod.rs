//! What the integration tests share: a world on loopback, an engine or a daemon process
//! pointed at it, passes until quiet, and an audit for duplicates on both sides.
//!
//! Each test file includes it with `mod support;`; not every file uses every item.
//! `openapi.rs` beside it (the checker of GHL bodies against GHL's vendored OpenAPI files) is
//! not part of it: the conformance tests include that file alone.
#![allow(dead_code)]

pub mod install;
pub mod rules;
pub mod sinks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::net::TcpListener;
use trengo_sync::clock::SystemClock;
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, EngineError, PassKind, PassOptions, PassReport};
use trengo_sync::sync::marker;
use trengo_sync::trengo::TicketFilters;

/// Starts a world with `options` on two free loopback ports.
pub async fn start_world(options: WorldOptions) -> SimWorld {
    SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        options,
    )
    .unwrap()
}

/// A small unpaced world: `tickets` tickets over `contacts` people.
pub async fn world(seed: u64, tickets: usize, contacts: usize) -> SimWorld {
    start_world(WorldOptions::unpaced(seed, tickets, contacts)).await
}

/// The store path every helper here uses inside `dir`.
pub fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.sqlite")
}

/// An engine on the world's configuration, identity bound.
pub async fn engine(world: &SimWorld, dir: &tempfile::TempDir) -> Engine {
    engine_crashing_after(world, dir, None).await
}

/// An engine that stops (as a kill would) after `crash_after` remote writes, if given.
pub async fn engine_crashing_after(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    crash_after: Option<i64>,
) -> Engine {
    let config = world
        .config(&store_path(dir), "127.0.0.1:0".parse().unwrap())
        .unwrap();
    // An engine this process dropped (a crashed pass) may still hold the store's writer lock
    // for a moment: a store call it started finishes on the blocking pool after the drop. A
    // restarted daemon is a new process, so only this process's own leftover is waited for.
    let started = Instant::now();
    let mut engine = loop {
        match Engine::from_config(&config, SystemClock::shared(), false) {
            Err(EngineError::Store(store::StoreError::Locked {
                holder: Some(pid), ..
            })) if pid == std::process::id() && started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap(),
        }
    };
    engine.crash_after = crash_after.map(|n| Arc::new(AtomicI64::new(n)));
    engine.bind_identity().await.unwrap();
    engine
}

/// One polling pass, asserting the brake did not trip.
pub async fn once(engine: &Engine) -> PassReport {
    let report = engine
        .pass(PassKind::Poll, PassOptions::default())
        .await
        .unwrap();
    assert!(report.braked.is_none(), "brake: {:?}", report.braked);
    report
}

/// Runs reconcile passes until one writes nothing (at most `max`), returning how many ran.
pub async fn until_quiet(engine: &Engine, max: usize) -> usize {
    for n in 1..=max {
        let report = engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
            .unwrap();
        if report.writes.trengo + report.writes.ghl == 0 {
            return n;
        }
    }
    panic!("no quiet pass within {max}");
}

/// Runs reconcile passes until one writes nothing; the writes made, or `None` on a crash.
pub async fn converge(engine: &Engine) -> Option<u64> {
    let mut writes = 0;
    for _ in 0..6 {
        match engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
        {
            Ok(report) => {
                let w = report.writes.trengo + report.writes.ghl;
                writes += w;
                if w == 0 {
                    return Some(writes);
                }
            }
            Err(EngineError::Crashed) => return None,
            Err(e) => panic!("pass failed: {e}"),
        }
    }
    panic!("no quiet pass within 6");
}

/// A polling pass, then [`converge`]; the writes made, or `None` on a crash.
pub async fn first_pass_and_converge(engine: &Engine) -> Option<u64> {
    match engine.pass(PassKind::Poll, PassOptions::default()).await {
        Ok(r) => {
            let w = r.writes.trengo + r.writes.ghl;
            converge(engine).await.map(|more| w + more)
        }
        Err(EngineError::Crashed) => None,
        Err(e) => panic!("pass failed: {e}"),
    }
}

/// The active links in the store in `dir`.
pub fn links(dir: &tempfile::TempDir) -> Vec<store::links::Link> {
    let s = Store::open_read_only(store_path(dir)).unwrap();
    store::links::active(s.conn()).unwrap()
}

/// Polls `check` every 200 ms until it holds, panicking after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within {limit:?}");
}

/// Whether the GHL task is completed, as the fake holds it.
pub fn task_completed(world: &SimWorld, task_id: &str) -> bool {
    let snapshot = world.ghl().snapshot();
    find_task(&snapshot, task_id).is_some_and(|t| t["completed"] == true)
}

/// The task with this id anywhere in a GHL snapshot.
pub fn find_task<'a>(value: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("id").and_then(|v| v.as_str()) == Some(id) && map.contains_key("completed") {
                return Some(value);
            }
            map.values().find_map(|v| find_task(v, id))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_task(v, id)),
        _ => None,
    }
}

/// Successful writes both fakes have served.
pub fn total_writes(world: &SimWorld) -> u64 {
    world.trengo().counters().writes + world.ghl().counter_snapshot().writes
}

/// Writes the world's configuration to `dir/config.toml` with a free loopback listen
/// address for the daemon's HTTP server; returns the file and that address.
pub fn write_config(world: &SimWorld, dir: &tempfile::TempDir) -> (PathBuf, std::net::SocketAddr) {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, world.config_toml(&store_path(dir), listen)).unwrap();
    (config, listen)
}

/// The world's configuration for an in-process daemon whose HTTP surface listens on the
/// returned loopback listener (its address is the configuration's `http.listen`).
pub async fn daemon_config(
    world: &SimWorld,
    dir: &tempfile::TempDir,
) -> (trengo_sync::config::Config, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = world
        .config(&store_path(dir), listener.local_addr().unwrap())
        .unwrap();
    (config, listener)
}

/// Runs `trengo-sync ARGS --config CONFIG` to its end; returns its stdout, asserting exit 0.
pub fn cli(config: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`trengo-sync {}` failed: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts `trengo-sync run --config CONFIG` as a child process, its output discarded.
pub fn spawn_daemon(config: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until neither fake has served a write for `quiet` (at most `limit` in all).
pub async fn wait_until_writes_stop(world: &SimWorld, quiet: Duration, limit: Duration) {
    let mut last = total_writes(world);
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + limit;
    while quiet_since.elapsed() < quiet && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = total_writes(world);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

/// Counts duplicates on both sides: returns the active links and one line per duplicate
/// (two tasks naming one ticket, two tickets for one task, a note copied twice).
pub async fn audit(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    engine: &Engine,
) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let links = links(dir).len();
    let web = world.trengo_web_url();
    let mut tasks_per_ticket: HashMap<i64, usize> = HashMap::new();
    let mut ghl_notes_per_message: HashMap<i64, usize> = HashMap::new();
    for person in world.people() {
        for task in engine.ghl.tasks(&person.ghl_contact_id).await.unwrap() {
            let body = task.body.unwrap_or_default();
            if let Some(at) = body.find(&format!("{web}/tickets/")) {
                let digits: String = body[at + web.len() + 9..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(id) = digits.parse() {
                    *tasks_per_ticket.entry(id).or_default() += 1;
                }
            }
        }
        for note in engine.ghl.notes(&person.ghl_contact_id).await.unwrap() {
            if let Some(src) = marker::trengo_source(note.body.as_deref().unwrap_or("")) {
                *ghl_notes_per_message.entry(src.message_id).or_default() += 1;
            }
        }
    }
    let mut tickets_per_task: HashMap<String, usize> = HashMap::new();
    let mut trengo_notes_per_note: HashMap<String, usize> = HashMap::new();
    let mut tickets = std::pin::pin!(engine.trengo.tickets(&TicketFilters::default()));
    let mut ids = Vec::new();
    while let Some(t) = tickets.next().await {
        let t = t.unwrap();
        if let Some(subject) = &t.subject
            && let Some(at) = subject.find("(GHL task ")
        {
            *tickets_per_task
                .entry(subject[at..].to_string())
                .or_default() += 1;
        }
        ids.push(t.id);
    }
    for id in ids {
        let mut messages = std::pin::pin!(engine.trengo.messages(id));
        while let Some(m) = messages.next().await {
            let m = m.unwrap();
            if let Some(note) = marker::ghl_source(m.message.as_deref().unwrap_or("")) {
                *trengo_notes_per_note.entry(note).or_default() += 1;
            }
        }
    }
    for (k, n) in tasks_per_ticket.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{n} GHL tasks name ticket #{k}"));
    }
    for (k, n) in tickets_per_task.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{n} Trengo tickets for {k}"));
    }
    for (k, n) in ghl_notes_per_message.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{n} GHL notes copy Trengo message {k}"));
    }
    for (k, n) in trengo_notes_per_note.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{n} Trengo notes copy GHL note {k}"));
    }
    (links, problems)
}
pub mod reliability;
pub mod settled;

/// Runs Prometheus' own checker on the text when `promtool` is installed.
pub fn promtool_check(text: &str) {
    use std::io::Write as _;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("note: promtool is not on PATH; skipping `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Registers a Trengo webhook through the fake's API, as a user would in Trengo's settings,
/// and returns the signing secret Trengo shows for it.
pub async fn register_trengo_webhook(world: &SimWorld, event: &str, url: &str) -> String {
    use secrecy::ExposeSecret as _;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/webhooks", world.trengo_base_url()))
        .bearer_auth(world.trengo_token().expose_secret())
        .form(&[("name", "trengo-sync"), ("type", event), ("url", url)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    created["signing_secret"].as_str().unwrap().to_owned()
}
