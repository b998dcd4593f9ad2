//! Crash safety: the executor is stopped after every remote write in turn (as a kill would
//! stop it), a new engine starts on the same store, and the end state has no duplicate task,
//! ticket or note, and as many links as an uninterrupted run.

mod support;

use std::time::Duration;

use support::rules;
use support::{
    audit, engine_crashing_after, first_pass_and_converge, spawn_daemon, total_writes,
    wait_until_writes_stop, write_config,
};
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::links::Link;
use trengo_sync::sync::engine::{Engine, EngineError, PassKind, PassOptions};

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

/// Settles a world, picks an open link `keep` accepts, makes `edit` on one side, and runs a
/// pass that dies right after its first remote write (before the write's base is recorded).
async fn crash_after_the_write_of(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    keep: impl Fn(&Link) -> bool,
    edit: impl FnOnce(&Link),
) -> Link {
    let engine = rules::settled(world, dir, &[], "").await;
    let link = rules::open_link_where(&engine, dir, keep).await;
    drop(engine);
    edit(&link);
    let crashing = engine_crashing_after(world, dir, Some(1)).await;
    let crashed = crashing
        .pass(PassKind::Reconcile, PassOptions::default())
        .await;
    assert!(
        matches!(crashed, Err(EngineError::Crashed)),
        "the pass did not stop at its first write: {crashed:?}"
    );
    link
}

/// The restarted engine: its first pass settles what the crash left open, then until quiet.
async fn restart(world: &SimWorld, dir: &tempfile::TempDir) -> Engine {
    let engine = support::engine(world, dir).await;
    let report = support::once(&engine).await;
    assert!(report.settled_intents > 0, "the crash left nothing open");
    support::until_quiet(&engine, 6).await;
    let last = engine
        .pass(PassKind::Reconcile, PassOptions::default())
        .await
        .unwrap();
    assert!(
        last.failed.is_empty() && last.writes.trengo + last.writes.ghl == 0,
        "not settled: {last:?}"
    );
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopen_made_while_down_after_the_task_was_completed_is_not_undone() {
    let world = support::world(12, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let link = crash_after_the_write_of(
        &world,
        &dir,
        |_| true,
        |l| world.trengo().close_ticket(l.ticket_id).unwrap(),
    )
    .await;
    // The crash came after the task was completed: the ticket's close crossed.
    let engine = support::engine(&world, &dir).await;
    assert!(rules::task(&engine, &link).await.completed);
    // While the daemon is down, the agent reopens the ticket.
    world.trengo().reopen_ticket(link.ticket_id).unwrap();
    // One writer per store: the reader goes before the daemon starts again.
    drop(engine);
    let engine = restart(&world, &dir).await;
    assert!(
        !rules::ticket(&engine, link.ticket_id)
            .await
            .status
            .is_done(),
        "the reopen was undone by the daemon's own completion"
    );
    assert!(!rules::task(&engine, &link).await.completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_removed_while_down_after_its_tag_was_added_stays_removed() {
    let world = support::world(13, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let label = rules::label(&world, "trengo:callback");
    let link = crash_after_the_write_of(
        &world,
        &dir,
        |_| true,
        |l| world.trengo().add_label(l.ticket_id, label).unwrap(),
    )
    .await;
    let tags = |world: &SimWorld| -> Vec<String> {
        serde_json::from_value(
            world.ghl().contact_json(&link.ghl_contact_id).unwrap()["tags"].clone(),
        )
        .unwrap()
    };
    assert!(tags(&world).contains(&"trengo:callback".to_string()));
    world.trengo().remove_label(link.ticket_id, label).unwrap();
    let engine = restart(&world, &dir).await;
    assert!(
        !tags(&world).contains(&"trengo:callback".to_string()),
        "the contact kept a tag whose only label was removed"
    );
    assert!(
        !rules::labels(&engine, link.ticket_id)
            .await
            .contains(&"trengo:callback".to_string()),
        "the removed label came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_removed_while_down_after_its_label_was_attached_stays_removed() {
    let world = support::world(14, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    // A contact without the tag yet, so adding it is a change to sync.
    let untagged = |l: &Link| {
        !world.ghl().contact_json(&l.ghl_contact_id).unwrap()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "trengo:callback")
    };
    let link = crash_after_the_write_of(&world, &dir, untagged, |l| {
        world
            .ghl()
            .add_contact_tag(&l.ghl_contact_id, "trengo:callback")
            .unwrap();
    })
    .await;
    let engine = support::engine(&world, &dir).await;
    let mut labelled = Vec::new();
    for l in support::links(&dir)
        .into_iter()
        .filter(|l| l.ghl_contact_id == link.ghl_contact_id)
    {
        if rules::labels(&engine, l.ticket_id)
            .await
            .contains(&"trengo:callback".to_string())
        {
            labelled.push(l.ticket_id);
        }
    }
    assert!(!labelled.is_empty(), "the label write did not land");
    world
        .ghl()
        .remove_contact_tag(&link.ghl_contact_id, "trengo:callback")
        .unwrap();
    // One writer per store: the reader goes before the daemon starts again.
    drop(engine);
    let engine = restart(&world, &dir).await;
    for id in labelled {
        assert!(
            !rules::labels(&engine, id)
                .await
                .contains(&"trengo:callback".to_string()),
            "ticket #{id} kept the label of a tag removed in GHL"
        );
    }
}
