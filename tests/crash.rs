//! Crash safety: the executor is stopped after every remote write in turn (as a kill would
//! stop it), a new engine starts on the same store, and the end state has no duplicate task,
//! ticket or note, and as many links as an uninterrupted run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use futures::StreamExt as _;
use tokio::net::TcpListener;
use trengo_sync::clock::SystemClock;
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, EngineError, PassKind, PassOptions};
use trengo_sync::sync::marker;
use trengo_sync::trengo::TicketFilters;

async fn world() -> SimWorld {
    let options = WorldOptions::unpaced(11, 10, 5);
    SimWorld::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        options,
    )
    .unwrap()
}

async fn engine(world: &SimWorld, dir: &tempfile::TempDir, crash_after: Option<i64>) -> Engine {
    let config = world
        .config(
            &dir.path().join("state.sqlite"),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
    let mut engine = Engine::from_config(&config, SystemClock::shared(), false).unwrap();
    engine.crash_after = crash_after.map(|n| Arc::new(AtomicI64::new(n)));
    engine.bind_identity().await.unwrap();
    engine
}

/// Runs passes until one writes nothing; returns the writes made, or `None` on a crash.
async fn converge(engine: &Engine) -> Option<u64> {
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

async fn first_pass_and_converge(engine: &Engine) -> Option<u64> {
    match engine.pass(PassKind::Poll, PassOptions::default()).await {
        Ok(r) => {
            let w = r.writes.trengo + r.writes.ghl;
            converge(engine).await.map(|more| w + more)
        }
        Err(EngineError::Crashed) => None,
        Err(e) => panic!("pass failed: {e}"),
    }
}

/// Counts duplicates on both sides; returns (links, duplicates found, description).
async fn audit(world: &SimWorld, dir: &tempfile::TempDir, engine: &Engine) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let s = Store::open_read_only(dir.path().join("state.sqlite")).unwrap();
    let links = store::links::active(s.conn()).unwrap().len();
    drop(s);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_every_remote_write_neither_duplicates_nor_loses() {
    // The uninterrupted run: how many writes, and how many links, it makes.
    let reference = world().await;
    let dir = tempfile::tempdir().unwrap();
    let first = engine(&reference, &dir, None).await;
    let total = first_pass_and_converge(&first).await.unwrap();
    let (expected_links, problems) = audit(&reference, &dir, &first).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(total > 0 && expected_links > 0);

    for n in 1..=i64::try_from(total).unwrap() {
        let world = world().await;
        let dir = tempfile::tempdir().unwrap();
        let crashing = engine_with_crash(&world, &dir, n).await;
        let crashed = first_pass_and_converge(&crashing).await.is_none();
        assert!(
            crashed,
            "the crash switch at write {n} of {total} never fired"
        );
        drop(crashing);
        let restarted = engine(&world, &dir, None).await;
        first_pass_and_converge(&restarted).await.unwrap();
        let (links, problems) = audit(&world, &dir, &restarted).await;
        assert!(problems.is_empty(), "crash after write {n}: {problems:?}");
        assert_eq!(links, expected_links, "crash after write {n}: links differ");
    }
}

async fn engine_with_crash(world: &SimWorld, dir: &tempfile::TempDir, n: i64) -> Engine {
    engine(world, dir, Some(n)).await
}

fn total_writes(world: &SimWorld) -> u64 {
    world.trengo().counters().writes + world.ghl().counter_snapshot().writes
}

fn spawn_daemon(config: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_running_daemon_mid_pass_then_restart_converges_without_duplicates() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        world.config_toml(&dir.path().join("state.sqlite"), listen),
    )
    .unwrap();

    let start = total_writes(&world);
    let mut daemon = spawn_daemon(&config);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while total_writes(&world) < start + 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        total_writes(&world) >= start + 3,
        "the daemon made no writes within a minute"
    );
    daemon.kill().unwrap(); // SIGKILL, mid-pass
    daemon.wait().unwrap();

    let mut daemon = spawn_daemon(&config);
    // Quiet = no write for three poll periods (polls run every 5 s in the world's config).
    let mut last = total_writes(&world);
    let mut quiet_since = std::time::Instant::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while quiet_since.elapsed() < std::time::Duration::from_secs(15)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = total_writes(&world);
        if now != last {
            last = now;
            quiet_since = std::time::Instant::now();
        }
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let engine = engine(&world, &dir, None).await;
    first_pass_and_converge(&engine).await.unwrap();
    let (links, problems) = audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(links > 0);
}
