//! The engine end to end against the simulated world: links are made, changes cross both
//! ways, and a quiet pass writes nothing.

mod support;

use support::{engine, links, once, until_quiet};
use trengo_sync::clock::SystemClock;
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::Store;
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions};

async fn world() -> SimWorld {
    support::world(7, 12, 6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_pass_links_labelled_tickets_and_a_second_pass_is_quiet() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&world, &dir).await;
    let first = once(&engine).await;
    assert!(first.failed.is_empty(), "failed: {:?}", first.failed);
    let linked = links(&dir);
    assert!(
        !linked.is_empty(),
        "the world has tickets labelled GHL; none was linked"
    );
    // Every link's task carries its ticket URL.
    for link in &linked {
        let contact = world.ghl().contact_json(&link.ghl_contact_id).unwrap();
        assert!(contact.is_object());
    }
    until_quiet(&engine, 4).await;
    let quiet = once(&engine).await;
    assert_eq!(
        quiet.writes.trengo + quiet.writes.ghl,
        0,
        "{:?}",
        quiet.plans
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trengo_close_completes_the_task_and_ghl_completion_closes_the_ticket() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&world, &dir).await;
    once(&engine).await;
    until_quiet(&engine, 4).await;
    let linked = links(&dir);
    let (a, b) = (&linked[0], linked.get(1).unwrap_or(&linked[0]));

    world.trengo().close_ticket(a.ticket_id).unwrap();
    until_quiet(&engine, 4).await;
    let tasks = engine.ghl.tasks(&a.ghl_contact_id).await.unwrap();
    let t = tasks.iter().find(|t| t.id == a.task_id).unwrap();
    assert!(
        t.completed,
        "closing ticket #{} did not complete its task",
        a.ticket_id
    );

    if b.ticket_id != a.ticket_id {
        world.ghl().complete_task(&b.task_id).unwrap();
        until_quiet(&engine, 4).await;
        let ticket = world.trengo().ticket_json(b.ticket_id).unwrap();
        assert_eq!(ticket["status"], "CLOSED", "{ticket}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_note_crosses_once_and_never_comes_back() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&world, &dir).await;
    once(&engine).await;
    until_quiet(&engine, 4).await;
    let link = links(&dir)[0].clone();
    world
        .trengo()
        .post_note(link.ticket_id, "Customer wants a call back on Friday")
        .unwrap();
    until_quiet(&engine, 4).await;
    until_quiet(&engine, 2).await;
    let notes = engine.ghl.notes(&link.ghl_contact_id).await.unwrap();
    let copies = notes
        .iter()
        .filter(|n| {
            n.body
                .as_deref()
                .is_some_and(|b| b.contains("Customer wants a call back on Friday"))
        })
        .count();
    assert_eq!(copies, 1, "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_pending_changes_and_writes_nothing() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine(&world, &dir).await;
        once(&engine).await;
        until_quiet(&engine, 4).await;
    }
    let link = links(&dir)[0].clone();
    world.trengo().close_ticket(link.ticket_id).unwrap();
    let path = dir.path().join("state.sqlite");
    // Fold the WAL into the main file first, so a byte comparison sees every change.
    {
        let s = Store::open(&path).unwrap();
        s.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let config = world.config(&path, "127.0.0.1:0".parse().unwrap()).unwrap();
    let planner = Engine::for_plan(&config, SystemClock::shared()).unwrap();
    let report = planner
        .pass(
            PassKind::Poll,
            PassOptions {
                dry_run: true,
                allow_mass_change: false,
            },
        )
        .await
        .unwrap();
    let listed: Vec<String> = report.ops().map(|o| o.to_string()).collect();
    assert!(
        listed.iter().any(|o| o.contains("complete GHL task")),
        "the closed ticket's task completion is not listed: {listed:?}"
    );
    drop(planner);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "plan changed the store"
    );
    let task = world.ghl().contact_json(&link.ghl_contact_id).unwrap();
    assert!(task.is_object());
    let tasks = {
        let engine = engine(&world, &dir).await;
        engine.ghl.tasks(&link.ghl_contact_id).await.unwrap()
    };
    assert!(
        !tasks
            .iter()
            .find(|t| t.id == link.task_id)
            .unwrap()
            .completed,
        "plan wrote to GHL"
    );
}
