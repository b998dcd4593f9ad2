//! The optional assignee field (sync-model.md §3), matched by e-mail or by alias.

use super::*;
use trengo_sync::clock::ManualClock;
use trengo_sync::sync::engine::{Engine, PassKind, PassOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_links_carry_the_assignee_of_the_side_that_made_them() {
    let (world, _clock) = assignee_world(34).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let mut checked = 0;
    for link in links(&dir) {
        let (on_ticket, on_task) = assignees(&world, &engine, &link).await;
        let made_by = if link.origin == Origin::Ghl {
            &on_task
        } else {
            &on_ticket
        };
        if made_by.is_some() {
            checked += 1;
            assert_eq!(on_ticket, on_task, "link {:?} ({:?})", link.id, link.origin);
        }
    }
    assert!(checked > 0, "no link had an assignee to carry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignee_crosses_both_ways_by_email() {
    let (world, clock) = assignee_world(35).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    let agents = agents(&world);
    let (to, back) = (&agents[1], &agents[2]);
    assign_in_trengo(&world, &engine, &clock, &link, to).await;
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(to.clone()), Some(to.clone()))
    );
    clock.advance(chrono::Duration::seconds(2));
    world
        .ghl()
        .assign_task(&link.task_id, &world.ghl().user_id(back).unwrap())
        .unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(back.clone()), Some(back.clone()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_assignee_crosses_to_the_mapped_ghl_user_and_then_stays_quiet() {
    let (world, clock) = assignee_world(37).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agents(&world)[1].clone();
    // The agent works in GHL under another address; [assignee.users] says so.
    let desk = world
        .ghl()
        .add_user("Ops", "Desk", "ops-desk@ghl.example", "user")
        .unwrap();
    let extra = format!("\n[assignee.users]\n\"{agent}\" = \"ops-desk@ghl.example\"\n");
    let engine = settled(&world, &dir, &[], &extra).await;
    let link = open_link(&engine, &dir).await;
    // Someone else first: the link may already carry the agent (a task given in GHL to the
    // user who merely has the agent's e-mail crosses to the ticket as the agent).
    let other = agents(&world)[2].clone();
    assign_in_trengo(&world, &engine, &clock, &link, &other).await;
    assign_in_trengo(&world, &engine, &clock, &link, &agent).await;
    assert_eq!(task(&engine, &link).await.assigned_to, Some(desk.clone()));
    // Read back, the alias is the same person: the next pass plans nothing at all (a quiet
    // pass could also hide an item that fails every time, so failures are checked too).
    let next = engine
        .pass(PassKind::Reconcile, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(next.writes.trengo + next.writes.ghl, 0);
    assert!(next.failed.is_empty(), "{:?}", next.failed);
    // And the way back: the task given to the aliased user puts the agent on the ticket.
    assign_in_trengo(&world, &engine, &clock, &link, &other).await;
    clock.advance(chrono::Duration::seconds(2));
    world.ghl().assign_task(&link.task_id, &desk).unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(
        ticket(&engine, link.ticket_id).await.user_id,
        world.trengo().user_id(&agent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignee_is_left_alone_unless_enabled() {
    let world = world(36, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    let before = task(&engine, &link).await.assigned_to;
    let agent = &agents(&world)[0];
    world
        .trengo()
        .assign_ticket(link.ticket_id, world.trengo().user_id(agent).unwrap())
        .unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(task(&engine, &link).await.assigned_to, before);
}

/// Two seconds on (so this edit is the newest), the ticket assigned in Trengo to the agent
/// with `email`, then passes until quiet.
async fn assign_in_trengo(
    world: &SimWorld,
    engine: &Engine,
    clock: &ManualClock,
    link: &Link,
    email: &str,
) {
    clock.advance(chrono::Duration::seconds(2));
    world
        .trengo()
        .assign_ticket(link.ticket_id, world.trengo().user_id(email).unwrap())
        .unwrap();
    until_quiet(engine, 4).await;
}
