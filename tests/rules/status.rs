//! The status table (sync-model.md §3): spam, reopen both ways, completion as spam.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_ticket_completes_its_task_and_unmarking_it_reopens_the_task() {
    let world = world(22, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    engine.trengo.mark_spam(link.ticket_id).await.unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        task(&engine, &link).await.completed,
        "INVALID did not complete"
    );
    engine.trengo.unmark_spam(link.ticket_id).await.unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        !task(&engine, &link).await.completed,
        "unspam did not reopen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_task_reopens_its_ticket_and_reopened_ticket_reopens_its_task() {
    let world = world(23, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    world.ghl().complete_task(&link.task_id).unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(
        ticket(&engine, link.ticket_id).await.status,
        TicketStatus::Closed
    );
    world.ghl().reopen_task(&link.task_id).unwrap();
    until_quiet(&engine, 4).await;
    assert!(!ticket(&engine, link.ticket_id).await.status.is_done());

    world.trengo().close_ticket(link.ticket_id).unwrap();
    until_quiet(&engine, 4).await;
    assert!(task(&engine, &link).await.completed);
    world.trengo().reopen_ticket(link.ticket_id).unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        !task(&engine, &link).await.completed,
        "reopen did not cross"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_task_marks_its_ticket_as_spam_when_configured() {
    let world = world(24, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let spam = "\n[status]\non_task_completed = \"spam\"\n";
    let engine = settled(&world, &dir, &[], spam).await;
    let link = open_link(&engine, &dir).await;
    world.ghl().complete_task(&link.task_id).unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(
        ticket(&engine, link.ticket_id).await.status,
        TicketStatus::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reopened_soon_after_its_ticket_closed_is_found_by_the_sweep() {
    let world = world(28, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    world.trengo().close_ticket(link.ticket_id).unwrap();
    until_quiet(&engine, 4).await;
    assert!(task(&engine, &link).await.completed);
    // Reopening a task moves no GHL watermark (the fake's pessimistic default), so neither
    // poll sees it; the sweep must, though the link's status is done.
    world.ghl().reopen_task(&link.task_id).unwrap();
    // The daemon's sweep runs in slices within its budget share: a few make a whole walk.
    let mut reopened = false;
    for _ in 0..30 {
        let swept = engine
            .pass(PassKind::Sweep, PassOptions::default())
            .await
            .unwrap();
        assert!(swept.failed.is_empty(), "{:?}", swept.failed);
        if !ticket(&engine, link.ticket_id).await.status.is_done() {
            reopened = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(reopened, "the sweep skipped a link closed a moment ago");
}
