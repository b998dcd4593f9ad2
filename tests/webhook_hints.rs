//! A webhook's hint reads only what planning its change needs: a task completion or a ticket
//! close reads that link's two sides, a tag update every linked ticket but no message, and a
//! group read in part never has its tags planned from the part. Calls are the fakes' request
//! counters around one hint pass, on contacts with two linked tickets.

mod support;

use std::collections::HashMap;

use support::{engine, first_pass_and_converge, links, until_quiet, world};
use trengo_sync::daemon::webhooks::{GhlHint, TrengoHint};
use trengo_sync::sim::faults::CounterSnapshot;
use trengo_sync::sim::world::SimWorld;
use trengo_sync::store::links::Link;
use trengo_sync::sync::engine::{Engine, Hint, PassKind, PassOptions, PassReport};

const TICKET: &str = "GET /api/v2/tickets/{id}";
const MESSAGES: &str = "GET /api/v2/tickets/{id}/messages";
const NOTES: &str = "GET /contacts/{contactId}/notes";

/// A converged world and the links of a contact with two of them, both tickets open.
async fn converged_pair(world: &SimWorld, dir: &tempfile::TempDir) -> (Engine, Link, Link) {
    let engine = engine(world, dir).await;
    first_pass_and_converge(&engine).await;
    let linked = links(dir);
    let mut by_contact: HashMap<&str, Vec<&Link>> = HashMap::new();
    for link in &linked {
        by_contact
            .entry(&link.ghl_contact_id)
            .or_default()
            .push(link);
    }
    let open = |l: &Link| world.trengo().ticket_json(l.ticket_id).unwrap()["status"] != "CLOSED";
    let pair = by_contact
        .values()
        .find(|ls| ls.len() == 2 && ls.iter().all(|l| open(l)))
        .expect("a contact with two open linked tickets");
    (engine, pair[0].clone(), pair[1].clone())
}

/// The hint the daemon makes of the GHL fake's latest webhook event.
fn latest_ghl_hint(world: &SimWorld) -> Hint {
    let event = world.ghl().webhook_events().pop().expect("an event");
    GhlHint::parse(event.to_string().as_bytes())
        .unwrap()
        .hint()
        .expect("a hint")
}

/// One hint pass; the calls it made on (Trengo, GHL).
async fn hint_pass(
    engine: &Engine,
    world: &SimWorld,
    hint: Hint,
) -> (PassReport, CounterSnapshot, CounterSnapshot) {
    world.trengo().reset_counters();
    let ghl_before = world.ghl().counter_snapshot();
    let report = engine
        .pass(PassKind::Hints(vec![hint]), PassOptions::default())
        .await
        .unwrap();
    let mut ghl = world.ghl().counter_snapshot();
    for (route, n) in ghl.by_route.iter_mut() {
        *n -= ghl_before.count(route);
    }
    ghl.total -= ghl_before.total;
    (report, world.trengo().counters(), ghl)
}

fn has_tag(world: &SimWorld, contact: &str, tag: &str) -> bool {
    world.ghl().contact_json(contact).unwrap()["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_task_completion_webhook_closes_its_ticket_with_one_trengo_read() {
    let world = world(3, 16, 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, link, _other) = converged_pair(&world, &dir).await;

    world.ghl().complete_task(&link.task_id).unwrap();
    let hint = latest_ghl_hint(&world);
    assert!(matches!(hint, Hint::TaskCompleted { .. }), "{hint:?}");
    let (report, trengo, ghl) = hint_pass(&engine, &world, hint).await;

    assert_eq!(
        world.trengo().ticket_json(link.ticket_id).unwrap()["status"],
        "CLOSED"
    );
    assert_eq!(report.writes.trengo, 1);
    // Before: each of the contact's tickets and its messages, then the close (5 calls here).
    assert!(
        trengo.total <= 2,
        "the ticket and its close only: {trengo:?}"
    );
    assert_eq!(trengo.count(MESSAGES), 0);
    assert_eq!(ghl.count(NOTES), 0, "{ghl:?}");
    assert!(ghl.total <= 2, "the contact and its tasks only: {ghl:?}");
    // Nothing was left behind: a full pass finds nothing more to write.
    assert_eq!(until_quiet(&engine, 3).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trengo_close_webhook_completes_its_task_with_one_trengo_read() {
    let world = world(4, 16, 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, link, _other) = converged_pair(&world, &dir).await;

    world.trengo().close_ticket(link.ticket_id).unwrap();
    let body = format!("ticket_id={}", link.ticket_id);
    let hint = TrengoHint::parse("TICKET_CLOSED", body.as_bytes())
        .unwrap()
        .hint();
    let (report, trengo, _ghl) = hint_pass(&engine, &world, hint).await;

    assert_eq!(report.writes.ghl, 1, "{report:?}");
    assert!(trengo.total <= 1, "the ticket only: {trengo:?}");
    assert_eq!(until_quiet(&engine, 3).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_tag_webhook_reads_every_linked_ticket_but_no_message() {
    let world = world(5, 16, 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = converged_pair(&world, &dir).await;
    let tag = "trengo:callback";
    assert!(!has_tag(&world, &a.ghl_contact_id, tag));

    world.ghl().add_contact_tag(&a.ghl_contact_id, tag).unwrap();
    let hint = latest_ghl_hint(&world);
    assert_eq!(hint, Hint::ContactTags(a.ghl_contact_id.clone()));
    let (_report, trengo, _ghl) = hint_pass(&engine, &world, hint).await;

    // A GHL add goes to every open linked ticket: both were read, and both carry it now.
    for link in [&a, &b] {
        let labels = world.trengo().ticket_json(link.ticket_id).unwrap()["labels"].clone();
        assert!(
            labels.as_array().unwrap().iter().any(|l| l["name"] == tag),
            "ticket {} lacks {tag}",
            link.ticket_id
        );
    }
    assert_eq!(trengo.count(TICKET), 2, "{trengo:?}");
    assert_eq!(trengo.count(MESSAGES), 0, "{trengo:?}");
    assert_eq!(until_quiet(&engine, 3).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_read_alone_never_plans_its_contacts_tags() {
    let world = world(6, 16, 8).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = converged_pair(&world, &dir).await;
    let tag = "trengo:vip";
    // Only the other ticket carries the label; the contact has the tag from it.
    let label = world.trengo().label_id(tag).unwrap();
    for link in [&a, &b] {
        let _ = world.trengo().remove_label(link.ticket_id, label);
    }
    world.trengo().add_label(b.ticket_id, label).unwrap();
    until_quiet(&engine, 4).await;
    assert!(has_tag(&world, &a.ghl_contact_id, tag));

    world.ghl().complete_task(&a.task_id).unwrap();
    let hint = latest_ghl_hint(&world);
    let (report, _trengo, ghl) = hint_pass(&engine, &world, hint).await;

    // Read alone, ticket A lacks the label: a tag merge over that part would remove the tag.
    assert_eq!(report.writes.ghl, 0, "{ghl:?}");
    assert!(has_tag(&world, &a.ghl_contact_id, tag));
    assert_eq!(
        world.trengo().ticket_json(a.ticket_id).unwrap()["status"],
        "CLOSED"
    );
    assert_eq!(until_quiet(&engine, 3).await, 1);
}
