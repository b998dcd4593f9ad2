//! Items that are gone (issue #13 item 1): a ticket, task or contact that answers 404 or 410
//! (deleted, merged away, no longer visible to the token) is an item outcome, never a pass
//! error. Its link ends as `gone`, is shown in `status` and `explain`, and is never read again;
//! a merged ticket's link follows the surviving ticket where Trengo says which one it is.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use support::rules::*;
use support::{links, world, write_config};
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::retries::RetryPolicy;
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::{Engine, Hint, PassKind, PassOptions, PassReport};

async fn pass(engine: &Engine, kind: PassKind) -> PassReport {
    engine.pass(kind, PassOptions::default()).await.unwrap()
}

/// An open ticket no link holds.
fn unlinked_ticket(world: &SimWorld, dir: &tempfile::TempDir) -> i64 {
    world
        .trengo()
        .ticket_ids()
        .into_iter()
        .find(|id| link_of_ticket(dir, *id).is_none())
        .expect("an unlinked ticket")
}

/// Records a due retry for `item`, as a failed hint or item would have.
fn due_retry(dir: &tempfile::TempDir, item: &str) {
    let mut s = Store::open(support::store_path(dir)).unwrap();
    let tx = s.transaction().unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let policy = RetryPolicy {
        base: std::time::Duration::from_secs(1),
        max: std::time::Duration::from_secs(1),
    };
    store::retries::fail(&tx, item, "connection reset", long_ago, &policy).unwrap();
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_for_a_deleted_ticket_ends_without_stopping_once() {
    let world = world(301, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    drop(settled(&world, &dir, &[], "").await);
    let ticket = unlinked_ticket(&world, &dir);
    world.trengo().delete_ticket(ticket).unwrap();
    due_retry(&dir, &format!("ticket:{ticket}"));
    let linked = links(&dir)[0].clone();
    world.trengo().close_ticket(linked.ticket_id).unwrap();
    for run in 1..=3 {
        let out = Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
            .args(["once", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "once #{run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = Store::open_read_only(support::store_path(&dir)).unwrap();
    assert!(
        store::retries::all(s.conn())
            .unwrap()
            .iter()
            .all(|r| r.item != format!("ticket:{ticket}")),
        "the gone ticket's retry is still there"
    );
    drop(s);
    let engine = engine_with(&world, &dir, &[], "").await;
    assert!(
        task(&engine, &linked).await.completed,
        "the other change did not cross"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_linked_ticket_ends_its_link_as_gone_and_the_others_keep_syncing() {
    let world = world(302, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let all = links(&dir);
    let (gone, other) = (all[0].clone(), all[1].clone());
    world.trengo().delete_ticket(gone.ticket_id).unwrap();
    world.trengo().close_ticket(other.ticket_id).unwrap();
    let report = pass(&engine, PassKind::Cycle).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let ended = link_of_ticket(&dir, gone.ticket_id).unwrap();
    assert_eq!(ended.state, store::links::LinkState::OutOfScope);
    assert!(ended.gone.is_some(), "the link did not end as gone");
    assert!(task(&engine, &other).await.completed);
    assert!(
        !task(&engine, &gone).await.completed,
        "the gone ticket's task was touched"
    );
    // Never read again: a reconcile over every link plans nothing for it and fails nothing.
    let again = pass(&engine, PassKind::Reconcile).await;
    assert!(again.failed.is_empty(), "{:?}", again.failed);
    let explained = trengo_sync::inspect::explain(&engine, ended.id.0)
        .await
        .unwrap();
    assert!(explained.contains("gone"), "{explained}");
    let counts = {
        let s = Store::open_read_only(support::store_path(&dir)).unwrap();
        store::links::count_by_state(s.conn()).unwrap()
    };
    assert_eq!(counts.gone, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_ghl_contact_ends_its_links_as_gone_and_writes_nothing() {
    let world = world(303, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = links(&dir)[0].clone();
    let labels_before = labels(&engine, link.ticket_id).await;
    world.ghl().delete_contact(&link.ghl_contact_id).unwrap();
    let writes = support::total_writes(&world);
    // As the ContactDelete webhook names it.
    let report = pass(
        &engine,
        PassKind::Hints(vec![Hint::Contact(link.ghl_contact_id.clone())]),
    )
    .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(link_of_ticket(&dir, link.ticket_id).unwrap().gone.is_some());
    assert_eq!(
        support::total_writes(&world),
        writes,
        "a gone contact caused writes"
    );
    assert_eq!(
        labels(&engine, link.ticket_id).await,
        labels_before,
        "the ticket's labels were touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_ghl_task_ends_its_link_as_gone() {
    let world = world(304, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = links(&dir)[0].clone();
    world.ghl().delete_task(&link.task_id).unwrap();
    // No webhook, no watermark: the sweep notices the open task missing from its listing.
    let report = pass(&engine, PassKind::Cycle).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(link_of_ticket(&dir, link.ticket_id).unwrap().gone.is_some());
    assert!(
        !ticket(&engine, link.ticket_id).await.status.is_done(),
        "the ticket was closed for a deleted task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_ticket_link_follows_the_surviving_ticket() {
    let world = world(305, 12, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = links(&dir)[0].clone();
    let survivor = unlinked_ticket(&world, &dir);
    world
        .trengo()
        .merge_tickets(survivor, link.ticket_id)
        .unwrap();
    let hint = Hint::TicketMerged {
        surviving: survivor,
        merged: link.ticket_id,
    };
    let report = pass(&engine, PassKind::Hints(vec![hint])).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let followed = links(&dir)
        .into_iter()
        .find(|l| l.id == link.id)
        .expect("the link is still active");
    assert_eq!(followed.ticket_id, survivor);
    world.trengo().close_ticket(survivor).unwrap();
    pass(&engine, PassKind::Cycle).await;
    assert!(
        task(&engine, &followed).await.completed,
        "the surviving ticket does not sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_batch_with_a_gone_ticket_still_applies_the_other_hints() {
    let world = world(306, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let gone = unlinked_ticket(&world, &dir);
    world.trengo().delete_ticket(gone).unwrap();
    let link = links(&dir)[0].clone();
    world.trengo().close_ticket(link.ticket_id).unwrap();
    let report = pass(
        &engine,
        PassKind::Hints(vec![Hint::Ticket(gone), Hint::TicketStatus(link.ticket_id)]),
    )
    .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(task(&engine, &link).await.completed);
}
