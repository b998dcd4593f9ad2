//! Crash safety: the executor is stopped after every remote write in turn (as a kill would
//! stop it), a new engine starts on the same store, and the end state has no duplicate task,
//! ticket or note, and as many links as an uninterrupted run.

mod support;

use std::time::Duration;

use support::{
    audit, engine_crashing_after, first_pass_and_converge, spawn_daemon, total_writes,
    wait_until_writes_stop, write_config,
};
use trengo_sync::sim::world::SimWorld;

async fn world() -> SimWorld {
    support::world(11, 10, 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_every_remote_write_neither_duplicates_nor_loses() {
    // The uninterrupted run: how many writes, and how many links, it makes.
    let reference = world().await;
    let dir = tempfile::tempdir().unwrap();
    let first = support::engine(&reference, &dir).await;
    let total = first_pass_and_converge(&first).await.unwrap();
    let (expected_links, problems) = audit(&reference, &dir, &first).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(total > 0 && expected_links > 0);

    for n in 1..=i64::try_from(total).unwrap() {
        let world = world().await;
        let dir = tempfile::tempdir().unwrap();
        let crashing = engine_crashing_after(&world, &dir, Some(n)).await;
        let crashed = first_pass_and_converge(&crashing).await.is_none();
        assert!(
            crashed,
            "the crash switch at write {n} of {total} never fired"
        );
        drop(crashing);
        let restarted = support::engine(&world, &dir).await;
        first_pass_and_converge(&restarted).await.unwrap();
        let (links, problems) = audit(&world, &dir, &restarted).await;
        assert!(problems.is_empty(), "crash after write {n}: {problems:?}");
        assert_eq!(links, expected_links, "crash after write {n}: links differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_running_daemon_mid_pass_then_restart_converges_without_duplicates() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _listen) = write_config(&world, &dir);

    let start = total_writes(&world);
    let mut daemon = spawn_daemon(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while total_writes(&world) < start + 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        total_writes(&world) >= start + 3,
        "the daemon made no writes within a minute"
    );
    daemon.kill().unwrap(); // SIGKILL, mid-pass
    daemon.wait().unwrap();

    let mut daemon = spawn_daemon(&config);
    // Quiet = no write for three poll periods (polls run every 5 s in the world's config).
    wait_until_writes_stop(&world, Duration::from_secs(15), Duration::from_secs(120)).await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let engine = support::engine(&world, &dir).await;
    first_pass_and_converge(&engine).await.unwrap();
    let (links, problems) = audit(&world, &dir, &engine).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert!(links > 0);
}
